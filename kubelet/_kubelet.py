"""The kubelet of one node: its pods, from the API and from static manifests,
kept running on its runtime.

Pods arrive through `pod_added/updated/deleted` (the caller watches the
pods bound to this node; hollow nodes share one informer) and through
`set_static_pods` (the manifest directory). Each pod has a PodRecord and a
pod worker (_pod_workers.py); `_sync(uid)` is the whole decision for one
pod:

* not known (deleted from the API, or found in the runtime only): kill
  what runs, remove sandbox and containers, unmount, forget it. This is
  done for runtime-only pods only once the pod sources have synced, so a
  restarted kubelet never kills what it has not yet been told about;
* being deleted (deletionTimestamp) or evicted: kill with the grace
  period (preStop, SIGTERM, SIGKILL), write the final status, then delete
  the API object with grace 0 (an evicted pod stays, Failed);
* finished (Succeeded/Failed): make sure nothing runs, report, stop;
* otherwise: the status as it stands, PodRuntimeManager.sync_pod, then
  the status again.

The PLEG relist (every second) lists the runtime and wakes the worker of
every pod whose containers or sandboxes changed state, which is how an
exit is noticed; it is also how the kubelet tells the runtime is healthy.
A runtime that fails leaves every pod as it is: nothing is guessed, the
syncs retry.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from typing import Any

from api import Clock, StatusError
from client import Clientset, EventRecorder
from proto import core_pb2

from . import _labels as labels
from ._config import KubeletConfig
from ._kuberuntime import EnvSources, PodRuntimeManager, Volumes, pod_grace
from ._lifecycle import HookRunner
from ._network import Network
from ._pod_workers import PodWorkers
from ._podstate import RuntimePod, StatusCache
from ._prober import ProbeManager, Prober, ProbeTarget
from ._runtime import CRIError, Runtime
from ._status import PodRecord, StatusManager, generate_status

log = logging.getLogger(__name__)

TERMINAL = ("Succeeded", "Failed")


class Kubelet:
    def __init__(self, config: KubeletConfig, clientset: Clientset, runtime: Runtime, *, clock: Clock,
                 recorder: EventRecorder, network: Network, volumes: Volumes, env: EnvSources,
                 runtime_name: str = "kubelab-crishim") -> None:
        self.config = config
        self.clientset = clientset
        self.runtime = runtime
        self.clock = clock
        self.recorder = recorder
        self.runtime_name = runtime_name
        self.records: dict[str, PodRecord] = {}
        self.mirrors: dict[tuple[str, str], core_pb2.Pod] = {}
        self.static: set[str] = set()
        self._deleting_mirrors: set[tuple[str, str]] = set()
        self.sources_ready = False
        self.node_uid = ""
        self.status = StatusManager(clientset, clock)
        self.probes = ProbeManager(Prober(runtime, network), clock, self._probe_target, self._wake,
                                   on_failure=lambda pod, message: recorder.event(pod, "Warning", "Unhealthy",
                                                                                  message))
        self.pods = PodRuntimeManager(runtime, config=config, clock=clock, recorder=recorder, probes=self.probes,
                                      hooks=HookRunner(runtime, network, clock), volumes=volumes, env=env)
        self.volumes = volumes
        self.cache = StatusCache()
        self.workers = PodWorkers(self._sync, clock, name=config.node_name)
        self.snapshots: dict[str, RuntimePod] = {}
        self._relisted: dict[str, tuple[Any, ...]] = {}
        self.last_relist = clock.monotonic()
        self.runtime_error = "container runtime status check may not have completed yet"

    # ------------------------------------------------------------ pod sources

    def pod_added(self, pod: core_pb2.Pod) -> None:
        if labels.is_mirror_pod(pod):
            self.mirrors[(pod.metadata.namespace, pod.metadata.name)] = pod
            self._wake_static(pod)
            self._remove_orphan_mirrors()
            return
        rec = self.records.get(pod.metadata.uid)
        if rec is None:
            self.records[pod.metadata.uid] = PodRecord(pod)
        else:
            old, rec.pod = rec.pod, pod
            if not _needs_sync(old, pod):
                return  # only the status moved (most often: the kubelet's own write coming back)
        self.workers.wake(pod.metadata.uid)

    def pod_updated(self, old: core_pb2.Pod, new: core_pb2.Pod) -> None:
        self.pod_added(new)

    def pod_deleted(self, pod: core_pb2.Pod) -> None:
        if labels.is_mirror_pod(pod):
            key = (pod.metadata.namespace, pod.metadata.name)
            if self.mirrors.get(key) is not None and self.mirrors[key].metadata.uid == pod.metadata.uid:
                del self.mirrors[key]
            self._wake_static(pod)
            return
        if self.records.pop(pod.metadata.uid, None) is not None:
            self.workers.wake(pod.metadata.uid)

    def set_static_pods(self, pods: list[core_pb2.Pod]) -> None:
        """The manifest directory's pods, all of them (a removed file is a
        removed pod)."""
        wanted = {p.metadata.uid: p for p in pods}
        for uid in self.static - wanted.keys():
            self.static.discard(uid)
            if self.records.pop(uid, None) is not None:
                self.workers.wake(uid)
        for uid, pod in wanted.items():
            self.static.add(uid)
            rec = self.records.get(uid)
            if rec is None:
                self.records[uid] = PodRecord(pod)
                self.workers.wake(uid)
        self._remove_orphan_mirrors()

    def _remove_orphan_mirrors(self) -> None:
        """Mirror pods whose static pod is gone are deleted (once every
        source has been read, so a starting kubelet deletes nothing it is
        about to run)."""
        if not self.sources_ready:
            return
        wanted = {(r.pod.metadata.namespace, r.pod.metadata.name) for uid in self.static
                  if (r := self.records.get(uid)) is not None}
        for key, mirror in list(self.mirrors.items()):
            if key not in wanted and key not in self._deleting_mirrors:
                self._deleting_mirrors.add(key)
                asyncio.get_running_loop().create_task(self._delete_mirror(key, mirror))

    async def _delete_mirror(self, key: tuple[str, str], mirror: core_pb2.Pod) -> None:
        try:
            await self.clientset.resource(core_pb2.Pod, key[0]).delete(key[1], grace_period=0,
                                                                         uid=mirror.metadata.uid)
        except StatusError as err:
            if err.reason not in ("NotFound", "Conflict"):
                log.warning("deleting orphaned mirror pod %s/%s: %s", key[0], key[1], err)
        finally:
            self._deleting_mirrors.discard(key)

    def _wake_static(self, mirror: core_pb2.Pod) -> None:
        for uid in self.static:
            rec = self.records.get(uid)
            if rec and (rec.pod.metadata.namespace, rec.pod.metadata.name) == (mirror.metadata.namespace,
                                                                              mirror.metadata.name):
                self.workers.wake(uid)

    def _wake(self, uid: str) -> None:
        self.workers.wake(uid)

    def active_pods(self) -> list[PodRecord]:
        return [r for r in self.records.values() if not r.terminal and not r.evicted
                and not r.pod.metadata.deletionTimestamp]

    # ------------------------------------------------------------ the sync

    async def _sync(self, uid: str) -> float | None:
        rp = await self.cache.read(self.runtime, uid)
        self.snapshots[uid] = rp
        rec = self.records.get(uid)
        if rec is None:
            if not self.sources_ready and not rp.empty:
                return 1.0  # maybe a pod we have not been told about yet
            await self._cleanup(uid, rp, grace=None)
            return None
        if rec.removed:
            return None
        pod = rec.pod
        if uid in self.static:
            await self._ensure_mirror(rec)
        if pod.metadata.deletionTimestamp or rec.evicted:
            return await self._terminate(rec, rp)
        if not rec.terminal and pod.status.phase in TERMINAL and self.status.sent(uid) is None:
            rec.terminal = pod.status.phase  # finished before this kubelet started
        if rec.terminal:
            if not rec.killed:
                await self.pods.kill_pod(rec, rp, pod_grace(pod))
                rp = await self._reread(uid)
            await self._report(rec, rp)
            self.probes.remove_pod(uid)
            return None
        self.probes.add_pod(pod)
        # The status as it stands goes first (as the kubelet's syncPod sets
        # it before the runtime's SyncPod): a pod whose image takes minutes
        # to pull shows ContainerCreating meanwhile, not a bare Pending.
        await self._report(rec, rp)
        try:
            delay = await self.pods.sync_pod(rec, rp)
        finally:
            rp = await self._reread(uid)
        status = self._generate(rec, rp)
        if status.phase in TERMINAL:
            rec.terminal = status.phase
            await self.pods.kill_pod(rec, rp, pod_grace(pod))
            rp = await self._reread(uid)
            self.probes.remove_pod(uid)
            await self._report(rec, rp)
            return None
        await self._write(rec, status)
        return delay if delay is not None else self.config.sync_frequency

    async def _reread(self, uid: str) -> RuntimePod:
        rp = await self.cache.read(self.runtime, uid)
        self.snapshots[uid] = rp
        return rp

    def _generate(self, rec: PodRecord, rp: RuntimePod) -> core_pb2.PodStatus:
        return generate_status(rec.pod, rp, rec, ready=lambda c, rc: self.probes.ready(c, rc.id),
                               started=lambda c, rc: self.probes.started(c, rc.id), host_ip=self.config.node_ip,
                               runtime_name=self.runtime_name, now=self.clock.now())

    async def _report(self, rec: PodRecord, rp: RuntimePod) -> None:
        await self._write(rec, self._generate(rec, rp))

    async def _write(self, rec: PodRecord, status: core_pb2.PodStatus) -> None:
        uid = rec.pod.metadata.uid
        if uid in self.static:
            if rec.mirror is not None:
                await self.status.set(rec.mirror, status, uid)
            return
        await self.status.set(rec.pod, status)

    async def _terminate(self, rec: PodRecord, rp: RuntimePod) -> float | None:
        pod = rec.pod
        uid = pod.metadata.uid
        self.probes.remove_pod(uid)
        if not rec.killed:
            await self.pods.kill_pod(rec, rp, 0 if rec.evicted else pod_grace(pod))
            rp = await self._reread(uid)
        status = self._generate(rec, rp)
        if not rec.terminal and status.phase in TERMINAL:
            rec.terminal = status.phase
        await self._write(rec, status)
        if not pod.metadata.deletionTimestamp:
            return None  # evicted: the Failed pod stays for its owner to see
        if uid not in self.static:
            try:
                await self.clientset.resource(core_pb2.Pod, pod.metadata.namespace).delete(
                    pod.metadata.name, grace_period=0, uid=uid)
            except StatusError as err:
                if err.reason not in ("NotFound", "Conflict"):
                    raise
        await self._cleanup(uid, rp, grace=0)
        rec.removed = True
        return None

    async def _cleanup(self, uid: str, rp: RuntimePod, grace: int | None) -> None:
        """Nothing of pod `uid` stays: containers, sandboxes, volumes, memory."""
        if rp.running_containers or rp.sandbox_ready:
            running = rp.running_containers
            g = grace if grace is not None else max((c.grace for c in running), default=30)
            await asyncio.gather(*(self.pods.kill_container(_placeholder(rp, uid), c, None, g) for c in running))
        await self.pods.remove_pod(rp)
        self.cache.forget([c.id for c in rp.containers], [b.id for b in rp.sandboxes])
        self.probes.remove_pod(uid)
        for c in rp.containers:
            self.probes.forget_container(c.id)
        if not self.config.hollow:
            await self.volumes.unmount(uid)
            hosts = self.pods.hosts_file(uid)
            hosts.unlink(missing_ok=True)
            # The runtime removed the log files with the containers; the pod's
            # log directory (<ns>_<name>_<uid>) goes too, as the kubelet's
            # container GC removes the log directories of removed pods.
            for logs in self.config.pod_logs_dir.glob(f"*_{uid}"):
                await asyncio.to_thread(shutil.rmtree, logs, True)
        self.status.forget(uid)
        self.snapshots.pop(uid, None)
        self._relisted.pop(uid, None)

    async def _ensure_mirror(self, rec: PodRecord) -> None:
        """A static pod's mirror: created when missing, replaced when it is
        from another version of the manifest or being deleted."""
        pod = rec.pod
        key = (pod.metadata.namespace, pod.metadata.name)
        want = pod.metadata.annotations.get(labels.CONFIG_HASH, pod.metadata.uid)
        mirror = self.mirrors.get(key)
        client = self.clientset.resource(core_pb2.Pod, pod.metadata.namespace)
        if mirror is not None and mirror.metadata.annotations.get(labels.CONFIG_MIRROR) == want \
                and not mirror.metadata.deletionTimestamp:
            rec.mirror = mirror
            return
        if mirror is not None:
            try:
                await client.delete(mirror.metadata.name, grace_period=0, uid=mirror.metadata.uid)
            except StatusError as err:
                if err.reason not in ("NotFound", "Conflict"):
                    raise
        new = core_pb2.Pod()
        new.metadata.CopyFrom(pod.metadata)
        new.metadata.ClearField("uid")
        new.metadata.annotations[labels.CONFIG_MIRROR] = want
        if self.node_uid:
            new.metadata.ownerReferences.add(apiVersion="v1", kind="Node", name=self.config.node_name,
                                             uid=self.node_uid, controller=True)
        new.spec.CopyFrom(pod.spec)
        try:
            rec.mirror = await client.create(new)
        except StatusError as err:
            if err.reason != "AlreadyExists":
                raise
            rec.mirror = await client.get(pod.metadata.name)
        self.mirrors[key] = rec.mirror
        self.status.forget(pod.metadata.uid)

    # ------------------------------------------------------------ probes

    def _probe_target(self, uid: str, container: str) -> ProbeTarget | None:
        rec = self.records.get(uid)
        if rec is None or rec.terminal:
            return None
        rp = self.snapshots.get(uid)
        found = rp.latest(container, False) if rp is not None else None
        if found is None or rp is None:
            return ProbeTarget(rec.pod, "", False, 0.0, "")
        ip = self.config.node_ip if rec.pod.spec.hostNetwork else rp.ip
        return ProbeTarget(rec.pod, found.id, found.running, found.started_at, ip)

    # ------------------------------------------------------------ PLEG

    async def relist(self) -> None:
        """One PLEG relist: wake the worker of every pod whose runtime state
        changed since the last one. Raises CRIError when the runtime fails."""
        sandboxes = await self.runtime.list_pod_sandbox()
        containers = await self.runtime.list_containers()
        seen: dict[str, list[Any]] = {}
        for box in sandboxes:
            uid = box.labels.get(labels.POD_UID)
            if uid:
                seen.setdefault(uid, []).append((box.id, box.state))
        for c in containers:
            uid = c.labels.get(labels.POD_UID)
            if uid:
                seen.setdefault(uid, []).append((c.id, c.state))
        now = {uid: tuple(sorted(v)) for uid, v in seen.items()}
        for uid in now.keys() | self._relisted.keys():
            if now.get(uid) != self._relisted.get(uid):
                if uid in self.records or self.sources_ready:
                    self.workers.wake(uid)
        self._relisted = now
        self.last_relist = self.clock.monotonic()

    async def run_pleg(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.relist()
                self.runtime_error = ""
            except CRIError as err:
                self.runtime_error = f"container runtime is down: {err}"
                log.warning("%s: PLEG relist failed: %s", self.config.node_name, err)
            await self.clock.sleep(self.config.relist_period)

    def mark_sources_ready(self) -> None:
        """Every pod source has delivered its pods: runtime-only pods are orphans."""
        self.sources_ready = True
        self._remove_orphan_mirrors()
        if not self.config.hollow:
            asyncio.get_running_loop().create_task(self._remove_orphan_pod_dirs())
        for uid in self._relisted:
            if uid not in self.records:
                self.workers.wake(uid)

    async def _remove_orphan_pod_dirs(self) -> None:
        """Volumes of pods that are neither known nor in the runtime (a pod
        deleted while the kubelet was down) are unmounted and removed."""
        try:
            on_disk = self.volumes.pods_on_disk()
        except OSError as err:
            log.warning("listing pod directories: %s", err)
            return
        for uid in on_disk:
            if uid in self.records or uid in self._relisted:
                continue
            try:
                await self.volumes.unmount(uid)
                log.info("removed the volumes of orphaned pod %s", uid)
            except Exception as err:  # a VolumeError or OSError: logged, tried again at the next start
                log.warning("removing the volumes of orphaned pod %s: %s", uid, err)

    async def stop(self) -> None:
        await self.workers.stop()
        await self.probes.stop()


def _needs_sync(old: core_pb2.Pod, new: core_pb2.Pod) -> bool:
    """What Kubernetes' pod config passes on as an update: the spec, labels,
    annotations or deletion changed, or a readiness gate's condition."""
    a, b = old.metadata, new.metadata
    if old.spec != new.spec or a.labels != b.labels or a.annotations != b.annotations:
        return True
    if a.deletionTimestamp != b.deletionTimestamp or a.deletionGracePeriodSeconds != b.deletionGracePeriodSeconds:
        return True
    gates = {g.conditionType for g in new.spec.readinessGates}
    return bool(gates) and [c for c in old.status.conditions if c.type in gates] != [
        c for c in new.status.conditions if c.type in gates]


def _placeholder(rp: RuntimePod, uid: str) -> core_pb2.Pod:
    """A Pod to hang events on for a pod the kubelet knows only from the runtime."""
    pod = core_pb2.Pod()
    box = rp.sandbox
    if box is not None:
        pod.metadata.name, pod.metadata.namespace = box.metadata.name, box.metadata.namespace
    pod.metadata.uid = uid
    return pod
