"""NodePorts (PodFitsHostPorts): a pod asking for a hostPort fits only
nodes where no pod already holds that port and protocol on the same host
IP (0.0.0.0 clashes with every IP). The node's used ports are kept in its
NodeInfo, so the check is a few dictionary lookups."""

from __future__ import annotations

from scheduler.framework import (
    ASSIGNED_POD,
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
    unschedulable,
)

ERR_REASON = "node(s) didn't have free ports for the requested pod ports"
_REJECT = unschedulable(ERR_REASON)


class NodePorts(PreFilterPlugin, FilterPlugin, EnqueueExtensions):
    NAME = "NodePorts"

    def pre_filter(self, state: CycleState, pod: PodInfo) -> PreFilterResult | Status | None:
        return None if pod.host_ports else SKIP

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return _REJECT if node.port_conflict(pod.host_ports) else None

    def events_to_register(self) -> list[ClusterEvent]:
        return [ClusterEvent(ASSIGNED_POD, ActionType.DELETE), ClusterEvent(NODE, ActionType.ADD)]
