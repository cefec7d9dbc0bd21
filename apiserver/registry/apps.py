"""Strategies for the apps group's replicated workloads: Deployment,
ReplicaSet, DaemonSet and ControllerRevision (StatefulSet, with its own
update rules and claim templates, is in statefulset.py).

The defaults are Kubernetes' apps/v1 ones, so a three-line manifest becomes
a complete object the controllers can act on without guessing: one replica,
a 25%/25% rolling update, ten old revisions kept, a 600 s progress deadline.
Validation rejects what would make a controller misbehave: a selector that
does not select the template's pods, a rolling update that could never make
progress (maxSurge and maxUnavailable both 0), a selector changed after
creation (the pods it made would be orphaned).
"""

from __future__ import annotations

from typing import Any

from api import FieldError, forbidden_field, invalid, not_supported, required, value_of

from ._checks import (
    immutable,
    int_or_percent_value,
    nonnegative,
    not_more_than_100_percent,
    validate_int_or_percent,
)
from ._columns import controller_of, spec_selector, template_columns
from ._pod import default_pod_spec
from ._strategy import AGE, NAME, Column, Strategy
from ._workload import (
    validate_collision_count,
    validate_long_running,
    validate_replica_counts,
    validate_replicated,
    validate_selector,
    validate_template,
    validate_template_labels,
)

WIDE = template_columns(lambda o: o.spec.template, spec_selector)


class _SelectorFixedStrategy(Strategy):
    """apps/v1 workloads: the selector is fixed at creation."""

    def validate_update(self, obj: Any, old: Any) -> list[FieldError]:
        return self.validate(obj) + immutable(obj.spec.selector, old.spec.selector, "spec.selector")


# ---------------------------------------------------------------- Deployment


def _validate_deployment_strategy(strategy: Any, path: str) -> list[FieldError]:
    if strategy.type == "Recreate":
        if strategy.HasField("rollingUpdate"):
            return [forbidden_field(f"{path}.rollingUpdate",
                                    "may not be specified when strategy `type` is 'Recreate'")]
        return []
    if strategy.type != "RollingUpdate":
        return [not_supported(f"{path}.type", strategy.type, ["Recreate", "RollingUpdate"])]
    if not strategy.HasField("rollingUpdate"):
        return [required(f"{path}.rollingUpdate", "this should be defaulted and never be nil")]
    ru, ru_path = strategy.rollingUpdate, f"{path}.rollingUpdate"
    errs = validate_int_or_percent(ru.maxUnavailable, f"{ru_path}.maxUnavailable")
    errs += validate_int_or_percent(ru.maxSurge, f"{ru_path}.maxSurge")
    if int_or_percent_value(ru.maxUnavailable) == 0 and int_or_percent_value(ru.maxSurge) == 0:
        errs.append(invalid(f"{ru_path}.maxUnavailable", value_of(ru.maxUnavailable),
                            "may not be 0 when `maxSurge` is 0"))
    errs += not_more_than_100_percent(ru.maxUnavailable, f"{ru_path}.maxUnavailable")
    return errs


