"""Flags every component that talks to the apiserver shares, and leader
election for those that run as active/standby replicas.

`--server HOST:PORT` (or unix:///path) and `--kubeconfig FILE` say where
the apiserver is, as for the CLI. `--leader-elect` and its timings mirror
kube-scheduler's and kube-controller-manager's flags: replicas contend for
a Lease, only the holder works, and a holder that cannot renew in time
stops working before anyone else can take over.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from client import ClientConfig, Clientset, LeaderElector, load_config


def add_client_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", default="", metavar="HOST:PORT",
                        help="the apiserver (HOST:PORT or unix:///path); default from --kubeconfig")
    parser.add_argument("--kubeconfig", default="", metavar="FILE",
                        help="config file with the apiserver's address (default $KUBELAB_CONFIG or "
                             "~/.kubelab/config)")


def client_config(args: argparse.Namespace) -> ClientConfig:
    config = load_config(args.kubeconfig or None)
    return config.with_overrides(server=args.server)


def add_leader_election_flags(parser: argparse.ArgumentParser, lease_name: str) -> None:
    parser.add_argument("--leader-elect", default="true", choices=["true", "false"],
                        help="contend for a Lease and work only while holding it (default %(default)s)")
    parser.add_argument("--leader-elect-lease-duration", type=float, default=15.0, metavar="SECONDS",
                        help="how long a standby waits after the last renewal before taking over")
    parser.add_argument("--leader-elect-renew-deadline", type=float, default=10.0, metavar="SECONDS",
                        help="how long the leader keeps trying to renew before it stops working")
    parser.add_argument("--leader-elect-retry-period", type=float, default=2.0, metavar="SECONDS",
                        help="how often to try to acquire or renew")
    parser.add_argument("--leader-elect-resource-name", default=lease_name, help="the Lease's name")
    parser.add_argument("--leader-elect-resource-namespace", default="kube-system", help="the Lease's namespace")


def identity() -> str:
    """hostname_<random>, unique per process as Kubernetes makes it."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


Work = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


async def run_leading(clientset: Clientset, args: argparse.Namespace, work: Work, stop: asyncio.Event) -> bool:
    """Run `work(stopped)` while this process leads (or at once without
    leader election) until `stop` is set. Returns False when leadership
    was lost, which a component treats as fatal, as Kubernetes does."""
    if args.leader_elect != "true":
        stopped = asyncio.Event()
        task = asyncio.create_task(work(stopped))
        await stop.wait()
        stopped.set()
        await task
        return True
    elector = LeaderElector(clientset, args.leader_elect_resource_namespace, args.leader_elect_resource_name,
                            identity(), lease_duration=args.leader_elect_lease_duration,
                            renew_deadline=args.leader_elect_renew_deadline,
                            retry_period=args.leader_elect_retry_period, on_started_leading=work)
    run = asyncio.create_task(elector.run())
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({run, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if run.done():
        waiter.cancel()
        run.result()
        return False  # leadership lost
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    return True
