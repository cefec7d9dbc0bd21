"""Strategies for the batch group: Job and CronJob.

A Job's pods run to completion, so its template may restart only Never or
OnFailure. Unless the user asks for a manual selector, the apiserver owns the
Job's selector: on create it labels the template with the Job's uid and name
(batch.kubernetes.io/controller-uid, batch.kubernetes.io/job-name and their
legacy unprefixed twins) and selects on the uid, so two Jobs with the same
labels never adopt each other's pods; validation then insists the selector
is still the generated one. After creation the selector, the template and
(outside Indexed mode) completions are fixed. A CronJob is a schedule plus
a Job template whose selector is always generated when the Job is made.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Any

from api import (
    FieldError,
    forbidden_field,
    human_duration,
    invalid,
    is_dns1123_subdomain,
    not_supported,
    parse_time,
    required,
    to_dict,
)

from ._checks import immutable, nonnegative, optional_immutable, positive
from ._columns import optional_bool, since, spec_selector, template_columns
from ._cron import CronError, check_schedule
from ._pod import default_pod_spec, validate_label_selector
from ._strategy import AGE, NAME, Column, Strategy, validate_annotations, validate_labels
from ._workload import selector_matches, validate_template, validate_template_labels

CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID = "controller-uid"
LEGACY_JOB_NAME = "job-name"
COMPLETION_MODES = ("NonIndexed", "Indexed")
REPLACEMENT_POLICIES = ("TerminatingOrFailed", "Failed")
FAILURE_ACTIONS = ("Count", "FailIndex", "FailJob", "Ignore")
CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")
_MAX_INDEXED = 100000
_TIME_ZONE_PART = re.compile(r"^[A-Za-z.\-_0-9+]{1,14}$")
_CRONJOB_NAME_MAX = 52  # Jobs get an 11-character suffix; the result must be a label value


# ---------------------------------------------------------------- shared JobSpec rules


def default_job_template(spec: Any) -> None:
    default_pod_spec(spec.template.spec)
    for rule in spec.podFailurePolicy.rules:
        for pattern in rule.onPodConditions:
            pattern.status = pattern.status or "True"


def _validate_pod_failure_policy(spec: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if spec.template.spec.restartPolicy != "Never":
        errs.append(invalid(f"{path}.template.spec.restartPolicy", spec.template.spec.restartPolicy,
                            'only "Never" is supported when podFailurePolicy is specified'))
    for i, rule in enumerate(spec.podFailurePolicy.rules):
        rp = f"{path}.podFailurePolicy.rules[{i}]"
        if rule.action not in FAILURE_ACTIONS:
            errs.append(not_supported(f"{rp}.action", rule.action, FAILURE_ACTIONS))
        has_codes, has_conditions = rule.HasField("onExitCodes"), bool(rule.onPodConditions)
        if has_codes == has_conditions:
            which = "both" if has_codes else "one of"
            errs.append(invalid(rp, None, f"specifying {which} OnExitCodes and OnPodConditions is "
                                          f"{'not supported' if has_codes else 'required'}"))
        if has_codes:
            codes = rule.onExitCodes
            if codes.operator not in ("In", "NotIn"):
                errs.append(not_supported(f"{rp}.onExitCodes.operator", codes.operator, ["In", "NotIn"]))
            if not codes.values:
                errs.append(invalid(f"{rp}.onExitCodes.values", [], "at least one value is required"))
        for j, pattern in enumerate(rule.onPodConditions):
            if not pattern.type:
                errs.append(required(f"{rp}.onPodConditions[{j}].type"))
            if pattern.status not in ("True", "False", "Unknown"):
                errs.append(not_supported(f"{rp}.onPodConditions[{j}].status", pattern.status,
                                          ["True", "False", "Unknown"]))
    return errs


def validate_job_spec(spec: Any, path: str) -> list[FieldError]:
    """What a Job's spec and a CronJob's job template have in common."""
    errs: list[FieldError] = []
    for field in ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished",
                  "backoffLimitPerIndex", "maxFailedIndexes"):
        if spec.HasField(field):
            errs += nonnegative(getattr(spec, field), f"{path}.{field}")
    if spec.HasField("activeDeadlineSeconds"):
        errs += positive(spec.activeDeadlineSeconds, f"{path}.activeDeadlineSeconds")
    indexed = spec.HasField("completionMode") and spec.completionMode == "Indexed"
    if spec.HasField("completionMode") and spec.completionMode not in COMPLETION_MODES:
        errs.append(not_supported(f"{path}.completionMode", spec.completionMode, COMPLETION_MODES))
    if indexed:
        if not spec.HasField("completions"):
            errs.append(required(f"{path}.completions", "when completion mode is Indexed"))
        for field in ("completions", "parallelism"):
            if getattr(spec, field) > _MAX_INDEXED:
                errs.append(invalid(f"{path}.{field}", getattr(spec, field),
                                    f"must be less than or equal to {_MAX_INDEXED} when completion mode is Indexed"))
    if spec.HasField("backoffLimitPerIndex") and not indexed:
        errs.append(forbidden_field(f"{path}.backoffLimitPerIndex", "requires indexed completion mode"))
    if spec.HasField("maxFailedIndexes"):
        if not spec.HasField("backoffLimitPerIndex"):
            errs.append(required(f"{path}.backoffLimitPerIndex", "when maxFailedIndexes is specified"))
        if spec.HasField("completions") and spec.maxFailedIndexes > spec.completions:
            errs.append(invalid(f"{path}.maxFailedIndexes", spec.maxFailedIndexes,
                                "must be less than or equal to completions"))
    if spec.HasField("podReplacementPolicy"):
        allowed = ("Failed",) if spec.HasField("podFailurePolicy") else REPLACEMENT_POLICIES
        if spec.podReplacementPolicy not in allowed:
            errs.append(not_supported(f"{path}.podReplacementPolicy", spec.podReplacementPolicy, allowed))
    if spec.HasField("podFailurePolicy"):
        errs += _validate_pod_failure_policy(spec, path)
    errs += validate_template(spec.template, f"{path}.template")
    if spec.template.spec.restartPolicy not in ("OnFailure", "Never"):
        errs.append(required(f"{path}.template.spec.restartPolicy", 'valid values: "OnFailure", "Never"'))
    return errs


# ---------------------------------------------------------------- Job


def _manual_selector(spec: Any) -> bool:
    return spec.HasField("manualSelector") and spec.manualSelector


def _has_condition(job: Any, kind: str) -> bool:
    return any(c.type == kind and c.status == "True" for c in job.status.conditions)


def job_status(job: Any, now: float = 0.0) -> str:
    """kubectl's STATUS column for a Job."""
    if _has_condition(job, "Complete"):
        return "Complete"
    if _has_condition(job, "Failed"):
        return "Failed"
    if job.metadata.deletionTimestamp:
        return "Terminating"
    for condition in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if _has_condition(job, condition):
            return condition
    return "Running"


