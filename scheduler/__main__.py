"""`python -m scheduler`: bind unscheduled pods to nodes, leader-elected
like kube-scheduler (Lease "kube-scheduler" in kube-system)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

import component_base
from client import Clientset

from ._app import SchedulerApp
from ._config import ConfigError, SchedulerConfiguration, default_configuration, load

log = logging.getLogger("scheduler")

# gRPC's asyncio client hands each completed read (one watch event, one
# reply) from its poller thread to the event loop, and that thread needs the
# GIL. While a scheduling cycle holds it, the poller waits up to the switch
# interval - 5 ms by default, which caps a watch at ~200 events/s and lets a
# busy scheduler fall behind its pod watch. 0.5 ms keeps the watches flowing.
SWITCH_INTERVAL = 0.0005

CONFIG_HELP = ("a KubeSchedulerConfiguration YAML file: profiles (schedulerName, plugins, pluginConfig), "
               "percentageOfNodesToScore, backoff, leaderElection; leader election flags given on the command "
               "line win")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m scheduler",
                                description="Assign unscheduled pods to nodes through the apiserver.")
    component_base.add_client_flags(p)
    component_base.add_leader_election_flags(p, "kube-scheduler")
    p.add_argument("--health-bind-address", default="127.0.0.1:10260", metavar="HOST:PORT",
                   help="where the gRPC health service listens; empty disables it (default %(default)s)")
    p.add_argument("--max-binds-in-flight", type=int, default=64, metavar="N",
                   help="bindings sent to the apiserver at once while the next pods are scheduled")
    p.add_argument("--cache-sync-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="how long to wait for the informers' first list before scheduling anyway")
    component_base.add_common_flags(p, metrics_default="127.0.0.1:10259")
    for action in p._actions:
        if action.dest == "config":
            action.help = CONFIG_HELP
        elif action.dest == "metrics_bind_address":
            action.help = f"{action.help} (default %(default)s)"
    return p


def apply_file_leader_election(args: argparse.Namespace, parser: argparse.ArgumentParser,
                               config: SchedulerConfiguration) -> None:
    """The file's leaderElection values, where the flag was left at its default."""
    le = config.leader_election
    values = {"leader_elect": None if le.leader_elect is None else str(le.leader_elect).lower(),
              "leader_elect_lease_duration": le.lease_duration, "leader_elect_renew_deadline": le.renew_deadline,
              "leader_elect_retry_period": le.retry_period, "leader_elect_resource_name": le.resource_name,
              "leader_elect_resource_namespace": le.resource_namespace}
    for dest, value in values.items():
        if value is not None and getattr(args, dest) == parser.get_default(dest):
            setattr(args, dest, value)
    if config.kubeconfig and not args.kubeconfig:
        args.kubeconfig = config.kubeconfig


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    component_base.setup_logging("scheduler", args.log_level, args.log_format)
    try:
        config = load(args.config) if args.config else default_configuration()
    except ConfigError as err:
        sys.exit(f"scheduler: {err}")
    apply_file_leader_election(args, parser, config)
    if args.max_binds_in_flight < 1:
        sys.exit("scheduler: --max-binds-in-flight must be at least 1")
    client_config = component_base.client_config(args)
    component_base.start_metrics_server(args.metrics_bind_address)
    sys.setswitchinterval(SWITCH_INTERVAL)

    async def serve(stop: asyncio.Event) -> None:
        clientset = Clientset.connect(client_config)
        watches = Clientset.connect(client_config)
        try:
            app = SchedulerApp(clientset, config, max_binds_in_flight=args.max_binds_in_flight,
                               watch_clientset=watches)
        except (ValueError, LookupError) as err:
            await clientset.close()
            await watches.close()
            sys.exit(f"scheduler: {err}")
        health = await component_base.HealthServer().start(args.health_bind_address)
        app.start()
        if not await app.wait_for_sync(args.cache_sync_timeout):
            log.warning("caches not synced after %.0fs; scheduling anyway", args.cache_sync_timeout)
        await health.set("", component_base.SERVING)

        async def work(stopped: asyncio.Event) -> None:
            await health.set("leader", component_base.SERVING)
            try:
                await app.run(stopped)
            finally:
                await health.set("leader", component_base.NOT_SERVING)

        kept = await component_base.run_leading(clientset, args, work, stop)
        await app.shutdown()
        await health.stop()
        await watches.close()
        await clientset.close()
        if not kept:
            log.error("leader election lost: exiting so a supervisor restarts this replica as a standby")
            sys.exit(1)

    component_base.run(serve)


if __name__ == "__main__":
    main()
