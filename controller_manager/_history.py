"""ControllerRevisions: the template history of DaemonSets and StatefulSets.

Kubernetes keeps every pod template a DaemonSet or StatefulSet has had as a
ControllerRevision object (apps/v1): `data` holds the template as a patch
(`{"spec": {"template": {..., "$patch": "replace"}}}`), `revision` orders
them, and the name is `<owner>-<hash of the template>`. Pods are labelled
`controller-revision-hash` with their revision, which is how a controller
tells an updated pod from an old one, and how `rollout undo` finds the
template to go back to.

`Histories.sync` returns the revisions of an owner with the one matching
its current template (the "update revision") created if it does not exist
yet, or re-numbered as the newest if it does (a rollback to an old
template re-uses its revision, as in Kubernetes). A hash collision (a
revision of that name with different data) raises `HashCollision`: the
caller bumps status.collisionCount, which salts the hash, and tries again.
`truncate` deletes the oldest revisions no pod uses beyond
revisionHistoryLimit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message

from api import SCHEME, Kind, Selector, StatusError, from_dict, to_dict
from client import Clientset, Lister
from proto import apps_pb2, core_pb2

from ._owner import claim, compute_hash, controller_ref, new_controller_ref

HASH_LABEL = "controller-revision-hash"
ControllerRevision = apps_pb2.ControllerRevision
REVISION_KIND = SCHEME.for_message(ControllerRevision)

class HashCollision(Exception):
    """A revision with this template's name holds another template."""


def revision_data(template: core_pb2.PodTemplateSpec) -> struct_pb2.Struct:
    patch = to_dict(template)
    patch["$patch"] = "replace"
    data = struct_pb2.Struct()
    data.update({"spec": {"template": patch}})
    return data


def _integral(value: Any) -> Any:
    """Struct keeps numbers as doubles; the pod template wants its ints back."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def template_of(revision: ControllerRevision) -> core_pb2.PodTemplateSpec:
    """The pod template a revision recorded."""
    data = _integral(json_format.MessageToDict(revision.data))
    template = dict(data.get("spec", {}).get("template", {}))
    template.pop("$patch", None)
    return from_dict(core_pb2.PodTemplateSpec, template, what="ControllerRevision data")


def same_data(a: struct_pb2.Struct, b: struct_pb2.Struct) -> bool:
    return a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)


class Histories:
    def __init__(self, clientset: Clientset, revisions: Lister[ControllerRevision]) -> None:
        self.clientset = clientset
        self.revisions = revisions

    async def sync(self, owner: Message, kind: Kind, selector: Selector, template: core_pb2.PodTemplateSpec,
                   collision_count: int | None, recheck: Callable[[], Awaitable[None]],
                   ) -> tuple[list[ControllerRevision], ControllerRevision]:
        """(every revision of `owner`, oldest first; the update revision)."""
        meta = owner.metadata  # type: ignore[attr-defined]
        client = self.clientset.resource(ControllerRevision, meta.namespace)
        candidates = [r for r in self.revisions.list(meta.namespace)
                      if controller_ref(r) is None or controller_ref(r).uid == meta.uid]  # type: ignore[union-attr]
        revisions = await claim(owner, kind, selector, candidates, client, recheck)
        revisions.sort(key=lambda r: (r.revision, r.metadata.name))
        data = revision_data(template)
        newest = revisions[-1].revision if revisions else 0
        equal = [r for r in revisions if same_data(r.data, data)]
        if equal:
            update = equal[-1]
            if update.revision != newest:  # back to an older template: it becomes the newest
                bumped = ControllerRevision()
                bumped.CopyFrom(update)
                bumped.revision = newest + 1
                update = await client.update(bumped)
                revisions = [r for r in revisions if r.metadata.uid != update.metadata.uid] + [update]
            return revisions, update
        digest = compute_hash(template, collision_count)
        revision = ControllerRevision(data=data, revision=newest + 1)
        revision.metadata.name = f"{meta.name}-{digest}"
        revision.metadata.namespace = meta.namespace
        revision.metadata.labels.update(template.metadata.labels)
        revision.metadata.labels[HASH_LABEL] = digest
        revision.metadata.ownerReferences.append(new_controller_ref(owner, kind))
        try:
            created = await client.create(revision)
        except StatusError as err:
            if err.reason != "AlreadyExists":
                raise
            existing = await client.get(revision.metadata.name)
            ref = controller_ref(existing)
            if ref is not None and ref.uid == meta.uid and same_data(existing.data, data):
                return [*revisions, existing], existing  # our cache was behind
            raise HashCollision(revision.metadata.name) from None
        return [*revisions, created], created

    async def truncate(self, owner: Message, revisions: list[ControllerRevision], live: set[str],
                       limit: int) -> None:
        """Delete the oldest revisions not in `live` (names) beyond `limit`."""
        old = [r for r in revisions if r.metadata.name not in live]
        excess = len(old) - limit
        if excess <= 0:
            return
        client = self.clientset.resource(ControllerRevision, owner.metadata.namespace)  # type: ignore[attr-defined]
        for r in sorted(old, key=lambda r: r.revision)[:excess]:
            try:
                await client.delete(r.metadata.name, uid=r.metadata.uid)
            except StatusError as err:
                if err.reason not in ("NotFound", "Conflict"):
                    raise
