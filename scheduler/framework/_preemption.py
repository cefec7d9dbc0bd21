"""Preemption: making room for a pod that fits nowhere by evicting pods of
lower priority (Kubernetes' framework/preemption Evaluator).

When every node failed the filters, the Evaluator asks, node by node
(only where the filters said Unschedulable: no eviction helps a node whose
taints or labels rule the pod out), "if the pods of lower priority were
gone, would the pod fit here, and which of them could stay?". That what-if
runs on a clone of the node and of the cycle state, so nothing real moves;
the policy (which pods are victims, which may be reprieved, how
PodDisruptionBudgets count) belongs to the plugin (DefaultPreemption),
which implements `select_victims_on_node`.

Of the nodes where it would work the best candidate is chosen, in this
order: fewest PodDisruptionBudget violations, lowest highest-victim
priority, smallest sum of victim priorities, fewest victims, and the
latest-started highest-priority victims (evict what has run the least).
Then the victims are deleted gracefully (each gets a `Preempted` event and
a DisruptionTarget condition), lower-priority pods nominated to that node
lose their nomination, and the preemptor is nominated to the node: it is
retried when the victims are gone and, in the meantime, the room is held
for it (nominated pods count in other pods' filtering).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from api import Selector, StatusError
from proto import core_pb2

from ._interface import Handle
from ._nodeinfo import NodeInfo
from ._podinfo import PodInfo
from ._status import Code, CycleState, Status, unresolvable, unschedulable

if TYPE_CHECKING:
    from client import Clientset

log = logging.getLogger(__name__)

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"


@dataclass(frozen=True)
class Victims:
    pods: list[PodInfo]  # most important first
    pdb_violations: int


@dataclass(frozen=True)
class Candidate:
    node: str
    victims: Victims


class PreemptionPolicy(Protocol):
    def select_victims_on_node(self, state: CycleState, pod: PodInfo, node: NodeInfo,
                               pdbs: Sequence[PDBBudget]) -> tuple[Victims | None, Status | None]: ...

    def candidates_to_find(self, num_nodes: int) -> tuple[int, int]:
        """(random offset, how many candidates to look for)."""
        ...


@dataclass
class PDBBudget:
    """A PodDisruptionBudget with the disruptions it still allows."""

    namespace: str
    selector: Selector
    allowed: int
    disrupted: frozenset[str]


def fit_error_message(num_nodes: int, statuses: Mapping[str, Status]) -> str:
    """`0/5 nodes are available: 2 Insufficient cpu, 3 node(s) ...`, one
    count per reason, sorted as Kubernetes sorts them."""
    histogram: dict[str, int] = {}
    for status in statuses.values():
        for reason in status.reasons:
            histogram[reason] = histogram.get(reason, 0) + 1
    parts = sorted(f"{n} {reason}" for reason, n in histogram.items())
    return f"0/{num_nodes} nodes are available: {', '.join(parts)}."


class Evaluator:
    def __init__(self, handle: Handle, policy: PreemptionPolicy, *, rand: random.Random | None = None) -> None:
        self.handle = handle
        self.policy = policy
        self.rand = rand or random.Random()

    def find_candidates(self, state: CycleState, pod: PodInfo, statuses: Mapping[str, Status],
                        pdbs: Sequence[PDBBudget]) -> tuple[list[Candidate], dict[str, Status]]:
        snapshot = self.handle.snapshot
        node_statuses: dict[str, Status] = {}
        potential: list[NodeInfo] = []
        for ni in snapshot.node_infos:
            status = statuses.get(ni.name)
            if status is not None and status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                node_statuses[ni.name] = unresolvable(NOT_HELPFUL)
            else:
                potential.append(ni)
        if not potential:
            return [], node_statuses
        offset, wanted = self.policy.candidates_to_find(len(potential))
        candidates: list[Candidate] = []
        non_violating = 0
        for i in range(len(potential)):
            node = potential[(offset + i) % len(potential)]
            victims, status = self.policy.select_victims_on_node(state.clone(), pod, node.clone(), pdbs)
            if victims is not None:
                candidates.append(Candidate(node.name, victims))
                non_violating += victims.pdb_violations == 0
                if non_violating and len(candidates) >= wanted:
                    break
            elif status is not None:
                node_statuses[node.name] = status
        return candidates, node_statuses

    async def preempt(self, state: CycleState, pod: PodInfo, statuses: Mapping[str, Status],
                      pdbs: Sequence[PDBBudget]) -> tuple[str, Status]:
        """The node the pod is nominated to ("" if none) and the outcome."""
        candidates, node_statuses = self.find_candidates(state, pod, statuses, pdbs)
        if not candidates:
            message = fit_error_message(len(self.handle.snapshot), node_statuses)
            return "", unschedulable(message)
        best = pick_one(candidates)
        await self.prepare(best, pod)
        return best.node, Status(Code.SUCCESS)

    async def prepare(self, candidate: Candidate, pod: PodInfo) -> None:
        """Evict the victims and clear lower-priority nominations there."""
        cs = self.handle.clientset
        if cs is None:
            raise RuntimeError("preemption needs a clientset")
        scheduler = self.handle.profile_name
        await asyncio.gather(*(self._evict(cs, v, pod, candidate.node, scheduler) for v in candidate.victims.pods))
        for other in self.handle.nominator.nominated_pods_for_node(candidate.node):
            if other.priority < pod.priority and other.uid != pod.uid:
                self.handle.nominator.delete_nominated_pod(other)
                await _clear_nomination(cs, other)

    async def _evict(self, cs: Clientset, victim: PodInfo, pod: PodInfo, node: str, scheduler: str) -> None:
        pods = cs.resource(core_pb2.Pod, victim.namespace)
        condition = {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                     "message": f"{scheduler}: preempting to accommodate a higher priority pod"}
        try:
            await pods.patch(victim.name, {"status": {"conditions": [condition]}}, subresource="status")
        except StatusError as err:
            log.debug("could not mark %s as a disruption target: %s", victim.key, err)
        try:
            await pods.delete(victim.name, uid=victim.uid)
        except StatusError as err:
            if err.reason != "NotFound":
                log.warning("preempting %s for %s failed: %s", victim.key, pod.key, err)
                return
        if self.handle.recorder is not None:
            self.handle.recorder.event(victim.pod, "Normal", "Preempted", f"Preempted by pod {pod.uid} on node {node}")
        log.info("preempted %s on %s for %s", victim.key, node, pod.key)


async def _clear_nomination(cs: Clientset, pi: PodInfo) -> None:
    try:
        await cs.resource(core_pb2.Pod, pi.namespace).patch(pi.name, {"status": {"nominatedNodeName": None}},
                                                           subresource="status")
    except StatusError as err:
        log.debug("clearing the nomination of %s: %s", pi.key, err)


def pick_one(candidates: Sequence[Candidate]) -> Candidate:
    """The candidate whose eviction costs least (see the module docstring)."""
    for c in candidates:
        if not c.victims.pods:
            return c

    def cost(c: Candidate) -> tuple[int, int, int, int, float]:
        victims = c.victims.pods
        top = victims[0].priority
        # the earliest start among the highest-priority victims: later is better
        earliest = min(v.start_time for v in victims if v.priority == top)
        return (c.victims.pdb_violations, top, sum(v.priority for v in victims), len(victims), -earliest)

    return min(candidates, key=cost)
