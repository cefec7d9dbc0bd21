"""The ReplicaSet and ReplicationController controllers: exactly
`spec.replicas` pods that match the selector, no more, no fewer.

One implementation serves both kinds (a ReplicationController is a
ReplicaSet with a map selector, as in Kubernetes, where the RC controller
is the ReplicaSet controller behind an adapter); the two classes at the end
only say which kind and how to read its selector.

A sync (`sync(key)`):

1. takes the cached object (gone: forget its expectations, done);
2. claims pods (see _owner.py): active pods it owns plus orphans its
   selector matches are adopted, owned pods it no longer matches are
   released; finished (Succeeded/Failed) and terminating pods do not count;
3. if its expectations are satisfied (every create and delete of the last
   sync has come back through the pod informer), creates or deletes the
   difference: creates from the template with generateName `<name>-`, in
   slow-start batches of 1, 2, 4, ... so a quota or admission refusal costs
   one call, not hundreds; deletes the pods Kubernetes would delete first
   (unscheduled < pending < not ready < ready, doubled-up on a node first,
   then the most recently ready, most restarted, newest); at most
   `burst_replicas` per sync either way;
4. writes status (replicas, fullyLabeledReplicas, readyReplicas,
   availableReplicas counting minReadySeconds, observedGeneration, a
   ReplicaFailure condition while creates or deletes fail), and if pods
   are ready but not yet available, looks again after minReadySeconds.

Expectations are what make a slow watch harmless: until the creates of the
last sync are seen, a sync only reports status, so a pod informer that lags
can never cause a double create or a double delete.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

from api import (
    SCHEME,
    Selector,
    SelectorError,
    StatusError,
    parse_time,
    rfc3339,
    selector_from_map,
    selector_from_message,
)
from client import EVENT_TYPE_NORMAL, EVENT_TYPE_WARNING, DeletedFinalStateUnknown, object_key, split_key
from proto import apps_pb2, core_pb2

from ._controller import Controller, ControllerContext
from ._expectations import ControllerExpectations, OwnWrites
from ._owner import (
    CONTROLLER_UID_INDEX,
    add_controller_uid_index,
    claim,
    controller_ref,
    new_controller_ref,
    owned_and_orphans,
    pod_from_template,
    recheck_owner,
    resolve_controller_ref,
)
from ._podutil import is_pod_active, is_pod_available, is_pod_ready, ready_since, unwrap

log = logging.getLogger(__name__)

Pod = core_pb2.Pod

#: Kubernetes' BurstReplicas: the most pods one sync creates or deletes.
BURST_REPLICAS = 500
POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_ORDER = {"Pending": 0, "": 0, "Unknown": 1, "Running": 2}


# ---------------------------------------------------------------- pod state


def _deletion_cost(pod: Pod) -> int:
    try:
        return int(pod.metadata.annotations.get(POD_DELETION_COST, "0"))
    except ValueError:
        return 0


def _time_or_inf(value: str) -> float:
    try:
        return parse_time(value) if value else math.inf
    except ValueError:
        return math.inf


def pods_to_delete(pods: Sequence[Pod], related: Sequence[Pod], count: int) -> list[Pod]:
    """The `count` pods to delete first, in Kubernetes' order: unscheduled,
    then pending/unknown/running, not ready, lower pod-deletion-cost, more
    related pods on the same node, ready for less time, more restarts,
    newer. `related` are the pods that count for doubling up (the owner's,
    and its siblings' under the same Deployment)."""
    per_node = Counter(p.spec.nodeName for p in related if p.spec.nodeName and is_pod_active(p))

    def order(pod: Pod) -> tuple[Any, ...]:
        ready = is_pod_ready(pod)
        since = ready_since(pod) if ready else None
        restarts = sum(c.restartCount for c in pod.status.containerStatuses)
        return (bool(pod.spec.nodeName), _PHASE_ORDER.get(pod.status.phase, 0), ready, _deletion_cost(pod),
                -per_node.get(pod.spec.nodeName, 0) if pod.spec.nodeName else 0,
                -(since if since is not None else math.inf) if ready else 0, -restarts,
                -_time_or_inf(pod.metadata.creationTimestamp), pod.metadata.name)
    return sorted(pods, key=order)[:count]


async def slow_start_batch(count: int, initial: int,
                           create: Callable[[], Awaitable[None]]) -> tuple[int, Exception | None]:
    """Run `count` calls in batches of initial, 2*initial, 4*initial...,
    each batch concurrently, stopping after a batch with a failure:
    (successes, first error)."""
    done = 0
    batch = min(count, initial)
    while batch > 0:
        results = await asyncio.gather(*(create() for _ in range(batch)), return_exceptions=True)
        errors: list[Exception] = []
        for result in results:
            if isinstance(result, Exception):
                errors.append(result)
            elif isinstance(result, BaseException):
                raise result
        done += batch - len(errors)
        if errors:
            return done, errors[0]
        batch = min(2 * batch, count - done)
    return done, None


def _namespace_terminating(err: StatusError) -> bool:
    return err.reason == "Forbidden" and "because it is being terminated" in err.message


# ---------------------------------------------------------------- the controller


class ReplicaSetLikeController(Controller):
    """The shared logic; subclasses name the kind and read its selector."""

    kind_message: ClassVar[Any]
    burst_replicas: ClassVar[int] = BURST_REPLICAS

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.kind = SCHEME.for_message(self.kind_message)
        owners = ctx.informers.informer_for(self.kind_message)
        pods = ctx.informers.informer_for(Pod)
        add_controller_uid_index(pods)
        add_controller_uid_index(owners)
        self.owners = owners.lister()
        self.pods = pods.lister()
        self.expectations = ControllerExpectations(ctx.clock)
        self.own_writes = OwnWrites()
        owners.add_event_handler(on_add=self.enqueue, on_update=self._owner_updated, on_delete=self._owner_deleted)
        pods.add_event_handler(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)

    def selector_of(self, owner: Any) -> Selector:
        raise NotImplementedError

    # ------------------------------------------------------------ owner events

    def _owner_updated(self, old: Any, new: Any) -> None:
        self.enqueue(new)

    def _owner_deleted(self, obj: Any) -> None:
        key = object_key(obj)
        self.expectations.delete(key)
        self.own_writes.forget(key)
        self.queue.add(key)

    # ------------------------------------------------------------ pod events

    def _owner_of(self, pod: Pod) -> Any | None:
        return resolve_controller_ref(self.owners, self.kind, pod.metadata.namespace, controller_ref(pod))

    def _owners_selecting(self, pod: Pod) -> list[Any]:
        out = []
        for owner in self.owners.list(pod.metadata.namespace):
            try:
                if self.selector_of(owner).matches(pod.metadata.labels):
                    out.append(owner)
            except SelectorError:
                continue
        return out

    def _pod_added(self, pod: Pod) -> None:
        if pod.metadata.deletionTimestamp:
            # Seen for the first time already terminating (after a relist):
            # a deletion, so it must not count as the creation we expect.
            self._pod_deleted(pod)
            return
        if controller_ref(pod) is not None:
            owner = self._owner_of(pod)
            if owner is not None:
                key = object_key(owner)
                self.expectations.creation_observed(key)
                self.queue.add(key)
            return
        # An orphan: every owner that could adopt it takes a look. No
        # creation is observed: nobody waits for an orphan.
        for owner in self._owners_selecting(pod):
            self.enqueue(owner)

    def _pod_updated(self, old: Pod, new: Pod) -> None:
        if old.metadata.resourceVersion == new.metadata.resourceVersion:
            return  # a resync: pods did not change, owners are resynced themselves
        labels_changed = old.metadata.labels != new.metadata.labels
        if new.metadata.deletionTimestamp:
            # A graceful delete starts: for us the pod is gone now. Counted
            # once, though its DELETE event comes later (expected by key).
            self._pod_deleted(new)
            if labels_changed:
                self._pod_deleted(old)
            return
        new_ref, old_ref = controller_ref(new), controller_ref(old)
        if old_ref is not None and (new_ref is None or new_ref.uid != old_ref.uid):
            previous = self._owner_of(old)
            if previous is not None:
                self.enqueue(previous)
        if new_ref is not None:
            owner = self._owner_of(new)
            if owner is None:
                return
            self.enqueue(owner)
            min_ready = owner.spec.minReadySeconds
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(new):
                # Available only after minReadySeconds: look again then (+1 s
                # against rounding of the condition's second-precision time).
                self.queue.add_after(object_key(owner), min_ready + 1)
            return
        if labels_changed or old_ref is not None:
            for owner in self._owners_selecting(new):
                self.enqueue(owner)

    def _pod_deleted(self, obj: Pod | DeletedFinalStateUnknown[Pod]) -> None:
        pod = unwrap(obj)
        owner = self._owner_of(pod)
        if owner is None:
            return
        key = object_key(owner)
        self.expectations.deletion_observed(key, object_key(pod))
        self.queue.add(key)

    # ------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        try:
            cached = self.owners.get(namespace, name)
        except StatusError as err:
            if err.reason == "NotFound":
                self.expectations.delete(key)
                return
            raise
        if self.own_writes.stale(key, cached.metadata.resourceVersion):
            return  # our last status write is on its way through the watch; it brings us back
        needs_sync = self.expectations.satisfied(key)
        try:
            selector = self.selector_of(cached)
        except SelectorError as err:
            log.warning("%s %s: invalid selector: %s", self.kind.kind, key, err)
            return
        uid = cached.metadata.uid
        active = [p for p in owned_and_orphans(self.pods, namespace, uid) if is_pod_active(p)]
        owner_client = self.clientset.resource(self.kind_message, namespace)
        pods = await claim(cached, self.kind, selector, active, self.clientset.resource(Pod, namespace),
                           recheck_owner(cached, owner_client))
        manage_error: Exception | None = None
        if needs_sync and not cached.metadata.deletionTimestamp:
            try:
                await self._manage_replicas(key, cached, pods)
            except Exception as err:  # reported in status, then retried
                manage_error = err
        updated = await self._update_status(cached, self._calculate_status(cached, pods, manage_error))
        if manage_error is not None:
            raise manage_error
        replicas = updated.spec.replicas
        min_ready = updated.spec.minReadySeconds
        if min_ready > 0 and updated.status.readyReplicas == replicas and updated.status.availableReplicas != replicas:
            self.queue.add_after(key, min_ready)

    async def _manage_replicas(self, key: str, owner: Any, pods: list[Pod]) -> None:
        diff = len(pods) - owner.spec.replicas
        namespace = owner.metadata.namespace
        client = self.clientset.resource(Pod, namespace)
        if diff < 0:
            count = min(-diff, self.burst_replicas)
            self.expectations.expect_creations(key, count)
            template = pod_from_template(owner.spec.template, owner, new_controller_ref(owner, self.kind))
            terminating = False

            async def create() -> None:
                nonlocal terminating
                try:
                    created = await client.create(template)
                except StatusError as err:
                    if _namespace_terminating(err):
                        terminating = True  # every create would fail; nothing to retry
                    else:
                        self.recorder.event(owner, EVENT_TYPE_WARNING, "FailedCreate", f"Error creating: {err}")
                    raise
                self.recorder.event(owner, EVENT_TYPE_NORMAL, "SuccessfulCreate",
                                    f"Created pod: {created.metadata.name}")

            created, error = await slow_start_batch(count, 1, create)
            if created < count:
                # Never attempted or refused: these will not be observed.
                self.expectations.lower(key, adds=count - created)
            if error is not None and not terminating:
                raise error
        elif diff > 0:
            count = min(diff, self.burst_replicas)
            victims = pods_to_delete(pods, self._related_pods(owner, pods), count)
            self.expectations.expect_deletions(key, [object_key(p) for p in victims])

            async def delete(pod: Pod) -> None:
                try:
                    await client.delete(pod.metadata.name, uid=pod.metadata.uid)
                except StatusError as err:
                    # This deletion will never be observed.
                    self.expectations.deletion_observed(key, object_key(pod))
                    if err.reason in ("NotFound", "Conflict"):  # gone, or re-created: either way not ours
                        return
                    self.recorder.event(owner, EVENT_TYPE_WARNING, "FailedDelete", f"Error deleting: {err}")
                    raise
                self.recorder.event(owner, EVENT_TYPE_NORMAL, "SuccessfulDelete", f"Deleted pod: {pod.metadata.name}")

            results = await asyncio.gather(*(delete(p) for p in victims), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result

    def _related_pods(self, owner: Any, pods: list[Pod]) -> list[Pod]:
        """Our pods plus those of our siblings (same controlling owner), for
        the doubled-up-on-a-node preference."""
        parent = controller_ref(owner)
        if parent is None:
            return pods
        related = list(pods)
        for sibling in self.owners.by_index(CONTROLLER_UID_INDEX, parent.uid):
            if sibling.metadata.uid != owner.metadata.uid:
                related += [p for p in self.pods.by_index(CONTROLLER_UID_INDEX, sibling.metadata.uid)
                            if is_pod_active(p)]
        return related

    # ------------------------------------------------------------ status

    def _calculate_status(self, owner: Any, pods: list[Pod], manage_error: Exception | None) -> Any:
        status = type(owner.status)()
        status.CopyFrom(owner.status)
        now = self.clock.now()
        wanted = owner.spec.template.metadata.labels
        min_ready = owner.spec.minReadySeconds
        status.replicas = len(pods)
        status.fullyLabeledReplicas = sum(
            1 for p in pods if all(p.metadata.labels.get(k) == v for k, v in wanted.items()))
        status.readyReplicas = sum(1 for p in pods if is_pod_ready(p))
        status.availableReplicas = sum(1 for p in pods if is_pod_available(p, min_ready, now))
        failure = next((c for c in status.conditions if c.type == "ReplicaFailure"), None)
        if manage_error is not None and failure is None:
            diff = len(pods) - owner.spec.replicas
            reason = "FailedCreate" if diff < 0 else "FailedDelete" if diff > 0 else ""
            status.conditions.add(type="ReplicaFailure", status="True", reason=reason, message=str(manage_error),
                                  lastTransitionTime=rfc3339(now))
        elif manage_error is None and failure is not None:
            kept = [c for c in status.conditions if c.type != "ReplicaFailure"]
            del status.conditions[:]
            status.conditions.extend(kept)
        return status

    async def _update_status(self, owner: Any, status: Any) -> Any:
        old = owner.status
        if (old.replicas, old.fullyLabeledReplicas, old.readyReplicas, old.availableReplicas) == \
                (status.replicas, status.fullyLabeledReplicas, status.readyReplicas, status.availableReplicas) \
                and owner.metadata.generation == old.observedGeneration and \
                list(old.conditions) == list(status.conditions):
            return owner
        # The generation acted on, even if a retry reads a newer one.
        status.observedGeneration = owner.metadata.generation
        client = self.clientset.resource(self.kind_message, owner.metadata.namespace)
        current = type(owner)()
        current.CopyFrom(owner)
        for attempt in range(2):
            current.status.CopyFrom(status)
            try:
                stored = await client.update_status(current)
                self.own_writes.wrote(object_key(stored), stored.metadata.resourceVersion)
                return stored
            except StatusError as err:
                if err.reason != "Conflict" or attempt == 1:
                    raise
            current = await client.get(owner.metadata.name)
        raise AssertionError("unreachable")


class ReplicaSetController(ReplicaSetLikeController):
    name = "replicaset"
    kind_message = apps_pb2.ReplicaSet

    def selector_of(self, owner: Any) -> Selector:
        if not owner.spec.HasField("selector"):
            return Selector.nothing()
        return selector_from_message(owner.spec.selector)


class ReplicationControllerController(ReplicaSetLikeController):
    name = "replicationcontroller"
    event_source = "replication-controller"
    kind_message = core_pb2.ReplicationController

    def selector_of(self, owner: Any) -> Selector:
        # An RC's selector is a map; an empty one never selects anything.
        if not owner.spec.selector:
            return Selector.nothing()
        return selector_from_map(owner.spec.selector)
