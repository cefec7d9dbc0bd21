"""What the proxy programs, as plain values every backend reads.

A Service with N ports becomes N *service ports*, each named like
kube-proxy's ServicePortName (`namespace/name:port`, or `namespace/name`
for an unnamed port) plus its protocol. EndpointSlices become, per service
port, the endpoints behind it with their conditions. Backends turn one
`ProxySnapshot` (both maps, frozen for the length of a sync) into rules.

Endpoint choice follows Kubernetes: ready endpoints take traffic; when a
service port has none, serving-but-terminating endpoints do (so a rolling
restart drains instead of dropping); with neither, the service port has
no endpoints and its traffic is rejected at once.

Chain and object names derive from a hash of the service port name (and
endpoint), as kube-proxy's do, so they are stable across restarts and fit
the kernel's name limits.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

#: The masquerade mark bit kube-proxy uses (--masquerade-bit 14).
MASQ_MARK = 0x4000
DEFAULT_AFFINITY_SECONDS = 10800


@dataclass(frozen=True)
class Options:
    #: pods' addresses; traffic to a cluster IP from outside it is masqueraded
    cluster_cidr: str = ""
    masquerade_all: bool = False
    #: node addresses NodePorts answer on; empty: every local address
    nodeport_ips: tuple[str, ...] = ()


@dataclass(frozen=True, order=True)
class ServicePortName:
    namespace: str
    name: str
    port: str
    protocol: str = "TCP"

    def __str__(self) -> str:
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port}" if self.port else base

    @property
    def service(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ServicePort:
    """One port of one Service, with what the rules need of the Service."""

    name: ServicePortName
    cluster_ip: str
    port: int
    protocol: str = "TCP"
    node_port: int = 0
    #: sessionAffinity ClientIP's timeout; 0 means no affinity.
    affinity_seconds: int = 0
    external_ips: tuple[str, ...] = ()

    @property
    def proto(self) -> str:
        """The protocol as iptables and nft spell it."""
        return self.protocol.lower()


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node_name: str = ""

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


def usable_endpoints(endpoints: tuple[Endpoint, ...]) -> tuple[Endpoint, ...]:
    """The endpoints that take traffic: the ready ones, or else (as
    Kubernetes falls back) the serving ones that are terminating."""
    ready = tuple(e for e in endpoints if e.ready)
    if ready:
        return ready
    return tuple(e for e in endpoints if e.serving and e.terminating)


@dataclass(frozen=True)
class ProxySnapshot:
    """The desired state of one sync: service ports and their endpoints
    (every endpoint the slices list, usable or not)."""

    services: Mapping[ServicePortName, ServicePort] = field(default_factory=dict)
    endpoints: Mapping[ServicePortName, tuple[Endpoint, ...]] = field(default_factory=dict)

    def targets(self, name: ServicePortName) -> tuple[Endpoint, ...]:
        return usable_endpoints(self.endpoints.get(name, ()))


def hash32(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()


def port_proto_hash(name: ServicePortName, protocol: str) -> str:
    """16 base32 characters of sha256(servicePortName + protocol)."""
    return hash32(str(name) + protocol.lower())[:16]


def endpoint_hash(name: ServicePortName, protocol: str, endpoint: str) -> str:
    return hash32(str(name) + protocol.lower() + endpoint)[:16]


@dataclass
class SyncResult:
    """What one backend sync did, for logs and metrics."""

    full: bool
    rules: dict[str, int] = field(default_factory=dict)  # table/kind -> count now in the kernel
    written_lines: int = 0
