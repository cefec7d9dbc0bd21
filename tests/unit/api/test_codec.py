"""The manifest codec: strict decoding with Kubernetes' errors, quantities
and int-or-string fields, omitempty-style encoding, and YAML loading."""

import pytest

from api import StatusError, decode_manifest, dump_yaml, encode_manifest, load_documents
from proto import apps_pb2, core_pb2


def pod(spec: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


def test_selects_the_message_by_apiversion_and_kind() -> None:
    obj = decode_manifest({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                           "spec": {"replicas": 0}})
    assert isinstance(obj, apps_pb2.Deployment)
    assert obj.spec.HasField("replicas") and obj.spec.replicas == 0


def test_unknown_fields_are_all_reported_with_paths() -> None:
    with pytest.raises(StatusError) as err:
        decode_manifest(pod({"containers": [{"name": "a", "image": "x", "imagePulPolicy": "Always"}], "nodname": "n"}))
    assert err.value.reason == "BadRequest"
    assert str(err.value) == ('Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
                              'unknown field "spec.containers[0].imagePulPolicy", unknown field "spec.nodname"')


def test_wrong_json_type_names_field_and_type() -> None:
    with pytest.raises(StatusError, match=r"cannot unmarshal string into Go struct field ContainerPort"
                                          r"\.spec\.containers\[0\]\.ports\[0\]\.containerPort of type int32"):
        decode_manifest(pod({"containers": [{"name": "a", "ports": [{"containerPort": "80"}]}]}))
    with pytest.raises(StatusError, match="of type string"):
        decode_manifest(pod({"containers": [{"name": "a", "env": [{"name": "X", "value": 1}]}]}))


def test_unknown_kind_and_removed_versions() -> None:
    with pytest.raises(StatusError, match='no matches for kind "Widget" in version "v1"'):
        decode_manifest({"apiVersion": "v1", "kind": "Widget"})
    with pytest.raises(StatusError, match=r'no matches for kind "CronJob" in version "batch/v1beta1".*batch/v1'):
        decode_manifest({"apiVersion": "batch/v1beta1", "kind": "CronJob"})
    with pytest.raises(StatusError, match="Kind' is missing"):
        decode_manifest({"apiVersion": "v1"})


def test_quantities_and_int_or_string() -> None:
    obj = decode_manifest(pod({"containers": [{"name": "a", "resources": {"requests": {"cpu": 0.5, "memory": "64Mi"},
                                                                           "limits": {"cpu": 1}}},
                                              ],
                               "volumes": [{"name": "v", "emptyDir": {}}]}))
    out = encode_manifest(obj)
    res = out["spec"]["containers"][0]["resources"]
    assert res == {"requests": {"cpu": "500m", "memory": "64Mi"}, "limits": {"cpu": "1"}}
    assert out["spec"]["volumes"] == [{"name": "v", "emptyDir": {}}]  # present-but-empty survives
    with pytest.raises(StatusError, match="quantities must match"):
        decode_manifest(pod({"containers": [{"name": "a", "resources": {"limits": {"cpu": "lots"}}}]}))
    svc = decode_manifest({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                           "spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8081}]}})
    assert [p["targetPort"] for p in encode_manifest(svc)["spec"]["ports"]] == ["http", 8081]


def test_int64_and_bytes_encode_as_kubernetes_does() -> None:
    p = core_pb2.Pod()
    p.spec.terminationGracePeriodSeconds = 30
    assert encode_manifest(p)["spec"]["terminationGracePeriodSeconds"] == 30
    secret = decode_manifest({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                              "data": {"password": "c2VjcmV0"}})
    assert secret.data["password"] == b"secret"
    assert encode_manifest(secret)["data"] == {"password": "c2VjcmV0"}
    with pytest.raises(StatusError, match="illegal base64"):
        decode_manifest({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"x": "!!"}})


def test_load_documents_handles_lists_flow_style_and_errors() -> None:
    text = """
---
{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a", }, data: { when: 2020-01-01 } }
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: b}}
...
"""
    docs = load_documents(text, "x.yaml")
    assert [d["kind"] for d in docs] == ["ConfigMap", "Namespace"]
    assert docs[0]["data"]["when"] == "2020-01-01"  # timestamps stay strings, as Kubernetes reads them
    with pytest.raises(StatusError, match=r"error parsing bad.yaml: .*line 4"):
        load_documents("a: 1\nb:\n  - c\n d: 2\n", "bad.yaml")


def test_yaml_output_is_sorted_and_block_style() -> None:
    out = dump_yaml({"b": 1, "a": {"y": [1], "x": 2}})
    assert out == "a:\n  x: 2\n  y:\n  - 1\nb: 1\n"
