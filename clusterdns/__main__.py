"""`python -m clusterdns`: the cluster DNS server (kube-dns's role).

Starts the informers, waits for their first lists (or gives up waiting
after --cache-sync-timeout and serves what it has, as CoreDNS does), binds
UDP and TCP, then reports SERVING on the gRPC health service. Every replica
serves: DNS replicas do not fight over anything, so there is no leader
election. SIGTERM closes the listeners, then the watches.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

import dns.exception
import dns.name

import component_base
from client import Clientset

from ._app import ClusterDNS
from ._forward import Forwarder, parse_upstream
from ._index import RecordIndex
from ._metrics import register_index
from ._resolver import DEFAULT_TTL, DEFAULT_ZONE, Resolver
from ._server import DNSServer

log = logging.getLogger("clusterdns")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m clusterdns",
                                description="Serve cluster DNS (services, endpoints, pods) from the apiserver's "
                                            "Services, EndpointSlices and Pods.")
    component_base.add_client_flags(p)
    p.add_argument("--bind-address", default="0.0.0.0", metavar="IP",
                   help="the address DNS listens on, UDP and TCP (default %(default)s)")
    p.add_argument("--port", type=int, default=53, help="the DNS port, UDP and TCP; 0 picks a free one "
                   "(default %(default)s)")
    p.add_argument("--cluster-domain", default=DEFAULT_ZONE, metavar="DOMAIN",
                   help="the zone served: <svc>.<ns>.svc.DOMAIN (default %(default)s)")
    p.add_argument("--ttl", type=int, default=DEFAULT_TTL, metavar="SECONDS",
                   help="TTL of every answer, and of negative answers (default %(default)s)")
    p.add_argument("--upstream", action="append", default=[], metavar="IP[:PORT]",
                   help="forward names outside the cluster zone here (repeatable, tried in order); without it "
                        "they are REFUSED")
    p.add_argument("--upstream-timeout", type=float, default=2.0, metavar="SECONDS",
                   help="how long to wait for one upstream before trying the next (default %(default)s)")
    p.add_argument("--pod-records", type=component_base.boolean, default=True, metavar="true|false",
                   help="watch Pods and answer <a-b-c-d>.<ns>.pod.DOMAIN for their IPs (default true)")
    p.add_argument("--health-bind-address", default="127.0.0.1:8181", metavar="HOST:PORT",
                   help="where the gRPC health service listens; empty disables it (default %(default)s)")
    p.add_argument("--cache-sync-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="how long to wait for the informers' first list before serving anyway")
    component_base.add_common_flags(p, metrics_default="127.0.0.1:9153")
    for action in p._actions:
        if action.dest == "metrics_bind_address":
            action.help = f"{action.help} (default %(default)s)"
    return p


def check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[dns.name.Name, list[tuple[str, int]]]:
    """The zone and upstreams from the flags, or a usage error naming the flag."""
    try:
        zone = dns.name.from_text(args.cluster_domain)
    except dns.exception.DNSException as err:
        parser.error(f"--cluster-domain {args.cluster_domain!r}: not a domain name ({err})")
    if zone == dns.name.root or not args.cluster_domain.strip("."):
        parser.error("--cluster-domain must not be empty or the root")
    if not 0 <= args.port < 65536:
        parser.error(f"--port {args.port}: must be between 0 and 65535")
    if args.ttl < 0:
        parser.error(f"--ttl {args.ttl}: must be 0 or more")
    upstreams = []
    for text in args.upstream:
        for item in filter(None, (s.strip() for s in text.split(","))):
            try:
                upstreams.append(parse_upstream(item))
            except ValueError as err:
                parser.error(str(err))
    return zone, upstreams


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = component_base.parse(parser, argv)
    zone, upstreams = check(args, parser)
    component_base.setup_logging("clusterdns", args.log_level, args.log_format)
    client_config = component_base.client_config(args)
    component_base.start_metrics_server(args.metrics_bind_address)

    async def serve(stop: asyncio.Event) -> None:
        clientset = Clientset.connect(client_config)
        index = RecordIndex()
        collector = register_index(lambda: len(index), lambda: len(index.owners()))
        app = ClusterDNS(clientset, zone, index=index, pod_records=args.pod_records)
        forwarder = Forwarder(upstreams, timeout=args.upstream_timeout) if upstreams else None
        resolver = Resolver(index, zone, ttl=args.ttl, forwarder=forwarder)
        health = await component_base.HealthServer().start(args.health_bind_address)
        app.start()
        if not await app.wait_for_sync(args.cache_sync_timeout):
            log.warning("caches not synced after %.0fs; serving what is known", args.cache_sync_timeout)
        try:
            server = await DNSServer(resolver).start(args.bind_address, args.port)
        except OSError as err:
            await app.shutdown()
            await health.stop()
            await clientset.close()
            sys.exit(f"clusterdns: cannot listen on {args.bind_address}:{args.port}: {err}")
        log.info("zone %s, ttl %ds, %s, %d records", zone, args.ttl,
                 "forwarding to " + ", ".join(f"{h}:{p}" for h, p in upstreams) if upstreams else "no upstream",
                 len(index))
        await health.set("", component_base.SERVING)
        await stop.wait()
        await health.set("", component_base.NOT_SERVING)
        await server.stop()
        await app.shutdown()
        await health.stop()
        await clientset.close()
        del collector

    component_base.run(serve)


if __name__ == "__main__":
    main()
