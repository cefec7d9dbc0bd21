"""One pod's sync against the runtime (kubeGenericRuntimeManager.SyncPod):
compare what the pod asks for with what the runtime holds, and act.

Each `sync_pod` round, in Kubernetes' order:

1. the sandbox: none ready -> stop what is left of the old one and run a
   new one (attempt + 1); every init container then runs again, and app
   containers start afresh (keeping their restart counts). With
   restartPolicy Never a pod whose containers already ran gets no new
   sandbox: it is done;
2. init containers, one at a time, in order, each to exit 0: a failed one
   is restarted (with backoff) unless the policy is Never, which fails the
   pod;
3. app containers: start what is missing; replace a running container
   whose spec hash changed, or that failed its liveness or startup probe;
   restart an exited one as restartPolicy says, behind CrashLoopBackOff
   (10 s doubling to 5 min per container, reset after 10 min).

Starting a container is: the image (imagePullPolicy, ErrImagePull /
ImagePullBackOff), the environment (CreateContainerConfigError), the
mounts, CreateContainer, StartContainer, then the postStart hook (a failed
hook kills the container). Whatever stops a start is kept as the
container's waiting reason for the status, and the round returns how soon
it wants to run again (a backoff expiring). Runtime failures of the
sandbox raise: the pod worker retries the pod later.

Killing is preStop (bounded by the grace period), then StopContainer with
what is left of the grace period (at least 2 s, as Kubernetes gives).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from api import Clock, Quantity
from client import EventRecorder
from proto import core_pb2, cri_pb2

from . import _labels as labels
from ._backoff import Backoff
from ._config import KubeletConfig
from ._dnsconfig import sandbox_dns_config
from ._env import ContainerConfigError, ObjectGetter, expand, make_environment, mapping_for
from ._etchosts import etc_hosts
from ._images import ERR_IMAGE_PULL, ImageManager, ImagePullError
from ._lifecycle import HookRunner
from ._podstate import RuntimeContainer, RuntimePod
from ._prober import FAILURE, LIVENESS, STARTUP, ProbeManager
from ._qos import BEST_EFFORT, BURSTABLE, container_resources, qos_class
from ._runtime import CRIError, Runtime
from ._status import CRASH_LOOP_BACK_OFF, PodRecord, should_restart

log = logging.getLogger(__name__)

MIN_GRACE = 2
REFRESH_PERIOD = 60.0  # how often mounted volumes are brought up to date (the kubelet's sync period)


class Volumes(Protocol):
    """kubelet/volumes' VolumeManager, as the sync uses it."""

    async def mount(self, pod: core_pb2.Pod) -> dict[str, Any]: ...

    def container_mounts(self, pod: core_pb2.Pod, container: core_pb2.Container,
                         mounted: dict[str, Any]) -> list[cri_pb2.Mount]: ...

    async def refresh(self, pod: core_pb2.Pod) -> None: ...

    async def unmount(self, pod_uid: str) -> None: ...

    def pods_on_disk(self) -> list[str]: ...


class NoVolumes:
    """Hollow nodes: volumes are accepted and nothing is mounted."""

    async def mount(self, pod: core_pb2.Pod) -> dict[str, Any]:
        return {}

    def container_mounts(self, pod: core_pb2.Pod, container: core_pb2.Container,
                         mounted: dict[str, Any]) -> list[cri_pb2.Mount]:
        return []

    async def refresh(self, pod: core_pb2.Pod) -> None:
        return None

    async def unmount(self, pod_uid: str) -> None:
        return None

    def pods_on_disk(self) -> list[str]:
        return []


@dataclass
class EnvSources:
    secrets: ObjectGetter
    config_maps: ObjectGetter
    services: Callable[[], list[core_pb2.Service]]


def _mkdir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def pod_grace(pod: core_pb2.Pod) -> int:
    meta = pod.metadata
    if meta.deletionTimestamp and meta.HasField("deletionGracePeriodSeconds"):
        return max(0, meta.deletionGracePeriodSeconds)
    return pod.spec.terminationGracePeriodSeconds if pod.spec.HasField("terminationGracePeriodSeconds") else 30


def _namespaces(spec: core_pb2.PodSpec) -> cri_pb2.NamespaceOption:
    pid = cri_pb2.NODE if spec.hostPID else cri_pb2.POD if spec.shareProcessNamespace else cri_pb2.CONTAINER
    return cri_pb2.NamespaceOption(network=cri_pb2.NODE if spec.hostNetwork else cri_pb2.POD, pid=pid,
                                   ipc=cri_pb2.NODE if spec.hostIPC else cri_pb2.POD)


