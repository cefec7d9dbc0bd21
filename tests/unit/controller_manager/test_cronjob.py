"""controller_manager/cronjob.py and _cron_schedule.py with a fake clock:
five-field schedules, macros and `@every`, time zones; a Job per
scheduled time with a deterministic name; concurrencyPolicy Allow, Forbid
and Replace; startingDeadlineSeconds; suspend; the active list and
lastSuccessfulTime following the Jobs; successful and failed history
limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api import FakeClock, parse_time, rfc3339
from controller_manager import _cron_schedule
from controller_manager.cronjob import SCHEDULED_TIMESTAMP, CronJobController
from proto import batch_pb2

from ._workloads import Harness, settle, template

CronJob = batch_pb2.CronJob
Job = batch_pb2.Job

# 2024-01-15T10:00:30Z: thirty seconds past a minute, hour and day boundary
START = datetime(2024, 1, 15, 10, 0, 30, tzinfo=UTC).timestamp()


def ts(text: str) -> float:
    return parse_time(text)


def cron_job(name: str = "tick", schedule: str = "* * * * *", *, policy: str = "Allow",
             deadline: int | None = None, suspend: bool = False, zone: str | None = None,
             keep_ok: int = 3, keep_failed: int = 1) -> CronJob:
    cj = CronJob()
    cj.metadata.name, cj.metadata.namespace = name, "ns"
    cj.spec.schedule = schedule
    cj.spec.concurrencyPolicy = policy
    cj.spec.suspend = suspend
    if deadline is not None:
        cj.spec.startingDeadlineSeconds = deadline
    if zone is not None:
        cj.spec.timeZone = zone
    cj.spec.successfulJobsHistoryLimit = keep_ok
    cj.spec.failedJobsHistoryLimit = keep_failed
    cj.spec.jobTemplate.metadata.labels["team"] = "ops"
    cj.spec.jobTemplate.spec.template.CopyFrom(template({"app": name}, "busybox"))
    cj.spec.jobTemplate.spec.template.spec.restartPolicy = "OnFailure"
    return cj


def jobs(h: Harness) -> list[Job]:
    return sorted(h.cs.objects(Job, "ns"), key=lambda j: j.metadata.name)


def stored(h: Harness) -> CronJob:
    return h.cs.objects(CronJob, "ns")[0]


async def end_job(h: Harness, name: str, kind: str = "Complete") -> None:
    j = next(j for j in jobs(h) if j.metadata.name == name)
    j.status.conditions.add(type=kind, status="True", lastTransitionTime=rfc3339(h.clock.now()))
    if kind == "Complete":
        j.status.completionTime = rfc3339(h.clock.now())
    j.status.startTime = j.status.startTime or j.metadata.creationTimestamp
    await h.cs.resource(Job, "ns").update_status(j)
    await settle()


# ---------------------------------------------------------------- schedules


def test_five_fields_macros_and_every() -> None:
    every_5 = _cron_schedule.parse("*/5 * * * *", "UTC", 0)
    assert every_5.next(ts("2024-01-15T10:02:00Z")) == ts("2024-01-15T10:05:00Z")
    assert every_5.next(ts("2024-01-15T10:05:00Z")) == ts("2024-01-15T10:10:00Z")  # strictly after
    assert every_5.latest(ts("2024-01-15T10:05:00Z")) == ts("2024-01-15T10:05:00Z")
    assert every_5.latest(ts("2024-01-15T10:09:59Z")) == ts("2024-01-15T10:05:00Z")
    hourly = _cron_schedule.parse("@hourly", "UTC", 0)
    assert hourly.next(ts("2024-01-15T10:00:30Z")) == ts("2024-01-15T11:00:00Z")
    weekdays = _cron_schedule.parse("0 9 ? * mon-fri", "UTC", 0)
    assert weekdays.next(ts("2024-01-19T10:00:00Z")) == ts("2024-01-22T09:00:00Z")  # Friday -> Monday
    midnight = _cron_schedule.parse("@midnight", "UTC", 0)
    assert midnight.next(ts("2024-01-15T10:00:00Z")) == ts("2024-01-16T00:00:00Z")
    every = _cron_schedule.parse("@every 1m30s", None, ts("2024-01-15T10:00:00Z"))
    assert every.next(ts("2024-01-15T10:00:00Z")) == ts("2024-01-15T10:01:30Z")
    assert every.latest(ts("2024-01-15T10:04:00Z")) == ts("2024-01-15T10:03:00Z")
    assert every.latest(ts("2024-01-15T10:01:00Z")) is None


def test_time_zones() -> None:
    tokyo = _cron_schedule.parse("0 9 * * *", "Asia/Tokyo", 0)
    assert tokyo.next(ts("2024-01-15T00:30:00Z")) == ts("2024-01-16T00:00:00Z")
    new_york = _cron_schedule.parse("0 9 * * *", "America/New_York", 0)
    assert new_york.next(ts("2024-01-15T00:00:00Z")) == ts("2024-01-15T14:00:00Z")  # EST
    assert new_york.next(ts("2024-07-15T00:00:00Z")) == ts("2024-07-15T13:00:00Z")  # EDT
    prefixed = _cron_schedule.parse("CRON_TZ=Asia/Tokyo 0 9 * * *", None, 0)
    assert prefixed.next(ts("2024-01-15T00:30:00Z")) == ts("2024-01-16T00:00:00Z")
    with pytest.raises(_cron_schedule.ScheduleError, match="unknown time zone"):
        _cron_schedule.parse("0 9 * * *", "Mars/Olympus", 0)
    with pytest.raises(_cron_schedule.ScheduleError, match="unparseable"):
        _cron_schedule.parse("61 * * * *", "UTC", 0)


# ---------------------------------------------------------------- the controller


async def test_a_job_per_scheduled_time() -> None:
    async with Harness(CronJobController, clock=FakeClock(START)) as h:
        created = await h.cs.resource(CronJob, "ns").create(cron_job())
        await settle()
        assert not jobs(h)  # created 30 s past the minute: nothing due yet
        await h.advance(31, tick=5)  # the controller wakes just after the minute
        (first,) = jobs(h)
        minute = ts("2024-01-15T10:01:00Z")
        assert first.metadata.name == f"tick-{int(minute) // 60}"
        assert first.metadata.labels["team"] == "ops"
        assert first.metadata.annotations[SCHEDULED_TIMESTAMP] == "2024-01-15T10:01:00Z"
        ref = first.metadata.ownerReferences[0]
        assert (ref.kind, ref.uid, ref.controller) == ("CronJob", created.metadata.uid, True)
        status = stored(h).status
        assert [a.name for a in status.active] == [first.metadata.name]
        assert status.lastScheduleTime == "2024-01-15T10:01:00Z"
        await h.advance(60, tick=5)
        assert len(jobs(h)) == 2  # Allow: the first one still runs, the second starts anyway
        assert h.events("SuccessfulCreate")


async def test_completion_updates_status_and_history_is_limited() -> None:
    async with Harness(CronJobController, clock=FakeClock(START)) as h:
        await h.cs.resource(CronJob, "ns").create(cron_job(keep_ok=2, keep_failed=1))
        await settle()
        for _ in range(4):
            await h.advance(60, tick=5)
            newest = jobs(h)[-1].metadata.name
            await end_job(h, newest)
        status = stored(h).status
        assert not status.active and status.lastSuccessfulTime == rfc3339(h.clock.now())
        assert len(jobs(h)) == 2  # the two newest successful Jobs are kept
        await h.advance(60, tick=5)
        await end_job(h, jobs(h)[-1].metadata.name, "Failed")
        await h.advance(60, tick=5)
        await end_job(h, jobs(h)[-1].metadata.name, "Failed")
        failed = [j for j in jobs(h) if any(c.type == "Failed" for c in j.status.conditions)]
        assert len(failed) == 1 and len(jobs(h)) == 3


async def test_forbid_skips_while_a_job_runs() -> None:
    async with Harness(CronJobController, clock=FakeClock(START)) as h:
        await h.cs.resource(CronJob, "ns").create(cron_job(policy="Forbid"))
        await settle()
        await h.advance(31, tick=5)
        await h.advance(120, tick=5)
        assert len(jobs(h)) == 1
        assert h.events("JobAlreadyActive")
        await end_job(h, jobs(h)[0].metadata.name)
        await h.advance(60, tick=5)
        assert len(jobs(h)) == 2


async def test_replace_deletes_the_running_job() -> None:
    async with Harness(CronJobController, clock=FakeClock(START)) as h:
        await h.cs.resource(CronJob, "ns").create(cron_job(policy="Replace"))
        await settle()
        await h.advance(31, tick=5)
        (first,) = jobs(h)
        await h.advance(60, tick=5)
        (second,) = jobs(h)
        assert second.metadata.name != first.metadata.name
        assert [a.name for a in stored(h).status.active] == [second.metadata.name]


async def test_starting_deadline_and_suspend() -> None:
    async with Harness(CronJobController, clock=FakeClock(START)) as h:
        await h.cs.resource(CronJob, "ns").create(cron_job(deadline=10, suspend=True))
        await settle()
        await h.advance(180, tick=10)
        assert not jobs(h)  # suspended
        # resumed 50 s after 10:03:00: that run's 10 s deadline has passed
        await h.advance(20, tick=10)
        cj = stored(h)
        cj.spec.suspend = False
        await h.cs.resource(CronJob, "ns").update(cj)
        await settle()
        assert not jobs(h)
        (missed,) = h.events("MissSchedule")
        assert "2024-01-15T10:03:00Z" in missed.message
        await h.advance(11, tick=5)  # 10:04:00: on time again
        assert len(jobs(h)) == 1
        assert stored(h).status.lastScheduleTime == "2024-01-15T10:04:00Z"


async def test_time_zone_of_the_cron_job() -> None:
    start = datetime(2024, 1, 15, 23, 59, 30, tzinfo=UTC).timestamp()
    async with Harness(CronJobController, clock=FakeClock(start)) as h:
        await h.cs.resource(CronJob, "ns").create(cron_job(schedule="0 9 * * *", zone="Asia/Tokyo"))
        await settle()
        await h.advance(31, tick=5)  # 00:00 UTC is 09:00 in Tokyo
        (j,) = jobs(h)
        assert j.metadata.annotations[SCHEDULED_TIMESTAMP] == "2024-01-16T09:00:00+09:00"


async def test_missing_active_job_is_dropped() -> None:
    async with Harness(CronJobController, clock=FakeClock(START)) as h:
        await h.cs.resource(CronJob, "ns").create(cron_job(schedule="*/5 * * * *"))
        await settle()
        await h.advance(300, tick=30)  # 10:05
        (first,) = jobs(h)
        await h.cs.resource(Job, "ns").delete(first.metadata.name)
        await settle()
        assert not stored(h).status.active
        assert h.events("MissingJob")


async def test_after_a_long_gap_only_the_latest_run_starts() -> None:
    async with Harness(CronJobController, clock=FakeClock(START)) as h:
        await h.cs.resource(CronJob, "ns").create(cron_job(suspend=True))
        await settle()
        cj = stored(h)
        cj.status.lastScheduleTime = "2024-01-15T07:00:00Z"  # three hours of missed minutes
        cj = await h.cs.resource(CronJob, "ns").update_status(cj)
        cj.spec.suspend = False
        await h.cs.resource(CronJob, "ns").update(cj)
        await settle()
        (j,) = jobs(h)
        assert j.metadata.annotations[SCHEDULED_TIMESTAMP] == "2024-01-15T10:00:00Z"
        assert h.events("TooManyMissedTimes")
