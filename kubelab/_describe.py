"""`kubelab describe`: an object in prose, with its events, kubectl's layout.

A description is lines of `Label:\\tvalue` at two-space indentation levels,
aligned by the same tabwriter rules kubectl uses (padding 2), so values
line up within each block. Every description starts with Name,
Namespace, Labels and Annotations and ends with `Events:` - the Events
whose involvedObject is this object, newest last. Kinds with a describer
in _describers.py get their kubectl sections (a Pod's containers,
conditions, volumes, QoS, node selectors and tolerations; a Deployment's
replicas and template; ...); every other kind is described by a generic
describer that renders its fields as an indented tree.

Events are found with the field selector kubectl uses
(`involvedObject.name=...,involvedObject.namespace=...`); a server that
does not support that selector for Events yet gets a plain list of the
namespace's events, filtered here.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from ._apply import LAST_APPLIED
from ._printers import TabWriter
from ._resources import parse_resource_args
from ._session import Session, echo, global_options, is_status, resource

if TYPE_CHECKING:
    from api import Kind
    from client import Clientset

_MAX_ANNOTATION = 140


class Writer:
    """kubectl's prefix writer: `write(level, "Key:\\tvalue")` lines, aligned
    per block by the tabwriter; `flush` starts a new alignment block."""

    def __init__(self) -> None:
        self._pending: list[str] = []
        self._done: list[str] = []

    def write(self, level: int, text: str) -> None:
        self._pending.append("  " * level + text)

    def flush(self) -> None:
        if self._pending:
            self._done.append(TabWriter(minwidth=0, padding=2).format("\n".join(self._pending) + "\n"))
            self._pending = []

    def text(self) -> str:
        self.flush()
        return "".join(self._done)


Describer = Callable[["Clientset", Any, Writer], Awaitable[None]]


def timestamp(value: str) -> str:
    """RFC 1123 in local time, as kubectl's describe shows times."""
    if not value:
        return "<unset>"
    from api import parse_time
    try:
        return datetime.fromtimestamp(parse_time(value)).astimezone().strftime("%a, %d %b %Y %H:%M:%S %z")
    except ValueError:
        return value


def age(value: str) -> str:
    if not value:
        return "<unknown>"
    import time

    from api import human_duration, parse_time
    try:
        return human_duration(time.time() - parse_time(value))
    except ValueError:
        return "<unknown>"


def multiline(w: Writer, title: str, values: Mapping[str, str], sep: str = "=", level: int = 0,
              skip: tuple[str, ...] = ()) -> None:
    """`Labels:  a=b` with further entries on their own lines, or <none>."""
    keys = sorted(k for k in values if k not in skip)
    if not keys:
        w.write(level, f"{title}:\t<none>")
        return
    for i, key in enumerate(keys):
        value = values[key]
        if sep == ": " and len(value) > _MAX_ANNOTATION:
            value = value[:_MAX_ANNOTATION - 3] + "..."
        lines = f"{key}{sep}{value}".split("\n")
        head = f"{title}:\t" if i == 0 else "\t"
        w.write(level, head + lines[0])
        for line in lines[1:]:
            w.write(level, "\t" + line)


def header(w: Writer, obj: Any, kind: Kind) -> None:
    meta = obj.metadata
    w.write(0, f"Name:\t{meta.name}")
    if kind.namespaced:
        w.write(0, f"Namespace:\t{meta.namespace}")
    multiline(w, "Labels", meta.labels)
    multiline(w, "Annotations", meta.annotations, ": ", skip=(LAST_APPLIED,))


def controlled_by(w: Writer, obj: Any) -> None:
    for ref in obj.metadata.ownerReferences:
        if ref.controller:
            w.write(0, f"Controlled By:\t{ref.kind}/{ref.name}")


# ---------------------------------------------------------------- events


async def find_events(cs: Clientset, obj: Any, kind: Kind) -> list[Any]:
    from proto import core_pb2
    meta = obj.metadata
    events = cs.resource(core_pb2.Event, meta.namespace)
    try:
        found = (await events.list_all(field_selector=f"involvedObject.name={meta.name},"
                                                      f"involvedObject.namespace={meta.namespace}")).items
    except Exception as err:
        if not is_status(err, "BadRequest"):
            raise
        found = (await events.list_all()).items  # the selector is not supported: filter here
    mine = [e for e in found
            if e.involvedObject.name == meta.name and e.involvedObject.namespace == meta.namespace
            and (not e.involvedObject.kind or e.involvedObject.kind == kind.kind)
            and (not e.involvedObject.uid or e.involvedObject.uid == meta.uid)]
    return sorted(mine, key=lambda e: e.lastTimestamp or e.eventTime or e.metadata.creationTimestamp)


def write_events(w: Writer, events: list[Any]) -> None:
    if not events:
        w.write(0, "Events:\t<none>")
        return
    w.flush()
    w.write(0, "Events:")
    w.write(1, "Type\tReason\tAge\tFrom\tMessage")
    w.write(1, "----\t------\t----\t----\t-------")
    for e in events:
        first = age(e.eventTime) if e.eventTime else age(e.firstTimestamp or e.metadata.creationTimestamp)
        if e.series.count:
            interval = f"{age(e.series.lastObservedTime)} (x{e.series.count} over {first})"
        elif e.count > 1:
            interval = f"{age(e.lastTimestamp)} (x{e.count} over {first})"
        else:
            interval = first
        source = e.source.component or e.reportingComponent
        if e.source.host:
            source = f"{source}, {e.source.host}" if source else e.source.host
        w.write(1, f"{e.type}\t{e.reason}\t{interval}\t{source}\t{e.message.strip()}")


