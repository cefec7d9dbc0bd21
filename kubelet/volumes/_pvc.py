"""persistentVolumeClaim: the pod's claim resolved to its bound
PersistentVolume, and that volume's path on the node.

The kubelet reads the claim and the volume from the API at mount time:
the claim must exist, not be terminating, and be Bound (phase Bound with a
volumeName); the volume must exist and point back at the claim (claimRef
uid), else the mount fails with a VolumeError naming the claim
(`persistentvolumeclaim "data" is not bound`) and the kubelet retries - a
claim usually binds moments after the pod is created. kubelab's nodes
mount only volumes that are paths of the node: hostPath PVs (checked
against their type, as hostPath volumes are) and local PVs (the directory
must exist); other sources are a VolumeError. Block volumes are not
supported. `readOnly: true` on the pod's volume makes every container's
mount read-only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from api import StatusError
from proto import core_pb2

from ._base import MountedVolume, VolumeError, VolumeHost, VolumePlugin
from ._hostpath import check_host_path


async def _get(host: VolumeHost, kind: Any, namespace: str, name: str, word: str) -> Any:
    try:
        return await host.clientset.resource(kind, namespace).get(name)
    except StatusError as err:
        if err.reason == "NotFound":
            raise VolumeError(f'{word} "{name}" not found') from None
        raise VolumeError(f"couldn't get {word} {name}: {err}") from None


async def bound_volume(host: VolumeHost, pod: core_pb2.Pod, claim_name: str) -> core_pb2.PersistentVolume:
    """The PersistentVolume bound to the pod's claim `claim_name`."""
    namespace = pod.metadata.namespace
    claim = await _get(host, core_pb2.PersistentVolumeClaim, namespace, claim_name, "persistentvolumeclaim")
    if claim.metadata.deletionTimestamp:
        raise VolumeError(f'persistentvolumeclaim "{claim_name}" is being deleted')
    if claim.status.phase != "Bound" or not claim.spec.volumeName:
        raise VolumeError(f'persistentvolumeclaim "{claim_name}" is not bound')
    pv = await _get(host, core_pb2.PersistentVolume, "", claim.spec.volumeName, "persistentvolume")
    if pv.spec.claimRef.uid != claim.metadata.uid:
        raise VolumeError(f'persistentvolumeclaim "{claim_name}" names persistentvolume "{pv.metadata.name}", which '
                          f"is bound to another claim ({pv.spec.claimRef.namespace}/{pv.spec.claimRef.name})")
    return pv


def _check_local(name: str, path: str, node_name: str) -> None:
    if not os.path.isdir(path):
        raise VolumeError(f'persistentvolume "{name}": local path {path} does not exist on node {node_name} or is '
                          "not a directory")


class PersistentVolumeClaimPlugin(VolumePlugin):
    NAME: ClassVar[str] = "kubernetes.io~host-path"
    SOURCE: ClassVar[str] = "persistentVolumeClaim"

    async def setup(self, host: VolumeHost, pod: core_pb2.Pod, volume: core_pb2.Volume) -> MountedVolume:
        source = volume.persistentVolumeClaim
        pv = await bound_volume(host, pod, source.claimName)
        spec, name = pv.spec, pv.metadata.name
        if spec.HasField("volumeMode") and spec.volumeMode == "Block":
            raise VolumeError(f'persistentvolume "{name}": volumeMode Block is not supported by kubelab')
        if spec.HasField("hostPath"):
            if not spec.hostPath.path.startswith("/"):
                raise VolumeError(f'persistentvolume "{name}": hostPath {spec.hostPath.path!r} must be absolute')
            check_host_path(spec.hostPath.path, spec.hostPath.type)
            path = spec.hostPath.path
        elif spec.HasField("local"):
            path = spec.local.path
            _check_local(name, path, host.node_name)
        else:
            raise VolumeError(f'persistentvolume "{name}": kubelab nodes mount only hostPath and local '
                              "persistent volumes")
        return MountedVolume(Path(path), read_only=source.readOnly)
