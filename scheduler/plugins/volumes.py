"""Volumes: what a pod's volumes allow (VolumeRestrictions) and where its
persistent volumes can be reached (VolumeBinding).

VolumeRestrictions is the old NoDiskConflict predicate plus access modes:

* a disk that a node attaches for one writer - a GCE persistent disk or
  an iSCSI target (unless every user mounts it read-only), an AWS EBS
  volume (always) - cannot be used by two pods on one node: "node(s) had
  no available disk";
* a claim with the ReadWriteOncePod access mode may be used by one pod in
  the whole cluster.

hostPath and emptyDir volumes never conflict (two pods may share a host
directory), as in Kubernetes.

VolumeBinding (the part of Kubernetes' plugin that checks, without
provisioning): every PersistentVolumeClaim the pod names must exist, not
be terminating, and be bound to a PersistentVolume ("pod has unbound
immediate PersistentVolumeClaims" otherwise); and a node fits only if it
matches the `nodeAffinity` of every bound volume (a `local` or hostPath
volume lives on one node): "node(s) had volume node affinity conflict".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api import StatusError
from proto import core_pb2
from scheduler.framework import (
    ASSIGNED_POD,
    NODE,
    PERSISTENT_VOLUME,
    PERSISTENT_VOLUME_CLAIM,
    SKIP,
    ActionType,
    ClusterEvent,
    CycleState,
    DiskVolume,
    EnqueueExtensions,
    FilterPlugin,
    Handle,
    NodeInfo,
    NodeSelectorTerm,
    PodInfo,
    PreFilterPlugin,
    PreFilterResult,
    Status,
    unresolvable,
    unschedulable,
)

ERR_DISK_CONFLICT = "node(s) had no available disk"
ERR_RWOP_CONFLICT = "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode"
ERR_UNBOUND = "pod has unbound immediate PersistentVolumeClaims"
ERR_NODE_AFFINITY = "node(s) had volume node affinity conflict"
_DISK_CONFLICT = unschedulable(ERR_DISK_CONFLICT)
_AFFINITY_CONFLICT = unresolvable(ERR_NODE_AFFINITY)


def disks_conflict(a: DiskVolume, b: DiskVolume) -> bool:
    if a.kind != b.kind or a.id != b.id:
        return False
    if a.kind == "awsElasticBlockStore":
        return True
    return not (a.read_only and b.read_only)


class VolumeRestrictions(PreFilterPlugin, FilterPlugin, EnqueueExtensions):
    NAME = "VolumeRestrictions"

    def __init__(self, args: Mapping[str, Any], handle: Handle) -> None:
        super().__init__(args, handle)
        self._claims = handle.lister(core_pb2.PersistentVolumeClaim)

    def pre_filter(self, state: CycleState, pod: PodInfo) -> PreFilterResult | Status | None:
        if not pod.disk_volumes and not pod.claims:
            return SKIP
        if pod.claims:
            snapshot = self.handle.snapshot
            for name in pod.claims:
                try:
                    pvc = self._claims.get(pod.namespace, name)
                except StatusError:
                    continue  # VolumeBinding reports a missing claim
                if "ReadWriteOncePod" in pvc.spec.accessModes and snapshot.claim_users(pod.namespace, name):
                    return unresolvable(ERR_RWOP_CONFLICT)
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if not pod.disk_volumes:
            return None
        for other in node.pods.values():
            for theirs in other.disk_volumes:
                if any(disks_conflict(mine, theirs) for mine in pod.disk_volumes):
                    return _DISK_CONFLICT
        return None

    def events_to_register(self) -> list[ClusterEvent]:
        return [ClusterEvent(ASSIGNED_POD, ActionType.DELETE), ClusterEvent(NODE, ActionType.ADD),
                ClusterEvent(PERSISTENT_VOLUME_CLAIM, ActionType.ADD | ActionType.UPDATE)]


class VolumeBinding(PreFilterPlugin, FilterPlugin, EnqueueExtensions):
    NAME = "VolumeBinding"

    def __init__(self, args: Mapping[str, Any], handle: Handle) -> None:
        super().__init__(args, handle)
        self._claims = handle.lister(core_pb2.PersistentVolumeClaim)
        self._volumes = handle.lister(core_pb2.PersistentVolume)

    def pre_filter(self, state: CycleState, pod: PodInfo) -> PreFilterResult | Status | None:
        if not pod.claims:
            return SKIP
        required: list[tuple[NodeSelectorTerm, ...]] = []
        for name in pod.claims:
            try:
                pvc = self._claims.get(pod.namespace, name)
            except StatusError:
                return unresolvable(f'persistentvolumeclaim "{name}" not found')
            if pvc.metadata.deletionTimestamp:
                return unresolvable(f'persistentvolumeclaim "{name}" is being deleted')
            if not pvc.spec.volumeName:
                return unresolvable(ERR_UNBOUND)
            try:
                pv = self._volumes.get("", pvc.spec.volumeName)
            except StatusError:
                return unresolvable(f'persistentvolume "{pvc.spec.volumeName}" not found')
            if pv.spec.HasField("nodeAffinity") and pv.spec.nodeAffinity.HasField("required"):
                terms = pv.spec.nodeAffinity.required.nodeSelectorTerms
                required.append(tuple(NodeSelectorTerm.parse(t) for t in terms))
        if not required:
            return SKIP  # bound, and reachable from anywhere
        state.write(self.NAME, tuple(required))
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        for terms in state.read(self.NAME):
            if not any(t.matches(node.labels, node.name) for t in terms):
                return _AFFINITY_CONFLICT
        return None

    def events_to_register(self) -> list[ClusterEvent]:
        return [ClusterEvent(PERSISTENT_VOLUME_CLAIM, ActionType.ADD | ActionType.UPDATE),
                ClusterEvent(PERSISTENT_VOLUME, ActionType.ADD | ActionType.UPDATE),
                ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_LABEL)]
