"""`kubelab delete`: delete by name, file, label selector or --all, then wait.

The apiserver decides how an object goes (at once, after a grace period,
or once its finalizers are done); the client chooses the grace period and
the propagation policy for dependents (--cascade: background, foreground,
orphan) and, like kubectl, waits by default until each deleted object is
really gone. Waiting follows the object's uid: an object recreated under
the same name by someone else does not keep the command waiting.

Waiting polls with a growing interval rather than opening a watch per
object: a get reads etcd directly, so it sees the removal as soon as it
happens, and many objects cost no open streams.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from ._apply import dry_run_option
from ._printers import kind_name, object_name
from ._resources import manifest_kind, parse_resource_args, read_manifests, target_namespace
from ._session import CLIError, Session, echo, global_options, is_status, parse_duration, resource, warn

if TYPE_CHECKING:
    from api import Kind
    from client import Clientset

_FORCE_WARNING = ("Immediate deletion does not wait for confirmation that the running resource has been "
                  "terminated. The resource may continue to run on the cluster indefinitely.")
_CASCADE = {"background": "Background", "true": "Background", "foreground": "Foreground", "orphan": "Orphan",
            "false": "Orphan"}


@dataclass(frozen=True)
class Deleted:
    kind: Kind
    namespace: str
    name: str
    uid: str


@click.command("delete")
@click.argument("args", nargs=-1)
@click.option("-f", "--filename", "filenames", multiple=True, help="Files or directories naming the objects.")
@click.option("-R", "--recursive", is_flag=True, help="Read directories given with -f recursively.")
@click.option("-l", "--selector", default="", help="Delete the objects matching this label selector.")
@click.option("--field-selector", default="", help="Delete the objects matching this field selector.")
@click.option("--all", "delete_all", is_flag=True, help="Delete every object of the given types.")
@click.option("-A", "--all-namespaces", is_flag=True, help="With --all or -l: in every namespace.")
@click.option("--grace-period", type=int, default=-1,
              help="Seconds the object gets to terminate gracefully (-1: its own default).")
@click.option("--now", is_flag=True, help="Signal the object to go at once (grace period 1).")
@click.option("--force", is_flag=True, help="With --grace-period=0: remove at once, without waiting for the node.")
@click.option("--cascade", default="background", is_flag=False, flag_value="background",
              help="background|foreground|orphan: what happens to dependents.")
@click.option("--wait", type=click.BOOL, default=True, is_flag=False, flag_value=True,
              help="Wait until the objects are gone (default true).")
@click.option("--timeout", default="0s", help="How long to wait (0: no limit).")
@dry_run_option("delete nothing")
@click.option("--ignore-not-found", type=click.BOOL, default=False, is_flag=False, flag_value=True,
              help="Say nothing about objects that do not exist.")
@click.option("-o", "--output", type=click.Choice(["name"]), default=None, help="name: print kind/name only.")
@global_options
def delete(args: tuple[str, ...], filenames: tuple[str, ...], recursive: bool, selector: str, field_selector: str,
           delete_all: bool, all_namespaces: bool, grace_period: int, now: bool, force: bool, cascade: str,
           wait: bool, timeout: str, dry_run: str, ignore_not_found: bool, output: str | None) -> None:
    """Delete resources by file names, resources and names, or by label selector.

    \b
      kubelab delete pod nginx
      kubelab delete -f deploy.yaml
      kubelab delete pods -l app=web
      kubelab delete deploy/web --cascade=orphan
    """
    session = Session.current()
    propagation = _CASCADE.get(cascade.lower())
    if propagation is None:
        raise CLIError(f'invalid cascade value ({cascade}). Must be "background", "foreground", or "orphan".')
    grace = _grace(grace_period, now, force)
    limit = parse_duration(timeout) or None
    plan = _plan(session, args, filenames, recursive, selector, field_selector, delete_all, all_namespaces)
    suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(dry_run, "")
    verb = "force deleted" if force and grace == 0 else "deleted"
    if force and grace == 0:
        warn(_FORCE_WARNING)

    async def work(cs: Clientset) -> None:
        gone: list[Deleted] = []
        for kind, namespace, names in plan:
            rc = resource(cs, kind, namespace)
            if names is None:
                listing = await rc.list_all(label_selector=selector, field_selector=field_selector)
                targets = [(o.metadata.namespace, o.metadata.name) for o in listing.items]
                if not targets:
                    echo("No resources found", err=True)
            else:
                targets = [(namespace, n) for n in names]
            for ns, name in targets:
                scoped = resource(cs, kind, ns)
                try:
                    if dry_run == "client":
                        obj = await scoped.get(name)
                    else:
                        obj = await scoped.delete(name, grace_period=grace, propagation=propagation,
                                                  dry_run=dry_run == "server")
                except Exception as err:
                    if is_status(err, "NotFound") and ignore_not_found:
                        continue
                    if not is_status(err):
                        raise
                    session.fail(err)
                    continue
                if output == "name":
                    echo(object_name(kind, name))
                else:
                    echo(f'{kind_name(kind)} "{name}" {verb}{suffix}')
                gone.append(Deleted(kind, ns, name, obj.metadata.uid))  # type: ignore[attr-defined]
        if wait and dry_run == "none":
            for item in gone:
                if not await _wait_gone(cs, item, limit):
                    session.fail(CLIError(f"timed out waiting for the condition on {item.kind.resource}/"
                                          f"{item.name}"))

    session.run(work, bounded=False)


def _grace(grace_period: int, now: bool, force: bool) -> int | None:
    """kubectl's rules: --now is 1; --force alone is 0; 0 without --force
    becomes 1, so nobody removes a running pod's record by accident."""
    if now:
        return 1
    if grace_period < 0:
        return 0 if force else None
    if grace_period == 0 and not force:
        return 1
    return grace_period


