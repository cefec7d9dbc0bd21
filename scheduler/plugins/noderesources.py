"""Node resources: does the pod fit (NodeResourcesFit), and how good a fit
is the node (NodeResourcesLeastAllocated, NodeResourcesBalancedAllocation).

Fit compares the pod's requests (init containers and overhead counted as
Kubernetes counts them, see PodInfo) plus what the node's pods already
request against the node's allocatable cpu, memory, ephemeral storage,
extended resources and pod count. A node that falls short says which
resource, one reason each ("Insufficient cpu", "Too many pods"), so the
FailedScheduling event can count them.

LeastAllocated prefers the emptiest node: per resource, the share of
allocatable left after the pod, 0..100, averaged with weights (cpu and
memory, 1 each). It counts the non-zero requests (100m / 200Mi for a
container that states none), so that pods without requests still spread.
BalancedAllocation prefers nodes whose cpu and memory would be used in
equal proportions: 100 * (1 - the standard deviation of the fractions).
Both read the node's running totals, so a score is a few arithmetic
operations per node.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.framework import (
    ASSIGNED_POD,
    MAX_NODE_SCORE,
    NODE,
    SKIP,
    ActionType,
    ClusterEvent,
    CycleState,
    EnqueueExtensions,
    FilterPlugin,
    Handle,
    NodeInfo,
    PodInfo,
    PreFilterPlugin,
    PreFilterResult,
    PreScorePlugin,
    ScorePlugin,
    Status,
    unschedulable,
)

TOO_MANY_PODS = "Too many pods"


def _insufficient(resource: str) -> str:
    return f"Insufficient {resource}"


class NodeResourcesFit(PreFilterPlugin, FilterPlugin, EnqueueExtensions):
    NAME = "NodeResourcesFit"

    def __init__(self, args: Mapping[str, Any], handle: Handle) -> None:
        super().__init__(args, handle)
        self.ignored = frozenset(args.get("ignoredResources", ()))
        self.ignored_groups = frozenset(args.get("ignoredResourceGroups", ()))
        self._statuses: dict[tuple[str, ...], Status] = {}

    def pre_filter(self, state: CycleState, pod: PodInfo) -> PreFilterResult | Status | None:
        return None  # the requests were computed with the PodInfo

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        r = pod.requests
        reasons: tuple[str, ...] = ()
        if len(node.pods) + 1 > node.alloc_pods:
            reasons = (TOO_MANY_PODS,)
        if r.milli_cpu and node.alloc_cpu < node.req_cpu + r.milli_cpu:
            reasons += (_INSUFFICIENT_CPU,)
        if r.memory and node.alloc_mem < node.req_mem + r.memory:
            reasons += (_INSUFFICIENT_MEMORY,)
        if r.ephemeral_storage and node.alloc_eph < node.req_eph + r.ephemeral_storage:
            reasons += (_INSUFFICIENT_EPHEMERAL,)
        if r.scalars:
            reasons += self._scalars(r.scalars, node)
        if not reasons:
            return None
        status = self._statuses.get(reasons)
        if status is None:
            status = self._statuses[reasons] = unschedulable(*reasons)
        return status

    def _scalars(self, wanted: Mapping[str, int], node: NodeInfo) -> tuple[str, ...]:
        out = []
        for name, amount in wanted.items():
            if not amount or name in self.ignored or name.split("/", 1)[0] in self.ignored_groups:
                continue
            if node.alloc_scalars.get(name, 0) < node.req_scalars.get(name, 0) + amount:
                out.append(_insufficient(name))
        return tuple(out)

    def events_to_register(self) -> list[ClusterEvent]:
        return [ClusterEvent(ASSIGNED_POD, ActionType.DELETE | ActionType.UPDATE_POD_SCALE_DOWN),
                ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_ALLOCATABLE)]


_INSUFFICIENT_CPU = _insufficient("cpu")
_INSUFFICIENT_MEMORY = _insufficient("memory")
_INSUFFICIENT_EPHEMERAL = _insufficient("ephemeral-storage")


def _resource_weights(args: Mapping[str, Any]) -> tuple[int, int]:
    """(cpu weight, memory weight) from `resources: [{name, weight}]`."""
    weights = {"cpu": 1, "memory": 1}
    if "resources" in args:
        weights = {"cpu": 0, "memory": 0}
        for item in args["resources"]:
            name, weight = item.get("name"), int(item.get("weight", 1))
            if name not in weights:
                raise ValueError(f"resources: only cpu and memory can be weighted, not {name!r}")
            if weight < 0 or weight > 100:
                raise ValueError(f"resources[{name}].weight: must be in the range [0, 100], not {weight}")
            weights[name] = weight
    if not any(weights.values()):
        raise ValueError("resources: at least one resource needs a positive weight")
    return weights["cpu"], weights["memory"]


class NodeResourcesLeastAllocated(ScorePlugin):
    NAME = "NodeResourcesLeastAllocated"

    def __init__(self, args: Mapping[str, Any], handle: Handle) -> None:
        super().__init__(args, handle)
        self.cpu_weight, self.mem_weight = _resource_weights(args)
        self._total_weight = self.cpu_weight + self.mem_weight

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return self.score_nodes(state, pod, [node])[0]

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        pod_cpu, pod_mem = pod.non_zero_cpu, pod.non_zero_memory
        cpu_weight, mem_weight, total_weight = self.cpu_weight, self.mem_weight, self._total_weight
        out = []
        for node in nodes:
            alloc = node.alloc_cpu
            used = node.nz_cpu + pod_cpu
            cpu = (alloc - used) * MAX_NODE_SCORE // alloc if alloc and used <= alloc else 0
            alloc = node.alloc_mem
            used = node.nz_mem + pod_mem
            mem = (alloc - used) * MAX_NODE_SCORE // alloc if alloc and used <= alloc else 0
            out.append((cpu * cpu_weight + mem * mem_weight) // total_weight)
        return out


class NodeResourcesBalancedAllocation(PreScorePlugin, ScorePlugin):
    NAME = "NodeResourcesBalancedAllocation"

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        # a pod that requests nothing changes no node's balance
        r = pod.requests
        return SKIP if not r.milli_cpu and not r.memory else None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return self.score_nodes(state, pod, [node])[0]

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        pod_cpu, pod_mem = pod.requests.milli_cpu, pod.requests.memory
        out = []
        for node in nodes:
            alloc_cpu, alloc_mem = node.alloc_cpu, node.alloc_mem
            if not alloc_cpu or not alloc_mem:
                out.append(MAX_NODE_SCORE)  # one resource or none: nothing to balance
                continue
            cpu = (node.req_cpu + pod_cpu) / alloc_cpu
            mem = (node.req_mem + pod_mem) / alloc_mem
            # 1 - the standard deviation of the two fractions
            out.append(int((1 - abs(min(cpu, 1.0) - min(mem, 1.0)) / 2) * MAX_NODE_SCORE))
        return out
