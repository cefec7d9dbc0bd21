"""`kubelab logs`: a container's log, or a lab component's.

A pod's log comes from its kubelet through the apiserver's node proxy, as
`kubectl logs` reads pods/log: `-f` follows until the container stops (or
Ctrl-C), `-p` reads the previous instance, `--tail`, `--since`,
`--timestamps` and `--limit-bytes` are passed to the kubelet. The target is
a pod, `pod/NAME`, or a workload (`deployment/web`, `job/x`, `svc/x`,
...), for which one of its pods is picked as kubectl picks it (scheduled,
running, ready and most restarted first) and named on stderr when there
were several. A pod with several containers and no `-c` uses its
`kubectl.kubernetes.io/default-container` annotation or its first
container, and says so.

`--component NAME` reads a log file of the local lab instead (the
apiserver is not involved, so it works when the apiserver does not):
control-plane components are where `kubelab up` recorded them in
<state-dir>/lab.json; `--node NODE --component kubelet|crishim|proxy|
podnetwork` reads <state-dir>/nodes/NODE/logs/COMPONENT.log, and
`--component join` the node's own join log. `-f` polls the file (starting
again from the top if it was truncated) until Ctrl-C.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from ._printers import kind_name
from ._resources import resolve_kind
from ._session import CLIError, Session, echo, global_options, parse_duration, resource

if TYPE_CHECKING:
    from client import Clientset
    from proto import core_pb2

DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
NODE_COMPONENTS = ("kubelet", "crishim", "proxy", "podnetwork", "join")
#: Kinds whose pods `logs` and `exec` can pick from, by how each selects them.
_SELECTING = ("deployments.apps", "replicasets.apps", "statefulsets.apps", "daemonsets.apps", "jobs.batch",
              "replicationcontrollers", "services")


# ---------------------------------------------------------------- picking a pod


def pod_ready(pod: core_pb2.Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)


def logging_order(pod: core_pb2.Pod) -> tuple[Any, ...]:
    """kubectl's ByLogging order (first is best): scheduled before not,
    Running before Unknown before Pending, ready before not, more restarts
    first, then the oldest, then by name."""
    phase = {"Running": 0, "Unknown": 1, "Pending": 2}.get(pod.status.phase, 3)
    ready = pod_ready(pod)
    restarts = max((c.restartCount for c in pod.status.containerStatuses), default=0)
    return (not pod.spec.nodeName, phase, not ready, -restarts, pod.metadata.creationTimestamp, pod.metadata.name)


def _selector_of(obj: Any, kind_group_resource: str) -> str:
    from api import selector_from_map, selector_from_message
    if kind_group_resource in ("services", "replicationcontrollers"):
        return str(selector_from_map(obj.spec.selector))
    return str(selector_from_message(obj.spec.selector if obj.spec.HasField("selector") else None))


async def select_pod(cs: Clientset, target: str, namespace: str) -> core_pb2.Pod:
    """The pod `target` names: NAME or pod/NAME, or the pod a workload or
    Service would be logged from (TYPE/NAME)."""
    from api import SCHEME
    from proto import core_pb2
    pods = cs.resource(core_pb2.Pod, namespace)
    type_name, slash, name = target.partition("/")
    if not slash:
        return await pods.get(target)
    if not name or "/" in name:
        raise CLIError(f"arguments in resource/name form must have a single resource and name: {target!r}")
    kind = resolve_kind(type_name)
    if kind == SCHEME.for_message(core_pb2.Pod):
        return await pods.get(name)
    if kind.group_resource not in _SELECTING:
        raise CLIError(f"cannot get the pods of a {kind.kind}: {kind_name(kind)}/{name}; name a pod, or a "
                       f"deployment, replicaset, statefulset, daemonset, job, replicationcontroller or service")
    owner = await resource(cs, kind, namespace).get(name)
    selector = _selector_of(owner, kind.group_resource)
    if not selector:
        raise CLIError(f"{kind_name(kind)}/{name} selects no pods: it has no selector")
    found = (await pods.list(label_selector=selector)).items
    if not found:
        raise CLIError(f"no pods found for {kind_name(kind)}/{name} (selector {selector})")
    found.sort(key=logging_order)
    if len(found) > 1:
        echo(f"Found {len(found)} pods, using pod/{found[0].metadata.name}", err=True)
    return found[0]


def default_container(pod: core_pb2.Pod, container: str) -> str:
    """`container`, or the one kubectl would default to (saying so when the
    pod has more than one)."""
    if container:
        return container
    if not pod.spec.containers:
        raise CLIError(f"pod {pod.metadata.name} has no containers")
    names = [c.name for c in pod.spec.containers]
    chosen = pod.metadata.annotations.get(DEFAULT_CONTAINER_ANNOTATION, "")
    if chosen not in names:
        chosen = names[0]
    everything = names + [f"{c.name} (init)" for c in pod.spec.initContainers]
    if len(everything) > 1:
        echo(f'Defaulted container "{chosen}" out of: {", ".join(everything)}', err=True)
    return chosen


# ---------------------------------------------------------------- lab files


def component_log(component: str, node: str, state_dir: Path) -> Path:
    """The log file of a lab component (on `node`, when given)."""
    from deploy.lab import status
    state = status(state_dir)
    if state is None:
        raise CLIError(f"no lab in {state_dir} (`kubelab up` starts one; KUBELAB_STATE_DIR or --state-dir "
                       "chooses another)")
    recorded = {c.name: c for c in state.components}
    nodes_dir = state_dir / "nodes"
    if node:
        known = sorted(p.name for p in nodes_dir.iterdir() if p.is_dir()) if nodes_dir.is_dir() else []
        if node not in known and node not in recorded:
            raise CLIError(f'node "{node}" is not part of the lab in {state_dir}; its nodes are: '
                           f"{', '.join(known) or '(none: the lab runs no nodes)'}")
        if component not in NODE_COMPONENTS:
            raise CLIError(f'--component "{component}" is not a node component; with --node choose one of: '
                           f"{', '.join(NODE_COMPONENTS)}")
        if component == "join":
            if node not in recorded:
                raise CLIError(f'node "{node}" was not started by the lab: it has no join log')
            return Path(recorded[node].log)
        return nodes_dir / node / "logs" / f"{component}.log"
    node_names = {p.name for p in nodes_dir.iterdir()} if nodes_dir.is_dir() else set()
    choices = [name for name in recorded if name not in node_names]
    if component not in choices:
        hint = (f"; {component} runs on the nodes: add --node NODE" if component in NODE_COMPONENTS else "")
        raise CLIError(f'the lab has no control-plane component "{component}"; choose one of: '
                       f"{', '.join(choices)}{hint}")
    return Path(recorded[component].log)


def tail_lines(path: Path, count: int) -> tuple[bytes, int]:
    """The last `count` lines of the file (all when negative), and the
    offset where the file ended."""
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        if count < 0:
            f.seek(0)
            return f.read(), end
        block, data, start = 64 * 1024, b"", end
        while start > 0 and data.count(b"\n") <= count:
            start = max(0, start - block)
            f.seek(start)
            data = f.read(end - start)
        lines = data.splitlines(keepends=True)
        return b"".join(lines[-count:]) if count else b"", end


def follow_file(path: Path, offset: int, out: BinaryIO, *, interval: float = 0.25,
                stop: Callable[[], bool] = lambda: False) -> None:
    """Copy what is appended to `path` after `offset` until `stop()` (or
    Ctrl-C); a file that shrank was truncated or replaced: read it again."""
    while not stop():
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size < offset:
            offset = 0
        if size > offset:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read(size - offset)
            offset += len(data)
            out.write(data)
            out.flush()
        else:
            time.sleep(interval)


# ---------------------------------------------------------------- the command


@click.command("logs")
@click.argument("args", nargs=-1)
@click.option("-f", "--follow", is_flag=True, help="Keep streaming the log until the container stops (Ctrl-C ends).")
@click.option("-c", "--container", default="", help="The container to print (default: the only or first one).")
@click.option("-p", "--previous", is_flag=True, help="The log of the previous, terminated instance of the container.")
@click.option("--tail", type=int, default=-1, show_default=True, help="Lines of recent log to show; -1 shows all.")
@click.option("--timestamps", is_flag=True, help="Prefix each line with its RFC 3339 time.")
@click.option("--since", default="", help="Only lines newer than this duration (5s, 2m, 3h).")
@click.option("--limit-bytes", type=int, default=0, help="At most this many bytes of log (default: no limit).")
@click.option("--component", default="", help="Read a lab component's log file instead of a pod's: apiserver, "
                                              "etcd, scheduler, controller-manager, clusterdns, registry, ... "
                                              "(with --node: kubelet, crishim, proxy, podnetwork, join).")
@click.option("--node", default="", help="With --component: the lab node whose component to read.")
@click.option("--state-dir", default=None, help="With --component: the lab's state directory (default "
                                                "$KUBELAB_STATE_DIR, /var/lib/kubelab as root).")
@global_options
def logs(args: tuple[str, ...], follow: bool, container: str, previous: bool, tail: int, timestamps: bool,
         since: str, limit_bytes: int, component: str, node: str, state_dir: str | None) -> None:
    """Print the logs of a container in a pod, or of a lab component.

    \b
      kubelab logs nginx                        # the only container of pod nginx
      kubelab logs -f deployment/web -c app     # follow a container of one of web's pods
      kubelab logs web-0 --previous --tail 20   # the instance before the last restart
      kubelab logs --component apiserver -f     # the lab's apiserver
      kubelab logs --node kl-node-1 --component kubelet --tail 50
    """
    if tail < -1:
        raise CLIError("--tail must be greater than or equal to -1")
    if limit_bytes < 0:
        raise CLIError("--limit-bytes must be greater than 0")
    out = sys.stdout.buffer
    if component or node:
        _lab_logs(args, component, node, state_dir, follow=follow, tail=tail,
                  refused={"-c": bool(container), "--previous": previous, "--timestamps": timestamps,
                           "--since": bool(since), "--limit-bytes": bool(limit_bytes)}, out=out)
        return
    if not args:
        raise click.UsageError("expected POD or TYPE/NAME: kubelab logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]")
    if len(args) > 2:
        raise click.UsageError(f"expected POD or TYPE/NAME and at most a container name, got {len(args)} arguments")
    if len(args) == 2:
        if container:
            raise CLIError("only one of -c or an inline container name is allowed")
        container = args[1]
    since_seconds = 0
    if since:
        duration = parse_duration(since, "--since")
        if duration <= 0:
            raise CLIError("--since must be greater than 0")
        since_seconds = int(-(-duration // 1))
    session = Session.current()

    async def work(cs: Clientset) -> None:
        from client import NodeProxyClient
        pod = await select_pod(cs, args[0], session.namespace)
        name = default_container(pod, container)
        stream = NodeProxyClient(cs).logs(pod.metadata.namespace, pod.metadata.name, name, follow=follow,
                                          previous=previous, timestamps=timestamps,
                                          tail_lines=tail if tail >= 0 else None, since_seconds=since_seconds,
                                          limit_bytes=limit_bytes)
        async for chunk in stream:
            out.write(chunk)
            out.flush()

    session.run(work, bounded=not follow)


def _lab_logs(args: Sequence[str], component: str, node: str, state_dir: str | None, *, follow: bool, tail: int,
              refused: dict[str, bool], out: BinaryIO) -> None:
    from deploy.lab import default_state_dir
    if args:
        raise CLIError("--component reads a lab component's log: it takes no pod")
    if not component:
        raise CLIError(f"--node needs --component: one of {', '.join(NODE_COMPONENTS)}")
    wrong = [flag for flag, given in refused.items() if given]
    if wrong:
        raise CLIError(f"{', '.join(wrong)} cannot be used with --component (only -f and --tail apply to a "
                       "component's log file)")
    path = component_log(component, node, Path(state_dir) if state_dir else default_state_dir())
    if not path.exists():
        raise CLIError(f"{path}: no such log file ({component} has not written one yet)")
    data, end = tail_lines(path, tail)
    out.write(data)
    out.flush()
    if follow:
        follow_file(path, end, out)  # until Ctrl-C: click turns it into exit code 130
