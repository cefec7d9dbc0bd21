"""`kubelab patch` and `kubelab scale`: targeted changes to live objects.

`patch` sends the user's patch as it is, in the flavour asked for:
strategic merge (lists merge by their keys, Kubernetes' default), JSON
merge (RFC 7386) or JSON patch (RFC 6902); the server applies it to the
stored object in one compare-and-swap, so concurrent writers cannot
interleave. "patched (no change)" means the server stored nothing: the
resourceVersion did not move.

`scale` sets spec.replicas of the workload kinds. Its preconditions
(--current-replicas, --resource-version) are checked against the object as
read, and the patch then pins that resourceVersion, so the check and the
change are atomic: a scale that raced another writer is a Conflict, never
a scale from the wrong starting point.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click
import yaml

from ._apply import dry_run_option, dry_run_suffix
from ._printers import manifest, object_name, parse_output, render_documents
from ._resources import SCALABLE, named_objects, parse_resource_args
from ._session import CLIError, Session, descriptor, echo, global_options, is_status, resource

if TYPE_CHECKING:
    from api import Kind
    from client import Clientset

_OUTPUTS = ("yaml", "json", "name", "jsonpath", "jsonpath-as-json")


def parse_patch(text: str) -> Any:
    """A patch given as JSON or YAML (kubectl accepts both)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise CLIError(f'unable to parse "{text}": {err}') from None


@click.command("patch")
@click.argument("args", nargs=-1)
@click.option("-p", "--patch", "patch_text", default=None, help="The patch, as JSON or YAML.")
@click.option("--patch-file", default=None, help="A file holding the patch.")
@click.option("--type", "patch_type", type=click.Choice(["strategic", "merge", "json"]), default="strategic",
              show_default=True, help="strategic merge, JSON merge (RFC 7386) or JSON patch (RFC 6902).")
@click.option("--subresource", type=click.Choice(["status"]), default=None, help="Patch the status subresource.")
@click.option("-f", "--filename", "filenames", multiple=True, help="Files naming the objects.")
@dry_run_option("store nothing")
@click.option("-o", "--output", default="", help="yaml|json|name|jsonpath=...")
@global_options
def patch(args: tuple[str, ...], patch_text: str | None, patch_file: str | None, patch_type: str,
          subresource: str | None, filenames: tuple[str, ...], dry_run: str, output: str) -> None:
    """Update fields of a resource with a strategic merge, JSON merge or JSON patch.

    \b
      kubelab patch deploy web -p '{"spec":{"replicas":3}}'
      kubelab patch pod/nginx --type=json -p '[{"op":"replace","path":"/spec/containers/0/image","value":"nginx:1.27"}]'
    """
    from api import JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH
    session = Session.current()
    fmt = parse_output(output, _OUTPUTS)
    if (patch_text is None) == (patch_file is None):
        raise CLIError("must specify exactly one of --patch (-p) and --patch-file")
    if patch_file is not None:
        try:
            with open(patch_file, encoding="utf-8") as f:
                patch_text = f.read()
        except OSError as err:
            raise CLIError(f"unable to read patch file {patch_file}: {err.strerror}") from None
    body = parse_patch(patch_text or "")
    content_type = {"strategic": STRATEGIC_MERGE_PATCH, "merge": MERGE_PATCH, "json": JSON_PATCH}[patch_type]
    targets = named_objects(session, args, filenames, "patch")
    results: list[Any] = []

    async def work(cs: Clientset) -> None:
        for kind, namespace, name in targets:
            rc = resource(cs, kind, namespace)
            try:
                before = await rc.get(name)
                if dry_run == "client":
                    after = _local_patch(kind, before, body, patch_type)
                else:
                    after = await rc.patch(name, body, patch_type=content_type, subresource=subresource or "",
                                           dry_run=dry_run == "server")
            except Exception as err:
                if not isinstance(err, CLIError) and not is_status(err):
                    raise
                session.fail(err)
                continue
            results.append(after)
            changed = manifest(after) != manifest(before) if dry_run != "none" else \
                after.metadata.resourceVersion != before.metadata.resourceVersion
            if fmt.name == "name":
                echo(object_name(kind, name))
            elif not fmt.name:
                echo(f"{object_name(kind, name)} patched{'' if changed else ' (no change)'}{dry_run_suffix(dry_run)}")

    session.run(work)
    if fmt.is_document and results:
        echo(render_documents(fmt, [manifest(r) for r in results], len(targets) == 1), nl=False)


