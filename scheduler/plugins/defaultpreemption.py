"""DefaultPreemption: the PostFilter that evicts lower-priority pods to make
room (the mechanics are in framework's Evaluator; this is the policy).

* Who may preempt: any pod, unless its `preemptionPolicy` is Never, or it
  is already nominated to a node where lower-priority pods are still
  terminating (it waits for them instead of evicting more).
* Victims on a node: remove every pod of lower priority; if the pod still
  does not fit, the node is no candidate. Otherwise put them back one by
  one, most important first (higher priority, then longer running), and
  keep each that still leaves room: those whose eviction would break a
  PodDisruptionBudget are tried first, so budgets are respected where
  possible and broken only when nothing else makes room.
* How many nodes to try: 10 % of them but at least 100
  (`minCandidateNodesPercentage`, `minCandidateNodesAbsolute`), from a
  random offset.

A budget's remaining disruptions come from its status when a disruption
controller maintains it (status.observedGeneration set). kubelab has no
disruption controller yet, so for a budget nobody has observed the
scheduler works them out the way that controller would, counting the
budget's pods that are bound and not terminating as healthy.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from api import Selector, SelectorError, scaled_value, selector_from_message
from proto import policy_pb2
from scheduler.framework import (
    NO_VICTIMS,
    Code,
    CycleState,
    Evaluator,
    Handle,
    NodeInfo,
    PDBBudget,
    PodInfo,
    PostFilterPlugin,
    PostFilterResult,
    Status,
    Victims,
    unresolvable,
    unschedulable,
)


def more_important(pi: PodInfo) -> tuple[int, float]:
    """Sort key: higher priority first, then the pod that started earlier."""
    return (-pi.priority, pi.start_time)


class DefaultPreemption(PostFilterPlugin):
    NAME = "DefaultPreemption"

    def __init__(self, args: Mapping[str, Any], handle: Handle, *, rand: random.Random | None = None) -> None:
        super().__init__(args, handle)
        self.min_percentage = int(args.get("minCandidateNodesPercentage", 10))
        self.min_absolute = int(args.get("minCandidateNodesAbsolute", 100))
        if not 0 <= self.min_percentage <= 100:
            raise ValueError(f"minCandidateNodesPercentage: must be in the range [0, 100], not {self.min_percentage}")
        if self.min_absolute < 0 or (self.min_percentage == 0 and self.min_absolute == 0):
            raise ValueError("minCandidateNodesAbsolute: must be positive (or minCandidateNodesPercentage set)")
        self.rand = rand or random.Random()
        self._pdbs = handle.lister(policy_pb2.PodDisruptionBudget)

    async def post_filter(self, state: CycleState, pod: PodInfo,
                          statuses: Mapping[str, Status]) -> tuple[PostFilterResult | None, Status]:
        ok, why = self.eligible(pod, statuses)
        if not ok:
            return None, unschedulable(f"preemption: {why}")
        evaluator = Evaluator(self.handle, self, rand=self.rand)
        node, status = await evaluator.preempt(state, pod, statuses, self.budgets())
        if status.is_success():
            return PostFilterResult(node), status
        return PostFilterResult(""), unschedulable(f"preemption: {status.message}")

    def eligible(self, pod: PodInfo, statuses: Mapping[str, Status]) -> tuple[bool, str]:
        if pod.preempt_never:
            return False, "not eligible due to preemptionPolicy=Never."
        nominated = pod.pod.status.nominatedNodeName
        if nominated:
            status = statuses.get(nominated)
            if status is not None and status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                return True, ""
            node = self.handle.snapshot.get(nominated)
            if node is not None and any(p.priority < pod.priority and p.terminating for p in node.pods.values()):
                return False, "not eligible due to a terminating pod on the nominated node."
        return True, ""

    def candidates_to_find(self, num_nodes: int) -> tuple[int, int]:
        wanted = max(num_nodes * self.min_percentage // 100, self.min_absolute)
        return self.rand.randrange(num_nodes), min(wanted, num_nodes)

    def select_victims_on_node(self, state: CycleState, pod: PodInfo, node: NodeInfo,
                               pdbs: Sequence[PDBBudget]) -> tuple[Victims | None, Status | None]:
        fwk = self.handle
        potential = sorted((p for p in node.pods.values() if p.priority < pod.priority), key=more_important)
        if not potential:
            return None, unresolvable(NO_VICTIMS)
        for victim in potential:
            node.remove_pod(victim)
            status = fwk.run_pre_filter_remove_pod(state, pod, victim, node)
            if status is not None:
                return None, status
        status = fwk.run_filters_with_nominated_pods(state, pod, node)
        if status is not None:
            return None, status
        violating, non_violating = split_by_budgets(potential, pdbs)
        victims: list[PodInfo] = []

        def reprieve(p: PodInfo) -> bool:
            node.add_pod(p)
            fwk.run_pre_filter_add_pod(state, pod, p, node)
            if fwk.run_filters_with_nominated_pods(state, pod, node) is None:
                return True
            node.remove_pod(p)
            fwk.run_pre_filter_remove_pod(state, pod, p, node)
            victims.append(p)
            return False

        violations = sum(1 for p in violating if not reprieve(p))
        for p in non_violating:
            reprieve(p)
        victims.sort(key=more_important)
        return Victims(victims, violations), None

    def budgets(self) -> list[PDBBudget]:
        out = []
        for pdb in self._pdbs.list():
            try:
                selector = selector_from_message(pdb.spec.selector if pdb.spec.HasField("selector") else None)
            except SelectorError:
                continue
            out.append(PDBBudget(pdb.metadata.namespace, selector, self._allowed(pdb, selector),
                                 frozenset(pdb.status.disruptedPods)))
        return out

    def _allowed(self, pdb: policy_pb2.PodDisruptionBudget, selector: Selector) -> int:
        status = pdb.status
        if status.observedGeneration and status.observedGeneration >= pdb.metadata.generation:
            return status.disruptionsAllowed
        if selector.empty():
            return 0
        healthy = sum(1 for p in self.handle.snapshot.pods_matching(selector)
                      if p.namespace == pdb.metadata.namespace and not p.terminating and selector.matches(p.labels))
        spec = pdb.spec
        try:
            if spec.HasField("maxUnavailable"):
                desired = healthy - scaled_value(spec.maxUnavailable, healthy, True)
            elif spec.HasField("minAvailable"):
                desired = scaled_value(spec.minAvailable, healthy, True)
            else:
                return 0
        except ValueError:
            return 0
        return max(0, healthy - desired)


def split_by_budgets(pods: Sequence[PodInfo], pdbs: Sequence[PDBBudget]) -> tuple[list[PodInfo], list[PodInfo]]:
    """(pods whose eviction would exceed a budget, the others), in order;
    each matching eviction uses up one of a budget's allowed disruptions."""
    allowed = [b.allowed for b in pdbs]
    violating: list[PodInfo] = []
    fine: list[PodInfo] = []
    for p in pods:
        broken = False
        if p.labels:
            for i, b in enumerate(pdbs):
                if b.namespace != p.namespace or b.selector.empty() or not b.selector.matches(p.labels):
                    continue
                if p.name in b.disrupted:
                    continue
                allowed[i] -= 1
                if allowed[i] < 0:
                    broken = True
        (violating if broken else fine).append(p)
    return violating, fine
