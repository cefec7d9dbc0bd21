"""`kubelab apply -f`: declarative create-or-update, kubectl's client-side way.

Each object's manifest is kept on the object itself, in the
`kubectl.kubernetes.io/last-applied-configuration` annotation. The next
apply compares three versions: what was applied last time (the
annotation), what is applied now (the file) and what is live (the server's
object, with its defaults and whatever controllers and other users set).
The strategic merge patch from api.three_way_patch changes only what the
user changed between the two applies: a field removed from the file is
removed from the object, while a field the user never set (a defaulted
`imagePullPolicy`, a `replicas` an autoscaler manages) is left alone.

Manifests are decoded strictly before anything is sent (unknown fields
are errors naming their path) and normalised through the codec, so "0.5"
in a file and "500m" on the server are the same quantity and do not show
up as a change. Objects are applied one by one; a failure is reported
and the rest still go, as with kubectl.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from ._printers import manifest, object_name, parse_output, render_documents
from ._resources import Manifest, manifest_kind, read_manifests, target_namespace
from ._session import CLIError, Session, descriptor, echo, global_options, is_status, resource, warn, when

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from api import Kind
    from client import Clientset

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def dry_run_option(what: str = "store nothing") -> Any:
    """kubectl's --dry-run: none, client (print only) or server (the server
    checks everything, stores nothing); a bare --dry-run means client."""
    return click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none",
                        is_flag=False, flag_value="client", show_default=True, help=f"client|server: {what}.")


def dry_run_suffix(dry_run: str) -> str:
    return {"client": " (dry run)", "server": " (server dry run)"}.get(dry_run, "")


def decode_object(m: Manifest, session: Session) -> tuple[Kind, Message]:
    """The manifest as a message, in the namespace it is bound for. Raises
    CLIError for what kubectl refuses before sending, StatusError
    (BadRequest) for what the strict decoder refuses."""
    from api import decode_manifest
    kind = manifest_kind(m)
    namespace = target_namespace(kind, m.namespace, session.namespace, session.namespace_explicit)
    obj = decode_manifest(m.doc)
    if kind.namespaced:
        obj.metadata.namespace = namespace  # type: ignore[attr-defined]
    else:
        obj.metadata.ClearField("namespace")  # type: ignore[attr-defined]
    return kind, obj


def last_applied(desired: dict[str, Any]) -> str:
    """The annotation's value: the applied manifest without the annotation
    itself, as compact JSON (what kubectl writes)."""
    body = json.loads(json.dumps(desired))
    annotations = body.get("metadata", {}).get("annotations", {})
    annotations.pop(LAST_APPLIED, None)
    if not annotations:
        body.get("metadata", {}).pop("annotations", None)
    return json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n"


def with_last_applied(desired: dict[str, Any]) -> dict[str, Any]:
    """`desired` carrying its own last-applied annotation: the "modified"
    side of the three-way patch."""
    out = json.loads(json.dumps(desired))
    out.setdefault("metadata", {}).setdefault("annotations", {})[LAST_APPLIED] = last_applied(desired)
    return out


def apply_patch(kind: Kind, live: Message, desired: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The strategic merge patch that applies `desired` to `live`, and
    whether `live` had a last-applied annotation to diff against."""
    from api import three_way_patch
    annotation = live.metadata.annotations.get(LAST_APPLIED)  # type: ignore[attr-defined]
    original: dict[str, Any] = {}
    if annotation:
        try:
            original = json.loads(annotation)
        except ValueError:
            original = {}
    current = manifest(live)
    modified = with_last_applied(desired)
    patch = three_way_patch(original, modified, current, descriptor(kind))
    for key in ("apiVersion", "kind"):
        patch.pop(key, None)
    return patch, bool(annotation)


@click.command("apply")
@click.option("-f", "--filename", "filenames", multiple=True, required=True,
              help="Files, directories or - (stdin) holding the manifests.")
