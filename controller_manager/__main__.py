"""`python -m controller_manager`: the controllers that keep the cluster's
objects in their desired state, leader-elected like kube-controller-manager."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

import component_base
from api import RealClock
from client import Clientset

from ._manager import run_controllers, workers_flag
from ._registry import CONTROLLERS, OFF_BY_DEFAULT, enabled, load

log = logging.getLogger("controller_manager")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m controller_manager",
                                description="Run the cluster's controllers against the apiserver.")
    component_base.add_client_flags(p)
    component_base.add_leader_election_flags(p, "kube-controller-manager")
    off = f" (off unless named: {', '.join(sorted(OFF_BY_DEFAULT))})" if OFF_BY_DEFAULT else ""
    p.add_argument("--controllers", default="*",
                   help=f"controllers to run: '*' for the defaults, 'name' to add one, '-name' to remove one; "
                        f"known: {', '.join(CONTROLLERS)}{off}")
    p.add_argument("--resync-period", type=float, default=0.0, metavar="SECONDS",
                   help="re-deliver every cached object to the controllers this often; 0 disables")
    p.add_argument("--cache-sync-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="how long to wait for the informers' first list before starting anyway")
    p.add_argument("--health-bind-address", default="127.0.0.1:10258", metavar="HOST:PORT",
                   help="where the gRPC health service listens; empty disables it")
    for name in CONTROLLERS:
        cls = load(name)
        p.add_argument(f"--concurrent-{name}-syncs", dest=workers_flag(name), type=int, default=cls.default_workers,
                       metavar="N", help=f"workers of the {name} controller (default %(default)s)")
        cls.add_flags(p)
    component_base.add_common_flags(p, metrics_default="127.0.0.1:10257")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = component_base.parse(build_parser(), argv)
    component_base.setup_logging("controller-manager", args.log_level, args.log_format)
    try:
        names = enabled(args.controllers)
    except ValueError as err:
        sys.exit(f"controller-manager: {err}")
    config = component_base.client_config(args)
    component_base.start_metrics_server(args.metrics_bind_address)

    async def serve(stop: asyncio.Event) -> None:
        clientset = Clientset.connect(config)
        health = await component_base.HealthServer().start(args.health_bind_address)
        await health.set("", component_base.SERVING)

        async def work(stopped: asyncio.Event) -> None:
            await run_controllers(clientset, args, names, RealClock(), stopped)

        kept = await component_base.run_leading(clientset, args, work, stop)
        await health.stop()
        await clientset.close()
        if not kept:
            log.error("leader election lost: exiting so a supervisor restarts this replica as a standby")
            sys.exit(1)

    component_base.run(serve)


if __name__ == "__main__":
    main()