def _completions(job: Any, now: float) -> str:
    spec, succeeded = job.spec, job.status.succeeded
    if spec.HasField("completions"):
        return f"{succeeded}/{spec.completions}"
    if spec.parallelism > 1:
        return f"{succeeded}/1 of {spec.parallelism}"
    return f"{succeeded}/1"


def _duration(job: Any, now: float) -> str:
    status = job.status
    if not status.startTime:
        return ""
    end = parse_time(status.completionTime) if status.completionTime else now
    return human_duration(end - parse_time(status.startTime))


def _validate_has_label(template: Any, key: str, expected: str) -> list[FieldError]:
    labels = template.metadata.labels
    path = f"spec.template.metadata.labels[{key}]"
    if key not in labels:
        return [required(path, f"must be '{expected}'")]
    if labels[key] != expected:
        return [invalid(path, dict(labels), f"must be '{expected}'")]
    return []


def _validate_generated_selector(job: Any) -> list[FieldError]:
    """The selector and template labels the apiserver generated are intact."""
    spec, meta = job.spec, job.metadata
    if _manual_selector(spec) or not spec.HasField("selector"):
        return []
    errs: list[FieldError] = []
    if not meta.uid:
        errs.append(required("metadata.uid"))
    expected = {LEGACY_CONTROLLER_UID: meta.uid, LEGACY_JOB_NAME: meta.name,
                CONTROLLER_UID: meta.uid, JOB_NAME: meta.name}
    for key, value in expected.items():
        errs += _validate_has_label(spec.template, key, value)
    if selector_matches(spec.selector, expected) is False:
        errs.append(invalid("spec.selector", to_dict(spec.selector), "`selector` not auto-generated"))
    return errs


