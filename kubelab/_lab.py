"""`kubelab up`, `kubelab down`, `kubelab status`: the local lab.

The work is in deploy/lab.py; these commands show its progress, say what
to try next, and map its failures onto the CLI's `error: ...` convention.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from ._printers import format_table
from ._session import CLIError, Settings, echo, global_options

NEXT_STEPS = """
The lab is up: the control plane in network namespace {cp} (etcd, the apiserver, the controller-manager,
the scheduler, cluster DNS and the image registry), reached from here through {server},
and {nodes} node(s) ({node_names}), each running its CRI shim, kubelet, proxy and pod network agent.
Try next:
  kubelab get nodes -o wide
  kubelab get pods -A -o wide                          # where the pods run, and their IPs
  kubelab describe deployment hello -n demo
{reach}  ip netns exec {node1} iptables-save -t nat | grep KUBE-SVC   # the rules the proxy wrote
  ip netns exec {node1} ip route                      # routes to the other nodes' pod CIDRs
  kubelab scale deployment hello -n demo --replicas 6
  kubelab apply -f ../shared/manifests/k8s-examples/controllers/nginx-deployment.yaml
  ip netns exec {cp} etcdctl get /registry/ --prefix --keys-only   # what the apiserver stored
  kubelab status                                       # processes, namespaces, logs
  kubelab down                                         # stop it all and remove what it made
"""

CONTROL_PLANE_ONLY = """
The control plane is up in network namespace {cp}: etcd, the apiserver (reached from here through
{server}), the controller-manager, the scheduler and cluster DNS. No node was asked for
(--nodes 0), so pods are created but stay Pending.
Try next:
  kubelab get all -n demo                              # the Deployment, its ReplicaSet and Pending pods
  kubelab describe pod -n demo                         # Events: FailedScheduling: no nodes available
  kubelab get deployment hello -n demo -o yaml         # every default the apiserver filled in
  kubelab get pods -A -w                               # a live watch (Ctrl-C to stop)
  kubelab api-resources
  ip netns exec {cp} etcdctl get /registry/ --prefix --keys-only   # what the apiserver stored
  kubelab status                                       # processes, namespaces, logs
  kubelab down                                         # stop it all and remove what it made
"""


def _state_dir(path: str | None) -> Path:
    from deploy.lab import default_state_dir
    return Path(path) if path else default_state_dir()


def _progress(component: str, message: str) -> None:
    echo(f"{time.strftime('%H:%M:%S')}  {component:<18} {message}")


@click.command("up")
@click.option("--port", default=6443, show_default=True,
              help="The apiserver's port on the control plane's lab address.")
@click.option("--etcd-port", default=2379, show_default=True, help="etcd's client port in the control plane.")
@click.option("--nodes", default=3, show_default=True, type=click.IntRange(0, 200),
              help="Node namespaces on the lab network.")
@click.option("--proxy-mode", default="iptables", show_default=True,
              type=click.Choice(["iptables", "nftables", "ipvs"]), help="How the nodes' proxies program Services.")
@click.option("--prefix", default="kl", show_default=True,
              help="Name prefix of the lab's network namespaces (<prefix>-cp, <prefix>-node-1, ...).")
@click.option("--state-dir", default=None, help="Where data, logs and pids go (default /var/lib/kubelab as root).")
@click.option("--apply", "apply_path", default=None, type=click.Path(exists=True),
              help="Manifests to apply once the control plane is up (a file or a directory).")
@global_options
@click.pass_context
def up(ctx: click.Context, port: int, etcd_port: int, nodes: int, proxy_mode: str, prefix: str,
       state_dir: str | None, apply_path: str | None) -> None:
    """Start the lab on this host: network namespaces for the control plane
    (etcd, apiserver, controller-manager, scheduler) and the nodes.

    \b
      kubelab up
      kubelab up --apply deploy/demo/
    """
    from deploy.lab import LabError
    from deploy.lab import up as start

    settings = ctx.ensure_object(Settings)
    config = Path(settings.kubeconfig) if settings.kubeconfig else None
    try:
        state = start(_state_dir(state_dir), api_port=port, etcd_port=etcd_port, nodes=nodes, prefix=prefix,
                      proxy_mode=proxy_mode, progress=_progress, config_path=config)
    except (LabError, FileNotFoundError, TimeoutError, RuntimeError) as err:
        raise CLIError(str(err)) from None
    settings.server = settings.server or state.server
    if apply_path:
        from ._apply import apply
        ctx.invoke(apply, filenames=(apply_path,), recursive=True, dry_run="none", output="")
    cp = f"{state.prefix}-cp"
    if not state.nodes:
        echo(CONTROL_PLANE_ONLY.format(server=state.server, cp=cp), nl=False)
        return
    names = [f"{state.prefix}-node-{i + 1}" for i in range(state.nodes)]
    echo(NEXT_STEPS.format(server=state.server, cp=cp, nodes=state.nodes, node_names=", ".join(names),
                           node1=names[0], reach=_reach_demo(settings, names[0]) if apply_path else ""), nl=False)


def _reach_demo(settings: Settings, node: str) -> str:
    """How to reach the demo's Service from a node, once it has an address."""
    from api import StatusError
    from client import ClientConfig, SyncClientset
    from proto import core_pb2

    cs = SyncClientset(ClientConfig(server=settings.server or ""))
    try:
        ip = cs.resource(core_pb2.Service, "demo").get("hello").spec.clusterIP
    except StatusError:  # the demo is optional: no hint then
        return ""
    finally:
        cs.close()
    return (f"  ip netns exec {node} busybox wget -qO- http://{ip}/     # the demo Service: a pod's hostname, "
            "another each time\n"
            f"  ip netns exec {node} busybox nslookup hello.demo.svc.cluster.local 10.96.0.10   # cluster DNS\n")


@click.command("down")
@click.option("--state-dir", default=None, help="The state directory `kubelab up` used.")
@global_options
@click.pass_context
def down(ctx: click.Context, state_dir: str | None) -> None:
    """Stop the lab and remove everything it made (processes, data, logs, config)."""
    from deploy.lab import down as stop

    settings = ctx.ensure_object(Settings)
    config = Path(settings.kubeconfig) if settings.kubeconfig else None
    if not stop(_state_dir(state_dir), progress=_progress, config_path=config):
        echo("no lab is running")


@click.command("status")
@click.option("--state-dir", default=None, help="The state directory `kubelab up` used.")
def status(state_dir: str | None) -> None:
    """Show the lab's components: process, endpoint and log."""
    from deploy.lab import alive
    from deploy.lab import status as read

    state = read(_state_dir(state_dir))
    if state is None:
        raise CLIError("no lab is running here: start one with `kubelab up`")
    rows = [[c.name, c.namespace, "Running" if alive(c) else "Stopped", str(c.pid), c.endpoint, c.log]
            for c in state.components]
    echo(format_table(["COMPONENT", "NAMESPACE", "STATUS", "PID", "ENDPOINT", "LOG"], rows), nl=False)
    echo(f"\nstate directory: {state.state_dir}")
