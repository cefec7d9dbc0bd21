"""The pod status the kubelet reports (generateAPIPodStatus), and the status
manager that writes it through pods/status.

`generate_status` is a pure function of the pod, what the runtime holds
for it (RuntimePod), the reasons the last sync could not start a
container (ErrImagePull, CreateContainerConfigError, CrashLoopBackOff,
...) and the probe results:

* container statuses per spec container: running, terminated (Completed,
  Error, OOMKilled from the runtime), or waiting - ContainerCreating,
  PodInitializing (app containers while init containers run), or the
  cached start failure; an exited container that will be restarted shows
  waiting with its last termination in `lastState`;
* the phase as Kubernetes' getPhase counts those statuses;
* conditions PodScheduled, Initialized, ContainersReady and Ready
  (lastTransitionTime kept while a condition's status stays the same);
* podIP/podIPs, hostIP/hostIPs, startTime, qosClass.

`StatusManager.set` writes only a status that differs from the last one it
wrote, onto the freshest copy of the pod it has; a Conflict re-reads the
pod and tries again, NotFound means the pod is gone (nothing to report).
A failed write is logged and retried on the next sync: the status is
always regenerated from the runtime, never patched incrementally.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from api import Clock, StatusError, rfc3339
from client import Clientset
from proto import core_pb2, cri_pb2

from . import _qos
from ._podstate import RuntimeContainer, RuntimePod

log = logging.getLogger(__name__)

CONTAINER_CREATING = "ContainerCreating"
POD_INITIALIZING = "PodInitializing"
CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"

Ready = Callable[[core_pb2.Container, RuntimeContainer], bool]


@dataclass
class PodRecord:
    """What the kubelet remembers of a pod between syncs (in memory only: a
    restarted kubelet regenerates all of it from the runtime)."""

    pod: core_pb2.Pod
    waiting: dict[tuple[bool, str], tuple[str, str]] = field(default_factory=dict)  # (init, name) -> reason, message
    start_time: str = ""
    terminal: str = ""          # Succeeded / Failed once the pod will never run again
    killed: bool = False        # every container and the sandbox are stopped
    evicted: str = ""           # the eviction message
    mirror: core_pb2.Pod | None = None   # a static pod's mirror in the apiserver
    mounted: dict[str, Any] | None = None               # volume name -> MountedVolume, once mounted
    sandbox_config: cri_pb2.PodSandboxConfig | None = None  # of the current sandbox
    hosts_ip: str = ""          # the pod IP its /etc/hosts file was written for
    refreshed: float = 0.0      # monotonic time the volumes were last refreshed
    removed: bool = False       # deleted from the API and cleaned up: nothing more to do


def should_restart(policy: str, rc: RuntimeContainer) -> bool:
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return rc.exit_code != 0
    return True


def _terminated(rc: RuntimeContainer, runtime_name: str) -> core_pb2.ContainerState:
    state = core_pb2.ContainerState()
    t = state.terminated
    t.exitCode = rc.exit_code
    t.reason = rc.reason or ("Completed" if rc.exit_code == 0 else "Error")
    t.message = rc.message
    t.startedAt = rfc3339(rc.started_at) if rc.started_at else ""
    t.finishedAt = rfc3339(rc.finished_at) if rc.finished_at else ""
    t.containerID = f"{runtime_name}://{rc.id}"
    return state


def container_statuses(pod: core_pb2.Pod, rp: RuntimePod, rec: PodRecord, init: bool, ready: Ready,
                       started: Ready, runtime_name: str) -> list[core_pb2.ContainerStatus]:
    specs = pod.spec.initContainers if init else pod.spec.containers
    default = POD_INITIALIZING if pod.spec.initContainers else CONTAINER_CREATING
    policy = "Always" if not init and not pod.spec.restartPolicy else pod.spec.restartPolicy or "Always"
    if init and policy == "Always":
        policy = "OnFailure"  # init containers are restarted only when they fail
    out = []
    for spec in specs:
        cs = core_pb2.ContainerStatus(name=spec.name, image=spec.image, ready=False, restartCount=0)
        latest = rp.latest(spec.name, init)
        waiting = rec.waiting.get((init, spec.name))
        if latest is None:
            cs.state.waiting.reason, cs.state.waiting.message = waiting or (default, "")
            cs.started = False
            out.append(cs)
            continue
        cs.restartCount = latest.restart_count
        cs.imageID = latest.image_ref
        cs.containerID = f"{runtime_name}://{latest.id}"
        previous = rp.previous(spec.name, init)
        if previous is not None and previous.exited:
            cs.lastState.CopyFrom(_terminated(previous, runtime_name))
        if latest.running:
            cs.state.running.startedAt = rfc3339(latest.started_at)
            cs.started = started(spec, latest)
            cs.ready = cs.started and ready(spec, latest)
        elif latest.exited:
            cs.started = False
            if waiting is not None and not (rec.terminal or rec.killed) and should_restart(policy, latest):
                cs.lastState.CopyFrom(_terminated(latest, runtime_name))
                cs.state.waiting.reason, cs.state.waiting.message = waiting
            else:
                cs.state.CopyFrom(_terminated(latest, runtime_name))
        else:  # created, not started yet
            cs.started = False
            cs.state.waiting.reason, cs.state.waiting.message = waiting or (default, "")
        out.append(cs)
    return out


def pod_phase(pod: core_pb2.Pod, inits: list[core_pb2.ContainerStatus], apps: list[core_pb2.ContainerStatus],
              terminal: bool) -> str:
    """Kubernetes' getPhase over the generated container statuses."""
    pending_init = failed_init = 0
    for cs in inits:
        if cs.state.HasField("running"):
            pending_init += 1
        elif cs.state.HasField("terminated"):
            failed_init += cs.state.terminated.exitCode != 0
        elif cs.lastState.HasField("terminated"):
            failed_init += cs.lastState.terminated.exitCode != 0
        else:
            pending_init += 1
    running = waiting = stopped = succeeded = 0
    for cs in apps:
        if cs.state.HasField("running"):
            running += 1
        elif cs.state.HasField("terminated"):
            stopped += 1
            succeeded += cs.state.terminated.exitCode == 0
        elif cs.lastState.HasField("terminated"):
            stopped += 1
        else:
            waiting += 1
    policy = pod.spec.restartPolicy or "Always"
    if failed_init and policy == "Never":
        return "Failed"
    if (pending_init and not terminal) or waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if terminal:
            return "Succeeded" if stopped == succeeded else "Failed"
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Failed" if policy == "Never" else "Running"
    return "Pending"


