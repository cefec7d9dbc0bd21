"""controller_manager/volume (the PV binder and the hostPath provisioner)
on the in-memory clientset: a claim binds to the smallest volume that
satisfies it (class, access modes, size, selector) with both sides Bound;
two claims never share a volume; a claim without a class gets the default
class and a provisioned hostPath volume (directory made, and removed on
Delete); reclaim Retain keeps a Released volume, Delete of a volume it did
not provision fails; the default StorageClass is created unless one
exists or the flag says not; WaitForFirstConsumer waits; a bound claim
whose volume vanished is Lost."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from controller_manager.volume import PersistentVolumeController
from controller_manager.volume.binder import BIND_COMPLETED
from controller_manager.volume.provisioner import DEFAULT_CLASS_ANNOTATION, PROVISIONER_NAME
from proto import core_pb2, storage_pb2

from ._cluster import Harness, meta, settle

PV = core_pb2.PersistentVolume
PVC = core_pb2.PersistentVolumeClaim
SC = storage_pb2.StorageClass


def volume(name: str, size: str, *, cls: str = "manual", modes: tuple[str, ...] = ("ReadWriteOnce",),
           policy: str = "Retain", **labels: str) -> PV:
    pv = meta(PV(), name, **labels)
    pv.spec.capacity["storage"].value = size
    pv.spec.accessModes.extend(modes)
    pv.spec.storageClassName = cls
    pv.spec.persistentVolumeReclaimPolicy = policy
    pv.spec.hostPath.path = f"/data/{name}"
    pv.status.phase = "Available"
    return pv


def claim(name: str, size: str, *, cls: str | None = "manual", modes: tuple[str, ...] = ("ReadWriteOnce",),
          selector: dict[str, str] | None = None) -> PVC:
    pvc = meta(PVC(), name, "ns")
    pvc.spec.resources.requests["storage"].value = size
    pvc.spec.accessModes.extend(modes)
    if cls is not None:
        pvc.spec.storageClassName = cls
    if selector:
        pvc.spec.selector.matchLabels.update(selector)
    pvc.status.phase = "Pending"
    return pvc


async def settle_io() -> None:
    """Settle, also letting the provisioner's filesystem threads finish."""
    for _ in range(10):
        await asyncio.sleep(0.01)
        await settle()


def options(tmp_path: Path, **more: Any) -> dict[str, Any]:
    return {"hostpath_provisioner_dir": str(tmp_path / "pv"), "default_storage_class": "", **more}


def state(h: Harness, pvc: str) -> tuple[str, str]:
    got = h.get(PVC, "ns", pvc)
    assert got is not None
    return got.spec.volumeName, got.status.phase


async def test_a_claim_binds_to_the_smallest_volume_that_satisfies_it(tmp_path: Path) -> None:
    async with Harness(PersistentVolumeController, **options(tmp_path)) as h:
        for pv in (volume("huge", "100Gi"), volume("small", "1Gi"), volume("right", "10Gi"),
                   volume("rwx-only", "5Gi", modes=("ReadWriteMany",)), volume("other-class", "5Gi", cls="fast"),
                   volume("labelled", "20Gi", tier="gold")):
            await h.client(PV).create(pv)
        await h.create(claim("data", "5Gi"))
        assert state(h, "data") == ("right", "Bound")
        pvc = h.get(PVC, "ns", "data")
        assert pvc is not None and pvc.status.capacity["storage"].value == "10Gi"
        assert list(pvc.status.accessModes) == ["ReadWriteOnce"] and pvc.metadata.annotations[BIND_COMPLETED] == "yes"
        bound = h.get(PV, "", "right")
        assert bound is not None and bound.status.phase == "Bound"
        assert (bound.spec.claimRef.name, bound.spec.claimRef.uid) == ("data", pvc.metadata.uid)

        await h.create(claim("gold", "1Gi", selector={"tier": "gold"}))
        assert state(h, "gold") == ("labelled", "Bound")


async def test_two_claims_never_share_a_volume(tmp_path: Path) -> None:
    async with Harness(PersistentVolumeController, **options(tmp_path)) as h:
        await h.client(PV).create(volume("only", "10Gi"))
        await h.client(PVC, "ns").create(claim("a", "1Gi"))
        await h.client(PVC, "ns").create(claim("b", "1Gi"))
        await h.advance(1)  # the loser of the race retries after its backoff
        states = sorted([state(h, "a"), state(h, "b")])
        assert states == [("", "Pending"), ("only", "Bound")]
        assert h.events("FailedBinding")


