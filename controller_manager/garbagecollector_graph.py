"""The garbage collector's dependency graph: who owns whom, over every kind.

Every object of every kind (but Events) is a node keyed by its uid, with
edges from each of its ownerReferences to the owner's node. An owner the
informers have not shown yet - perhaps one that was deleted long ago - is
a *virtual* node, built from the reference alone, which the collector then
checks against the API.

The GraphBuilder keeps the graph equal to the informer caches. Informer
handlers only enqueue keys (`<group.resource>|<namespace>/<name>`); its
`sync` reads that object from the cache and reconciles its node: adds or
updates it (diffing ownerReferences against the edges it had), or removes
it when the cache no longer holds it (or holds another object, another
uid, under the name). All graph changes happen in `sync`, which never
awaits, so the graph is only ever seen whole.

What a change means for the collector is decided here and handed to it as
uids to look at (`attempt_to_delete`, `attempt_to_orphan`):

* a new virtual owner: does it exist?
* an object removed: its dependents may have lost their last owner, and a
  foreground-deleting owner may have lost its last blocking dependent;
* an object being deleted with the `orphan` finalizer: orphan its dependents;
* an object being deleted with the `foregroundDeletion` finalizer: its
  dependents go first, and it is checked again as they do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from api import SCHEME, Kind, StatusError, UnknownKindError
from client import Lister, object_key, split_key
from proto import meta_pb2

from ._controller import Controller, ControllerContext
from ._podutil import unwrap

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
#: Kinds the collector does not track (Kubernetes ignores Events too).
IGNORED = frozenset({"events"})


@dataclass(frozen=True)
class Identity:
    """Enough to find an object through the API."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where} ({self.uid})"


@dataclass
class GraphNode:
    identity: Identity
    observed: bool = False
    owners: list[meta_pb2.OwnerReference] = field(default_factory=list)
    dependents: set[str] = field(default_factory=set)
    being_deleted: bool = False
    deleting_dependents: bool = False
    #: For a virtual node: the API said it does not exist.
    absent: bool = False

    def blocks(self, owner_uid: str) -> bool:
        """Whether this node's reference to `owner_uid` blocks the owner's
        foreground deletion."""
        return any(r.uid == owner_uid and r.blockOwnerDeletion for r in self.owners)


def kind_of_reference(ref: meta_pb2.OwnerReference) -> Kind | None:
    try:
        return SCHEME.by_gvk(ref.apiVersion, ref.kind)
    except UnknownKindError:
        return None


def owner_identity(ref: meta_pb2.OwnerReference, dependent_namespace: str) -> Identity:
    """An owner's identity from a reference: same namespace as the
    dependent for a namespaced kind, none for a cluster-scoped one."""
    kind = kind_of_reference(ref)
    namespace = dependent_namespace if kind is None or kind.namespaced else ""
    return Identity(ref.apiVersion, ref.kind, namespace, ref.name, ref.uid)


class Graph:
    def __init__(self) -> None:
        self.nodes: dict[str, GraphNode] = {}

    def get(self, uid: str) -> GraphNode | None:
        return self.nodes.get(uid)

    def __len__(self) -> int:
        return len(self.nodes)