def _condition(old: core_pb2.PodStatus, type_: str, status: bool, now: str, reason: str = "",
               message: str = "") -> core_pb2.PodCondition:
    value = "True" if status else "False"
    since = now
    for c in old.conditions:
        if c.type == type_ and c.status == value:
            since = c.lastTransitionTime or now
    return core_pb2.PodCondition(type=type_, status=value, lastTransitionTime=since, reason=reason, message=message)


def generate_status(pod: core_pb2.Pod, rp: RuntimePod, rec: PodRecord, *, ready: Ready, started: Ready,
                    host_ip: str, runtime_name: str, now: float) -> core_pb2.PodStatus:
    old = pod.status
    stamp = rfc3339(now)
    inits = container_statuses(pod, rp, rec, True, ready, started, runtime_name)
    apps = container_statuses(pod, rp, rec, False, ready, started, runtime_name)
    status = core_pb2.PodStatus(initContainerStatuses=inits, containerStatuses=apps)
    status.phase = rec.terminal or pod_phase(pod, inits, apps, bool(rec.terminal) or rec.killed)
    if rec.evicted:
        status.phase, status.reason, status.message = "Failed", "Evicted", rec.evicted
    status.hostIP = host_ip
    status.hostIPs.add(ip=host_ip)
    ip = host_ip if pod.spec.hostNetwork else rp.ip
    if not ip and old.podIP and not rec.killed:
        ip = old.podIP  # the sandbox is being recreated; keep the address until it has a new one
    if ip:
        status.podIP = ip
        status.podIPs.add(ip=ip)
    status.startTime = old.startTime or rec.start_time or stamp
    rec.start_time = status.startTime
    status.qosClass = old.qosClass or _qos.qos_class(pod)

    scheduled = [c for c in old.conditions if c.type == "PodScheduled"]
    status.conditions.extend(scheduled or [_condition(old, "PodScheduled", True, stamp)])
    incomplete = [c.name for c in inits if not (c.state.HasField("terminated") and c.state.terminated.exitCode == 0)]
    if incomplete and status.phase != "Succeeded":
        status.conditions.append(_condition(old, "Initialized", False, stamp, "ContainersNotInitialized",
                                            f"containers with incomplete status: [{' '.join(incomplete)}]"))
    else:
        status.conditions.append(_condition(old, "Initialized", True, stamp))
    unready = [c.name for c in apps if not c.ready]
    if status.phase == "Succeeded":
        containers_ready = _condition(old, "ContainersReady", False, stamp, "PodCompleted")
        ready_cond = _condition(old, "Ready", False, stamp, "PodCompleted")
    elif unready:
        message = f"containers with unready status: [{' '.join(unready)}]"
        containers_ready = _condition(old, "ContainersReady", False, stamp, "ContainersNotReady", message)
        ready_cond = _condition(old, "Ready", False, stamp, "ContainersNotReady", message)
    else:
        containers_ready = _condition(old, "ContainersReady", True, stamp)
        gates = [g.conditionType for g in pod.spec.readinessGates]
        missing = [g for g in gates if not any(c.type == g and c.status == "True" for c in old.conditions)]
        if missing:
            ready_cond = _condition(old, "Ready", False, stamp, "ReadinessGatesNotReady",
                                    f"corresponding condition of pod readiness gate \"{missing[0]}\" does not exist.")
        else:
            ready_cond = _condition(old, "Ready", True, stamp)
    status.conditions.extend([containers_ready, ready_cond])
    if rec.evicted:
        status.conditions.append(_condition(old, "DisruptionTarget", True, stamp, "TerminationByKubelet",
                                            rec.evicted))
    known = {c.type for c in status.conditions}
    status.conditions.extend(c for c in old.conditions if c.type not in known and c.type != "DisruptionTarget")
    return status


