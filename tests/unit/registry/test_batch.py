"""batch.py: Job (defaults, the generated selector and template labels,
validation, immutable fields on update, status, printer rows) and CronJob
(defaults, schedule and time zone checks, the job template rules, rows)."""

from __future__ import annotations

import zoneinfo
from typing import Any

import pytest

from ._support import NOW, create_errors, created, headers, row, status_errors, strategy_for, update_errors

HAVE_TZDB = bool(zoneinfo.available_timezones())
POD = {"containers": [{"name": "pi", "image": "perl:5.34"}], "restartPolicy": "Never"}


def job(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
            "spec": {"template": {"spec": POD}, **spec}}


def cronjob(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "hello"},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": POD}}}, **spec}}


# ---------------------------------------------------------------- Job defaults and selector


def test_job_defaults() -> None:
    j = created(job())
    spec = j.spec
    assert (spec.completions, spec.parallelism, spec.backoffLimit) == (1, 1, 6)
    assert spec.completionMode == "NonIndexed"
    assert spec.HasField("suspend") and not spec.suspend
    assert spec.podReplacementPolicy == "TerminatingOrFailed"
    assert not spec.HasField("manualSelector")


def test_work_queue_job_keeps_completions_unset() -> None:
    spec = created(job(parallelism=3)).spec
    assert spec.parallelism == 3 and not spec.HasField("completions")
    per_index = created(job(completionMode="Indexed", completions=4, backoffLimitPerIndex=1)).spec
    assert per_index.backoffLimit == 2**31 - 1


def test_selector_and_labels_are_generated_from_uid_and_name() -> None:
    j = created(job())
    uid = j.metadata.uid
    assert uid
    assert dict(j.spec.selector.matchLabels) == {"batch.kubernetes.io/controller-uid": uid}
    generated = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": "pi",
                 "controller-uid": uid, "job-name": "pi"}
    assert dict(j.spec.template.metadata.labels) == generated
    assert dict(j.metadata.labels) == generated
    assert create_errors(job()) == []


def test_job_keeps_its_own_labels() -> None:
    j = created({**job(), "metadata": {"name": "pi", "labels": {"team": "a"}}})
    assert dict(j.metadata.labels) == {"team": "a"}


def test_manual_selector() -> None:
    manual = job(manualSelector=True, selector={"matchLabels": {"app": "pi"}},
                 template={"metadata": {"labels": {"app": "pi"}}, "spec": POD})
    j = created(manual)
    assert dict(j.spec.template.metadata.labels) == {"app": "pi"}
    assert create_errors(manual) == []
    assert create_errors(job(manualSelector=True)) == ["spec.selector: Required value"]
    mismatch = job(manualSelector=True, selector={"matchLabels": {"app": "pi"}})
    assert create_errors(mismatch) == [
        "spec.template.metadata.labels: Invalid value: {}: `selector` does not match template `labels`"]


def test_user_selector_without_manual_selector_is_rejected() -> None:
    doc = job(selector={"matchLabels": {"app": "pi"}}, template={"metadata": {"labels": {"app": "pi"}}, "spec": POD})
    errors = create_errors(doc)
    assert len(errors) == 1
    assert errors[0].startswith('spec.selector: Invalid value: {"matchLabels": {"app": "pi", '
                                '"batch.kubernetes.io/controller-uid": "')
    assert errors[0].endswith("`selector` not auto-generated")


def test_conflicting_template_label_is_reported() -> None:
    doc = job(template={"metadata": {"labels": {"job-name": "other"}}, "spec": POD})
    errors = create_errors(doc)
    assert len(errors) == 1
    assert errors[0].startswith('spec.template.metadata.labels[job-name]: Invalid value: {')
    assert errors[0].endswith(": must be 'pi'")


# ---------------------------------------------------------------- Job validation


