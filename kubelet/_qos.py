"""Requests and limits, read the way the kubelet reads them: the pod's QoS
class, the cgroup settings of each container, and the OOM score that
makes the kernel kill BestEffort work before Guaranteed work.

* QoS (Kubernetes' GetPodQOS): Guaranteed when every container limits cpu
  and memory and requests equal limits; BestEffort when nothing requests
  or limits cpu or memory; Burstable otherwise.
* cgroups (the CRI's LinuxContainerResources): cpu shares from the cpu
  request (1024 per core, at least 2), a CFS quota from the cpu limit over
  a 100 ms period, the memory limit in bytes.
* OOM score adjustment: -997 for Guaranteed, 1000 for BestEffort, and for
  Burstable between 2 and 999, lower the larger the memory request is
  relative to the node's memory.

Quantities that do not parse count as unset here; the apiserver has
already refused them, and a kubelet must not crash on a bad object.
"""

from __future__ import annotations

from api import Quantity, QuantityError
from proto import core_pb2, cri_pb2

GUARANTEED, BURSTABLE, BEST_EFFORT = "Guaranteed", "Burstable", "BestEffort"
QOS_RANK = {BEST_EFFORT: 0, BURSTABLE: 1, GUARANTEED: 2}

CPU_PERIOD = 100_000
MIN_SHARES = 2
MIN_QUOTA = 1_000


def quantity(values: object, name: str) -> Quantity | None:
    q = values.get(name) if hasattr(values, "get") else None  # a protobuf map of Quantity messages
    if q is None or not q.value:
        return None
    try:
        return Quantity.parse(q.value)
    except QuantityError:
        return None


def _containers(spec: core_pb2.PodSpec) -> list[core_pb2.Container]:
    return list(spec.initContainers) + list(spec.containers)


def qos_class(pod: core_pb2.Pod) -> str:
    requests: set[str] = set()
    limits: set[str] = set()
    guaranteed = True
    for c in _containers(pod.spec):
        res = c.resources
        for name in ("cpu", "memory"):
            request, limit = quantity(res.requests, name), quantity(res.limits, name)
            if request is not None and request.amount:
                requests.add(name)
            if limit is not None and limit.amount:
                limits.add(name)
            if limit is None or not limit.amount:
                guaranteed = False
            elif request is not None and request != limit:
                guaranteed = False
    if not requests and not limits:
        return BEST_EFFORT
    if guaranteed and limits >= {"cpu", "memory"}:
        return GUARANTEED
    return BURSTABLE


def container_resources(pod: core_pb2.Pod, container: core_pb2.Container,
                        node_memory: int) -> cri_pb2.LinuxContainerResources:
    res = container.resources
    cpu_request = quantity(res.requests, "cpu") or quantity(res.limits, "cpu")
    cpu_limit = quantity(res.limits, "cpu")
    memory_limit = quantity(res.limits, "memory")
    out = cri_pb2.LinuxContainerResources(cpu_period=CPU_PERIOD)
    out.cpu_shares = max(MIN_SHARES, cpu_request.milli_value() * 1024 // 1000) if cpu_request else MIN_SHARES
    if cpu_limit is not None and cpu_limit.amount:
        out.cpu_quota = max(MIN_QUOTA, cpu_limit.milli_value() * CPU_PERIOD // 1000)
    if memory_limit is not None and memory_limit.amount:
        out.memory_limit_in_bytes = memory_limit.value()
    out.oom_score_adj = oom_score_adj(pod, container, node_memory)
    return out


def oom_score_adj(pod: core_pb2.Pod, container: core_pb2.Container, node_memory: int) -> int:
    qos = qos_class(pod)
    if qos == GUARANTEED:
        return -997
    if qos == BEST_EFFORT:
        return 1000
    request = quantity(container.resources.requests, "memory")
    if request is None or node_memory <= 0:
        return 999
    score = 1000 - (1000 * request.value()) // node_memory
    return int(min(999, max(2, score)))


def pod_requests(pod: core_pb2.Pod, name: str) -> int:
    """The pod's request of `name` in milli-units for cpu, units otherwise:
    the sum over app containers, or the largest init container's if more."""
    def value(c: core_pb2.Container) -> int:
        q = quantity(c.resources.requests, name)
        if q is None:
            return 0
        return q.milli_value() if name == "cpu" else q.value()
    apps = sum(value(c) for c in pod.spec.containers)
    inits = max((value(c) for c in pod.spec.initContainers), default=0)
    return max(apps, inits)

