"""core_storage.py: PersistentVolume (defaults, Pending on create, capacity,
access modes, exactly one source, reclaim policy, the immutable source) and
PersistentVolumeClaim (defaults, required fields, the frozen spec with
volumeName binding and growth of bound claims), and both kinds' rows."""

from __future__ import annotations

from typing import Any

import pytest

from ._support import NOW, create_errors, created, headers, row, status_errors, update_errors


def pv(**spec: Any) -> dict[str, Any]:
    body = {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/mnt/data"}}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv0"},
            "spec": {k: v for k, v in body.items() if v is not None}}


def pvc(**spec: Any) -> dict[str, Any]:
    body = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "3Gi"}}}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
            "spec": {k: v for k, v in body.items() if v is not None}}


# ---------------------------------------------------------------- PersistentVolume


def test_pv_defaults() -> None:
    obj = created(pv())
    assert obj.spec.persistentVolumeReclaimPolicy == "Retain"
    assert obj.spec.volumeMode == "Filesystem"
    assert obj.status.phase == "Pending"
    assert obj.status.lastPhaseTransitionTime == "2023-11-14T22:13:20Z"
    assert create_errors(pv()) == []


@pytest.mark.parametrize(("spec", "expected"), [
    ({"capacity": None}, ["spec.capacity: Required value",
                          "spec.capacity: Unsupported value: []: supported values: \"storage\""]),
    ({"capacity": {"storage": "0"}}, ['spec.capacity[storage]: Invalid value: "0": must be greater than zero']),
    ({"capacity": {"storage": "1Gi", "cpu": "1"}},
     ['spec.capacity: Unsupported value: ["cpu", "storage"]: supported values: "storage"']),
    ({"accessModes": None}, ["spec.accessModes: Required value"]),
    ({"accessModes": ["ReadWriteSometimes"]},
     ['spec.accessModes: Unsupported value: "ReadWriteSometimes": supported values: "ReadOnlyMany", '
      '"ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"']),
    ({"accessModes": ["ReadWriteOncePod", "ReadOnlyMany"]},
     ["spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes"]),
    ({"hostPath": None}, ["spec: Required value: must specify a volume type"]),
    ({"nfs": {"server": "nfs.local", "path": "/exports"}},
     ["spec.nfs: Forbidden: may not specify more than 1 volume type"]),
    ({"hostPath": None, "nfs": {"server": "nfs.local", "path": "exports"}},
     ['spec.nfs.path: Invalid value: "exports": must be an absolute path']),
    ({"hostPath": None, "csi": {"driver": "csi.example.com"}}, ["spec.csi.volumeHandle: Required value"]),
    ({"hostPath": None, "local": {"path": "/disks/1"}},
     ["spec.nodeAffinity: Required value: Local volume requires node affinity"]),
    ({"persistentVolumeReclaimPolicy": "Shred"},
     ['spec.persistentVolumeReclaimPolicy: Unsupported value: "Shred": supported values: "Delete", "Recycle", '
      '"Retain"']),
    ({"hostPath": {"path": "/"}, "persistentVolumeReclaimPolicy": "Recycle"},
     ["spec.persistentVolumeReclaimPolicy: Forbidden: may not be 'recycle' for a hostPath mount of '/'"]),
    ({"volumeMode": "Raw"}, ['spec.volumeMode: Unsupported value: "Raw": supported values: "Block", "Filesystem"']),
    ({"storageClassName": "Fast_SSD"},
     ['spec.storageClassName: Invalid value: "Fast_SSD": a lowercase RFC 1123 subdomain must consist of lower '
      "case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
      "'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*"
      "[a-z0-9])?)*')"]),
])
def test_pv_validation(spec: dict[str, Any], expected: list[str]) -> None:
    assert create_errors(pv(**spec)) == expected


def test_pv_update_rules() -> None:
    old = created(pv())
    assert update_errors(old, {"spec": {"capacity": {"storage": "20Gi"}, "claimRef": {"name": "x"}}}) == []
    assert update_errors(old, {"spec": {"hostPath": {"path": "/mnt/other"}}}) == [
        "spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation"]
    assert update_errors(old, {"spec": {"volumeMode": "Block"}}) == [
        'spec.volumeMode: Invalid value: "Block": field is immutable']
    assert status_errors(old, {"phase": "Bound"}) == []
    assert status_errors(old, {"phase": "Lost"}) == [
        'status.phase: Unsupported value: "Lost": supported values: "Pending", "Available", "Bound", "Released", '
        '"Failed"']


