"""`kubelab run`: create a Pod from an image, as `kubectl run` does.

The pod is named NAME and labelled `run=NAME` (or with --labels instead);
its one container is named NAME too and runs IMAGE with the arguments
after NAME (`-- ARGS`) as its args - or, with --command, as its command -
plus --env, --port (a containerPort), --image-pull-policy and the restart
policy (--restart, default Always). Annotations come from --annotations.
The apiserver fills in every other default, as for a manifest.

Attaching (`-i`, `-t`, `--attach`, and so `--rm`, which kubectl allows
only for an attached pod) is refused before anything is created: attaching
needs the CRI's Attach, which kubelab's runtime shim does not implement
yet, and running the command through exec instead would not be the pod's
own process. Create the pod, then `kubelab logs -f NAME` or `kubelab exec
-it NAME -- sh`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from ._apply import dry_run_option, dry_run_suffix
from ._printers import manifest, object_name, parse_output, render_documents
from ._session import CLIError, Session, echo, global_options

if TYPE_CHECKING:
    from client import Clientset

RESTART_POLICIES = ("Always", "OnFailure", "Never")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_OUTPUTS = ("yaml", "json", "name", "jsonpath", "jsonpath-as-json")
ATTACH_UNSUPPORTED = ("attach is not supported yet: `kubelab run -i/-t/--attach` needs the container runtime's "
                      "Attach, which kubelab's CRI shim does not implement. Run the pod without them, then follow "
                      "it with `kubelab logs -f {name}` or open a shell with `kubelab exec -it {name} -- sh`")


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
              labels: Sequence[str] = (), annotations: Sequence[str] = (), pull_policy: str = "") -> Any:
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
@click.option("-i", "--stdin", "stdin", is_flag=True, help="Keep stdin open and attach (not supported yet).")
@click.option("-t", "--tty", is_flag=True, help="Allocate a TTY and attach (not supported yet).")
@click.option("--attach", is_flag=True, help="Attach to the container (not supported yet).")
@click.option("--rm", is_flag=True, help="Delete the pod when the attached command ends (needs attach).")
@dry_run_option("print the pod only, or let the server check it")
@click.option("-o", "--output", default="", help="yaml|json|name|jsonpath=...")
@global_options
def run(name: str, args: tuple[str, ...], image: str, restart: str, env: tuple[str, ...], port: int | None,
        labels: tuple[str, ...], annotations: tuple[str, ...], image_pull_policy: str, command: bool, stdin: bool,
        tty: bool, attach: bool, rm: bool, dry_run: str, output: str) -> None:
    """Create and run a particular image in a pod.

    \b
      kubelab run nginx --image=nginx
      kubelab run hazelcast --image=hazelcast/hazelcast --port=5701 --env="DNS_DOMAIN=cluster"
      kubelab run once --image=busybox --restart=Never -- echo hello
      kubelab run sleeper --image=busybox --command -- sleep 3600
    """
    if stdin or tty or attach:
        raise CLIError(ATTACH_UNSUPPORTED.format(name=name))
    if rm:
        raise CLIError("--rm should only be used for attached containers")
    fmt = parse_output(output, _OUTPUTS)
    session = Session.current()
    pod = build_pod(name, image, namespace=session.namespace, args=args, command=command, restart=restart, env=env,
                    port=port, labels=labels, annotations=annotations, pull_policy=image_pull_policy)

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
