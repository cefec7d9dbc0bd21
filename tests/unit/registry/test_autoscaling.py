"""autoscaling.py: HorizontalPodAutoscaler defaults (minReplicas, the 80%
CPU metric, behavior rules filled in), validation of the replica range, the
target reference, each metric source and target, scaling rules, and the
TARGETS column."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.registry.autoscaling import scale_down_defaults, scale_up_defaults

from ._support import create_errors, created, headers, row, status_errors

AV = "autoscaling/v2"


def hpa(**spec: Any) -> dict[str, Any]:
    body = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5}
    body.update(spec)
    return {"apiVersion": AV, "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
            "spec": {k: v for k, v in body.items() if v is not None}}


def cpu(utilization: int = 50) -> dict[str, Any]:
    return {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                        "averageUtilization": utilization}}}


def test_defaults() -> None:
    obj = created(hpa())
    assert obj.spec.minReplicas == 1
    (metric,) = obj.spec.metrics
    assert (metric.type, metric.resource.name, metric.resource.target.type,
            metric.resource.target.averageUtilization) == ("Resource", "cpu", "Utilization", 80)
    assert not obj.spec.HasField("behavior")
    assert create_errors(hpa()) == []


def test_behavior_is_filled_in_when_given() -> None:
    obj = created(hpa(behavior={"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}))
    up, down = obj.spec.behavior.scaleUp, obj.spec.behavior.scaleDown
    assert up == scale_up_defaults()
    assert (up.stabilizationWindowSeconds, up.selectPolicy) == (0, "Max")
    assert [(p.type, p.value, p.periodSeconds) for p in up.policies] == [("Pods", 4, 15), ("Percent", 100, 15)]
    assert (down.stabilizationWindowSeconds, down.selectPolicy) == (300, "Max")
    assert [(p.type, p.value, p.periodSeconds) for p in down.policies] == [("Pods", 1, 60)]
    assert [(p.type, p.value) for p in scale_down_defaults().policies] == [("Percent", 100)]


@pytest.mark.parametrize(("spec", "expected"), [
    ({"minReplicas": 0}, ["spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"]),
    ({"maxReplicas": 0}, ["spec.maxReplicas: Invalid value: 0: must be greater than 0",
                          "spec.maxReplicas: Invalid value: 0: must be greater than or equal to `minReplicas`"]),
    ({"minReplicas": 4, "maxReplicas": 3},
     ["spec.maxReplicas: Invalid value: 3: must be greater than or equal to `minReplicas`"]),
    ({"scaleTargetRef": {"name": "web"}}, ["spec.scaleTargetRef.kind: Required value"]),
    ({"scaleTargetRef": {"kind": "Deployment", "name": "a/b"}},
     ["spec.scaleTargetRef.name: Invalid value: \"a/b\": may not contain '/'"]),
    ({"metrics": [{"type": "Magic"}]},
     ['spec.metrics[0].type: Unsupported value: "Magic": supported values: "ContainerResource", "External", '
      '"Object", "Pods", "Resource"']),
    ({"metrics": [{"type": "Resource"}]},
     ["spec.metrics[0].resource: Required value: must populate information for the given metric source"]),
    ({"metrics": [{**cpu(), "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue",
                                                                           "averageValue": "1k"}}}]},
     ["spec.metrics[0].pods: Forbidden: must populate the given metric source only"]),
    ({"metrics": [cpu(0)]}, ["spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater "
                             "than 0"]),
    ({"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}]},
     ["spec.metrics[0].resource.target.averageUtilization: Required value: must set either a target raw value or a "
      "target utilization"]),
    ({"metrics": [{"type": "Resource", "resource": {"name": "gpu", "target": {"type": "AverageValue",
                                                                             "averageValue": "1"}}}]},
     ['spec.metrics[0].resource.name: Invalid value: "gpu": must be a standard resource for containers']),
    ({"metrics": [{"type": "Resource", "resource": {"name": "memory", "target": {"type": "Average",
                                                                                "averageValue": "0"}}}]},
     ['spec.metrics[0].resource.target.type: Invalid value: "Average": must be either Utilization, Value, or '
      "AverageValue",
      'spec.metrics[0].resource.target.averageValue: Invalid value: "0": must be positive']),
    ({"metrics": [{"type": "ContainerResource", "containerResource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}]},
     ["spec.metrics[0].containerResource.container: Required value: must specify a container"]),
    ({"metrics": [{"type": "Pods", "pods": {"metric": {"name": ""}, "target": {"type": "Value", "value": "3"}}}]},
     ["spec.metrics[0].pods.metric.name: Required value: must specify a metric name",
      "spec.metrics[0].pods.target.averageValue: Required value: must specify a positive target averageValue"]),
    ({"metrics": [{"type": "Object", "object": {"metric": {"name": "rps"}, "describedObject": {
        "kind": "Ingress", "name": "main"}, "target": {"type": "Value", "value": "10k"}}}]}, []),
    ({"metrics": [{"type": "External", "external": {"metric": {"name": "queue"}, "target": {
        "type": "Value", "value": "30", "averageValue": "5"}}}]},
     ["spec.metrics[0].external.target.value: Forbidden: may not set both a target value for metric and a per-pod "
      "target"]),
    ({"behavior": {"scaleUp": {"stabilizationWindowSeconds": 4000, "selectPolicy": "Median",
                               "policies": [{"type": "Nodes", "value": 0, "periodSeconds": 2000}]}}},
     ["spec.behavior.scaleUp.stabilizationWindowSeconds: Invalid value: 4000: must be less than or equal to 3600",
      'spec.behavior.scaleUp.selectPolicy: Unsupported value: "Median": supported values: "Disabled", "Max", "Min"',
      'spec.behavior.scaleUp.policies[0].type: Unsupported value: "Nodes": supported values: "Percent", "Pods"',
      "spec.behavior.scaleUp.policies[0].value: Invalid value: 0: must be greater than zero",
      "spec.behavior.scaleUp.policies[0].periodSeconds: Invalid value: 2000: must be less than or equal to 1800"]),
])
def test_validation(spec: dict[str, Any], expected: list[str]) -> None:
    assert create_errors(hpa(**spec)) == expected


def test_columns() -> None:
    assert headers("HorizontalPodAutoscaler", AV) == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS",
                                                      "REPLICAS", "AGE"]
    obj = created(hpa())
    assert row(obj) == {"Name": "web", "Reference": "Deployment/web", "Targets": "cpu: <unknown>/80%",
                        "MinPods": "1", "MaxPods": "5", "Replicas": "0", "Age": "90s"}
    obj.status.currentReplicas = 2
    current = obj.status.currentMetrics.add(type="Resource")
    current.resource.name = "cpu"
    current.resource.current.averageUtilization = 42
    assert (row(obj)["Targets"], row(obj)["Replicas"]) == ("cpu: 42%/80%", "2")


def test_targets_for_other_sources_and_long_lists() -> None:
    obj = created(hpa(metrics=[
        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue",
                                                                         "averageValue": "1k"}}},
        {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "AverageValue",
                                                                                   "averageValue": "30"}}},
        {"type": "Object", "object": {"metric": {"name": "rps"}, "describedObject": {"kind": "Ingress",
                                                                                     "name": "main"},
                                      "target": {"type": "Value", "value": "10k"}}}]))
    assert row(obj)["Targets"] == "<unknown>/1k, <unknown>/30 (avg) + 1 more..."
    current = obj.status.currentMetrics.add(type="Pods")
    current.pods.current.averageValue.value = "850"
    assert row(obj)["Targets"].startswith("850/1k, ")


def test_status_rules() -> None:
    assert status_errors(created(hpa()), {"desiredReplicas": -1}) == [
        "status.desiredReplicas: Invalid value: -1: must be greater than or equal to 0"]
