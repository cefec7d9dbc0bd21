"""Forwarding to upstream servers (`--upstream`), off unless configured.

kube-dns and CoreDNS send names outside the cluster zone to the node's
resolvers; in a lab that would be traffic off the machine, so kubelab's
DNS forwards only to the servers named on the command line and otherwise
refuses. Upstreams are tried in order, each over UDP with a TCP retry
when the answer was truncated; one that times out or fails is skipped for
the next. When every upstream fails the caller answers SERVFAIL.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import dns.asyncquery
import dns.exception
import dns.message

DEFAULT_PORT = 53


class ForwardError(Exception):
    """No upstream answered."""


def parse_upstream(text: str) -> tuple[str, int]:
    """`IP`, `IP:PORT` or `[IPv6]:PORT`; a hostname is refused, since
    resolving it would need the DNS this server is."""
    host, port = text.strip(), DEFAULT_PORT
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise ValueError(f"--upstream {text!r}: want IP, IP:PORT or [IPv6]:PORT")
            port = int(rest[1:])
    elif host.count(":") == 1:
        host, _, digits = host.partition(":")
        if not digits.isdigit():
            raise ValueError(f"--upstream {text!r}: port {digits!r} is not a number")
        port = int(digits)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"--upstream {text!r}: {host!r} is not an IP address (a name would need DNS "
                         "to resolve)") from None
    if not 0 < port < 65536:
        raise ValueError(f"--upstream {text!r}: port {port} is out of range 1-65535")
    return host, port


class Forwarder:
    def __init__(self, upstreams: Sequence[tuple[str, int]], *, timeout: float = 2.0) -> None:
        if not upstreams:
            raise ValueError("a Forwarder needs at least one upstream")
        self.upstreams = list(upstreams)
        self.timeout = timeout

    async def forward(self, query: dns.message.Message) -> dns.message.Message:
        errors = []
        for host, port in self.upstreams:
            try:
                reply, _tcp = await dns.asyncquery.udp_with_fallback(query, host, timeout=self.timeout, port=port)
                return reply
            except (dns.exception.DNSException, OSError) as err:
                errors.append(f"{host}:{port}: {type(err).__name__} {err}".rstrip())
        raise ForwardError("; ".join(errors))
