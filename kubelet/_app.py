"""Putting a node agent together: the Kubelet (pods), the NodeStatusManager
(node object and lease), the EvictionManager and the static pod source,
with the loops that drive them.

`NodeAgent` is one node. It does not watch anything itself: the caller
feeds it pods and its Node (`PodDispatcher` below), so one process can run
a thousand hollow nodes on one clientset and one pod, node and service
informer each, as kubemark shares what it can.

Start order matters for restart safety: the Node is registered, then the
loops start, and runtime-only pods count as orphans only after
`mark_sources_ready()` - after the pod informer's first list and the first
read of the static manifests - so nothing the apiserver still knows is
ever killed by a restarting kubelet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from api import Clock
from client import Clientset, DeletedFinalStateUnknown, EventBroadcaster, Informer
from proto import core_pb2

from ._config import KubeletConfig
from ._eviction import EvictionManager, MachineStats, RuntimeStats, StatsProvider
from ._kubelet import Kubelet
from ._kuberuntime import EnvSources, Volumes
from ._network import Network
from ._node import NodeStatusManager
from ._runtime import CRIError, Runtime
from ._static import StaticPodSource
from ._status import PodRecord

log = logging.getLogger(__name__)


class NodeAgent:
    def __init__(self, config: KubeletConfig, clientset: Clientset, runtime: Runtime, *, clock: Clock,
                 broadcaster: EventBroadcaster, network: Network, volumes: Volumes, env: EnvSources,
                 stats: StatsProvider | None = None, runtime_name: str = "kubelab-crishim") -> None:
        self.config = config
        self.clock = clock
        recorder = broadcaster.new_recorder()
        self.kubelet = Kubelet(config, clientset, runtime, clock=clock, recorder=recorder, network=network,
                               volumes=volumes, env=env, runtime_name=runtime_name)
        stats = stats or (RuntimeStats(config, runtime) if config.hollow else MachineStats(config))
        self.eviction = EvictionManager(config, runtime, stats, clock, recorder,
                                        active_pods=self.kubelet.active_pods, evict=self._evict,
                                        is_static=lambda uid: uid in self.kubelet.static)
        self.node = NodeStatusManager(config, clientset, runtime, clock,
                                      runtime_error=lambda: self.kubelet.runtime_error,
                                      pressure=lambda: self.eviction.pressure)
        self.static: StaticPodSource | None = None
        if config.pod_manifest_path is not None:
            self.static = StaticPodSource(config.pod_manifest_path, config.node_name, clock,
                                          self.kubelet.set_static_pods, config.file_check_frequency)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def _evict(self, rec: PodRecord, message: str) -> None:
        rec.evicted = message
        self.kubelet.workers.wake(rec.pod.metadata.uid)

    async def start(self) -> None:
        """Register the Node and start every loop (returns at once after
        registration)."""
        node = await self.node.register()
        self.kubelet.node_uid = node.metadata.uid
        if self.static is not None:
            self.static.scan()
        try:
            await self.kubelet.relist()  # so the first node status already knows the runtime's health
            self.kubelet.runtime_error = ""
        except CRIError as err:
            self.kubelet.runtime_error = f"container runtime is down: {err}"
        name = self.config.node_name
        loops: list[tuple[str, Callable[[asyncio.Event], Any]]] = [
            ("lease", self.node.run_lease_loop), ("status", self.node.run_status_loop),
            ("pleg", self.kubelet.run_pleg), ("eviction", self.eviction.run)]
        if self.static is not None:
            loops.append(("static", self.static.run))
        self._tasks = [asyncio.create_task(fn(self._stop), name=f"{what} {name}") for what, fn in loops]

    def mark_sources_ready(self) -> None:
        self.kubelet.mark_sources_ready()

    def node_changed(self, node: core_pb2.Node) -> None:
        self.node.node_changed(node)

    async def stop(self) -> None:
        """Stop the loops and workers; running containers keep running."""
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.kubelet.stop()


class PodDispatcher:
    """One pod informer and one node informer serving many NodeAgents,
    routed by spec.nodeName and metadata.name."""

    def __init__(self, pods: Informer[core_pb2.Pod], nodes: Informer[core_pb2.Node]) -> None:
        self.agents: dict[str, NodeAgent] = {}
        self._bound: dict[str, str] = {}   # pod uid -> node it was delivered to
        pods.add_event_handler(self._add, self._update, self._delete)
        nodes.add_event_handler(self._node, lambda _old, new: self._node(new))

    def add(self, agent: NodeAgent) -> None:
        self.agents[agent.config.node_name] = agent

    def _add(self, pod: core_pb2.Pod) -> None:
        agent = self.agents.get(pod.spec.nodeName)
        if agent is not None:
            self._bound[pod.metadata.uid] = pod.spec.nodeName
            agent.kubelet.pod_added(pod)

    def _update(self, old: core_pb2.Pod, new: core_pb2.Pod) -> None:
        self._add(new)

    def _delete(self, obj: core_pb2.Pod | DeletedFinalStateUnknown[core_pb2.Pod]) -> None:
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        node = self._bound.pop(pod.metadata.uid, pod.spec.nodeName)
        agent = self.agents.get(node)
        if agent is not None:
            agent.kubelet.pod_deleted(pod)

    def _node(self, node: core_pb2.Node) -> None:
        agent = self.agents.get(node.metadata.name)
        if agent is not None:
            agent.node_changed(node)
