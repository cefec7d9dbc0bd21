"""ownerReferences: which controller an object belongs to, and how a
controller claims the objects its selector matches.

Every object a workload controller makes (a ReplicaSet's pods, a
Deployment's ReplicaSets) carries one ownerReference with
`controller: true` naming its owner by uid. That reference, not the labels,
decides ownership: a pod whose labels still match but whose reference names
another owner is left alone. The labels decide only two things, as in
Kubernetes' ControllerRefManager (`claim`):

* an orphan (no controller reference) that the selector matches is
  adopted: a strategic merge patch adds our reference;
* an object we own that the selector no longer matches is released: a
  patch deletes our reference, and it becomes an orphan for someone else.

Both patches carry the object's uid as a precondition (`metadata.uid` in the
patch): if the object was deleted and re-created under the same name, the
apiserver refuses the patch as Invalid instead of changing the wrong
object. Adoption first re-reads the owner from the API (once per claim),
so a controller that was just deleted, or replaced by one of the same name,
never adopts anything.

Also here, because every pod-making controller needs them: the
`controller-uid` index (owned objects filed under their owner's uid,
orphans under their namespace, so a sync touches only its own objects and
the orphans it might adopt), building a pod from a template, and the
pod-template-hash that names a Deployment's ReplicaSets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from google.protobuf.message import Message

from api import STRATEGIC_MERGE_PATCH, Kind, Selector, StatusError, conflict
from client import Informer, Lister, ResourceClient
from proto import core_pb2, meta_pb2

log = logging.getLogger(__name__)

T = TypeVar("T", bound=Message)

POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
CONTROLLER_UID_INDEX = "controller-uid"


# ---------------------------------------------------------------- references


def controller_ref(obj: Message) -> meta_pb2.OwnerReference | None:
    """The ownerReference with controller=true, if any."""
    for ref in obj.metadata.ownerReferences:  # type: ignore[attr-defined]
        if ref.controller:
            return ref  # type: ignore[no-any-return]
    return None


def new_controller_ref(owner: Message, kind: Kind) -> meta_pb2.OwnerReference:
    """The reference a controller puts on what it makes: controller=true,
    and blockOwnerDeletion so a foreground delete of the owner waits."""
    meta = owner.metadata  # type: ignore[attr-defined]
    return meta_pb2.OwnerReference(apiVersion=kind.api_version, kind=kind.kind, name=meta.name, uid=meta.uid,
                                   controller=True, blockOwnerDeletion=True)


def resolve_controller_ref(lister: Lister[T], kind: Kind, namespace: str,
                           ref: meta_pb2.OwnerReference | None) -> T | None:
    """The cached owner a controller reference names, or None if it names
    another kind, or an owner the cache does not hold with that uid (a
    reference to a deleted owner that was re-created under its name)."""
    if ref is None or ref.kind != kind.kind:
        return None
    try:
        owner = lister.get(namespace, ref.name)
    except StatusError:
        return None
    return owner if owner.metadata.uid == ref.uid else None  # type: ignore[attr-defined]


# ---------------------------------------------------------------- the index


def orphan_index_key(namespace: str) -> str:
    return f"orphan/{namespace}"


def controller_uid_index(obj: Any) -> list[str]:
    ref = controller_ref(obj)
    return [ref.uid] if ref is not None else [orphan_index_key(obj.metadata.namespace)]


def add_controller_uid_index(informer: Informer[Any]) -> None:
    """Add the `controller-uid` index to a shared informer (several
    controllers ask for it on the same Pod or ReplicaSet informer)."""
    try:
        informer.add_indexers({CONTROLLER_UID_INDEX: controller_uid_index})
    except ValueError:
        pass  # another controller added it first


def owned_and_orphans(lister: Lister[T], namespace: str, owner_uid: str) -> list[T]:
    """The cached objects a controller may claim: its own and the orphans
    of its namespace (needs the `controller-uid` index)."""
    return lister.by_index(CONTROLLER_UID_INDEX, owner_uid) + \
        lister.by_index(CONTROLLER_UID_INDEX, orphan_index_key(namespace))


# ---------------------------------------------------------------- adopt / release


def adopt_patch(obj: Message, ref: meta_pb2.OwnerReference) -> dict[str, Any]:
    return {"metadata": {"ownerReferences": [{
        "apiVersion": ref.apiVersion, "kind": ref.kind, "name": ref.name, "uid": ref.uid,
        "controller": True, "blockOwnerDeletion": True}], "uid": obj.metadata.uid}}  # type: ignore[attr-defined]


def release_patch(obj: Message, owner_uid: str) -> dict[str, Any]:
    return {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
                         "uid": obj.metadata.uid}}  # type: ignore[attr-defined]


async def claim(owner: Message, owner_kind: Kind, selector: Selector, candidates: Iterable[T],
                client: ResourceClient[T], recheck: Callable[[], Awaitable[None]] | None = None) -> list[T]:
    """The candidates `owner` controls once adoption and release are done.

    `candidates` are cached objects of the owner's namespace; `client`
    writes their kind. `recheck` is called once before the first adoption
    and raises if the owner may not adopt (see `recheck_owner`). Every
    candidate is handled even if some patches fail; the first failure is
    raised at the end (the sync is then retried)."""
    meta = owner.metadata  # type: ignore[attr-defined]
    ref = new_controller_ref(owner, owner_kind)
    claimed: list[T] = []
    to_adopt: list[T] = []
    to_release: list[T] = []
    for obj in candidates:
        obj_meta = obj.metadata  # type: ignore[attr-defined]
        current = controller_ref(obj)
        if current is not None:
            if current.uid != meta.uid:
                continue  # someone else's
            if selector.matches(obj_meta.labels):
                claimed.append(obj)
            elif not meta.deletionTimestamp:
                to_release.append(obj)
            continue
        if meta.deletionTimestamp or obj_meta.deletionTimestamp or obj_meta.namespace != meta.namespace \
                or not selector.matches(obj_meta.labels):
            continue
        to_adopt.append(obj)

    errors: list[Exception] = []
    if to_adopt and recheck is not None:
        try:
            await recheck()
        except StatusError as refused:
            errors.append(refused)
            to_adopt = []

    async def adopt(obj: T) -> None:
        try:
            await client.patch(obj.metadata.name, adopt_patch(obj, ref),  # type: ignore[attr-defined]
                               patch_type=STRATEGIC_MERGE_PATCH)
        except StatusError as err:
            if err.reason != "NotFound":  # gone: nothing to adopt
                raise
            return
        claimed.append(obj)

    async def release(obj: T) -> None:
        try:
            await client.patch(obj.metadata.name, release_patch(obj, meta.uid),  # type: ignore[attr-defined]
                               patch_type=STRATEGIC_MERGE_PATCH)
        except StatusError as err:
            # NotFound: gone. Invalid: re-created under the name (the uid
            # precondition failed), so not ours to release.
            if err.reason not in ("NotFound", "Invalid"):
                raise

    results = await asyncio.gather(*(adopt(o) for o in to_adopt), *(release(o) for o in to_release),
                                   return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            errors.append(result)
        elif isinstance(result, BaseException):
            raise result
    if errors:
        raise errors[0]
    return claimed


def recheck_owner(owner: Message, client: ResourceClient[Any]) -> Callable[[], Awaitable[None]]:
    """The check `claim` makes before adopting: a fresh read (not the
    cache) must show the same owner, not being deleted."""
    meta = owner.metadata  # type: ignore[attr-defined]

    async def check() -> None:
        fresh = await client.get(meta.name)
        if fresh.metadata.uid != meta.uid:
            raise conflict(client.kind.resource, client.kind.group, meta.name,
                           f"original {client.kind.kind} {meta.namespace}/{meta.name} is gone: got uid "
                           f"{fresh.metadata.uid}, wanted {meta.uid}")
        if fresh.metadata.deletionTimestamp:
            raise conflict(client.kind.resource, client.kind.group, meta.name,
                           f"{client.kind.kind} {meta.namespace}/{meta.name} has just been deleted at "
                           f"{fresh.metadata.deletionTimestamp}")
    return check


# ---------------------------------------------------------------- pods from templates


def pod_from_template(template: core_pb2.PodTemplateSpec, owner: Message,
                      ref: meta_pb2.OwnerReference | None) -> core_pb2.Pod:
    """A new pod as a controller creates it: generateName `<owner>-`, the
    template's labels, annotations, finalizers and spec, and the owner's
    controller reference."""
    meta = owner.metadata  # type: ignore[attr-defined]
    pod = core_pb2.Pod()
    pod.metadata.generateName = f"{meta.name}-"
    pod.metadata.namespace = meta.namespace
    pod.metadata.labels.update(template.metadata.labels)
    pod.metadata.annotations.update(template.metadata.annotations)
    pod.metadata.finalizers.extend(template.metadata.finalizers)
    if ref is not None:
        pod.metadata.ownerReferences.append(ref)
    pod.spec.CopyFrom(template.spec)
    return pod


# ---------------------------------------------------------------- pod-template-hash

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # no vowels (no words), no 0/1/3 (no look-alikes)


def _fnv32a(data: bytes, h: int = 0x811C9DC5) -> int:
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def compute_hash(template: core_pb2.PodTemplateSpec, collision_count: int | None = None) -> str:
    """The pod-template-hash of a template: FNV-1a (32 bits) of its
    deterministic encoding, salted with the collision count when there is
    one (a Deployment bumps status.collisionCount when the name a hash gives
    is taken by a ReplicaSet with a different template), written in an
    alphabet that cannot spell words. Stable across processes and restarts.

    The template must be the Deployment's, without the hash label."""
    h = _fnv32a(template.SerializeToString(deterministic=True))
    if collision_count is not None:
        h = _fnv32a(collision_count.to_bytes(4, "little"), h)
    return "".join(_SAFE_ALPHABET[b % len(_SAFE_ALPHABET)] for b in str(h).encode())


def template_without_hash(template: core_pb2.PodTemplateSpec) -> core_pb2.PodTemplateSpec:
    copy = core_pb2.PodTemplateSpec()
    copy.CopyFrom(template)
    copy.metadata.labels.pop(POD_TEMPLATE_HASH_LABEL, None)
    return copy


def equal_ignore_hash(a: core_pb2.PodTemplateSpec, b: core_pb2.PodTemplateSpec) -> bool:
    """Whether two templates differ at most in their pod-template-hash label."""
    return template_without_hash(a) == template_without_hash(b)
