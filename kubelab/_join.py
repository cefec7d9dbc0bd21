"""`kubelab join`: make this machine (or network namespace) a node.

Like `kubeadm join`, but in the foreground: it starts the node's components
(the CRI shim, the kubelet, the proxy and the pod network agent; see
deploy/node.py) in the current network namespace, each ready before the
next, keeps them running until Ctrl-C or SIGTERM, then stops them. The lab
runs exactly this inside every node namespace; a VM runs it under systemd.
"""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path
from types import FrameType

import click

from ._session import CLIError, Settings, echo, global_options


def _progress(component: str, message: str) -> None:
    echo(f"{time.strftime('%H:%M:%S')}  {component:<11} {message}")


def default_node_ip() -> str:
    """The first global IPv4 address of the interface the default route (or
    else eth0) uses: the address other machines reach this one on."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        index = None
        for route in ipr.get_default_routes(family=2):
            index = route.get("oif")
            break
        if index is None:
            found = ipr.link_lookup(ifname="eth0")
            index = found[0] if found else None
        if index is None:
            return ""
        for addr in ipr.get_addr(family=2, index=index):
            if addr.get("scope") == 0:
                return str(addr.get("address"))
    return ""


@click.command("join")
@click.option("--name", default=None, help="The Node's name (default: this host's name).")
@click.option("--node-ip", default=None, help="The address other nodes reach this one on (default: detected).")
@click.option("--state-dir", default=None, help="Where the node keeps its state and logs "
                                                "(default /var/lib/kubelab-node/<name>).")
@click.option("--proxy-mode", default="iptables", show_default=True,
              type=click.Choice(["iptables", "nftables", "ipvs", "none"]), help="How Services are programmed.")
@click.option("--cluster-cidr", default="10.244.0.0/16", show_default=True, help="The pods' address range.")
@click.option("--registry-config-path", default=None,
              help="containerd-style registry hosts config (<dir>/<registry>/hosts.toml) for image pulls.")
@click.option("--hollow", default=0, type=click.IntRange(0, 100_000),
              help="Run this many hollow nodes (an in-memory runtime) instead of one real node.")
@global_options
@click.pass_context
def join(ctx: click.Context, name: str | None, node_ip: str | None, state_dir: str | None, proxy_mode: str,
         cluster_cidr: str, registry_config_path: str | None, hollow: int) -> None:
    """Start this machine's node components and keep them running.

    \b
      kubelab join --server 10.200.0.2:6443 --name kl-node-1
      kubelab join --server unix:///var/lib/kubelab/run/apiserver.sock --hollow 100
    """
    from deploy.node import JoinError, NodeConfig, Supervisor, node_components

    settings = ctx.ensure_object(Settings)
    if not settings.server:
        from client import load_config
        settings.server = load_config(settings.kubeconfig).server
    if not settings.server:
        raise CLIError("join needs the apiserver: --server HOST:PORT (or unix:///path)")
    node = name or socket.gethostname()
    address = node_ip if node_ip is not None else ("" if hollow else default_node_ip())
    base = Path(state_dir) if state_dir else Path("/var/lib/kubelab-node") / node
    cfg = NodeConfig(node, settings.server, base, node_ip=address, proxy_mode=proxy_mode,
                     cluster_cidr=cluster_cidr, registry_config_path=registry_config_path or "", hollow=hollow)
    supervisor = Supervisor(node_components(cfg), base / "logs", say=_progress)
    stopping = False

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    what = f"{hollow} hollow nodes" if hollow else f"node {node}" + (f" ({address})" if address else "")
    echo(f"joining {what} to {settings.server}; logs in {base / 'logs'}")
    try:
        supervisor.start()
    except JoinError as err:
        raise CLIError(str(err)) from None
    echo(f"{what} joined; Ctrl-C stops it")
    supervisor.run(lambda: stopping)
