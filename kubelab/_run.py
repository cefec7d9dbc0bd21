"""`kubelab run`: create a Pod from an image, as `kubectl run` does.

The pod is named NAME and labelled `run=NAME` (or with --labels instead);
its one container is named NAME too and runs IMAGE with the arguments
after NAME (`-- ARGS`) as its args - or, with --command, as its command -
plus --env, --port (a containerPort), --image-pull-policy and the restart
policy (--restart, default Always). Annotations come from --annotations.
The apiserver fills in every other default, as for a manifest.

Attached (`-i`, `-t`, `--attach`), as kubectl runs it: the container
gets `stdin: true` with `-i` (and `stdinOnce`, unless --leave-stdin-open:
its stdin closes when this session ends) and `tty: true` with `-t`; nothing
is printed about the creation; once the pod is Running and Ready this
process attaches to the container's own process (kubelab/_attach.py), or,
if the pod has already completed, prints its log. Afterwards `--rm`
deletes the pod, and with restartPolicy Never or OnFailure the pod's end is
awaited and the container's exit code becomes kubelab's (kubectl's "pod
NS/NAME terminated (Reason)" on stderr). `--rm` only goes with an attached
pod, and neither goes with --dry-run, as in kubectl.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from ._apply import dry_run_option, dry_run_suffix
from ._printers import manifest, object_name, parse_output, render_documents
from ._session import CLIError, Session, echo, global_options, is_status, parse_duration

if TYPE_CHECKING:
    from client import Clientset

RESTART_POLICIES = ("Always", "OnFailure", "Never")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_OUTPUTS = ("yaml", "json", "name", "jsonpath", "jsonpath-as-json")


def parse_pairs(items: Sequence[str], what: str) -> dict[str, str]:
    """`a=b,c=d` (or repeated flags) as a map; kubectl's error otherwise."""
    out: dict[str, str] = {}
    for item in items:
        for pair in filter(None, item.split(",")):
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise CLIError(f"invalid {what} spec: {pair}")
            out[key] = value
    return out