class PodRuntimeManager:
    def __init__(self, runtime: Runtime, *, config: KubeletConfig, clock: Clock, recorder: EventRecorder,
                 probes: ProbeManager, hooks: HookRunner, volumes: Volumes, env: EnvSources) -> None:
        self.runtime = runtime
        self.config = config
        self.clock = clock
        self.recorder = recorder
        self.probes = probes
        self.hooks = hooks
        self.volumes = volumes
        self.env = env
        self.backoff = Backoff(clock)
        self.image_backoff = Backoff(clock)
        self.images = ImageManager(runtime, self.image_backoff)
        self.node_memory = Quantity.parse(config.memory).value()

    def event(self, pod: core_pb2.Pod, type_: str, reason: str, message: str) -> None:
        self.recorder.event(pod, type_, reason, message)

    # ------------------------------------------------------------ sync

    async def sync_pod(self, rec: PodRecord, rp: RuntimePod) -> float | None:
        """One round; the seconds until a backoff ends (None: nothing pending)."""
        pod = rec.pod
        spec = pod.spec
        policy = spec.restartPolicy or "Always"
        if rec.mounted is None:
            try:
                rec.mounted = await self.volumes.mount(pod)
                rec.refreshed = self.clock.monotonic()
            except Exception as err:  # VolumeError, and anything a plugin raised
                self.event(pod, "Warning", "FailedMount", f"MountVolume.SetUp failed: {err}")
                return 5.0
        elif self.clock.monotonic() - rec.refreshed >= REFRESH_PERIOD:
            rec.refreshed = self.clock.monotonic()
            try:  # configMap, secret, downwardAPI and projected contents follow their sources
                await self.volumes.refresh(pod)
            except Exception as err:
                self.event(pod, "Warning", "FailedMount", f"MountVolume.SetUp failed: {err}")
        box = rp.sandbox
        if not rp.sandbox_ready or box is None:
            if box is not None and policy == "Never" and any(c.started_at for c in rp.containers if not c.init):
                return None  # the pod ran once; Never means it is over
            box = await self._new_sandbox(rec, rp)
            rp = RuntimePod(rp.uid, [box], rp.containers, await self._sandbox_ip(box.id))
        elif rec.sandbox_config is None:
            rec.sandbox_config = self.sandbox_config(pod, box.metadata.attempt)
        await self._write_etc_hosts(rec, rp)
        current = [c for c in rp.containers if c.sandbox_id == box.id]

        def latest(name: str, init: bool) -> RuntimeContainer | None:
            return next((c for c in current if c.name == name and c.init == init), None)

        for c in spec.initContainers:
            found = await self._drop_created(latest(c.name, True))
            if found is not None and found.exited and found.exit_code == 0:
                continue
            if found is not None and found.running:
                return None
            if found is not None and found.exited and policy == "Never":
                return None  # a failed init container fails the pod
            return await self.start_container(rec, rp, c, True)

        wake: list[float] = []
        for c in spec.containers:
            found = await self._drop_created(latest(c.name, False))
            if found is not None and found.running:
                why = self._kill_reason(c, found)
                if why is None:
                    continue
                await self.kill_container(pod, found, c, self._probe_grace(pod, c, why), why)
                if policy == "Never":
                    continue
            elif found is not None and found.exited:
                if not should_restart(policy, found):
                    continue
            elif found is None:
                before = rp.latest(c.name, False)
                if before is not None and before.exited and not should_restart(policy, before) \
                        and before.sandbox_id != box.id and policy == "OnFailure":
                    continue  # succeeded under OnFailure before the sandbox was replaced
            delay = await self.start_container(rec, rp, c, False)
            if delay is not None:
                wake.append(delay)
        return min(wake) if wake else None

    async def _drop_created(self, found: RuntimeContainer | None) -> RuntimeContainer | None:
        """A container created but never started (the kubelet stopped in
        between) is removed and made again."""
        if found is None or found.running or found.exited:
            return found
        await self.runtime.remove_container(found.id)
        return None

    def _kill_reason(self, c: core_pb2.Container, found: RuntimeContainer) -> str | None:
        if found.hash and found.hash != labels.container_hash(c):
            return f"Container {c.name} definition changed, will be restarted"
        if self.probes.result(found.id, LIVENESS) == FAILURE:
            return f"Container {c.name} failed liveness probe, will be restarted"
        if self.probes.result(found.id, STARTUP) == FAILURE:
            return f"Container {c.name} failed startup probe, will be restarted"
        return None

    def _probe_grace(self, pod: core_pb2.Pod, c: core_pb2.Container, why: str) -> int:
        for probe in (c.livenessProbe, c.startupProbe):
            if "probe" in why and probe.HasField("terminationGracePeriodSeconds"):
                return int(probe.terminationGracePeriodSeconds)
        return pod_grace(pod)

    # ------------------------------------------------------------ sandbox

    def sandbox_config(self, pod: core_pb2.Pod, attempt: int) -> cri_pb2.PodSandboxConfig:
        meta, spec = pod.metadata, pod.spec
        cfg = cri_pb2.PodSandboxConfig()
        cfg.metadata.name, cfg.metadata.uid, cfg.metadata.namespace = meta.name, meta.uid, meta.namespace
        cfg.metadata.attempt = attempt
        cfg.hostname = self.config.node_name if spec.hostNetwork else (spec.hostname or meta.name)[:63]
        if not self.config.hollow:
            cfg.log_directory = str(self.config.pod_logs_dir / f"{meta.namespace}_{meta.name}_{meta.uid}")
        cfg.dns_config.CopyFrom(sandbox_dns_config(
            pod, cluster_dns=self.config.cluster_dns, cluster_domain=self.config.cluster_domain,
            host_resolv_conf=self.config.resolv_conf, node_ips=[self.config.node_ip],
            on_warning=lambda reason, message: self.event(pod, "Warning", reason, message)))
        for c in spec.containers:
            for p in c.ports:
                if p.hostPort:
                    cfg.port_mappings.add(protocol=cri_pb2.Protocol.Value(p.protocol or "TCP"),
                                          container_port=p.containerPort, host_port=p.hostPort, host_ip=p.hostIP)
        cfg.labels.update(meta.labels)
        cfg.labels.update(labels.pod_labels(pod))
        cfg.annotations.update(meta.annotations)
        qos = qos_class(pod)
        cfg.linux.cgroup_parent = "/kubepods" + {BURSTABLE: "/burstable", BEST_EFFORT: "/besteffort"}.get(qos, "") \
            + f"/pod{meta.uid}"
        cfg.linux.security_context.namespace_options.CopyFrom(_namespaces(spec))
        for sysctl in spec.securityContext.sysctls:
            cfg.linux.sysctls[sysctl.name] = sysctl.value
        return cfg

    async def _new_sandbox(self, rec: PodRecord, rp: RuntimePod) -> cri_pb2.PodSandbox:
        pod = rec.pod
        for old in rp.sandboxes:
            if old.state == cri_pb2.SANDBOX_READY:
                await self.runtime.stop_pod_sandbox(old.id)
        for c in rp.running_containers:
            await self.runtime.stop_container(c.id, 0)
        attempt = rp.sandbox.metadata.attempt + 1 if rp.sandbox is not None else 0
        config = self.sandbox_config(pod, attempt)
        if config.log_directory:
            _mkdir(Path(config.log_directory))
        try:
            sid = await self.runtime.run_pod_sandbox(config)
        except CRIError as err:
            self.event(pod, "Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {err.message}")
            raise
        if rp.sandbox is not None:
            self.event(pod, "Normal", "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
        rec.sandbox_config = config
        rec.hosts_ip = ""
        return cri_pb2.PodSandbox(id=sid, metadata=config.metadata, state=cri_pb2.SANDBOX_READY,
                                  created_at=int(self.clock.now() * 1e9), labels=config.labels)

    async def _sandbox_ip(self, sandbox_id: str) -> str:
        return (await self.runtime.pod_sandbox_status(sandbox_id)).network.ip

    def hosts_file(self, uid: str) -> Path:
        return self.config.pods_dir / uid / "etc-hosts"

    async def _write_etc_hosts(self, rec: PodRecord, rp: RuntimePod) -> None:
        pod = rec.pod
        ip = self.config.node_ip if pod.spec.hostNetwork else rp.ip
        if self.config.hollow or rec.hosts_ip == ip:
            return
        path = self.hosts_file(pod.metadata.uid)
        text = etc_hosts(pod, ip, host_network=pod.spec.hostNetwork, cluster_domain=self.config.cluster_domain)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        rec.hosts_ip = ip

    # ------------------------------------------------------------ containers

    async def start_container(self, rec: PodRecord, rp: RuntimePod, c: core_pb2.Container,
                              init: bool) -> float | None:
        pod = rec.pod
        key = (init, c.name)
        backoff_key = f"{pod.metadata.uid}/{'init/' if init else ''}{c.name}"
        instances = rp.instances(c.name, init)
        before = next((i for i in instances if i.exited), None)
        if before is not None:
            if self.backoff.in_backoff_since(backoff_key, before.finished_at):
                wait = self.backoff.get(backoff_key)
                rec.waiting[key] = (CRASH_LOOP_BACK_OFF, f"back-off {wait:g}s restarting failed container={c.name} "
                                                         f"pod={pod.metadata.name}_{pod.metadata.namespace}"
                                                         f"({pod.metadata.uid})")
                self.event(pod, "Warning", "BackOff", f"Back-off restarting failed container {c.name} in pod "
                                                      f"{pod.metadata.name}_{pod.metadata.namespace}"
                                                      f"({pod.metadata.uid})")
                return max(0.001, self.backoff.remaining(backoff_key, before.finished_at))
            self.backoff.next(backoff_key)
        restart_count = instances[0].restart_count + 1 if instances else 0
        sandbox = rp.sandbox
        assert sandbox is not None and rec.sandbox_config is not None
        try:
            await self.images.ensure(pod, c, rec.sandbox_config,
                                     lambda t, reason, message: self.event(pod, t, reason, message))
        except ImagePullError as err:
            rec.waiting[key] = (err.reason, err.message)
            if err.reason == ERR_IMAGE_PULL:
                # A pull just failed: the next sync, a second on, finds the
                # image in back-off and says ImagePullBackOff until it is
                # time to pull again, as Kubernetes' kubelet does.
                return 1.0
            return max(1.0, self.image_backoff.remaining_since_update(f"{pod.metadata.uid}_{c.image}"))
        try:
            config = await self.container_config(rec, rp, c, init, restart_count)
        except ContainerConfigError as err:
            rec.waiting[key] = ("CreateContainerConfigError", str(err))
            self.event(pod, "Warning", "Failed", f"Error: {err}")
            return 10.0
        try:
            cid = await self.runtime.create_container(sandbox.id, config, rec.sandbox_config)
        except CRIError as err:
            rec.waiting[key] = ("CreateContainerError", err.message)
            self.event(pod, "Warning", "Failed", f"Error: {err.message}")
            return 10.0
        self.event(pod, "Normal", "Created", f"Created container {c.name}")
        try:
            await self.runtime.start_container(cid)
        except CRIError as err:
            rec.waiting[key] = ("RunContainerError", err.message)
            self.event(pod, "Warning", "Failed", f"Error: {err.message}")
            return 10.0
        rec.waiting.pop(key, None)
        self.event(pod, "Normal", "Started", f"Started container {c.name}")
        await self._remove_dead(rp, c.name, init)
        if c.lifecycle.HasField("postStart"):
            problem = await self.hooks.run(c.lifecycle.postStart, pod, c, cid, rp.ip or self.config.node_ip,
                                           pod_grace(pod))
            if problem is not None:
                self.event(pod, "Warning", "FailedPostStartHook", problem)
                started = RuntimeContainer(id=cid, name=c.name, init=init, state=cri_pb2.CONTAINER_RUNNING,
                                           sandbox_id=sandbox.id)
                await self.kill_container(pod, started, c, pod_grace(pod), f"FailedPostStartHook: {problem}",
                                          pre_stop=False)
        return None

    async def _remove_dead(self, rp: RuntimePod, name: str, init: bool) -> None:
        """Keep one dead instance per container (for `logs --previous`)."""
        dead = [c for c in rp.instances(name, init) if c.exited]
        for old in dead[1:]:
            try:
                await self.runtime.remove_container(old.id)
            except CRIError as err:
                log.debug("removing dead container %s: %s", old.id, err)

    async def container_config(self, rec: PodRecord, rp: RuntimePod, c: core_pb2.Container, init: bool,
                               restart_count: int) -> cri_pb2.ContainerConfig:
        pod = rec.pod
        pod_ip = self.config.node_ip if pod.spec.hostNetwork else rp.ip
        env = await make_environment(pod, c, secrets=self.env.secrets, config_maps=self.env.config_maps,
                                     services=self.env.services(), node_name=self.config.node_name,
                                     host_ip=self.config.node_ip, pod_ip=pod_ip,
                                     node_allocatable=self.config.allocatable(),
                                     on_warning=lambda reason, message: self.event(pod, "Warning", reason, message))
        values = dict(env)
        lookup = mapping_for(values)
        cfg = cri_pb2.ContainerConfig(
            command=[expand(a, lookup) for a in c.command], args=[expand(a, lookup) for a in c.args],
            working_dir=c.workingDir, log_path=f"{c.name}/{restart_count}.log", stdin=c.stdin,
            stdin_once=c.stdinOnce, tty=c.tty, termination_message_path=c.terminationMessagePath)
        cfg.metadata.name, cfg.metadata.attempt = c.name, restart_count
        cfg.image.image = c.image
        cfg.envs.extend(cri_pb2.KeyValue(key=k, value=v) for k, v in env)
        try:
            cfg.mounts.extend(self.volumes.container_mounts(pod, c, rec.mounted or {}))
        except Exception as err:  # VolumeError: a subPath or mount that cannot be made
            raise ContainerConfigError(str(err)) from None
        if not self.config.hollow and not any(m.container_path == "/etc/hosts" for m in cfg.mounts):
            cfg.mounts.add(container_path="/etc/hosts", host_path=str(self.hosts_file(pod.metadata.uid)))
        cfg.labels.update(labels.container_labels(pod, c, init))
        cfg.annotations.update(labels.container_annotations(pod, c, restart_count))
        cfg.linux.resources.CopyFrom(container_resources(pod, c, self.node_memory))
        sc, psc = c.securityContext, pod.spec.securityContext
        lsc = cfg.linux.security_context
        lsc.capabilities.add_capabilities.extend(sc.capabilities.add)
        lsc.capabilities.drop_capabilities.extend(sc.capabilities.drop)
        lsc.privileged = sc.privileged
        uid = sc.runAsUser if sc.HasField("runAsUser") else psc.runAsUser if psc.HasField("runAsUser") else None
        gid = sc.runAsGroup if sc.HasField("runAsGroup") else psc.runAsGroup if psc.HasField("runAsGroup") else None
        if uid is not None:
            lsc.run_as_user.value = uid
        if gid is not None:
            lsc.run_as_group.value = gid
        lsc.readonly_rootfs = sc.readOnlyRootFilesystem
        lsc.supplemental_groups.extend(psc.supplementalGroups)
        if psc.HasField("fsGroup"):
            lsc.supplemental_groups.append(psc.fsGroup)
        lsc.no_new_privs = sc.HasField("allowPrivilegeEscalation") and not sc.allowPrivilegeEscalation
        lsc.namespace_options.CopyFrom(_namespaces(pod.spec))
        return cfg

    # ------------------------------------------------------------ killing

    async def kill_container(self, pod: core_pb2.Pod, rc: RuntimeContainer, spec: core_pb2.Container | None,
                             grace: int, message: str = "", *, pre_stop: bool = True) -> None:
        self.event(pod, "Normal", "Killing", message or f"Stopping container {rc.name}")
        started = self.clock.monotonic()
        if pre_stop and spec is not None and spec.lifecycle.HasField("preStop"):
            try:
                problem = await asyncio.wait_for(
                    self.hooks.run(spec.lifecycle.preStop, pod, spec, rc.id, pod.status.podIP or self.config.node_ip,
                                   grace), max(grace, MIN_GRACE) + 1)
            except TimeoutError:
                problem = f"PreStopHook timed out after {grace}s"
            if problem is not None:
                self.event(pod, "Warning", "FailedPreStopHook", problem)
        left = max(MIN_GRACE, int(grace - (self.clock.monotonic() - started)))
        try:
            await self.runtime.stop_container(rc.id, left)
        except CRIError as err:
            if not err.not_found:
                raise
        self.probes.forget_container(rc.id)

    async def kill_pod(self, rec: PodRecord, rp: RuntimePod, grace: int) -> None:
        """Stop every container (in parallel, each with its preStop hook),
        then the sandbox. Raises CRIError when the runtime failed."""
        pod = rec.pod
        specs = {(False, c.name): c for c in pod.spec.containers}
        specs.update({(True, c.name): c for c in pod.spec.initContainers})
        await asyncio.gather(*(self.kill_container(pod, c, specs.get((c.init, c.name)), grace)
                               for c in rp.running_containers))
        for box in rp.sandboxes:
            if box.state == cri_pb2.SANDBOX_READY:
                await self.runtime.stop_pod_sandbox(box.id)
        rec.killed = True

    async def remove_pod(self, rp: RuntimePod) -> None:
        for box in rp.sandboxes:
            await self.runtime.stop_pod_sandbox(box.id)
            await self.runtime.remove_pod_sandbox(box.id)
        for c in rp.containers:
            if not any(c.sandbox_id == b.id for b in rp.sandboxes):
                await self.runtime.remove_container(c.id)
        self.backoff.forget(f"{rp.uid}/")
        self.image_backoff.forget(f"{rp.uid}_")
