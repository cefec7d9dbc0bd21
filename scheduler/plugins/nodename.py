"""NodeName (PodFitsHost): a pod that names a node in `spec.nodeName` fits
only that node. Pods that already carry a nodeName are bound and never
reach the scheduler, so in practice this guards pods the framework is
asked about directly (preemption's what-ifs, extenders, tests)."""

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
    unresolvable,
)

ERR_REASON = "node(s) didn't match the requested node name"
_REJECT = unresolvable(ERR_REASON)


class NodeName(PreFilterPlugin, FilterPlugin, EnqueueExtensions):
    NAME = "NodeName"

    def pre_filter(self, state: CycleState, pod: PodInfo) -> PreFilterResult | Status | None:
        return None if pod.node_name else SKIP

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        wanted = pod.node_name
        if wanted and wanted != node.name:
            return _REJECT
        return None

    def events_to_register(self) -> list[ClusterEvent]:
        return [ClusterEvent(NODE, ActionType.ADD)]