# ---------------------------------------------------------------- generic


_ACRONYMS = {"api": "API", "uid": "UID", "ip": "IP", "ips": "IPs", "id": "ID", "url": "URL", "cidr": "CIDR",
             "cidrs": "CIDRs", "dns": "DNS", "tls": "TLS", "http": "HTTP", "tcp": "TCP", "udp": "UDP",
             "sctp": "SCTP", "cpu": "CPU", "json": "JSON", "fqdn": "FQDN", "uuid": "UUID", "os": "OS"}


def smart_label(name: str) -> str:
    """"apiVersion" -> "API Version", "uid" -> "UID": kubectl's labels
    for fields it has no describer for."""
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z]|\d|\b|$)|[A-Z]?[a-z]+|[A-Z]+|\d+", name) or [name]
    return " ".join(_ACRONYMS.get(word.lower(), word[:1].upper() + word[1:]) for word in words)


def tree(w: Writer, level: int, content: Mapping[str, Any], skip: tuple[str, ...] = (), path: str = "") -> None:
    for key in sorted(content):
        here = f"{path}.{key}"
        if here in skip:
            continue
        value = content[key]
        if isinstance(value, dict):
            w.write(level, f"{smart_label(key)}:")
            tree(w, level + 1, value, skip, here)
        elif isinstance(value, list):
            w.write(level, f"{smart_label(key)}:")
            for item in value:
                if isinstance(item, dict):
                    tree(w, level + 1, item, skip, here)
                else:
                    w.write(level + 1, _scalar(item))
        else:
            w.write(level, f"{smart_label(key)}:\t{_scalar(value)}")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def describe_generic(cs: Clientset, obj: Any, w: Writer) -> None:
    from api import encode_manifest
    tree(w, 0, encode_manifest(obj), skip=(".metadata.name", ".metadata.namespace", ".metadata.labels",
                                           ".metadata.annotations", ".metadata.managedFields"))


async def describe_configmap(cs: Clientset, cm: Any, w: Writer) -> None:
    w.write(0, "")
    w.write(0, "Data")
    w.write(0, "====")
    for key in sorted(cm.data):
        w.write(0, f"{key}:")
        w.write(0, "----")
        w.write(0, cm.data[key])
        w.write(0, "")
    w.write(0, "")
    w.write(0, "BinaryData")
    w.write(0, "====")
    for key in sorted(cm.binaryData):
        w.write(0, f"{key}: {len(cm.binaryData[key])} bytes")
    w.write(0, "")


async def describe_secret(cs: Clientset, secret: Any, w: Writer) -> None:
    w.write(0, "")
    w.write(0, f"Type:\t{secret.type}")
    w.write(0, "")
    w.write(0, "Data")
    w.write(0, "====")
    for key in sorted(secret.data):
        w.write(0, f"{key}:\t{len(secret.data[key])} bytes")


def describer_for(kind: Kind) -> Describer:
    from . import _describe_pod, _describers
    table: dict[str, Describer] = {
        "configmaps": describe_configmap,
        "secrets": describe_secret,
        "pods": _describe_pod.describe_pod,
        "deployments.apps": _describers.describe_deployment,
        "replicasets.apps": _describers.describe_replicaset,
        "services": _describers.describe_service,
        "nodes": _describers.describe_node,
        "namespaces": _describers.describe_namespace,
    }
    return table.get(kind.group_resource, describe_generic)


async def describe_object(cs: Clientset, kind: Kind, obj: Any) -> str:
    w = Writer()
    if kind.group_resource not in ("pods", "deployments.apps", "replicasets.apps", "nodes", "namespaces"):
        header(w, obj, kind)  # those describers order their header fields themselves
    await describer_for(kind)(cs, obj, w)
    write_events(w, await find_events(cs, obj, kind))
    return w.text()


# ---------------------------------------------------------------- command


@click.command("describe")
@click.argument("args", nargs=-1, required=True)
@click.option("-l", "--selector", default="", help="Describe the objects matching this label selector.")
@click.option("-A", "--all-namespaces", is_flag=True, help="Look in every namespace.")
@global_options
def describe(args: tuple[str, ...], selector: str, all_namespaces: bool) -> None:
    """Show details of a specific resource or group of resources.

    A NAME that matches no object exactly describes every object whose
    name starts with it (`kubelab describe pods web`).
    """
    session = Session.current()
    requests = parse_resource_args(args)
    namespace = "" if all_namespaces else session.namespace

    async def work(cs: Clientset) -> list[str]:
        texts = []
        for request in requests:
            rc = resource(cs, request.kind, namespace)
            if not request.names:
                objects = list((await rc.list_all(label_selector=selector)).items)
                if not objects:
                    where = f" in {namespace} namespace" if namespace and request.kind.namespaced else ""
                    echo(f"No resources found{where}.", err=True)
            else:
                objects = []
                for name in request.names:
                    objects.extend(await _by_name_or_prefix(cs, session, request.kind, namespace, name))
            for obj in objects:
                texts.append(await describe_object(cs, request.kind, obj))
        return texts

    texts = session.run(work)
    if texts:
        echo("\n\n".join(t.rstrip("\n") for t in texts))


async def _by_name_or_prefix(cs: Clientset, session: Session, kind: Kind, namespace: str, name: str) -> list[Any]:
    rc = resource(cs, kind, namespace or session.namespace)
    try:
        return [await rc.get(name)]
    except Exception as err:
        if not is_status(err, "NotFound"):
            raise
        matches = [o for o in (await rc.list_all()).items if o.metadata.name.startswith(name)]
        if not matches:
            session.fail(err)
        return matches