@pytest.mark.parametrize(("spec", "expected"), [
    ({"template": {"spec": {**POD, "restartPolicy": "Always"}}},
     ['spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"']),
    ({"template": {"spec": {"containers": POD["containers"]}}},
     ['spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"']),
    ({"template": {"spec": {**POD, "restartPolicy": "OnFailure"}}}, []),
    ({"parallelism": -1}, ["spec.parallelism: Invalid value: -1: must be greater than or equal to 0"]),
    ({"completions": -2}, ["spec.completions: Invalid value: -2: must be greater than or equal to 0"]),
    ({"backoffLimit": -1}, ["spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"]),
    ({"ttlSecondsAfterFinished": -1},
     ["spec.ttlSecondsAfterFinished: Invalid value: -1: must be greater than or equal to 0"]),
    ({"activeDeadlineSeconds": 0}, ["spec.activeDeadlineSeconds: Invalid value: 0: must be greater than 0"]),
    ({"completionMode": "Indexed"}, []),  # completions defaulted to 1 since parallelism was unset too
    ({"completionMode": "Indexed", "parallelism": 2},
     ["spec.completions: Required value: when completion mode is Indexed"]),
    ({"completionMode": "Indexed", "completions": 200000},
     ["spec.completions: Invalid value: 200000: must be less than or equal to 100000 when completion mode is "
      "Indexed"]),
    ({"completionMode": "Sometimes"},
     ['spec.completionMode: Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"']),
    ({"backoffLimitPerIndex": 1}, ["spec.backoffLimitPerIndex: Forbidden: requires indexed completion mode"]),
    ({"completionMode": "Indexed", "completions": 3, "maxFailedIndexes": 1},
     ["spec.backoffLimitPerIndex: Required value: when maxFailedIndexes is specified"]),
    ({"completionMode": "Indexed", "completions": 3, "backoffLimitPerIndex": 1, "maxFailedIndexes": 4},
     ["spec.maxFailedIndexes: Invalid value: 4: must be less than or equal to completions"]),
    ({"podReplacementPolicy": "Sometimes"},
     ['spec.podReplacementPolicy: Unsupported value: "Sometimes": supported values: "TerminatingOrFailed", '
      '"Failed"']),
    ({"podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}},
     []),
    ({"podFailurePolicy": {"rules": [{"action": "Retry", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
      "template": {"spec": {**POD, "restartPolicy": "OnFailure"}}},
     ['spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is supported when '
      "podFailurePolicy is specified",
      'spec.podFailurePolicy.rules[0].action: Unsupported value: "Retry": supported values: "Count", "FailIndex", '
      '"FailJob", "Ignore"']),
    ({"podFailurePolicy": {"rules": [{"action": "Ignore"}]}},
     ["spec.podFailurePolicy.rules[0]: Invalid value: null: specifying one of OnExitCodes and OnPodConditions is "
      "required"]),
])
def test_job_validation(spec: dict[str, Any], expected: list[str]) -> None:
    assert create_errors(job(**spec)) == expected


def test_pod_failure_policy_defaults() -> None:
    j = created(job(podFailurePolicy={"rules": [{"action": "Ignore", "onPodConditions": [{"type": "X"}]}]}))
    assert j.spec.podFailurePolicy.rules[0].onPodConditions[0].status == "True"
    assert j.spec.podReplacementPolicy == "Failed"


# ---------------------------------------------------------------- Job update and status


def test_job_update_rules() -> None:
    old = created(job())
    assert update_errors(old, {"spec": {"parallelism": 4, "suspend": True, "activeDeadlineSeconds": 60}}) == []
    assert update_errors(old, {"spec": {"completions": 5}}) == [
        "spec.completions: Invalid value: 5: field is immutable"]
    errors = update_errors(old, {"spec": {"template": {"spec": {"containers": [{"name": "pi", "image": "perl:6"}]}}}})
    assert len(errors) == 1
    assert errors[0].startswith('spec.template: Invalid value: {"metadata": ') and \
        errors[0].endswith("field is immutable")
    selector_errors = update_errors(old, edit=lambda j: j.spec.selector.matchLabels.update({"x": "y"}))
    assert any(e.startswith("spec.selector: Invalid value: ") and e.endswith("field is immutable")
               for e in selector_errors)


def test_indexed_job_scales_completions_with_parallelism() -> None:
    old = created(job(completionMode="Indexed", completions=3, parallelism=3))
    assert update_errors(old, {"spec": {"completions": 5, "parallelism": 5}}) == []
    assert update_errors(old, {"spec": {"completions": 5}}) == [
        "spec.completions: Invalid value: 5: can only be modified in tandem with spec.parallelism"]
    assert update_errors(old, {"spec": {"completionMode": "NonIndexed"}}) == [
        'spec.completionMode: Invalid value: "NonIndexed": field is immutable']


def test_job_status_rules() -> None:
    old = created(job())
    assert status_errors(old, {"active": 1, "succeeded": 2}) == []
    assert status_errors(old, {"failed": -1}) == [
        "status.failed: Invalid value: -1: must be greater than or equal to 0"]


# ---------------------------------------------------------------- Job printing


def test_job_columns() -> None:
    assert headers("Job", "batch/v1") == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert headers("Job", "batch/v1", wide=True)[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    j = created(job(completions=3))
    j.status.succeeded = 1
    j.status.startTime = "2023-11-14T22:13:20Z"  # NOW
    cells = row(j, NOW + 125)
    assert (cells["Status"], cells["Completions"], cells["Duration"], cells["Age"]) == ("Running", "1/3", "2m5s",
                                                                                         "2m5s")
    assert cells["Selector"] == f"batch.kubernetes.io/controller-uid={j.metadata.uid}"
    j.status.completionTime = "2023-11-14T22:13:50Z"
    j.status.conditions.add(type="Complete", status="True")
    cells = row(j, NOW + 3600)
    assert (cells["Status"], cells["Duration"]) == ("Complete", "30s")


@pytest.mark.parametrize(("spec", "conditions", "status", "completions"), [
    ({"parallelism": 3}, [], "Running", "0/1 of 3"),
    ({"parallelism": 1, "completions": None}, [("Failed", "True")], "Failed", "0/1"),
    ({}, [("Suspended", "True")], "Suspended", "0/1"),
    ({}, [("Complete", "False"), ("FailureTarget", "True")], "FailureTarget", "0/1"),
])
def test_job_status_column(spec: dict[str, Any], conditions: list[tuple[str, str]], status: str,
                           completions: str) -> None:
    j = created(job(**{k: v for k, v in spec.items() if v is not None}))
    for kind, value in conditions:
        j.status.conditions.add(type=kind, status=value)
    cells = row(j)
    assert (cells["Status"], cells["Completions"], cells["Duration"]) == (status, completions, "")


# ---------------------------------------------------------------- CronJob


def test_cronjob_defaults() -> None:
    cj = created(cronjob())
    spec = cj.spec
    assert spec.concurrencyPolicy == "Allow"
    assert spec.HasField("suspend") and not spec.suspend
    assert (spec.successfulJobsHistoryLimit, spec.failedJobsHistoryLimit) == (3, 1)
    template = spec.jobTemplate.spec
    assert template.template.spec.dnsPolicy == "ClusterFirst"
    assert not template.HasField("selector")
    assert create_errors(cronjob()) == []


@pytest.mark.parametrize(("spec", "expected"), [
    ({"schedule": "@hourly"}, []),
    ({"schedule": "0 0 * * MON-FRI"}, []),
    ({"schedule": ""}, ["spec.schedule: Required value"]),
    ({"schedule": "* * *"}, ['spec.schedule: Invalid value: "* * *": expected exactly 5 fields, found 3: [* * *]']),
    ({"schedule": "61 * * * *"},
     ['spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61']),
    ({"schedule": "CRON_TZ=UTC 0 * * * *"},
     ['spec.schedule: Invalid value: "CRON_TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use '
      "timeZone field instead"]),
    ({"timeZone": "Europe/Paris"}, []),
    ({"timeZone": ""}, ['spec.timeZone: Invalid value: "": timeZone must be nil or non-empty string']),
    pytest.param({"timeZone": "Mars/Olympus"},
                 ['spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus'],
                 marks=pytest.mark.skipif(not HAVE_TZDB, reason="no time zone database on this host")),
    ({"timeZone": "../etc"}, ['spec.timeZone: Invalid value: "../etc": unknown time zone ../etc']),
    ({"timeZone": "Local"},
     ['spec.timeZone: Invalid value: "Local": timeZone must be an explicit time zone as defined in '
      "https://www.iana.org/time-zones"]),
    ({"concurrencyPolicy": "Sometimes"},
     ['spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"']),
    ({"startingDeadlineSeconds": -10},
     ["spec.startingDeadlineSeconds: Invalid value: -10: must be greater than or equal to 0"]),
    ({"jobTemplate": {"spec": {"template": {"spec": {"containers": POD["containers"]}}}}},
     ['spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"']),
    ({"jobTemplate": {"spec": {"selector": {"matchLabels": {"a": "b"}}, "manualSelector": True,
                               "template": {"metadata": {"labels": {"a": "b"}}, "spec": POD}}}},
     ['spec.jobTemplate.spec.selector: Invalid value: {"matchLabels": {"a": "b"}}: `selector` will be '
      "auto-generated",
      'spec.jobTemplate.spec.manualSelector: Unsupported value: true: supported values: "nil", "false"']),
])
def test_cronjob_validation(spec: dict[str, Any], expected: list[str]) -> None:
    assert create_errors(cronjob(**spec)) == expected


def test_cronjob_name_length() -> None:
    strategy = strategy_for("CronJob", "batch/v1")
    assert strategy.validate_name("a" * 52) == []
    assert strategy.validate_name("a" * 53) == ["must be no more than 52 characters"]


def test_cronjob_update_tolerates_an_existing_tz_schedule() -> None:
    old = created(cronjob())
    old.spec.schedule = "TZ=UTC 0 * * * *"  # stored before the rule existed
    assert update_errors(old, {"spec": {"suspend": True}}) == []
    assert update_errors(created(cronjob()), {"spec": {"schedule": "TZ=UTC 0 * * * *"}}) == [
        'spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone '
        "field instead"]


def test_cronjob_columns() -> None:
    assert headers("CronJob", "batch/v1") == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE",
                                              "AGE"]
    assert headers("CronJob", "batch/v1", wide=True)[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    cj = created(cronjob())
    assert row(cj) == {"Name": "hello", "Schedule": "*/5 * * * *", "TimeZone": "<none>", "Suspend": "False",
                       "Active": "0", "Last Schedule": "<none>", "Age": "90s", "Containers": "pi",
                       "Images": "perl:5.34", "Selector": "<none>"}
    cj.spec.timeZone = "Etc/UTC"
    cj.status.active.add(name="hello-1")
    cj.status.lastScheduleTime = "2023-11-14T22:13:20Z"
    cells = row(cj, NOW + 45)
    assert (cells["TimeZone"], cells["Active"], cells["Last Schedule"]) == ("Etc/UTC", "1", "45s")
