"""The node's own addresses, read from the kernel of the namespace the
proxy runs in (pyroute2, netlink), for `--nodeport-addresses`.

With CIDRs given, NodePorts answer only on local addresses inside them;
the list is read again before every sync, so an address added to the node
later is picked up by the next sync (and a full one at the latest).
Without CIDRs the backends match "any local address" in the kernel itself
(iptables' addrtype LOCAL, nft's fib daddr type local), which is always
current and needs no reading.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence


def parse_cidrs(text: str) -> tuple[ipaddress.IPv4Network, ...]:
    """`--nodeport-addresses`: comma-separated IPv4 CIDRs."""
    out = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        try:
            net = ipaddress.ip_network(item, strict=False)
        except ValueError as err:
            raise ValueError(f"--nodeport-addresses: invalid CIDR {item!r}: {err}") from None
        if net.version != 4:
            raise ValueError(f"--nodeport-addresses: {item!r} is IPv6; this proxy programs IPv4 only")
        out.append(net)
    return tuple(out)


def local_ipv4_addresses() -> list[str]:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return [a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(family=2)]


def node_addresses(cidrs: Sequence[ipaddress.IPv4Network], addresses: Sequence[str] | None = None) -> tuple[str, ...]:
    """The local addresses inside `cidrs`, sorted (`addresses` defaults to
    this namespace's)."""
    found = local_ipv4_addresses() if addresses is None else addresses
    return tuple(sorted({a for a in found if any(ipaddress.ip_address(a) in net for net in cidrs)},
                        key=ipaddress.ip_address))
