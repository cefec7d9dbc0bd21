"""NodeUnschedulable: a cordoned node (`spec.unschedulable`) takes only
pods that tolerate the `node.kubernetes.io/unschedulable:NoSchedule`
taint, which is how DaemonSet pods still land on it."""

from __future__ import annotations

from scheduler.framework import (
    NODE,
    SKIP,
    ActionType,
    ClusterEvent,
    CycleState,
    EnqueueExtensions,
    FilterPlugin,
    NodeInfo,
    PodInfo,
    PreFilterPlugin,
    PreFilterResult,
    Status,
    Taint,
    tolerated,
    unresolvable,
)

ERR_REASON = "node(s) were unschedulable"
UNSCHEDULABLE_TAINT = Taint("node.kubernetes.io/unschedulable", "", "NoSchedule")
_REJECT = unresolvable(ERR_REASON)


class NodeUnschedulable(PreFilterPlugin, FilterPlugin, EnqueueExtensions):
    NAME = "NodeUnschedulable"

    def pre_filter(self, state: CycleState, pod: PodInfo) -> PreFilterResult | Status | None:
        # no node is cordoned: nothing to check per node
        return None if self.handle.snapshot.node_counts().unschedulable else SKIP

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if not node.unschedulable or tolerated(pod.tolerations, UNSCHEDULABLE_TAINT):
            return None
        return _REJECT

    def events_to_register(self) -> list[ClusterEvent]:
        return [ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_TAINT | ActionType.UPDATE_NODE_SPEC)]
