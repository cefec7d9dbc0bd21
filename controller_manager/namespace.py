"""The namespace controller: a deleted namespace is emptied, then removed.

Deleting a namespace only marks it: the apiserver sets its
deletionTimestamp and phase Terminating, refuses new content in it, and
keeps it while `spec.finalizers` holds "kubernetes". This controller does
the rest, for a namespace key whose namespace is being deleted:

1. delete every object of every namespaced kind in it (Background
   propagation, pods gracefully), each with its uid as a precondition;
2. list again: if anything remains (pods still shutting down, objects
   held by finalizers), record what in the namespace's conditions
   (NamespaceContentRemaining, NamespaceFinalizersRemaining) and look again
   later - after the longest remaining pod grace period, or a few seconds;
3. once nothing is left, remove "kubernetes" from spec.finalizers through
   the `finalize` subresource; the apiserver then removes the namespace
   (unless other finalizers still hold it).

Unlike other controllers this one reads the namespace's content from the
API, not from informer caches, as Kubernetes' does: it must see every kind,
and "is it empty?" has to be answered by the server, not by a cache that
may lag. Events are deleted too, last, since controllers keep reporting on
what is being deleted.
"""

from __future__ import annotations

import logging
from typing import Any

from api import SCHEME, Kind, StatusError, parse_time, rfc3339
from client import ResourceClient
from proto import core_pb2

from ._controller import Controller, ControllerContext

log = logging.getLogger(__name__)

FINALIZER = "kubernetes"
#: How long to wait before looking again at content that is not gone yet.
RECHECK_SECONDS = 2.0
MAX_RECHECK_SECONDS = 30.0

Namespace = core_pb2.Namespace


def namespaced_kinds() -> list[Kind]:
    kinds = [k for k in SCHEME if k.namespaced]
    return sorted(kinds, key=lambda k: (k.resource == "events", k.group, k.resource))


class NamespaceController(Controller):
    name = "namespace"
    default_workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        namespaces = ctx.informers.informer_for(Namespace)
        self.namespaces = namespaces.lister()
        namespaces.add_event_handler(on_add=self._maybe_enqueue,
                                     on_update=lambda _old, new: self._maybe_enqueue(new))
        self.kinds = namespaced_kinds()

    def _maybe_enqueue(self, ns: Namespace) -> None:
        if ns.metadata.deletionTimestamp:
            self.enqueue(ns)

    async def sync(self, key: str) -> None:
        try:
            ns = self.namespaces.get("", key)
        except StatusError as err:
            if err.reason == "NotFound":
                return
            raise
        if not ns.metadata.deletionTimestamp:
            return
        if FINALIZER not in ns.spec.finalizers:
            return  # emptied already; other finalizers are someone else's
        await self._delete_content(key)
        remaining = await self._remaining(key)
        ns = await self._set_conditions(ns, remaining)
        if remaining:
            self.queue.add_after(key, self._recheck_after(remaining))
            return
        new = Namespace()
        new.CopyFrom(ns)
        kept = [f for f in new.spec.finalizers if f != FINALIZER]
        del new.spec.finalizers[:]
        new.spec.finalizers.extend(kept)
        try:
            await self.clientset.resource(Namespace).finalize(new)
        except StatusError as err:
            if err.reason != "NotFound":
                raise
            return  # finalized and gone already
        log.info("namespace %s is empty: finalized", key)

    async def _delete_content(self, namespace: str) -> None:
        for kind in self.kinds:
            client: ResourceClient[Any] = self.clientset.resource(kind, namespace)
            for obj in (await client.list_all()).items:
                meta = obj.metadata  # type: ignore[attr-defined]
                if meta.deletionTimestamp:
                    continue
                try:
                    await client.delete(meta.name, uid=meta.uid, propagation="Background")
                except StatusError as err:
                    if err.reason not in ("NotFound", "Conflict"):
                        raise

    async def _remaining(self, namespace: str) -> dict[Kind, list[Any]]:
        out: dict[Kind, list[Any]] = {}
        for kind in self.kinds:
            items: list[Any] = (await self.clientset.resource(kind, namespace).list_all()).items
            if items:
                out[kind] = items
        return out

    def _recheck_after(self, remaining: dict[Kind, list[Any]]) -> float:
        """Until the last remaining pod's grace period ends, or a short wait."""
        now = self.clock.now()
        wait = RECHECK_SECONDS
        for obj in remaining.get(SCHEME.for_message(core_pb2.Pod), []):
            if obj.metadata.deletionTimestamp:
                wait = max(wait, parse_time(obj.metadata.deletionTimestamp) - now + 1)
        return min(wait, MAX_RECHECK_SECONDS)

    async def _set_conditions(self, ns: Namespace, remaining: dict[Kind, list[Any]]) -> Namespace:
        """Say what is left in the namespace's conditions; the namespace as stored after."""
        content = ", ".join(f"{k.group_resource} has {len(items)} resource instances"
                            for k, items in sorted(remaining.items(), key=lambda kv: kv[0].group_resource))
        finalizers: dict[str, int] = {}
        for items in remaining.values():
            for obj in items:
                for f in obj.metadata.finalizers:
                    finalizers[f] = finalizers.get(f, 0) + 1
        held = ", ".join(f"{f} in {n} resource instances" for f, n in sorted(finalizers.items()))
        wanted = {
            "NamespaceContentRemaining": ("True", "SomeResourcesRemain", f"Some resources are remaining: {content}")
            if content else ("False", "ContentRemoved", "All content successfully removed"),
            "NamespaceFinalizersRemaining": ("True", "SomeFinalizersRemain",
                                             f"Some content in the namespace has finalizers remaining: {held}")
            if held else ("False", "ContentHasNoFinalizers", "All content-preserving finalizers finished"),
        }
        have = {c.type: (c.status, c.reason, c.message) for c in ns.status.conditions}
        if all(have.get(t) == v for t, v in wanted.items()):
            return ns
        new = Namespace()
        new.CopyFrom(ns)
        now = rfc3339(self.clock.now())
        kept = [c for c in new.status.conditions if c.type not in wanted]
        for kind, (status, reason, message) in wanted.items():
            old = next((c for c in ns.status.conditions if c.type == kind), None)
            since = old.lastTransitionTime if old is not None and old.status == status else now
            kept.append(core_pb2.NamespaceCondition(type=kind, status=status, reason=reason, message=message,
                                                    lastTransitionTime=since))
        del new.status.conditions[:]
        new.status.conditions.extend(kept)
        try:
            return await self.clientset.resource(Namespace).update_status(new)
        except StatusError as err:
            if err.reason not in ("NotFound", "Conflict"):
                raise
            return ns
