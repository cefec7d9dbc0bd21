"""What the scheduler knows about a pod, worked out once per pod version.

A Pod message is read many times per scheduling cycle (once per node by
several plugins), and protobuf attribute access, quantity parsing and
selector compilation are far too slow to repeat hundreds of times a cycle.
So when a pod enters the queue or the cache it is turned into a PodInfo:
its requests as integers (millicores, bytes), host ports as tuples,
tolerations, node affinity and pod (anti-)affinity terms compiled into
matchers, topology spread constraints, images and volumes. Plugins read
only PodInfo; it is never changed after construction, so the cache, the
queue and a running cycle can share it.

Requests follow Kubernetes' rules (resource.PodRequests): the sum of the
containers, or the largest init container if that is larger, where
restartable ("sidecar") init containers keep running and so add to
everything after them; plus the pod overhead. For scoring, a container
that requests no cpu or memory counts as 100m / 200Mi, as Kubernetes does,
so that empty pods still spread.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from api import Quantity, QuantityError, parse_time
from proto import core_pb2

from ._terms import (
    AffinityTerm,
    NodeSelectorTerm,
    PreferredNodeTerm,
    RequiredNodeAffinity,
    SpreadConstraint,
    Toleration,
)

DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024
HOSTNAME_LABEL = "kubernetes.io/hostname"
ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"

@functools.lru_cache(maxsize=4096)
def milli_value(text: str) -> int:
    try:
        return Quantity.parse(text).milli_value()
    except QuantityError:
        return 0


@functools.lru_cache(maxsize=4096)
def int_value(text: str) -> int:
    try:
        return Quantity.parse(text).value()
    except QuantityError:
        return 0


class Resources:
    """Amounts of cpu (millicores), memory and ephemeral storage (bytes),
    and any other resource ("scalar": hugepages, nvidia.com/gpu, ...)."""

    __slots__ = ("ephemeral_storage", "memory", "milli_cpu", "scalars")

    def __init__(self, milli_cpu: int = 0, memory: int = 0, ephemeral_storage: int = 0,
                 scalars: dict[str, int] | None = None) -> None:
        self.milli_cpu = milli_cpu
        self.memory = memory
        self.ephemeral_storage = ephemeral_storage
        self.scalars: dict[str, int] = scalars or {}

    @classmethod
    def from_map(cls, amounts: Mapping[str, Any]) -> Resources:
        """From a proto map of Quantities (requests, allocatable, overhead)."""
        r = cls()
        for name, q in amounts.items():
            if name == "cpu":
                r.milli_cpu = milli_value(q.value)
            elif name == "memory":
                r.memory = int_value(q.value)
            elif name == "ephemeral-storage":
                r.ephemeral_storage = int_value(q.value)
            elif name != "pods":
                r.scalars[name] = int_value(q.value)
        return r

    def add(self, other: Resources) -> None:
        self.milli_cpu += other.milli_cpu
        self.memory += other.memory
        self.ephemeral_storage += other.ephemeral_storage
        for name, v in other.scalars.items():
            self.scalars[name] = self.scalars.get(name, 0) + v

    def set_max(self, other: Resources) -> None:
        self.milli_cpu = max(self.milli_cpu, other.milli_cpu)
        self.memory = max(self.memory, other.memory)
        self.ephemeral_storage = max(self.ephemeral_storage, other.ephemeral_storage)
        for name, v in other.scalars.items():
            self.scalars[name] = max(self.scalars.get(name, 0), v)

    def copy(self) -> Resources:
        return Resources(self.milli_cpu, self.memory, self.ephemeral_storage, dict(self.scalars))

    def is_zero(self) -> bool:
        return not (self.milli_cpu or self.memory or self.ephemeral_storage or any(self.scalars.values()))

    def __repr__(self) -> str:
        return (f"Resources(cpu={self.milli_cpu}m, memory={self.memory}, ephemeral={self.ephemeral_storage}, "
                f"scalars={self.scalars})")


def pod_requests(spec: core_pb2.PodSpec, *, non_zero: bool = False) -> Resources:
    """The pod's effective requests (Kubernetes' resource.PodRequests);
    with `non_zero`, missing cpu/memory requests count as the defaults."""

    def container(c: core_pb2.Container) -> Resources:
        r = Resources.from_map(c.resources.requests)
        if non_zero:
            if "cpu" not in c.resources.requests:
                r.milli_cpu = DEFAULT_MILLI_CPU
            if "memory" not in c.resources.requests:
                r.memory = DEFAULT_MEMORY
        return r

    total = Resources()
    for c in spec.containers:
        total.add(container(c))
    sidecars = Resources()
    init_max = Resources()
    for c in spec.initContainers:
        r = container(c)
        if c.HasField("restartPolicy") and c.restartPolicy == "Always":
            total.add(r)
            sidecars.add(r)
            r = sidecars.copy()
        else:
            r.add(sidecars)
        init_max.set_max(r)
    total.set_max(init_max)
    if spec.overhead:
        total.add(Resources.from_map(spec.overhead))
    return total


# ---------------------------------------------------------------- images and volumes

def normalized_image(name: str) -> str:
    """One spelling per image, so `nginx`, `nginx:latest` and
    `docker.io/library/nginx:latest` are the same image."""
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    last = name.rsplit("/", 1)[-1]
    if "@" not in name and ":" not in last:
        name += ":latest"
    return name


class DiskVolume(NamedTuple):
    """A volume that a node can mount for only one writer (NoDiskConflict)."""

    kind: str  # gcePersistentDisk, awsElasticBlockStore, iscsi
    id: str
    read_only: bool


def _disk_volumes(spec: core_pb2.PodSpec) -> tuple[DiskVolume, ...]:
    out = []
    for v in spec.volumes:
        if v.HasField("gcePersistentDisk"):
            out.append(DiskVolume("gcePersistentDisk", v.gcePersistentDisk.pdName, v.gcePersistentDisk.readOnly))
        elif v.HasField("awsElasticBlockStore"):
            out.append(DiskVolume("awsElasticBlockStore", v.awsElasticBlockStore.volumeID, False))
        elif v.HasField("iscsi"):
            out.append(DiskVolume("iscsi", v.iscsi.iqn, v.iscsi.readOnly))
    return tuple(out)


# ---------------------------------------------------------------- PodInfo

@dataclass(eq=False, slots=True)
class PodInfo:
    """A pod, with everything the plugins ask about it worked out."""

    pod: core_pb2.Pod
    uid: str
    namespace: str
    name: str
    labels: dict[str, str]
    priority: int
    requests: Resources
    non_zero_cpu: int
    non_zero_memory: int
    host_ports: tuple[tuple[str, str, int], ...]
    tolerations: tuple[Toleration, ...]
    node_affinity: RequiredNodeAffinity | None
    preferred_node_terms: tuple[PreferredNodeTerm, ...]
    required_affinity: tuple[AffinityTerm, ...]
    required_anti_affinity: tuple[AffinityTerm, ...]
    preferred_affinity: tuple[AffinityTerm, ...]
    preferred_anti_affinity: tuple[AffinityTerm, ...]
    spread_constraints: tuple[SpreadConstraint, ...]
    images: tuple[str, ...]
    disk_volumes: tuple[DiskVolume, ...]
    claims: tuple[str, ...]
    node_name: str
    terminating: bool
    start_time: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def has_affinity(self) -> bool:
        return bool(self.required_affinity or self.required_anti_affinity or self.preferred_affinity
                    or self.preferred_anti_affinity)

    @property
    def scheduler_name(self) -> str:
        return self.pod.spec.schedulerName or "default-scheduler"

    @property
    def preempt_never(self) -> bool:
        spec = self.pod.spec
        return spec.HasField("preemptionPolicy") and spec.preemptionPolicy == "Never"

    def with_pod(self, pod: core_pb2.Pod) -> PodInfo:
        """The same derived data for a newer version of the pod whose spec
        and labels did not change (a binding only sets nodeName and a
        condition), without recomputing any of it."""
        return PodInfo(pod, self.uid, self.namespace, self.name, self.labels, self.priority, self.requests,
                       self.non_zero_cpu, self.non_zero_memory, self.host_ports, self.tolerations,
                       self.node_affinity, self.preferred_node_terms, self.required_affinity,
                       self.required_anti_affinity, self.preferred_affinity, self.preferred_anti_affinity,
                       self.spread_constraints, self.images, self.disk_volumes, self.claims, pod.spec.nodeName,
                       bool(pod.metadata.deletionTimestamp), self.start_time, self.extra)


def new_pod_info(pod: core_pb2.Pod) -> PodInfo:
    meta, spec = pod.metadata, pod.spec
    labels = dict(meta.labels)
    requests = pod_requests(spec)
    non_zero = pod_requests(spec, non_zero=True)
    ports = tuple((p.hostIP or "0.0.0.0", p.protocol or "TCP", p.hostPort)
                  for c in spec.containers for p in c.ports if p.hostPort > 0)
    ports += tuple((p.hostIP or "0.0.0.0", p.protocol or "TCP", p.hostPort)
                   for c in spec.initContainers if c.HasField("restartPolicy") and c.restartPolicy == "Always"
                   for p in c.ports if p.hostPort > 0)
    tolerations = tuple(Toleration(t.key, t.operator or "Equal", t.value, t.effect) for t in spec.tolerations)

    node_affinity: RequiredNodeAffinity | None = None
    preferred_node: tuple[PreferredNodeTerm, ...] = ()
    req_aff: tuple[AffinityTerm, ...] = ()
    req_anti: tuple[AffinityTerm, ...] = ()
    pref_aff: tuple[AffinityTerm, ...] = ()
    pref_anti: tuple[AffinityTerm, ...] = ()
    terms: tuple[NodeSelectorTerm, ...] | None = None
    if spec.HasField("affinity"):
        aff = spec.affinity
        if aff.HasField("nodeAffinity"):
            na = aff.nodeAffinity
            if na.HasField("requiredDuringSchedulingIgnoredDuringExecution"):
                terms = tuple(NodeSelectorTerm.parse(t)
                              for t in na.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms)
            preferred_node = tuple(PreferredNodeTerm(p.weight, NodeSelectorTerm.parse(p.preference))
                                   for p in na.preferredDuringSchedulingIgnoredDuringExecution if p.weight)
        ns = meta.namespace
        if aff.HasField("podAffinity"):
            pa = aff.podAffinity
            req_aff = tuple(AffinityTerm.parse(t, ns, labels)
                            for t in pa.requiredDuringSchedulingIgnoredDuringExecution)
            pref_aff = tuple(AffinityTerm.parse(w.podAffinityTerm, ns, labels, w.weight)
                             for w in pa.preferredDuringSchedulingIgnoredDuringExecution)
        if aff.HasField("podAntiAffinity"):
            anti = aff.podAntiAffinity
            req_anti = tuple(AffinityTerm.parse(t, ns, labels)
                             for t in anti.requiredDuringSchedulingIgnoredDuringExecution)
            pref_anti = tuple(AffinityTerm.parse(w.podAffinityTerm, ns, labels, w.weight)
                              for w in anti.preferredDuringSchedulingIgnoredDuringExecution)
    if spec.nodeSelector or terms is not None:
        node_affinity = RequiredNodeAffinity(tuple(sorted(spec.nodeSelector.items())), terms)

    spread = tuple(SpreadConstraint.parse(c, labels) for c in spec.topologySpreadConstraints)
    images = tuple(normalized_image(c.image) for c in (*spec.initContainers, *spec.containers) if c.image)
    claims = tuple(v.persistentVolumeClaim.claimName for v in spec.volumes if v.HasField("persistentVolumeClaim"))
    start = pod.status.startTime or meta.creationTimestamp
    try:
        start_time = parse_time(start) if start else 0.0
    except ValueError:
        start_time = 0.0
    return PodInfo(pod, meta.uid, meta.namespace, meta.name, labels,
                   spec.priority if spec.HasField("priority") else 0, requests, non_zero.milli_cpu, non_zero.memory,
                   ports, tolerations, node_affinity, preferred_node, req_aff, req_anti, pref_aff, pref_anti, spread,
                   images, _disk_volumes(spec), claims, spec.nodeName, bool(meta.deletionTimestamp), start_time)


@dataclass(eq=False, slots=True)
class QueuedPodInfo:
    """A pod waiting in the scheduling queue, with its scheduling history."""

    info: PodInfo
    timestamp: float  # when it last entered the queue (orders pods of equal priority)
    initial_attempt: float | None = None  # when it was first popped
    attempts: int = 0
    unschedulable_plugins: set[str] = field(default_factory=set)
    gated_by: str = ""  # the PreEnqueue plugin holding it back, if any
    backoff_expiry: float = 0.0
    seq: int = 0  # arrival order, for a stable heap

    @property
    def uid(self) -> str:
        return self.info.uid
