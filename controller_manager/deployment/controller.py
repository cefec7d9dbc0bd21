"""The Deployment controller's shell: informers, event handlers, and the
`sync(key)` that decides which concern handles a Deployment now.

A sync takes a copy of the cached Deployment, claims its ReplicaSets
(adopting orphans its selector matches, releasing those it no longer
matches), and then:

* deleted (deletionTimestamp): only status is kept up to date;
* paused: scale only (sync.py), no rollout; the Progressing condition
  says "DeploymentPaused" (progress.py);
* a rollback asked for through the `deprecated.deployment.rollback.to`
  annotation: rollback.py;
* the Deployment was scaled (a ReplicaSet's desired-replicas annotation
  disagrees with spec.replicas): scale, spreading proportionally (sync.py);
* otherwise roll out by strategy: rolling.py or recreate.py.

Handlers map everything back to Deployment keys: a ReplicaSet to the
Deployment its controller reference names (an orphan to every Deployment
whose selector matches it, so one can adopt it), and, for Recreate, a
deleted pod to the Deployment that waits for its old pods to be gone.
"""

from __future__ import annotations

import logging

from api import SCHEME, SelectorError, StatusError, selector_from_message
from client import DeletedFinalStateUnknown, ResourceClient, object_key, split_key
from proto import apps_pb2, core_pb2

from .._controller import Controller, ControllerContext
from .._expectations import OwnWrites
from .._owner import add_controller_uid_index, controller_ref, resolve_controller_ref
from .._podutil import unwrap
from . import progress, recreate, rollback, rolling, sync

log = logging.getLogger(__name__)

Deployment = apps_pb2.Deployment
ReplicaSet = apps_pb2.ReplicaSet