def _plan(session: Session, args: tuple[str, ...], filenames: tuple[str, ...], recursive: bool, selector: str,
          field_selector: str, delete_all: bool, all_namespaces: bool) -> list[tuple[Kind, str, list[str] | None]]:
    """(kind, namespace, names or None for "every match") in order."""
    if filenames:
        if args:
            raise CLIError("resource arguments may not be given with -f; the files name the objects")
        plan: list[tuple[Kind, str, list[str] | None]] = []
        for m in read_manifests(filenames, recursive, verb="delete"):
            kind = manifest_kind(m)
            ns = target_namespace(kind, m.namespace, session.namespace, session.namespace_explicit)
            plan.append((kind, ns, [m.name]))
        return plan
    if not args:
        raise CLIError("You must provide one or more resources by argument or filename.\n"
                       "Example resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n"
                       "   '<resource> <name>'\n   '<resource>'")
    requests = parse_resource_args(args)
    chosen = delete_all or bool(selector) or bool(field_selector)
    named = any(r.names for r in requests)
    if named and chosen:
        raise CLIError("name cannot be provided when a selector or --all is specified")
    if not named and not chosen:
        raise CLIError("resource(s) were provided, but no name was specified")
    namespace = "" if all_namespaces and not named else session.namespace
    return [(r.kind, namespace, list(r.names) if named else None) for r in requests]


async def _wait_gone(cs: Clientset, item: Deleted, limit: float | None) -> bool:
    deadline = time.monotonic() + limit if limit else None
    delay = 0.05
    rc = resource(cs, item.kind, item.namespace)
    while True:
        try:
            obj = await rc.get(item.name)
        except Exception as err:
            if is_status(err, "NotFound"):
                return True
            raise
        if obj.metadata.uid != item.uid:  # type: ignore[attr-defined]
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        pause = delay if deadline is None else min(delay, max(0.0, deadline - time.monotonic()))
        await asyncio.sleep(pause)
        delay = min(delay * 2, 1.0)
