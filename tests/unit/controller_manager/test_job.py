"""controller_manager/job.py (with _job_tracking.py and _job_indexes.py) on
the in-memory clientset with a fake clock: completions and parallelism,
the tracking finalizer that makes counts survive deleted pods, the
exponential backoff before replacing failed pods and backoffLimit,
activeDeadlineSeconds, Indexed mode (index annotation, label, env and
hostname; completedIndexes), work-queue Jobs, suspension,
restartPolicy OnFailure, ttlSecondsAfterFinished, and the finalizers of
pods whose Job is gone."""

from __future__ import annotations

from api import rfc3339
from controller_manager._job_indexes import format_indexes, parse_indexes
from controller_manager._job_tracking import FINALIZER
from controller_manager.job import BackoffRecord, JobController
from proto import batch_pb2, core_pb2

from ._workloads import FakeKubelet, Harness, settle, template

Pod = core_pb2.Pod
Job = batch_pb2.Job


def job(name: str = "pi", *, completions: int | None = 1, parallelism: int = 1, backoff_limit: int = 6,
        indexed: bool = False, restart: str = "Never", deadline: int | None = None, ttl: int | None = None,
        suspend: bool = False) -> Job:
    j = Job()
    j.metadata.name, j.metadata.namespace = name, "ns"
    labels = {"batch.kubernetes.io/job-name": name}
    j.spec.selector.matchLabels.update(labels)
    j.spec.template.CopyFrom(template(labels, "perl"))
    j.spec.template.spec.restartPolicy = restart
    if completions is not None:
        j.spec.completions = completions
    j.spec.parallelism = parallelism
    j.spec.backoffLimit = backoff_limit
    j.spec.completionMode = "Indexed" if indexed else "NonIndexed"
    j.spec.suspend = suspend
    j.spec.podReplacementPolicy = "TerminatingOrFailed"
    if deadline is not None:
        j.spec.activeDeadlineSeconds = deadline
    if ttl is not None:
        j.spec.ttlSecondsAfterFinished = ttl
    return j


async def finish(h: Harness, pod: Pod, *, succeeded: bool = True) -> None:
    current = next(p for p in h.cs.objects(Pod, "ns") if p.metadata.uid == pod.metadata.uid)
    current.status.phase = "Succeeded" if succeeded else "Failed"
    del current.status.conditions[:]
    await h.cs.resource(Pod, "ns").update_status(current)
    await settle()


def running(h: Harness) -> list[Pod]:
    return [p for p in h.pods() if p.status.phase in ("", "Pending", "Running")]


def stored(h: Harness) -> Job:
    return h.cs.objects(Job, "ns")[0]


def condition(j: Job, kind: str) -> batch_pb2.JobCondition | None:
    return next((c for c in j.status.conditions if c.type == kind and c.status == "True"), None)


async def test_completions_and_parallelism() -> None:
    async with Harness(JobController) as h, FakeKubelet(h.cs, h.clock):
        created = await h.cs.resource(Job, "ns").create(job(completions=3, parallelism=2))
        await settle()
        pods = running(h)
        assert len(pods) == 2
        for pod in pods:
            assert pod.metadata.generateName == "pi-" and FINALIZER in pod.metadata.finalizers
            ref = pod.metadata.ownerReferences[0]
            assert (ref.kind, ref.uid, ref.controller) == ("Job", created.metadata.uid, True)
        status = stored(h).status
        assert (status.active, status.ready, status.succeeded) == (2, 2, 0) and status.startTime
        await finish(h, pods[0])
        status = stored(h).status
        assert status.succeeded == 1 and not status.uncountedTerminatedPods.succeeded
        done = next(p for p in h.cs.objects(Pod, "ns") if p.metadata.uid == pods[0].metadata.uid)
        assert FINALIZER not in done.metadata.finalizers  # counted, then released
        assert len(running(h)) == 2  # a replacement for the finished one
        for pod in running(h):
            await finish(h, pod)
        j = stored(h)
        assert j.status.succeeded == 3 and j.status.active == 0
        assert condition(j, "Complete") is not None and j.status.completionTime
        assert len(h.pods()) == 3 and not running(h)
        assert h.events("Completed")


