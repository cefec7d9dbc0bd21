"""PodTopologySpread: keep matching pods evenly spread over topology
domains (zones, nodes, ...), per `spec.topologySpreadConstraints`.

For a DoNotSchedule constraint a node passes if placing the pod there
keeps `matching pods in its domain + 1 (if the pod matches itself) - the
fewest in any domain <= maxSkew`; a node without the topologyKey label is
out. Domains are those of the nodes the pod could use at all: with
nodeAffinityPolicy Honor (the default) only nodes matching the pod's
nodeSelector/affinity count, with nodeTaintsPolicy Honor only nodes whose
taints it tolerates. With fewer domains than `minDomains` the minimum is
taken as 0. Counts are made once per pod in PreFilter (pods of the pod's
namespace that match the selector and are not terminating, found through
the cache's label index) and kept right by AddPod/RemovePod for
preemption.

ScheduleAnyway constraints only score: the fewer matching pods in the
node's domain the better, weighted by log(number of domains + 2) so that a
constraint over many domains weighs more, then reversed to 0..100. Nodes
lacking a topology label score 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scheduler.framework import (
    ASSIGNED_POD,
    HOSTNAME_LABEL,
    MAX_NODE_SCORE,
    NODE,
    SKIP,
    ActionType,
    ClusterEvent,
    CycleState,
    EnqueueExtensions,
    FilterPlugin,
    NodeInfo,
    PodInfo,
    PreFilterExtensions,
    PreFilterPlugin,
    PreFilterResult,
    PreScorePlugin,
    ScorePlugin,
    SpreadConstraint,
    Status,
    Taint,
    unresolvable,
    unschedulable,
)

ERR_CONSTRAINTS = "node(s) didn't match pod topology spread constraints"
ERR_MISSING_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
_REJECT = unschedulable(ERR_CONSTRAINTS)
_MISSING = unresolvable(ERR_MISSING_LABEL)
_IGNORED = -1


def included(c: SpreadConstraint, pod: PodInfo, node: NodeInfo) -> bool:
    """Whether `node`'s domain counts for `c` (the node inclusion policies)."""
    if c.node_affinity_policy == "Honor" and pod.node_affinity is not None \
            and not pod.node_affinity.matches(node.labels, node.name):
        return False
    if c.node_taints_policy == "Honor":
        for taint in node.taints:
            if taint.effect in ("NoSchedule", "NoExecute") and not _tolerates(pod, taint):
                return False
    return True


def _tolerates(pod: PodInfo, taint: Taint) -> bool:
    return any(t.tolerates(taint) for t in pod.tolerations)


def counts_toward(c: SpreadConstraint, pod: PodInfo, other: PodInfo) -> bool:
    return other.namespace == pod.namespace and not other.terminating and c.selector.matches(other.labels)


@dataclass
class _FilterState:
    constraints: tuple[SpreadConstraint, ...]
    counts: list[dict[str, int]]  # per constraint: domain value -> matching pods
    minimum: list[int]
    self_match: list[int]

    def clone(self) -> _FilterState:
        return _FilterState(self.constraints, [dict(c) for c in self.counts], list(self.minimum), self.self_match)

    def recompute_minimum(self, i: int) -> None:
        c = self.constraints[i]
        counts = self.counts[i]
        self.minimum[i] = min(counts.values()) if counts and len(counts) >= c.min_domains else 0


@dataclass
class _ScoreState:
    constraints: tuple[SpreadConstraint, ...]
    counts: list[dict[str, int]]  # per non-hostname constraint
    weights: list[float]
    ignored: frozenset[str]


