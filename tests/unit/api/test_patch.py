"""Merge, strategic merge, JSON and three-way patches over manifests."""

import pytest

from api import StatusError, json_merge_patch, json_patch, strategic_merge, three_way_patch
from proto import apps_pb2, core_pb2, meta_pb2

POD = core_pb2.Pod.DESCRIPTOR


def test_json_merge_patch_rfc7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "list": [1, 2]}
    patch = {"a": "z", "c": {"f": None}, "list": [3], "new": {"x": 1}}
    assert json_merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}, "list": [3], "new": {"x": 1}}


def test_strategic_merge_merges_containers_by_name() -> None:
    current = {"spec": {"containers": [{"name": "app", "image": "v1", "env": [{"name": "A", "value": "1"}]},
                                       {"name": "sidecar", "image": "s1"}],
                        "tolerations": [{"key": "a"}]}}
    patch = {"spec": {"containers": [{"name": "app", "image": "v2", "env": [{"name": "B", "value": "2"}]}],
                      "tolerations": [{"key": "b"}]}}
    out = strategic_merge(current, patch, POD)
    assert out["spec"]["containers"] == [
        {"name": "app", "image": "v2", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "sidecar", "image": "s1"}]
    assert out["spec"]["tolerations"] == [{"key": "b"}]  # no merge key: replaced, as in Kubernetes


def test_strategic_merge_directives() -> None:
    current = {"metadata": {"finalizers": ["a", "b"], "labels": {"x": "1", "y": "2"}},
               "spec": {"containers": [{"name": "app"}, {"name": "old"}]}}
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "labels": {"$patch": "replace", "z": "3"}},
             "spec": {"containers": [{"name": "old", "$patch": "delete"}]}}
    out = strategic_merge(current, patch, POD)
    assert out["metadata"] == {"finalizers": ["b"], "labels": {"z": "3"}}
    assert out["spec"]["containers"] == [{"name": "app"}]
    out = strategic_merge({"metadata": {"finalizers": ["a"]}}, {"metadata": {"finalizers": ["b", "a"]}}, POD)
    assert out["metadata"]["finalizers"] == ["a", "b"]  # a set: union
    with pytest.raises(StatusError, match="does not contain declared merge key: name"):
        strategic_merge(current, {"spec": {"containers": [{"image": "x"}]}}, POD)


def test_json_patch() -> None:
    doc = {"spec": {"replicas": 1}}
    assert json_patch(doc, [{"op": "replace", "path": "/spec/replicas", "value": 3}]) == {"spec": {"replicas": 3}}
    with pytest.raises(StatusError):
        json_patch(doc, [{"op": "remove", "path": "/spec/missing"}])


def test_three_way_patch_keeps_what_others_set() -> None:
    original = {"metadata": {"labels": {"app": "web", "old": "1"}}, "spec": {"replicas": 2, "template": {
        "spec": {"containers": [{"name": "web", "image": "nginx:1.14"}, {"name": "gone", "image": "x"}]}}}}
    modified = {"metadata": {"labels": {"app": "web"}}, "spec": {"replicas": 2, "template": {
        "spec": {"containers": [{"name": "web", "image": "nginx:1.16"}]}}}}
    current = {"metadata": {"labels": {"app": "web", "old": "1", "added-by-someone": "y"}},
               "spec": {"replicas": 5, "strategy": {"type": "RollingUpdate"}, "template": {
                   "spec": {"containers": [{"name": "web", "image": "nginx:1.14", "imagePullPolicy": "IfNotPresent"},
                                           {"name": "gone", "image": "x"}]}}}}
    patch = three_way_patch(original, modified, current, apps_pb2.Deployment.DESCRIPTOR)
    result = strategic_merge(current, patch, apps_pb2.Deployment.DESCRIPTOR)
    assert result["metadata"]["labels"] == {"app": "web", "added-by-someone": "y"}
    assert result["spec"]["replicas"] == 2  # the manifest says 2, so apply sets it
    assert result["spec"]["strategy"] == {"type": "RollingUpdate"}  # a default: kept
    assert result["spec"]["template"]["spec"]["containers"] == [
        {"name": "web", "image": "nginx:1.16", "imagePullPolicy": "IfNotPresent"}]
    assert three_way_patch(modified, modified, result, apps_pb2.Deployment.DESCRIPTOR) == {}


def test_patch_options_come_from_the_proto() -> None:
    field = core_pb2.PodSpec.DESCRIPTOR.fields_by_name["containers"]
    assert field.GetOptions().Extensions[meta_pb2.patchMergeKey] == "name"
