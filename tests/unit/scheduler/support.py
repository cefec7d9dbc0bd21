"""Building nodes, pods and a scheduler in memory for the unit tests.

`node()` and `pod()` make Node and Pod messages from a few keywords (via
the same manifest codec the apiserver uses); `example()` reads one of the
shared Kubernetes manifests. `Cluster` is the real cache, snapshot,
queue and one profile's Framework with no apiserver behind them: tests
add nodes and pods, then run a plugin's extension points or a whole
scheduling cycle, exactly as the scheduler would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from api import SCHEME, decode_manifest, from_dict, load_documents
from client import Indexer, Lister
from proto import core_pb2, policy_pb2
from scheduler._cache import Cache, Snapshot
from scheduler._config import resolve_profile
from scheduler._queue import Nominator, SchedulingQueue
from scheduler._scheduler import Scheduler
from scheduler.framework import CycleState, Framework, NodeInfo, PodInfo, Profile, Status, new_pod_info
from scheduler.plugins import REGISTRY

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "k8s-examples"
_uids = iter(range(1, 10**9))


def node(name: str, *, cpu: str = "4", memory: str = "8Gi", pods: int = 110, labels: Mapping[str, str] | None = None,
         taints: Sequence[Mapping[str, str]] = (), unschedulable: bool = False,
         images: Sequence[tuple[Sequence[str], int]] = (), extra: Mapping[str, str] | None = None) -> core_pb2.Node:
    allocatable = {"cpu": cpu, "memory": memory, "pods": str(pods), **(extra or {})}
    return from_dict(core_pb2.Node, {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": [dict(t) for t in taints], "unschedulable": unschedulable},
        "status": {"allocatable": allocatable, "capacity": allocatable,
                   "images": [{"names": list(names), "sizeBytes": size} for names, size in images]},
    })


def pod(name: str, *, namespace: str = "default", cpu: str | None = None, memory: str | None = None,
        labels: Mapping[str, str] | None = None, priority: int | None = None, node_name: str = "",
        containers: Sequence[Mapping[str, Any]] | None = None, uid: str = "", **spec: Any) -> core_pb2.Pod:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    if containers is None:
        containers = [{"name": "c", "image": "busybox", "resources": {"requests": requests}}]
    body: dict[str, Any] = {"containers": list(containers), "schedulerName": "default-scheduler", **spec}
    if priority is not None:
        body["priority"] = priority
    if node_name:
        body["nodeName"] = node_name
    return from_dict(core_pb2.Pod, {
        "metadata": {"name": name, "namespace": namespace, "uid": uid or f"uid-{next(_uids)}",
                     "labels": dict(labels or {}), "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": body,
    })


def example(path: str, **overrides: Any) -> core_pb2.Pod:
    """A shared Kubernetes example manifest, as the apiserver would store it."""
    doc = load_documents((EXAMPLES / path).read_text())[0]
    obj = decode_manifest(doc)
    assert isinstance(obj, core_pb2.Pod)
    obj.metadata.namespace = obj.metadata.namespace or "default"
    obj.metadata.uid = obj.metadata.uid or f"uid-{next(_uids)}"
    obj.spec.schedulerName = obj.spec.schedulerName or "default-scheduler"
    for key, value in overrides.items():
        setattr(obj.spec, key, value)
    return obj


class Cluster:
    """An in-memory cluster: cache + snapshot + queue + one Framework."""

    def __init__(self, plugins: Iterable[str] | None = None, *, profile: Profile | None = None,
                 args: Mapping[str, Mapping[str, Any]] | None = None,
                 objects: Iterable[Message] = ()) -> None:
        self.cache = Cache()
        self.snapshot = Snapshot(self.cache)
        if profile is None:
            raw: dict[str, Any] = {"pluginConfig": [{"name": k, "args": dict(v)} for k, v in (args or {}).items()]}
            if plugins is not None:
                names = list(plugins)
                raw["plugins"] = {"multiPoint": {"disabled": [{"name": "*"}],
                                                 "enabled": [{"name": n} for n in
                                                             ["PrioritySort", *names, "DefaultBinder"]]}}
            profile = resolve_profile(raw, "profiles[0]", REGISTRY)
        self.indexers: dict[type[Message], Indexer[Any]] = {}
        listers: dict[type[Message], Lister[Any]] = {}
        for kind in (core_pb2.PersistentVolumeClaim, core_pb2.PersistentVolume, policy_pb2.PodDisruptionBudget):
            self.indexers[kind] = Indexer()
            listers[kind] = Lister(self.indexers[kind], SCHEME.for_message(kind))
        self.nominator = Nominator()
        self.framework = Framework(profile, REGISTRY, snapshot=self.snapshot, listers=listers,
                                   nominator=self.nominator)
        self.queue = SchedulingQueue({profile.scheduler_name: self.framework}, nominator=self.nominator)
        self.scheduler = Scheduler(self.cache, self.queue, {profile.scheduler_name: self.framework}, self.snapshot)
        for obj in objects:
            self.add(obj)

    def add(self, *objs: Message) -> Cluster:
        for obj in objs:
            if isinstance(obj, core_pb2.Node):
                self.cache.add_node(obj)
            elif isinstance(obj, core_pb2.Pod):
                assert obj.spec.nodeName, "only bound pods go into the cache"
                self.cache.add_pod(new_pod_info(obj))
            elif isinstance(obj, core_pb2.Namespace):
                self.cache.set_namespace(obj)
            else:
                self.indexers[type(obj)].add(obj)
        self.snapshot.update()
        return self

    def node_info(self, name: str) -> NodeInfo:
        found = self.snapshot.get(name)
        assert found is not None, name
        return found

    def pre_filter(self, p: core_pb2.Pod | PodInfo) -> tuple[CycleState, PodInfo, Status | None]:
        self.snapshot.update()
        pi = p if isinstance(p, PodInfo) else new_pod_info(p)
        state = CycleState()
        _, status = self.framework.run_pre_filter(state, pi)
        return state, pi, status

    def filter(self, p: core_pb2.Pod, node_name: str) -> Status | None:
        """PreFilter then the filters for one node: None when the pod fits."""
        state, pi, status = self.pre_filter(p)
        if status is not None:
            return status
        return self.framework.run_filters(state, pi, self.node_info(node_name))

    def feasible(self, p: core_pb2.Pod) -> list[str]:
        state, pi, status = self.pre_filter(p)
        if status is not None:
            return []
        return [n.name for n in self.snapshot.node_infos if self.framework.run_filters(state, pi, n) is None]

    def scores(self, p: core_pb2.Pod, nodes: Sequence[str] | None = None) -> dict[str, int]:
        """Weighted totals over the profile's score plugins."""
        state, pi, status = self.pre_filter(p)
        assert status is None, status
        infos = [self.node_info(n) for n in nodes] if nodes is not None else list(self.snapshot.node_infos)
        assert self.framework.run_pre_score(state, pi, infos) is None
        return dict(zip([n.name for n in infos], self.framework.run_score(state, pi, infos), strict=True))

    def schedule(self, p: core_pb2.Pod) -> str:
        """One scheduling cycle's choice (raises FitError), without binding."""
        state = CycleState()
        return self.scheduler.schedule_pod(self.framework, state, new_pod_info(p))
