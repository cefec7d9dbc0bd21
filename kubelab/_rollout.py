"""`kubelab rollout` (status, history, undo, pause, resume, restart) and
`kubelab set image`: kubectl's rollout management.

What a kind supports is described by a `RolloutKind` in `ROLLOUT_KINDS`,
keyed by group_resource: how to read its rollout status, its revision
history, how to undo, whether it can be paused. Deployments are here; a
DaemonSet or StatefulSet joins with `register(RolloutKind(...))` from its
own module (and a line in `_KIND_MODULES` so it is imported when asked
for), without touching the commands. A kind without an entry gets
kubectl's "no ... has been implemented" errors.

* `rollout status` watches the object and prints kubectl's lines
  (`Waiting for deployment "web" rollout to finish: 2 of 3 updated
  replicas are available...`) until `deployment "web" successfully rolled
  out`; on a terminal the line is rewritten in place, otherwise each new
  message is a new line. It fails (exit 1) with kubectl's message when the
  controller reports the progress deadline exceeded, or when --timeout
  passes.
* `rollout history` lists revisions and change-causes from the
  Deployment's ReplicaSets; `--revision N` shows that revision's template.
* `rollout undo` does what kubectl does, on the client: the template (and
  annotations, so the change-cause too) of the chosen revision's
  ReplicaSet replaces the Deployment's in one JSON patch, and the
  controller rolls it out as a new revision.
* `rollout pause|resume` set spec.paused; `rollout restart` stamps
  `kubectl.kubernetes.io/restartedAt` on the template, which rolls every
  pod.
* `set image TYPE/NAME CONTAINER=IMAGE...` (`*` for every container)
  patches the containers of any kind with a pod template, or a pod.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from ._apply import dry_run_option, dry_run_suffix
from ._printers import format_table, kind_name, object_name
from ._resources import ResourceRequest, parse_resource_args
from ._session import CLIError, Session, echo, global_options, is_status, parse_duration, resource

if TYPE_CHECKING:
    from api import Kind
    from client import Clientset

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


# ---------------------------------------------------------------- kinds


@dataclass(frozen=True)
class Revision:
    number: int
    change_cause: str
    template: Any  # PodTemplateSpec
    source: Any  # the object holding this revision (a ReplicaSet, a ControllerRevision)


@dataclass(frozen=True)
class RolloutKind:
    resource: str  # group_resource, e.g. "deployments.apps"
    #: (message, done) for an object; raises CLIError when the rollout failed.
    status: Callable[[Any, int | None], tuple[str, bool]]
    #: Every revision, oldest first.
    history: Callable[[Clientset, Any], Awaitable[list[Revision]]]
    #: Roll back to a revision (0: the previous one); the message kubectl prints after the name.
    undo: Callable[[Clientset, Any, int, str], Awaitable[str]]
    pausable: bool = False


ROLLOUT_KINDS: dict[str, RolloutKind] = {}
#: Modules that register the RolloutKind of a group_resource when imported.
_KIND_MODULES: dict[str, str] = {}


def register(kind: RolloutKind) -> None:
    ROLLOUT_KINDS[kind.resource] = kind


def rollout_kind(kind: Kind, what: str) -> RolloutKind:
    name = kind.group_resource
    if name not in ROLLOUT_KINDS and name in _KIND_MODULES:
        importlib.import_module(_KIND_MODULES[name])
    found = ROLLOUT_KINDS.get(name)
    if found is None:
        raise CLIError(f"no {what} has been implemented for {kind.kind}.{kind.group or 'core'}")
    return found


def _targets(args: tuple[str, ...]) -> list[tuple[Kind, str]]:
    requests: list[ResourceRequest] = parse_resource_args(args)
    if not requests:
        raise CLIError("required resource not specified")
    out = [(r.kind, name) for r in requests for name in r.names]
    if not out:
        raise CLIError("resource(s) were provided, but no name was specified")
    return out


def _plural(kind: Kind) -> str:
    """`deployments.apps`: how kubectl names a kind in a failure."""
    return kind.group_resource


# ---------------------------------------------------------------- Deployments


def _deployment_status(d: Any, revision: int | None) -> tuple[str, bool]:
    from controller_manager.deployment import util
    name = d.metadata.name
    if revision:
        current = util.revision(d)
        if current != revision:
            raise CLIError(f"desired revision ({revision}) is different from the running revision ({current})")
    status = d.status
    if d.metadata.generation > status.observedGeneration:
        return "Waiting for deployment spec update to be observed...", False
    cond = util.get_condition(status, util.PROGRESSING)
    if cond is not None and cond.reason == util.TIMED_OUT:
        raise CLIError(f'deployment "{name}" exceeded its progress deadline')
    desired = util.replicas_of(d)
    if status.updatedReplicas < desired:
        return (f'Waiting for deployment "{name}" rollout to finish: {status.updatedReplicas} out of {desired} '
                "new replicas have been updated..."), False
    if status.replicas > status.updatedReplicas:
        return (f'Waiting for deployment "{name}" rollout to finish: {status.replicas - status.updatedReplicas} '
                "old replicas are pending termination..."), False
    if status.availableReplicas < status.updatedReplicas:
        return (f'Waiting for deployment "{name}" rollout to finish: {status.availableReplicas} of '
                f"{status.updatedReplicas} updated replicas are available..."), False
    return f'deployment "{name}" successfully rolled out', True


async def _deployment_replica_sets(cs: Clientset, d: Any) -> list[Any]:
    from proto import apps_pb2
    listed = await cs.resource(apps_pb2.ReplicaSet, d.metadata.namespace).list_all()
    return [rs for rs in listed.items
            if any(r.controller and r.uid == d.metadata.uid for r in rs.metadata.ownerReferences)]


async def _deployment_history(cs: Clientset, d: Any) -> list[Revision]:
    from controller_manager.deployment import util
    out: dict[int, Revision] = {}
    for rs in await _deployment_replica_sets(cs, d):
        number = util.revision(rs)
        if number:
            out[number] = Revision(number, rs.metadata.annotations.get(util.CHANGE_CAUSE, ""), rs.spec.template, rs)
    return [out[n] for n in sorted(out)]


async def _deployment_undo(cs: Clientset, d: Any, to_revision: int, dry_run: str) -> str:
    from api import JSON_PATCH, to_dict
    from controller_manager._owner import equal_ignore_hash, template_without_hash
    from controller_manager.deployment import util
    name = d.metadata.name
    if d.spec.paused:
        raise CLIError(f"you cannot rollback a paused deployment; resume it first with 'kubelab rollout resume "
                       f"deployment/{name}' and try again")
    history = await _deployment_history(cs, d)
    if to_revision:
        chosen = next((r for r in history if r.number == to_revision), None)
        if chosen is None:
            raise CLIError(f"unable to find specified revision {to_revision} in history")
    else:
        if len(history) < 2:
            raise CLIError(f'no rollout history found for deployment "{name}"')
        chosen = history[-2]
    if equal_ignore_hash(d.spec.template, chosen.template):
        return f"skipped rollback (current template already matches revision {chosen.number})"
    changed = type(d)()
    changed.CopyFrom(d)
    util.set_annotations_from(changed, chosen.source)
    patch = [
        {"op": "replace", "path": "/spec/template", "value": to_dict(template_without_hash(chosen.template))},
        # "add" replaces the member, and unlike "replace" works when there is none yet.
        {"op": "add", "path": "/metadata/annotations", "value": dict(changed.metadata.annotations)},
    ]
    if dry_run != "client":
        await cs.resource(type(d), d.metadata.namespace).patch(name, patch, patch_type=JSON_PATCH,
                                                               dry_run=dry_run == "server")
    return "rolled back"


def _deployments() -> RolloutKind:
    return RolloutKind("deployments.apps", _deployment_status, _deployment_history, _deployment_undo,
                       pausable=True)


register(_deployments())


# ---------------------------------------------------------------- rollout


@click.group("rollout")
def rollout() -> None:
    """Manage the rollout of one or many resources.

    \b
    Valid resource types include:
      * deployments
    """


@rollout.command("status")
@click.argument("args", nargs=-1)
@click.option("-w", "--watch", type=bool, default=True, show_default=True,
              help="Watch the status of the rollout until it's done.")
@click.option("--revision", type=int, default=0, help="Pin to a specific revision for showing its status.")
@click.option("--timeout", default="0s", help="The length of time to wait before ending watch (0: forever).")
@global_options
def status(args: tuple[str, ...], watch: bool, revision: int, timeout: str) -> None:
    """Show the status of the rollout, waiting until it is done.

    \b
      kubelab rollout status deployment/web
      kubelab rollout status deploy web --timeout=2m
    """
    session = Session.current()
    targets = _targets(args)
    if len(targets) != 1:
        raise CLIError("rollout status takes exactly one resource")
    kind, name = targets[0]
    viewer = rollout_kind(kind, "status viewer")
    deadline = parse_duration(timeout)
    live = sys.stdout.isatty()

    async def work(cs: Clientset) -> None:
        client = resource(cs, kind, session.namespace)
        obj = await client.get(name)
        last = ""
        started = time.monotonic()
        try:
            while True:
                message, done = viewer.status(obj, revision or None)
                if message != last:
                    _show(message, live, final=done)
                    last = message
                if done or not watch:
                    if live and not done:
                        echo()
                    return
                obj = await _next_version(client, obj, deadline - (time.monotonic() - started) if deadline
                                          else None)
        except BaseException:
            if live and last:
                echo()
            raise

    try:
        session.run(work, bounded=False)
    except TimeoutError:
        raise CLIError("timed out waiting for the condition") from None


def _show(message: str, live: bool, *, final: bool) -> None:
    if live:
        echo(f"\r\x1b[K{message}", nl=final)
    else:
        echo(message)


async def _next_version(client: Any, obj: Any, timeout: float | None) -> Any:
    """The object's next state from a watch (waiting at most `timeout`)."""
    import asyncio
    name = obj.metadata.name

    async def wait() -> Any:
        rv = obj.metadata.resourceVersion
        while True:
            async for event in client.watch(resource_version=rv, field_selector=f"metadata.name={name}"):
                if event.type == "DELETED":
                    raise CLIError("object has been deleted")
                if event.type in ("ADDED", "MODIFIED"):
                    return event.object
                rv = event.resource_version or rv
            # the server ended the watch: read again, then go on watching
            fresh = await client.get(name)
            if fresh.metadata.resourceVersion != obj.metadata.resourceVersion:
                return fresh
            rv = fresh.metadata.resourceVersion

    if timeout is None:
        return await wait()
    if timeout <= 0:
        raise TimeoutError
    return await asyncio.wait_for(wait(), timeout)


