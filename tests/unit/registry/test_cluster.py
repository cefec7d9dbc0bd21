"""cluster.py: Lease (create-on-update, duration and transitions),
EndpointSlice (address types and addresses, limits, ports, the immutable
address type, rows), PriorityClass (user and system values, immutable value
and policy), StorageClass (defaults, immutable fields, the "(default)"
marker) and PodDisruptionBudget (min/max rules, rows)."""

from __future__ import annotations

from typing import Any

import pytest

from ._support import create_errors, created, headers, row, status_errors, strategy_for, update_errors

# ---------------------------------------------------------------- Lease


def lease(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "kube-scheduler"},
            "spec": spec}


def test_lease() -> None:
    assert strategy_for("Lease", "coordination.k8s.io/v1").allow_create_on_update
    assert create_errors(lease(holderIdentity="node-1_ab12", leaseDurationSeconds=15, leaseTransitions=0,
                               renewTime="2023-11-14T22:13:20.123456Z")) == []
    assert create_errors(lease(leaseDurationSeconds=0, leaseTransitions=-1)) == [
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
        "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"]
    assert create_errors(lease(preferredHolder="b")) == [
        "spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined"]
    assert headers("Lease", "coordination.k8s.io/v1") == ["NAME", "HOLDER", "AGE"]
    assert row(created(lease(holderIdentity="node-1_ab12"))) == {"Name": "kube-scheduler", "Holder": "node-1_ab12",
                                                                 "Age": "90s"}


# ---------------------------------------------------------------- EndpointSlice

DISCOVERY = "discovery.k8s.io/v1"


def endpoint_slice(address_type: str = "IPv4", addresses: list[str] | None = None, **body: Any) -> dict[str, Any]:
    doc = {"apiVersion": DISCOVERY, "kind": "EndpointSlice", "metadata": {"name": "web-abc12"},
           "addressType": address_type,
           "endpoints": [{"addresses": [a]} for a in (addresses or ["10.244.1.5"])],
           "ports": [{"name": "http", "port": 80}]}
    doc.update(body)
    return doc


def test_endpoint_slice_defaults_ports() -> None:
    eps = created(endpoint_slice(ports=[{"port": 80}]))
    assert eps.ports[0].protocol == "TCP"
    assert eps.ports[0].HasField("name") and eps.ports[0].name == ""


@pytest.mark.parametrize(("doc", "expected"), [
    (endpoint_slice(), []),
    (endpoint_slice("IPv6", ["fd00:10:244::5"]), []),
    (endpoint_slice("FQDN", ["db.example.com"]), []),
    (endpoint_slice(""), ["addressType: Required value"]),
    (endpoint_slice("MAC"), ['addressType: Unsupported value: "MAC": supported values: "FQDN", "IPv4", "IPv6"']),
    (endpoint_slice("IPv4", ["fd00::5"]), ['endpoints[0].addresses[0]: Invalid value: "fd00::5": must be a valid '
                                           "IPv4 address"]),
    (endpoint_slice("IPv6", ["10.0.0.1"]), ['endpoints[0].addresses[0]: Invalid value: "10.0.0.1": must be a valid '
                                            "IPv6 address"]),
    (endpoint_slice("IPv4", ["127.0.0.1"]), ['endpoints[0].addresses[0]: Invalid value: "127.0.0.1": may not be in '
                                             "the loopback range (127.0.0.0/8, ::1/128)"]),
    (endpoint_slice("IPv4", ["169.254.1.1"]), ['endpoints[0].addresses[0]: Invalid value: "169.254.1.1": may not be '
                                               "in the link-local range (169.254.0.0/16, fe80::/10)"]),
    (endpoint_slice("FQDN", ["localhost"]), ['endpoints[0].addresses[0]: Invalid value: "localhost": should be a '
                                             "domain with at least two segments separated by dots"]),
    (endpoint_slice(endpoints=[{"addresses": []}]),
     ["endpoints[0].addresses: Required value: must contain at least 1 address"]),
    (endpoint_slice(endpoints=[{"addresses": ["10.0.0.1"]}] * 1001),
     ["endpoints: Too many: 1001: must have at most 1000 items"]),
    (endpoint_slice(ports=[{"name": "http", "port": 80}, {"name": "http", "port": 0, "protocol": "ICMP"}]),
     ['ports[1].name: Duplicate value: "http"',
      'ports[1].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"',
      "ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive"]),
])
def test_endpoint_slice_validation(doc: dict[str, Any], expected: list[str]) -> None:
    assert create_errors(doc) == expected