class DeploymentController(Controller):
    name = "deployment"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.kind = SCHEME.for_message(Deployment)
        self.rs_kind = SCHEME.for_message(ReplicaSet)
        deployments = ctx.informers.informer_for(Deployment)
        replica_sets = ctx.informers.informer_for(ReplicaSet)
        pods = ctx.informers.informer_for(core_pb2.Pod)
        add_controller_uid_index(replica_sets)
        add_controller_uid_index(pods)
        self.deployments = deployments.lister()
        self.replica_sets = replica_sets.lister()
        self.pods = pods.lister()
        #: Our latest writes to Deployments and ReplicaSets, by key.
        self.own_writes = OwnWrites()
        deployments.add_event_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new),
                                      on_delete=self._deployment_deleted)
        replica_sets.add_event_handler(on_add=self._rs_added, on_update=self._rs_updated,
                                       on_delete=self._rs_deleted)
        pods.add_event_handler(on_delete=self._pod_deleted)

    # ------------------------------------------------------------ clients

    def deployment_client(self, namespace: str) -> ResourceClient[Deployment]:
        return self.clientset.resource(Deployment, namespace)

    def rs_client(self, namespace: str) -> ResourceClient[ReplicaSet]:
        return self.clientset.resource(ReplicaSet, namespace)

    async def update_status(self, d: Deployment) -> None:
        """Write d.status (and, if it changed, the revision annotation); `d`
        takes the new resourceVersion, so the same sync can write again.

        `d` keeps the spec and generation it was read with, even if the
        stored object has moved on meanwhile: the rest of the sync acts on
        that spec, and the status must not claim a generation it did not
        act on (observedGeneration is d's generation).

        As in Kubernetes, the revision annotation goes through /status with
        the status: the Deployment's status strategy keeps annotations."""
        client = self.deployment_client(d.metadata.namespace)
        stored = await client.update_status(d)
        d.metadata.resourceVersion = stored.metadata.resourceVersion
        self.wrote(stored)

    def wrote(self, obj: Deployment | ReplicaSet) -> None:
        """Remember a write, so that a sync from a cache without it stops early."""
        self.own_writes.wrote(_write_key(obj), obj.metadata.resourceVersion)

    def behind(self, obj: Deployment | ReplicaSet) -> bool:
        """Whether the cache holds an older `obj` than we last wrote."""
        return self.own_writes.stale(_write_key(obj), obj.metadata.resourceVersion)

    # ------------------------------------------------------------ events

    def _deployment_for(self, rs: ReplicaSet) -> Deployment | None:
        return resolve_controller_ref(self.deployments, self.kind, rs.metadata.namespace, controller_ref(rs))

    def _deployments_selecting(self, rs: ReplicaSet) -> list[Deployment]:
        out = []
        for d in self.deployments.list(rs.metadata.namespace):
            try:
                sel = selector_from_message(d.spec.selector)
            except SelectorError:
                continue
            if not sel.empty() and sel.matches(rs.metadata.labels):
                out.append(d)
        return out

    def _rs_added(self, rs: ReplicaSet) -> None:
        if rs.metadata.deletionTimestamp:
            self._rs_deleted(rs)
            return
        if controller_ref(rs) is not None:
            d = self._deployment_for(rs)
            if d is not None:
                self.enqueue(d)
            return
        for d in self._deployments_selecting(rs):
            self.enqueue(d)

    def _rs_updated(self, old: ReplicaSet, new: ReplicaSet) -> None:
        if old.metadata.resourceVersion == new.metadata.resourceVersion:
            return
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        if old_ref is not None and (new_ref is None or old_ref.uid != new_ref.uid):
            previous = self._deployment_for(old)
            if previous is not None:
                self.enqueue(previous)
        if new_ref is not None:
            d = self._deployment_for(new)
            if d is not None:
                self.enqueue(d)
            return
        if old.metadata.labels != new.metadata.labels or old_ref is not None:
            for d in self._deployments_selecting(new):
                self.enqueue(d)

    def _deployment_deleted(self, obj: Deployment | DeletedFinalStateUnknown[Deployment]) -> None:
        self.own_writes.forget(_write_key(obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj))
        self.enqueue(obj)

    def _rs_deleted(self, obj: ReplicaSet | DeletedFinalStateUnknown[ReplicaSet]) -> None:
        rs = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        self.own_writes.forget(_write_key(rs))
        d = self._deployment_for(rs)
        if d is not None:
            self.enqueue(d)

    def _pod_deleted(self, obj: core_pb2.Pod | DeletedFinalStateUnknown[core_pb2.Pod]) -> None:
        # Only Recreate waits for pods: its new ReplicaSet starts when the
        # last old pod is gone.
        pod = unwrap(obj)
        rs = resolve_controller_ref(self.replica_sets, self.rs_kind, pod.metadata.namespace, controller_ref(pod))
        d = self._deployment_for(rs) if rs is not None else None
        if d is not None and d.spec.strategy.type == "Recreate":
            self.enqueue(d)

    # ------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        try:
            cached = self.deployments.get(namespace, name)
        except StatusError as err:
            if err.reason == "NotFound":
                return
            raise
        if self.behind(cached):
            return  # the cache has not seen our last write yet; its event brings us back
        d = Deployment()
        d.CopyFrom(cached)
        selector = d.spec.selector
        if not selector.matchLabels and not selector.matchExpressions:
            self.recorder.event(d, "Warning", "SelectingAll",
                                "This deployment is selecting all pods. A non-empty selector is required.")
            if d.status.observedGeneration < d.metadata.generation:
                d.status.observedGeneration = d.metadata.generation
                await self.update_status(d)
            return
        rs_list = await sync.replica_sets_for(self, d)
        if any(self.behind(rs) for rs in rs_list):
            return  # likewise for a ReplicaSet we just scaled
        if d.metadata.deletionTimestamp:
            await sync.sync_status_only(self, d, rs_list)
            return
        await progress.check_paused_conditions(self, d)
        if d.spec.paused:
            await sync.sync_paused_or_scaled(self, d, rs_list)
            return
        if rollback.rollback_to(d) is not None:
            await rollback.rollback(self, d, rs_list)
            return
        if await sync.is_scaling_event(self, d, rs_list):
            await sync.sync_paused_or_scaled(self, d, rs_list)
            return
        if d.spec.strategy.type == "Recreate":
            await recreate.rollout_recreate(self, d, rs_list)
        else:
            await rolling.rollout_rolling(self, d, rs_list)


def _write_key(obj: Deployment | ReplicaSet) -> str:
    """Deployments and ReplicaSets may share names: keys say which."""
    return f"{type(obj).__name__}:{object_key(obj)}"
