"""kubelet/volumes/_manager.py and the volume types it drives: emptyDir on
disk and as a real, sized tmpfs; hostPath; persistentVolumeClaim resolved
through claim and volume; container mounts (readOnly, propagation, subPath
created, pinned by a bind mount and kept inside the volume, subPathExpr);
every failing volume reported at once; unmount removing tmpfs, binds and
the pod directory; pods_on_disk."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest

from api import from_dict
from kubelet.volumes import VolumeError, VolumeManager
from kubelet.volumes._mount import fs_type, mount_points_under
from proto import core_pb2, cri_pb2
from tests.support.fakeclient import FakeClientset

from .conftest import NS, make_pod, needs_root


async def test_empty_dir_on_disk(manager: VolumeManager, pods_dir: Path) -> None:
    pod = make_pod([{"name": "scratch", "emptyDir": {}}], securityContext={"fsGroup": 2000})
    mounted = await manager.mount(pod)
    vol = pods_dir / "pod-uid-1" / "volumes" / "kubernetes.io~empty-dir" / "scratch"
    assert mounted["scratch"].host_path == vol and not mounted["scratch"].read_only
    st = os.stat(vol)
    assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o2777, 2000)
    assert fs_type(vol) == ""
    (vol / "kept").write_text("x")
    await manager.mount(pod)  # idempotent: content stays
    assert (vol / "kept").read_text() == "x"


@needs_root
@pytest.mark.parametrize(("size_limit", "want"), [
    ("64Mi", 64 << 20),   # sizeLimit below the pod's 256Mi limit
    ("", 256 << 20),      # no sizeLimit: the pod's memory limit
    ("2Gi", 256 << 20),   # a sizeLimit above the pod's limit does not raise it
])
async def test_empty_dir_memory_is_a_sized_tmpfs(manager: VolumeManager, size_limit: str, want: int) -> None:
    source: dict[str, Any] = {"medium": "Memory"}
    if size_limit:
        source["sizeLimit"] = size_limit
    pod = make_pod([{"name": "cache", "emptyDir": source}])
    vol = (await manager.mount(pod))["cache"].host_path
    assert fs_type(vol) == "tmpfs"
    fs = os.statvfs(vol)
    assert fs.f_blocks * fs.f_frsize == want
    await manager.unmount(pod.metadata.uid)
    assert fs_type(vol) == "" and not vol.exists()


async def test_empty_dir_unsupported_medium(manager: VolumeManager) -> None:
    with pytest.raises(VolumeError, match='emptyDir medium "HugePages-2Mi" is not supported'):
        await manager.mount(make_pod([{"name": "huge", "emptyDir": {"medium": "HugePages-2Mi"}}]))


async def test_host_path(manager: VolumeManager, tmp_path: Path) -> None:
    pod = make_pod([{"name": "logs", "hostPath": {"path": str(tmp_path / "node-logs"), "type": "DirectoryOrCreate"}},
                    {"name": "sock", "hostPath": {"path": str(tmp_path / "nope.sock"), "type": "Socket"}}])
    with pytest.raises(VolumeError) as err:
        await manager.mount(pod)
    assert str(err.value) == (f'MountVolume.SetUp failed for volume "sock" : hostPath type check failed: '
                              f"{tmp_path / 'nope.sock'} is not a socket file")
    assert (tmp_path / "node-logs").is_dir()  # the volume that worked is set up


async def test_every_failing_volume_is_reported(manager: VolumeManager) -> None:
    pod = make_pod([{"name": "a", "configMap": {"name": "x"}}, {"name": "ok", "emptyDir": {}},
                    {"name": "b", "nfs": {"server": "10.0.0.1", "path": "/"}}, {"name": "c"}])
    with pytest.raises(VolumeError) as err:
        await manager.mount(pod)
    assert [e.volume for e in err.value.errors] == ["a", "b", "c"]
    assert "nfs volumes are not supported by kubelab nodes" in str(err.value.errors[1])
    assert "must set exactly one volume source, found 0 (none)" in str(err.value.errors[2])


# ---------------------------------------------------------------- persistentVolumeClaim

async def make_claim(cs: FakeClientset, tmp_path: Path, *, bound: bool = True, pv_source: dict[str, Any] | None = None,
                     other_claim: bool = False) -> None:
    claim = core_pb2.PersistentVolumeClaim()
    claim.metadata.name = "data"
    claim.spec.accessModes.append("ReadWriteOnce")
    if bound:
        claim.spec.volumeName = "pv-data"
        claim.status.phase = "Bound"
    else:
        claim.status.phase = "Pending"
    claim = await cs.resource(core_pb2.PersistentVolumeClaim, NS).create(claim)
    pv = from_dict(core_pb2.PersistentVolume, {
        "metadata": {"name": "pv-data"},
        "spec": {**(pv_source or {"hostPath": {"path": str(tmp_path / "pv-data"), "type": "DirectoryOrCreate"}}),
                 "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "claimRef": {"namespace": NS, "name": "data",
                              "uid": "someone-else" if other_claim else claim.metadata.uid}},
        "status": {"phase": "Bound"}})
    await cs.resource(core_pb2.PersistentVolume).create(pv)


async def test_pvc_bound_to_host_path_volume(manager: VolumeManager, cs: FakeClientset, tmp_path: Path) -> None:
    await make_claim(cs, tmp_path)
    pod = make_pod([{"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "data-ro", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}}])
    mounted = await manager.mount(pod)
    assert mounted["data"].host_path == tmp_path / "pv-data" and not mounted["data"].read_only
    assert mounted["data-ro"].read_only
    assert (tmp_path / "pv-data").is_dir()


async def test_pvc_local_volume(manager: VolumeManager, cs: FakeClientset, tmp_path: Path) -> None:
    await make_claim(cs, tmp_path, pv_source={"local": {"path": str(tmp_path / "disk")}})
    pod = make_pod([{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}])
    with pytest.raises(VolumeError, match=f"local path {tmp_path / 'disk'} does not exist on node node-a"):
        await manager.mount(pod)
    (tmp_path / "disk").mkdir()
    assert (await manager.mount(pod))["data"].host_path == tmp_path / "disk"


@pytest.mark.parametrize(("kw", "error"), [
    ({"bound": False}, 'persistentvolumeclaim "data" is not bound'),
    ({"other_claim": True}, 'persistentvolumeclaim "data" names persistentvolume "pv-data", which is bound to '
                            "another claim"),
    ({"pv_source": {"nfs": {"server": "10.0.0.1", "path": "/x"}}},
     'persistentvolume "pv-data": kubelab nodes mount only hostPath and local persistent volumes'),
])
async def test_pvc_errors(manager: VolumeManager, cs: FakeClientset, tmp_path: Path, kw: dict[str, Any],
                          error: str) -> None:
    await make_claim(cs, tmp_path, **kw)
    with pytest.raises(VolumeError, match=error):
        await manager.mount(make_pod([{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]))


async def test_pvc_missing(manager: VolumeManager) -> None:
    with pytest.raises(VolumeError, match='persistentvolumeclaim "ghost" not found'):
        await manager.mount(make_pod([{"name": "data", "persistentVolumeClaim": {"claimName": "ghost"}}]))


# ---------------------------------------------------------------- container mounts

def container(mounts: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"name": "app", "volumeMounts": mounts, **extra}


@needs_root
async def test_container_mounts(manager: VolumeManager, cs: FakeClientset, pods_dir: Path) -> None:
    cm = core_pb2.ConfigMap(data={"app.conf": "x=1"})
    cm.metadata.name = "settings"
    await cs.resource(core_pb2.ConfigMap, NS).create(cm)
    pod = make_pod([{"name": "scratch", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "settings"}}],
                   [container([{"name": "scratch", "mountPath": "/data"},
                               {"name": "scratch", "mountPath": "/ro", "readOnly": True,
                                "mountPropagation": "HostToContainer"},
                               {"name": "cfg", "mountPath": "/etc/app"},
                               {"name": "scratch", "mountPath": "/logs", "subPath": "logs/app"},
                               {"name": "cfg", "mountPath": "/etc/app.conf", "subPath": "app.conf"},
                               {"name": "scratch", "mountPath": "/per-pod", "subPathExpr": "pods/$(POD_NAME)"}])])
    mounted = await manager.mount(pod)
    mounts = manager.container_mounts(pod, pod.spec.containers[0], mounted, env=[("POD_NAME", "web-0")])
    scratch, cfg = mounted["scratch"].host_path, mounted["cfg"].host_path
    subpaths = pods_dir / "pod-uid-1" / "volume-subpaths"
    assert [(m.container_path, m.host_path, m.readonly, m.propagation) for m in mounts] == [
        ("/data", str(scratch), False, cri_pb2.PROPAGATION_PRIVATE),
        ("/ro", str(scratch), True, cri_pb2.PROPAGATION_HOST_TO_CONTAINER),
        ("/etc/app", str(cfg), True, cri_pb2.PROPAGATION_PRIVATE),
        ("/logs", str(subpaths / "scratch" / "app" / "3"), False, cri_pb2.PROPAGATION_PRIVATE),
        ("/etc/app.conf", str(subpaths / "cfg" / "app" / "4"), True, cri_pb2.PROPAGATION_PRIVATE),
        ("/per-pod", str(subpaths / "scratch" / "app" / "5"), False, cri_pb2.PROPAGATION_PRIVATE),
    ]
    assert (scratch / "logs" / "app").is_dir()  # a missing subPath is created inside the volume
    assert (scratch / "pods" / "web-0").is_dir()
    # the subPath targets are bind mounts of what they name
    (scratch / "logs" / "app" / "out.log").write_text("hello")
    assert (subpaths / "scratch" / "app" / "3" / "out.log").read_text() == "hello"
    assert (subpaths / "cfg" / "app" / "4").read_text() == "x=1"
    # a container restart mounts again (no stacked mounts)
    manager.container_mounts(pod, pod.spec.containers[0], mounted, env=[("POD_NAME", "web-0")])
    with open("/proc/self/mountinfo") as fh:
        assert sum(1 for line in fh if f" {subpaths}/" in line) == 3
    await manager.unmount(pod.metadata.uid)
    assert mount_points_under(pods_dir) == [] and manager.pods_on_disk() == []
    assert not scratch.exists()


@pytest.mark.parametrize(("mount", "error"), [
    ({"name": "scratch", "mountPath": "/x", "subPath": "/etc"}, "subPath '/etc' must be a relative path"),
    ({"name": "scratch", "mountPath": "/x", "subPath": "a/../../.."}, "subPath 'a/../../..' must not contain '..'"),
    ({"name": "scratch", "mountPath": "/x", "subPathExpr": "$(UP)/x"}, "subPath '../x' must not contain '..'"),
    ({"name": "escape", "mountPath": "/x", "subPath": "link/passwd"}, "resolves to /etc/passwd, outside the volume"),
    ({"name": "nope", "mountPath": "/x"}, 'cannot find volume "nope" to mount into container "app"'),
    ({"name": "scratch", "mountPath": "/x", "mountPropagation": "Bidirectional"},
     "Bidirectional mount propagation is available only to privileged containers"),
    ({"name": "scratch", "mountPath": "/x", "mountPropagation": "Sideways"}, "invalid mountPropagation 'Sideways'"),
])
async def test_container_mount_errors(manager: VolumeManager, pods_dir: Path, mount: dict[str, Any],
                                      error: str) -> None:
    pod = make_pod([{"name": "scratch", "emptyDir": {}}, {"name": "escape", "emptyDir": {}}], [container([mount])])
    mounted = await manager.mount(pod)
    os.symlink("/etc", mounted["escape"].host_path / "link")  # what a container could write into its volume
    with pytest.raises(VolumeError, match=re.escape(error)):
        manager.container_mounts(pod, pod.spec.containers[0], mounted, env=[("UP", "..")])
    assert mount_points_under(pods_dir) == []  # nothing was bind-mounted


async def test_unmount_and_pods_on_disk(manager: VolumeManager, pods_dir: Path) -> None:
    assert manager.pods_on_disk() == []
    for uid in ("uid-a", "uid-b"):
        await manager.mount(make_pod([{"name": "scratch", "emptyDir": {}}], uid=uid))
    (pods_dir / "stray-file").write_text("not a pod")
    assert manager.pods_on_disk() == ["uid-a", "uid-b"]
    await manager.unmount("uid-a")
    await manager.unmount("uid-a")  # already gone: fine
    assert manager.pods_on_disk() == ["uid-b"]
    with pytest.raises(VolumeError, match=re.escape("invalid pod uid '..'")):
        await manager.unmount("..")
