"""`kubelab create`: imperative creation, from files or from flags.

`create -f` sends each manifest as it is and fails on an object that
exists (apply is the verb that updates). The generators (`create namespace`,
`configmap`, `secret generic`, `deployment`, `serviceaccount`) build the
object kubectl would build from the same flags, so `--dry-run=client -o
yaml` gives a starting manifest to edit and apply.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._apply import LAST_APPLIED, decode_object, dry_run_option, dry_run_suffix, last_applied
from ._printers import manifest, object_name, parse_output, render_documents
from ._resources import read_manifests
from ._session import CLIError, Session, echo, global_options, is_status, resource, when

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from client import Clientset

_OUTPUTS = ("yaml", "json", "name", "jsonpath", "jsonpath-as-json", "jsonpath-file")
_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


class _Generators(click.Group):
    """Generators answer to kubectl's short names too (`create cm`, `create ns`)."""

    ALIASES = {"cm": "configmap", "ns": "namespace", "deploy": "deployment", "sa": "serviceaccount"}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.ALIASES.get(cmd_name, cmd_name))

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                             list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        return (command.name if command is not None else name), command, rest


@click.group("create", cls=_Generators, invoke_without_command=True)
@click.option("-f", "--filename", "filenames", multiple=True, help="Files, directories or - (stdin).")
@click.option("-R", "--recursive", is_flag=True, help="Read directories given with -f recursively.")
@click.option("--save-config", is_flag=True, help="Store the manifest for a later `kubelab apply`.")
@dry_run_option("create nothing")
@click.option("-o", "--output", default="", help="yaml|json|name|jsonpath=...")
@global_options
@click.pass_context
def create(ctx: click.Context, filenames: tuple[str, ...], recursive: bool, save_config: bool, dry_run: str,
           output: str) -> None:
    """Create a resource from a file or from stdin, or with a generator.

    \b
      kubelab create -f pod.yaml
      kubelab create namespace lab
      kubelab create deployment web --image=nginx --replicas=2
    """
    if ctx.invoked_subcommand is not None:
        if filenames:
            raise CLIError("-f may not be combined with a generator subcommand")
        return
    if not filenames:
        raise CLIError("must specify one of -f and -k, or a subcommand (see 'kubelab create --help')")
    session = Session.current()
    fmt = parse_output(output, _OUTPUTS)
    manifests = read_manifests(filenames, recursive, verb="create")
    created: list[Message] = []

    async def work(cs: Clientset) -> None:
        for m in manifests:
            try:
                kind, obj = decode_object(m, session)
                if save_config:
                    obj.metadata.annotations[LAST_APPLIED] = last_applied(manifest(obj))  # type: ignore[attr-defined]
                result = obj if dry_run == "client" else \
                    await resource(cs, kind, session.namespace).create(obj, dry_run=dry_run == "server")
            except Exception as err:
                if not isinstance(err, CLIError) and not is_status(err):
                    raise
                session.fail(err, when("creating", m.source))
                continue
            created.append(result)
            _report(fmt.name, kind, result, dry_run)

    session.run(work)
    if fmt.is_document and created:
        echo(render_documents(fmt, [manifest(o) for o in created], len(manifests) == 1), nl=False)


def _report(output: str, kind: Any, obj: Any, dry_run: str) -> None:
    if not output:
        echo(f"{object_name(kind, obj.metadata.name)} created{dry_run_suffix(dry_run)}")
    elif output == "name":
        echo(object_name(kind, obj.metadata.name))


def _generated(obj: Message, dry_run: str, output: str) -> None:
    """Send (or only print) an object a generator built."""
    from api import SCHEME
    session = Session.current()
    fmt = parse_output(output, _OUTPUTS)
    kind = SCHEME.for_message(obj)
    if kind.namespaced and session.namespace_explicit:
        obj.metadata.namespace = session.namespace  # type: ignore[attr-defined]
    if dry_run == "client":
        result = obj
    else:
        result = session.run(lambda cs: resource(cs, kind, session.namespace).create(obj, dry_run=dry_run == "server"))
    if fmt.is_document:
        echo(render_documents(fmt, [manifest(result)], True), nl=False)
    else:
        _report(fmt.name, kind, result, dry_run)


def _generator_options(f: Any) -> Any:
    f = click.option("-o", "--output", default="", help="yaml|json|name|jsonpath=...")(f)
    f = dry_run_option("print the object only, or let the server check it")(f)
    return global_options(f)


@create.command("namespace")
@click.argument("name")
@_generator_options
def create_namespace(name: str, dry_run: str, output: str) -> None:
    """Create a namespace with the given name."""
    from proto import core_pb2
    _generated(core_pb2.Namespace(metadata={"name": name}), dry_run, output)


@create.command("serviceaccount")
@click.argument("name")
@_generator_options
def create_serviceaccount(name: str, dry_run: str, output: str) -> None:
    """Create a service account with the given name."""
    from proto import core_pb2
    _generated(core_pb2.ServiceAccount(metadata={"name": name}), dry_run, output)