class JobStrategy(Strategy):
    selectable_fields = ("status.successful",)
    columns = (
        NAME,
        Column("Status", job_status),
        Column("Completions", _completions),
        Column("Duration", _duration),
        AGE,
        *template_columns(lambda o: o.spec.template, spec_selector),
    )

    def prepare_for_create(self, obj: Any, now: float) -> None:
        super().prepare_for_create(obj, now)
        if _manual_selector(obj.spec):
            return
        meta, spec = obj.metadata, obj.spec
        labels = spec.template.metadata.labels
        for key, value in ((LEGACY_JOB_NAME, meta.name), (JOB_NAME, meta.name),
                           (LEGACY_CONTROLLER_UID, meta.uid), (CONTROLLER_UID, meta.uid)):
            if key not in labels:  # a conflicting user label fails validation instead
                labels[key] = value
        spec.selector.SetInParent()
        if CONTROLLER_UID not in spec.selector.matchLabels:
            spec.selector.matchLabels[CONTROLLER_UID] = meta.uid

    def default(self, obj: Any) -> None:
        spec = obj.spec
        if not spec.HasField("completions") and not spec.HasField("parallelism"):
            spec.completions = 1
        if not spec.HasField("parallelism"):
            spec.parallelism = 1
        if not spec.HasField("backoffLimit"):
            spec.backoffLimit = 2**31 - 1 if spec.HasField("backoffLimitPerIndex") else 6
        if not spec.HasField("completionMode"):
            spec.completionMode = "NonIndexed"
        if not spec.HasField("suspend"):
            spec.suspend = False
        if not spec.HasField("podReplacementPolicy"):
            spec.podReplacementPolicy = "Failed" if spec.HasField("podFailurePolicy") else "TerminatingOrFailed"
        if not obj.metadata.labels:
            # Runs after prepare_for_create, so a Job without labels of its
            # own carries the generated job-name and controller-uid ones, as
            # `kubectl get job -o yaml` shows in Kubernetes.
            obj.metadata.labels.update(spec.template.metadata.labels)
        default_job_template(spec)

    def validate(self, obj: Any) -> list[FieldError]:
        spec = obj.spec
        errs = _validate_generated_selector(obj)
        errs += validate_job_spec(spec, "spec")
        if not spec.HasField("selector"):
            errs.append(required("spec.selector"))
        else:
            errs += validate_label_selector(spec.selector, "spec.selector")
            errs += validate_template_labels(spec.selector, spec.template, "spec.template")
        return errs

    def validate_update(self, obj: Any, old: Any) -> list[FieldError]:
        spec, was = obj.spec, old.spec
        errs = self.validate(obj)
        errs += immutable(spec.selector, was.selector, "spec.selector")
        errs += immutable(spec.template, was.template, "spec.template")
        errs += optional_immutable(spec, was, "completionMode", "spec.completionMode")
        errs += immutable(spec.podFailurePolicy, was.podFailurePolicy, "spec.podFailurePolicy")
        errs += optional_immutable(spec, was, "backoffLimitPerIndex", "spec.backoffLimitPerIndex")
        if spec.completionMode != "Indexed":
            errs += optional_immutable(spec, was, "completions", "spec.completions")
        elif spec.completions != was.completions and spec.completions != spec.parallelism:
            # An elastic Indexed Job scales completions and parallelism together.
            errs.append(invalid("spec.completions", spec.completions,
                                "can only be modified in tandem with spec.parallelism"))
        return errs

    def validate_status_update(self, obj: Any, old: Any) -> list[FieldError]:
        status = obj.status
        errs: list[FieldError] = []
        for field in ("active", "succeeded", "failed", "ready", "terminating"):
            errs += nonnegative(getattr(status, field), f"status.{field}")
        return errs

    def fields(self, obj: Any) -> dict[str, str]:
        return {"status.successful": str(obj.status.succeeded)}


# ---------------------------------------------------------------- CronJob