async def test_counts_survive_a_deleted_pod() -> None:
    async with Harness(JobController) as h, FakeKubelet(h.cs, h.clock):
        await h.cs.resource(Job, "ns").create(job(completions=2, parallelism=1))
        await settle()
        first = running(h)[0]
        await finish(h, first)
        await h.cs.resource(Pod, "ns").delete(first.metadata.name)  # e.g. the pod garbage collector
        await settle()
        assert stored(h).status.succeeded == 1  # not run again
        assert len(running(h)) == 1
        # a running pod deleted by someone counts as failed (it held the finalizer until counted)
        victim = running(h)[0]
        await h.cs.resource(Pod, "ns").delete(victim.metadata.name)
        await settle()
        assert stored(h).status.failed == 1
        assert not [p for p in h.cs.objects(Pod, "ns") if p.metadata.uid == victim.metadata.uid]


async def test_backoff_between_failures_then_backoff_limit() -> None:
    async with Harness(JobController) as h, FakeKubelet(h.cs, h.clock):
        await h.cs.resource(Job, "ns").create(job(backoff_limit=2))
        await settle()
        await finish(h, running(h)[0], succeeded=False)
        assert stored(h).status.failed == 1 and not running(h)
        await h.advance(9)
        assert not running(h)  # 10 s after the first failure
        await h.advance(1.5)
        assert len(running(h)) == 1
        await finish(h, running(h)[0], succeeded=False)
        await h.advance(19)
        assert not running(h)  # 20 s after the second
        await h.advance(1.5)
        await finish(h, running(h)[0], succeeded=False)
        j = stored(h)
        assert j.status.failed == 3
        failed = condition(j, "Failed")
        assert failed is not None and failed.reason == "BackoffLimitExceeded"
        await h.advance(60)
        assert not running(h) and len(h.pods()) == 3


def test_backoff_record_doubles_up_to_the_cap() -> None:
    record = BackoffRecord()
    assert record.remaining(0) == 0
    waits = []
    for failures in range(1, 8):
        record.update(0, 1, 100.0)
        assert record.failures == failures
        waits.append(record.remaining(100.0))
    assert waits == [10, 20, 40, 80, 160, 320, 360]
    assert record.remaining(400.0) == 60
    record.update(1, 0, 500.0)
    assert record.remaining(500.0) == 0


async def test_active_deadline_fails_the_job_and_stops_its_pods() -> None:
    async with Harness(JobController) as h, FakeKubelet(h.cs, h.clock):
        await h.cs.resource(Job, "ns").create(job(completions=4, parallelism=2, deadline=30))
        await settle()
        assert len(running(h)) == 2
        await h.advance(29)
        assert condition(stored(h), "Failed") is None
        await h.advance(2)
        j = stored(h)
        failed = condition(j, "Failed")
        assert failed is not None and failed.reason == "DeadlineExceeded"
        assert not running(h) and j.status.active == 0 and j.status.failed == 2
        assert h.events("DeadlineExceeded")


async def test_indexed_job() -> None:
    async with Harness(JobController) as h, FakeKubelet(h.cs, h.clock):
        await h.cs.resource(Job, "ns").create(job(completions=3, parallelism=3, indexed=True))
        await settle()
        pods = {p.metadata.annotations["batch.kubernetes.io/job-completion-index"]: p for p in running(h)}
        assert sorted(pods) == ["0", "1", "2"]
        pod = pods["1"]
        assert pod.metadata.labels["batch.kubernetes.io/job-completion-index"] == "1"
        assert pod.metadata.generateName == "pi-1-" and pod.spec.hostname == "pi-1"
        env = next(e for e in pod.spec.containers[0].env if e.name == "JOB_COMPLETION_INDEX")
        assert env.valueFrom.fieldRef.fieldPath == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        await finish(h, pods["1"])
        assert stored(h).status.completedIndexes == "1"
        await finish(h, pods["0"], succeeded=False)
        await h.advance(11)
        again = [p for p in running(h) if p.metadata.annotations["batch.kubernetes.io/job-completion-index"] == "0"]
        assert len(again) == 1  # index 0 runs again, index 1 does not
        await finish(h, again[0])
        await finish(h, pods["2"])
        j = stored(h)
        assert j.status.completedIndexes == "0-2" and j.status.succeeded == 3 and j.status.failed == 1
        assert condition(j, "Complete") is not None