async def test_default_class_and_hostpath_provisioning_and_delete_reclaim(tmp_path: Path) -> None:
    async with Harness(PersistentVolumeController, **options(tmp_path, default_storage_class="standard")) as h:
        [sc] = h.cs.objects(SC)
        assert sc.metadata.name == "standard" and sc.provisioner == PROVISIONER_NAME
        assert sc.metadata.annotations[DEFAULT_CLASS_ANNOTATION] == "true" and sc.reclaimPolicy == "Delete"
        await h.create(claim("data", "2Gi", cls=None))
        await settle_io()
        pvc = h.get(PVC, "ns", "data")
        assert pvc is not None and pvc.spec.storageClassName == "standard"
        name, phase = state(h, "data")
        assert (name, phase) == (f"pvc-{pvc.metadata.uid}", "Bound")
        pv = h.get(PV, "", name)
        assert pv is not None and pv.spec.persistentVolumeReclaimPolicy == "Delete"
        assert pv.spec.hostPath.type == "DirectoryOrCreate" and pv.spec.capacity["storage"].value == "2Gi"
        directory = Path(pv.spec.hostPath.path)
        assert directory.parent == tmp_path / "pv" and directory.is_dir()
        assert h.events("ProvisioningSucceeded")

        await h.client(PVC, "ns").delete("data")
        await settle_io()
        assert h.get(PV, "", name) is None and not directory.exists()


async def test_retain_keeps_a_released_volume_and_unknown_deletes_fail(tmp_path: Path) -> None:
    async with Harness(PersistentVolumeController, **options(tmp_path)) as h:
        await h.client(PV).create(volume("kept", "1Gi", policy="Retain"))
        await h.create(claim("a", "1Gi"))
        await h.client(PVC, "ns").delete("a")
        await settle()
        kept = h.get(PV, "", "kept")
        assert kept is not None and kept.status.phase == "Released"
        await h.create(claim("b", "1Gi"))
        assert state(h, "b") == ("", "Pending")  # a Released volume is not reused

        await h.client(PV).create(volume("handmade", "1Gi", cls="other", policy="Delete"))
        await h.create(claim("c", "1Gi", cls="other"))
        assert state(h, "c") == ("handmade", "Bound")
        await h.client(PVC, "ns").delete("c")
        await settle()
        failed = h.get(PV, "", "handmade")
        assert failed is not None and failed.status.phase == "Failed" and h.events("VolumeFailedDelete")


async def test_an_existing_default_class_is_respected(tmp_path: Path) -> None:
    h = Harness(PersistentVolumeController, **options(tmp_path, default_storage_class="standard"))
    mine = meta(SC(), "mine")
    mine.provisioner = "example.com/nfs"
    mine.metadata.annotations[DEFAULT_CLASS_ANNOTATION] = "true"
    await h.cs.resource(SC).create(mine)
    async with h:
        assert [c.metadata.name for c in h.cs.objects(SC)] == ["mine"]
        await h.create(claim("data", "1Gi", cls=None))
        pvc = h.get(PVC, "ns", "data")
        assert pvc is not None and pvc.spec.storageClassName == "mine"
        assert state(h, "data") == ("", "Pending") and h.events("ExternalProvisioning")


async def test_wait_for_first_consumer(tmp_path: Path) -> None:
    async with Harness(PersistentVolumeController, **options(tmp_path)) as h:
        sc = meta(SC(), "local")
        sc.provisioner = PROVISIONER_NAME
        sc.volumeBindingMode = "WaitForFirstConsumer"
        await h.create(sc)
        await h.create(claim("data", "1Gi", cls="local"))
        assert state(h, "data") == ("", "Pending") and not h.cs.objects(PV)
        pvc = await h.client(PVC, "ns").get("data")
        pvc.metadata.annotations["volume.kubernetes.io/selected-node"] = "node-1"
        await h.client(PVC, "ns").update(pvc)
        await settle_io()
        assert state(h, "data")[1] == "Bound"


async def test_a_claim_whose_volume_vanished_is_lost(tmp_path: Path) -> None:
    async with Harness(PersistentVolumeController, **options(tmp_path)) as h:
        await h.client(PV).create(volume("v", "1Gi"))
        await h.create(claim("data", "1Gi"))
        assert state(h, "data") == ("v", "Bound")
        await h.client(PV).delete("v")
        await settle()
        assert state(h, "data") == ("v", "Lost") and h.events("ClaimLost")
