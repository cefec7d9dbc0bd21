"""core_config.py: ConfigMap and Secret (key syntax, size limit, the
`immutable` flag, Secret stringData folding, type defaults and per-type
required keys), ServiceAccount and Event printing, Event namespace rules and
field selectors, and ReplicationController defaulting and validation."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from ._support import NOW, create_errors, created, headers, row, status_errors, strategy_for, update_errors

KEY_TEXT = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
            "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def configmap(**body: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, **body}


def secret(**body: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, **body}


# ---------------------------------------------------------------- ConfigMap


@pytest.mark.parametrize(("body", "expected"), [
    ({"data": {"app.properties": "a=1", "KEY_1": "x", "-dash": ""}}, []),
    ({"data": {"bad/key": "x"}}, [f'data[bad/key]: Invalid value: "bad/key": {KEY_TEXT}']),
    ({"data": {"..": "x"}}, ["data[..]: Invalid value: \"..\": must not be '..'"]),
    ({"data": {"..hidden": "x"}}, ["data[..hidden]: Invalid value: \"..hidden\": must not start with '..'"]),
    ({"data": {"k" * 254: "x"}}, [f'data[{"k" * 254}]: Invalid value: "{"k" * 254}": must be no more than 253 '
                                  "characters"]),
    ({"data": {"a": "x"}, "binaryData": {"a": b64("y")}},
     ['binaryData[a]: Invalid value: "a": duplicate of key present in data']),
    ({"binaryData": {"blob": b64("x" * (1024 * 1024 + 1))}}, ["Too long: may not be more than 1048576 bytes"]),
])
def test_configmap_validation(body: dict[str, Any], expected: list[str]) -> None:
    assert create_errors(configmap(**body)) == expected


def test_immutable_configmap() -> None:
    mutable = created(configmap(data={"a": "1"}))
    assert update_errors(mutable, {"data": {"a": "2"}, "immutable": True}) == []
    frozen = created(configmap(data={"a": "1"}, immutable=True))
    assert update_errors(frozen, {"metadata": {"labels": {"x": "y"}}}) == []
    assert update_errors(frozen, {"data": {"a": "2"}, "binaryData": {"b": b64("z")}}) == [
        "data: Forbidden: field is immutable when `immutable` is set",
        "binaryData: Forbidden: field is immutable when `immutable` is set"]
    assert update_errors(frozen, {"immutable": False}) == [
        "immutable: Forbidden: field is immutable when `immutable` is set"]


def test_configmap_columns() -> None:
    assert headers("ConfigMap", "v1") == ["NAME", "DATA", "AGE"]
    assert row(created(configmap(data={"a": "1"}, binaryData={"b": b64("2")}))) == {"Name": "cfg", "Data": "2",
                                                                                   "Age": "90s"}


# ---------------------------------------------------------------- Secret


def test_secret_defaults_fold_string_data() -> None:
    s = created(secret(data={"user": b64("old"), "keep": b64("k")}, stringData={"user": "admin", "pass": "pw"}))
    assert s.type == "Opaque"
    assert dict(s.data) == {"user": b"admin", "pass": b"pw", "keep": b"k"}
    assert not s.stringData


@pytest.mark.parametrize(("body", "expected"), [
    ({"type": "kubernetes.io/tls", "data": {"tls.crt": b64("c"), "tls.key": b64("k")}}, []),
    ({"type": "kubernetes.io/tls", "data": {"tls.crt": b64("c")}}, ["data[tls.key]: Required value"]),
    ({"type": "kubernetes.io/tls"}, ["data[tls.crt]: Required value", "data[tls.key]: Required value"]),
    ({"type": "kubernetes.io/dockerconfigjson"}, ["data[.dockerconfigjson]: Required value"]),
    ({"type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": '{"auths": {}}'}}, []),
    ({"type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "{nope"}},
     ['data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": Expecting property name enclosed in '
      "double quotes: line 1 column 2 (char 1)"]),
    ({"type": "kubernetes.io/service-account-token"},
     ["metadata.annotations[kubernetes.io/service-account.name]: Required value"]),
    ({"type": "kubernetes.io/basic-auth", "stringData": {"password": ""}}, []),
    ({"type": "kubernetes.io/basic-auth"}, ["data[username]: Required value", "data[password]: Required value"]),
    ({"type": "kubernetes.io/ssh-auth", "stringData": {"ssh-privatekey": ""}},
     ["data[ssh-privatekey]: Required value"]),
    ({"type": "example.com/custom", "data": {"x y": b64("1")}},
     [f'data[x y]: Invalid value: "x y": {KEY_TEXT}']),
    ({"data": {"big": b64("x" * (1024 * 1024 + 1))}}, ["data: Too long: may not be more than 1048576 bytes"]),
])
def test_secret_validation(body: dict[str, Any], expected: list[str]) -> None:
    assert create_errors(secret(**body)) == expected


def test_service_account_token_secret_with_annotation() -> None:
    doc = secret(type="kubernetes.io/service-account-token")
    doc["metadata"]["annotations"] = {"kubernetes.io/service-account.name": "default"}
    assert create_errors(doc) == []


def test_secret_update_rules() -> None:
    old = created(secret(stringData={"a": "1"}))
    assert update_errors(old, {"type": "kubernetes.io/basic-auth", "stringData": {"username": "u"}}) == [
        'type: Invalid value: "kubernetes.io/basic-auth": field is immutable']
    frozen = created(secret(stringData={"a": "1"}, immutable=True))
    assert update_errors(frozen, {"stringData": {"a": "2"}}) == [
        "data: Forbidden: field is immutable when `immutable` is set"]
    assert update_errors(frozen, {"stringData": {"a": "1"}}) == []  # the same data again is no change


def test_secret_columns_and_fields() -> None:
    assert headers("Secret", "v1") == ["NAME", "TYPE", "DATA", "AGE"]
    s = created(secret(stringData={"a": "1", "b": "2"}))
    assert row(s) == {"Name": "s", "Type": "Opaque", "Data": "2", "Age": "90s"}
    assert strategy_for("Secret", "v1").attrs(s)[1]["type"] == "Opaque"


# ---------------------------------------------------------------- ServiceAccount


def test_service_account_columns() -> None:
    sa = created({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "build"},
                  "secrets": [{"name": "build-token"}]})
    assert headers("ServiceAccount", "v1") == ["NAME", "SECRETS", "AGE"]
    assert row(sa) == {"Name": "build", "Secrets": "1", "Age": "90s"}


# ---------------------------------------------------------------- Event


def event(namespace: str = "default", **body: Any) -> dict[str, Any]:
    doc = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "nginx.17a", "namespace": namespace},
           "involvedObject": {"kind": "Pod", "namespace": "default", "name": "nginx", "uid": "u1",
                              "apiVersion": "v1", "fieldPath": "spec.containers{nginx}"},
           "reason": "Pulled", "message": "Successfully pulled image \"nginx\"\n", "type": "Normal",
           "source": {"component": "kubelet", "host": "node-1"}, "count": 3,
           "firstTimestamp": "2023-11-14T22:03:20Z", "lastTimestamp": "2023-11-14T22:13:00Z"}
    doc.update(body)
    return doc


@pytest.mark.parametrize(("doc", "expected"), [
    (event(), []),
    (event(namespace="prod"), ['involvedObject.namespace: Invalid value: "default": does not match event.namespace']),
    (event(involvedObject={"kind": "Node", "name": "node-1"}), []),
    (event(namespace="kube-system", involvedObject={"kind": "Node", "name": "node-1"}),
     ['involvedObject.namespace: Invalid value: "": does not match event.namespace']),
    (event(eventTime="2023-11-14T22:13:00.000000Z", reportingComponent="kubelet", reportingInstance="node-1",
           action="Pulling"), []),
    (event(eventTime="2023-11-14T22:13:00.000000Z", involvedObject={"kind": "Node", "name": "n"},
           namespace="kube-system", reason=""),
     ["reportingComponent: Required value", "reportingInstance: Required value", "action: Required value",
      "reason: Required value"]),
])
def test_event_validation(doc: dict[str, Any], expected: list[str]) -> None:
    assert create_errors(doc) == expected


def test_event_columns_and_fields() -> None:
    assert headers("Event", "v1") == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert headers("Event", "v1", wide=True) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE",
                                                 "MESSAGE", "FIRST SEEN", "COUNT", "NAME"]
    ev = created(event())
    assert row(ev, NOW) == {"Last Seen": "20s", "Type": "Normal", "Reason": "Pulled", "Object": "pod/nginx",
                            "Subobject": "spec.containers{nginx}", "Source": "kubelet, node-1",
                            "Message": 'Successfully pulled image "nginx"', "First Seen": "10m", "Count": "3",
                            "Name": "nginx.17a"}
    series = created(event(series={"count": 7, "lastObservedTime": "2023-11-14T22:13:15.000000Z"},
                           lastTimestamp="", source={}, reportingComponent="kubelet"))
    assert [row(series, NOW)[k] for k in ("Last Seen", "Count", "Source")] == ["5s", "7", "kubelet"]
    fields = strategy_for("Event", "v1").attrs(ev)[1]
    assert fields["involvedObject.name"] == "nginx"
    assert fields["source"] == "kubelet"
    assert fields["involvedObject.fieldPath"] == "spec.containers{nginx}"


# ---------------------------------------------------------------- ReplicationController


def rc(**spec: Any) -> dict[str, Any]:
    body = {"template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "web"}, "spec": body}


def test_replication_controller_defaults() -> None:
    obj = created(rc())
    assert obj.spec.replicas == 1
    assert dict(obj.spec.selector) == {"app": "web"}
    assert dict(obj.metadata.labels) == {"app": "web"}
    assert create_errors(rc()) == []
    explicit = created(rc(selector={"app": "web"}, replicas=0))
    assert explicit.spec.replicas == 0


@pytest.mark.parametrize(("spec", "expected"), [
    ({"replicas": -1}, ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]),
    ({"selector": {"app": "db"}},
     ['spec.template.metadata.labels: Invalid value: {"app": "web"}: `selector` does not match template `labels`']),
    ({"template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
     ["spec.selector: Required value"]),
    ({"template": None}, ["spec.selector: Required value", "spec.template: Required value"]),
    ({"template": {"metadata": {"labels": {"app": "web"}},
                   "spec": {"containers": [{"name": "web", "image": "nginx"}], "activeDeadlineSeconds": 9}}},
     ["spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicationController is not "
      "Supported"]),
])
def test_replication_controller_validation(spec: dict[str, Any], expected: list[str]) -> None:
    doc = rc()
    doc["spec"] = {k: v for k, v in {**doc["spec"], **spec}.items() if v is not None}
    assert create_errors(doc) == expected


def test_replication_controller_columns_and_status() -> None:
    obj = created(rc(replicas=2))
    obj.status.replicas, obj.status.readyReplicas = 2, 1
    assert headers("ReplicationController", "v1", wide=True) == ["NAME", "DESIRED", "CURRENT", "READY", "AGE",
                                                                 "CONTAINERS", "IMAGES", "SELECTOR"]
    assert row(obj) == {"Name": "web", "Desired": "2", "Current": "2", "Ready": "1", "Age": "90s",
                        "Containers": "web", "Images": "nginx", "Selector": "app=web"}
    assert strategy_for("ReplicationController", "v1").attrs(obj)[1]["status.replicas"] == "2"
    assert status_errors(obj, {"replicas": 1, "readyReplicas": 2}) == [
        "status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas"]
