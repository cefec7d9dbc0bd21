"""The Job controller: run pods until enough of them succeed.

Keys are Jobs; a pod the Job controls maps to its Job's key. A sync of an
unfinished Job:

1. Claims the pods its (generated) selector matches.
2. Counts the pods that finished, durably (`_job_tracking.py`): every pod
   it creates carries the `batch.kubernetes.io/job-tracking` finalizer, so
   a finished pod cannot vanish before it is counted. Finished pods go to
   status.uncountedTerminatedPods first, then lose the finalizer, then move
   into status.succeeded / status.failed. A pod deleted before it
   succeeded (evicted, deleted by hand) counts as failed.
3. Fails the Job (condition Failed, active pods deleted) when more pods
   failed than backoffLimit allows (with restartPolicy OnFailure: when the
   containers restarted that often), or when activeDeadlineSeconds have
   passed since it started.
4. Completes it (condition Complete, completionTime) once `completions`
   pods succeeded (Indexed: every index 0..completions-1 succeeded; no
   completions: one pod succeeded and none is left running).
5. Otherwise keeps `parallelism` pods running, no more than the remaining
   completions need: creates the missing ones (Indexed: for indexes not
   done and not running), deletes the extra ones. After failures, new pods
   wait an exponential backoff: 10 s after the first failure, doubling up
   to 6 minutes; a success resets it.
6. A suspended Job (spec.suspend) has its active pods deleted and the
   condition Suspended; resuming restarts its clock (status.startTime).

A finished Job keeps no finalizers on its pods, and is deleted
ttlSecondsAfterFinished after it finished (Kubernetes does that in a
separate ttl-after-finished controller; here it is a step of the same
sync, with background propagation so that the garbage collector removes
the pods).

Pods created with generateName are counted by expectations
(_expectations.py) so a slow informer never causes a double
creation; a Job read from a cache older than this controller's own last
status write is skipped until the newer one arrives.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from api import SCHEME, SelectorError, StatusError, parse_time, rfc3339, selector_from_message
from client import EVENT_TYPE_NORMAL, EVENT_TYPE_WARNING, DeletedFinalStateUnknown, object_key, split_key
from proto import batch_pb2, core_pb2

from ._conditions import condition_true, get_condition, set_condition
from ._controller import Controller, ControllerContext
from ._expectations import ControllerExpectations
from ._job_indexes import format_indexes, parse_indexes, pod_index, stamp_index
from ._job_tracking import FINALIZER, Tracker
from ._owner import (
    CONTROLLER_UID_INDEX,
    add_controller_uid_index,
    claim,
    controller_ref,
    new_controller_ref,
    owned_and_orphans,
    recheck_owner,
)
from ._podutil import is_pod_active, is_pod_ready, removal_order, unwrap

log = logging.getLogger(__name__)

Job = batch_pb2.Job
Pod = core_pb2.Pod
JOB_KIND = SCHEME.for_message(Job)

DEFAULT_BACKOFF = 10.0
MAX_BACKOFF = 360.0
#: Pods created or deleted per sync at most (Kubernetes' limit).
MAX_PODS_PER_SYNC = 500


@dataclass
class BackoffRecord:
    """Failures since the last success, and when the latest one was seen."""

    failures: int = 0
    last_failure: float = 0.0

    def update(self, new_succeeded: int, new_failed: int, now: float) -> None:
        if new_succeeded:
            self.failures, self.last_failure = 0, 0.0
        elif new_failed:
            self.failures += new_failed
            self.last_failure = now

    def remaining(self, now: float, base: float = DEFAULT_BACKOFF, cap: float = MAX_BACKOFF) -> float:
        """Seconds until a new pod may be created (0: now)."""
        if self.failures == 0:
            return 0.0
        delay = min(base * 2 ** (self.failures - 1), cap)
        return max(0.0, delay - (now - self.last_failure))


def finished_condition(job: Job) -> str:
    for kind in ("Complete", "Failed"):
        if condition_true(job.status.conditions, kind):
            return kind
    return ""


def _time(text: str) -> float | None:
    try:
        return parse_time(text) if text else None
    except ValueError:
        return None


class JobController(Controller):
    name = "job"
    default_workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        jobs = ctx.informers.informer_for(Job)
        pods = ctx.informers.informer_for(Pod)
        self.jobs = jobs.lister()
        self.pods = pods.lister()
        self.expectations = ControllerExpectations(ctx.clock)
        add_controller_uid_index(pods)
        self.tracker = Tracker(self.clientset, self.clock)
        self.backoff: dict[str, BackoffRecord] = {}
        self.backoff_base, self.backoff_max = DEFAULT_BACKOFF, MAX_BACKOFF
        self._written: dict[str, int] = {}
        jobs.add_event_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new),
                               on_delete=self.enqueue)
        pods.add_event_handler(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)

    # ------------------------------------------------------------ handlers

    @staticmethod
    def _owner_key(pod: Pod) -> str | None:
        ref = controller_ref(pod)
        if ref is None or ref.kind != "Job":
            return None
        return f"{pod.metadata.namespace}/{ref.name}"

    def _pod_added(self, pod: Pod) -> None:
        key = self._owner_key(pod)
        if key is None:
            return
        self.expectations.creation_observed(key)
        if pod.metadata.deletionTimestamp:
            self.expectations.deletion_observed(key, object_key(pod))
        self.queue.add(key)

    def _pod_updated(self, old: Pod, new: Pod) -> None:
        key = self._owner_key(new)
        old_key = self._owner_key(old)
        if old_key is not None and old_key != key:
            self.queue.add(old_key)
        if key is None:
            return
        if new.metadata.deletionTimestamp:
            self.expectations.deletion_observed(key, object_key(new))
        if FINALIZER not in new.metadata.finalizers:
            self.tracker.observed(key, new.metadata.uid)
        self.queue.add(key)

    def _pod_deleted(self, pod: Pod | DeletedFinalStateUnknown[Pod]) -> None:
        obj = unwrap(pod)
        key = self._owner_key(obj)
        if key is None:
            return
        self.expectations.deletion_observed(key, object_key(obj))
        self.tracker.observed(key, obj.metadata.uid)
        self.queue.add(key)

    # ------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        try:
            job = self.jobs.get(namespace, name)
        except StatusError as err:
            if err.reason != "NotFound":
                raise
            self._forget(key)
            await self._release_orphans(namespace, name, "")
            return
        written = self._written.get(key)
        if written is not None and int(job.metadata.resourceVersion or 0) < written:
            return  # our own newer status write is on its way to the cache
        if job.metadata.deletionTimestamp:
            await self._strip_all(key, job)
            return
        if finished_condition(job):
            await self._strip_all(key, job)
            await self._expire(key, job)
            return
        await self._sync_running(key, job)

    def _forget(self, key: str) -> None:
        self.expectations.delete(key)
        self.tracker.forget(key)
        self.backoff.pop(key, None)
        self._written.pop(key, None)

    def _owned(self, job: Job) -> list[Pod]:
        return self.pods.by_index(CONTROLLER_UID_INDEX, job.metadata.uid)

    async def _strip_all(self, key: str, job: Job) -> None:
        """A Job that is finished or going keeps no pod from going."""
        await self.tracker.strip(key, [p for p in self._owned(job) if FINALIZER in p.metadata.finalizers])

    async def _release_orphans(self, namespace: str, name: str, uid: str) -> None:
        """Pods still holding the finalizer for a Job that is gone."""
        orphans = [p for p in self.pods.list(namespace)
                   if FINALIZER in p.metadata.finalizers and (ref := controller_ref(p)) is not None
                   and ref.kind == "Job" and ref.name == name and ref.uid != uid]
        await self.tracker.strip(f"{namespace}/{name}", orphans)

    async def _flush(self, key: str, job: Job) -> Job:
        written = await self.clientset.resource(Job, job.metadata.namespace).update_status(job)
        self._written[key] = int(written.metadata.resourceVersion or 0)
        return written

    async def _sync_running(self, key: str, job: Job) -> None:
        namespace = job.metadata.namespace
        spec = job.spec
        try:
            selector = selector_from_message(spec.selector if spec.HasField("selector") else None)
        except SelectorError as err:
            self.recorder.event(job, EVENT_TYPE_WARNING, "InvalidSelector", str(err))
            return
        candidates = owned_and_orphans(self.pods, namespace, job.metadata.uid)
        pods = await claim(job, JOB_KIND, selector, candidates, self.clientset.resource(Pod, namespace),
                           recheck_owner(job, self.clientset.resource(Job, namespace)))
        await self._release_orphans(namespace, job.metadata.name, job.metadata.uid)
        now = self.clock.now()
        new = Job()
        new.CopyFrom(job)
        suspended = spec.HasField("suspend") and spec.suspend
        self._start_or_suspend(new, suspended, now)

        # Count what finished since the last sync, durably.
        counted = await self.tracker.track(key, new, pods, suspended, self._flush)
        new = counted.job
        self.backoff.setdefault(key, BackoffRecord()).update(counted.new_succeeded, counted.new_failed, now)
        status = new.status
        indexed = spec.completionMode == "Indexed"
        completions = spec.completions if spec.HasField("completions") else None
        done_indexes = parse_indexes(status.completedIndexes, completions) if indexed else set()

        active = [p for p in pods if is_pod_active(p) and p.metadata.uid not in counted.stripped]
        terminating = [p for p in pods
                       if p.metadata.deletionTimestamp and p.status.phase not in ("Succeeded", "Failed")]

        failure = self._failure(key, new, active, now)
        if failure is not None:
            reason, message = failure
            deleted = await self._delete_pods(key, job, active)
            status.failed += deleted
            active = []
            set_condition(status.conditions, "Failed", "True", reason, message, now)
            self.recorder.event(job, EVENT_TYPE_WARNING, reason, message)
        elif self._complete(new, active, done_indexes):
            await self._delete_pods(key, job, active)
            active = []
            set_condition(status.conditions, "Complete", "True", "CompletionsReached",
                          "Reached expected number of succeeded pods", now)
            status.completionTime = rfc3339(now)
            self.recorder.event(job, EVENT_TYPE_NORMAL, "Completed", "Job completed")
        elif suspended:
            await self._delete_pods(key, job, active)
            active = []
        elif self.expectations.satisfied(key):
            active = await self._manage(key, new, active, terminating, done_indexes, now)

        status.active = len(active)
        status.ready = sum(1 for p in active if is_pod_ready(p))
        status.terminating = len(terminating)
        if indexed:
            status.completedIndexes = format_indexes(done_indexes)
        if new.status.SerializeToString(deterministic=True) != job.status.SerializeToString(deterministic=True):
            new = await self._flush(key, new)
        if finished_condition(new):
            await self._expire(key, new)

    def _start_or_suspend(self, job: Job, suspended: bool, now: float) -> None:
        status = job.status
        was = get_condition(status.conditions, "Suspended")
        if suspended:
            if set_condition(status.conditions, "Suspended", "True", "JobSuspended", "Job suspended", now):
                self.recorder.event(job, EVENT_TYPE_NORMAL, "Suspended", "Job suspended")
            return
        if was is not None and was.status == "True":
            set_condition(status.conditions, "Suspended", "False", "JobResumed", "Job resumed", now)
            self.recorder.event(job, EVENT_TYPE_NORMAL, "Resumed", "Job resumed")
            status.startTime = rfc3339(now)  # the deadline counts from the resumption
        if not status.startTime:
            status.startTime = rfc3339(now)

    # ------------------------------------------------------------ outcome

    def _failure(self, key: str, job: Job, active: list[Pod], now: float) -> tuple[str, str] | None:
        spec, status = job.spec, job.status
        limit = spec.backoffLimit if spec.HasField("backoffLimit") else 6
        if status.failed > limit:
            return "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        if spec.template.spec.restartPolicy == "OnFailure":
            restarts = sum(c.restartCount for p in active if p.status.phase in ("Pending", "Running")
                           for c in [*p.status.initContainerStatuses, *p.status.containerStatuses])
            if (limit == 0 and restarts > 0) or (limit > 0 and restarts >= limit):
                return "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        if spec.HasField("activeDeadlineSeconds") and not (spec.HasField("suspend") and spec.suspend):
            start = _time(status.startTime)
            if start is not None:
                left = start + spec.activeDeadlineSeconds - now
                if left <= 0:
                    return "DeadlineExceeded", "Job was active longer than specified deadline"
                self.queue.add_after(key, left)
        return None

    @staticmethod
    def _complete(job: Job, active: list[Pod], done_indexes: set[int]) -> bool:
        spec, status = job.spec, job.status
        if spec.completionMode == "Indexed":
            return len(done_indexes) >= spec.completions
        if spec.HasField("completions"):
            return status.succeeded >= spec.completions
        return status.succeeded > 0 and not active

    # ------------------------------------------------------------ pods

    async def _manage(self, key: str, job: Job, active: list[Pod], terminating: list[Pod], done_indexes: set[int],
                      now: float) -> list[Pod]:
        """Create or delete pods towards the wanted number; the pods active
        afterwards (created ones are counted, not yet seen)."""
        spec, status = job.spec, job.status
        parallelism = spec.parallelism if spec.HasField("parallelism") else 1
        if spec.completionMode == "Indexed":
            extra, missing = self._index_plan(spec.completions, parallelism, active, done_indexes)
        else:
            if spec.HasField("completions"):
                want = max(0, min(parallelism, spec.completions - status.succeeded))
            else:
                # A work queue: once one pod succeeded the queue is drained;
                # let the running ones finish, start no more.
                want = min(len(active), parallelism) if status.succeeded > 0 else parallelism
            ordered = sorted(active, key=removal_order)
            extra = ordered[:max(0, len(active) - want)]
            missing = [None] * max(0, want - len(active))
        creatable = missing[:MAX_PODS_PER_SYNC]
        if creatable and spec.podReplacementPolicy == "Failed" and terminating:
            creatable = []  # replace pods only once they have fully failed
        if creatable:
            wait = self.backoff.setdefault(key, BackoffRecord()).remaining(now, self.backoff_base, self.backoff_max)
            if wait > 0:
                self.queue.add_after(key, wait)
                creatable = []
        extra = extra[:MAX_PODS_PER_SYNC]
        if not extra and not creatable:
            return active
        self.expectations.expect(key, len(creatable), [object_key(p) for p in extra])
        if extra:
            await self._delete_pods(key, job, extra, expected=True)
            gone = {p.metadata.uid for p in extra}
            active = [p for p in active if p.metadata.uid not in gone]
        if not creatable:
            return active
        created = await self._create_pods(key, job, creatable)
        return active + created

    @staticmethod
    def _index_plan(completions: int, parallelism: int, active: list[Pod], done: set[int],
                    ) -> tuple[list[Pod], list[int | None]]:
        """(pods to delete, indexes to start) for an Indexed Job: no pod for
        a done, invalid or duplicated index; at most `parallelism` pods."""
        extra: list[Pod] = []
        keep: dict[int, Pod] = {}
        for pod in sorted(active, key=removal_order, reverse=True):  # the best kept first
            index = pod_index(pod)
            if index is None or index >= completions or index in done or index in keep:
                extra.append(pod)
            else:
                keep[index] = pod
        over = len(keep) - parallelism
        if over > 0:
            for index in sorted(keep, reverse=True)[:over]:
                extra.append(keep.pop(index))
        room = parallelism - len(keep)
        missing: list[int | None] = []
        missing.extend(i for i in range(completions) if i not in done and i not in keep)
        missing = missing[:max(0, room)]
        return extra, missing

    def _new_pod(self, job: Job, index: int | None) -> Pod:
        template = job.spec.template
        pod = Pod()
        pod.metadata.namespace = job.metadata.namespace
        prefix = f"{job.metadata.name}-" if index is None else f"{job.metadata.name}-{index}-"
        pod.metadata.generateName = prefix
        pod.metadata.labels.update(template.metadata.labels)
        pod.metadata.annotations.update(template.metadata.annotations)
        pod.metadata.finalizers.append(FINALIZER)
        pod.metadata.ownerReferences.append(new_controller_ref(job, JOB_KIND))
        pod.spec.CopyFrom(template.spec)
        if index is not None:
            stamp_index(job, pod, index)
        return pod

    async def _create_pods(self, key: str, job: Job, indexes: list[int | None]) -> list[Pod]:
        """Create pods in slow-start batches (1, 2, 4, ...): a Job whose
        pods cannot be created fails one call, not five hundred. The caller
        has recorded the creations as expected."""
        pods = self.clientset.resource(Pod, job.metadata.namespace)
        created: list[Pod] = []
        batch, i = 1, 0
        while i < len(indexes):
            chunk = indexes[i:i + batch]
            results = await asyncio.gather(*(pods.create(self._new_pod(job, idx)) for idx in chunk),
                                           return_exceptions=True)
            failed: BaseException | None = None
            for result in results:
                if isinstance(result, BaseException):
                    self.expectations.lower(key, adds=1)  # it will never be seen
                    failed = failed or result
                else:
                    created.append(result)
                    self.recorder.event(job, EVENT_TYPE_NORMAL, "SuccessfulCreate",
                                        f"Created pod: {result.metadata.name}")
            i += len(chunk)
            if failed is not None:
                self.recorder.event(job, EVENT_TYPE_WARNING, "FailedCreate", f"Error creating: {failed}")
                self.expectations.lower(key, adds=len(indexes) - i)
                raise failed
            batch *= 2
        return created

    async def _delete_pods(self, key: str, job: Job, victims: list[Pod], *, expected: bool = False) -> int:
        """Delete pods on purpose: their finalizer goes first, so they are not
        counted as failures. Returns how many were deleted."""
        victims = victims[:MAX_PODS_PER_SYNC]
        if not victims:
            return 0
        if not expected:
            self.expectations.expect_deletions(key, [object_key(p) for p in victims])
        await self.tracker.strip(key, [p for p in victims if FINALIZER in p.metadata.finalizers])
        client = self.clientset.resource(Pod, job.metadata.namespace)
        deleted = 0
        for pod in victims:
            try:
                await client.delete(pod.metadata.name, uid=pod.metadata.uid)
                deleted += 1
                self.recorder.event(job, EVENT_TYPE_NORMAL, "SuccessfulDelete", f"Deleted pod: {pod.metadata.name}")
            except StatusError as err:
                self.expectations.deletion_observed(key, object_key(pod))
                if err.reason not in ("NotFound", "Conflict"):
                    raise
        return deleted

    # ------------------------------------------------------------ TTL

    async def _expire(self, key: str, job: Job) -> None:
        """Delete a finished Job once ttlSecondsAfterFinished have passed."""
        if not job.spec.HasField("ttlSecondsAfterFinished") or job.metadata.deletionTimestamp:
            return
        kind = finished_condition(job)
        cond = get_condition(job.status.conditions, kind)
        finished = _time(job.status.completionTime) if kind == "Complete" else None
        if finished is None and cond is not None:
            finished = _time(cond.lastTransitionTime)
        if finished is None:
            return
        left = finished + job.spec.ttlSecondsAfterFinished - self.clock.now()
        if left > 0:
            self.queue.add_after(key, left)
            return
        try:
            await self.clientset.resource(Job, job.metadata.namespace).delete(
                job.metadata.name, uid=job.metadata.uid, propagation="Background")
            log.info("job %s: deleted %ss after it finished (ttlSecondsAfterFinished)", key,
                     job.spec.ttlSecondsAfterFinished)
        except StatusError as err:
            if err.reason not in ("NotFound", "Conflict"):
                raise
