"""ImageLocality: prefer nodes that already hold the pod's images (from
the node's `status.images`), so it starts without a pull. Each image
present counts its size, scaled by the share of nodes holding it (an image
on every node gives no node an edge); the sum is mapped between 23 MB
(score 0) and 1000 MB per container (score 100), as in Kubernetes."""

from __future__ import annotations

from scheduler.framework import (
    MAX_NODE_SCORE,
    SKIP,
    CycleState,
    NodeInfo,
    PodInfo,
    PreScorePlugin,
    ScorePlugin,
    Status,
)

MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
MAX_CONTAINER_THRESHOLD = 1000 * MB


class ImageLocality(PreScorePlugin, ScorePlugin):
    NAME = "ImageLocality"

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        snapshot = self.handle.snapshot
        total = len(snapshot)
        spread = {image: snapshot.image_num_nodes(image) / total for image in pod.images if total}
        if not any(spread.values()):
            return SKIP  # no node has any of them: every node would score 0
        state.write(self.NAME, spread)
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        spread: dict[str, float] = state.read(self.NAME)
        images = node.images
        total = sum(int(images[image] * share) for image, share in spread.items() if image in images)
        high = MAX_CONTAINER_THRESHOLD * max(1, len(pod.images))
        total = min(max(total, MIN_THRESHOLD), high)
        return MAX_NODE_SCORE * (total - MIN_THRESHOLD) // (high - MIN_THRESHOLD)
