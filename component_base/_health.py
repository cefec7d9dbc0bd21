"""The gRPC health service every component serves (`--health-bind-address`).

Components that are not gRPC servers themselves (the controller-manager,
the scheduler) still answer grpc.health.v1.Health, so a lab or an
orchestrator can ask each process the same question. The overall status is
SERVING once the component is ready; a component may also report per-role
statuses (for example "leader").
"""

from __future__ import annotations

import logging

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ._options import split_host_port

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthServer:
    def __init__(self) -> None:
        self.servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
        self._server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self, address: str) -> HealthServer:
        """Serve on HOST:PORT (PORT 0 picks a free one) or on unix:///path
        (reachable from any network namespace: the lab asks components in
        node namespaces this way); empty disables."""
        if not address:
            return self
        if address.startswith("unix:"):
            target = address
        else:
            host, port = split_host_port(address, "--health-bind-address")
            target = f"{host}:{port}"
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, server)
        reflection.enable_server_reflection(
            [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], server)
        self.port = server.add_insecure_port(target)
        await server.start()
        self._server = server
        await self.set("", NOT_SERVING)
        log.info("serving gRPC health on %s", target if target.startswith("unix:") else f"{host}:{self.port}")
        return self

    async def set(self, service: str, status: int) -> None:
        await self.servicer.set(service, status)

    async def stop(self) -> None:
        await self.servicer.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(1)