def test_endpoint_slice_update_and_columns() -> None:
    old = created(endpoint_slice(addresses=["10.244.1.5", "10.244.2.7", "10.244.3.2", "10.244.1.9"]))
    assert update_errors(old, {"endpoints": [{"addresses": ["10.244.1.6"]}]}) == []
    assert update_errors(old, {"addressType": "IPv6", "endpoints": [{"addresses": ["fd00::1"]}]}) == [
        'addressType: Invalid value: "IPv6": field is immutable']
    assert headers("EndpointSlice", DISCOVERY) == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    assert row(old) == {"Name": "web-abc12", "AddressType": "IPv4", "Ports": "80",
                        "Endpoints": "10.244.1.5,10.244.2.7,10.244.3.2 + 1 more...", "Age": "90s"}
    empty = created(endpoint_slice(endpoints=[], ports=[{"name": "dns"}]))
    assert (row(empty)["Ports"], row(empty)["Endpoints"]) == ("dns", "<unset>")


# ---------------------------------------------------------------- PriorityClass

SCHED = "scheduling.k8s.io/v1"


def priority_class(name: str = "high", **body: Any) -> dict[str, Any]:
    return {"apiVersion": SCHED, "kind": "PriorityClass", "metadata": {"name": name}, "value": 1000, **body}


@pytest.mark.parametrize(("doc", "expected"), [
    (priority_class(), []),
    (priority_class(value=1_000_000_001),
     ["value: Forbidden: maximum allowed value of a user defined priority is 1000000000"]),
    (priority_class("system-node-critical", value=2_000_001_000), []),
    (priority_class("system-cluster-critical", value=5),
     ["metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. "
      "error: value of system-cluster-critical PriorityClass must be 2000000000"]),
    (priority_class("system-mine"),
     ["metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. "
      "error: system-mine is not a known system priority class"]),
    (priority_class(preemptionPolicy="Always"),
     ['preemptionPolicy: Unsupported value: "Always": supported values: "PreemptLowerPriority", "Never"']),
])
def test_priority_class_validation(doc: dict[str, Any], expected: list[str]) -> None:
    assert create_errors(doc) == expected


def test_priority_class_defaults_update_and_columns() -> None:
    pc = created(priority_class(globalDefault=True))
    assert pc.preemptionPolicy == "PreemptLowerPriority"
    assert update_errors(pc, {"description": "for databases"}) == []
    assert update_errors(pc, {"value": 2000, "preemptionPolicy": "Never"}) == [
        "value: Forbidden: may not be changed in an update.",
        'preemptionPolicy: Invalid value: "Never": field is immutable']
    assert headers("PriorityClass", SCHED) == ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]
    assert row(pc) == {"Name": "high", "Value": "1000", "Global-Default": "true", "Age": "90s",
                       "PreemptionPolicy": "PreemptLowerPriority"}


# ---------------------------------------------------------------- StorageClass

STORAGE = "storage.k8s.io/v1"


def storage_class(**body: Any) -> dict[str, Any]:
    return {"apiVersion": STORAGE, "kind": "StorageClass", "metadata": {"name": "standard"},
            "provisioner": "kubelab.io/hostpath", **body}