def test_index_sets() -> None:
    assert format_indexes({0, 1, 2, 4, 6, 7}) == "0-2,4,6-7"
    assert parse_indexes("0-2,4,6-7") == {0, 1, 2, 4, 6, 7}
    assert parse_indexes("0-9", completions=3) == {0, 1, 2}
    assert format_indexes(set()) == ""


async def test_work_queue_job_completes_when_all_pods_are_done() -> None:
    async with Harness(JobController) as h, FakeKubelet(h.cs, h.clock):
        await h.cs.resource(Job, "ns").create(job(completions=None, parallelism=2))
        await settle()
        first, second = running(h)
        await finish(h, first)
        assert len(running(h)) == 1  # a success means the queue is drained: nothing new
        assert condition(stored(h), "Complete") is None
        await finish(h, second)
        assert condition(stored(h), "Complete") is not None and stored(h).status.succeeded == 2


async def test_suspend_and_resume() -> None:
    async with Harness(JobController) as h, FakeKubelet(h.cs, h.clock):
        await h.cs.resource(Job, "ns").create(job(completions=2, parallelism=2))
        await settle()
        assert len(running(h)) == 2
        j = stored(h)
        j.spec.suspend = True
        await h.cs.resource(Job, "ns").update(j)
        await settle()
        j = stored(h)
        assert not running(h) and j.status.failed == 0  # deleted on purpose: not failures
        assert condition(j, "Suspended") is not None
        j.spec.suspend = False
        await h.cs.resource(Job, "ns").update(j)
        await h.advance(1)
        j = stored(h)
        assert len(running(h)) == 2
        resumed = next(c for c in j.status.conditions if c.type == "Suspended")
        assert resumed.status == "False" and resumed.reason == "JobResumed"


async def test_on_failure_restarts_count_against_the_backoff_limit() -> None:
    async with Harness(JobController) as h, FakeKubelet(h.cs, h.clock):
        await h.cs.resource(Job, "ns").create(job(backoff_limit=2, restart="OnFailure"))
        await settle()
        pod = running(h)[0]
        pod.status.containerStatuses.add(name="web", restartCount=1)
        await h.cs.resource(Pod, "ns").update_status(pod)
        await settle()
        assert condition(stored(h), "Failed") is None
        pod = running(h)[0]
        pod.status.containerStatuses[0].restartCount = 2
        await h.cs.resource(Pod, "ns").update_status(pod)
        await settle()
        failed = condition(stored(h), "Failed")
        assert failed is not None and failed.reason == "BackoffLimitExceeded"


async def test_ttl_after_finished_deletes_the_job() -> None:
    async with Harness(JobController) as h, FakeKubelet(h.cs, h.clock):
        await h.cs.resource(Job, "ns").create(job(ttl=30))
        await settle()
        await finish(h, running(h)[0])
        assert condition(stored(h), "Complete") is not None
        await h.advance(29)
        assert h.cs.objects(Job, "ns")
        await h.advance(2)
        assert not h.cs.objects(Job, "ns")


async def test_finalizers_of_a_deleted_job_pods_are_removed() -> None:
    async with Harness(JobController) as h, FakeKubelet(h.cs, h.clock):
        await h.cs.resource(Job, "ns").create(job(completions=2, parallelism=2))
        await settle()
        await h.cs.resource(Job, "ns").delete("pi")
        await settle()
        assert all(FINALIZER not in p.metadata.finalizers for p in h.cs.objects(Pod, "ns"))


async def test_started_job_records_its_start_time() -> None:
    async with Harness(JobController) as h:
        await h.cs.resource(Job, "ns").create(job())
        await settle()
        assert stored(h).status.startTime == rfc3339(h.clock.now())
        # suspended from the start: no pods and no start time
        await h.cs.resource(Job, "ns").create(job("later", suspend=True))
        await settle()
        later = next(j for j in h.cs.objects(Job, "ns") if j.metadata.name == "later")
        assert not later.status.startTime and condition(later, "Suspended") is not None
        assert len([p for p in h.pods() if p.metadata.generateName == "later-"]) == 0
