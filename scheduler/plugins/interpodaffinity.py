"""InterPodAffinity: pods placed relative to other pods, per topology
domain (all nodes sharing a value of `topologyKey`: one node for
kubernetes.io/hostname, a zone for topology.kubernetes.io/zone).

Filter (required terms), worked out once per pod in PreFilter as counts
per (topologyKey, value):

* the pod's podAffinity: every term's domain must already hold a pod
  matching all of the terms - except for the first pod of a group that
  matches its own terms, which may go anywhere if no such pod exists yet;
* the pod's podAntiAffinity: no term's domain may hold a matching pod;
* the other pods' podAntiAffinity: the pod may not enter a domain whose
  pods' anti-affinity terms match it (symmetry).

Score (preferred terms, both ways, and the others' required affinity with
`hardPodAffinityWeight`) adds or subtracts weights per domain, then scales
to 0..100. Pods are found through the cache's label index, so a cycle
looks only at pods that could match, not at every pod in the cluster;
pods of other namespaces count only if the term's `namespaces` or
`namespaceSelector` take them in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scheduler.framework import (
    ASSIGNED_POD,
    MAX_NODE_SCORE,
    NODE,
    SKIP,
    ActionType,
    AffinityTerm,
    ClusterEvent,
    CycleState,
    EnqueueExtensions,
    FilterPlugin,
    Handle,
    NodeInfo,
    PodInfo,
    PreFilterExtensions,
    PreFilterPlugin,
    PreFilterResult,
    PreScorePlugin,
    ScorePlugin,
    SharedLister,
    Status,
    unresolvable,
    unschedulable,
)

ERR_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
ERR_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
_REJECT_AFFINITY = unresolvable(ERR_AFFINITY)
_REJECT_ANTI = unschedulable(ERR_ANTI_AFFINITY)
_REJECT_EXISTING = unschedulable(ERR_EXISTING_ANTI_AFFINITY)

Pair = tuple[str, str]


def _bump(counts: dict[Pair, int], labels: Mapping[str, str], key: str, delta: int) -> None:
    value = labels.get(key)
    if value is None:
        return
    pair = (key, value)
    n = counts.get(pair, 0) + delta
    if n:
        counts[pair] = n
    else:
        counts.pop(pair, None)


@dataclass
class _FilterState:
    pod_ns_labels: Mapping[str, str]
    existing_anti: dict[Pair, int] = field(default_factory=dict)
    affinity: dict[Pair, int] = field(default_factory=dict)
    anti_affinity: dict[Pair, int] = field(default_factory=dict)

    def clone(self) -> _FilterState:
        return _FilterState(self.pod_ns_labels, dict(self.existing_anti), dict(self.affinity),
                            dict(self.anti_affinity))


class InterPodAffinity(PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin, EnqueueExtensions):
    NAME = "InterPodAffinity"

    def __init__(self, args: Mapping[str, Any], handle: Handle) -> None:
        super().__init__(args, handle)
        self.hard_weight = int(args.get("hardPodAffinityWeight", 1))
        if not 0 <= self.hard_weight <= 100:
            raise ValueError(f"hardPodAffinityWeight: must be in the range [0, 100], not {self.hard_weight}")
        self.ignore_existing_preferred = bool(args.get("ignorePreferredTermsOfExistingPods", False))

    # ------------------------------------------------------------ filter

    def pre_filter(self, state: CycleState, pod: PodInfo) -> PreFilterResult | Status | None:
        snapshot = self.handle.snapshot
        existing = list(snapshot.anti_affinity_pods())
        if not pod.required_affinity and not pod.required_anti_affinity and not existing:
            return SKIP
        st = _FilterState(snapshot.namespace_labels(pod.namespace))
        for other in existing:
            node = snapshot.get(other.node_name)
            if node is not None:
                self._count_existing(st, other, pod, node, 1)
        if pod.required_affinity:
            for other in _candidates(snapshot, pod.required_affinity[0]):
                node = snapshot.get(other.node_name)
                if node is not None:
                    self._count_affinity(st, pod, other, node, 1)
        for term in pod.required_anti_affinity:
            for other in _candidates(snapshot, term):
                node = snapshot.get(other.node_name)
                if node is not None and term.matches(other, snapshot.namespace_labels):
                    _bump(st.anti_affinity, node.labels, term.topology_key, 1)
        state.write(self.NAME, st)
        return None

    def _count_existing(self, st: _FilterState, other: PodInfo, pod: PodInfo, node: NodeInfo, delta: int) -> None:
        for term in other.required_anti_affinity:
            if term.matches(pod, lambda _ns: st.pod_ns_labels):
                _bump(st.existing_anti, node.labels, term.topology_key, delta)

    def _count_affinity(self, st: _FilterState, pod: PodInfo, other: PodInfo, node: NodeInfo, delta: int) -> None:
        ns_labels = self.handle.snapshot.namespace_labels
        if all(t.matches(other, ns_labels) for t in pod.required_affinity):
            for t in pod.required_affinity:
                _bump(st.affinity, node.labels, t.topology_key, delta)

    def _update(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo, delta: int) -> Status | None:
        st: _FilterState | None = state.read(self.NAME)
        if st is None:
            return None
        self._count_existing(st, other, pod, node, delta)
        self._count_affinity(st, pod, other, node, delta)
        ns_labels = self.handle.snapshot.namespace_labels
        for term in pod.required_anti_affinity:
            if term.matches(other, ns_labels):
                _bump(st.anti_affinity, node.labels, term.topology_key, delta)
        return None

    def add_pod(self, state: CycleState, pod: PodInfo, added: PodInfo, node: NodeInfo) -> Status | None:
        return self._update(state, pod, added, node, 1)

    def remove_pod(self, state: CycleState, pod: PodInfo, removed: PodInfo, node: NodeInfo) -> Status | None:
        return self._update(state, pod, removed, node, -1)

    def pre_filter_extensions(self) -> PreFilterExtensions | None:
        return self

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        st: _FilterState = state.read(self.NAME)
        labels = node.labels
        if st.existing_anti:
            for pair in labels.items():
                if st.existing_anti.get(pair, 0) > 0:
                    return _REJECT_EXISTING
        for term in pod.required_anti_affinity:
            value = labels.get(term.topology_key)
            if value is not None and st.anti_affinity.get((term.topology_key, value), 0) > 0:
                return _REJECT_ANTI
        if pod.required_affinity:
            pods_exist = True
            for term in pod.required_affinity:
                value = labels.get(term.topology_key)
                if value is None:
                    return _REJECT_AFFINITY  # every topology label must be on the node
                if st.affinity.get((term.topology_key, value), 0) <= 0:
                    pods_exist = False
            if not pods_exist:
                # the first of a group with affinity to itself may start anywhere
                first = not st.affinity and all(t.matches(pod, lambda _ns: st.pod_ns_labels)
                                                for t in pod.required_affinity)
                if not first:
                    return _REJECT_AFFINITY
        return None

    # ------------------------------------------------------------ score

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        snapshot = self.handle.snapshot
        own = bool(pod.preferred_affinity or pod.preferred_anti_affinity)
        others = [] if self.ignore_existing_preferred else list(snapshot.affinity_pods())
        if not own and not others:
            return SKIP
        scores: dict[Pair, int] = {}
        ns_labels = snapshot.namespace_labels
        for weight_sign, terms in ((1, pod.preferred_affinity), (-1, pod.preferred_anti_affinity)):
            for term in terms:
                for other in _candidates(snapshot, term):
                    node = snapshot.get(other.node_name)
                    if node is not None and term.matches(other, ns_labels):
                        _bump(scores, node.labels, term.topology_key, weight_sign * term.weight)
        pod_ns = snapshot.namespace_labels(pod.namespace)
        for other in others:
            node = snapshot.get(other.node_name)
            if node is None or not node.labels:
                continue
            self._score_existing(scores, other, pod, node, lambda _ns: pod_ns)
        if not scores:
            return SKIP
        state.write(self.NAME + "/score", scores)
        return None

    def _score_existing(self, scores: dict[Pair, int], other: PodInfo, pod: PodInfo, node: NodeInfo,
                        ns_labels: Any) -> None:
        if self.hard_weight:
            for term in other.required_affinity:
                if term.matches(pod, ns_labels):
                    _bump(scores, node.labels, term.topology_key, self.hard_weight)
        for term in other.preferred_affinity:
            if term.matches(pod, ns_labels):
                _bump(scores, node.labels, term.topology_key, term.weight)
        for term in other.preferred_anti_affinity:
            if term.matches(pod, ns_labels):
                _bump(scores, node.labels, term.topology_key, -term.weight)

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        scores: dict[Pair, int] = state.read(self.NAME + "/score")
        return sum(scores.get(pair, 0) for pair in node.labels.items())

    def normalize_scores(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        if not scores:
            return
        low, high = min(scores), max(scores)
        spread = high - low
        for i, s in enumerate(scores):
            scores[i] = int(MAX_NODE_SCORE * (s - low) / spread) if spread > 0 else 0

    def events_to_register(self) -> list[ClusterEvent]:
        return [ClusterEvent(ASSIGNED_POD, ActionType.ADD | ActionType.DELETE | ActionType.UPDATE_POD_LABEL),
                ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_LABEL)]


def _candidates(snapshot: SharedLister, term: AffinityTerm) -> list[PodInfo]:
    """Pods that could match `term`, from the label index (terminating pods
    count until they are gone, as in Kubernetes)."""
    return list(snapshot.pods_matching(term.selector))
