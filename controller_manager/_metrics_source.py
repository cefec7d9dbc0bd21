"""Where the HorizontalPodAutoscaler reads how much CPU and memory pods use.

In Kubernetes the HPA asks the resource metrics API (metrics.k8s.io,
served by metrics-server, which scrapes every kubelet's resource usage).
The controller here depends only on `MetricsSource`: given a namespace, a
label selector and a resource name, the current usage of each matching pod
in milli-units (millicores for cpu; for memory, bytes x 1000, as
Kubernetes' `MilliValue` does), with the time the sample was taken.

Three sources exist:

* `KubeletMetricsSource`: what metrics-server would report, read directly
  from the kubelets' Summary API through the apiserver's node proxy: the
  pods come from the controller's pod cache, each node holding one of them
  is asked once (concurrently) for its pods in the namespace, and a pod's
  usage is the sum over its containers (CPU as a rate in millicores, memory
  as the working set). A node that cannot answer leaves its pods out; when
  no node answers the call fails with MetricsUnavailable naming why.
* `InMemoryMetricsSource`: figures a test sets with `set(...)`, handed to
  the controller directly in unit tests.
* `FileMetricsSource`: figures read from a YAML or JSON file each time they
  are asked for, chosen with the controller-manager flag
  `--horizontal-pod-autoscaler-metrics-file` instead of the kubelets'
  figures: integration tests and people trying an HPA by hand write the
  usage they want the autoscaler to see:

      my-namespace:
        web-0: {cpu: 250m, memory: 64Mi}
        web-1: {cpu: 900m}

A source that cannot answer raises `MetricsUnavailable`, which the
controller turns into `ScalingActive=False` with the reason and an event,
rather than guessing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from api import Clock, QuantityError, RealClock, Selector, StatusError, parse_quantity, parse_time

if TYPE_CHECKING:
    from client import NodeProxyClient
    from proto import core_pb2, kubelet_pb2

log = logging.getLogger(__name__)


class MetricsUnavailable(Exception):
    """The source cannot tell this pod set's usage (the message says why)."""


@dataclass(frozen=True)
class PodMetric:
    """One pod's usage of one resource: `value` in milli-units, sampled at
    `timestamp` (epoch seconds) over `window` seconds."""

    value: int
    timestamp: float
    window: float = 30.0


class MetricsSource(Protocol):
    async def pod_usage(self, namespace: str, selector: Selector, resource: str) -> dict[str, PodMetric]:
        """Usage of `resource` ("cpu", "memory") by the pods in `namespace`
        that `selector` matches, keyed by pod name. Pods the source has no
        figure for are absent; a source that cannot evaluate the selector
        (it knows names, not labels) may return other pods of the
        namespace too: the controller counts only the pods it selected
        from its own cache, as Kubernetes' HPA does."""
        ...



def _milli(text: Any, where: str) -> int:
    try:
        return parse_quantity(text).milli_value()
    except (QuantityError, ValueError) as err:
        raise MetricsUnavailable(f"{where}: {err}") from None


class InMemoryMetricsSource:
    """Usage figures held in memory, set by a test (by pod name: the
    selector is left to the controller)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or RealClock()
        self._usage: dict[tuple[str, str], dict[str, PodMetric]] = {}
        self.fail: str = ""  # when set, every call raises MetricsUnavailable with this message

    def set(self, namespace: str, pod: str, **usage: str) -> None:
        """`set("ns", "web-0", cpu="250m", memory="64Mi")`: the pod's usage
        from now on, sampled at the clock's current time."""
        now = self._clock.now()
        figures = self._usage.setdefault((namespace, pod), {})
        for resource, amount in usage.items():
            figures[resource] = PodMetric(_milli(amount, f"{namespace}/{pod} {resource}"), now)

    def remove(self, namespace: str, pod: str) -> None:
        self._usage.pop((namespace, pod), None)

    async def pod_usage(self, namespace: str, selector: Selector, resource: str) -> dict[str, PodMetric]:
        if self.fail:
            raise MetricsUnavailable(self.fail)
        out: dict[str, PodMetric] = {}
        for (ns, pod), figures in self._usage.items():
            if ns == namespace and resource in figures:
                out[pod] = figures[resource]
        return out


