"""configMap, secret, downwardAPI and projected volumes through the
VolumeManager on a temp directory: keys and items with modes, optional
sources, Kubernetes' error wording, Secrets on a real tmpfs, refresh
swapping in a changed ConfigMap atomically (and re-projecting labels),
and the projected serviceAccountToken read from the token Secret."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from kubelet.volumes import VolumeError, VolumeManager
from kubelet.volumes._mount import fs_type
from proto import core_pb2
from tests.support.fakeclient import FakeClientset

from .conftest import NS, make_pod, needs_root


async def create_config_map(cs: FakeClientset, name: str, data: dict[str, str],
                            binary: dict[str, bytes] | None = None) -> None:
    cm = core_pb2.ConfigMap(data=data, binaryData=binary or {})
    cm.metadata.name = name
    await cs.resource(core_pb2.ConfigMap, NS).create(cm)


async def create_secret(cs: FakeClientset, name: str, data: dict[str, bytes], type_: str = "Opaque",
                        annotations: dict[str, str] | None = None) -> None:
    secret = core_pb2.Secret(type=type_, data=data)
    secret.metadata.name = name
    secret.metadata.annotations.update(annotations or {})
    await cs.resource(core_pb2.Secret, NS).create(secret)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def files(path: Path) -> dict[str, str]:
    """The user-visible files of a volume (through the ..data links)."""
    out = {}
    for dirpath, _dirs, names in os.walk(path, followlinks=True):
        rel = os.path.relpath(dirpath, path)
        if rel.split("/")[0].startswith(".."):
            continue
        for name in names:
            key = os.path.normpath(os.path.join(rel, name))
            out[key] = Path(dirpath, name).read_text()
    return out


async def test_config_map_all_keys(manager: VolumeManager, cs: FakeClientset, pods_dir: Path) -> None:
    await create_config_map(cs, "settings", {"app.conf": "level=debug\n", "mode": "fast"}, {"logo.bin": b"\x00\x01"})
    pod = make_pod([{"name": "cfg", "configMap": {"name": "settings"}}])
    mounted = await manager.mount(pod)
    vol = pods_dir / "pod-uid-1" / "volumes" / "kubernetes.io~configmap" / "cfg"
    assert mounted["cfg"].host_path == vol and mounted["cfg"].read_only
    assert sorted(os.listdir(vol)) == sorted(["..data", os.readlink(vol / "..data"), "app.conf", "logo.bin", "mode"])
    assert (vol / "app.conf").read_text() == "level=debug\n"
    assert (vol / "logo.bin").read_bytes() == b"\x00\x01"
    assert mode(vol / "mode") == 0o644
    assert fs_type(vol) == ""  # on disk, not a mount


async def test_config_map_items_and_modes(manager: VolumeManager, cs: FakeClientset) -> None:
    await create_config_map(cs, "settings", {"a": "1", "b": "2", "c": "3"})
    pod = make_pod([{"name": "cfg", "configMap": {"name": "settings", "defaultMode": 0o600, "items": [
        {"key": "a", "path": "conf/a.txt"}, {"key": "b", "path": "b.sh", "mode": 0o755}]}}])
    vol = (await manager.mount(pod))["cfg"].host_path
    assert files(vol) == {"conf/a.txt": "1", "b.sh": "2"}
    assert mode(vol / "conf" / "a.txt") == 0o600
    assert mode(vol / "b.sh") == 0o755


@pytest.mark.parametrize(("volume", "error"), [
    ({"configMap": {"name": "nope"}}, 'configmap "nope" not found'),
    ({"configMap": {"name": "settings", "items": [{"key": "zz", "path": "z"}]}},
     "configmap references non-existent config key: zz"),
    ({"secret": {"secretName": "nope"}}, 'secret "nope" not found'),
    ({"secret": {"secretName": "creds", "items": [{"key": "zz", "path": "z"}]}},
     "references non-existent secret key: zz"),
    ({"configMap": {"name": "settings", "items": [{"key": "a", "path": "../escape"}]}},
     "invalid path '../escape': must not contain '..'"),
])
async def test_errors(manager: VolumeManager, cs: FakeClientset, volume: dict[str, object], error: str) -> None:
    await create_config_map(cs, "settings", {"a": "1"})
    await create_secret(cs, "creds", {"user": b"u"})
    with pytest.raises(VolumeError) as err:
        await manager.mount(make_pod([{"name": "v", **volume}]))
    assert str(err.value) == f'MountVolume.SetUp failed for volume "v" : {error}'
    assert err.value.volume == "v"


async def test_optional_sources(manager: VolumeManager, cs: FakeClientset) -> None:
    await create_config_map(cs, "settings", {"a": "1"})
    pod = make_pod([
        {"name": "missing", "configMap": {"name": "later", "optional": True}},
        {"name": "some-keys", "configMap": {"name": "settings", "optional": True,
                                            "items": [{"key": "a", "path": "a"}, {"key": "zz", "path": "z"}]}},
        {"name": "no-secret", "secret": {"secretName": "later", "optional": True}},
    ])
    mounted = await manager.mount(pod)
    assert files(mounted["missing"].host_path) == {}
    assert files(mounted["some-keys"].host_path) == {"a": "1"}
    assert files(mounted["no-secret"].host_path) == {}
    await create_config_map(cs, "later", {"k": "v"})  # appears: the next refresh fills the volume in
    await manager.refresh(pod)
    assert files(mounted["missing"].host_path) == {"k": "v"}


@needs_root
async def test_secret_on_tmpfs_with_fs_group(manager: VolumeManager, cs: FakeClientset) -> None:
    await create_secret(cs, "creds", {"user": b"admin", "password": b"s3cret"})
    pod = make_pod([{"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400}}],
                   securityContext={"fsGroup": 3000})
    vol = (await manager.mount(pod))["creds"].host_path
    assert vol.parent.name == "kubernetes.io~secret"
    assert fs_type(vol) == "tmpfs"
    assert files(vol) == {"user": "admin", "password": "s3cret"}
    st = os.stat(vol / "password")
    assert (st.st_gid, stat.S_IMODE(st.st_mode)) == (3000, 0o440)
    await manager.mount(pod)  # idempotent: not mounted twice
    assert sum(1 for line in open("/proc/self/mountinfo") if f" {vol} " in line) == 1
    await manager.unmount(pod.metadata.uid)
    assert not vol.exists()


async def test_refresh_swaps_a_changed_config_map_atomically(manager: VolumeManager, cs: FakeClientset) -> None:
    await create_config_map(cs, "settings", {"a": "1", "b": "2"})
    pod = make_pod([{"name": "cfg", "configMap": {"name": "settings"}}])
    vol = (await manager.mount(pod))["cfg"].host_path
    before = os.readlink(vol / "..data")
    await manager.refresh(pod)
    assert os.readlink(vol / "..data") == before  # unchanged source: nothing rewritten
    cm = await cs.resource(core_pb2.ConfigMap, NS).get("settings")
    cm.data["a"] = "changed"
    del cm.data["b"]
    cm.data["c"] = "3"
    await cs.resource(core_pb2.ConfigMap, NS).update(cm)
    with open(vol / "a") as reader:
        await manager.refresh(pod)
        assert reader.read() == "1"  # a reader of the old version is not disturbed
    assert os.readlink(vol / "..data") != before
    assert files(vol) == {"a": "changed", "c": "3"}


async def test_downward_api(manager: VolumeManager) -> None:
    pod = make_pod([{"name": "info", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}},
        {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}, "mode": 0o400},
        {"path": "app", "fieldRef": {"fieldPath": "metadata.labels['app']"}},
        {"path": "mem_mi", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory",
                                                "divisor": "1Mi"}},
        {"path": "cpu", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu"}},
    ]}}])
    vol = (await manager.mount(pod))["info"].host_path
    assert files(vol) == {"labels": 'app="web"', "annotations": 'build="42"', "name": "web-0", "ns": NS,
                          "uid": "pod-uid-1", "app": "web", "mem_mi": "256", "cpu": "4"}
    assert mode(vol / "uid") == 0o400
    pod.metadata.labels["version"] = "v2"  # labels change while the pod runs: refresh shows it
    await manager.refresh(pod)
    assert (vol / "labels").read_text() == 'app="web"\nversion="v2"'


async def test_downward_api_bad_items(manager: VolumeManager) -> None:
    pod = make_pod([{"name": "info", "downwardAPI": {"items": [
        {"path": "x", "fieldRef": {"fieldPath": "spec.bogus"}},
        {"path": "y", "resourceFieldRef": {"resource": "limits.cpu"}}]}}])
    with pytest.raises(VolumeError, match=re.escape("downwardAPI item x: field label not supported: spec.bogus; "
                                                    "downwardAPI item y: resourceFieldRef needs containerName")):
        await manager.mount(pod)


def kube_api_access(ca: bool = True) -> dict[str, object]:
    sources: list[dict[str, object]] = [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]
    if ca:
        sources.append({"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}})
    sources.append({"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}})
    return {"name": "kube-api-access", "projected": {"defaultMode": 0o644, "sources": sources}}


async def create_account(cs: FakeClientset, token_secret: str | None) -> core_pb2.ServiceAccount:
    sa = core_pb2.ServiceAccount()
    sa.metadata.name = "builder"
    if token_secret:
        sa.secrets.add(name=token_secret)
    return await cs.resource(core_pb2.ServiceAccount, NS).create(sa)


@needs_root
async def test_projected_kube_api_access(manager: VolumeManager, cs: FakeClientset) -> None:
    account = await create_account(cs, "builder-token-x7k2p")
    await create_secret(cs, "builder-token-x7k2p", {"token": b"eyJ.legacy.jwt", "namespace": NS.encode()},
                        "kubernetes.io/service-account-token",
                        {"kubernetes.io/service-account.name": "builder",
                         "kubernetes.io/service-account.uid": account.metadata.uid})
    pod = make_pod([kube_api_access()], serviceAccountName="builder")
    vol = (await manager.mount(pod))["kube-api-access"].host_path
    assert fs_type(vol) == "tmpfs"
    assert files(vol) == {"token": "eyJ.legacy.jwt", "namespace": NS}  # no kube-root-ca.crt yet: no ca.crt
    await create_config_map(cs, "kube-root-ca.crt", {"ca.crt": "-----BEGIN CERTIFICATE-----\n"})
    await manager.refresh(pod)
    assert files(vol) == {"token": "eyJ.legacy.jwt", "namespace": NS, "ca.crt": "-----BEGIN CERTIFICATE-----\n"}


@needs_root
async def test_projected_token_found_by_annotation_and_missing(manager: VolumeManager, cs: FakeClientset) -> None:
    account = await create_account(cs, None)
    pod = make_pod([kube_api_access(ca=False)], serviceAccountName="builder")
    with pytest.raises(VolumeError, match=f"serviceaccount {NS}/builder has no token Secret yet"):
        await manager.mount(pod)
    # a token Secret of another account, or of an earlier account of the same name, is not used
    await create_secret(cs, "other-token", {"token": b"other"}, "kubernetes.io/service-account-token",
                        {"kubernetes.io/service-account.name": "other"})
    await create_secret(cs, "builder-token-old", {"token": b"old"}, "kubernetes.io/service-account-token",
                        {"kubernetes.io/service-account.name": "builder",
                         "kubernetes.io/service-account.uid": "a-deleted-account"})
    with pytest.raises(VolumeError, match="has no token Secret yet"):
        await manager.mount(pod)
    await create_secret(cs, "builder-token-new", {"token": b"new"}, "kubernetes.io/service-account-token",
                        {"kubernetes.io/service-account.name": "builder",
                         "kubernetes.io/service-account.uid": account.metadata.uid})
    vol = (await manager.mount(pod))["kube-api-access"].host_path
    assert files(vol) == {"token": "new", "namespace": NS}


@needs_root
async def test_projected_config_map_and_secret_items(manager: VolumeManager, cs: FakeClientset) -> None:
    await create_config_map(cs, "settings", {"a": "1", "b": "2"})
    await create_secret(cs, "creds", {"user": b"admin"})
    pod = make_pod([{"name": "all", "projected": {"defaultMode": 0o640, "sources": [
        {"configMap": {"name": "settings", "items": [{"key": "a", "path": "cfg/a"}]}},
        {"secret": {"name": "creds", "items": [{"key": "user", "path": "cfg/user", "mode": 0o400}]}},
        {"secret": {"name": "absent", "optional": True}},
    ]}}])
    vol = (await manager.mount(pod))["all"].host_path
    assert files(vol) == {"cfg/a": "1", "cfg/user": "admin"}
    assert (mode(vol / "cfg" / "a"), mode(vol / "cfg" / "user")) == (0o640, 0o400)
    with pytest.raises(VolumeError, match='secret "absent" not found'):
        await manager.mount(make_pod([{"name": "all", "projected": {"sources": [{"secret": {"name": "absent"}}]}}],
                                     uid="pod-uid-2"))

