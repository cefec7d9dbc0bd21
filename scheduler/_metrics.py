"""The scheduler's Prometheus metrics, named as kube-scheduler names them.

* scheduler_schedule_attempts_total{result, profile} - attempts by outcome
  (scheduled, unschedulable, error);
* scheduler_scheduling_attempt_duration_seconds{result, profile} - from
  popping the pod to the outcome (for a scheduled pod: its binding);
* scheduler_pending_pods{queue} - pods waiting in activeQ, backoffQ,
  unschedulable and gated, read from the queue at scrape time (nothing to
  update on the hot path);
* scheduler_cache_size{type} - nodes, pods and assumed pods in the cache;
* scheduler_preemption_attempts_total and scheduler_preemption_victims.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

SCHEDULED = "scheduled"
UNSCHEDULABLE = "unschedulable"
ERROR = "error"

_BUCKETS = tuple(0.001 * 2 ** i for i in range(15))

SCHEDULE_ATTEMPTS = Counter("scheduler_schedule_attempts", "Number of attempts to schedule pods, by the result.",
                            ["result", "profile"])
ATTEMPT_DURATION = Histogram("scheduler_scheduling_attempt_duration_seconds",
                             "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
                             ["result", "profile"], buckets=_BUCKETS)
PREEMPTION_ATTEMPTS = Counter("scheduler_preemption_attempts", "Total preemption attempts in the cluster till now")
PREEMPTION_VICTIMS = Histogram("scheduler_preemption_victims", "Number of selected preemption victims",
                               buckets=(1, 2, 4, 8, 16, 32, 64))


def observe_attempt(result: str, profile: str, seconds: float) -> None:
    SCHEDULE_ATTEMPTS.labels(result, profile).inc()
    ATTEMPT_DURATION.labels(result, profile).observe(seconds)


class StateCollector(Collector):
    """The gauges read from the scheduler at scrape time: pending pods by
    queue and the cache's size, from callables returning {label: count}."""

    def __init__(self, pending: Callable[[], dict[str, int]], cache_size: Callable[[], dict[str, int]]) -> None:
        self._pending = pending
        self._cache_size = cache_size

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pending = GaugeMetricFamily("scheduler_pending_pods", "Number of pending pods, by the queue type.",
                                    labels=["queue"])
        for queue, count in sorted(self._pending().items()):
            pending.add_metric([queue], count)
        yield pending
        size = GaugeMetricFamily("scheduler_cache_size", "Number of nodes, pods, and assumed (bound) pods in "
                                 "the scheduler cache.", labels=["type"])
        for kind, count in sorted(self._cache_size().items()):
            size.add_metric([kind], count)
        yield size


def register_state(pending: Callable[[], dict[str, int]], cache_size: Callable[[], dict[str, int]]) -> StateCollector:
    collector = StateCollector(pending, cache_size)
    REGISTRY.register(collector)
    return collector
