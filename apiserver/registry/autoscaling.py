"""The HorizontalPodAutoscaler (autoscaling/v2) strategy.

An HPA names a scalable object, a replica range and the metrics to track.
Defaulting follows autoscaling/v2: minReplicas 1, and an HPA without metrics
targets 80% average CPU utilisation. When `behavior` is given, its missing
parts are filled with Kubernetes' scaling rules (scale up: no stabilisation,
the larger of +100% or +4 pods per 15 s; scale down: a 300 s window, at most
-100% per 15 s); the HPA controller applies the same rules, exported here,
to an HPA with no behavior at all. Validation makes every metric carry the
one source its type names and a target that source can be compared with.
"""

from __future__ import annotations

from typing import Any

from api import FieldError, forbidden_field, invalid, is_dns1123_label, is_qualified_name, not_supported, required
from proto import autoscaling_pb2

from ._checks import is_path_segment_name, nonnegative, quantity
from ._strategy import AGE, NAME, Column, Strategy

METRIC_TYPES = ("ContainerResource", "External", "Object", "Pods", "Resource")
_SOURCE_FIELD = {"Object": "object", "Pods": "pods", "Resource": "resource", "ContainerResource": "containerResource",
                 "External": "external"}
TARGET_TYPES = ("Utilization", "Value", "AverageValue")
SELECT_POLICIES = ("Disabled", "Max", "Min")
POLICY_TYPES = ("Percent", "Pods")
DEFAULT_CPU_UTILIZATION = 80
_MAX_PERIOD = 1800
_MAX_WINDOW = 3600


def scale_up_defaults() -> autoscaling_pb2.HPAScalingRules:
    return autoscaling_pb2.HPAScalingRules(
        stabilizationWindowSeconds=0, selectPolicy="Max",
        policies=[autoscaling_pb2.HPAScalingPolicy(type="Pods", value=4, periodSeconds=15),
                  autoscaling_pb2.HPAScalingPolicy(type="Percent", value=100, periodSeconds=15)])


def scale_down_defaults() -> autoscaling_pb2.HPAScalingRules:
    return autoscaling_pb2.HPAScalingRules(
        stabilizationWindowSeconds=300, selectPolicy="Max",
        policies=[autoscaling_pb2.HPAScalingPolicy(type="Percent", value=100, periodSeconds=15)])


def _fill_rules(rules: Any, defaults: autoscaling_pb2.HPAScalingRules) -> None:
    """What the user left out of one direction's rules, from the defaults."""
    if not rules.HasField("stabilizationWindowSeconds"):
        rules.stabilizationWindowSeconds = defaults.stabilizationWindowSeconds
    if not rules.HasField("selectPolicy"):
        rules.selectPolicy = defaults.selectPolicy
    if not rules.policies:
        rules.policies.extend(defaults.policies)


# ---------------------------------------------------------------- validation


