"""What makes one kind different from another, as hooks the generic store calls.

Kubernetes gives every resource a "strategy" (pkg/registry/<group>/<kind>/
strategy.go): how to default it, what to reset on create, what to carry over
on update, how to validate it, which fields selectors may use, how long a
graceful delete waits, and how to print it. `Strategy` is that interface with
the behaviour most kinds share; each kind's module overrides what differs.
The generic store (apiserver/_store.py) never asks which kind it holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from google.protobuf.message import Message

from api import (
    FieldError,
    Kind,
    human_duration,
    invalid,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name,
    parse_time,
    required,
    rfc3339,
)

_MAX_ANNOTATIONS_BYTES = 256 * 1024


@dataclass(frozen=True)
class Column:
    """One printer column: `kubelab get` shows priority 0, `-o wide` adds 1."""

    name: str
    cell: Callable[[Any, float], str]
    priority: int = 0
    type: str = "string"


def age(obj: Any, now: float) -> str:
    ts = obj.metadata.creationTimestamp
    if not ts:
        return "<unknown>"
    return human_duration(now - parse_time(ts))


NAME = Column("Name", lambda o, now: o.metadata.name)
AGE = Column("Age", age)


@dataclass
class Reservation:
    """Side keys a write takes or frees in the same etcd transaction (a
    Service's ClusterIP and node ports)."""

    creates: dict[str, bytes] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    #: For values the user asked for: the error to give if the key is taken.
    explain: dict[str, FieldError] = field(default_factory=dict)


class Strategy:
    kind: Kind
    #: Field selectors this kind supports beyond metadata.name/namespace.
    selectable_fields: ClassVar[tuple[str, ...]] = ()
    #: Whether an update of a missing object creates it (Endpoints, Lease).
    allow_create_on_update: ClassVar[bool] = False
    #: Whether status is reset on create (false: the creator may set it).
    reset_status_on_create: ClassVar[bool] = True
    #: Whether writes take side keys in etcd (see `reserve`).
    reserves_side_keys: ClassVar[bool] = False
    #: Subresources beyond status (a namespace's "finalize", a pod's "binding").
    subresources: ClassVar[tuple[str, ...]] = ()
    columns: ClassVar[Sequence[Column]] = (NAME, AGE)

    def __init__(self, kind: Kind) -> None:
        self.kind = kind

    # ------------------------------------------------------------ names

    def validate_name(self, name: str) -> list[str]:
        return is_dns1123_subdomain(name)

    # ------------------------------------------------------------ create

    def prepare_for_create(self, obj: Any, now: float) -> None:
        meta = obj.metadata
        meta.uid = str(uuid.uuid4())
        meta.creationTimestamp = rfc3339(now)
        meta.ClearField("deletionTimestamp")
        meta.ClearField("deletionGracePeriodSeconds")
        meta.ClearField("selfLink")
        meta.generation = 1 if self.kind.has_spec else 0
        if self.kind.has_status and self.reset_status_on_create:
            obj.ClearField("status")

    def default(self, obj: Any) -> None:
        """Fill the fields Kubernetes defaults (called on create and update)."""

    def validate(self, obj: Any) -> list[FieldError]:
        return []

    # ------------------------------------------------------------ update

    def prepare_for_update(self, obj: Any, old: Any) -> None:
        """An update through the main resource: status is the stored one."""
        if self.kind.has_status:
            obj.status.CopyFrom(old.status)
            if not old.HasField("status"):
                obj.ClearField("status")
        if self.kind.has_spec and _spec_changed(obj, old):
            obj.metadata.generation = old.metadata.generation + 1
        else:
            obj.metadata.generation = old.metadata.generation

    def prepare_for_status_update(self, obj: Any, old: Any) -> None:
        """An update through /status: everything but status is the stored one."""
        status = type(obj.status)()
        status.CopyFrom(obj.status)
        had_status = obj.HasField("status")
        obj.CopyFrom(old)
        if had_status:
            obj.status.CopyFrom(status)
        else:
            obj.ClearField("status")

    def validate_update(self, obj: Any, old: Any) -> list[FieldError]:
        return self.validate(obj)

    def validate_status_update(self, obj: Any, old: Any) -> list[FieldError]:
        return []

    def prepare_for_subresource_update(self, subresource: str, obj: Any, old: Any) -> None:
        """An update through one of `subresources`: keep only what it may change."""
        raise NotImplementedError(f"{self.kind.kind} declares subresource {subresource!r} but does not handle it")

    def validate_subresource_update(self, subresource: str, obj: Any, old: Any) -> list[FieldError]:
        return []

    # ------------------------------------------------------------ delete

    def graceful_delete_seconds(self, obj: Any, requested: int | None) -> int:
        """How long a delete waits before the object goes (pods: the grace
        period the kubelet honours). 0 removes it at once."""
        return 0

    def mark_deleting(self, obj: Any) -> None:
        """Called when an object is marked for deletion rather than removed."""

    def blocks_deletion(self, obj: Any) -> bool:
        """Kind-specific reasons to keep a deleted object for now, beyond
        metadata.finalizers (a namespace's spec.finalizers)."""
        return False

    # ------------------------------------------------------------ side keys

    async def reserve(self, obj: Any, old: Any | None, dry_run: bool) -> Reservation:
        return Reservation()

    def release(self, obj: Any) -> list[str]:
        return []

    def taken(self, key: str) -> None:
        """A side key this strategy picked was taken by a concurrent write."""

    # ------------------------------------------------------------ selection

    def attrs(self, obj: Any) -> tuple[Mapping[str, str], dict[str, str]]:
        meta = obj.metadata
        fields = {"metadata.name": meta.name, "metadata.namespace": meta.namespace}
        fields.update(self.fields(obj))
        # A plain dict: the protobuf map would keep the whole decoded object alive.
        return dict(meta.labels), fields

    def fields(self, obj: Any) -> dict[str, str]:
        return {}

    # ------------------------------------------------------------ printing

    def rows(self, obj: Any, now: float) -> list[str]:
        return [c.cell(obj, now) for c in self.columns]


def _spec_changed(obj: Message, old: Message) -> bool:
    return obj.spec.SerializeToString(deterministic=True) != old.spec.SerializeToString(deterministic=True)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- metadata

def validate_labels(labels: Mapping[str, str], path: str) -> list[FieldError]:
    errs = []
    for key, value in labels.items():
        for msg in is_qualified_name(key):
            errs.append(invalid(path, key, msg))
        for msg in is_label_value(value):
            errs.append(invalid(f"{path}", value, msg))
    return errs


def validate_annotations(annotations: Mapping[str, str], path: str) -> list[FieldError]:
    errs = []
    total = 0
    for key, value in annotations.items():
        for msg in is_qualified_name(key.lower()):
            errs.append(invalid(path, key, msg))
        total += len(key) + len(value)
    if total > _MAX_ANNOTATIONS_BYTES:
        errs.append(FieldError("FieldValueTooLong", path, None,
                               f"may not be more than {_MAX_ANNOTATIONS_BYTES} bytes"))
    return errs


def validate_object_meta(obj: Any, strategy: Strategy) -> list[FieldError]:
    meta = obj.metadata
    errs: list[FieldError] = []
    if not meta.name:
        errs.append(required("metadata.name", "name or generateName is required"))
    else:
        for msg in strategy.validate_name(meta.name):
            errs.append(invalid("metadata.name", meta.name, msg))
    if strategy.kind.namespaced:
        if not meta.namespace:
            errs.append(required("metadata.namespace"))
        else:
            for msg in is_dns1123_label(meta.namespace):
                errs.append(invalid("metadata.namespace", meta.namespace, msg))
    errs += validate_labels(meta.labels, "metadata.labels")
    errs += validate_annotations(meta.annotations, "metadata.annotations")
    seen_controller = False
    for i, ref in enumerate(meta.ownerReferences):
        path = f"metadata.ownerReferences[{i}]"
        if not ref.apiVersion:
            errs.append(invalid(f"{path}.apiVersion", ref.apiVersion, "version must not be empty"))
        if not ref.kind:
            errs.append(invalid(f"{path}.kind", ref.kind, "kind must not be empty"))
        if not ref.name:
            errs.append(invalid(f"{path}.name", ref.name, "name must not be empty"))
        if not ref.uid:
            errs.append(invalid(f"{path}.uid", ref.uid, "uid must not be empty"))
        if ref.controller:
            if seen_controller:
                errs.append(invalid("metadata.ownerReferences", [r.name for r in meta.ownerReferences],
                                    "Only one reference can have Controller set to true"))
            seen_controller = True
    for i, fin in enumerate(meta.finalizers):
        for msg in is_qualified_name(fin):
            errs.append(invalid(f"metadata.finalizers[{i}]", fin, msg))
    if meta.generation < 0:
        errs.append(invalid("metadata.generation", meta.generation, "must be greater than or equal to 0"))
    return errs


def validate_object_meta_update(obj: Any, old: Any) -> list[FieldError]:
    meta, was = obj.metadata, old.metadata
    errs = []
    for name in ("name", "namespace", "uid", "creationTimestamp"):
        if getattr(meta, name) != getattr(was, name):
            errs.append(invalid(f"metadata.{name}", getattr(meta, name), "field is immutable"))
    return errs


def carry_system_fields(obj: Any, old: Any) -> None:
    """What an update may leave empty and the server fills from the stored
    object, as Kubernetes' BeforeUpdate does."""
    meta, was = obj.metadata, old.metadata
    if not meta.uid:
        meta.uid = was.uid
    if not meta.creationTimestamp:
        meta.creationTimestamp = was.creationTimestamp
    meta.deletionTimestamp = was.deletionTimestamp
    if was.HasField("deletionGracePeriodSeconds"):
        meta.deletionGracePeriodSeconds = was.deletionGracePeriodSeconds
    else:
        meta.ClearField("deletionGracePeriodSeconds")
    meta.ClearField("selfLink")
