"""The hostPath dynamic provisioner, and the default StorageClass it serves.

A claim of a StorageClass whose provisioner is `kubernetes.io/host-path`
(Kubernetes' own in-tree hostPath provisioner, meant for single-host
clusters and labs) gets a PersistentVolume made for it:

* named `pvc-<claim uid>`, pre-bound to the claim (claimRef with its uid),
  so the binder pairs them and no other claim can take it;
* a `hostPath` directory `<--hostpath-provisioner-dir>/pvc-<uid>` of type
  DirectoryOrCreate: the controller-manager creates it when it can reach
  that path, and the kubelet creates it otherwise (on a lab node, which
  shares the host's filesystem, both see the same directory);
* the claim's size, access modes and volume mode, the class's reclaim
  policy (Delete unless it says otherwise) and mount options.

Deleting (reclaim policy Delete) removes the directory - only ever one
under the provisioner's own directory, whatever a PV says - and then the
PV. Filesystem work runs in a thread so the event loop never blocks on a
slow disk.

The default StorageClass (`standard`, annotated
`storageclass.kubernetes.io/is-default-class: "true"`) is created by the
binder at start when no class is marked default and none has that name;
`--default-storage-class ""` turns that off. It is created once, like an
addon: deleting it later is respected until the next restart.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

from proto import core_pb2, storage_pb2

log = logging.getLogger(__name__)

PROVISIONER_NAME = "kubernetes.io/host-path"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
DEFAULT_DIR = "/tmp/hostpath_pv"  # Kubernetes' hostPath provisioner's own choice


def default_storage_class(name: str) -> storage_pb2.StorageClass:
    sc = storage_pb2.StorageClass(provisioner=PROVISIONER_NAME, reclaimPolicy="Delete",
                                  volumeBindingMode="Immediate")
    sc.metadata.name = name
    sc.metadata.annotations[DEFAULT_CLASS_ANNOTATION] = "true"
    sc.metadata.labels["kubernetes.io/managed-by"] = "controller-manager"
    return sc


class HostPathProvisioner:
    name = PROVISIONER_NAME

    def __init__(self, base_dir: str | Path = DEFAULT_DIR) -> None:
        self.base_dir = Path(base_dir)

    def volume_name(self, claim: core_pb2.PersistentVolumeClaim) -> str:
        return f"pvc-{claim.metadata.uid}"

    def volume_for(self, claim: core_pb2.PersistentVolumeClaim,
                   sc: storage_pb2.StorageClass) -> core_pb2.PersistentVolume:
        """The PV that satisfies `claim` (not yet created)."""
        name = self.volume_name(claim)
        pv = core_pb2.PersistentVolume()
        pv.metadata.name = name
        pv.metadata.annotations[PROVISIONED_BY] = self.name
        spec = pv.spec
        spec.capacity["storage"].CopyFrom(claim.spec.resources.requests["storage"])
        spec.accessModes.extend(claim.spec.accessModes)
        spec.persistentVolumeReclaimPolicy = sc.reclaimPolicy if sc.HasField("reclaimPolicy") else "Delete"
        spec.storageClassName = sc.metadata.name
        spec.mountOptions.extend(sc.mountOptions)
        if claim.spec.HasField("volumeMode"):
            spec.volumeMode = claim.spec.volumeMode
        spec.hostPath.path = str(self.base_dir / name)
        spec.hostPath.type = "DirectoryOrCreate"
        spec.claimRef.CopyFrom(core_pb2.ObjectReference(
            kind="PersistentVolumeClaim", apiVersion="v1", namespace=claim.metadata.namespace,
            name=claim.metadata.name, uid=claim.metadata.uid, resourceVersion=claim.metadata.resourceVersion))
        return pv

    def owns(self, pv: core_pb2.PersistentVolume) -> bool:
        return pv.metadata.annotations.get(PROVISIONED_BY) == self.name and pv.spec.HasField("hostPath")

    async def make_directory(self, pv: core_pb2.PersistentVolume) -> None:
        path = Path(pv.spec.hostPath.path)
        try:
            await asyncio.to_thread(path.mkdir, mode=0o777, parents=True, exist_ok=True)
        except OSError as err:  # the kubelet will create it (DirectoryOrCreate)
            log.info("hostpath provisioner: could not create %s here (%s); the kubelet will", path, err)

    async def delete(self, pv: core_pb2.PersistentVolume) -> None:
        """Remove a provisioned volume's directory; refuse any path outside
        the provisioner's directory."""
        path = Path(pv.spec.hostPath.path)
        base = await asyncio.to_thread(self.base_dir.resolve)
        target = await asyncio.to_thread(path.resolve)
        if target == base or base not in target.parents:
            raise ValueError(f"hostpath provisioner deletes only directories under {base}, not {path}")
        if await asyncio.to_thread(target.exists):
            await asyncio.to_thread(shutil.rmtree, target)
