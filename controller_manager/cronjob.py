"""The CronJob controller: a Job for every time the schedule fires.

Keys are CronJobs; a Job the CronJob controls maps to its CronJob's key. A
sync:

1. Reconciles status.active with the Jobs it controls: finished Jobs leave
   the list (a Complete one sets lastSuccessfulTime), Jobs that are gone
   leave it, unfinished ones missing from it join it.
2. Unless suspended, finds the most recent time the schedule fired since
   lastScheduleTime (or the CronJob's creation). Earlier missed times are
   not made up for (more than 100 of them: a TooManyMissedTimes warning).
   A time already started starts nothing; nor does one whose
   startingDeadlineSeconds have passed (a MissSchedule warning: the
   controller was down, or the clock jumped).
3. concurrencyPolicy decides about a run while others are active: Allow
   starts it anyway, Forbid skips it, Replace deletes the active Jobs
   first.
4. Creates the Job `<cronjob>-<minutes since the epoch of the schedule
   time>`, so the same scheduled time can never start twice (a second
   attempt is AlreadyExists), and records it in status.active and
   lastScheduleTime.
5. Deletes the oldest finished Jobs beyond successfulJobsHistoryLimit and
   failedJobsHistoryLimit.
6. Re-queues itself for the next time the schedule fires.

Time comes from the controller's clock (`ctx.clock`), so unit tests drive
schedules with a FakeClock. Schedules are evaluated by _cron_schedule.py.
"""

from __future__ import annotations

import logging
from datetime import datetime

from api import SCHEME, StatusError, parse_time, rfc3339
from client import EVENT_TYPE_NORMAL, EVENT_TYPE_WARNING, DeletedFinalStateUnknown, split_key
from proto import batch_pb2, core_pb2

from . import _cron_schedule
from ._conditions import condition_true
from ._controller import Controller, ControllerContext
from ._owner import controller_ref, new_controller_ref
from ._podutil import unwrap

log = logging.getLogger(__name__)

CronJob = batch_pb2.CronJob
Job = batch_pb2.Job
CRONJOB_KIND = SCHEME.for_message(CronJob)
JOB_KIND = SCHEME.for_message(Job)

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
#: Beyond this many missed runs the controller warns (the clock may be off,
#: or the CronJob was suspended for long): only the latest one is started.
TOO_MANY_MISSED = 100
#: Wake a little after the scheduled time, never a little before.
_NEXT_SLACK = 0.1


def job_finished(job: Job) -> str:
    """"Complete", "Failed" or "" (still running)."""
    for kind in ("Complete", "Failed"):
        if condition_true(job.status.conditions, kind):
            return kind
    return ""


def job_name(cronjob: CronJob, scheduled: float) -> str:
    return f"{cronjob.metadata.name}-{int(scheduled) // 60}"


def _time(text: str) -> float | None:
    try:
        return parse_time(text) if text else None
    except ValueError:
        return None


