"""Which routes a machine should have, and putting them in the kernel.

`desired_routes` is a pure function of the Node objects, so the rules for
what to route where are unit-tested without a kernel; `RouteTable` applies
a desired set with pyroute2's asyncio API (the agent's loop must not block)
in the current network namespace, touching
only routes marked with RTPROT_PODNETWORK (an otherwise unused routing
protocol number, as `ip route ... proto N` shows it): a route someone else
added to the same destination is reported, never replaced.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from pyroute2 import AsyncIPRoute

from proto import core_pb2

log = logging.getLogger(__name__)

RTPROT_PODNETWORK = 77


@dataclass(frozen=True, order=True)
class Route:
    dst: str       # a node's pod CIDR, e.g. 10.244.2.0/24
    gateway: str   # that node's InternalIP


def internal_ip(node: core_pb2.Node) -> str:
    for address in node.status.addresses:
        if address.type == "InternalIP":
            return address.address
    return ""


def desired_routes(nodes: Iterable[core_pb2.Node], self_name: str) -> tuple[set[Route], list[str]]:
    """The routes to every other node's pod CIDR, and why any node has none.

    A node without a pod CIDR or an InternalIP yet is skipped (it gets its
    route once it has both); an invalid CIDR or address is reported. The
    node running this agent routes its own CIDR to its bridge and needs no
    route here."""
    routes: set[Route] = set()
    problems: list[str] = []
    for node in nodes:
        name = node.metadata.name
        if name == self_name or not node.spec.podCIDR:
            continue
        gateway = internal_ip(node)
        if not gateway:
            continue
        try:
            cidr = ipaddress.ip_network(node.spec.podCIDR)
            gw = ipaddress.ip_address(gateway)
        except ValueError as err:
            problems.append(f'node "{name}": {err}')
            continue
        if cidr.version != gw.version:
            problems.append(f'node "{name}": pod CIDR {cidr} and address {gw} are not the same IP version')
            continue
        routes.add(Route(str(cidr), str(gw)))
    return routes, problems


class RouteTable:
    """This namespace's main routing table, as far as the agent owns it."""

    def __init__(self) -> None:
        self._ipr: AsyncIPRoute | None = None

    async def _netlink(self) -> AsyncIPRoute:
        if self._ipr is None:
            self._ipr = AsyncIPRoute()
            await self._ipr.setup_endpoint()
        return self._ipr

    async def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None

    async def _routes(self, **match: object) -> list[dict[str, object]]:
        ipr = await self._netlink()
        return [{"dst": r.get("dst"), "dst_len": r.get("dst_len"), "gateway": r.get("gateway"),
                 "proto": r.get("proto")} async for r in await ipr.get_routes(family=2, **match)]

    async def current(self) -> set[Route]:
        return {Route(f"{r['dst']}/{r['dst_len']}", str(r["gateway"] or ""))
                for r in await self._routes(proto=RTPROT_PODNETWORK) if r["proto"] == RTPROT_PODNETWORK}

    async def foreign(self, dst: str) -> bool:
        """Whether a route to `dst` that is not ours exists."""
        net = ipaddress.ip_network(dst)
        return any(r["dst"] == str(net.network_address) and r["dst_len"] == net.prefixlen
                   and r["proto"] != RTPROT_PODNETWORK for r in await self._routes())

    async def apply(self, desired: set[Route]) -> tuple[int, int, list[str]]:
        """Make the table hold exactly `desired` among our routes: (added
        or changed, removed, problems)."""
        ipr = await self._netlink()
        have = await self.current()
        changed = removed = 0
        problems: list[str] = []
        wanted = {d.dst for d in desired}
        for route in sorted(have - desired):
            if route.dst in wanted:
                continue  # replaced below
            await ipr.route("del", dst=route.dst, proto=RTPROT_PODNETWORK)
            removed += 1
        for route in sorted(desired - have):
            if await self.foreign(route.dst):
                problems.append(f"a route to {route.dst} that the pod network did not make exists; left alone")
                continue
            try:
                await ipr.route("replace", dst=route.dst, gateway=route.gateway, proto=RTPROT_PODNETWORK)
            except Exception as err:  # e.g. the gateway is not on a connected network (yet)
                problems.append(f"route to {route.dst} via {route.gateway}: {err}")
                continue
            changed += 1
        return changed, removed, problems
