"""Pod states the workload controllers count, and the
small habits they share when making pods (Kubernetes' pod utilities).

Ownership (controller references, adoption, release) is _owner.py's, and
"what have I asked for that the cache has not shown yet" is
_expectations.py's; this module is only about reading a pod.
"""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import Message

from api import parse_time
from client import DeletedFinalStateUnknown
from proto import core_pb2

T = TypeVar("T", bound=Message)

def unwrap(obj: T | DeletedFinalStateUnknown[T]) -> T:
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


def is_pod_active(pod: core_pb2.Pod) -> bool:
    """Counts toward replicas: neither finished nor being deleted."""
    return pod.status.phase not in ("Succeeded", "Failed") and not pod.metadata.deletionTimestamp


def _ready_condition(pod: core_pb2.Pod) -> core_pb2.PodCondition | None:
    for cond in pod.status.conditions:
        if cond.type == "Ready":
            return cond
    return None


def is_pod_ready(pod: core_pb2.Pod) -> bool:
    cond = _ready_condition(pod)
    return cond is not None and cond.status == "True"


def ready_since(pod: core_pb2.Pod) -> float | None:
    """When a ready pod became ready (its Ready condition's transition)."""
    cond = _ready_condition(pod)
    if cond is None or cond.status != "True" or not cond.lastTransitionTime:
        return None
    try:
        return parse_time(cond.lastTransitionTime)
    except ValueError:
        return None


def is_pod_available(pod: core_pb2.Pod, min_ready_seconds: int, now: float) -> bool:
    """Ready for at least minReadySeconds."""
    if not is_pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = ready_since(pod)
    return since is not None and since + min_ready_seconds <= now


def creation_time(obj: Message) -> float:
    text = obj.metadata.creationTimestamp  # type: ignore[attr-defined]
    try:
        return parse_time(text) if text else 0.0
    except ValueError:
        return 0.0


def removal_order(pod: core_pb2.Pod) -> tuple[bool, int, bool, float]:
    """Sort key putting the pods best deleted first (Kubernetes'
    ActivePods order): unscheduled before scheduled, pending before
    running, not ready before ready, newer before older."""
    rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(pod.status.phase, 0)
    return bool(pod.spec.nodeName), rank, is_pod_ready(pod), -creation_time(pod)