@rollout.command("history")
@click.argument("args", nargs=-1)
@click.option("--revision", type=int, default=0, help="See the details of this revision.")
@global_options
def history(args: tuple[str, ...], revision: int) -> None:
    """View previous rollout revisions and configurations.

    \b
      kubelab rollout history deployment/web
      kubelab rollout history deployment/web --revision=3
    """
    session = Session.current()
    targets = _targets(args)
    viewers = [(kind, name, rollout_kind(kind, "history viewer")) for kind, name in targets]

    async def work(cs: Clientset) -> None:
        for kind, name, viewer in viewers:
            try:
                obj = await resource(cs, kind, session.namespace).get(name)
                revisions = await viewer.history(cs, obj)
            except Exception as err:
                if not is_status(err):
                    raise
                session.fail(err)
                continue
            label = object_name(kind, name)
            if revision:
                chosen = next((r for r in revisions if r.number == revision), None)
                if chosen is None:
                    session.fail(CLIError(f"unable to find the specified revision {revision}"))
                    continue
                echo(f"{label} with revision #{revision}")
                echo(_template_text(chosen.template), nl=False)
                continue
            echo(f"{label} ")
            rows = [[str(r.number), r.change_cause or "<none>"] for r in revisions]
            echo(format_table(["REVISION", "CHANGE-CAUSE"], rows))

    session.run(work)


