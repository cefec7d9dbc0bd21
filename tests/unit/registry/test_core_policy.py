"""core_policy.py: ResourceQuota (resource names, integer-only counts,
scopes and scope selectors, the REQUEST/LIMIT columns) and LimitRange
(Container defaulting, limit types, resource names, and the ordering rules
between min, defaultRequest, default and max)."""

from __future__ import annotations

from typing import Any

import pytest

from ._support import create_errors, created, headers, row, status_errors


def quota(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"}, "spec": spec}


def limits(*items: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr"}, "spec": {"limits": list(items)}}


# ---------------------------------------------------------------- ResourceQuota


@pytest.mark.parametrize(("spec", "expected"), [
    ({"hard": {"requests.cpu": "1", "limits.memory": "2Gi", "pods": "10", "count/deployments.apps": "3",
               "requests.hugepages-2Mi": "1Gi"}}, []),
    ({"hard": {"gpus": "1"}}, ['spec.hard[gpus]: Invalid value: "gpus": must be a standard resource for quota']),
    ({"hard": {"example.com/gpu": "1"}}, []),
    ({"hard": {"pods": "1500m"}}, ['spec.hard[pods]: Invalid value: "1500m": must be an integer']),
    ({"hard": {"cpu": "-1"}}, ['spec.hard[cpu]: Invalid value: "-1": must be greater than or equal to 0']),
    ({"hard": {"pods": "5"}, "scopes": ["BestEffort"]}, []),
    ({"hard": {"cpu": "5"}, "scopes": ["BestEffort"]},
     ['spec.scopes[0]: Invalid value: "BestEffort": unsupported scope applied to resource']),
    ({"hard": {"pods": "5"}, "scopes": ["Sometimes"]},
     ['spec.scopes[0]: Invalid value: "Sometimes": unsupported scope']),
    ({"hard": {"pods": "5"}, "scopes": ["Terminating", "NotTerminating"]},
     ['spec.scopes: Invalid value: ["Terminating", "NotTerminating"]: conflicting scopes']),
    ({"hard": {"pods": "5"}, "scopeSelector": {"matchExpressions": [
        {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}, []),
    ({"hard": {"pods": "5"}, "scopeSelector": {"matchExpressions": [
        {"scopeName": "PriorityClass", "operator": "In"}]}},
     ["spec.scopeSelector.matchExpressions[0].values: Required value: must be at least one value when `operator` is "
      "'In' or 'NotIn' for scope selector"]),
    ({"hard": {"pods": "5"}, "scopeSelector": {"matchExpressions": [
        {"scopeName": "Terminating", "operator": "DoesNotExist"}]}},
     ['spec.scopeSelector.matchExpressions[0].operator: Invalid value: "DoesNotExist": must be \'Exist\' when scope '
      "is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, "
      "ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity"]),
])
def test_quota_validation(spec: dict[str, Any], expected: list[str]) -> None:
    assert create_errors(quota(**spec)) == expected


def test_quota_columns() -> None:
    assert headers("ResourceQuota", "v1") == ["NAME", "AGE", "REQUEST", "LIMIT"]
    q = created(quota(hard={"requests.cpu": "1", "limits.cpu": "2", "pods": "10"}))
    assert row(q) == {"Name": "q", "Age": "90s", "Request": "", "Limit": ""}  # not yet counted
    for name, value in {"requests.cpu": "1", "limits.cpu": "2", "pods": "10"}.items():
        q.status.hard[name].value = value
    q.status.used["requests.cpu"].value = "500m"
    q.status.used["pods"].value = "3"
    assert row(q) == {"Name": "q", "Age": "90s", "Request": "pods: 3/10, requests.cpu: 500m/1",
                      "Limit": "limits.cpu: 0/2"}
    assert status_errors(q, {"hard": {"pods": "10"}, "used": {"pods": "-1"}}) == [
        'status.used[pods]: Invalid value: "-1": must be greater than or equal to 0']


# ---------------------------------------------------------------- LimitRange


def test_container_limits_are_defaulted_from_max_default_and_min() -> None:
    lr = created(limits({"type": "Container", "max": {"cpu": "2", "memory": "1Gi"}, "min": {"memory": "64Mi"},
                         "default": {"memory": "512Mi"}},
                        {"type": "Pod", "max": {"cpu": "4"}}))
    container, pod = lr.spec.limits
    assert {k: v.value for k, v in container.default.items()} == {"cpu": "2", "memory": "512Mi"}
    assert {k: v.value for k, v in container.defaultRequest.items()} == {"cpu": "2", "memory": "512Mi"}
    assert not pod.default and not pod.defaultRequest
    only_min = created(limits({"type": "Container", "min": {"cpu": "100m"}})).spec.limits[0]
    assert {k: v.value for k, v in only_min.defaultRequest.items()} == {"cpu": "100m"}
    assert not only_min.default


@pytest.mark.parametrize(("item", "expected"), [
    ({"type": "Container", "default": {"cpu": "1"}, "defaultRequest": {"cpu": "500m"}}, []),
    ({"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}},
     ['spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1',
      'spec.limits[0].defaultRequest[cpu]: Invalid value: "1": min value 2 is greater than default request value 1',
      'spec.limits[0].default[cpu]: Invalid value: "2": min value 2 is greater than default value 1']),
    ({"type": "Container", "default": {"memory": "256Mi"}, "defaultRequest": {"memory": "512Mi"}},
     ['spec.limits[0].defaultRequest[memory]: Invalid value: "512Mi": default request value 512Mi is greater than '
      "default limit value 256Mi"]),
    ({"type": "Container", "max": {"cpu": "1"}, "default": {"cpu": "2"}, "defaultRequest": {"cpu": "1"}},
     ['spec.limits[0].default[cpu]: Invalid value: "1": default value 2 is greater than max value 1']),
    ({"type": "Container", "maxLimitRequestRatio": {"cpu": "500m"}},
     ['spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: "500m": ratio 500m is less than 1']),
    ({"type": "Pod", "min": {"cpu": "1"}, "max": {"cpu": "2"}, "maxLimitRequestRatio": {"cpu": "3"}},
     ['spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: "3": ratio 3 is greater than max/min = 2.000000']),
    ({"type": "Pod", "default": {"cpu": "1"}},
     ["spec.limits[0].default: Forbidden: may not be specified when `type` is 'Pod'"]),
    ({"type": "Node", "max": {"cpu": "1"}},
     ['spec.limits[0].type: Invalid value: "Node": must be a standard limit type or fully qualified']),
    ({"type": "Pod", "max": {"storage": "1Gi"}},
     ['spec.limits[0].max[storage]: Invalid value: "storage": must be a standard resource for containers']),
    ({"type": "Container", "max": {"storage": "1Gi"}},  # defaulting copied max to default and defaultRequest
     [f'spec.limits[0].{field}[storage]: Invalid value: "storage": must be a standard resource for containers'
      for field in ("max", "default", "defaultRequest")]),
    ({"type": "PersistentVolumeClaim", "max": {"storage": "10Gi"}, "min": {"storage": "1Gi"}}, []),
    ({"type": "PersistentVolumeClaim", "maxLimitRequestRatio": {"storage": "2"}},
     ["spec.limits[0].limits: Required value: either minimum or maximum storage value is required, but neither "
      "was provided"]),
])
def test_limit_range_validation(item: dict[str, Any], expected: list[str]) -> None:
    assert create_errors(limits(item)) == expected


def test_limit_types_are_unique_and_columns() -> None:
    assert create_errors(limits({"type": "Pod", "max": {"cpu": "1"}}, {"type": "Pod", "max": {"cpu": "2"}})) == [
        'spec.limits[1].type: Duplicate value: "Pod"']
    assert headers("LimitRange", "v1") == ["NAME", "CREATED AT"]
    lr = created(limits({"type": "Container", "default": {"cpu": "1"}}))
    assert row(lr) == {"Name": "lr", "Created At": "2023-11-14T22:13:20Z"}