def _collect(name: str, what: str, literals: Sequence[str], files: Sequence[str],
             env_files: Sequence[str]) -> dict[str, bytes]:
    """--from-literal, --from-file and --from-env-file as key -> bytes."""
    data: dict[str, bytes] = {}

    def add(key: str, value: bytes) -> None:
        if not _KEY.match(key):
            raise CLIError(f'"{key}" is not a valid key name for a {what}: a valid config key must consist of '
                           "alphanumeric characters, '-', '_' or '.'")
        if key in data:
            raise CLIError(f'cannot add key "{key}", another key by that name already exists in Data for '
                           f'{what} "{name}"')
        data[key] = value

    for literal in literals:
        key, sep, value = literal.partition("=")
        if not sep or not key:
            raise CLIError(f'invalid literal source {literal}, expected key=value')
        add(key, value.encode())
    for spec in files:
        key, sep, path = spec.partition("=")
        if not sep:
            key, path = "", spec
        p = Path(path)
        if p.is_dir():
            if key:
                raise CLIError(f"cannot give a key name for a directory path: {spec}")
            for f in sorted(p.iterdir()):
                if f.is_file():
                    add(f.name, f.read_bytes())
        elif p.is_file():
            add(key or p.name, p.read_bytes())
        else:
            raise CLIError(f"error reading {path}: no such file or directory")
    for env_file in env_files:
        try:
            lines = Path(env_file).read_text(encoding="utf-8").splitlines()
        except OSError as err:
            raise CLIError(f"error reading {env_file}: {err.strerror}") from None
        for line in lines:
            line = line.strip()
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                add(key, value.encode())
    return data


_FROM = [
    click.option("--from-literal", "literals", multiple=True, help="key=value (repeatable)."),
    click.option("--from-file", "files", multiple=True, help="[key=]path: a file, or every file in a directory."),
    click.option("--from-env-file", "env_files", multiple=True, help="A file of KEY=VALUE lines."),
]


def _from_options(f: Any) -> Any:
    for option in reversed(_FROM):
        f = option(f)
    return f


@create.command("configmap")
@click.argument("name")
@_from_options
@_generator_options
def create_configmap(name: str, literals: tuple[str, ...], files: tuple[str, ...], env_files: tuple[str, ...],
                     dry_run: str, output: str) -> None:
    """Create a config map from literals, files or env files."""
    from proto import core_pb2
    cm = core_pb2.ConfigMap(metadata={"name": name})
    for key, value in _collect(name, "ConfigMap", literals, files, env_files).items():
        try:
            cm.data[key] = value.decode("utf-8")
        except UnicodeDecodeError:
            cm.binaryData[key] = value
    _generated(cm, dry_run, output)


@create.group("secret")
def create_secret() -> None:
    """Create a secret (generic)."""


@create_secret.command("generic")
@click.argument("name")
@_from_options
@click.option("--type", "secret_type", default="Opaque", show_default=True, help="The secret's type.")
@_generator_options
def create_secret_generic(name: str, literals: tuple[str, ...], files: tuple[str, ...], env_files: tuple[str, ...],
                          secret_type: str, dry_run: str, output: str) -> None:
    """Create a secret from literals, files or env files."""
    from proto import core_pb2
    secret = core_pb2.Secret(metadata={"name": name}, type=secret_type)
    for key, value in _collect(name, "Secret", literals, files, env_files).items():
        secret.data[key] = value
    _generated(secret, dry_run, output)


def container_name(image: str) -> str:
    """The container name kubectl derives from an image: its base name
    without registry, tag or digest, made a valid DNS label."""
    base = image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0].lower()
    name = re.sub(r"[^a-z0-9-]", "-", base).strip("-")
    return name[:63] or "container"


@create.command("deployment")
@click.argument("name")
@click.option("--image", "images", multiple=True, required=True, help="Image(s) to run (repeatable).")
@click.option("-r", "--replicas", type=int, default=1, show_default=True, help="Number of replicas.")
@click.option("--port", type=int, default=-1, help="The port the container exposes.")
@_generator_options
def create_deployment(name: str, images: tuple[str, ...], replicas: int, port: int, dry_run: str,
                      output: str) -> None:
    """Create a deployment running the given image(s), labelled app=NAME."""
    from proto import apps_pb2, core_pb2
    labels = {"app": name}
    deploy = apps_pb2.Deployment(metadata={"name": name, "labels": labels})
    deploy.spec.replicas = replicas
    deploy.spec.selector.matchLabels.update(labels)
    deploy.spec.template.metadata.labels.update(labels)
    seen: set[str] = set()
    for image in images:
        cname = container_name(image)
        suffix = 2
        while cname in seen:
            cname, suffix = f"{container_name(image)}-{suffix}", suffix + 1
        seen.add(cname)
        deploy.spec.template.spec.containers.append(core_pb2.Container(name=cname, image=image))
    if port >= 0:
        deploy.spec.template.spec.containers[0].ports.append(core_pb2.ContainerPort(containerPort=port))
    _generated(deploy, dry_run, output)
