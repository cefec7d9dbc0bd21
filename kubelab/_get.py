"""`kubelab get`: list, fetch and watch objects, printed as kubectl prints them.

The server owns the columns: rows come from the ConvertToTable call, so a
kind's READY or STATUS column reads the same here as in any other client.
This module adds only what kubectl adds on the client side: the NAMESPACE
column for -A, the kind prefix (`pod/nginx`) when several kinds are shown,
LABELS and -L columns, wide columns, sorting, and the other printers
(yaml, json, name, jsonpath, custom-columns).

A watch (-w, --watch-only) lists first and then watches from the list's
resourceVersion, so no change between the two is missed; it prints one row
per event as it arrives and ends when the server ends the stream, when
--request-timeout passes, or on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import click

from ._printers import (
    OutputFormat,
    TabWriter,
    custom_column_rows,
    format_table,
    kind_name,
    manifest,
    object_name,
    parse_custom_columns,
    parse_output,
    render_documents,
    table_writer,
)
from ._resources import (
    ResourceRequest,
    manifest_kind,
    parse_resource_args,
    read_manifests,
    several_kinds,
    target_namespace,
)
from ._session import CLIError, Session, echo, global_options, is_status, resource

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from api import Kind
    from client import Clientset


@dataclass
class Target:
    """One kind to fetch: named objects (with their namespaces) or a list."""

    kind: Kind
    names: list[tuple[str, str]] = field(default_factory=list)  # (namespace, name)
    objects: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class TableOptions:
    fmt: OutputFormat
    all_namespaces: bool = False
    with_kind: bool = False
    show_labels: bool = False
    label_columns: tuple[str, ...] = ()
    no_headers: bool = False
    watch_events: bool = False


@click.command("get")
@click.argument("args", nargs=-1)
@click.option("-f", "--filename", "filenames", multiple=True, help="Files or directories naming the objects.")
@click.option("-R", "--recursive", is_flag=True, help="Read directories given with -f recursively.")
@click.option("-A", "--all-namespaces", is_flag=True, help="List across all namespaces.")
@click.option("-l", "--selector", default="", help="Label selector, e.g. -l app=web,tier!=db.")
@click.option("--field-selector", default="", help="Field selector, e.g. --field-selector status.phase=Running.")
@click.option("-o", "--output", default="",
              help="wide|yaml|json|name|jsonpath=...|jsonpath-as-json=...|custom-columns=...")
@click.option("--show-labels", is_flag=True, help="Add a LABELS column.")
@click.option("-L", "--label-columns", multiple=True, help="Add a column with the value of these label keys.")
@click.option("--no-headers", is_flag=True, help="Leave out the header line.")
@click.option("--sort-by", default="", help="Sort by a JSONPath expression, e.g. .metadata.name.")
@click.option("-w", "--watch", is_flag=True, help="After listing, watch for changes.")
@click.option("--watch-only", is_flag=True, help="Watch for changes without listing first.")
@click.option("--output-watch-events", is_flag=True, help="Show the event type (ADDED, MODIFIED, DELETED).")
@click.option("--ignore-not-found", is_flag=True, help="Say nothing about named objects that do not exist.")
@click.option("--show-kind", is_flag=True, help="Prefix names with their kind.")
@click.option("--chunk-size", default=500, show_default=True, help="List in pages of this many objects.")
@global_options
def get(args: tuple[str, ...], filenames: tuple[str, ...], recursive: bool, all_namespaces: bool, selector: str,
        field_selector: str, output: str, show_labels: bool, label_columns: tuple[str, ...], no_headers: bool,
        sort_by: str, watch: bool, watch_only: bool, output_watch_events: bool, ignore_not_found: bool,
        show_kind: bool, chunk_size: int) -> None:
    """Display one or many resources.

    \b
      kubelab get pods
      kubelab get po,svc -A -o wide
      kubelab get deploy/web -o yaml
      kubelab get pods -o jsonpath='{range .items[*]}{.metadata.name}{"\\n"}{end}'
    """
    session = Session.current()
    fmt = parse_output(output)
    targets, single, prefixed = _targets(session, args, filenames, recursive, all_namespaces)
    if any(t.names for t in targets) and selector:
        raise CLIError("selector (-l) may not be specified when specifying a resource name")
    if all_namespaces and args and any(t.names for t in targets):
        raise CLIError("a resource cannot be retrieved by name across all namespaces")
    namespace = "" if all_namespaces else session.namespace
    options = TableOptions(fmt, all_namespaces, prefixed or show_kind, show_labels,
                           tuple(c for v in label_columns for c in v.split(",") if c), no_headers,
                           output_watch_events)
    if watch or watch_only:
        if len(targets) != 1:
            raise CLIError(f"watch is only supported on individual resources and resource collections, but "
                           f"{len(targets)} resources were found")
        _watch(session, targets[0], namespace, selector, field_selector, options, watch_only)
        return

    async def work(cs: Clientset) -> str:
        for target in targets:
            await _fetch(cs, session, target, namespace, selector, field_selector, chunk_size, ignore_not_found)
            if sort_by:
                target.objects = sort_objects(target.objects, sort_by)
        return await _render(cs, targets, options, single)

    text = session.run(work)
    if text:
        echo(text, nl=False)
    elif not fmt.is_document and not session.failures and not any(t.names for t in targets):
        scoped = any(t.kind.namespaced for t in targets) and not all_namespaces
        echo(f"No resources found in {namespace} namespace." if scoped else "No resources found", err=True)


def _targets(session: Session, args: Sequence[str], filenames: Sequence[str], recursive: bool,
             all_namespaces: bool) -> tuple[list[Target], bool, bool]:
    """What to fetch, whether the user named exactly one object, and
    whether names need their kind in front."""
    if filenames:
        if args:
            raise CLIError("resource arguments may not be given with -f; the files name the objects")
        targets: list[Target] = []
        manifests = read_manifests(filenames, recursive, verb="get")
        for m in manifests:
            kind = manifest_kind(m)
            ns = target_namespace(kind, m.namespace, session.namespace, session.namespace_explicit)
            if not targets or targets[-1].kind != kind:
                targets.append(Target(kind))
            targets[-1].names.append((ns, m.name))
        return targets, len(manifests) == 1, len({t.kind for t in targets}) > 1
    if not args:
        raise CLIError('You must specify the type of resource to get. Use "kubelab api-resources" for a complete '
                       'list of supported resources.')
    requests: list[ResourceRequest] = parse_resource_args(args)
    namespace = "" if all_namespaces else session.namespace
    targets = [Target(r.kind, [(namespace, n) for n in r.names]) for r in requests]
    single = len(targets) == 1 and len(targets[0].names) == 1
    return targets, single, several_kinds(args, requests)


async def _fetch(cs: Clientset, session: Session, target: Target, namespace: str, selector: str,
                 field_selector: str, chunk_size: int, ignore_not_found: bool) -> None:
    if target.names:
        for ns, name in target.names:
            try:
                target.objects.append(await resource(cs, target.kind, ns or session.namespace).get(name))
            except Exception as err:
                if is_status(err, "NotFound") and ignore_not_found:
                    continue
                if not is_status(err):
                    raise
                session.fail(err)
        return
    listing = await resource(cs, target.kind, namespace).list_all(label_selector=selector,
                                                                 field_selector=field_selector, page=chunk_size)
    target.objects = list(listing.items)


# ---------------------------------------------------------------- printing


async def _render(cs: Clientset, targets: list[Target], options: TableOptions, single: bool) -> str:
    fmt = options.fmt
    objects = [(t.kind, o) for t in targets for o in t.objects]
    if fmt.name == "name":
        return "".join(object_name(k, o.metadata.name) + "\n" for k, o in objects)
    if fmt.is_document:
        if single and not objects:
            return ""
        return render_documents(fmt, [manifest(o) for _, o in objects], single)
    tables = []
    for target in targets:
        if target.objects:
            headers, rows = await table_rows(cs, target.kind, target.objects, options)
            tables.append(format_table(None if options.no_headers else headers, rows, table_writer()))
    return "\n".join(tables)


async def table_rows(cs: Clientset, kind: Kind, objects: list[Any], options: TableOptions,
                     events: Sequence[str] = ()) -> tuple[list[str], list[list[str]]]:
    """The header and rows for objects of one kind, kubectl's way."""
    fmt = options.fmt
    if fmt.name.startswith("custom-columns"):
        columns = parse_custom_columns(fmt.arg)
        headers = [c.header for c in columns]
        rows = custom_column_rows(columns, [manifest(o) for o in objects])
    else:
        table = await cs.convert_to_table(objects)
        keep = [i for i, d in enumerate(table.columnDefinitions) if d.priority == 0 or fmt.name == "wide"]
        headers = [table.columnDefinitions[i].name.upper() for i in keep]
        rows = [[row.cells[i] if i < len(row.cells) else "" for i in keep] for row in table.rows]
        if options.with_kind and "NAME" in headers:
            at = headers.index("NAME")
            prefix = kind_name(kind) + "/"
            for row in rows:
                row[at] = prefix + row[at]
        if options.all_namespaces and kind.namespaced:
            headers.insert(0, "NAMESPACE")
            for row, obj in zip(rows, objects, strict=True):
                row.insert(0, obj.metadata.namespace)
        for key in options.label_columns:
            headers.append(key.rsplit("/", 1)[-1].upper())
            for row, obj in zip(rows, objects, strict=True):
                row.append(obj.metadata.labels.get(key, ""))
        if options.show_labels:
            from api import format_labels
            headers.append("LABELS")
            for row, obj in zip(rows, objects, strict=True):
                row.append(format_labels(obj.metadata.labels))
    if events:
        headers.insert(0, "EVENT")
        for row, event in zip(rows, events, strict=True):
            row.insert(0, event)
    return headers, rows


