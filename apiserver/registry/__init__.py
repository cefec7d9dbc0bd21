"""Per-kind behaviour for the generic store: one Strategy per kind.

`build_strategies` maps every kind in the scheme to its strategy; kinds with
nothing special get the base Strategy (names, metadata, generation, status
handling, NAME/AGE columns).
"""

from __future__ import annotations

from api import SCHEME

from .._allocators import NodePortAllocator, ServiceIPAllocator
from ._strategy import AGE, NAME, Column, Reservation, Strategy
from .core import EndpointsStrategy, NamespaceStrategy, NodeStrategy, PodStrategy, ServiceStrategy

_BY_RESOURCE: dict[str, type[Strategy]] = {
    "namespaces": NamespaceStrategy,
    "nodes": NodeStrategy,
    "pods": PodStrategy,
    "endpoints": EndpointsStrategy,
}


def build_strategies(ips: ServiceIPAllocator, ports: NodePortAllocator) -> dict[str, Strategy]:
    """group_resource ("pods", "deployments.apps") -> strategy."""
    out: dict[str, Strategy] = {}
    for kind in SCHEME:
        if kind.group_resource == "services":
            out[kind.group_resource] = ServiceStrategy(kind, ips, ports)
        else:
            out[kind.group_resource] = _BY_RESOURCE.get(kind.group_resource, Strategy)(kind)
    return out


__all__ = ["AGE", "NAME", "Column", "Reservation", "Strategy", "build_strategies"]
