"""apps.py: Deployment, ReplicaSet, DaemonSet and ControllerRevision —
apps/v1 defaulting, spec validation with Kubernetes' field paths and
messages, the immutable selector, status rules, and printer rows."""

from __future__ import annotations

from typing import Any

import pytest

from api import SCHEME, invalid_object
from apiserver.registry.apps import DeploymentStrategy

from ._support import create_errors, created, headers, row, status_errors, strategy_for, update_errors

POD = {"containers": [{"name": "web", "image": "nginx:1.25"}]}


def deployment(spec: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"selector": {"matchLabels": {"app": "web"}},
                            "template": {"metadata": {"labels": {"app": "web"}}, "spec": POD}}
    body.update(spec or {})
    body.update(overrides)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": body}


def of_kind(kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "kind": kind}


# ---------------------------------------------------------------- Deployment


def test_deployment_defaults() -> None:
    d = created(deployment())
    spec = d.spec
    assert spec.replicas == 1
    assert spec.strategy.type == "RollingUpdate"
    assert spec.strategy.rollingUpdate.maxSurge.strVal == "25%"
    assert spec.strategy.rollingUpdate.maxUnavailable.strVal == "25%"
    assert spec.revisionHistoryLimit == 10
    assert spec.progressDeadlineSeconds == 600
    assert spec.template.spec.restartPolicy == "Always"
    assert spec.template.spec.containers[0].imagePullPolicy == "IfNotPresent"
    assert d.metadata.generation == 1


def test_deployment_defaults_keep_what_was_given() -> None:
    d = created(deployment(replicas=0, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
                           revisionHistoryLimit=0))
    assert d.spec.HasField("replicas") and d.spec.replicas == 0
    assert d.spec.strategy.rollingUpdate.maxSurge.intVal == 1
    assert d.spec.strategy.rollingUpdate.maxUnavailable.strVal == "25%"
    assert d.spec.revisionHistoryLimit == 0


def test_recreate_gets_no_rolling_update() -> None:
    d = created(deployment(strategy={"type": "Recreate"}))
    assert not d.spec.strategy.HasField("rollingUpdate")
    assert create_errors(deployment(strategy={"type": "Recreate"})) == []


@pytest.mark.parametrize(("spec", "expected"), [
    ({"replicas": -1}, ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]),
    ({"selector": None}, ["spec.selector: Required value"]),
    ({"selector": {}}, ["spec.selector: Invalid value: {}: empty selector is invalid for deployment"]),
    ({"selector": {"matchLabels": {"app": "other"}}},
     ['spec.template.metadata.labels: Invalid value: {"app": "web"}: `selector` does not match template `labels`']),
    ({"selector": {"matchExpressions": [{"key": "app", "operator": "Within", "values": ["web"]}]}},
     ['spec.selector.matchExpressions[0].operator: Unsupported value: "Within": supported values: "In", '
      '"NotIn", "Exists", "DoesNotExist"']),
    ({"strategy": {"type": "BlueGreen"}},
     ['spec.strategy.type: Unsupported value: "BlueGreen": supported values: "Recreate", "RollingUpdate"']),
    ({"strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}},
     ["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"]),
    ({"strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}},
     ['spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "0%": may not be 0 when `maxSurge` is 0']),
    ({"strategy": {"rollingUpdate": {"maxUnavailable": "110%"}}},
     ['spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "110%": must not be greater than 100%']),
    ({"strategy": {"rollingUpdate": {"maxSurge": "lots"}}},
     ['spec.strategy.rollingUpdate.maxSurge: Invalid value: "lots": a valid percent string must be a numeric '
      "string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"]),
    ({"strategy": {"rollingUpdate": {"maxSurge": -1}}},
     ["spec.strategy.rollingUpdate.maxSurge: Invalid value: -1: must be greater than or equal to 0"]),
    ({"minReadySeconds": -5, "progressDeadlineSeconds": 60},
     ["spec.minReadySeconds: Invalid value: -5: must be greater than or equal to 0"]),
    ({"minReadySeconds": 30, "progressDeadlineSeconds": 30},
     ["spec.progressDeadlineSeconds: Invalid value: 30: must be greater than minReadySeconds"]),
    ({"revisionHistoryLimit": -1},
     ["spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0"]),
    ({"template": {"metadata": {"labels": {"app": "web"}}, "spec": {**POD, "restartPolicy": "Never"}}},
     ['spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"']),
    ({"template": {"metadata": {"labels": {"app": "web"}}, "spec": {**POD, "activeDeadlineSeconds": 5}}},
     ["spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in Deployment is not Supported"]),
    ({"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web"}]}}},
     ["spec.template.spec.containers[0].image: Required value"]),
])
def test_deployment_validation(spec: dict[str, Any], expected: list[str]) -> None:
    doc = deployment()
    doc["spec"] = {k: v for k, v in {**doc["spec"], **spec}.items() if v is not None}
    assert create_errors(doc) == expected