class StatusManager:
    """Writes pod statuses that changed; remembers what it wrote by uid."""

    def __init__(self, clientset: Clientset, clock: Clock) -> None:
        self.clientset = clientset
        self.clock = clock
        self._sent: dict[str, core_pb2.PodStatus] = {}

    def sent(self, uid: str) -> core_pb2.PodStatus | None:
        return self._sent.get(uid)

    def forget(self, uid: str) -> None:
        self._sent.pop(uid, None)

    async def set(self, target: core_pb2.Pod, status: core_pb2.PodStatus, uid: str = "") -> bool:
        """Write `status` onto `target` (the API pod: the pod itself, or a
        static pod's mirror); `uid` keys the memory (the pod's own uid).
        True when the apiserver holds this status afterwards."""
        uid = uid or target.metadata.uid
        if self._sent.get(uid) == status:
            return True
        client = self.clientset.resource(core_pb2.Pod, target.metadata.namespace)
        pod = core_pb2.Pod()
        pod.CopyFrom(target)
        for attempt in range(3):
            pod.status.CopyFrom(status)
            try:
                await client.update_status(pod)
            except StatusError as err:
                if err.reason == "NotFound":
                    return False
                if err.reason == "Conflict" and attempt < 2:
                    try:
                        pod = await client.get(target.metadata.name)
                    except StatusError:
                        return False
                    if pod.metadata.uid != target.metadata.uid:
                        return False
                    continue
                log.warning("updating status of pod %s/%s: %s", target.metadata.namespace, target.metadata.name,
                            err)
                return False
            self._sent[uid] = status
            return True
        return False
