"""The health service every component serves, on TCP and on a unix socket
(how the lab asks components inside node namespaces)."""

from __future__ import annotations

from pathlib import Path

import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from component_base import NOT_SERVING, SERVING, HealthServer


async def status(target: str, service: str = "") -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                                timeout=5)
    return int(reply.status)


async def test_serves_on_a_unix_socket(tmp_path: Path) -> None:
    target = f"unix://{tmp_path / 'health.sock'}"
    server = await HealthServer().start(target)
    try:
        assert await status(target) == NOT_SERVING
        await server.set("", SERVING)
        await server.set("leader", SERVING)
        assert await status(target) == SERVING and await status(target, "leader") == SERVING
    finally:
        await server.stop()


async def test_serves_on_a_free_loopback_port() -> None:
    server = await HealthServer().start("127.0.0.1:0")
    try:
        assert server.port > 0
        await server.set("", SERVING)
        assert await status(f"127.0.0.1:{server.port}") == SERVING
    finally:
        await server.stop()