def validate_time_zone(spec: Any) -> list[FieldError]:
    if not spec.HasField("timeZone"):
        return []
    zone, path = spec.timeZone, "spec.timeZone"
    if not zone:
        return [invalid(path, zone, "timeZone must be nil or non-empty string")]
    for part in zone.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TIME_ZONE_PART.match(part):
            return [invalid(path, zone, f"unknown time zone {zone}")]
    if zone.lower() == "local":
        return [invalid(path, zone, "timeZone must be an explicit time zone as defined in "
                                    "https://www.iana.org/time-zones")]
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        # Without a time zone database on this host there is nothing to
        # check the name against; the syntax check above still holds.
        if zoneinfo.available_timezones():
            return [invalid(path, zone, f"unknown time zone {zone}")]
    return []


def _validate_schedule(schedule: str, old_schedule: str | None) -> list[FieldError]:
    path = "spec.schedule"
    if not schedule:
        return [required(path)]
    errs: list[FieldError] = []
    try:
        check_schedule(schedule)
    except CronError as err:
        errs.append(invalid(path, schedule, str(err)))
    # A zone inside the schedule is only tolerated on objects that had one.
    if "TZ" in schedule and not (old_schedule is not None and "TZ" in old_schedule):
        errs.append(invalid(path, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
    return errs


class CronJobStrategy(Strategy):
    columns = (
        NAME,
        Column("Schedule", lambda o, now: o.spec.schedule),
        Column("TimeZone", lambda o, now: o.spec.timeZone if o.spec.HasField("timeZone") else "<none>"),
        Column("Suspend", lambda o, now: optional_bool(o.spec, "suspend")),
        Column("Active", lambda o, now: str(len(o.status.active)), type="integer"),
        Column("Last Schedule", lambda o, now: since(o.status.lastScheduleTime, now)
               if o.status.lastScheduleTime else "<none>"),
        AGE,
        *template_columns(lambda o: o.spec.jobTemplate.spec.template, lambda o: o.spec.jobTemplate.spec.selector
                          if o.spec.jobTemplate.spec.HasField("selector") else None),
    )

    def validate_name(self, name: str) -> list[str]:
        errs = is_dns1123_subdomain(name)
        if len(name) > _CRONJOB_NAME_MAX:
            errs.append(f"must be no more than {_CRONJOB_NAME_MAX} characters")
        return errs

    def default(self, obj: Any) -> None:
        spec = obj.spec
        spec.concurrencyPolicy = spec.concurrencyPolicy or "Allow"
        if not spec.HasField("suspend"):
            spec.suspend = False
        if not spec.HasField("successfulJobsHistoryLimit"):
            spec.successfulJobsHistoryLimit = 3
        if not spec.HasField("failedJobsHistoryLimit"):
            spec.failedJobsHistoryLimit = 1
        default_job_template(spec.jobTemplate.spec)

    def _validate(self, obj: Any, old: Any | None) -> list[FieldError]:
        spec = obj.spec
        errs = _validate_schedule(spec.schedule, old.spec.schedule if old is not None else None)
        if spec.HasField("startingDeadlineSeconds"):
            errs += nonnegative(spec.startingDeadlineSeconds, "spec.startingDeadlineSeconds")
        if old is None or spec.HasField("timeZone") != old.spec.HasField("timeZone") or \
                spec.timeZone != old.spec.timeZone:
            errs += validate_time_zone(spec)
        if not spec.concurrencyPolicy:
            errs.append(required("spec.concurrencyPolicy"))
        elif spec.concurrencyPolicy not in CONCURRENCY_POLICIES:
            errs.append(not_supported("spec.concurrencyPolicy", spec.concurrencyPolicy, CONCURRENCY_POLICIES))
        for field in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
            if spec.HasField(field):
                errs += nonnegative(getattr(spec, field), f"spec.{field}")
        template = spec.jobTemplate
        errs += validate_labels(template.metadata.labels, "spec.jobTemplate.metadata.labels")
        errs += validate_annotations(template.metadata.annotations, "spec.jobTemplate.metadata.annotations")
        errs += validate_job_spec(template.spec, "spec.jobTemplate.spec")
        if template.spec.HasField("selector"):
            errs.append(invalid("spec.jobTemplate.spec.selector", to_dict(template.spec.selector),
                                "`selector` will be auto-generated"))
        if _manual_selector(template.spec):
            errs.append(not_supported("spec.jobTemplate.spec.manualSelector", True, ["nil", "false"]))
        return errs

    def validate(self, obj: Any) -> list[FieldError]:
        return self._validate(obj, None)

    def validate_update(self, obj: Any, old: Any) -> list[FieldError]:
        return self._validate(obj, old)