@click.option("-R", "--recursive", is_flag=True, help="Read directories given with -f recursively.")
@dry_run_option("print only, or let the server check without storing")
@click.option("-o", "--output", default="", help="yaml|json|name|jsonpath=...")
@global_options
def apply(filenames: tuple[str, ...], recursive: bool, dry_run: str, output: str) -> None:
    """Apply a configuration to a resource by file name or stdin.

    \b
      kubelab apply -f deploy.yaml
      kubelab apply -f manifests/ -R
      cat pod.json | kubelab apply -f -
    """
    session = Session.current()
    fmt = parse_output(output, ("yaml", "json", "name", "jsonpath", "jsonpath-as-json", "jsonpath-file"))
    manifests = read_manifests(filenames, recursive, verb="apply")
    results: list[Message] = []

    async def work(cs: Clientset) -> None:
        for m in manifests:
            try:
                result, outcome = await _apply_one(cs, session, m, dry_run)
            except Exception as err:
                if not isinstance(err, CLIError) and not is_status(err):
                    raise
                session.fail(err, getattr(err, "kubelab_context", ""))
                continue
            results.append(result)
            kind = manifest_kind(m)
            if not fmt.name:
                echo(f"{object_name(kind, result.metadata.name)} {outcome}{dry_run_suffix(dry_run)}")  # type: ignore[attr-defined]
            elif fmt.name == "name":
                echo(object_name(kind, result.metadata.name))  # type: ignore[attr-defined]

    session.run(work)
    if fmt.is_document and results:
        echo(render_documents(fmt, [manifest(r) for r in results], len(manifests) == 1), nl=False)


async def _apply_one(cs: Clientset, session: Session, m: Manifest, dry_run: str) -> tuple[Message, str]:
    from api import STRATEGIC_MERGE_PATCH, decode_manifest, from_dict, strategic_merge
    kind = manifest_kind(m)
    if not m.name:
        raise CLIError(f'error when retrieving current configuration of "{m.source}": '
                       "resource name may not be empty (apply needs metadata.name; generateName is for create)")
    namespace = target_namespace(kind, m.namespace, session.namespace, session.namespace_explicit)
    rc = resource(cs, kind, namespace)
    try:
        live = await rc.get(m.name)
    except Exception as err:
        if not is_status(err, "NotFound"):
            _tag(err, "retrieving current configuration of", m.source)
            raise
        live = None
    verb = "creating" if live is None else "patching"
    try:
        _kind, obj = decode_object(m, session)
        desired = manifest(obj)
        if live is None:
            new = decode_manifest(with_last_applied(desired))
            if dry_run == "client":
                return new, "created"
            return await rc.create(new, dry_run=dry_run == "server"), "created"
        patch, had_annotation = apply_patch(kind, live, desired)
        if not had_annotation:
            warn(f"resource {kind.resource}/{m.name} is missing the {LAST_APPLIED} annotation which is required by "
                 "kubelab apply. kubelab apply should only be used on resources created declaratively by either "
                 "kubelab create --save-config or kubelab apply. The missing annotation will be patched "
                 "automatically.")
        if not patch:
            return live, "unchanged"
        if dry_run == "client":
            merged = strategic_merge(manifest(live), patch, descriptor(kind))
            body = {k: v for k, v in merged.items() if k not in ("apiVersion", "kind")}
            return from_dict(kind.message, body), "configured"
        return await rc.patch(m.name, patch, patch_type=STRATEGIC_MERGE_PATCH, dry_run=dry_run == "server"), \
            "configured"
    except Exception as err:
        _tag(err, verb, m.source)
        raise


def _tag(err: BaseException, verb: str, source: str) -> None:
    """Remember which file and step a failure belongs to, for its message."""
    if not hasattr(err, "kubelab_context"):
        err.kubelab_context = when(verb, source)  # type: ignore[attr-defined]