def _template_text(template: Any) -> str:
    from ._describe import Writer
    from ._describe_pod import pod_template
    w = Writer()
    pod_template(w, template)
    return w.text()


@rollout.command("undo")
@click.argument("args", nargs=-1)
@click.option("--to-revision", type=int, default=0, help="The revision to roll back to (default: the previous).")
@dry_run_option("show what would be rolled back")
@global_options
def undo(args: tuple[str, ...], to_revision: int, dry_run: str) -> None:
    """Roll back to a previous rollout.

    \b
      kubelab rollout undo deployment/web
      kubelab rollout undo deployment/web --to-revision=3
    """
    session = Session.current()
    targets = [(kind, name, rollout_kind(kind, "rollbacker")) for kind, name in _targets(args)]

    async def work(cs: Clientset) -> None:
        for kind, name, kind_rollout in targets:
            try:
                obj = await resource(cs, kind, session.namespace).get(name)
                result = await kind_rollout.undo(cs, obj, to_revision, dry_run)
            except Exception as err:
                if not isinstance(err, CLIError) and not is_status(err):
                    raise
                session.fail(err)
                continue
            echo(f"{object_name(kind, name)} {result}{dry_run_suffix(dry_run)}")

    session.run(work)


def _pause_command(verb: str, paused: bool) -> click.Command:
    @click.command(verb)
    @click.argument("args", nargs=-1)
    @global_options
    def command(args: tuple[str, ...]) -> None:
        session = Session.current()
        targets = _targets(args)
        for kind, _name in targets:
            if not rollout_kind(kind, "pauser").pausable:
                raise CLIError(f"{kind_name(kind)} is not supported by rollout {verb}")

        async def work(cs: Clientset) -> None:
            for kind, name in targets:
                client = resource(cs, kind, session.namespace)
                try:
                    obj = await client.get(name)
                    if obj.spec.paused == paused:
                        state = "already paused" if paused else "not paused"
                        raise CLIError(f'{_plural(kind)} "{name}" is {state}')
                    await client.patch(name, {"spec": {"paused": paused}})
                except Exception as err:
                    if not isinstance(err, CLIError) and not is_status(err):
                        raise
                    session.fail(err)
                    continue
                echo(f"{object_name(kind, name)} {verb}d")

        session.run(work)

    command.help = ("Mark the resource as paused: changes to its template do not roll out until it is resumed."
                    if paused else "Resume a paused resource: the changes made meanwhile roll out.")
    return command


