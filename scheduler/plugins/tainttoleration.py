"""TaintToleration: a node's NoSchedule and NoExecute taints keep off every
pod that does not tolerate them (Filter); PreferNoSchedule taints only
count against the node (Score: the fewer untolerated PreferNoSchedule
taints, the better, reversed so the cleanest node gets 100).

A toleration matches a taint when the effects agree (an empty effect
matches all) and either the operator is Exists (an empty key with Exists
tolerates everything) or the values are Equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
    PodInfo,
    PreFilterPlugin,
    PreFilterResult,
    PreScorePlugin,
    ScorePlugin,
    Status,
    Taint,
    Toleration,
    unresolvable,
)

_HARD_EFFECTS = ("NoSchedule", "NoExecute")


def untolerated_taint(taints: tuple[Taint, ...], tolerations: tuple[Toleration, ...]) -> Taint | None:
    """The first NoSchedule/NoExecute taint no toleration matches."""
    for taint in taints:
        if taint.effect in _HARD_EFFECTS and not any(t.tolerates(taint) for t in tolerations):
            return taint
    return None


class TaintToleration(PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin, EnqueueExtensions):
    NAME = "TaintToleration"

    def __init__(self, args: Mapping[str, Any], handle: Handle) -> None:
        super().__init__(args, handle)
        self._statuses: dict[Taint, Status] = {}

    def pre_filter(self, state: CycleState, pod: PodInfo) -> PreFilterResult | Status | None:
        # no node has a NoSchedule/NoExecute taint: nothing to check per node
        return None if self.handle.snapshot.node_counts().hard_taints else SKIP

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if not node.taints:
            return None
        taint = untolerated_taint(node.taints, pod.tolerations)
        if taint is None:
            return None
        status = self._statuses.get(taint)
        if status is None:
            status = self._statuses[taint] = unresolvable(f"node(s) had untolerated taint {taint}")
        return status

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        # with no PreferNoSchedule taint anywhere every node would score the same
        if not self.handle.snapshot.node_counts().prefer_no_schedule_taints:
            return SKIP
        state.write(self.NAME, tuple(t for t in pod.tolerations if t.effect in ("", "PreferNoSchedule")))
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        tolerations: tuple[Toleration, ...] = state.read(self.NAME)
        return sum(1 for taint in node.taints if taint.effect == "PreferNoSchedule"
                   and not any(t.tolerates(taint) for t in tolerations))

    def normalize_scores(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        highest = max(scores, default=0)
        for i, s in enumerate(scores):
            scores[i] = MAX_NODE_SCORE - (s * MAX_NODE_SCORE // highest if highest else 0)

    def events_to_register(self) -> list[ClusterEvent]:
        return [ClusterEvent(NODE, ActionType.ADD | ActionType.UPDATE_NODE_TAINT)]
