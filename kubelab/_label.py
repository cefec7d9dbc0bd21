"""`kubelab label` and `kubelab annotate`: change an object's metadata maps.

Arguments that contain `=` (set) or end in `-` (remove) are the changes;
the others name the objects, as in kubectl. Keys and label values are
checked here, before anything is sent. Changing a key that already has a
value needs --overwrite, checked against the object as read; the change is
sent as a JSON merge patch of `metadata.labels` (or `.annotations`) only,
so it cannot undo anyone else's concurrent change to other fields. With
--resource-version the patch carries that resourceVersion and the server
refuses it if the object has moved on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from ._apply import dry_run_option, dry_run_suffix
from ._printers import manifest, object_name, parse_output, render_documents
from ._resources import manifest_kind, parse_resource_args, read_manifests, target_namespace
from ._session import CLIError, Session, echo, global_options, is_status, resource, warn

if TYPE_CHECKING:
    from api import Kind
    from client import Clientset


@dataclass(frozen=True)
class Changes:
    set: dict[str, str]
    remove: list[str]


def split_args(args: tuple[str, ...], what: str) -> tuple[list[str], Changes]:
    """(resource arguments, the changes) from kubectl's mixed argument list."""
    from api import is_label_value, is_qualified_name
    resources: list[str] = []
    sets: dict[str, str] = {}
    removes: list[str] = []
    for arg in args:
        if "=" in arg:
            key, _, value = arg.partition("=")
            problems = is_qualified_name(key) + (is_label_value(value) if what == "label" else [])
            if problems:
                raise CLIError(f'invalid {what} spec: "{arg}": {"; ".join(problems)}')
            sets[key] = value
        elif arg.endswith("-") and len(arg) > 1:  # object names never end in "-"
            removes.append(arg[:-1])
        else:
            resources.append(arg)
    for key in removes:
        if key in sets:
            raise CLIError(f"can not both modify and remove a {what} in the same command: {key}")
    return resources, Changes(sets, removes)


def _command(what: str) -> Any:
    """label and annotate differ only in the map they change."""
    field = "labels" if what == "label" else "annotations"
    example = ("env=test", "tier-", "env=prod") if what == "label" else ("note=hello", "note-", "a=b")
    doc = (f"Update the {field} on a resource: KEY=VALUE sets, KEY- removes.\n\n\b\n"
           f"  kubelab {what} pods nginx {example[0]}\n"
           f"  kubelab {what} deploy/web {example[1]}\n"
           f"  kubelab {what} pods --all --overwrite {example[2]}\n")

    @click.command(what, help=doc)
    @click.argument("args", nargs=-1, required=True)
    @click.option("--overwrite", is_flag=True, help=f"Replace {field} that already have a value.")
    @click.option("-l", "--selector", default="", help="Change the objects matching this label selector.")
    @click.option("--all", "select_all", is_flag=True, help="Change every object of the given types.")
    @click.option("-f", "--filename", "filenames", multiple=True, help="Files naming the objects.")
    @click.option("--resource-version", default="", help="Only change the object if it is at this version.")
    @click.option("--list", "list_only", is_flag=True, help=f"Print the {field} instead of changing them.")
    @dry_run_option("change nothing")
    @click.option("-o", "--output", default="", help="yaml|json|name")
    @global_options
    def command(args: tuple[str, ...], overwrite: bool, selector: str, select_all: bool,
                filenames: tuple[str, ...], resource_version: str, list_only: bool, dry_run: str,
                output: str) -> None:
        session = Session.current()
        fmt = parse_output(output, ("yaml", "json", "name"))
        resource_args, changes = split_args(args, what)
        if not list_only and not changes.set and not changes.remove:
            raise CLIError(f"at least one {what} update is required")
        targets = _targets(session, resource_args, filenames, selector, select_all)
        if resource_version and (len(targets) != 1 or targets[0][2] is None or len(targets[0][2]) != 1):
            raise CLIError("--resource-version may only be used with a single resource")
        results: list[Any] = []

        async def work(cs: Clientset) -> None:
            for kind, namespace, names in targets:
                rc = resource(cs, kind, namespace)
                if names is None:
                    objects = list((await rc.list_all(label_selector=selector)).items)
                else:
                    objects = []
                    for name in names:
                        try:
                            objects.append(await rc.get(name))
                        except Exception as err:
                            if not is_status(err):
                                raise
                            session.fail(err)
                for obj in objects:
                    try:
                        result = await _change(cs, kind, obj, field, changes, overwrite, resource_version,
                                               list_only, dry_run, what)
                    except Exception as err:
                        if not isinstance(err, CLIError) and not is_status(err):
                            raise
                        session.fail(err)
                        continue
                    if result is None:
                        continue
                    results.append(result)
                    name = object_name(kind, obj.metadata.name)
                    if fmt.name == "name":
                        echo(name)
                    elif not fmt.name:
                        echo(f"{name} {_outcome(what, obj, result, field)}{dry_run_suffix(dry_run)}")

        session.run(work)
        if fmt.is_document and results:
            echo(render_documents(fmt, [manifest(r) for r in results], len(results) == 1), nl=False)

    return command


