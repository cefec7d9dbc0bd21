"""How many replicas a resource metric asks for: the HorizontalPodAutoscaler's
arithmetic (Kubernetes' replica_calculator), kept apart from the controller
so that it can be read, and tested, as plain functions.

The core rule: desired = ceil(current usage / target * ready pods), unless
the ratio is within the tolerance (10 % by default) of 1, in which case
nothing changes. The care is in the pods that cannot be measured fairly:

* pods being deleted and failed pods are ignored altogether;
* for cpu, a pod that is not ready yet (pending, or started within the
  initialisation period and not ready) is "unready": a fresh pod burns cpu
  starting up, so its figure would push the HPA to overreact;
* a pod without a figure is "missing".

When the first estimate scales up, unready and missing pods count as using
nothing; when it scales down, missing pods count as using exactly their
target. If that conservative re-estimate changes direction, or lands within
the tolerance, the replica count stays as it is. Every function here is
pure: pods, figures and the time come in, a `Recommendation` goes out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from api import parse_quantity, parse_time
from proto import core_pb2

from ._metrics_source import PodMetric


class MetricError(Exception):
    """The metric cannot produce a recommendation (the message says why)."""


@dataclass(frozen=True)
class Recommendation:
    replicas: int
    #: average utilisation in percent of the requests (Utilization targets), else None
    utilization: int | None
    #: average usage per pod in milli-units
    average: int


@dataclass(frozen=True)
class Timing:
    tolerance: float = 0.1
    cpu_initialization_period: float = 300.0
    initial_readiness_delay: float = 30.0


def _ready_condition(pod: core_pb2.Pod) -> core_pb2.PodCondition | None:
    for c in pod.status.conditions:
        if c.type == "Ready":
            return c
    return None


def _time(text: str) -> float | None:
    try:
        return parse_time(text) if text else None
    except ValueError:
        return None


def _is_unready(pod: core_pb2.Pod, resource: str, metric: PodMetric, now: float, timing: Timing) -> bool:
    if pod.status.phase == "Pending":
        return True
    if resource != "cpu":
        return False
    cond = _ready_condition(pod)
    start = _time(pod.status.startTime)
    if cond is None or start is None:
        return True
    transition = _time(cond.lastTransitionTime) or start
    if start + timing.cpu_initialization_period > now:
        # Young pod: unready unless ready and measured after it became so.
        return cond.status != "True" or metric.timestamp < transition + metric.window
    # Older pod: unready only if it never became ready since it started.
    return cond.status != "True" and transition < start + timing.initial_readiness_delay


def pod_requests(pods: list[core_pb2.Pod], resource: str) -> dict[str, int]:
    """Each pod's request of `resource` in milli-units; MetricError if any
    container lacks one (a utilisation of no request means nothing)."""
    out: dict[str, int] = {}
    for pod in pods:
        total = 0
        for c in pod.spec.containers:
            q = c.resources.requests.get(resource)
            if q is None or not q.value:
                raise MetricError(f"missing request for {resource} in container {c.name} of Pod {pod.metadata.name}")
            total += parse_quantity(q.value).milli_value()
        out[pod.metadata.name] = total
    return out


@dataclass
class _Groups:
    ready: int
    metrics: dict[str, int]
    unready: set[str]
    missing: set[str]


def _group(pods: list[core_pb2.Pod], usage: dict[str, PodMetric], resource: str, now: float,
           timing: Timing) -> _Groups:
    metrics: dict[str, int] = {}
    unready: set[str] = set()
    missing: set[str] = set()
    ready = 0
    for pod in pods:
        name = pod.metadata.name
        if pod.metadata.deletionTimestamp or pod.status.phase == "Failed":
            continue
        if pod.status.phase == "Pending":
            unready.add(name)
            continue
        metric = usage.get(name)
        if metric is None:
            missing.add(name)
            continue
        if _is_unready(pod, resource, metric, now, timing):
            unready.add(name)
            continue
        ready += 1
        metrics[name] = metric.value
    return _Groups(ready, metrics, unready, missing)


def _within(ratio: float, timing: Timing) -> bool:
    return abs(1.0 - ratio) <= timing.tolerance


def _utilization(metrics: dict[str, int], requests: dict[str, int]) -> tuple[int, int]:
    """(utilisation in percent, average usage) over the measured pods."""
    used = sum(metrics.values())
    requested = sum(requests[name] for name in metrics if name in requests)
    if requested == 0:
        raise MetricError("no metrics returned matched known pods")
    return used * 100 // requested, used // len(metrics)


def _settle(current: int, ratio: float, new_ratio: float, measured: int, timing: Timing) -> int:
    """The conservative re-estimate: no change when it flips direction or
    lands within the tolerance, and never a move against the ratio."""
    if _within(new_ratio, timing) or (ratio > 1.0 > new_ratio) or (ratio < 1.0 < new_ratio):
        return current
    replicas = math.ceil(new_ratio * measured)
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current
    return replicas


def utilization_replicas(current: int, target_percent: int, pods: list[core_pb2.Pod], usage: dict[str, PodMetric],
                         resource: str, now: float, timing: Timing) -> Recommendation:
    """Replicas for a Resource metric with a Utilization target."""
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    groups = _group(pods, usage, resource, now, timing)
    requests = pod_requests(pods, resource)
    if not groups.metrics:
        raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
    utilization, average = _utilization(groups.metrics, requests)
    ratio = utilization / target_percent
    scale_up_with_unready = bool(groups.unready) and ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if _within(ratio, timing):
            return Recommendation(current, utilization, average)
        return Recommendation(math.ceil(ratio * groups.ready), utilization, average)
    metrics = dict(groups.metrics)
    if ratio < 1.0:
        for name in groups.missing:
            # 100 % of the request, or the target when that is higher
            metrics[name] = requests[name] * max(target_percent, 100) // 100
    elif ratio > 1.0:
        for name in groups.missing:
            metrics[name] = 0
    if scale_up_with_unready:
        for name in groups.unready:
            metrics[name] = 0
    new_utilization, _ = _utilization(metrics, requests)
    replicas = _settle(current, ratio, new_utilization / target_percent, len(metrics), timing)
    return Recommendation(replicas, utilization, average)


def average_value_replicas(current: int, target_milli: int, pods: list[core_pb2.Pod], usage: dict[str, PodMetric],
                           resource: str, now: float, timing: Timing) -> Recommendation:
    """Replicas for a Resource metric with an AverageValue target."""
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    groups = _group(pods, usage, resource, now, timing)
    if not groups.metrics:
        raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
    average = sum(groups.metrics.values()) // len(groups.metrics)
    ratio = sum(groups.metrics.values()) / (target_milli * len(groups.metrics))
    scale_up_with_unready = bool(groups.unready) and ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if _within(ratio, timing):
            return Recommendation(current, None, average)
        return Recommendation(math.ceil(ratio * groups.ready), None, average)
    metrics = dict(groups.metrics)
    for name in groups.missing:
        metrics[name] = target_milli if ratio < 1.0 else 0
    if scale_up_with_unready:
        for name in groups.unready:
            metrics[name] = 0
    new_ratio = sum(metrics.values()) / (target_milli * len(metrics))
    return Recommendation(_settle(current, ratio, new_ratio, len(metrics), timing), None, average)