def _local_patch(kind: Kind, obj: Any, body: Any, patch_type: str) -> Any:
    """What the server would make of the patch (for --dry-run=client)."""
    from api import from_dict, json_merge_patch, json_patch, strategic_merge
    doc = manifest(obj)
    if patch_type == "merge":
        doc = json_merge_patch(doc, body)
    elif patch_type == "json":
        doc = json_patch(doc, body)
    else:
        doc = strategic_merge(doc, body, descriptor(kind))
    return from_dict(kind.message, {k: v for k, v in doc.items() if k not in ("apiVersion", "kind")},
                     what=f'{kind.kind} in version "{kind.version}" cannot be handled as a {kind.kind}')


@click.command("scale")
@click.argument("args", nargs=-1)
@click.option("--replicas", type=int, default=None, help="The new number of replicas (required).")
@click.option("--current-replicas", type=int, default=None, help="Only scale if the current size is this.")
@click.option("--resource-version", default="", help="Only scale if the object is at this resourceVersion.")
@click.option("-l", "--selector", default="", help="Scale the objects matching this label selector.")
@click.option("--all", "select_all", is_flag=True, help="Scale every object of the given types.")
@click.option("-f", "--filename", "filenames", multiple=True, help="Files naming the objects.")
@dry_run_option("store nothing")
@click.option("-o", "--output", default="", help="yaml|json|name")
@global_options
def scale(args: tuple[str, ...], replicas: int | None, current_replicas: int | None, resource_version: str,
          selector: str, select_all: bool, filenames: tuple[str, ...], dry_run: str, output: str) -> None:
    """Set a new size for a deployment, replica set, stateful set or replication controller.

    \b
      kubelab scale deploy/web --replicas=3
      kubelab scale --current-replicas=2 --replicas=3 deployment/web
    """
    from api import MERGE_PATCH
    session = Session.current()
    fmt = parse_output(output, ("yaml", "json", "name"))
    if replicas is None or replicas < 0:
        raise CLIError("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
    if selector or select_all:
        requests = parse_resource_args(args)
        if any(r.names for r in requests):
            raise CLIError("name cannot be provided when a selector or --all is specified")
        listed: list[tuple[Kind, str, str | None]] = [(r.kind, session.namespace, None) for r in requests]
    else:
        listed = list(named_objects(session, args, filenames, "patch"))
    for kind, _ns, _name in listed:
        if kind.group_resource not in SCALABLE:
            raise CLIError(f"{kind.group_resource} cannot be scaled: scale works on deployments, replicasets, "
                           "statefulsets and replicationcontrollers")
    if resource_version and len(listed) != 1:
        raise CLIError("--resource-version may only be used with a single resource")
    results: list[Any] = []

    async def work(cs: Clientset) -> None:
        for kind, namespace, name in listed:
            rc = resource(cs, kind, namespace)
            objects = [await rc.get(name)] if name else list((await rc.list_all(label_selector=selector)).items)
            for obj in objects:
                try:
                    result = await _scale_one(rc, obj, replicas, current_replicas, resource_version, dry_run,
                                              MERGE_PATCH)
                except Exception as err:
                    if not isinstance(err, CLIError) and not is_status(err):
                        raise
                    session.fail(err)
                    continue
                results.append(result)
                if fmt.name == "name":
                    echo(object_name(kind, obj.metadata.name))
                elif not fmt.name:
                    echo(f"{object_name(kind, obj.metadata.name)} scaled{dry_run_suffix(dry_run)}")

    session.run(work)
    if fmt.is_document and results:
        echo(render_documents(fmt, [manifest(r) for r in results], len(results) == 1), nl=False)


async def _scale_one(rc: Any, obj: Any, replicas: int, current_replicas: int | None, resource_version: str,
                     dry_run: str, merge_patch: str) -> Any:
    current = obj.spec.replicas if obj.spec.HasField("replicas") else 1
    if current_replicas is not None and current_replicas != current:
        raise CLIError(f"Expected replicas to be {current_replicas}, was {current}")
    if resource_version and resource_version != obj.metadata.resourceVersion:
        raise CLIError(f"Expected resource version to be {resource_version}, was {obj.metadata.resourceVersion}")
    body: dict[str, Any] = {"spec": {"replicas": replicas}}
    if current_replicas is not None or resource_version:
        body["metadata"] = {"resourceVersion": obj.metadata.resourceVersion}
    if dry_run == "client":
        result = type(obj)()
        result.CopyFrom(obj)
        result.spec.replicas = replicas
        return result
    return await rc.patch(obj.metadata.name, body, patch_type=merge_patch, dry_run=dry_run == "server")
