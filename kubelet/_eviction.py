"""Node-pressure eviction (the kubelet's eviction manager, hard thresholds).

Every housekeeping period the manager observes the eviction signals:

* memory.available: the machine's MemAvailable (hollow nodes: capacity
  less what their containers report using);
* nodefs.available: free bytes of the filesystem holding --root-dir
  (hollow nodes: capacity less the images held).

A signal under its threshold (`--eviction-hard`) puts the node under
pressure - MemoryPressure or DiskPressure, which the node status reports -
and one pod is evicted per round, as Kubernetes does: never a static pod,
and BestEffort before Burstable before Guaranteed, the one using most
first within a class. The evicted pod is killed at once (grace 0) and
reported Failed with reason Evicted; its owner (a ReplicaSet, ...) makes
a replacement. A failed observation is logged and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from api import Clock, Quantity
from client import EventRecorder

from . import _labels as labels
from ._config import KubeletConfig, Threshold
from ._qos import QOS_RANK, qos_class
from ._runtime import CRIError, Runtime
from ._status import PodRecord

log = logging.getLogger(__name__)

_RESOURCE = {"memory.available": "memory", "nodefs.available": "ephemeral-storage"}
_CONDITION = {"memory.available": "MemoryPressure", "nodefs.available": "DiskPressure"}


@dataclass
class Observation:
    memory_available: int
    memory_capacity: int
    fs_available: int
    fs_capacity: int

    def signal(self, name: str) -> tuple[int, int]:
        """(available, capacity) of an eviction signal."""
        if name == "memory.available":
            return self.memory_available, self.memory_capacity
        return self.fs_available, self.fs_capacity


class StatsProvider(Protocol):
    async def observe(self) -> Observation: ...


class MachineStats:
    """The real machine's memory and the filesystem of the kubelet's root."""

    def __init__(self, config: KubeletConfig) -> None:
        self.config = config

    async def observe(self) -> Observation:
        info = _meminfo()
        capacity = Quantity.parse(self.config.memory).value()
        root = self.config.root_dir if self.config.root_dir.exists() else Path("/")
        st = os.statvfs(root)
        return Observation(min(info.get("MemAvailable", capacity), capacity), capacity,
                           st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize)


class RuntimeStats:
    """Hollow nodes: usage is what the runtime's containers report."""

    def __init__(self, config: KubeletConfig, runtime: Runtime) -> None:
        self.config = config
        self.runtime = runtime

    async def observe(self) -> Observation:
        memory = Quantity.parse(self.config.memory).value()
        fs = Quantity.parse(self.config.ephemeral_storage).value()
        used = sum(s.memory.working_set_bytes.value for s in await self.runtime.list_container_stats())
        images = sum(i.size for i in await self.runtime.list_images())
        return Observation(max(0, memory - used), memory, max(0, fs - images), fs)


class EvictionManager:
    def __init__(self, config: KubeletConfig, runtime: Runtime, stats: StatsProvider, clock: Clock,
                 recorder: EventRecorder, *, active_pods: Callable[[], list[PodRecord]],
                 evict: Callable[[PodRecord, str], None], is_static: Callable[[str], bool]) -> None:
        self.config = config
        self.runtime = runtime
        self.stats = stats
        self.clock = clock
        self.recorder = recorder
        self.active_pods = active_pods
        self.evict = evict
        self.is_static = is_static
        self.pressure: set[str] = set()

    async def synchronize(self) -> PodRecord | None:
        """One round: observe, set the pressure conditions, evict at most
        one pod. Returns the pod evicted."""
        observed = await self.stats.observe()
        met: list[tuple[Threshold, int]] = []
        for t in self.config.eviction_hard:
            available, capacity = observed.signal(t.signal)
            if available < t.limit(capacity):
                met.append((t, available))
        self.pressure = {_CONDITION[t.signal] for t, _ in met}
        if not met:
            return None
        threshold, available = met[0]
        victim = await self._rank(threshold.signal)
        if victim is None:
            log.warning("%s: %s is under its threshold (%s) and no pod can be evicted", self.config.node_name,
                        threshold.signal, threshold)
            return None
        resource = _RESOURCE[threshold.signal]
        limit = threshold.limit(observed.signal(threshold.signal)[1])
        message = (f"The node was low on resource: {resource}. Threshold quantity: {_human(limit)}, "
                   f"available: {_human(available)}. ")
        self.recorder.event(victim.pod, "Warning", "Evicted", message)
        log.info("%s: evicting pod %s/%s: %s", self.config.node_name, victim.pod.metadata.namespace,
                 victim.pod.metadata.name, message)
        self.evict(victim, message)
        return victim

    async def _rank(self, signal: str) -> PodRecord | None:
        candidates = [r for r in self.active_pods() if not self.is_static(r.pod.metadata.uid)]
        if not candidates:
            return None
        usage: dict[str, int] = {}
        if signal == "memory.available":
            try:
                for s in await self.runtime.list_container_stats():
                    uid = s.attributes.labels.get(labels.POD_UID, "")
                    usage[uid] = usage.get(uid, 0) + s.memory.working_set_bytes.value
            except CRIError as err:
                log.warning("%s: container stats: %s", self.config.node_name, err)
        candidates.sort(key=lambda r: (QOS_RANK[qos_class(r.pod)], -usage.get(r.pod.metadata.uid, 0)))
        return candidates[0]

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.synchronize()
            except (OSError, CRIError, ValueError) as err:
                log.warning("%s: eviction manager: %s", self.config.node_name, err)
            await self.clock.sleep(self.config.housekeeping_interval)


def _meminfo() -> dict[str, int]:
    info: dict[str, int] = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, rest = line.partition(":")
        if rest.split():
            info[name] = int(rest.split()[0]) * 1024
    return info


def _human(value: int) -> str:
    if value >= 1024 and value % 1024 == 0:
        return str(Quantity.parse(f"{value // 1024}Ki"))
    return str(value)
