"""Informer event handlers: how the cluster's changes reach the cache and
the queue (Kubernetes' eventhandlers.go).

Pods split in two on `spec.nodeName`:

* assigned pods (anyone's - the cache must know every pod that takes room
  on a node, whichever scheduler or manifest put it there) go to the
  cache; their arrival, change or removal is a cluster event that may
  help waiting pods (a deleted pod frees room, a new one may satisfy an
  affinity);
* unassigned pods go to the queue - only those whose `schedulerName` one
  of our profiles serves, and not once they are being deleted. Pods for
  another scheduler are never touched.

A pod's transition from unassigned to assigned is the binding landing:
the queue forgets it and the cache confirms the assumed pod, reusing the
PodInfo worked out when it was queued (a binding changes only nodeName and
a condition). Finished pods (Succeeded, Failed) take no room and leave the
cache. Node changes are classified (labels, taints, allocatable,
unschedulable, conditions) so that only the pods a change could help are
retried.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from client import DeletedFinalStateUnknown
from proto import core_pb2

from ._cache import Cache
from ._queue import SchedulingQueue, pod_updated
from .framework import (
    ASSIGNED_POD,
    NODE,
    PERSISTENT_VOLUME,
    PERSISTENT_VOLUME_CLAIM,
    ActionType,
    ClusterEvent,
    PodInfo,
    new_pod_info,
)

log = logging.getLogger(__name__)

ASSIGNED_POD_ADD = ClusterEvent(ASSIGNED_POD, ActionType.ADD, "AssignedPodAdd")
ASSIGNED_POD_DELETE = ClusterEvent(ASSIGNED_POD, ActionType.DELETE, "AssignedPodDelete")
NODE_ADD = ClusterEvent(NODE, ActionType.ADD, "NodeAdd")
_TERMINAL = ("Succeeded", "Failed")


def _unwrap(obj: Any) -> Any:
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


def _finished(pod: core_pb2.Pod) -> bool:
    return pod.status.phase in _TERMINAL


def node_change(old: core_pb2.Node, new: core_pb2.Node) -> ActionType:
    """What changed in a node, as far as scheduling cares (0: nothing)."""
    action = ActionType(0)
    if old.metadata.labels != new.metadata.labels:
        action |= ActionType.UPDATE_NODE_LABEL
    if list(old.spec.taints) != list(new.spec.taints):
        action |= ActionType.UPDATE_NODE_TAINT
    if old.spec.unschedulable != new.spec.unschedulable:
        action |= ActionType.UPDATE_NODE_SPEC
    if old.status.allocatable != new.status.allocatable or old.status.capacity != new.status.capacity:
        action |= ActionType.UPDATE_NODE_ALLOCATABLE
    if [(c.type, c.status) for c in old.status.conditions] != [(c.type, c.status) for c in new.status.conditions]:
        action |= ActionType.UPDATE_NODE_CONDITION
    if list(old.status.images) != list(new.status.images):
        action |= ActionType.UPDATE_OTHER
    return action


class EventHandlers:
    def __init__(self, cache: Cache, queue: SchedulingQueue, scheduler_names: Collection[str]) -> None:
        self.cache = cache
        self.queue = queue
        self.scheduler_names = frozenset(scheduler_names)
        self.handled = 0  # events handled so far (the scheduling loop yields while this moves)

    def activity(self) -> int:
        return self.handled

    def responsible(self, pod: core_pb2.Pod) -> bool:
        return (pod.spec.schedulerName or "default-scheduler") in self.scheduler_names

    # ------------------------------------------------------------ pods

    def on_pod_add(self, pod: core_pb2.Pod) -> None:
        self.handled += 1
        if pod.spec.nodeName:
            if not _finished(pod):
                self.cache.add_pod(new_pod_info(pod))
                self.queue.move_all_to_active_or_backoff(ASSIGNED_POD_ADD)
        elif self.responsible(pod) and not pod.metadata.deletionTimestamp:
            self.queue.add(new_pod_info(pod))

    def on_pod_update(self, old: core_pb2.Pod, new: core_pb2.Pod) -> None:
        self.handled += 1
        if old is new:
            return  # a resync
        if new.spec.nodeName:
            if not old.spec.nodeName:
                self._bound(new)
            elif _finished(new):
                self._assigned_gone(new)
            else:
                self._assigned_changed(old, new)
            return
        if not self.responsible(new):
            return
        uid = new.metadata.uid
        if self.cache.is_assumed(uid):
            return  # being bound: the binding's own update will follow
        if new.metadata.deletionTimestamp:
            self.queue.delete(new_pod_info(new))
            return
        old_pi, new_pi = new_pod_info(old), new_pod_info(new)
        self.queue.update(new_pi, spec_changed=pod_updated(old_pi, new_pi))

    def on_pod_delete(self, obj: core_pb2.Pod | DeletedFinalStateUnknown[core_pb2.Pod]) -> None:
        self.handled += 1
        pod: core_pb2.Pod = _unwrap(obj)
        uid = pod.metadata.uid
        if pod.spec.nodeName or self.cache.get_pod(uid) is not None:
            self._assigned_gone(pod)
        if not pod.spec.nodeName:
            self.queue.delete(new_pod_info(pod))

    def _bound(self, pod: core_pb2.Pod) -> None:
        uid = pod.metadata.uid
        known = self.cache.get_pod(uid)
        pi: PodInfo
        if known is not None and known.labels == dict(pod.metadata.labels):
            pi = known.with_pod(pod)
        else:
            pi = new_pod_info(pod)
        self.queue.delete(pi)
        if _finished(pod):
            self.cache.remove_pod(uid)
            return
        self.cache.add_pod(pi)
        self.queue.move_all_to_active_or_backoff(ASSIGNED_POD_ADD)

    def _assigned_changed(self, old: core_pb2.Pod, new: core_pb2.Pod) -> None:
        old_pi = self.cache.get_pod(new.metadata.uid)
        new_pi = new_pod_info(new)
        self.cache.update_pod(new_pi)
        action = ActionType(0)
        if old_pi is None or old_pi.labels != new_pi.labels:
            action |= ActionType.UPDATE_POD_LABEL
        if old_pi is not None and (new_pi.requests.milli_cpu < old_pi.requests.milli_cpu
                                   or new_pi.requests.memory < old_pi.requests.memory):
            action |= ActionType.UPDATE_POD_SCALE_DOWN
        if new.metadata.deletionTimestamp and not old.metadata.deletionTimestamp:
            action |= ActionType.UPDATE_OTHER
        if action:
            self.queue.move_all_to_active_or_backoff(ClusterEvent(ASSIGNED_POD, action, "AssignedPodUpdate"))

    def _assigned_gone(self, pod: core_pb2.Pod) -> None:
        self.cache.remove_pod(pod.metadata.uid)
        self.queue.move_all_to_active_or_backoff(ASSIGNED_POD_DELETE)

    # ------------------------------------------------------------ nodes

    def on_node_add(self, node: core_pb2.Node) -> None:
        self.handled += 1
        self.cache.add_node(node)
        self.queue.move_all_to_active_or_backoff(NODE_ADD)

    def on_node_update(self, old: core_pb2.Node, new: core_pb2.Node) -> None:
        self.handled += 1
        if old is new:
            return
        self.cache.update_node(new)
        action = node_change(old, new)
        if action:
            self.queue.move_all_to_active_or_backoff(ClusterEvent(NODE, action, "NodeUpdate"))

    def on_node_delete(self, obj: core_pb2.Node | DeletedFinalStateUnknown[core_pb2.Node]) -> None:
        node: core_pb2.Node = _unwrap(obj)
        self.cache.remove_node(node.metadata.name)

    # ------------------------------------------------------------ namespaces and volumes

    def on_namespace(self, ns: core_pb2.Namespace, new: core_pb2.Namespace | None = None) -> None:
        self.cache.set_namespace(new if new is not None else ns)

    def on_namespace_delete(self, obj: Any) -> None:
        self.cache.remove_namespace(_unwrap(obj).metadata.name)

    def on_claim(self, *objs: Any) -> None:
        action = ActionType.ADD if len(objs) == 1 else ActionType.UPDATE_OTHER
        self.queue.move_all_to_active_or_backoff(ClusterEvent(PERSISTENT_VOLUME_CLAIM, action, "PvcChange"))

    def on_volume(self, *objs: Any) -> None:
        action = ActionType.ADD if len(objs) == 1 else ActionType.UPDATE_OTHER
        self.queue.move_all_to_active_or_backoff(ClusterEvent(PERSISTENT_VOLUME, action, "PvChange"))
