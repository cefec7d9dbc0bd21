"""`python -m podnetwork`: keep this machine's routes to every node's pod
CIDR (host-gw), and masquerade pod traffic leaving the cluster CIDR."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
from collections.abc import Sequence

import component_base
from client import Clientset

from ._agent import RouteAgent
from ._masquerade import MasqueradeError, ensure

log = logging.getLogger("podnetwork")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m podnetwork",
                                description="Route pod CIDRs between the cluster's machines (host-gw).")
    component_base.add_client_flags(p)
    p.add_argument("--node-name", default=socket.gethostname(),
                   help="this machine's Node (its own pod CIDR needs no route; default the hostname)")
    p.add_argument("--cluster-cidr", default="10.244.0.0/16", metavar="CIDR",
                   help="the pods' addresses; traffic from it to elsewhere is masqueraded (default %(default)s)")
    p.add_argument("--masquerade", type=component_base.boolean, default=False, metavar="BOOL",
                   help="masquerade pod traffic leaving the cluster CIDR (nodes: true; default %(default)s)")
    p.add_argument("--resync-period", type=float, default=30.0, metavar="SECONDS",
                   help="how often routes are checked even without a change (default %(default)s)")
    p.add_argument("--health-bind-address", default="127.0.0.1:10270", metavar="HOST:PORT",
                   help="the gRPC health service; empty disables it (default %(default)s)")
    component_base.add_common_flags(p, metrics_default="")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = component_base.parse(build_parser(), argv)
    component_base.setup_logging("podnetwork", args.log_level, args.log_format)
    config = component_base.client_config(args)
    if args.masquerade:
        try:
            ensure(args.cluster_cidr)
        except MasqueradeError as err:
            sys.exit(f"podnetwork: {err}")
    component_base.start_metrics_server(args.metrics_bind_address)

    async def serve(stop: asyncio.Event) -> None:
        clientset = Clientset.connect(config)
        health = await component_base.HealthServer().start(args.health_bind_address)
        agent = RouteAgent(clientset, args.node_name, resync=args.resync_period)
        task = asyncio.create_task(agent.run(stop))
        await agent.synced.wait()
        await health.set("", component_base.SERVING)
        log.info("routing pod CIDRs for node %s", args.node_name)
        await task
        await health.stop()
        await clientset.close()

    component_base.run(serve)


if __name__ == "__main__":
    main()