class PodTopologySpread(PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin, EnqueueExtensions):
    NAME = "PodTopologySpread"

    # ------------------------------------------------------------ filter

    def pre_filter(self, state: CycleState, pod: PodInfo) -> PreFilterResult | Status | None:
        hard = tuple(c for c in pod.spread_constraints if c.when_unsatisfiable == "DoNotSchedule")
        if not hard:
            return SKIP
        snapshot = self.handle.snapshot
        counts: list[dict[str, int]] = [{} for _ in hard]
        eligible: list[dict[str, str]] = [{} for _ in hard]  # per constraint: node name -> domain value
        for node in snapshot.node_infos:
            labels = node.labels
            if not all(c.topology_key in labels for c in hard):
                continue
            for i, c in enumerate(hard):
                if included(c, pod, node):
                    value = labels[c.topology_key]
                    counts[i].setdefault(value, 0)
                    eligible[i][node.name] = value
        for i, c in enumerate(hard):
            for other in snapshot.pods_matching(c.selector):
                domain = eligible[i].get(other.node_name)
                if domain is not None and counts_toward(c, pod, other):
                    counts[i][domain] += 1
        st = _FilterState(hard, counts, [0] * len(hard), [1 if c.selector.matches(pod.labels) else 0 for c in hard])
        for i in range(len(hard)):
            st.recompute_minimum(i)
        state.write(self.NAME, st)
        return None

    def pre_filter_extensions(self) -> PreFilterExtensions | None:
        return self

    def _update(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo, delta: int) -> Status | None:
        st: _FilterState | None = state.read(self.NAME)
        if st is None or not all(c.topology_key in node.labels for c in st.constraints):
            return None
        for i, c in enumerate(st.constraints):
            if counts_toward(c, pod, other) and included(c, pod, node):
                value = node.labels[c.topology_key]
                st.counts[i][value] = st.counts[i].get(value, 0) + delta
                st.recompute_minimum(i)
        return None

    def add_pod(self, state: CycleState, pod: PodInfo, added: PodInfo, node: NodeInfo) -> Status | None:
        return self._update(state, pod, added, node, 1)

    def remove_pod(self, state: CycleState, pod: PodInfo, removed: PodInfo, node: NodeInfo) -> Status | None:
        return self._update(state, pod, removed, node, -1)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        st: _FilterState = state.read(self.NAME)
        labels = node.labels
        for i, c in enumerate(st.constraints):
            value = labels.get(c.topology_key)
            if value is None:
                return _MISSING
            skew = st.counts[i].get(value, 0) + st.self_match[i] - st.minimum[i]
            if skew > c.max_skew:
                return _REJECT
        return None

    # ------------------------------------------------------------ score

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        soft = tuple(c for c in pod.spread_constraints if c.when_unsatisfiable == "ScheduleAnyway")
        if not soft:
            return SKIP
        ignored = frozenset(n.name for n in nodes if not all(c.topology_key in n.labels for c in soft))
        counts: list[dict[str, int]] = [{} for _ in soft]
        weights = []
        for i, c in enumerate(soft):
            if c.topology_key == HOSTNAME_LABEL:
                weights.append(math.log(len(nodes) - len(ignored) + 2))
                continue
            for n in nodes:
                if n.name not in ignored:
                    counts[i].setdefault(n.labels[c.topology_key], 0)
            weights.append(math.log(len(counts[i]) + 2))
        snapshot = self.handle.snapshot
        for i, c in enumerate(soft):
            if c.topology_key == HOSTNAME_LABEL:
                continue
            seen: dict[str, bool] = {}
            for other in snapshot.pods_matching(c.selector):
                if not counts_toward(c, pod, other):
                    continue
                ok = seen.get(other.node_name)
                node = snapshot.get(other.node_name)
                if ok is None:
                    ok = seen[other.node_name] = node is not None and all(
                        k.topology_key in node.labels for k in soft) and included(c, pod, node)
                if ok and node is not None:
                    value = node.labels[c.topology_key]
                    if value in counts[i]:
                        counts[i][value] += 1
        state.write(self.NAME + "/score", _ScoreState(soft, counts, weights, ignored))
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        st: _ScoreState = state.read(self.NAME + "/score")
        if node.name in st.ignored:
            return _IGNORED
        total = 0.0
        for i, c in enumerate(st.constraints):
            value = node.labels.get(c.topology_key)
            if value is None:
                continue
            if c.topology_key == HOSTNAME_LABEL:
                count = sum(1 for other in node.pods.values() if counts_toward(c, pod, other))
            else:
                count = st.counts[i].get(value, 0)
            total += count * st.weights[i] + (c.max_skew - 1)
        return round(total)

    def normalize_scores(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        valid = [s for s in scores if s != _IGNORED]
        if not valid:
            return
        low, high = min(valid), max(valid)
        for i, s in enumerate(scores):
            if s == _IGNORED:
                scores[i] = 0
            elif high == 0:
                scores[i] = MAX_NODE_SCORE
            else:
                scores[i] = MAX_NODE_SCORE * (high + low - s) // high

    def events_to_register(self) -> list[ClusterEvent]:
        return [ClusterEvent(ASSIGNED_POD, ActionType.ADD | ActionType.DELETE | ActionType.UPDATE_POD_LABEL),
                ClusterEvent(NODE, ActionType.ADD | ActionType.DELETE | ActionType.UPDATE_NODE_LABEL
                             | ActionType.UPDATE_NODE_TAINT)]

