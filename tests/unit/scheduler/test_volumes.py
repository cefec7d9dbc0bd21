"""VolumeRestrictions (NoDiskConflict for GCE PD, AWS EBS and iSCSI;
ReadWriteOncePod claims) and VolumeBinding (claims that are missing,
unbound or terminating; persistent volume node affinity)."""

from __future__ import annotations

from typing import Any

import pytest

from api import from_dict
from proto import core_pb2
from scheduler.framework import Code

from .support import Cluster, node, pod


def claim(name: str, volume: str = "", modes: tuple[str, ...] = ("ReadWriteOnce",),
          **meta: Any) -> core_pb2.PersistentVolumeClaim:
    return from_dict(core_pb2.PersistentVolumeClaim, {
        "metadata": {"name": name, "namespace": "default", **meta},
        "spec": {"accessModes": list(modes), "volumeName": volume}})


def volume(name: str, node_name: str | None = None) -> core_pb2.PersistentVolume:
    spec: dict[str, Any] = {"capacity": {"storage": "1Gi"}, "hostPath": {"path": f"/data/{name}"}}
    if node_name:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node_name]}]}]}}
    return from_dict(core_pb2.PersistentVolume, {"metadata": {"name": name}, "spec": spec})


def using(name: str, claim_name: str, node_name: str = "") -> core_pb2.Pod:
    return pod(name, node_name=node_name, volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": claim_name}}])


def disk(kind: str, ident: str, read_only: bool = False) -> dict[str, Any]:
    sources = {"gcePersistentDisk": {"pdName": ident, "readOnly": read_only},
               "awsElasticBlockStore": {"volumeID": ident},
               "iscsi": {"targetPortal": "10.0.0.1:3260", "iqn": ident, "lun": 0, "readOnly": read_only}}
    return {"name": "d", kind: sources[kind]}


@pytest.mark.parametrize(("existing", "wanted", "fits"), [
    (disk("gcePersistentDisk", "pd1"), disk("gcePersistentDisk", "pd1"), False),
    (disk("gcePersistentDisk", "pd1", True), disk("gcePersistentDisk", "pd1", True), True),
    (disk("gcePersistentDisk", "pd1"), disk("gcePersistentDisk", "pd2"), True),
    (disk("awsElasticBlockStore", "vol-1"), disk("awsElasticBlockStore", "vol-1"), False),
    (disk("iscsi", "iqn.a"), disk("iscsi", "iqn.a"), False),
    (disk("iscsi", "iqn.a", True), disk("iscsi", "iqn.a", True), True),
    ({"name": "d", "hostPath": {"path": "/var/log"}}, {"name": "d", "hostPath": {"path": "/var/log"}}, True),
])
def test_disk_conflicts(existing: dict[str, Any], wanted: dict[str, Any], fits: bool) -> None:
    c = Cluster(["VolumeRestrictions"]).add(node("n"), pod("e", node_name="n", volumes=[existing]))
    status = c.filter(pod("p", volumes=[wanted]), "n")
    assert (status is None) is fits
    if not fits:
        assert status is not None and status.reasons == ("node(s) had no available disk",)


def test_read_write_once_pod_claims() -> None:
    c = Cluster(["VolumeRestrictions"]).add(node("n"), claim("solo", "pv1", ("ReadWriteOncePod",)),
                                            claim("shared", "pv2"))
    assert c.filter(using("first", "solo"), "n") is None
    c.add(using("first", "solo", node_name="n"))
    status = c.filter(using("second", "solo"), "n")
    assert status is not None and status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert "ReadWriteOncePod" in status.message
    c.add(using("a", "shared", node_name="n"))
    assert c.filter(using("b", "shared"), "n") is None


@pytest.mark.parametrize(("objects", "message"), [
    ([], 'persistentvolumeclaim "data" not found'),
    ([claim("data")], "pod has unbound immediate PersistentVolumeClaims"),
    ([claim("data", "pv1", deletionTimestamp="2024-01-01T00:00:00Z")], 'persistentvolumeclaim "data" is being deleted'),
    ([claim("data", "pv1")], 'persistentvolume "pv1" not found'),
])
def test_claims_that_cannot_be_used(objects: list[Any], message: str) -> None:
    c = Cluster(["VolumeBinding"]).add(node("n"), *objects)
    status = c.filter(using("p", "data"), "n")
    assert status is not None and status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.message == message


def test_volume_node_affinity() -> None:
    c = Cluster(["VolumeBinding"]).add(node("n1"), node("n2"), claim("local", "pv-local"), volume("pv-local", "n2"),
                                       claim("anywhere", "pv-any"), volume("pv-any"))
    assert c.feasible(using("p", "local")) == ["n2"]
    status = c.filter(using("p", "local"), "n1")
    assert status is not None and status.reasons == ("node(s) had volume node affinity conflict",)
    assert c.feasible(using("q", "anywhere")) == ["n1", "n2"]