@pytest.mark.parametrize(("doc", "expected"), [
    (storage_class(parameters={"type": "ssd"}, allowedTopologies=[{"matchLabelExpressions": [
        {"key": "topology.kubernetes.io/zone", "values": ["a", "b"]}]}]), []),
    (storage_class(provisioner=""), ["provisioner: Required value"]),
    (storage_class(provisioner="bad provisioner"),
     ['provisioner: Invalid value: "bad provisioner": name part must consist of alphanumeric characters, \'-\', '
      "'_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
      "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"]),
    (storage_class(reclaimPolicy="Recycle"),
     ['reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"']),
    (storage_class(volumeBindingMode="Later"),
     ['volumeBindingMode: Unsupported value: "Later": supported values: "Immediate", "WaitForFirstConsumer"']),
    (storage_class(allowedTopologies=[{"matchLabelExpressions": [{"key": "zone"}]}]),
     ["allowedTopologies[0].matchLabelExpressions[0].values: Required value: must specify as least one value"]),
])
def test_storage_class_validation(doc: dict[str, Any], expected: list[str]) -> None:
    assert create_errors(doc) == expected


def test_storage_class_defaults_update_and_columns() -> None:
    sc = created(storage_class())
    assert (sc.reclaimPolicy, sc.volumeBindingMode) == ("Delete", "Immediate")
    assert update_errors(sc, {"allowVolumeExpansion": True, "mountOptions": ["ro"]}) == []
    assert update_errors(sc, {"provisioner": "other.io/x", "parameters": {"a": "b"}, "reclaimPolicy": "Retain",
                              "volumeBindingMode": "WaitForFirstConsumer"}) == [
        "parameters: Forbidden: updates to parameters are forbidden.",
        "provisioner: Forbidden: updates to provisioner are forbidden.",
        "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden.",
        'volumeBindingMode: Invalid value: "WaitForFirstConsumer": field is immutable']
    assert headers("StorageClass", STORAGE) == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE",
                                                "ALLOWVOLUMEEXPANSION", "AGE"]
    assert row(sc) == {"Name": "standard", "Provisioner": "kubelab.io/hostpath", "ReclaimPolicy": "Delete",
                       "VolumeBindingMode": "Immediate", "AllowVolumeExpansion": "false", "Age": "90s"}
    default = created({**storage_class(allowVolumeExpansion=True), "metadata": {
        "name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}})
    assert (row(default)["Name"], row(default)["AllowVolumeExpansion"]) == ("standard (default)", "true")


# ---------------------------------------------------------------- PodDisruptionBudget


def pdb(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "zk"},
            "spec": {"selector": {"matchLabels": {"app": "zk"}}, **spec}}


@pytest.mark.parametrize(("spec", "expected"), [
    ({"minAvailable": 2}, []),
    ({"maxUnavailable": "25%"}, []),
    ({"minAvailable": 1, "maxUnavailable": 1},
     ['spec: Invalid value: {"maxUnavailable": 1, "minAvailable": 1}: minAvailable and maxUnavailable cannot be '
      "both set"]),
    ({"minAvailable": -1}, ["spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"]),
    ({"maxUnavailable": "120%"}, ['spec.maxUnavailable: Invalid value: "120%": must not be greater than 100%']),
    ({"minAvailable": "half"},
     ['spec.minAvailable: Invalid value: "half": a valid percent string must be a numeric string followed by an '
      "ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"]),
    ({"unhealthyPodEvictionPolicy": "Never"},
     ['spec.unhealthyPodEvictionPolicy: Unsupported value: "Never": supported values: "AlwaysAllow", '
      '"IfHealthyBudget"']),
])
def test_pdb_validation(spec: dict[str, Any], expected: list[str]) -> None:
    assert create_errors(pdb(**spec)) == expected


def test_pdb_columns_and_status() -> None:
    assert headers("PodDisruptionBudget", "policy/v1") == ["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE",
                                                           "ALLOWED DISRUPTIONS", "AGE"]
    obj = created(pdb(minAvailable="50%"))
    obj.status.disruptionsAllowed = 1
    assert row(obj) == {"Name": "zk", "Min Available": "50%", "Max Unavailable": "N/A", "Allowed Disruptions": "1",
                        "Age": "90s"}
    assert status_errors(obj, {"disruptionsAllowed": -1}) == [
        "status.disruptionsAllowed: Invalid value: -1: must be greater than or equal to 0"]