class GraphBuilder(Controller):
    """Keeps `graph` equal to the informer caches of every kind."""

    name = "garbagecollector-graph"
    event_source = "garbage-collector-controller"

    def __init__(self, ctx: ControllerContext, attempt_to_delete: Callable[[str], None],
                 attempt_to_orphan: Callable[[str], None]) -> None:
        super().__init__(ctx)
        self.graph = Graph()
        self.attempt_to_delete = attempt_to_delete
        self.attempt_to_orphan = attempt_to_orphan
        #: group.resource -> (kind, lister)
        self.kinds: dict[str, tuple[Kind, Lister[Any]]] = {}
        #: graph key -> uid of the object observed under that name
        self.names: dict[str, str] = {}
        for kind in SCHEME:
            if kind.resource in IGNORED:
                continue
            informer = ctx.informers.informer_for(kind.message)
            self.kinds[kind.group_resource] = (kind, informer.lister())
            informer.add_event_handler(on_add=self._handler(kind), on_update=self._update_handler(kind),
                                       on_delete=self._handler(kind))

    def _handler(self, kind: Kind) -> Callable[[Any], None]:
        def enqueue(obj: Any) -> None:
            self.queue.add(f"{kind.group_resource}|{object_key(unwrap(obj))}")
        return enqueue

    def _update_handler(self, kind: Kind) -> Callable[[Any, Any], None]:
        def enqueue(_old: Any, new: Any) -> None:
            self.queue.add(f"{kind.group_resource}|{object_key(new)}")
        return enqueue

    def lister_for(self, api_version: str, kind_name: str) -> tuple[Kind, Lister[Any]] | None:
        try:
            kind = SCHEME.by_gvk(api_version, kind_name)
        except UnknownKindError:
            return None
        return self.kinds.get(kind.group_resource)

    def cached(self, identity: Identity) -> Any | None:
        """The informer's object for an identity (same uid), or None."""
        found = self.lister_for(identity.api_version, identity.kind)
        if found is None:
            return None
        try:
            obj = found[1].get(identity.namespace, identity.name)
        except StatusError:
            return None
        return obj if obj.metadata.uid == identity.uid else None

    # ------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        self.process(key)

    def process(self, key: str) -> None:
        """Reconcile the graph with the cache for one object (synchronous:
        the graph never shows a half-made change)."""
        group_resource, _, object_key_ = key.partition("|")
        kind, lister = self.kinds[group_resource]
        namespace, name = split_key(object_key_)
        try:
            obj: Any | None = lister.get(namespace, name)
        except StatusError:
            obj = None
        known = self.names.get(key)
        if known is not None and (obj is None or obj.metadata.uid != known):
            self._remove(known)
            del self.names[key]
        if obj is not None:
            self._upsert(kind, obj, key)

    def _upsert(self, kind: Kind, obj: Any, key: str) -> None:
        meta = obj.metadata
        uid = meta.uid
        identity = Identity(kind.api_version, kind.kind, meta.namespace, meta.name, uid)
        node = self.graph.nodes.get(uid)
        if node is None:
            node = self.graph.nodes[uid] = GraphNode(identity)
        elif not node.observed and node.identity != identity:
            # A virtual owner exists, but not as its dependents' references
            # say (another kind or namespace): they check them again.
            for dep in node.dependents:
                self.attempt_to_delete(dep)
        node.identity = identity
        node.observed = True
        node.absent = False
        self.names[key] = uid

        old_refs = {r.uid: r for r in node.owners}
        new_refs = {r.uid: r for r in meta.ownerReferences}
        for owner_uid, ref in old_refs.items():
            changed = owner_uid not in new_refs or new_refs[owner_uid].blockOwnerDeletion != ref.blockOwnerDeletion
            owner = self.graph.nodes.get(owner_uid)
            if owner is None:
                continue
            if owner_uid not in new_refs:
                owner.dependents.discard(uid)
                self._drop_if_unneeded(owner)
            if changed and owner.deleting_dependents:
                self.attempt_to_delete(owner_uid)
        for owner_uid, ref in new_refs.items():
            if owner_uid in old_refs:
                continue
            owner = self.graph.nodes.get(owner_uid)
            if owner is None:
                owner = self.graph.nodes[owner_uid] = GraphNode(owner_identity(ref, meta.namespace))
                self.attempt_to_delete(owner_uid)  # does this owner exist?
            owner.dependents.add(uid)
            if owner.absent or (owner.observed and owner.deleting_dependents):
                self.attempt_to_delete(uid)
        node.owners = list(meta.ownerReferences)

        was_deleting_dependents = node.deleting_dependents
        node.being_deleted = bool(meta.deletionTimestamp)
        node.deleting_dependents = node.being_deleted and FOREGROUND in meta.finalizers
        if node.being_deleted and ORPHAN in meta.finalizers:
            self.attempt_to_orphan(uid)
        if node.deleting_dependents:
            self.attempt_to_delete(uid)
            if not was_deleting_dependents:
                for dep in node.dependents:
                    self.attempt_to_delete(dep)

    def _remove(self, uid: str) -> None:
        """An observed object is gone: unlink it, and let its dependents
        and waiting owners know."""
        node = self.graph.nodes.get(uid)
        if node is None:
            return
        for ref in node.owners:
            owner = self.graph.nodes.get(ref.uid)
            if owner is None:
                continue
            owner.dependents.discard(uid)
            if owner.deleting_dependents:
                self.attempt_to_delete(ref.uid)
            self._drop_if_unneeded(owner)
        node.owners = []
        if node.dependents:
            # Dependents still point at it: it stays as a known-absent owner.
            node.observed = False
            node.absent = True
            node.being_deleted = node.deleting_dependents = False
            for dep in node.dependents:
                self.attempt_to_delete(dep)
        else:
            del self.graph.nodes[uid]

    def _drop_if_unneeded(self, node: GraphNode) -> None:
        if not node.observed and not node.dependents:
            self.graph.nodes.pop(node.identity.uid, None)

    def forget_virtual(self, uid: str) -> None:
        node = self.graph.nodes.get(uid)
        if node is not None:
            self._drop_if_unneeded(node)