class CronJobController(Controller):
    name = "cronjob"
    default_workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        cronjobs = ctx.informers.informer_for(CronJob)
        jobs = ctx.informers.informer_for(Job)
        self.cronjobs = cronjobs.lister()
        self.jobs = jobs.lister()
        cronjobs.add_event_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new),
                                   on_delete=self.enqueue)
        jobs.add_event_handler(on_add=self._job_changed, on_update=lambda _old, new: self._job_changed(new),
                               on_delete=self._job_changed)

    def _job_changed(self, job: Job | DeletedFinalStateUnknown[Job]) -> None:
        obj = unwrap(job)
        ref = controller_ref(obj)
        if ref is not None and ref.kind == "CronJob":
            self.queue.add(f"{obj.metadata.namespace}/{ref.name}")

    # ------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        try:
            cronjob = self.cronjobs.get(namespace, name)
        except StatusError as err:
            if err.reason == "NotFound":
                return
            raise
        jobs = [j for j in self.jobs.list(namespace)
                if (ref := controller_ref(j)) is not None and ref.uid == cronjob.metadata.uid]
        new = CronJob()
        new.CopyFrom(cronjob)
        await self._reconcile_active(new, jobs)
        requeue: float | None = None
        if not cronjob.metadata.deletionTimestamp:
            requeue = await self._maybe_start(new, jobs)
        if new.status.SerializeToString(deterministic=True) != cronjob.status.SerializeToString(deterministic=True):
            await self.clientset.resource(CronJob, namespace).update_status(new)
        if not cronjob.metadata.deletionTimestamp:
            await self._clean_up_history(cronjob, jobs)
        if requeue is not None:
            self.queue.add_after(key, requeue)

    async def _reconcile_active(self, cronjob: CronJob, jobs: list[Job]) -> None:
        status = cronjob.status
        active = {ref.uid for ref in status.active}
        for job in jobs:
            finished = job_finished(job)
            if job.metadata.uid in active and finished:
                self._remove_active(cronjob, job.metadata.uid)
                self.recorder.event(cronjob, EVENT_TYPE_NORMAL, "SawCompletedJob",
                                    f"Saw completed job: {job.metadata.name}, condition: {finished}")
                if finished == "Complete":
                    done = _time(job.status.completionTime)
                    last = _time(status.lastSuccessfulTime)
                    if done is not None and (last is None or last < done):
                        status.lastSuccessfulTime = job.status.completionTime
            elif job.metadata.uid not in active and not finished and not job.metadata.deletionTimestamp:
                # Ours but not listed: created just before a crash, or the
                # status we read is older than the Job. Either way it runs.
                status.active.append(self._reference(job))
        present = {j.metadata.uid for j in jobs}
        for ref in list(status.active):
            if ref.uid in present:
                continue
            # The Job informer may simply not have seen a Job created a
            # moment ago: only the API can say it is really gone.
            try:
                found = await self.clientset.resource(Job, ref.namespace or cronjob.metadata.namespace).get(ref.name)
                if found.metadata.uid == ref.uid:
                    continue
            except StatusError as err:
                if err.reason != "NotFound":
                    raise
            self.recorder.event(cronjob, EVENT_TYPE_NORMAL, "MissingJob", f"Active job went missing: {ref.name}")
            self._remove_active(cronjob, ref.uid)

    @staticmethod
    def _remove_active(cronjob: CronJob, uid: str) -> None:
        kept = [r for r in cronjob.status.active if r.uid != uid]
        del cronjob.status.active[:]
        cronjob.status.active.extend(kept)

    @staticmethod
    def _reference(job: Job) -> core_pb2.ObjectReference:
        return core_pb2.ObjectReference(kind="Job", namespace=job.metadata.namespace, name=job.metadata.name,
                                        uid=job.metadata.uid, apiVersion=JOB_KIND.api_version,
                                        resourceVersion=job.metadata.resourceVersion)

    # ------------------------------------------------------------ scheduling

    async def _maybe_start(self, cronjob: CronJob, jobs: list[Job]) -> float | None:
        """Start the due run, if any; the seconds until the next one."""
        spec, status = cronjob.spec, cronjob.status
        if spec.HasField("suspend") and spec.suspend:
            return None
        now = self.clock.now()
        since = _time(status.lastScheduleTime) or _time(cronjob.metadata.creationTimestamp) or now
        try:
            schedule = _cron_schedule.parse(spec.schedule, spec.timeZone if spec.HasField("timeZone") else None,
                                            since)
        except _cron_schedule.ScheduleError as err:
            reason = "UnknownTimeZone" if "time zone" in str(err) else "UnparseableSchedule"
            self.recorder.event(cronjob, EVENT_TYPE_WARNING, reason, str(err))
            return None
        wait = schedule.next(now) - now + _NEXT_SLACK
        scheduled = schedule.latest(now)
        if scheduled is None or scheduled <= since:
            return wait
        deadline = spec.startingDeadlineSeconds if spec.HasField("startingDeadlineSeconds") else None
        if deadline is not None and scheduled + deadline < now:
            self.recorder.event(cronjob, EVENT_TYPE_WARNING, "MissSchedule",
                                f"Missed scheduled time to start a job: {rfc3339(scheduled)}")
            return wait
        # Runs missed before this one are not made up for; many of them
        # mean the controller was down long (or the clock jumped).
        self._warn_if_many_missed(cronjob, schedule, since if deadline is None else max(since, now - deadline), now)
        name = job_name(cronjob, scheduled)
        if any(ref.name == name for ref in status.active) or _time(status.lastScheduleTime) == scheduled:
            return wait
        if spec.concurrencyPolicy == "Forbid" and status.active:
            self.recorder.event(cronjob, EVENT_TYPE_NORMAL, "JobAlreadyActive",
                                "Not starting job because prior execution is running and concurrency policy is "
                                "Forbid")
            return wait
        if spec.concurrencyPolicy == "Replace":
            for ref in list(status.active):
                await self._delete_job(cronjob, ref.name)
                self._remove_active(cronjob, ref.uid)
        job = self._job_for(cronjob, name, scheduled, schedule)
        try:
            created = await self.clientset.resource(Job, cronjob.metadata.namespace).create(job)
        except StatusError as err:
            if err.reason != "AlreadyExists":
                self.recorder.event(cronjob, EVENT_TYPE_WARNING, "FailedCreate", f"Error creating job: {err}")
                raise
            # Created before, by us (a status write that did not land) or by
            # someone else: either way this scheduled time has had its run.
            existing = next((j for j in jobs if j.metadata.name == name), None)
            if existing is not None and not job_finished(existing) and \
                    not any(r.uid == existing.metadata.uid for r in status.active):
                status.active.append(self._reference(existing))
            status.lastScheduleTime = rfc3339(scheduled)
            return wait
        self.recorder.event(cronjob, EVENT_TYPE_NORMAL, "SuccessfulCreate", f"Created job {created.metadata.name}")
        log.info("cronjob %s/%s: created job %s for %s", cronjob.metadata.namespace, cronjob.metadata.name,
                 created.metadata.name, rfc3339(scheduled))
        status.active.append(self._reference(created))
        status.lastScheduleTime = rfc3339(scheduled)
        return wait

    def _warn_if_many_missed(self, cronjob: CronJob, schedule: _cron_schedule.Schedule, earliest: float,
                             now: float) -> None:
        missed, t = 0, earliest
        while missed <= TOO_MANY_MISSED:
            t = schedule.next(t)
            if t > now:
                return
            missed += 1
        self.recorder.event(cronjob, EVENT_TYPE_WARNING, "TooManyMissedTimes",
                            f"too many missed start times: > {TOO_MANY_MISSED}. Set or decrease "
                            ".spec.startingDeadlineSeconds or check clock skew")

    def _job_for(self, cronjob: CronJob, name: str, scheduled: float, schedule: _cron_schedule.Schedule) -> Job:
        template = cronjob.spec.jobTemplate
        job = Job()
        job.metadata.name = name
        job.metadata.namespace = cronjob.metadata.namespace
        job.metadata.labels.update(template.metadata.labels)
        job.metadata.annotations.update(template.metadata.annotations)
        zone = schedule.zone if isinstance(schedule, _cron_schedule.CronSchedule) else None
        stamp = datetime.fromtimestamp(scheduled, tz=zone).isoformat() if zone is not None else rfc3339(scheduled)
        job.metadata.annotations[SCHEDULED_TIMESTAMP] = stamp.replace("+00:00", "Z")
        job.metadata.ownerReferences.append(new_controller_ref(cronjob, CRONJOB_KIND))
        job.spec.CopyFrom(template.spec)
        return job

    async def _delete_job(self, cronjob: CronJob, name: str) -> None:
        try:
            await self.clientset.resource(Job, cronjob.metadata.namespace).delete(name, propagation="Background")
        except StatusError as err:
            if err.reason != "NotFound":
                self.recorder.event(cronjob, EVENT_TYPE_WARNING, "FailedDelete", f"Deleted job: {err}")
                raise
        self.recorder.event(cronjob, EVENT_TYPE_NORMAL, "SuccessfulDelete", f"Deleted job {name}")

    # ------------------------------------------------------------ history

    async def _clean_up_history(self, cronjob: CronJob, jobs: list[Job]) -> None:
        spec = cronjob.spec
        for kind, field in (("Complete", "successfulJobsHistoryLimit"), ("Failed", "failedJobsHistoryLimit")):
            if not spec.HasField(field):  # type: ignore[arg-type]
                continue
            limit = getattr(spec, field)
            done = [j for j in jobs if job_finished(j) == kind and not j.metadata.deletionTimestamp]
            if len(done) <= limit:
                continue
            done.sort(key=lambda j: (_time(j.status.startTime) or 0.0, j.metadata.name))
            for job in done[:len(done) - limit]:
                await self._delete_job(cronjob, job.metadata.name)