def test_deployment_error_reads_like_kubernetes() -> None:
    strategy = DeploymentStrategy(SCHEME.by_resource("apps", "deployments"))
    obj = created(deployment(replicas=-1))
    err = invalid_object("Deployment", "apps", "web", strategy.validate(obj))
    assert str(err) == ('Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: '
                        "must be greater than or equal to 0")


def test_deployment_selector_is_immutable_but_replicas_are_not() -> None:
    old = created(deployment())
    assert update_errors(old, {"spec": {"replicas": 5}}) == []
    change = {"spec": {"selector": {"matchLabels": {"tier": "fe"}},
                       "template": {"metadata": {"labels": {"tier": "fe"}}}}}
    assert update_errors(old, change) == [
        'spec.selector: Invalid value: {"matchLabels": {"app": "web", "tier": "fe"}}: field is immutable']


def test_deployment_status_rules() -> None:
    old = created(deployment())
    assert status_errors(old, {"replicas": 3, "readyReplicas": 3, "availableReplicas": 2}) == []
    assert status_errors(old, {"replicas": 1, "readyReplicas": 2, "availableReplicas": 3,
                               "unavailableReplicas": -1}) == [
        "status.unavailableReplicas: Invalid value: -1: must be greater than or equal to 0",
        "status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas",
        "status.availableReplicas: Invalid value: 3: cannot be greater than status.replicas",
        "status.availableReplicas: Invalid value: 3: cannot be greater than readyReplicas",
    ]
    old.status.collisionCount = 2
    assert status_errors(old, {"collisionCount": 1}) == [
        "status.collisionCount: Invalid value: 1: cannot be decremented"]


def test_deployment_columns() -> None:
    assert headers("Deployment", "apps/v1") == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert headers("Deployment", "apps/v1", wide=True)[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    d = created(deployment(replicas=3, template={
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}, {"name": "log", "image": "busybox"}]}}))
    d.status.readyReplicas, d.status.updatedReplicas, d.status.availableReplicas = 2, 3, 2
    assert row(d) == {"Name": "web", "Ready": "2/3", "Up-to-date": "3", "Available": "2", "Age": "90s",
                      "Containers": "web,log", "Images": "nginx:1.25,busybox", "Selector": "app=web"}


# ---------------------------------------------------------------- ReplicaSet


def test_replicaset_defaults_validation_and_columns() -> None:
    rs = of_kind("ReplicaSet", deployment())
    obj = created(rs)
    assert obj.spec.replicas == 1
    assert create_errors(rs) == []
    empty = of_kind("ReplicaSet", deployment(selector={}))
    assert create_errors(empty) == ["spec.selector: Invalid value: {}: empty selector is invalid for replicaset"]
    bad_policy = of_kind("ReplicaSet", deployment(template={"metadata": {"labels": {"app": "web"}},
                                                            "spec": {**POD, "activeDeadlineSeconds": 3}}))
    assert create_errors(bad_policy) == [
        "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported"]
    assert headers("ReplicaSet", "apps/v1", wide=True) == ["NAME", "DESIRED", "CURRENT", "READY", "AGE",
                                                           "CONTAINERS", "IMAGES", "SELECTOR"]
    obj.status.replicas, obj.status.readyReplicas = 1, 0
    assert [row(obj)[k] for k in ("Desired", "Current", "Ready")] == ["1", "1", "0"]
    assert strategy_for("ReplicaSet", "apps/v1").attrs(obj)[1]["status.replicas"] == "1"


def test_replicaset_selector_expressions_print_like_kubectl() -> None:
    obj = created(of_kind("ReplicaSet", deployment(selector={
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]},
                             {"key": "canary", "operator": "DoesNotExist"}]},
        template={"metadata": {"labels": {"app": "web", "tier": "fe"}}, "spec": POD})))
    assert create_errors(of_kind("ReplicaSet", deployment())) == []
    assert row(obj)["Selector"] == "app=web,!canary,tier in (be,fe)"


def test_replicaset_status_rules() -> None:
    obj = created(of_kind("ReplicaSet", deployment()))
    assert status_errors(obj, {"replicas": 2, "fullyLabeledReplicas": 3}) == [
        "status.fullyLabeledReplicas: Invalid value: 3: cannot be greater than status.replicas"]


# ---------------------------------------------------------------- DaemonSet


