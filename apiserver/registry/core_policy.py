"""Strategies for a namespace's resource policy: ResourceQuota and
LimitRange.

A ResourceQuota caps what a namespace may consume (`requests.cpu: "1"`,
`pods: "10"`), optionally only for pods in some scopes; a LimitRange gives
containers default requests and limits and bounds them. The admission
plugins that enforce them trust what is stored, so these rules make sure
what is stored is coherent: names the quota system knows, integers where
only integers make sense, scopes that apply to the resources listed, and
for a LimitRange min <= defaultRequest <= default <= max per resource.
Defaulting fills a Container limit's gaps the way Kubernetes does: the
default limit from max, the default request from the default limit or min.
"""

from __future__ import annotations

from typing import Any

from api import FieldError, Quantity, duplicate, forbidden_field, invalid, is_qualified_name, required

from ._checks import nonnegative_quantity, quantity
from ._strategy import AGE, NAME, Column, Strategy

_QUOTA_RESOURCES = frozenset((
    "pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
    "persistentvolumeclaims", "services.nodeports", "services.loadbalancers", "cpu", "memory",
    "ephemeral-storage", "requests.cpu", "requests.memory", "requests.storage", "requests.ephemeral-storage",
    "limits.cpu", "limits.memory", "limits.ephemeral-storage"))
_INTEGER_RESOURCES = frozenset((
    "pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
    "persistentvolumeclaims", "services.nodeports", "services.loadbalancers"))
_POD_COMPUTE = frozenset(("pods", "cpu", "memory", "limits.cpu", "limits.memory", "requests.cpu",
                          "requests.memory"))
QUOTA_SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass",
                "CrossNamespacePodAffinity", "VolumeAttributesClass")
_EXISTS_ONLY_SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "CrossNamespacePodAffinity")
_CONFLICTING_SCOPES = (("BestEffort", "NotBestEffort"), ("Terminating", "NotTerminating"))
LIMIT_TYPES = ("Pod", "Container", "PersistentVolumeClaim")
_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")


def _is_quota_resource(name: str) -> bool:
    return name in _QUOTA_RESOURCES or name.startswith(("hugepages-", "requests.hugepages-"))


def _scope_fits(scope: str, resource: str) -> bool:
    """Whether a quota scope can restrict a resource (BestEffort pods have
    no compute requests to count)."""
    if scope == "BestEffort":
        return resource == "pods"
    if scope == "VolumeAttributesClass":
        return resource in ("persistentvolumeclaims", "requests.storage")
    if scope in QUOTA_SCOPES:
        return resource in _POD_COMPUTE
    return True


# ---------------------------------------------------------------- ResourceQuota


