"""PrioritySort: the queue's order - higher priority first, then the pod
that has waited longest (Kubernetes' queuesort plugin)."""

from __future__ import annotations

from typing import Any

from scheduler.framework import QueuedPodInfo, QueueSortPlugin


class PrioritySort(QueueSortPlugin):
    NAME = "PrioritySort"

    def sort_key(self, qpi: QueuedPodInfo) -> tuple[Any, ...]:
        return (-qpi.info.priority, qpi.timestamp, qpi.seq)