def _targets(session: Session, resource_args: list[str], filenames: tuple[str, ...], selector: str,
             select_all: bool) -> list[tuple[Kind, str, list[str] | None]]:
    if filenames:
        out: list[tuple[Kind, str, list[str] | None]] = []
        for m in read_manifests(filenames, verb="label"):
            kind = manifest_kind(m)
            out.append((kind, target_namespace(kind, m.namespace, session.namespace, session.namespace_explicit),
                        [m.name]))
        return out
    if not resource_args:
        raise CLIError("one or more resources must be specified as <resource> <name> or <resource>/<name>")
    requests = parse_resource_args(resource_args)
    named = any(r.names for r in requests)
    if named and (selector or select_all):
        raise CLIError("name cannot be provided when a selector or --all is specified")
    if not named and not (selector or select_all):
        raise CLIError("resource(s) were provided, but no name was specified")
    return [(r.kind, session.namespace, list(r.names) if named else None) for r in requests]


async def _change(cs: Clientset, kind: Kind, obj: Any, field: str, changes: Changes, overwrite: bool,
                  resource_version: str, list_only: bool, dry_run: str, what: str) -> Any:
    from api import MERGE_PATCH, from_dict, json_merge_patch
    current = dict(getattr(obj.metadata, field))
    if list_only:
        sep = "=" if what == "label" else ": "
        for key in sorted(current):
            echo(f"{key}{sep}{current[key]}")
        return None
    if not overwrite:
        for key in changes.set:
            if key in current:
                raise CLIError(f"'{key}' already has a value ({current[key]}), and --overwrite is false")
    for key in changes.remove:
        if key not in current:
            warn(f'{what} "{key}" not found.')
    patch: dict[str, Any] = {"metadata": {field: {**changes.set, **{k: None for k in changes.remove}}}}
    if resource_version:
        patch["metadata"]["resourceVersion"] = resource_version
    if dry_run == "client":
        merged = json_merge_patch(manifest(obj), patch)
        return from_dict(kind.message, {k: v for k, v in merged.items() if k not in ("apiVersion", "kind")})
    rc = resource(cs, kind, obj.metadata.namespace)
    return await rc.patch(obj.metadata.name, patch, patch_type=MERGE_PATCH, dry_run=dry_run == "server")


def _outcome(what: str, before: Any, after: Any, field: str) -> str:
    if what == "annotate":
        return "annotated"
    old, new = dict(getattr(before.metadata, field)), dict(getattr(after.metadata, field))
    if old == new:
        return "not labeled"
    return "unlabeled" if len(new) < len(old) else "labeled"


label = _command("label")
annotate = _command("annotate")
