"""Strategies for the core group's configuration and bookkeeping kinds:
ConfigMap, Secret, ServiceAccount, Event, and the ReplicationController (the
core group's original replicated workload, checked like a ReplicaSet with a
map selector). Storage kinds are in core_storage.py, quota and limit ranges
in core_policy.py.

ConfigMaps and Secrets become files in pods, so their keys must be usable as
file names and the whole object must fit in etcd's 1 MiB; once marked
immutable, their data can never change (kubelets stop watching them). A
Secret's `stringData` is a write-only convenience folded into `data`, and its
type promises which keys are present. An Event must sit in the namespace of
the object it is about.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from api import FieldError, forbidden_field, invalid, is_dns1123_subdomain, is_qualified_name, required, too_long

from ._checks import immutable, nonnegative
from ._columns import since, template_columns
from ._pod import default_pod_spec
from ._strategy import AGE, NAME, Column, Strategy
from ._workload import (
    validate_long_running,
    validate_replica_counts,
    validate_template,
    validate_template_map_selector,
)

MAX_SIZE = 1024 * 1024
_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_KEY_TEXT = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
             "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
_IMMUTABLE = "field is immutable when `immutable` is set"
_REDACTED = "<secret contents redacted>"


def is_config_key(key: str) -> list[str]:
    """A ConfigMap or Secret key: it becomes a file name in a volume."""
    errs = []
    if len(key) > 253:
        errs.append("must be no more than 253 characters")
    if not _KEY.match(key):
        errs.append(_KEY_TEXT)
    if key in (".", ".."):
        errs.append(f"must not be '{key}'")
    elif key.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def _validate_keys(keys: Iterable[str], path: str) -> list[FieldError]:
    return [invalid(f"{path}[{key}]", key, msg) for key in keys for msg in is_config_key(key)]


def _validate_immutable_update(obj: Any, old: Any, fields: tuple[str, ...]) -> list[FieldError]:
    """Once `immutable: true`, the data fields and the flag itself are frozen."""
    if not (old.HasField("immutable") and old.immutable):
        return []
    errs: list[FieldError] = []
    if not (obj.HasField("immutable") and obj.immutable):
        errs.append(forbidden_field("immutable", _IMMUTABLE))
    for field in fields:
        if dict(getattr(obj, field)) != dict(getattr(old, field)):
            errs.append(forbidden_field(field, _IMMUTABLE))
    return errs


# ---------------------------------------------------------------- ConfigMap


class ConfigMapStrategy(Strategy):
    columns = (NAME, Column("Data", lambda o, now: str(len(o.data) + len(o.binaryData)), type="integer"), AGE)

    def validate(self, obj: Any) -> list[FieldError]:
        errs = _validate_keys(obj.data, "data") + _validate_keys(obj.binaryData, "binaryData")
        for key in obj.binaryData:
            if key in obj.data:
                errs.append(invalid(f"binaryData[{key}]", key, "duplicate of key present in data"))
        size = sum(len(v.encode()) for v in obj.data.values()) + sum(len(v) for v in obj.binaryData.values())
        if size > MAX_SIZE:
            errs.append(too_long("", MAX_SIZE))
        return errs

    def validate_update(self, obj: Any, old: Any) -> list[FieldError]:
        return self.validate(obj) + _validate_immutable_update(obj, old, ("data", "binaryData"))


# ---------------------------------------------------------------- Secret


def _validate_json(data: bytes, path: str) -> list[FieldError]:
    try:
        if not isinstance(json.loads(data), dict):
            return [invalid(path, _REDACTED, "json: cannot unmarshal into Go value of type map[string]interface {}")]
    except ValueError as err:
        return [invalid(path, _REDACTED, str(err))]
    return []


def _validate_secret_type(secret: Any) -> list[FieldError]:
    """The keys each well-known type promises its consumers."""
    data = secret.data
    kind = secret.type
    if kind == "kubernetes.io/service-account-token":
        key = "kubernetes.io/service-account.name"
        if not secret.metadata.annotations.get(key):
            return [required(f"metadata.annotations[{key}]")]
    elif kind in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        key = ".dockercfg" if kind == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        if key not in data:
            return [required(f"data[{key}]")]
        return _validate_json(data[key], f"data[{key}]")
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            return [required("data[username]"), required("data[password]")]
    elif kind == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            return [required("data[ssh-privatekey]")]
    elif kind == "kubernetes.io/tls":
        return [required(f"data[{key}]") for key in ("tls.crt", "tls.key") if key not in data]
    return []


class SecretStrategy(Strategy):
    selectable_fields = ("type",)
    columns = (NAME, Column("Type", lambda o, now: o.type), Column("Data", lambda o, now: str(len(o.data)),
                                                                    type="integer"), AGE)

    def default(self, obj: Any) -> None:
        # stringData is write-only: it is merged over data and never stored.
        for key, value in obj.stringData.items():
            obj.data[key] = value.encode()
        obj.ClearField("stringData")
        obj.type = obj.type or "Opaque"

    def validate(self, obj: Any) -> list[FieldError]:
        errs = _validate_keys(obj.data, "data")
        if sum(len(v) for v in obj.data.values()) > MAX_SIZE:
            errs.append(too_long("data", MAX_SIZE))
        return errs + _validate_secret_type(obj)

    def validate_update(self, obj: Any, old: Any) -> list[FieldError]:
        errs = self.validate(obj) + immutable(obj.type, old.type, "type")
        return errs + _validate_immutable_update(obj, old, ("data",))

    def fields(self, obj: Any) -> dict[str, str]:
        return {"type": obj.type}


# ---------------------------------------------------------------- ServiceAccount


class ServiceAccountStrategy(Strategy):
    columns = (NAME, Column("Secrets", lambda o, now: str(len(o.secrets)), type="integer"), AGE)


# ---------------------------------------------------------------- Event

_EVENT_LIMIT = 128
_NOTE_LIMIT = 1024


def _event_times(ev: Any, now: float) -> tuple[str, str, int]:
    """LAST SEEN, FIRST SEEN and COUNT as kubectl derives them."""
    first = since(ev.firstTimestamp or ev.eventTime, now)
    last = since(ev.lastTimestamp, now) if ev.lastTimestamp else first
    count = ev.count or 1
    if ev.HasField("series"):
        last, count = since(ev.series.lastObservedTime, now), ev.series.count
    return last, first, count


def _event_object(ev: Any, now: float) -> str:
    ref = ev.involvedObject
    return f"{ref.kind.lower()}/{ref.name}" if ref.name else ref.kind.lower()


def _event_source(ev: Any, now: float) -> str:
    component = ev.source.component or ev.reportingComponent
    host = ev.source.host or ev.reportingInstance
    return f"{component}, {host}" if host else component


class EventStrategy(Strategy):
    selectable_fields = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                         "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                         "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type")
    columns = (
        Column("Last Seen", lambda o, now: _event_times(o, now)[0]),
        Column("Type", lambda o, now: o.type),
        Column("Reason", lambda o, now: o.reason),
        Column("Object", _event_object),
        Column("Subobject", lambda o, now: o.involvedObject.fieldPath, 1),
        Column("Source", _event_source, 1),
        Column("Message", lambda o, now: o.message.strip()),
        Column("First Seen", lambda o, now: _event_times(o, now)[1], 1),
        Column("Count", lambda o, now: str(_event_times(o, now)[2]), 1, "integer"),
        Column("Name", lambda o, now: o.metadata.name, 1),
    )

    def validate(self, obj: Any) -> list[FieldError]:
        errs: list[FieldError] = []
        ns, involved = obj.metadata.namespace, obj.involvedObject.namespace
        path = "involvedObject.namespace"
        if not obj.eventTime:
            # Events about cluster-scoped objects (nodes) live in "default".
            if (involved and involved != ns) or (not involved and ns not in ("", "default")):
                errs.append(invalid(path, involved, "does not match event.namespace"))
        else:
            # events.k8s.io-style events (eventTime set) name who reported them.
            if not involved and ns not in ("default", "kube-system"):
                errs.append(invalid(path, involved, "does not match event.namespace"))
            if not obj.reportingComponent:
                errs.append(required("reportingComponent"))
            errs += [invalid("reportingComponent", obj.reportingComponent, m)
                     for m in is_qualified_name(obj.reportingComponent) if obj.reportingComponent]
            for field, limit in (("reportingInstance", _EVENT_LIMIT), ("action", _EVENT_LIMIT),
                                 ("reason", _EVENT_LIMIT)):
                value = getattr(obj, field)
                if not value:
                    errs.append(required(field))
                elif len(value) > limit:
                    errs.append(invalid(field, "", f"can have at most {limit} characters"))
            if len(obj.message) > _NOTE_LIMIT:
                errs.append(invalid("message", "", f"can have at most {_NOTE_LIMIT} characters"))
        if ns:
            errs += [invalid("namespace", ns, m) for m in is_dns1123_subdomain(ns)]
        return errs

    def fields(self, obj: Any) -> dict[str, str]:
        ref = obj.involvedObject
        return {"involvedObject.kind": ref.kind, "involvedObject.namespace": ref.namespace,
                "involvedObject.name": ref.name, "involvedObject.uid": ref.uid,
                "involvedObject.apiVersion": ref.apiVersion, "involvedObject.resourceVersion": ref.resourceVersion,
                "involvedObject.fieldPath": ref.fieldPath, "reason": obj.reason,
                "reportingComponent": obj.reportingComponent, "source": obj.source.component, "type": obj.type}


# ---------------------------------------------------------------- ReplicationController


class ReplicationControllerStrategy(Strategy):
    selectable_fields = ("status.replicas",)
    columns = (
        NAME,
        Column("Desired", lambda o, now: str(o.spec.replicas), type="integer"),
        Column("Current", lambda o, now: str(o.status.replicas), type="integer"),
        Column("Ready", lambda o, now: str(o.status.readyReplicas), type="integer"),
        AGE,
        *template_columns(lambda o: o.spec.template, None),
        Column("Selector", lambda o, now: ",".join(f"{k}={v}" for k, v in sorted(o.spec.selector.items()))
               or "<none>", 1),
    )

    def default(self, obj: Any) -> None:
        spec = obj.spec
        labels = spec.template.metadata.labels
        # The selector and the controller's own labels default to the
        # template's labels (what `kubectl run` once relied on).
        if labels:
            if not spec.selector:
                spec.selector.update(labels)
            if not obj.metadata.labels:
                obj.metadata.labels.update(labels)
        if not spec.HasField("replicas"):
            spec.replicas = 1
        if spec.HasField("template"):
            default_pod_spec(spec.template.spec)

    def validate(self, obj: Any) -> list[FieldError]:
        spec = obj.spec
        errs = nonnegative(spec.minReadySeconds, "spec.minReadySeconds")
        if not spec.selector:
            errs.append(required("spec.selector"))
        errs += nonnegative(spec.replicas, "spec.replicas")
        if not spec.HasField("template"):
            return [*errs, required("spec.template")]
        errs += validate_template_map_selector(spec.selector, spec.template, "spec.template")
        errs += validate_template(spec.template, "spec.template")
        errs += validate_long_running(spec.template, "spec.template", "ReplicationController")
        return errs

    def validate_status_update(self, obj: Any, old: Any) -> list[FieldError]:
        status = obj.status
        errs = nonnegative(status.observedGeneration, "status.observedGeneration")
        return errs + validate_replica_counts(
            status, ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas"),
            ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"))

    def fields(self, obj: Any) -> dict[str, str]:
        return {"status.replicas": str(obj.status.replicas)}
