"""Serving: wire storage, registry, auth and limits into a grpc.aio server,
bootstrap what a cluster expects to find, and shut down cleanly.

At start the apiserver makes sure the system namespaces exist (default,
kube-system, kube-public, kube-node-lease), the `kubernetes` Service points
at itself at the first address of the service range, and the two system
PriorityClasses exist - what kube-apiserver's bootstrap controllers do. It
also compacts etcd's history periodically, keeping one interval's worth, so
watches can resume across short disconnects while etcd does not grow
without bound.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass, field

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from api import Clock, RealClock, StatusError, int_or_string
from proto import api_pb2, api_pb2_grpc, core_pb2, scheduling_pb2

from ._auth import (
    ANONYMOUS,
    Authenticator,
    AuthenticatorChain,
    AuthorizerChain,
    ClientCertAuthenticator,
    TokenFileAuthenticator,
    authorizer_for_mode,
)
from ._limits import InflightLimiter
from ._nodeproxy import NodeProxyServicer
from ._registry import Registry
from ._service import DiscoveryServicer, Handler, ResourcesServicer
from .storage import EtcdStore, Store

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
SYSTEM_PRIORITY_CLASSES = (("system-node-critical", 2000001000), ("system-cluster-critical", 2000000000))
MAX_MESSAGE = 64 * 1024 * 1024


@dataclass
class ServerOptions:
    etcd_servers: list[str] = field(default_factory=lambda: ["http://127.0.0.1:2379"])
    bind_address: str = "127.0.0.1"
    port: int = 6443
    unix_socket: str = ""
    advertise_address: str = ""
    service_cluster_ip_range: str = "10.96.0.0/12"
    service_node_port_range: tuple[int, int] = (30000, 32767)
    tls_cert_file: str = ""
    tls_private_key_file: str = ""
    client_ca_file: str = ""
    token_auth_file: str = ""
    anonymous_auth: bool = True
    authorization_mode: str = "AlwaysAllow"
    disable_admission_plugins: tuple[str, ...] = ()
    default_toleration_seconds: int = 300
    max_requests_inflight: int = 400
    max_mutating_requests_inflight: int = 200
    watch_cache_size: int = 10_000
    watch_buffer: int = 10_000
    watch_bookmark_interval: float = 60.0
    etcd_compaction_interval: float = 300.0


class APIServer:
    def __init__(self, options: ServerOptions, *, storage: Store | None = None, clock: Clock | None = None) -> None:
        self.options = options
        self.clock = clock or RealClock()
        self.storage = storage or EtcdStore(options.etcd_servers)
        self.registry = Registry(
            self.storage, self.clock, service_cidr=options.service_cluster_ip_range,
            node_ports=options.service_node_port_range, toleration_seconds=options.default_toleration_seconds,
            disabled_admission=options.disable_admission_plugins, watch_cache_size=options.watch_cache_size,
            watcher_buffer=options.watch_buffer)
        authenticators: list[Authenticator] = []
        if options.client_ca_file:
            authenticators.append(ClientCertAuthenticator())
        if options.token_auth_file:
            authenticators.insert(0, TokenFileAuthenticator(options.token_auth_file))
        authn = AuthenticatorChain(authenticators, allow_anonymous=options.anonymous_auth)
        authz = AuthorizerChain([authorizer_for_mode(m.strip())
                                 for m in options.authorization_mode.split(",") if m.strip()])
        limiter = InflightLimiter(options.max_requests_inflight, options.max_mutating_requests_inflight)
        self.handler = Handler(self.registry, authn, authz, limiter, self.clock)
        self.node_proxy = NodeProxyServicer(self.handler)
        self.health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        self.server: grpc.aio.Server | None = None
        self.port = 0
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self._wait_for_etcd()
        await self.registry.start()
        await self._bootstrap()
        server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.so_reuseport", 0),
            # Clients keep long watches alive with pings; let them.
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ("grpc.http2.max_ping_strikes", 0),
        ])
        api_pb2_grpc.add_ResourcesServicer_to_server(
            ResourcesServicer(self.handler, self.options.watch_bookmark_interval), server)
        api_pb2_grpc.add_DiscoveryServicer_to_server(DiscoveryServicer(self.registry), server)
        api_pb2_grpc.add_NodeProxyServicer_to_server(self.node_proxy, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        names = [api_pb2.DESCRIPTOR.services_by_name[n].full_name for n in ("Resources", "Discovery", "NodeProxy")]
        reflection.enable_server_reflection([*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                                             reflection.SERVICE_NAME], server)
        address = f"{self.options.bind_address}:{self.options.port}"
        if self.options.tls_cert_file:
            with open(self.options.tls_private_key_file, "rb") as k, open(self.options.tls_cert_file, "rb") as c:
                pair = (k.read(), c.read())
            ca = open(self.options.client_ca_file, "rb").read() if self.options.client_ca_file else None
            # gRPC's Python server can require client certificates or not ask
            # for them, nothing between: with a client CA, every client must
            # present a certificate it signed (and may add a token).
            creds = grpc.ssl_server_credentials([pair], root_certificates=ca, require_client_auth=ca is not None)
            self.port = server.add_secure_port(address, creds)
        else:
            self.port = server.add_insecure_port(address)
        if self.options.unix_socket:
            server.add_insecure_port(f"unix://{self.options.unix_socket}")
        await server.start()
        self.server = server
        for name in ("", *names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if self.options.etcd_compaction_interval > 0:
            self._tasks.append(asyncio.create_task(self._compact_periodically()))
        log.info("serving the Kubernetes API on %s:%d%s (etcd %s)", self.options.bind_address, self.port,
                 f" and unix://{self.options.unix_socket}" if self.options.unix_socket else "",
                 ",".join(self.options.etcd_servers))

    async def stop(self, grace: float = 5.0) -> None:
        await self.health.enter_graceful_shutdown()
        for task in self._tasks:
            task.cancel()
        if self.server is not None:
            await self.server.stop(grace)
        await self.node_proxy.kubelets.close()
        await self.registry.stop()
        await self.storage.close()
        log.info("apiserver stopped")

    async def _wait_for_etcd(self, attempts: int = 60) -> None:
        for i in range(attempts):
            try:
                await self.storage.current_revision()
                return
            except Exception as err:  # etcd not up yet
                if i == attempts - 1:
                    raise SystemExit(f"etcd at {','.join(self.options.etcd_servers)} is not reachable: {err}") \
                        from None
                if i % 10 == 0:
                    log.info("waiting for etcd at %s: %s", ",".join(self.options.etcd_servers), err)
                await asyncio.sleep(0.5)

    # ------------------------------------------------------------ bootstrap

    async def _ensure(self, group: str, resource: str, obj: object, namespace: str = "") -> None:
        store = self.registry.store_for(group, resource)
        try:
            await store.create(obj, namespace, ANONYMOUS)
        except StatusError as err:
            if err.reason != "AlreadyExists":
                raise

    async def _bootstrap(self) -> None:
        for name in SYSTEM_NAMESPACES:
            await self._ensure("", "namespaces", core_pb2.Namespace(metadata={"name": name}))
        for name, value in SYSTEM_PRIORITY_CLASSES:
            await self._ensure("scheduling.k8s.io", "priorityclasses", scheduling_pb2.PriorityClass(
                metadata={"name": name}, value=value,
                description="Used for system critical pods that must not be moved from their current node."))
        network = ipaddress.ip_network(self.options.service_cluster_ip_range)
        service = core_pb2.Service(metadata={"name": "kubernetes", "labels": {"component": "apiserver",
                                                                              "provider": "kubernetes"}})
        service.spec.clusterIP = str(network.network_address + 1)
        service.spec.ports.add(name="https", port=443, protocol="TCP", targetPort=int_or_string(self.options.port))
        await self._ensure("", "services", service, "default")
        advertise = self.options.advertise_address or (
            self.options.bind_address if self.options.bind_address not in ("0.0.0.0", "::") else "127.0.0.1")
        endpoints = core_pb2.Endpoints(metadata={"name": "kubernetes", "namespace": "default"})
        endpoints.subsets.add(addresses=[core_pb2.EndpointAddress(ip=advertise)],
                              ports=[core_pb2.EndpointPort(name="https", port=self.options.port, protocol="TCP")])
        store = self.registry.store_for("", "endpoints")
        await store.guaranteed_update("default", "kubernetes", lambda _old: endpoints, ANONYMOUS,
                                      create_missing=True)

    async def _compact_periodically(self) -> None:
        previous = 0
        while True:
            await asyncio.sleep(self.options.etcd_compaction_interval)
            try:
                current = await self.storage.current_revision()
                if previous:
                    await self.storage.compact(previous)
                    log.info("compacted etcd history up to revision %d", previous)
                previous = current
            except Exception as err:  # etcd briefly away: try next interval
                log.warning("etcd compaction failed: %s", err)
