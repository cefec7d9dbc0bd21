"""`python -m proxy`: the service proxy of one node (kube-proxy's role).

Run it inside the node's network namespace; it watches Services and
EndpointSlices and writes that namespace's netfilter rules. On SIGTERM it
stops and leaves the rules in place, as kube-proxy does, so Services keep
working while a new proxy starts; `--cleanup` removes them and exits.
A mode the kernel cannot do (ipvs without ip_vs) or a missing tool is
refused at start with a message that says what is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import re
import shutil
import socket
import sys
from collections.abc import Sequence
from dataclasses import replace

import component_base
from client import Clientset

from ._app import ProxyServer
from ._iptables import IptablesProxier
from ._ipvs import SCHEDULERS, IpvsProxier, IPVSUnavailable, check_available
from ._nftables import NftablesProxier
from ._node import node_addresses, parse_cidrs
from ._runner import CommandRunner, ConntrackFlusher, conntrack_available
from ._syncer import Proxier
from ._types import Options

log = logging.getLogger("proxy")

MODES = ("iptables", "nftables", "ipvs")
TOOLS = {"iptables": ("iptables-restore", "iptables-save"), "nftables": ("nft",), "ipvs": ("ipset", "iptables-restore")}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def duration(text: str) -> float:
    """A Go-style duration ("1s", "500ms", "1m30s") or plain seconds."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        parts = _DURATION.findall(value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise argparse.ArgumentTypeError(f"invalid duration {text!r}: want e.g. 1s, 500ms, 1m30s") from None
        seconds = sum(float(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[u] for n, u in parts)
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: must not be negative")
    return seconds


def cidr(text: str) -> str:
    if not text:
        return ""
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"invalid CIDR {text!r}: {err}") from None
    if net.version != 4:
        raise argparse.ArgumentTypeError(f"invalid CIDR {text!r}: this proxy programs IPv4 only")
    return str(net)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m proxy",
                                description="Program this node's Service rules from the apiserver's Services and "
                                            "EndpointSlices (iptables, nftables or IPVS).")
    component_base.add_client_flags(p)
    p.add_argument("--proxy-mode", choices=MODES, default="iptables", help="which backend (default %(default)s)")
    p.add_argument("--hostname-override", default="", metavar="NAME",
                   help="this node's name (default: the host name)")
    p.add_argument("--cluster-cidr", type=cidr, default="", metavar="CIDR",
                   help="the pods' range; traffic to a Service from outside it is masqueraded")
    p.add_argument("--masquerade-all", type=component_base.boolean, nargs="?", const=True, default=False,
                   metavar="BOOL", help="masquerade all traffic sent to Services")
    p.add_argument("--nodeport-addresses", default="", metavar="CIDRS",
                   help="comma-separated CIDRs: NodePorts answer on the node addresses inside them "
                        "(default: every local address)")
    p.add_argument("--min-sync-period", type=duration, default=1.0, metavar="DURATION",
                   help="at most one sync this often; changes meanwhile are batched (default 1s)")
    p.add_argument("--sync-period", type=duration, default=3600.0, metavar="DURATION",
                   help="rewrite every rule (a full resync) this often; changes in between are partial syncs "
                        "(default 1h, kube-proxy's full-resync interval)")
    p.add_argument("--ipvs-scheduler", choices=SCHEDULERS, default="rr", help="ipvs mode's scheduler (default rr)")
    p.add_argument("--cleanup", action="store_true", help="remove this mode's rules and exit")
    p.add_argument("--cache-sync-timeout", type=duration, default=60.0, metavar="DURATION",
                   help="how long to wait for the first list of Services and EndpointSlices")
    p.add_argument("--health-bind-address", default="127.0.0.1:10256", metavar="HOST:PORT",
                   help="where the gRPC health service listens; empty disables it (default %(default)s)")
    component_base.add_common_flags(p, metrics_default="127.0.0.1:10249")
    return p


def make_proxier(args: argparse.Namespace, options: Options) -> Proxier:
    missing = [t for t in TOOLS[args.proxy_mode] if shutil.which(t) is None]
    if args.proxy_mode == "ipvs":
        check_available()
    if missing:
        raise SystemExit(f"proxy: {args.proxy_mode} proxy mode needs {', '.join(missing)}, which is not installed")
    runner = CommandRunner()
    if args.proxy_mode == "iptables":
        return IptablesProxier(runner, options)
    if args.proxy_mode == "nftables":
        return NftablesProxier(runner, options)
    return IpvsProxier(runner, options, args.ipvs_scheduler)


def main(argv: Sequence[str] | None = None) -> None:
    args = component_base.parse(build_parser(), argv)
    component_base.setup_logging("proxy", args.log_level, args.log_format)
    try:
        cidrs = parse_cidrs(args.nodeport_addresses)
    except ValueError as err:
        sys.exit(f"proxy: {err}")
    if args.min_sync_period > args.sync_period:
        sys.exit("proxy: --min-sync-period must not be longer than --sync-period")
    options = Options(args.cluster_cidr, args.masquerade_all, node_addresses(cidrs) if cidrs else ())
    try:
        proxier = make_proxier(args, options)
    except IPVSUnavailable as err:
        sys.exit(f"proxy: {err}")
    if args.cleanup:
        proxier.cleanup()
        log.info("removed the %s rules", args.proxy_mode)
        return
    node = args.hostname_override or socket.gethostname()
    if not args.cluster_cidr and not args.masquerade_all:
        log.warning("neither --cluster-cidr nor --masquerade-all: traffic to Services from off the cluster "
                    "is not masqueraded")
    if not conntrack_available():
        log.warning("the conntrack tool is missing: stale UDP flows are not flushed when endpoints go")
    config = component_base.client_config(args)
    component_base.start_metrics_server(args.metrics_bind_address)

    def refresh_node_addresses() -> None:
        if cidrs:
            proxier_options = getattr(proxier, "options", None)
            if isinstance(proxier_options, Options):
                proxier.options = replace(proxier_options, nodeport_ips=node_addresses(cidrs))  # type: ignore[attr-defined]

    async def serve(stop: asyncio.Event) -> None:
        clientset = Clientset.connect(config)
        health = await component_base.HealthServer().start(args.health_bind_address)

        async def on_health(ok: bool) -> None:
            await health.set("", component_base.SERVING if ok else component_base.NOT_SERVING)

        server = ProxyServer(clientset, proxier, {
            "min_sync_period": args.min_sync_period, "sync_period": args.sync_period,
            "conntrack": ConntrackFlusher(CommandRunner()), "before_sync": refresh_node_addresses,
            "on_health": on_health})
        log.info("proxy for node %s in %s mode", node, proxier.mode)
        await server.run(stop, args.cache_sync_timeout)
        await health.stop()
        await clientset.close()

    component_base.run(serve)


if __name__ == "__main__":
    main()
