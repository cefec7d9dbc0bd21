"""Counting a Job's finished pods so that no count is lost or doubled.

Counting the pods that exist is not enough: finished pods get deleted (by
hand, by the pod garbage collector), and then a Job would run them again.
So, as in Kubernetes, every Job pod is created with the finalizer
`batch.kubernetes.io/job-tracking`, which keeps it in the API until the
Job controller has counted it, in three steps that survive a crash at any
point:

1. the uids of newly finished pods are added to
   status.uncountedTerminatedPods (and, for an Indexed Job, their indexes
   to completedIndexes) and the status is written;
2. their finalizers are removed;
3. the uncounted uids move into status.succeeded / status.failed (written
   with the rest of the status by the caller).

A finished pod without the finalizer has been counted. A pod whose
finalizer this controller removed, but whose update the informer has not
delivered yet, is remembered until it is, so it is not counted twice.
A pod deleted before it succeeded counts as failed, unless the Job is
suspended (suspension deletes pods on purpose).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from api import STRATEGIC_MERGE_PATCH, Clock, StatusError
from client import Clientset
from proto import batch_pb2, core_pb2

from ._job_indexes import format_indexes, parse_indexes, pod_index

FINALIZER = "batch.kubernetes.io/job-tracking"

Job = batch_pb2.Job
Pod = core_pb2.Pod


@dataclass
class Counted:
    job: Job  # the Job to continue with (the server's copy if it was written)
    new_succeeded: int = 0
    new_failed: int = 0
    stripped: set[str] = field(default_factory=set)


class Tracker:
    def __init__(self, clientset: Clientset, clock: Clock) -> None:
        self.clientset = clientset
        self.clock = clock
        self._pending: dict[str, set[str]] = {}

    def observed(self, key: str, uid: str) -> None:
        """The informer saw the pod without its finalizer (or gone)."""
        pending = self._pending.get(key)
        if pending is not None:
            pending.discard(uid)
            if not pending:
                del self._pending[key]

    def forget(self, key: str) -> None:
        self._pending.pop(key, None)

    def pending(self, key: str) -> set[str]:
        return set(self._pending.get(key, ()))

    async def strip(self, key: str, pods: list[Pod]) -> None:
        """Remove the tracking finalizer from `pods`."""
        for pod in pods:
            if pod.metadata.uid in self._pending.get(key, ()):
                continue
            patch = {"metadata": {"uid": pod.metadata.uid, "$deleteFromPrimitiveList/finalizers": [FINALIZER]}}
            try:
                await self.clientset.resource(Pod, pod.metadata.namespace).patch(
                    pod.metadata.name, patch, patch_type=STRATEGIC_MERGE_PATCH)
            except StatusError as err:
                if err.reason not in ("NotFound", "Invalid"):  # gone, or replaced by a namesake
                    raise
                continue
            self._pending.setdefault(key, set()).add(pod.metadata.uid)

    async def track(self, key: str, job: Job, pods: list[Pod], suspended: bool,
                    flush: Callable[[str, Job], Awaitable[Job]]) -> Counted:
        """Count the pods that finished since the last sync. `job` is a copy
        the caller owns; `flush` writes its status and returns the result."""
        status = job.status
        indexed = job.spec.completionMode == "Indexed"
        completions = job.spec.completions if job.spec.HasField("completions") else None
        done = parse_indexes(status.completedIndexes, completions) if indexed else set()
        pending = self._pending.get(key, set())
        listed = set(status.uncountedTerminatedPods.succeeded) | set(status.uncountedTerminatedPods.failed)
        succeeded: list[str] = []
        failed: list[str] = []
        to_strip: list[Pod] = []
        for pod in pods:
            uid = pod.metadata.uid
            if FINALIZER not in pod.metadata.finalizers or uid in pending:
                continue
            if uid in listed:  # listed by a sync that did not get to step 2
                to_strip.append(pod)
                continue
            if pod.status.phase == "Succeeded":
                to_strip.append(pod)
                index = pod_index(pod) if indexed else None
                if not indexed:
                    succeeded.append(uid)
                elif index is not None and completions is not None and index < completions and index not in done:
                    done.add(index)
                    succeeded.append(uid)
            elif pod.status.phase == "Failed" or (pod.metadata.deletionTimestamp and not suspended):
                to_strip.append(pod)
                failed.append(uid)
            elif pod.metadata.deletionTimestamp:
                to_strip.append(pod)
        if succeeded or failed:
            status.uncountedTerminatedPods.succeeded.extend(succeeded)
            status.uncountedTerminatedPods.failed.extend(failed)
            if indexed:
                status.completedIndexes = format_indexes(done)
            job = await flush(key, job)
            status = job.status
        await self.strip(key, to_strip)
        uncounted = status.uncountedTerminatedPods
        if uncounted.succeeded or uncounted.failed:
            status.succeeded += len(uncounted.succeeded)
            status.failed += len(uncounted.failed)
            del uncounted.succeeded[:]
            del uncounted.failed[:]
        return Counted(job, len(succeeded), len(failed), {p.metadata.uid for p in to_strip})
