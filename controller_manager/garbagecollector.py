"""The garbage collector: objects whose owners are gone go too.

An object lists its owners in metadata.ownerReferences (a ReplicaSet's
pods name the ReplicaSet, by uid). Deleting an owner propagates, by the
delete's propagationPolicy, which the apiserver records as a finalizer:

* Background (the default): the owner goes at once; afterwards this
  collector deletes every dependent all of whose owners are gone;
* Foreground (`foregroundDeletion` finalizer): the owner stays, marked
  for deletion, while the collector deletes its dependents; the owner goes
  once none with `blockOwnerDeletion: true` is left;
* Orphan (`orphan` finalizer): the collector removes the owner's
  reference from every dependent, then the finalizer, and the dependents
  stay.

The dependency graph over every kind lives in garbagecollector_graph.py.
This module holds the two work queues that act on it, both keyed by uid:
attempt-to-delete (this controller's own queue) and attempt-to-orphan.

"Gone" means what it means in Kubernetes: no object of that kind and name
with *that uid*. An owner deleted and re-created under the same name is a
different owner, and the dependents of the first are collected. Absence is
always confirmed with the API (a cache may simply not have caught up), and
confirmed absences are remembered. A deletion is irreversible, so before
deleting a dependent the collector reads it afresh from the API and
deletes with its uid and resourceVersion as preconditions: if anything
changed meanwhile the delete fails and the decision is made again.

Dependents that lost their owners while the controller-manager was down
are found at start: the informers' first lists build the graph, every
owner the lists do not show is a virtual node, the API confirms it absent,
and its dependents are collected.

Of several owners, one that exists keeps a dependent alive: references to
the absent ones (and to owners waiting for a foreground deletion) are
removed instead.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any

from api import STRATEGIC_MERGE_PATCH, StatusError
from proto import meta_pb2

from ._controller import Controller, ControllerContext
from .garbagecollector_graph import FOREGROUND, ORPHAN, GraphBuilder, GraphNode, Identity, kind_of_reference

log = logging.getLogger(__name__)

SOLID, WAITING, ABSENT = "solid", "waiting", "absent"
_ABSENT_CACHE = 10_000


def remove_finalizer(finalizer: str) -> dict[str, Any]:
    """A strategic merge patch taking one finalizer out."""
    return {"metadata": {"$deleteFromPrimitiveList/finalizers": [finalizer]}}


def remove_owner_references(uids: list[str]) -> dict[str, Any]:
    """A strategic merge patch taking the references to these owners out."""
    return {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": uid} for uid in uids]}}


class AbsentOwnerCache:
    """uids the API confirmed absent (a uid never comes back), bounded."""

    def __init__(self, size: int = _ABSENT_CACHE) -> None:
        self._uids: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._size = size

    def add(self, uid: str) -> None:
        self._uids[uid] = None
        self._uids.move_to_end(uid)
        while len(self._uids) > self._size:
            self._uids.popitem(last=False)

    def __contains__(self, uid: object) -> bool:
        return uid in self._uids


class GarbageCollector(Controller):
    name = "garbagecollector"
    event_source = "garbage-collector-controller"
    default_workers = 20

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.orphaner = Orphaner(ctx, self)
        self.builder = GraphBuilder(ctx, self.queue.add, self.orphaner.queue.add)
        self.graph = self.builder.graph
        self.absent = AbsentOwnerCache()

    async def run(self, workers: int) -> None:
        await asyncio.gather(super().run(workers), self.builder.run(1), self.orphaner.run(max(1, workers // 4)))

    # ------------------------------------------------------------ the API

    def _client(self, identity: Identity) -> Any:
        kind = kind_of_reference(meta_pb2.OwnerReference(apiVersion=identity.api_version, kind=identity.kind))
        if kind is None:
            return None
        return self.clientset.resource(kind, identity.namespace)

    async def _latest(self, identity: Identity) -> Any | None:
        """The object as the API has it now, if it is still this uid."""
        client = self._client(identity)
        if client is None:
            return None
        try:
            obj = await client.get(identity.name)
        except StatusError as err:
            if err.reason == "NotFound":
                return None
            raise
        return obj if obj.metadata.uid == identity.uid else None

    async def _exists(self, identity: Identity) -> Any | None:
        """The owner if it exists (cache first, then the API); None if it
        is confirmed absent (and remembered as such)."""
        if identity.uid in self.absent:
            return None
        cached = self.builder.cached(identity)
        if cached is not None:
            return cached
        kind = kind_of_reference(meta_pb2.OwnerReference(apiVersion=identity.api_version, kind=identity.kind))
        if kind is None or (kind.namespaced and not identity.namespace):
            self.absent.add(identity.uid)  # no such kind, or a namespaced owner of a cluster-scoped object
            return None
        obj = await self._latest(identity)
        if obj is None:
            self.absent.add(identity.uid)
        return obj

    async def _owner_state(self, ref: meta_pb2.OwnerReference, namespace: str) -> str:
        owner = self.graph.get(ref.uid)
        if owner is not None and owner.observed:
            return WAITING if owner.deleting_dependents else SOLID
        identity = owner.identity if owner is not None else Identity(ref.apiVersion, ref.kind, namespace, ref.name,
                                                                     ref.uid)
        obj = await self._exists(identity)
        if obj is None:
            return ABSENT
        meta = obj.metadata
        return WAITING if meta.deletionTimestamp and FOREGROUND in meta.finalizers else SOLID

    async def patch_metadata(self, identity: Identity, patch: dict[str, Any]) -> None:
        client = self._client(identity)
        if client is None:
            return
        patch.setdefault("metadata", {})["uid"] = identity.uid  # refused (Invalid) if the name was re-used
        try:
            await client.patch(identity.name, patch, patch_type=STRATEGIC_MERGE_PATCH)
        except StatusError as err:
            if err.reason not in ("NotFound", "Invalid"):
                raise

    # ------------------------------------------------------------ attempt to delete

    async def sync(self, key: str) -> None:
        node = self.graph.get(key)
        if node is None:
            return
        if not node.observed:
            await self._check_virtual(node)
        elif node.deleting_dependents:
            await self._process_deleting_dependents(node)
        elif node.owners and not node.being_deleted:
            await self._attempt_to_delete(node)

    async def _check_virtual(self, node: GraphNode) -> None:
        """An owner only known from references: if the API confirms it
        absent, its dependents are looked at."""
        if node.absent:
            for dep in list(node.dependents):
                self.queue.add(dep)
            self.builder.forget_virtual(node.identity.uid)
            return
        if await self._exists(node.identity) is not None:
            return  # it exists: the informer will show it
        node.absent = True
        log.info("garbagecollector: owner %s is absent; checking its %d dependents", node.identity,
                 len(node.dependents))
        for dep in list(node.dependents):
            self.queue.add(dep)
        self.builder.forget_virtual(node.identity.uid)

    async def _process_deleting_dependents(self, owner: GraphNode) -> None:
        """Foreground: the owner goes when no blocking dependent is left."""
        blocking = [self.graph.get(d) for d in owner.dependents]
        blocking_nodes = [d for d in blocking if d is not None and d.observed and d.blocks(owner.identity.uid)]
        if not blocking_nodes:
            log.info("garbagecollector: %s has no blocking dependents left: removing %s", owner.identity,
                     FOREGROUND)
            await self.patch_metadata(owner.identity, remove_finalizer(FOREGROUND))
            return
        for dep in blocking_nodes:
            if not dep.being_deleted:
                self.queue.add(dep.identity.uid)

    async def _attempt_to_delete(self, node: GraphNode) -> None:
        latest = await self._latest(node.identity)
        if latest is None:
            return  # gone or replaced: the graph builder will hear of it
        meta = latest.metadata
        if meta.deletionTimestamp and FOREGROUND not in meta.finalizers:
            return
        refs = list(meta.ownerReferences)
        if not refs:
            return
        states = [(ref, await self._owner_state(ref, meta.namespace)) for ref in refs]
        solid = [r for r, s in states if s == SOLID]
        dangling = [r for r, s in states if s == ABSENT]
        waiting = [r for r, s in states if s == WAITING]
        if solid:
            if dangling or waiting:
                gone = dangling + waiting
                log.info("garbagecollector: %s keeps owners %s; dropping references to %s", node.identity,
                         [r.name for r in solid], [r.name for r in gone])
                await self.patch_metadata(node.identity, remove_owner_references([r.uid for r in gone]))
            return
        if waiting and node.dependents:
            policy = "Foreground"  # the owner waits for this one's dependents too
        elif ORPHAN in meta.finalizers:
            policy = "Orphan"
        elif FOREGROUND in meta.finalizers:
            policy = "Foreground"
        else:
            policy = "Background"
        log.info("garbagecollector: deleting %s (owners %s; propagation %s)", node.identity,
                 ", ".join(f"{r.kind}/{r.name}" for r in refs), policy)
        client = self._client(node.identity)
        try:
            await client.delete(node.identity.name, propagation=policy, uid=node.identity.uid,
                                resource_version=meta.resourceVersion)
        except StatusError as err:
            if err.reason != "NotFound":
                raise  # a Conflict: it changed since it was read; decide again


class Orphaner(Controller):
    """Orphan propagation: remove the owner's reference from each
    dependent, then the owner's `orphan` finalizer."""

    name = "garbagecollector-orphan"
    event_source = "garbage-collector-controller"

    def __init__(self, ctx: ControllerContext, gc: GarbageCollector) -> None:
        super().__init__(ctx)
        self.gc = gc

    async def sync(self, key: str) -> None:
        node = self.gc.graph.get(key)
        if node is None or not node.observed:
            return
        owner = self.gc.builder.cached(node.identity)
        if owner is None or not owner.metadata.deletionTimestamp or ORPHAN not in owner.metadata.finalizers:
            return
        for dep_uid in sorted(node.dependents):
            dep = self.gc.graph.get(dep_uid)
            if dep is None or not dep.observed:
                continue
            await self.gc.patch_metadata(dep.identity, remove_owner_references([key]))
        log.info("garbagecollector: orphaned the %d dependents of %s", len(node.dependents), node.identity)
        await self.gc.patch_metadata(node.identity, remove_finalizer(ORPHAN))