def _validate_hard(hard: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for name, q in hard.items():
        rp = f"{path}[{name}]"
        errs += [invalid(rp, name, m) for m in is_qualified_name(name)]
        if "/" not in name and not _is_quota_resource(name):
            errs.append(invalid(rp, name, "must be a standard resource for quota"))
        errs += nonnegative_quantity(q, rp)
        value, _ = quantity(q, rp)
        if value is not None and (name in _INTEGER_RESOURCES or name.startswith("count/")) and \
                value.milli_value() % 1000 != 0:
            errs.append(invalid(rp, q.value, "must be an integer"))
    return errs


def _validate_scopes(spec: Any) -> list[FieldError]:
    errs: list[FieldError] = []
    listed = [(f"spec.scopes[{i}]", scope, "Exists", ()) for i, scope in enumerate(spec.scopes)]
    listed += [(f"spec.scopeSelector.matchExpressions[{i}]", req.scopeName, req.operator, tuple(req.values))
               for i, req in enumerate(spec.scopeSelector.matchExpressions)]
    seen: set[str] = set()
    for path, scope, operator, values in listed:
        in_selector = path.startswith("spec.scopeSelector")
        scope_path = f"{path}.scopeName" if in_selector else path
        if scope not in QUOTA_SCOPES:
            errs.append(invalid(scope_path, scope, "unsupported scope"))
        elif any(_is_quota_resource(r) and not _scope_fits(scope, r) for r in spec.hard):
            errs.append(invalid(scope_path, scope, "unsupported scope applied to resource"))
        seen.add(scope)
        if not in_selector:
            continue
        if scope in _EXISTS_ONLY_SCOPES and operator != "Exists":
            errs.append(invalid(f"{path}.operator", operator,
                                "must be 'Exist' when scope is any of ResourceQuotaScopeTerminating, "
                                "ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, "
                                "ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity"))
        if operator in ("In", "NotIn") and not values:
            errs.append(required(f"{path}.values", "must be at least one value when `operator` is 'In' or "
                                                   "'NotIn' for scope selector"))
        elif operator in ("Exists", "DoesNotExist") and values:
            errs.append(invalid(f"{path}.values", list(values), "must be no value when `operator` is 'Exist' or "
                                                                "'DoesNotExist' for scope selector"))
        elif operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            errs.append(invalid(f"{path}.operator", operator, "not a valid selector operator"))
    for pair in _CONFLICTING_SCOPES:
        if set(pair) <= seen:
            errs.append(invalid("spec.scopes", list(spec.scopes) or sorted(seen), "conflicting scopes"))
    return errs


def _quota_cells(quota: Any, now: float) -> tuple[str, str]:
    """REQUEST and LIMIT: `resource: used/hard` pairs from status (what the
    quota controller has counted), limits.* apart."""
    requests: list[str] = []
    limits: list[str] = []
    for name in sorted(quota.status.hard):
        used = quota.status.used[name].value if name in quota.status.used else "0"
        hard = quota.status.hard[name].value
        (limits if name.split(".", 1)[0] == "limits" and "." in name else requests).append(f"{name}: {used}/{hard}")
    return ", ".join(requests), ", ".join(limits)


class ResourceQuotaStrategy(Strategy):
    columns = (
        NAME, AGE,
        Column("Request", lambda o, now: _quota_cells(o, now)[0]),
        Column("Limit", lambda o, now: _quota_cells(o, now)[1]),
    )

    def validate(self, obj: Any) -> list[FieldError]:
        return _validate_hard(obj.spec.hard, "spec.hard") + _validate_scopes(obj.spec)

    def validate_status_update(self, obj: Any, old: Any) -> list[FieldError]:
        return _validate_hard(obj.status.hard, "status.hard") + _validate_hard(obj.status.used, "status.used")


# ---------------------------------------------------------------- LimitRange


def _validate_limit_resource(kind: str, name: str, path: str) -> list[FieldError]:
    errs = [invalid(path, name, m) for m in is_qualified_name(name)]
    if errs or "/" in name:
        return errs
    if kind in ("Pod", "Container"):
        if name not in _CONTAINER_RESOURCES and not name.startswith("hugepages-"):
            return [invalid(path, name, "must be a standard resource for containers")]
    elif kind == "PersistentVolumeClaim" and name != "storage":
        return [invalid(path, name, "must be a standard resource type or fully qualified")]
    return []


def _compare(item: Any, ip: str, name: str) -> list[FieldError]:
    """The ordering rules between one resource's bounds and defaults."""
    def get(field: str) -> Quantity | None:
        values = getattr(item, field)
        return quantity(values[name], "")[0] if name in values else None

    low, high, limit, request = get("min"), get("max"), get("default"), get("defaultRequest")
    ratio = get("maxLimitRequestRatio")
    errs: list[FieldError] = []
    if low is not None and high is not None and low > high:
        errs.append(invalid(f"{ip}.min[{name}]", str(low), f"min value {low} is greater than max value {high}"))
    if request is not None and low is not None and low > request:
        errs.append(invalid(f"{ip}.defaultRequest[{name}]", str(request),
                            f"min value {low} is greater than default request value {request}"))
    if request is not None and high is not None and request > high:
        errs.append(invalid(f"{ip}.defaultRequest[{name}]", str(request),
                            f"default request value {request} is greater than max value {high}"))
    if request is not None and limit is not None and request > limit:
        errs.append(invalid(f"{ip}.defaultRequest[{name}]", str(request),
                            f"default request value {request} is greater than default limit value {limit}"))
    if limit is not None and low is not None and low > limit:
        errs.append(invalid(f"{ip}.default[{name}]", str(low),
                            f"min value {low} is greater than default value {limit}"))
    if limit is not None and high is not None and limit > high:
        errs.append(invalid(f"{ip}.default[{name}]", str(high),
                            f"default value {limit} is greater than max value {high}"))
    if ratio is not None and ratio < Quantity(1):
        errs.append(invalid(f"{ip}.maxLimitRequestRatio[{name}]", str(ratio), f"ratio {ratio} is less than 1"))
    if ratio is not None and low is not None and high is not None and low.amount > 0:
        most = high.amount / low.amount
        if ratio.amount > most:
            errs.append(invalid(f"{ip}.maxLimitRequestRatio[{name}]", str(ratio),
                                f"ratio {ratio} is greater than max/min = {float(most):f}"))
    return errs


class LimitRangeStrategy(Strategy):
    columns = (NAME, Column("Created At", lambda o, now: o.metadata.creationTimestamp, type="date"))

    def default(self, obj: Any) -> None:
        for item in obj.spec.limits:
            if item.type != "Container":
                continue
            for name, value in item.max.items():
                if name not in item.default:
                    item.default[name].CopyFrom(value)
            for name, value in item.default.items():
                if name not in item.defaultRequest:
                    item.defaultRequest[name].CopyFrom(value)
            for name, value in item.min.items():
                if name not in item.defaultRequest:
                    item.defaultRequest[name].CopyFrom(value)

    def validate(self, obj: Any) -> list[FieldError]:
        errs: list[FieldError] = []
        seen: set[str] = set()
        for i, item in enumerate(obj.spec.limits):
            ip = f"spec.limits[{i}]"
            kind = item.type
            errs += [invalid(f"{ip}.type", kind, m) for m in is_qualified_name(kind)]
            if "/" not in kind and kind not in LIMIT_TYPES:
                errs.append(invalid(f"{ip}.type", kind, "must be a standard limit type or fully qualified"))
            if kind in seen:
                errs.append(duplicate(f"{ip}.type", kind))
            seen.add(kind)
            fields = ["max", "min", "maxLimitRequestRatio"]
            if kind == "Pod":
                for field in ("default", "defaultRequest"):
                    if getattr(item, field):
                        errs.append(forbidden_field(f"{ip}.{field}", "may not be specified when `type` is 'Pod'"))
            else:
                fields += ["default", "defaultRequest"]
            names: set[str] = set()
            for field in fields:
                for name, q in getattr(item, field).items():
                    errs += _validate_limit_resource(kind, name, f"{ip}.{field}[{name}]")
                    errs += quantity(q, f"{ip}.{field}[{name}]")[1]
                    names.add(name)
            if kind == "PersistentVolumeClaim" and "storage" not in item.min and "storage" not in item.max:
                errs.append(required(f"{ip}.limits", "either minimum or maximum storage value is required, but "
                                                     "neither was provided"))
            for name in sorted(names):
                errs += _compare(item, ip, name)
        return errs