class DeploymentStrategy(_SelectorFixedStrategy):
    columns = (
        NAME,
        Column("Ready", lambda o, now: f"{o.status.readyReplicas}/{o.spec.replicas}"),
        Column("Up-to-date", lambda o, now: str(o.status.updatedReplicas), type="integer"),
        Column("Available", lambda o, now: str(o.status.availableReplicas), type="integer"),
        AGE,
        *WIDE,
    )

    def default(self, obj: Any) -> None:
        spec = obj.spec
        if not spec.HasField("replicas"):
            spec.replicas = 1
        strategy = spec.strategy
        strategy.type = strategy.type or "RollingUpdate"
        if strategy.type == "RollingUpdate":
            ru = strategy.rollingUpdate
            if ru.maxUnavailable.WhichOneof("kind") is None:
                ru.maxUnavailable.strVal = "25%"
            if ru.maxSurge.WhichOneof("kind") is None:
                ru.maxSurge.strVal = "25%"
        if not spec.HasField("revisionHistoryLimit"):
            spec.revisionHistoryLimit = 10
        if not spec.HasField("progressDeadlineSeconds"):
            spec.progressDeadlineSeconds = 600
        default_pod_spec(spec.template.spec)

    def validate(self, obj: Any) -> list[FieldError]:
        spec = obj.spec
        errs = validate_replicated(spec, "Deployment")
        errs += _validate_deployment_strategy(spec.strategy, "spec.strategy")
        if spec.HasField("revisionHistoryLimit"):
            errs += nonnegative(spec.revisionHistoryLimit, "spec.revisionHistoryLimit")
        if spec.HasField("progressDeadlineSeconds"):
            deadline = spec.progressDeadlineSeconds
            errs += nonnegative(deadline, "spec.progressDeadlineSeconds")
            if deadline <= spec.minReadySeconds:
                errs.append(invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"))
        return errs

    def prepare_for_status_update(self, obj: Any, old: Any) -> None:
        # As Kubernetes' deployment status strategy: /status resets spec and
        # labels but keeps the annotations sent, so the controller records
        # the revision annotation in the same write as the status.
        annotations = dict(obj.metadata.annotations)
        super().prepare_for_status_update(obj, old)
        obj.metadata.annotations.clear()
        obj.metadata.annotations.update(annotations)

    def validate_status_update(self, obj: Any, old: Any) -> list[FieldError]:
        status = obj.status
        errs = nonnegative(status.observedGeneration, "status.observedGeneration")
        errs += validate_replica_counts(
            status, ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"),
            ("updatedReplicas", "readyReplicas", "availableReplicas"))
        return errs + validate_collision_count(status, old.status)


# ---------------------------------------------------------------- ReplicaSet


class ReplicaSetStrategy(_SelectorFixedStrategy):
    selectable_fields = ("status.replicas",)
    columns = (
        NAME,
        Column("Desired", lambda o, now: str(o.spec.replicas), type="integer"),
        Column("Current", lambda o, now: str(o.status.replicas), type="integer"),
        Column("Ready", lambda o, now: str(o.status.readyReplicas), type="integer"),
        AGE,
        *WIDE,
    )

    def default(self, obj: Any) -> None:
        if not obj.spec.HasField("replicas"):
            obj.spec.replicas = 1
        default_pod_spec(obj.spec.template.spec)

    def validate(self, obj: Any) -> list[FieldError]:
        return validate_replicated(obj.spec, "ReplicaSet")

    def fields(self, obj: Any) -> dict[str, str]:
        return {"status.replicas": str(obj.status.replicas)}

    def validate_status_update(self, obj: Any, old: Any) -> list[FieldError]:
        status = obj.status
        errs = nonnegative(status.observedGeneration, "status.observedGeneration")
        return errs + validate_replica_counts(
            status, ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas"),
            ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"))


# ---------------------------------------------------------------- DaemonSet


def _validate_daemonset_strategy(strategy: Any, path: str) -> list[FieldError]:
    if strategy.type == "OnDelete":
        return []
    if strategy.type != "RollingUpdate":
        return [not_supported(f"{path}.type", strategy.type, ["RollingUpdate", "OnDelete"])]
    if not strategy.HasField("rollingUpdate"):
        return [required(f"{path}.rollingUpdate")]
    ru, ru_path = strategy.rollingUpdate, f"{path}.rollingUpdate"
    errs: list[FieldError] = []
    for name in ("maxUnavailable", "maxSurge"):
        errs += validate_int_or_percent(getattr(ru, name), f"{ru_path}.{name}")
        errs += not_more_than_100_percent(getattr(ru, name), f"{ru_path}.{name}")
    # A DaemonSet runs one pod per node: an update either replaces in place
    # (maxUnavailable) or starts the new pod first (maxSurge), never both.
    unavailable = int_or_percent_value(ru.maxUnavailable) != 0
    surge = int_or_percent_value(ru.maxSurge) != 0
    if unavailable and surge:
        errs.append(invalid(f"{ru_path}.maxSurge", value_of(ru.maxSurge),
                            "may not be set when maxUnavailable is non-zero"))
    elif not unavailable and not surge:
        errs.append(required(f"{ru_path}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    return errs


class DaemonSetStrategy(_SelectorFixedStrategy):
    columns = (
        NAME,
        Column("Desired", lambda o, now: str(o.status.desiredNumberScheduled), type="integer"),
        Column("Current", lambda o, now: str(o.status.currentNumberScheduled), type="integer"),
        Column("Ready", lambda o, now: str(o.status.numberReady), type="integer"),
        Column("Up-to-date", lambda o, now: str(o.status.updatedNumberScheduled), type="integer"),
        Column("Available", lambda o, now: str(o.status.numberAvailable), type="integer"),
        Column("Node Selector", lambda o, now: ",".join(
            f"{k}={v}" for k, v in sorted(o.spec.template.spec.nodeSelector.items())) or "<none>"),
        AGE,
        *WIDE,
    )

    def default(self, obj: Any) -> None:
        spec = obj.spec
        strategy = spec.updateStrategy
        strategy.type = strategy.type or "RollingUpdate"
        if strategy.type == "RollingUpdate":
            ru = strategy.rollingUpdate
            if ru.maxUnavailable.WhichOneof("kind") is None:
                ru.maxUnavailable.intVal = 1
            if ru.maxSurge.WhichOneof("kind") is None:
                ru.maxSurge.intVal = 0
        if not spec.HasField("revisionHistoryLimit"):
            spec.revisionHistoryLimit = 10
        default_pod_spec(spec.template.spec)

    def validate(self, obj: Any) -> list[FieldError]:
        spec = obj.spec
        errs = validate_selector(spec, "spec.selector", "DaemonSet")
        if spec.selector.matchLabels or spec.selector.matchExpressions:
            errs += validate_template_labels(spec.selector, spec.template, "spec.template")
        errs += validate_template(spec.template, "spec.template")
        errs += validate_long_running(spec.template, "spec.template", "DaemonSet")
        errs += nonnegative(spec.minReadySeconds, "spec.minReadySeconds")
        errs += _validate_daemonset_strategy(spec.updateStrategy, "spec.updateStrategy")
        if spec.HasField("revisionHistoryLimit"):
            errs += nonnegative(spec.revisionHistoryLimit, "spec.revisionHistoryLimit")
        return errs

    def validate_status_update(self, obj: Any, old: Any) -> list[FieldError]:
        status = obj.status
        errs: list[FieldError] = []
        for name in ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady",
                     "observedGeneration", "updatedNumberScheduled", "numberAvailable", "numberUnavailable"):
            errs += nonnegative(getattr(status, name), f"status.{name}")
        return errs + validate_collision_count(status, old.status)


# ---------------------------------------------------------------- ControllerRevision


class ControllerRevisionStrategy(Strategy):
    """A snapshot of a DaemonSet's or StatefulSet's template: write once."""

    columns = (
        NAME,
        Column("Controller", lambda o, now: controller_of(o)),
        Column("Revision", lambda o, now: str(o.revision), type="integer"),
        AGE,
    )

    def validate(self, obj: Any) -> list[FieldError]:
        errs: list[FieldError] = []
        if not obj.HasField("data"):
            errs.append(required("data", "data is mandatory"))
        return errs + nonnegative(obj.revision, "revision")

    def validate_update(self, obj: Any, old: Any) -> list[FieldError]:
        return self.validate(obj) + immutable(obj.data, old.data, "data")