def test_pv_columns() -> None:
    assert headers("PersistentVolume", "v1") == ["NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS",
                                                 "CLAIM", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"]
    obj = created(pv(accessModes=["ReadWriteMany", "ReadWriteOnce", "ReadOnlyMany"], storageClassName="manual",
                     claimRef={"namespace": "default", "name": "data"}))
    obj.status.phase = "Bound"
    assert row(obj) == {"Name": "pv0", "Capacity": "10Gi", "Access Modes": "RWO,ROX,RWX",
                        "Reclaim Policy": "Retain", "Status": "Bound", "Claim": "default/data",
                        "StorageClass": "manual", "VolumeAttributesClass": "<unset>", "Reason": "", "Age": "90s",
                        "VolumeMode": "Filesystem"}
    obj.metadata.deletionTimestamp = "2023-11-14T22:14:00Z"
    assert row(obj, NOW)["Status"] == "Terminating"


# ---------------------------------------------------------------- PersistentVolumeClaim


def test_pvc_defaults() -> None:
    obj = created(pvc())
    assert obj.spec.volumeMode == "Filesystem"
    assert obj.status.phase == "Pending"
    assert create_errors(pvc()) == []


@pytest.mark.parametrize(("spec", "expected"), [
    ({"accessModes": None}, ["spec.accessModes: Required value: at least 1 access mode is required"]),
    ({"resources": None}, ["spec.resources[storage]: Required value"]),
    ({"resources": {"requests": {"storage": "0"}}},
     ['spec.resources[storage]: Invalid value: "0": must be greater than zero']),
    ({"selector": {"matchLabels": {"tier": "-gold"}}},
     ['spec.selector.matchLabels: Invalid value: "-gold": a valid label must be an empty string or consist of '
      "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
      "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
      "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]),
])
def test_pvc_validation(spec: dict[str, Any], expected: list[str]) -> None:
    assert create_errors(pvc(**spec)) == expected


def test_pvc_spec_is_frozen_except_binding_and_growth() -> None:
    frozen = ("spec: Forbidden: spec is immutable after creation except resources.requests and "
              "volumeAttributesClassName for bound claims")
    old = created(pvc())
    assert update_errors(old, {"spec": {"volumeName": "pv0"}}) == []
    assert update_errors(old, {"spec": {"accessModes": ["ReadWriteMany"]}}) == [frozen]
    assert update_errors(old, {"spec": {"resources": {"requests": {"storage": "5Gi"}}}}) == [frozen]
    bound = created(pvc(volumeName="pv0"))
    bound.status.phase = "Bound"
    assert update_errors(bound, {"spec": {"volumeName": "pv1"}}) == [frozen]
    assert update_errors(bound, {"spec": {"resources": {"requests": {"storage": "5Gi"}}}}) == []
    assert update_errors(bound, {"spec": {"resources": {"requests": {"storage": "1Gi"}}}}) == [
        "spec.resources.requests.storage: Forbidden: field can not be less than previous value"]


def test_pvc_columns() -> None:
    assert headers("PersistentVolumeClaim", "v1") == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES",
                                                      "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "AGE"]
    pending = created(pvc(storageClassName="manual"))
    assert row(pending) == {"Name": "data", "Status": "Pending", "Volume": "", "Capacity": "", "Access Modes": "",
                            "StorageClass": "manual", "VolumeAttributesClass": "<unset>", "Age": "90s",
                            "VolumeMode": "Filesystem"}
    bound = created(pvc(volumeName="pv0"))
    bound.status.phase = "Bound"
    bound.status.accessModes.append("ReadWriteOnce")
    bound.status.capacity["storage"].value = "10Gi"
    cells = row(bound)
    assert (cells["Status"], cells["Volume"], cells["Capacity"], cells["Access Modes"]) == ("Bound", "pv0", "10Gi",
                                                                                            "RWO")
