"""The kubelet's VolumeManager against a real apiserver and etcd, with a real
controller-manager binding the claim and minting the ServiceAccount token:

* a pod stored by the apiserver (so its volumes carry the API's defaults)
  gets configMap, secret (tmpfs), downwardAPI, projected kube-api-access
  (token from the real token Secret, ca.crt from kube-root-ca.crt,
  namespace), persistentVolumeClaim (a static hostPath PV bound by the
  real PV binder) and emptyDir volumes; mounting fails with the kubelet's
  wording until the claim is bound and the token exists, then succeeds;
* the container mounts include a configMap key by subPath;
* after the ConfigMap is updated through the API, refresh swaps the
  volume's files; the subPath mount keeps the version the container
  started with, as in Kubernetes;
* unmount leaves no mount and no directory.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import pytest

from api import StatusError, from_dict
from client import Clientset
from deploy.local import APIServerProcess
from kubelet.volumes import MountedVolume, VolumeError, VolumeManager
from kubelet.volumes._mount import fs_type, mount_points_under, unmount
from proto import core_pb2
from tests.support.wait import eventually

from .conftest import start_component

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="tmpfs and bind mounts need root")


@pytest.fixture
async def pods_dir(tmp_path: Path) -> AsyncIterator[Path]:
    root = tmp_path / "kubelet" / "pods"
    try:
        yield root
    finally:
        for point in mount_points_under(tmp_path):
            unmount(point)


def the_pod(storage_claim: str) -> core_pb2.Pod:
    return from_dict(core_pb2.Pod, {
        "metadata": {"name": "web-0", "labels": {"app": "web"}},
        "spec": {
            "containers": [{"name": "app", "image": "busybox", "volumeMounts": [
                {"name": "config", "mountPath": "/etc/app"},
                {"name": "config", "mountPath": "/etc/app.conf", "subPath": "app.conf"},
                {"name": "db", "mountPath": "/run/db"},
                {"name": "data", "mountPath": "/data"},
                {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                 "readOnly": True}]}],
            "volumes": [
                {"name": "config", "configMap": {"name": "app-config"}},
                {"name": "db", "secret": {"secretName": "db", "items": [{"key": "password", "path": "pw",
                                                                          "mode": 0o400}]}},
                {"name": "info", "downwardAPI": {"items": [{"path": "labels",
                                                            "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                {"name": "data", "persistentVolumeClaim": {"claimName": storage_claim}},
                {"name": "scratch", "emptyDir": {}},
                {"name": "kube-api-access", "projected": {"sources": [
                    {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace",
                                                "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}},
            ],
        },
    })


async def test_volumes_from_the_api(apiserver: APIServerProcess, workdir: Path, client: Clientset, namespace: str,
                                    tmp_path: Path, pods_dir: Path) -> None:
    config_maps = client.resource(core_pb2.ConfigMap, namespace)
    await config_maps.create(from_dict(core_pb2.ConfigMap, {"metadata": {"name": "app-config"},
                                                            "data": {"app.conf": "version=1\n", "mode": "fast"}}))
    await config_maps.create(from_dict(core_pb2.ConfigMap, {"metadata": {"name": "kube-root-ca.crt"},
                                                            "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\n"}}))
    db = core_pb2.Secret(metadata={"name": "db"}, type="Opaque")
    db.data["password"] = b"s3cret"
    await client.resource(core_pb2.Secret, namespace).create(db)

    storage_class = f"manual-{uuid.uuid4().hex[:6]}"
    pv_name = f"pv-{uuid.uuid4().hex[:8]}"
    pv = from_dict(core_pb2.PersistentVolume, {
        "metadata": {"name": pv_name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                 "persistentVolumeReclaimPolicy": "Retain",
                 "hostPath": {"path": str(tmp_path / "pv-data"), "type": "DirectoryOrCreate"}}})
    claim = from_dict(core_pb2.PersistentVolumeClaim, {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                 "resources": {"requests": {"storage": "1Gi"}}}})
    await client.resource(core_pb2.PersistentVolume).create(pv)
    await client.resource(core_pb2.PersistentVolumeClaim, namespace).create(claim)
    pod = await client.resource(core_pb2.Pod, namespace).create(the_pod("data"))

    manager = VolumeManager(pods_dir, client, node_name="node-a", node_allocatable={"memory": "1Gi"})
    # Before the claim is bound (no controller-manager yet) the mount fails the kubelet's way, and
    # everything that does not depend on the claim or the token is already set up.
    with pytest.raises(VolumeError) as err:
        await manager.mount(pod)
    assert {str(e) for e in err.value.errors} >= {
        'MountVolume.SetUp failed for volume "data" : persistentvolumeclaim "data" is not bound'}
    assert manager.pods_on_disk() == [pod.metadata.uid]

    key = tmp_path / "sa.key"
    proc = start_component("controller_manager", apiserver, workdir, "--leader-elect", "false", "--controllers",
                           "persistentvolume-binder,serviceaccount,serviceaccount-token",
                           "--default-storage-class", "", "--service-account-private-key-file", str(key))
    try:
        mounted: dict[str, MountedVolume] = {}

        async def mounts() -> bool:
            try:
                mounted.update(await manager.mount(pod))
            except VolumeError:
                return False  # the kubelet retries: the claim binds and the token appears shortly
            return True
        await eventually(mounts, "the pod's volumes mounted once the claim is bound and the token exists")
    finally:
        proc.stop()

    try:
        config = mounted["config"].host_path
        assert (config / "app.conf").read_text() == "version=1\n" and (config / "mode").read_text() == "fast"
        secret_dir = mounted["db"].host_path
        assert fs_type(secret_dir) == "tmpfs" and (secret_dir / "pw").read_bytes() == b"s3cret"
        assert (mounted["info"].host_path / "labels").read_text() == 'app="web"'
        assert mounted["data"].host_path == tmp_path / "pv-data" and mounted["data"].host_path.is_dir()
        api_access = mounted["kube-api-access"].host_path
        token = (api_access / "token").read_text()
        claims = jwt.decode(token, Path(f"{key}.pub").read_bytes(), algorithms=["RS256"])
        assert claims["sub"] == f"system:serviceaccount:{namespace}:default"
        assert (api_access / "namespace").read_text() == namespace
        assert (api_access / "ca.crt").read_text() == "-----BEGIN CERTIFICATE-----\n"

        cri_mounts = manager.container_mounts(pod, pod.spec.containers[0], mounted)
        by_path = {m.container_path: m for m in cri_mounts}
        assert by_path["/etc/app"].host_path == str(config) and by_path["/etc/app"].readonly
        assert not by_path["/data"].readonly
        pinned = Path(by_path["/etc/app.conf"].host_path)
        assert pinned.read_text() == "version=1\n"

        cm = await config_maps.get("app-config")
        cm.data["app.conf"] = "version=2\n"
        await config_maps.update(cm)
        await manager.refresh(pod)
        assert (config / "app.conf").read_text() == "version=2\n"
        assert pinned.read_text() == "version=1\n"  # a subPath mount does not follow updates

        await manager.unmount(pod.metadata.uid)
        assert manager.pods_on_disk() == [] and mount_points_under(pods_dir) == []
        assert (tmp_path / "pv-data").is_dir()  # a PV's data is the node's, not the pod's
    finally:
        with contextlib.suppress(VolumeError):
            await manager.unmount(pod.metadata.uid)
        with contextlib.suppress(StatusError):
            await client.resource(core_pb2.PersistentVolume).delete(pv_name)