rollout.add_command(_pause_command("pause", True))
rollout.add_command(_pause_command("resume", False))


@rollout.command("restart")
@click.argument("args", nargs=-1)
@global_options
def restart(args: tuple[str, ...]) -> None:
    """Restart a resource: every pod is replaced, as a rollout does.

    \b
      kubelab rollout restart deployment/web
    """
    from api import rfc3339
    session = Session.current()
    targets = _targets(args)
    for kind, _name in targets:
        rollout_kind(kind, "restarter")

    async def work(cs: Clientset) -> None:
        for kind, name in targets:
            client = resource(cs, kind, session.namespace)
            try:
                obj = await client.get(name)
                if getattr(obj.spec, "paused", False):
                    raise CLIError(f'{_plural(kind)} "{name}" can\'t restart paused deployment '
                                   "(run rollout resume first)")
                stamp = {"metadata": {"annotations": {RESTARTED_AT: rfc3339(time.time())}}}
                await client.patch(name, {"spec": {"template": stamp}})
            except Exception as err:
                if not isinstance(err, CLIError) and not is_status(err):
                    raise
                session.fail(err)
                continue
            echo(f"{object_name(kind, name)} restarted")

    session.run(work)


# ---------------------------------------------------------------- set image


#: Where each kind keeps its pod spec, as a path of fields.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "pods": ("spec",),
    "cronjobs.batch": ("spec", "jobTemplate", "spec", "template", "spec"),
}
_TEMPLATE_PATH = ("spec", "template", "spec")