def sort_objects(objects: list[Any], expr: str) -> list[Any]:
    """--sort-by: numbers and quantities by value, the rest as text,
    objects without the field first."""
    from ._jsonpath import Template, relaxed
    template = Template(relaxed(expr))

    def key(obj: Any) -> tuple[int, Any]:
        values = template.values(manifest(obj))
        value = values[0] if values else None
        if value is None:
            return (0, 0)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (1, Decimal(value))
        if isinstance(value, str):
            number = _quantity(value)
            if number is not None:
                return (1, number)
            return (2, value)
        return (2, str(value))
    return sorted(objects, key=key)


def _quantity(text: str) -> Decimal | None:
    if not text or not (text[0].isdigit() or text[0] in "+-."):
        return None
    from api import QuantityError, parse_quantity
    try:
        return Decimal(parse_quantity(text).milli_value()) / 1000
    except (QuantityError, InvalidOperation, ValueError):
        return None


# ---------------------------------------------------------------- watch


def _watch(session: Session, target: Target, namespace: str, selector: str, field_selector: str,
           options: TableOptions, watch_only: bool) -> None:
    fields = field_selector
    ns = namespace
    if target.names:
        if len(target.names) > 1:
            raise CLIError("watch is only supported on individual resources and resource collections, but "
                           f"{len(target.names)} resources were found")
        ns, name = target.names[0]
        fields = ",".join(f for f in (f"metadata.name={name}", field_selector) if f)
    timeout = session.request_timeout
    writer = table_writer()
    state = {"headers": False}

    async def work(cs: Clientset) -> None:
        rc = resource(cs, target.kind, ns)
        listing = await rc.list_all(label_selector=selector, field_selector=fields)
        if not watch_only and listing.items:
            await _emit(cs, target.kind, list(listing.items), ["ADDED"] * len(listing.items), options, writer,
                        state)
        elif not watch_only:
            scoped = target.kind.namespaced and ns
            echo(f"No resources found in {ns} namespace." if scoped else "No resources found", err=True)
        with contextlib.suppress(TimeoutError):
            async with _deadline(timeout):
                async for event in rc.watch(resource_version=listing.resource_version, label_selector=selector,
                                            field_selector=fields):
                    if event.type != "BOOKMARK":
                        await _emit(cs, target.kind, [event.object], [event.type], options, writer, state)

    session.run(work, bounded=False)


@contextlib.asynccontextmanager
async def _deadline(seconds: float | None) -> AsyncIterator[None]:
    if seconds:
        async with asyncio.timeout(seconds):
            yield
    else:
        yield


async def _emit(cs: Clientset, kind: Kind, objects: list[Message], events: list[str], options: TableOptions,
                writer: TabWriter, state: dict[str, bool]) -> None:
    fmt = options.fmt
    if fmt.name == "name":
        for obj in objects:
            echo(object_name(kind, obj.metadata.name))  # type: ignore[attr-defined]
        return
    if fmt.is_document:
        for obj, event in zip(objects, events, strict=True):
            doc = manifest(obj)
            if options.watch_events:
                doc = {"object": doc, "type": event}
            if fmt.name == "yaml":
                echo("---")
            echo(render_documents(fmt, [doc], True), nl=False)
        return
    headers, rows = await table_rows(cs, kind, objects, options, events if options.watch_events else ())
    show_headers = not state["headers"] and not options.no_headers
    state["headers"] = True
    echo(format_table(headers if show_headers else None, rows, writer), nl=False)
