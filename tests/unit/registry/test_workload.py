"""_workload.py: the selector and pod template rules every controller-made
pod shares — selector presence and emptiness, template labels matching the
selector (structured and map forms), restart policy and deadline rules for
long-running pods, and status counter rules."""

from __future__ import annotations

from api import from_dict
from apiserver.registry._workload import (
    selector_matches,
    validate_collision_count,
    validate_long_running,
    validate_replica_counts,
    validate_selector,
    validate_template_labels,
    validate_template_map_selector,
)
from proto import apps_pb2, core_pb2, meta_pb2


def strs(errors: list) -> list[str]:
    return [str(e) for e in errors]


def template(labels: dict[str, str], **spec: object) -> core_pb2.PodTemplateSpec:
    return from_dict(core_pb2.PodTemplateSpec, {"metadata": {"labels": labels},
                                                "spec": {"containers": [{"name": "c", "image": "i"}], **spec}})


def test_selector_presence_and_emptiness() -> None:
    assert strs(validate_selector(apps_pb2.ReplicaSetSpec(), "spec.selector", "ReplicaSet")) == [
        "spec.selector: Required value"]
    empty = apps_pb2.ReplicaSetSpec(selector=meta_pb2.LabelSelector())
    assert strs(validate_selector(empty, "spec.selector", "ReplicaSet")) == [
        "spec.selector: Invalid value: {}: empty selector is invalid for replicaset"]


def test_template_labels_must_match() -> None:
    sel = meta_pb2.LabelSelector(matchLabels={"app": "a"})
    assert validate_template_labels(sel, template({"app": "a", "x": "y"}), "spec.template") == []
    assert strs(validate_template_labels(sel, template({"app": "b"}), "spec.template")) == [
        'spec.template.metadata.labels: Invalid value: {"app": "b"}: `selector` does not match template `labels`']
    broken = from_dict(meta_pb2.LabelSelector, {"matchExpressions": [{"key": "a", "operator": "Near"}]})
    assert selector_matches(broken, {}) is None
    assert validate_template_labels(broken, template({}), "spec.template") == []
    assert validate_template_map_selector({"app": "a"}, template({"app": "a"}), "spec.template") == []
    assert strs(validate_template_map_selector({"app": "a"}, template({}), "spec.template")) == [
        "spec.template.metadata.labels: Invalid value: {}: `selector` does not match template `labels`"]


def test_long_running_pods() -> None:
    assert validate_long_running(template({}, restartPolicy="Always"), "spec.template", "ReplicaSet") == []
    assert strs(validate_long_running(template({}, restartPolicy="Never", activeDeadlineSeconds=3), "spec.template",
                                      "StatefulSet")) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
        "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in StatefulSet is not Supported"]


def test_status_counters() -> None:
    status = apps_pb2.ReplicaSetStatus(replicas=2, readyReplicas=1, availableReplicas=1)
    fields = ("replicas", "readyReplicas", "availableReplicas")
    assert validate_replica_counts(status, fields, fields[1:]) == []
    status.availableReplicas = 2
    assert strs(validate_replica_counts(status, fields, fields[1:])) == [
        "status.availableReplicas: Invalid value: 2: cannot be greater than readyReplicas"]
    old, new = apps_pb2.DeploymentStatus(collisionCount=3), apps_pb2.DeploymentStatus()
    assert strs(validate_collision_count(new, old)) == ["status.collisionCount: Invalid value: 0: cannot be "
                                                        "decremented"]
    assert validate_collision_count(apps_pb2.DeploymentStatus(collisionCount=4), old) == []