def daemonset(**spec: Any) -> dict[str, Any]:
    doc = of_kind("DaemonSet", deployment())
    doc["spec"].update(spec)
    return doc


def test_daemonset_defaults() -> None:
    ds = created(daemonset())
    strategy = ds.spec.updateStrategy
    assert strategy.type == "RollingUpdate"
    assert strategy.rollingUpdate.maxUnavailable.intVal == 1
    assert strategy.rollingUpdate.maxSurge.WhichOneof("kind") == "intVal"
    assert strategy.rollingUpdate.maxSurge.intVal == 0
    assert ds.spec.revisionHistoryLimit == 10
    assert not created(daemonset(updateStrategy={"type": "OnDelete"})).spec.updateStrategy.HasField("rollingUpdate")


@pytest.mark.parametrize(("spec", "expected"), [
    ({"updateStrategy": {"type": "OnDelete"}}, []),
    ({"updateStrategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}, []),
    ({"updateStrategy": {"type": "Sometimes"}},
     ['spec.updateStrategy.type: Unsupported value: "Sometimes": supported values: "RollingUpdate", "OnDelete"']),
    ({"updateStrategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}},
     ["spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is "
      "non-zero"]),
    ({"updateStrategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}},
     ["spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"]),
    ({"updateStrategy": {"rollingUpdate": {"maxSurge": "200%", "maxUnavailable": 0}}},
     ['spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: "200%": must not be greater than 100%']),
    ({"selector": {"matchLabels": {"app": "db"}}},
     ['spec.template.metadata.labels: Invalid value: {"app": "web"}: `selector` does not match template `labels`']),
    ({"template": {"metadata": {"labels": {"app": "web"}}, "spec": {**POD, "restartPolicy": "OnFailure"}}},
     ['spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always"']),
    ({"template": {"metadata": {"labels": {"app": "web"}}, "spec": {**POD, "activeDeadlineSeconds": 1}}},
     ["spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in DaemonSet is not Supported"]),
])
def test_daemonset_validation(spec: dict[str, Any], expected: list[str]) -> None:
    assert create_errors(daemonset(**spec)) == expected


def test_daemonset_without_selector() -> None:
    doc = daemonset()
    del doc["spec"]["selector"]
    assert create_errors(doc) == ["spec.selector: Required value"]


def test_daemonset_update_and_columns() -> None:
    ds = created(daemonset(template={"metadata": {"labels": {"app": "web"}},
                                     "spec": {**POD, "nodeSelector": {"disk": "ssd", "arch": "amd64"}}}))
    assert update_errors(ds, {"spec": {"minReadySeconds": 5}}) == []
    assert update_errors(ds, {"spec": {"selector": {"matchLabels": None,
                                                    "matchExpressions": [{"key": "app", "operator": "Exists"}]}}}) \
        == ['spec.selector: Invalid value: {"matchExpressions": [{"key": "app", "operator": "Exists"}]}: '
            "field is immutable"]
    assert headers("DaemonSet", "apps/v1") == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE",
                                               "NODE SELECTOR", "AGE"]
    ds.status.desiredNumberScheduled = ds.status.currentNumberScheduled = 3
    ds.status.numberReady = ds.status.updatedNumberScheduled = ds.status.numberAvailable = 2
    cells = row(ds)
    assert [cells[k] for k in ("Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector")] == \
        ["3", "3", "2", "2", "2", "arch=amd64,disk=ssd"]
    assert status_errors(ds, {"numberReady": -1}) == [
        "status.numberReady: Invalid value: -1: must be greater than or equal to 0"]


# ---------------------------------------------------------------- ControllerRevision


def revision(**body: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": "web-7d9c", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "u1", "controller": True}]},
            **body}


def test_controller_revision() -> None:
    assert create_errors(revision(data={"spec": {"template": {}}}, revision=1)) == []
    assert create_errors(revision(revision=-1)) == [
        "data: Required value: data is mandatory",
        "revision: Invalid value: -1: must be greater than or equal to 0"]
    old = created(revision(data={"spec": {"image": "nginx:1"}}, revision=2))
    assert update_errors(old, {"revision": 3}) == []
    assert update_errors(old, {"data": {"spec": {"image": "nginx:2"}}}) == [
        'data: Invalid value: {"spec": {"image": "nginx:2"}}: field is immutable']
    assert headers("ControllerRevision", "apps/v1") == ["NAME", "CONTROLLER", "REVISION", "AGE"]
    cells = row(old)
    assert (cells["Controller"], cells["Revision"]) == ("statefulset.apps/web", "2")
    orphan = created({**revision(data={}, revision=1), "metadata": {"name": "x"}})
    assert row(orphan)["Controller"] == "<none>"
