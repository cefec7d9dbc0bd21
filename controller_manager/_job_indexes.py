"""Indexed Jobs: each pod runs one completion index, 0..completions-1.

The index travels on the pod three ways, as in Kubernetes: the annotation
and label `batch.kubernetes.io/job-completion-index`, and the environment
variable JOB_COMPLETION_INDEX every container gets from that annotation
through the downward API. The pod's hostname is `<job>-<index>`, so with a
headless Service pods can find each other by index. The Job's status keeps
the finished indexes in compressed interval form, `completedIndexes:
"0-3,5,7-9"`.
"""

from __future__ import annotations

from proto import batch_pb2, core_pb2

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
ENV_NAME = "JOB_COMPLETION_INDEX"


def parse_indexes(text: str, completions: int | None = None) -> set[int]:
    """The indexes of a `completedIndexes` string (below `completions`,
    when given; malformed parts are skipped)."""
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high) if high else int(low)
        except ValueError:
            continue
        if completions is not None:
            last = min(last, completions - 1)
        out.update(range(first, last + 1))
    return out


def format_indexes(indexes: set[int]) -> str:
    """"0-2,4": runs of consecutive indexes as intervals."""
    parts: list[str] = []
    ordered = sorted(indexes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def pod_index(pod: core_pb2.Pod) -> int | None:
    """The completion index a pod runs, from its annotation (or label)."""
    text = pod.metadata.annotations.get(COMPLETION_INDEX) or pod.metadata.labels.get(COMPLETION_INDEX)
    if text is None or not text.isdigit():
        return None
    return int(text)


def stamp_index(job: batch_pb2.Job, pod: core_pb2.Pod, index: int) -> None:
    """Give a new pod its index: annotation, label, hostname and env."""
    pod.metadata.annotations[COMPLETION_INDEX] = str(index)
    pod.metadata.labels[COMPLETION_INDEX] = str(index)
    hostname = f"{job.metadata.name}-{index}"
    if not pod.spec.hostname and len(hostname) <= 63:
        pod.spec.hostname = hostname
    for container in [*pod.spec.initContainers, *pod.spec.containers]:
        if any(e.name == ENV_NAME for e in container.env):
            continue
        env = container.env.add(name=ENV_NAME)
        env.valueFrom.fieldRef.apiVersion = "v1"
        env.valueFrom.fieldRef.fieldPath = f"metadata.annotations['{COMPLETION_INDEX}']"