def _pod_spec(kind: Kind, obj: Any) -> tuple[tuple[str, ...], Any]:
    path = POD_SPEC_PATHS.get(kind.group_resource, _TEMPLATE_PATH)
    value = obj
    for part in path:
        if not hasattr(value, part):
            raise CLIError(f"{kind_name(kind)} has no pod template: set image works on pods and on kinds that "
                           "hold a pod template")
        value = getattr(value, part)
    return path, value


@click.group("set")
def set_group() -> None:
    """Configure application resources (set image)."""


@set_group.command("image")
@click.argument("args", nargs=-1, required=True)
@click.option("--record", is_flag=True, help="Record the command in the kubernetes.io/change-cause annotation.")
@dry_run_option("show what would change")
@global_options
def image(args: tuple[str, ...], record: bool, dry_run: str) -> None:
    """Update the image of containers of a pod template.

    \b
      kubelab set image deployment/web web=nginx:1.27
      kubelab set image deploy/web '*=nginx:1.27' sidecar=busybox:1.36
    """
    session = Session.current()
    resources = [a for a in args if "=" not in a]
    pairs = [a for a in args if "=" in a]
    if not pairs:
        raise CLIError("at least one image update is required")
    images: dict[str, str] = {}
    for pair in pairs:
        container, _, value = pair.partition("=")
        if not container or not value:
            raise CLIError(f"invalid image update {pair!r}: expected CONTAINER=IMAGE")
        images[container] = value
    targets = _targets(tuple(resources))
    cause = "kubelab set image " + " ".join(args) + (" --record=true" if record else "")

    async def work(cs: Clientset) -> None:
        for kind, name in targets:
            client = resource(cs, kind, session.namespace)
            try:
                obj = await client.get(name)
                patch = _image_patch(kind, obj, images)
                if patch is None:
                    continue  # nothing to change
                if record:
                    patch.setdefault("metadata", {})["annotations"] = {"kubernetes.io/change-cause": cause}
                if dry_run != "client":
                    await client.patch(name, patch, dry_run=dry_run == "server")
            except Exception as err:
                if not isinstance(err, CLIError) and not is_status(err):
                    raise
                session.fail(err)
                continue
            echo(f"{object_name(kind, name)} image updated{dry_run_suffix(dry_run)}")

    session.run(work)


def _image_patch(kind: Kind, obj: Any, images: dict[str, str]) -> dict[str, Any] | None:
    path, spec = _pod_spec(kind, obj)
    updates: dict[str, list[dict[str, str]]] = {"containers": [], "initContainers": []}
    found: set[str] = set()
    for field in ("initContainers", "containers"):
        for c in getattr(spec, field):
            wanted = images.get(c.name, images.get("*"))
            if wanted is None:
                continue
            found.add(c.name)
            if c.image != wanted:
                updates[field].append({"name": c.name, "image": wanted})
    missing = [name for name in images if name != "*" and name not in found]
    if missing:
        raise CLIError(f'unable to find container named "{missing[0]}"')
    body = {field: items for field, items in updates.items() if items}
    if not body:
        return None
    patch: dict[str, Any] = body
    for part in reversed(path):
        patch = {part: patch}
    return patch