def _validate_reference(ref: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for field in ("kind", "name"):
        value = getattr(ref, field)
        if not value:
            errs.append(required(f"{path}.{field}"))
        else:
            errs += [invalid(f"{path}.{field}", value, m) for m in is_path_segment_name(value)]
    return errs


def _validate_metric_name(identifier: Any, path: str) -> list[FieldError]:
    if not identifier.name:
        return [required(f"{path}.name", "must specify a metric name")]
    return [invalid(f"{path}.name", identifier.name, m) for m in is_path_segment_name(identifier.name)]


def _validate_target(target: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not target.type:
        errs.append(required(f"{path}.type", "must specify a metric target type"))
    if target.type not in TARGET_TYPES:
        errs.append(invalid(f"{path}.type", target.type, "must be either Utilization, Value, or AverageValue"))
    for field in ("value", "averageValue"):
        if target.HasField(field):
            q = getattr(target, field)
            value, bad = quantity(q, f"{path}.{field}")
            errs += bad
            if value is not None and value.amount <= 0:
                errs.append(invalid(f"{path}.{field}", q.value, "must be positive"))
    if target.HasField("averageUtilization") and target.averageUtilization < 1:
        errs.append(invalid(f"{path}.averageUtilization", target.averageUtilization, "must be greater than 0"))
    return errs


def _validate_resource_name(name: str, path: str) -> list[FieldError]:
    if not name:
        return [required(path, "must specify a resource name")]
    errs = [invalid(path, name, m) for m in is_qualified_name(name)]
    if not errs and "/" not in name and name not in ("cpu", "memory", "ephemeral-storage") \
            and not name.startswith("hugepages-"):
        errs.append(invalid(path, name, "must be a standard resource for containers"))
    return errs


def _validate_source(kind: str, src: Any, path: str) -> list[FieldError]:
    target, tp = src.target, f"{path}.target"
    errs = _validate_target(target, tp)
    if kind in ("Resource", "ContainerResource"):
        errs = _validate_resource_name(src.name, f"{path}.name") + errs
        if kind == "ContainerResource":
            if not src.container:
                errs.append(required(f"{path}.container", "must specify a container"))
            else:
                errs += [invalid(f"{path}.container", src.container, m) for m in is_dns1123_label(src.container)]
        if not target.HasField("averageUtilization") and not target.HasField("averageValue"):
            errs.append(required(f"{tp}.averageUtilization", "must set either a target raw value or a target "
                                                             "utilization"))
        if target.HasField("averageUtilization") and target.HasField("averageValue"):
            errs.append(forbidden_field(f"{tp}.averageValue",
                                        "may not set both a target raw value and a target utilization"))
        return errs
    errs = _validate_metric_name(src.metric, f"{path}.metric") + errs
    if kind == "Pods" and not target.HasField("averageValue"):
        errs.append(required(f"{tp}.averageValue", "must specify a positive target averageValue"))
    if kind == "Object":
        errs = _validate_reference(src.describedObject, f"{path}.describedObject") + errs
        if not target.HasField("value") and not target.HasField("averageValue"):
            errs.append(required(f"{tp}.averageValue", "must set either a target value or averageValue"))
    if kind == "External":
        if not target.HasField("value") and not target.HasField("averageValue"):
            errs.append(required(f"{tp}.averageValue", "must set either a target value for metric or a per-pod "
                                                       "target"))
        if target.HasField("value") and target.HasField("averageValue"):
            errs.append(forbidden_field(f"{tp}.value", "may not set both a target value for metric and a per-pod "
                                                       "target"))
    return errs


def _validate_metric(metric: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not metric.type:
        errs.append(required(f"{path}.type", "must specify a metric source type"))
    if metric.type not in METRIC_TYPES:
        errs.append(not_supported(f"{path}.type", metric.type, METRIC_TYPES))
    present = [f for f in _SOURCE_FIELD.values() if metric.HasField(f)]
    expected = _SOURCE_FIELD.get(metric.type)
    if expected is not None and not metric.HasField(expected):
        errs.append(required(f"{path}.{expected}", "must populate information for the given metric source"))
    elif expected is not None:
        errs += _validate_source(metric.type, getattr(metric, expected), f"{path}.{expected}")
    for other in present:
        if other != expected:
            errs.append(forbidden_field(f"{path}.{other}", "must populate the given metric source only"))
    return errs


def _validate_rules(rules: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if rules.HasField("stabilizationWindowSeconds"):
        window = rules.stabilizationWindowSeconds
        if window < 0:
            errs.append(invalid(f"{path}.stabilizationWindowSeconds", window, "must be greater than or equal to zero"))
        elif window > _MAX_WINDOW:
            errs.append(invalid(f"{path}.stabilizationWindowSeconds", window,
                                f"must be less than or equal to {_MAX_WINDOW}"))
    if rules.HasField("selectPolicy") and rules.selectPolicy not in SELECT_POLICIES:
        errs.append(not_supported(f"{path}.selectPolicy", rules.selectPolicy, SELECT_POLICIES))
    if not rules.policies:
        errs.append(required(f"{path}.policies", "must specify at least one Policy"))
    for i, policy in enumerate(rules.policies):
        pp = f"{path}.policies[{i}]"
        if policy.type not in POLICY_TYPES:
            errs.append(not_supported(f"{pp}.type", policy.type, POLICY_TYPES))
        if policy.value <= 0:
            errs.append(invalid(f"{pp}.value", policy.value, "must be greater than zero"))
        if policy.periodSeconds <= 0:
            errs.append(invalid(f"{pp}.periodSeconds", policy.periodSeconds, "must be greater than zero"))
        elif policy.periodSeconds > _MAX_PERIOD:
            errs.append(invalid(f"{pp}.periodSeconds", policy.periodSeconds,
                                f"must be less than or equal to {_MAX_PERIOD}"))
    return errs


# ---------------------------------------------------------------- printing


def _metric_text(spec: Any, status: Any | None) -> str:
    """One TARGETS entry: `cpu: 40%/80%`, `<unknown>/100m`, ..."""
    kind = spec.type
    field = _SOURCE_FIELD.get(kind)
    if field is None:
        return "<unknown type>"
    src = getattr(spec, field)
    current_src = getattr(status, field) if status is not None and status.HasField(field) else None
    current = "<unknown>"
    target = src.target
    if kind in ("Resource", "ContainerResource") and not target.HasField("averageValue"):
        if current_src is not None and current_src.current.HasField("averageUtilization"):
            current = f"{current_src.current.averageUtilization}%"
        wanted = f"{target.averageUtilization}%" if target.HasField("averageUtilization") else "<auto>"
        return f"{src.name}: {current}/{wanted}"
    average = kind in ("Pods", "Resource", "ContainerResource") or target.HasField("averageValue")
    if current_src is not None:
        current = (current_src.current.averageValue if average else current_src.current.value).value or "0"
    wanted = (target.averageValue if average else target.value).value
    if kind in ("Resource", "ContainerResource"):
        return f"{src.name}: {current}/{wanted}"
    suffix = " (avg)" if average and kind in ("Object", "External") else ""
    return f"{current}/{wanted}{suffix}"


def _targets(hpa: Any, now: float) -> str:
    metrics = hpa.spec.metrics
    if not metrics:
        return "<none>"
    statuses = list(hpa.status.currentMetrics)
    texts = [_metric_text(m, statuses[i] if i < len(statuses) else None) for i, m in enumerate(metrics)]
    shown = ", ".join(texts[:2])
    return shown + (f" + {len(texts) - 2} more..." if len(texts) > 2 else "")


class HorizontalPodAutoscalerStrategy(Strategy):
    columns = (
        NAME,
        Column("Reference", lambda o, now: f"{o.spec.scaleTargetRef.kind}/{o.spec.scaleTargetRef.name}"),
        Column("Targets", _targets),
        Column("MinPods", lambda o, now: str(o.spec.minReplicas) if o.spec.HasField("minReplicas") else "<unset>"),
        Column("MaxPods", lambda o, now: str(o.spec.maxReplicas), type="integer"),
        Column("Replicas", lambda o, now: str(o.status.currentReplicas), type="integer"),
        AGE,
    )

    def default(self, obj: Any) -> None:
        spec = obj.spec
        if not spec.HasField("minReplicas"):
            spec.minReplicas = 1
        if not spec.metrics:
            metric = spec.metrics.add(type="Resource")
            metric.resource.name = "cpu"
            metric.resource.target.type = "Utilization"
            metric.resource.target.averageUtilization = DEFAULT_CPU_UTILIZATION
        if spec.HasField("behavior"):
            _fill_rules(spec.behavior.scaleUp, scale_up_defaults())
            _fill_rules(spec.behavior.scaleDown, scale_down_defaults())

    def validate(self, obj: Any) -> list[FieldError]:
        spec = obj.spec
        errs: list[FieldError] = []
        if spec.HasField("minReplicas") and spec.minReplicas < 1:
            errs.append(invalid("spec.minReplicas", spec.minReplicas, "must be greater than or equal to 1"))
        if spec.maxReplicas < 1:
            errs.append(invalid("spec.maxReplicas", spec.maxReplicas, "must be greater than 0"))
        if spec.HasField("minReplicas") and spec.maxReplicas < spec.minReplicas:
            errs.append(invalid("spec.maxReplicas", spec.maxReplicas, "must be greater than or equal to `minReplicas`"))
        errs += _validate_reference(spec.scaleTargetRef, "spec.scaleTargetRef")
        for i, metric in enumerate(spec.metrics):
            errs += _validate_metric(metric, f"spec.metrics[{i}]")
        if spec.HasField("behavior"):
            for direction in ("scaleUp", "scaleDown"):
                if spec.behavior.HasField(direction):
                    errs += _validate_rules(getattr(spec.behavior, direction), f"spec.behavior.{direction}")
        return errs

    def validate_status_update(self, obj: Any, old: Any) -> list[FieldError]:
        status = obj.status
        return nonnegative(status.currentReplicas, "status.currentReplicas") + \
            nonnegative(status.desiredReplicas, "status.desiredReplicas")
