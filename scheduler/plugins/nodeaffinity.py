"""NodeAffinity: `spec.nodeSelector` and required node affinity decide
where a pod may go (Filter); preferred node affinity terms add their
weights to the nodes that match them (Score, scaled so the best node gets
100).

Required terms are ORed and the expressions inside a term ANDed, with the
operators In, NotIn, Exists, DoesNotExist, Gt and Lt; `matchFields` may
name nodes by `metadata.name`, and when every term does, PreFilter hands
the framework just those node names. The profile may add an affinity to
every pod (`args.addedAffinity`), as Kubernetes' NodeAffinityArgs does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api import from_dict
from proto import core_pb2
from scheduler.framework import (
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
    NodeSelectorTerm,
    PodInfo,
    PreferredNodeTerm,
    PreFilterPlugin,
    PreFilterResult,
    PreScorePlugin,
    ScorePlugin,
    Status,
    unresolvable,
)

ERR_REASON = "node(s) didn't match Pod's node affinity/selector"
_REJECT = unresolvable(ERR_REASON)


class NodeAffinity(PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin, EnqueueExtensions):
    NAME = "NodeAffinity"

    def __init__(self, args: Mapping[str, Any], handle: Handle) -> None:
        super().__init__(args, handle)
        self.added_required: tuple[NodeSelectorTerm, ...] | None = None
        self.added_preferred: tuple[PreferredNodeTerm, ...] = ()
        if args.get("addedAffinity"):
            added = from_dict(core_pb2.NodeAffinity, args["addedAffinity"])
            if added.HasField("requiredDuringSchedulingIgnoredDuringExecution"):
                self.added_required = tuple(NodeSelectorTerm.parse(t) for t in
                                            added.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms)
            self.added_preferred = tuple(PreferredNodeTerm(p.weight, NodeSelectorTerm.parse(p.preference))
                                         for p in added.preferredDuringSchedulingIgnoredDuringExecution)

    # ------------------------------------------------------------ filter

    def pre_filter(self, state: CycleState, pod: PodInfo) -> PreFilterResult | Status | None:
        if pod.node_affinity is None and self.added_required is None:
            return SKIP
        terms = pod.node_affinity.terms if pod.node_affinity is not None else None
        if not terms:
            return None
        names: set[str] = set()
        for term in terms:
            wanted = [r for r in term.fields if r.key == "metadata.name" and r.operator == "in"]
            if not wanted:
                return None  # some term can match nodes of any name
            names.update(wanted[0].values)
        return PreFilterResult(frozenset(names))

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if self.added_required is not None and not any(t.matches(node.labels, node.name)
                                                       for t in self.added_required):
            return _REJECT
        affinity = pod.node_affinity
        if affinity is not None and not affinity.matches(node.labels, node.name):
            return _REJECT
        return None

    # ------------------------------------------------------------ score

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        terms = pod.preferred_node_terms + self.added_preferred
        if not terms:
            return SKIP
        state.write(self.NAME, terms)
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        terms: tuple[PreferredNodeTerm, ...] = state.read(self.NAME)
        return sum(p.weight for p in terms if p.term.matches(node.labels, node.name))

    def normalize_scores(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        highest = max(scores, default=0)
        if highest:
            for i, s in enumerate(scores):
                scores[i] = s * MAX_NODE_SCORE // highest

    def events_to_register(self) -> list[ClusterEvent]:
        return [ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_LABEL)]
