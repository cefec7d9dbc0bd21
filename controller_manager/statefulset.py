"""The StatefulSet controller: pods with stable names, in order.

Keys are StatefulSets; a pod maps to the set that controls it (an orphan
named like a member to every set whose selector matches it); a
ControllerRevision maps to its owner. A sync:

1. Records the template as a ControllerRevision (_history.py). The
   "update revision" is the current template; the "current revision" is
   what status.currentRevision says the pods ran before the update began.
2. Claims the pods named `<set>-<ordinal>` its selector matches, and
   splits them into the replicas (ordinals start .. start+replicas-1) and
   the condemned (the rest).
3. Walks the replicas in ordinal order: a failed or succeeded pod is
   deleted (to be recreated), a missing pod is created after its claims
   (_stateful_identity.py), a member's identity labels are repaired. With
   OrderedReady, the walk stops at the first pod that is not Running and
   available: pod N is created only once 0..N-1 run and are ready.
   Parallel creates them all at once.
4. Scales down from the highest ordinal: with OrderedReady one pod at a
   time, each only once the pod before it is gone and the others are
   healthy; Parallel deletes all condemned pods at once.
5. RollingUpdate: from the highest ordinal down to the partition, deletes
   the first pod not at the update revision (the walk recreates it from
   the new template) and waits until it is healthy again before the next.
   Ordinals below the partition are recreated from the current revision.
   OnDelete leaves pods alone; those deleted by someone come back new.
6. Writes the status; when every pod is updated and ready, the update
   revision becomes the current one. Old revisions beyond
   revisionHistoryLimit that no pod uses are deleted.

Names are deterministic, so no expectations are needed: creating a pod
that exists already is an AlreadyExists, never a duplicate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from api import STRATEGIC_MERGE_PATCH, Selector, SelectorError, StatusError, selector_from_message
from client import EVENT_TYPE_NORMAL, EVENT_TYPE_WARNING, DeletedFinalStateUnknown, split_key
from proto import apps_pb2, core_pb2

from ._conditions import write_status
from ._controller import Controller, ControllerContext
from ._history import HASH_LABEL, ControllerRevision, HashCollision, Histories, template_of
from ._owner import add_controller_uid_index, claim, controller_ref, owned_and_orphans, recheck_owner
from ._podutil import is_pod_available, is_pod_ready, unwrap
from ._stateful_identity import (
    POD_INDEX_LABEL,
    POD_NAME_LABEL,
    STATEFULSET_KIND,
    claim_name,
    identity_labels_match,
    new_claims,
    new_pod,
    ordinal_of,
    pod_owner_reference,
)

log = logging.getLogger(__name__)

StatefulSet = apps_pb2.StatefulSet
Pod = core_pb2.Pod
Claim = core_pb2.PersistentVolumeClaim


@dataclass
class _Slots:
    replicas: dict[int, Pod] = field(default_factory=dict)  # ordinal -> existing pod
    condemned: list[tuple[int, Pod]] = field(default_factory=list)


def _revision_of(pod: Pod) -> str:
    return pod.metadata.labels.get(HASH_LABEL, "")


def _terminating(pod: Pod) -> bool:
    return bool(pod.metadata.deletionTimestamp)


class StatefulSetController(Controller):
    name = "statefulset"
    default_workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        sets = ctx.informers.informer_for(StatefulSet)
        pods = ctx.informers.informer_for(Pod)
        revisions = ctx.informers.informer_for(ControllerRevision)
        self.sets = sets.lister()
        self.pods = pods.lister()
        self.claims = ctx.informers.lister_for(Claim)
        self.histories = Histories(self.clientset, revisions.lister())
        add_controller_uid_index(pods)
        add_controller_uid_index(revisions)
        sets.add_event_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new),
                               on_delete=self.enqueue)
        pods.add_event_handler(on_add=self._pod_changed, on_update=self._pod_updated, on_delete=self._pod_changed)
        revisions.add_event_handler(on_add=self._revision_changed,
                                    on_update=lambda _old, new: self._revision_changed(new),
                                    on_delete=self._revision_changed)

    # ------------------------------------------------------------ handlers

    def _pod_changed(self, pod: Pod | DeletedFinalStateUnknown[Pod]) -> None:
        obj = unwrap(pod)
        ref = controller_ref(obj)
        if ref is not None:
            if ref.kind == "StatefulSet":
                self.queue.add(f"{obj.metadata.namespace}/{ref.name}")
            return
        for sts in self.sets.list(obj.metadata.namespace):  # an orphan: who might adopt it
            try:
                if ordinal_of(sts.metadata.name, obj) is not None and \
                        selector_from_message(sts.spec.selector).matches(obj.metadata.labels):
                    self.enqueue(sts)
            except SelectorError:
                continue

    def _pod_updated(self, old: Pod, new: Pod) -> None:
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        if old_ref is not None and (new_ref is None or old_ref.uid != new_ref.uid):
            self._pod_changed(old)
        self._pod_changed(new)

    def _revision_changed(self, rev: ControllerRevision | DeletedFinalStateUnknown[ControllerRevision]) -> None:
        obj = unwrap(rev)
        ref = controller_ref(obj)
        if ref is not None and ref.kind == "StatefulSet":
            self.queue.add(f"{obj.metadata.namespace}/{ref.name}")

    # ------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        try:
            sts = self.sets.get(namespace, name)
        except StatusError as err:
            if err.reason == "NotFound":
                return
            raise
        if sts.metadata.deletionTimestamp:
            return
        try:
            selector = selector_from_message(sts.spec.selector)
        except SelectorError as err:
            self.recorder.event(sts, EVENT_TYPE_WARNING, "InvalidSelector", str(err))
            return
        if selector.empty():
            self.recorder.event(sts, EVENT_TYPE_WARNING, "SelectingAll",
                                "This statefulset is selecting all pods. A non-empty selector is required.")
            return
        sets = self.clientset.resource(StatefulSet, namespace)
        collisions = sts.status.collisionCount if sts.status.HasField("collisionCount") else None
        try:
            revisions, update = await self.histories.sync(sts, STATEFULSET_KIND, selector, sts.spec.template,
                                                          collisions, recheck_owner(sts, sets))
        except HashCollision:
            bumped = StatefulSet()
            bumped.CopyFrom(sts)
            bumped.status.collisionCount = (collisions or 0) + 1
            await sets.update_status(bumped)
            raise
        current = next((r for r in revisions if r.metadata.name == sts.status.currentRevision), update)
        pods = await self._claim(sts, selector)
        slots = self._slots(sts, pods)
        await self._update(key, sts, slots, current, update)
        await self._write_status(sts, pods, current, update)
        live = {_revision_of(p) for p in pods} | {current.metadata.name, update.metadata.name}
        limit = sts.spec.revisionHistoryLimit if sts.spec.HasField("revisionHistoryLimit") else 10
        await self.histories.truncate(sts, revisions, live, limit)

    async def _claim(self, sts: StatefulSet, selector: Selector) -> list[Pod]:
        namespace = sts.metadata.namespace
        # Only pods named like members: `web-x` is not pod x of `web`.
        candidates = [p for p in owned_and_orphans(self.pods, namespace, sts.metadata.uid)
                      if ordinal_of(sts.metadata.name, p) is not None]
        return await claim(sts, STATEFULSET_KIND, selector, candidates, self.clientset.resource(Pod, namespace),
                           recheck_owner(sts, self.clientset.resource(StatefulSet, namespace)))

    @staticmethod
    def _slots(sts: StatefulSet, pods: list[Pod]) -> _Slots:
        start = sts.spec.ordinals.start
        replicas = sts.spec.replicas if sts.spec.HasField("replicas") else 1
        slots = _Slots()
        for pod in pods:
            ordinal = ordinal_of(sts.metadata.name, pod)
            if ordinal is None:
                continue
            if start <= ordinal < start + replicas:
                slots.replicas[ordinal] = pod
            else:
                slots.condemned.append((ordinal, pod))
        slots.condemned.sort(key=lambda item: item[0], reverse=True)
        return slots

    # ------------------------------------------------------------ the walk

    def _healthy(self, sts: StatefulSet, pod: Pod) -> bool:
        """Running, ready for minReadySeconds and not going away."""
        if pod.status.phase != "Running" or _terminating(pod):
            return False
        now = self.clock.now()
        if is_pod_available(pod, sts.spec.minReadySeconds, now):
            return True
        if is_pod_ready(pod) and sts.spec.minReadySeconds:
            self.queue.add_after(f"{sts.metadata.namespace}/{sts.metadata.name}", sts.spec.minReadySeconds)
        return False

    def _template_for(self, sts: StatefulSet, index: int, current: ControllerRevision,
                      update: ControllerRevision) -> tuple[core_pb2.PodTemplateSpec, str]:
        """Below the partition of a RollingUpdate, new pods keep the current
        revision; everywhere else they get the update revision."""
        strategy = sts.spec.updateStrategy
        if strategy.type == "RollingUpdate" and strategy.HasField("rollingUpdate") and \
                index < strategy.rollingUpdate.partition and current.metadata.name != update.metadata.name:
            return template_of(current), current.metadata.name
        return sts.spec.template, update.metadata.name

    async def _update(self, key: str, sts: StatefulSet, slots: _Slots, current: ControllerRevision,
                      update: ControllerRevision) -> None:
        monotonic = sts.spec.podManagementPolicy != "Parallel"
        start = sts.spec.ordinals.start
        replicas = sts.spec.replicas if sts.spec.HasField("replicas") else 1

        first_unhealthy: Pod | None = None
        for ordinal in range(start, start + replicas):
            pod = slots.replicas.get(ordinal)
            if pod is not None and not self._healthy(sts, pod) and first_unhealthy is None:
                first_unhealthy = pod
        for _, pod in reversed(slots.condemned):
            if not self._healthy(sts, pod) and first_unhealthy is None:
                first_unhealthy = pod

        for ordinal in range(start, start + replicas):
            pod = slots.replicas.get(ordinal)
            if pod is not None and pod.status.phase in ("Failed", "Succeeded"):
                if not _terminating(pod):
                    await self._delete_pod(sts, pod, f"pod {pod.metadata.name} is {pod.status.phase.lower()}")
                if monotonic:
                    return  # recreated once it is gone
                continue
            if pod is None:
                template, revision = self._template_for(sts, ordinal - start, current, update)
                await self._create_pod(sts, ordinal, template, revision)
                if monotonic:
                    return
                continue
            if _terminating(pod):
                if monotonic:
                    return  # its replacement waits for the name to be free
                continue
            if not self._healthy(sts, pod):
                if monotonic:
                    return
                continue
            await self._repair_identity(sts, pod, ordinal)

        for ordinal, pod in slots.condemned:  # highest ordinal first
            if _terminating(pod):
                if monotonic:
                    return
                continue
            if monotonic and not self._healthy(sts, pod) and pod is not first_unhealthy:
                return
            await self._condemn_claims(sts, pod, ordinal)
            await self._delete_pod(sts, pod, "scale down")
            if monotonic:
                return

        strategy = sts.spec.updateStrategy
        if strategy.type != "RollingUpdate":
            return
        partition = strategy.rollingUpdate.partition if strategy.rollingUpdate.HasField("partition") else 0
        for ordinal in range(start + replicas - 1, start + partition - 1, -1):
            pod = slots.replicas.get(ordinal)
            if pod is None:
                return
            if _revision_of(pod) != update.metadata.name and not _terminating(pod):
                await self._delete_pod(sts, pod, f"update to revision {update.metadata.name}")
                return
            if not self._healthy(sts, pod):
                return

    # ------------------------------------------------------------ actions

    async def _create_pod(self, sts: StatefulSet, ordinal: int, template: core_pb2.PodTemplateSpec,
                          revision: str) -> None:
        namespace = sts.metadata.namespace
        for wanted in new_claims(sts, ordinal):
            await self._ensure_claim(sts, wanted)
        pod = new_pod(sts, template, ordinal, revision)
        try:
            await self.clientset.resource(Pod, namespace).create(pod)
        except StatusError as err:
            if err.reason == "AlreadyExists":
                return  # the cache was behind
            self.recorder.event(sts, EVENT_TYPE_WARNING, "FailedCreate",
                                f"create Pod {pod.metadata.name} in StatefulSet {sts.metadata.name} failed "
                                f"error: {err}")
            raise
        self.recorder.event(sts, EVENT_TYPE_NORMAL, "SuccessfulCreate",
                            f"create Pod {pod.metadata.name} in StatefulSet {sts.metadata.name} successful")

    async def _ensure_claim(self, sts: StatefulSet, wanted: Claim) -> None:
        namespace = sts.metadata.namespace
        try:
            existing = self.claims.get(namespace, wanted.metadata.name)
        except StatusError as err:
            if err.reason != "NotFound":
                raise
        else:
            if existing.metadata.deletionTimestamp:
                raise RuntimeError(f"PersistentVolumeClaim {namespace}/{wanted.metadata.name} is being deleted: "
                                   "its pod waits for it to go")
            return
        try:
            await self.clientset.resource(Claim, namespace).create(wanted)
        except StatusError as err:
            if err.reason == "AlreadyExists":
                return
            self.recorder.event(sts, EVENT_TYPE_WARNING, "FailedCreate",
                                f"create Claim {wanted.metadata.name} for StatefulSet {sts.metadata.name} failed "
                                f"error: {err}")
            raise
        self.recorder.event(sts, EVENT_TYPE_NORMAL, "SuccessfulCreate",
                            f"create Claim {wanted.metadata.name} in StatefulSet {sts.metadata.name} success")

    async def _delete_pod(self, sts: StatefulSet, pod: Pod, why: str) -> None:
        try:
            await self.clientset.resource(Pod, sts.metadata.namespace).delete(pod.metadata.name,
                                                                               uid=pod.metadata.uid)
        except StatusError as err:
            if err.reason in ("NotFound", "Conflict"):
                return
            self.recorder.event(sts, EVENT_TYPE_WARNING, "FailedDelete",
                                f"delete Pod {pod.metadata.name} in StatefulSet {sts.metadata.name} failed error: "
                                f"{err}")
            raise
        log.info("statefulset %s/%s: deleted pod %s (%s)", sts.metadata.namespace, sts.metadata.name,
                 pod.metadata.name, why)
        self.recorder.event(sts, EVENT_TYPE_NORMAL, "SuccessfulDelete",
                            f"delete Pod {pod.metadata.name} in StatefulSet {sts.metadata.name} successful")

    async def _repair_identity(self, sts: StatefulSet, pod: Pod, ordinal: int) -> None:
        """An adopted pod gets the identity labels and its claims."""
        for wanted in new_claims(sts, ordinal):
            await self._ensure_claim(sts, wanted)
        if identity_labels_match(sts, pod, ordinal):
            return
        patch = {"metadata": {"uid": pod.metadata.uid, "labels": {
            POD_NAME_LABEL: pod.metadata.name, POD_INDEX_LABEL: str(ordinal)}}}
        try:
            await self.clientset.resource(Pod, sts.metadata.namespace).patch(pod.metadata.name, patch,
                                                                              patch_type=STRATEGIC_MERGE_PATCH)
        except StatusError as err:
            if err.reason not in ("NotFound", "Invalid"):
                raise

    async def _condemn_claims(self, sts: StatefulSet, pod: Pod, ordinal: int) -> None:
        """whenScaled=Delete: the claims follow the pod into the garbage."""
        if sts.spec.persistentVolumeClaimRetentionPolicy.whenScaled != "Delete":
            return
        client = self.clientset.resource(Claim, sts.metadata.namespace)
        ref = pod_owner_reference(pod)
        for template in sts.spec.volumeClaimTemplates:
            name = claim_name(template, sts.metadata.name, ordinal)
            try:
                existing = self.claims.get(sts.metadata.namespace, name)
            except StatusError:
                continue
            if any(r.uid == pod.metadata.uid for r in existing.metadata.ownerReferences):
                continue
            patch = {"metadata": {"ownerReferences": [
                {"apiVersion": ref.apiVersion, "kind": ref.kind, "name": ref.name, "uid": ref.uid,
                 "controller": False, "blockOwnerDeletion": True}]}}
            try:
                await client.patch(name, patch, patch_type=STRATEGIC_MERGE_PATCH)
            except StatusError as err:
                if err.reason != "NotFound":
                    raise

    # ------------------------------------------------------------ status

    async def _write_status(self, sts: StatefulSet, pods: list[Pod], current: ControllerRevision,
                            update: ControllerRevision) -> None:
        now = self.clock.now()
        new = StatefulSet()
        new.CopyFrom(sts)
        s = new.status
        s.observedGeneration = sts.metadata.generation
        s.replicas = s.readyReplicas = s.availableReplicas = s.currentReplicas = s.updatedReplicas = 0
        for pod in pods:
            if ordinal_of(sts.metadata.name, pod) is None or _terminating(pod) or not pod.status.phase:
                continue
            s.replicas += 1
            if pod.status.phase == "Running" and is_pod_ready(pod):
                s.readyReplicas += 1
                if is_pod_available(pod, sts.spec.minReadySeconds, now):
                    s.availableReplicas += 1
            if _revision_of(pod) == current.metadata.name:
                s.currentReplicas += 1
            if _revision_of(pod) == update.metadata.name:
                s.updatedReplicas += 1
        s.currentRevision = current.metadata.name
        s.updateRevision = update.metadata.name
        want = sts.spec.replicas if sts.spec.HasField("replicas") else 1
        if s.updatedReplicas == want == s.replicas == s.readyReplicas:
            # the update is complete: what runs now is the current revision
            s.currentRevision = update.metadata.name
            s.currentReplicas = s.updatedReplicas
        await write_status(self.clientset.resource(StatefulSet, sts.metadata.namespace), sts, new)