class FileMetricsSource:
    """Usage figures read from a file (`namespace -> pod -> resource ->
    quantity`), re-read whenever it changes; the sample time is the file's
    modification time, so a test that rewrites the file produces a new
    sample. Figures are by pod name: the selector is left to the
    controller."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._cache: tuple[float, dict[str, Any]] | None = None

    def _load(self) -> tuple[float, dict[str, Any]]:
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError as err:
            raise MetricsUnavailable(f"reading pod metrics from {self.path}: {err.strerror}") from None
        if self._cache is not None and self._cache[0] == mtime:
            return self._cache
        try:
            with open(self.path, encoding="utf-8") as f:
                text = f.read()
            data = json.loads(text) if self.path.endswith(".json") else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as err:
            raise MetricsUnavailable(f"reading pod metrics from {self.path}: {err}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise MetricsUnavailable(f"{self.path}: expected a mapping of namespace -> pod -> resource -> quantity")
        self._cache = (mtime, data)
        return self._cache

    async def pod_usage(self, namespace: str, selector: Selector, resource: str) -> dict[str, PodMetric]:
        mtime, data = self._load()
        out: dict[str, PodMetric] = {}
        for pod, figures in (data.get(namespace) or {}).items():
            if not isinstance(figures, dict) or resource not in figures:
                continue
            out[pod] = PodMetric(_milli(figures[resource], f"{self.path}: {namespace}/{pod} {resource}"), mtime)
        return out


class PodLister(Protocol):
    def list(self, namespace: str | None = None, selector: Selector | None = None) -> Sequence[core_pb2.Pod]: ...


class KubeletMetricsSource:
    """Pod usage from the kubelets' summaries (through the apiserver's node
    proxy), for the pods `pods` (the controller's pod lister) selects."""

    def __init__(self, nodes: NodeProxyClient, pods: PodLister, clock: Clock | None = None,
                 timeout: float = 10.0) -> None:
        self._nodes = nodes
        self._pods = pods
        self._clock = clock or RealClock()
        self._timeout = timeout

    async def _summary(self, node: str, namespace: str) -> kubelet_pb2.Summary | StatusError:
        try:
            return await self._nodes.summary(node, namespace, timeout=self._timeout)
        except StatusError as err:
            return err

    async def pod_usage(self, namespace: str, selector: Selector, resource: str) -> dict[str, PodMetric]:
        if resource not in ("cpu", "memory"):
            raise MetricsUnavailable(f'the kubelets report cpu and memory only, not "{resource}"')
        pods = {p.metadata.uid: p for p in self._pods.list(namespace, selector) if p.spec.nodeName}
        nodes = sorted({p.spec.nodeName for p in pods.values()})
        if not nodes:
            return {}
        answers = await asyncio.gather(*(self._summary(n, namespace) for n in nodes))
        out: dict[str, PodMetric] = {}
        failures: list[str] = []
        for node, answer in zip(nodes, answers, strict=True):
            if isinstance(answer, StatusError):
                log.debug("pod metrics from node %s: %s", node, answer)
                failures.append(f"node {node}: {answer}")
                continue
            for stats in answer.pods:
                if stats.pod_ref.uid in pods and stats.containers:
                    out[stats.pod_ref.name] = self._metric(stats, resource)
        if failures and len(failures) == len(nodes):
            raise MetricsUnavailable(f"no kubelet reported pod metrics: {'; '.join(failures)}")
        return out

    def _metric(self, stats: kubelet_pb2.PodStats, resource: str) -> PodMetric:
        if resource == "cpu":
            nano = sum(c.cpu.usage_nano_cores for c in stats.containers)
            value = -(-nano // 1_000_000)  # millicores, rounded up as a Quantity's MilliValue
            sampled = stats.containers[0].cpu.time
        else:
            value = sum(c.memory.working_set_bytes for c in stats.containers) * 1000
            sampled = stats.containers[0].memory.time
        try:
            timestamp = parse_time(sampled) if sampled else self._clock.now()
        except ValueError:
            timestamp = self._clock.now()
        return PodMetric(value, timestamp)