def parse_env(items: Sequence[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _ENV_NAME.fullmatch(key):
            raise CLIError(f"invalid env: {item}: want NAME=VALUE, NAME made of letters, digits, '_', '-' and '.', "
                           "not starting with a digit")
        out.append((key, value))
    return out


def build_pod(name: str, image: str, *, namespace: str = "", args: Sequence[str] = (), command: bool = False,
              restart: str = "Always", env: Sequence[str] = (), port: int | None = None,
              labels: Sequence[str] = (), annotations: Sequence[str] = (), pull_policy: str = "",
              stdin: bool = False, stdin_once: bool = False, tty: bool = False) -> Any:
    """The Pod `kubectl run` would create."""
    from proto import core_pb2
    if restart not in RESTART_POLICIES:
        raise CLIError(f"invalid restart policy: {restart}: choose one of {', '.join(RESTART_POLICIES)}")
    if pull_policy and pull_policy not in PULL_POLICIES:
        raise CLIError(f"invalid image pull policy: {pull_policy}: choose one of {', '.join(PULL_POLICIES)}")
    if not image:
        raise CLIError('required flag(s) "image" not set')
    pod = core_pb2.Pod()
    pod.metadata.name = name
    if namespace:
        pod.metadata.namespace = namespace
    pod.metadata.labels.update(parse_pairs(labels, "label") if labels else {"run": name})
    pod.metadata.annotations.update(parse_pairs(annotations, "annotation"))
    container = pod.spec.containers.add(name=name, image=image)
    if pull_policy:
        container.imagePullPolicy = pull_policy
    if command:
        if not args:
            raise CLIError("--command needs the command after NAME: kubelab run NAME --image IMAGE --command -- "
                           "CMD [ARGS...]")
        container.command.extend(args)
    else:
        container.args.extend(args)
    for key, value in parse_env(env):
        container.env.add(name=key, value=value)
    if port is not None:
        if not 1 <= port <= 65535:
            raise CLIError(f"--port: Invalid value: {port}: must be between 1 and 65535, inclusive")
        container.ports.add(containerPort=port)
    if stdin:
        container.stdin = True
        container.stdinOnce = stdin_once
    if tty:
        container.tty = True
    pod.spec.restartPolicy = restart
    return pod


@click.command("run")
@click.argument("name")
@click.argument("args", nargs=-1)
@click.option("--image", default="", help="The container image to run (required).")
@click.option("--restart", default="Always", show_default=True, help="The pod's restart policy: Always, OnFailure "
                                                                     "or Never.")
@click.option("--env", multiple=True, help="An environment variable NAME=VALUE (repeatable).")
@click.option("--port", type=int, default=None, help="The port the container exposes (a containerPort).")
@click.option("--labels", "-l", "labels", multiple=True, help="Labels k=v[,k=v] instead of run=NAME.")
@click.option("--annotations", multiple=True, help="Annotations k=v (repeatable).")
@click.option("--image-pull-policy", default="", help="Always, IfNotPresent or Never (default: the server's).")
@click.option("--command", is_flag=True, help="The arguments after NAME are the command, not the args.")
@click.option("-i", "--stdin", "stdin", is_flag=True, help="Keep stdin open on the container and attach to it.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a TTY for the container (needs -i).")
@click.option("--attach/--no-attach", default=None, help="Attach to the container (the default with -i).")
@click.option("--leave-stdin-open", is_flag=True, help="Keep the container's stdin open after this session.")
@click.option("--rm", is_flag=True, help="Delete the pod when the attached session ends (needs attach).")
@click.option("-q", "--quiet", is_flag=True, help="Print only what the container prints.")
@click.option("--pod-running-timeout", default="1m0s", show_default=True,
              help="How long to wait until the pod is running.")
@dry_run_option("print the pod only, or let the server check it")
@click.option("-o", "--output", default="", help="yaml|json|name|jsonpath=...")
@global_options
def run(name: str, args: tuple[str, ...], image: str, restart: str, env: tuple[str, ...], port: int | None,
        labels: tuple[str, ...], annotations: tuple[str, ...], image_pull_policy: str, command: bool, stdin: bool,
        tty: bool, attach: bool | None, leave_stdin_open: bool, rm: bool, quiet: bool, pod_running_timeout: str,
        dry_run: str, output: str) -> int:
    """Create and run a particular image in a pod.

    \b
      kubelab run nginx --image=nginx
      kubelab run hazelcast --image=hazelcast/hazelcast --port=5701 --env="DNS_DOMAIN=cluster"
      kubelab run once --image=busybox --restart=Never -- echo hello
      kubelab run sleeper --image=busybox --command -- sleep 3600
      kubelab run -it --rm shell --image=busybox --restart=Never -- sh
    """
    attached = stdin if attach is None else attach
    if tty and not stdin:
        raise click.UsageError("-i/--stdin is required for containers with -t/--tty=true")
    if rm and not attached:
        raise CLIError("--rm should only be used for attached containers")
    if attached and dry_run != "none":
        raise CLIError("--dry-run=[server|client] can't be used with attached containers options (--attach, "
                       "--stdin, or --tty)")
    fmt = parse_output(output, _OUTPUTS)
    session = Session.current()
    pod = build_pod(name, image, namespace=session.namespace, args=args, command=command, restart=restart, env=env,
                    port=port, labels=labels, annotations=annotations, pull_policy=image_pull_policy,
                    stdin=stdin, stdin_once=stdin and not leave_stdin_open, tty=tty)
    if attached:
        return run_attached(session, pod, stdin=stdin, tty=tty, rm=rm, quiet=quiet,
                            timeout=parse_duration(pod_running_timeout, "--pod-running-timeout"),
                            wait_exit=not leave_stdin_open and restart in ("Never", "OnFailure"))

    from api import SCHEME
    from proto import core_pb2

    async def work(cs: Clientset) -> Any:
        return await cs.resource(core_pb2.Pod, session.namespace).create(pod, dry_run=dry_run == "server")

    created = pod if dry_run == "client" else session.run(work)
    kind = SCHEME.for_message(core_pb2.Pod)
    if fmt.is_document:
        echo(render_documents(fmt, [manifest(created)], True), nl=False)
    elif fmt.name == "name":
        echo(object_name(kind, created.metadata.name))
    else:
        echo(f"{object_name(kind, created.metadata.name)} created{dry_run_suffix(dry_run)}")
    return 0


def run_attached(session: Session, pod: Any, *, stdin: bool, tty: bool, rm: bool, quiet: bool, timeout: float,
                 wait_exit: bool) -> int:
    """Create the pod, attach to it (or print its log if it completed
    first), delete it with --rm, and return the container's exit code."""
    from proto import core_pb2

    from ._attach import COMPLETED, Terminal, attach_session, reattach_message, wait_for_pod
    from ._logs import pod_ready

    def ready_or_done(p: Any) -> bool:
        return p.status.phase in COMPLETED or (p.status.phase == "Running" and pod_ready(p))

    name = pod.metadata.name
    terminal = Terminal.choose(stdin, tty, tty, name, quiet)

    async def work(cs: Clientset) -> Any:
        pods = cs.resource(core_pb2.Pod, session.namespace)
        created = await pods.create(pod)
        try:
            current = await wait_for_pod(cs, created, ready_or_done, timeout)
            if current.status.phase in COMPLETED:
                await _print_log(cs, current, name)
            else:
                try:
                    with terminal.session(quiet):
                        await attach_session(cs, current, name, terminal)
                except Exception as err:
                    if not is_status(err):
                        raise
                    echo(f"warning: couldn't attach to pod/{name}, falling back to streaming logs: {err}", err=True)
                    await _print_log(cs, current, name)
                if message := reattach_message(current, name, terminal, quiet):
                    echo(message)
            if wait_exit:
                done = "Succeeded" if pod.spec.restartPolicy == "OnFailure" else COMPLETED
                current = await wait_for_pod(cs, current, lambda p: p.status.phase in done, timeout)
            return current
        finally:
            if rm:
                await pods.delete(name)
                if not quiet:
                    echo(f'pod "{name}" deleted')

    final = session.run(work, bounded=False)
    return exit_code(final) if wait_exit else 0


async def _print_log(cs: Clientset, pod: Any, container: str) -> None:
    import sys

    from client import NodeProxyClient
    async for chunk in NodeProxyClient(cs).logs(pod.metadata.namespace, pod.metadata.name, container):
        sys.stdout.buffer.write(chunk)
    sys.stdout.flush()


def exit_code(pod: Any) -> int:
    """What `kubectl run` exits with for a completed pod (its only container's code)."""
    if pod.status.phase == "Succeeded":
        return 0
    where = f"pod {pod.metadata.namespace}/{pod.metadata.name}"
    if pod.status.phase != "Failed":
        raise CLIError(f"{where} left in phase {pod.status.phase}")
    statuses = pod.status.containerStatuses
    terminated = statuses[0].state.terminated if statuses and statuses[0].state.HasField("terminated") else None
    if terminated is None or terminated.exitCode == 0:
        raise CLIError(f"{where} failed with unknown exit code")
    echo(f"{where} terminated ({terminated.reason})\n{terminated.message}".rstrip("\n"), err=True)
    return int(terminated.exitCode)
