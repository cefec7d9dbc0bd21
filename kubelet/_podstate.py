"""What the runtime holds for one pod, read back from its labels (the
kubelet's kubecontainer.PodStatus).

The runtime is the source of truth: a pod's sandboxes and containers are
found by the `io.kubernetes.pod.uid` label, and each container's name,
kind (init or regular), restart count and spec hash come back from the
labels and annotations the kubelet wrote when it created it (kubelet/
_labels.py). That is what lets a restarted kubelet adopt running
containers instead of starting them again.

An exited container never changes again, so its status is cached by ID
(`StatusCache`) and a relist costs one ListContainers per pod plus one
ContainerStatus per container that is still running. A runtime call that
fails raises CRIError; the caller retries on its next sync and never
acts on a half-read state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from proto import cri_pb2

from . import _labels as labels
from ._runtime import CRIError, Runtime

RUNNING, EXITED, CREATED, UNKNOWN = (cri_pb2.CONTAINER_RUNNING, cri_pb2.CONTAINER_EXITED,
                                     cri_pb2.CONTAINER_CREATED, cri_pb2.CONTAINER_UNKNOWN)


@dataclass(slots=True)
class RuntimeContainer:
    id: str
    name: str
    init: bool
    state: int
    sandbox_id: str
    created_at: float = 0.0       # seconds since the epoch
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int = 0
    reason: str = ""
    message: str = ""
    image: str = ""
    image_ref: str = ""
    restart_count: int = 0
    hash: str = ""
    log_path: str = ""
    grace: int = 30

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    @property
    def exited(self) -> bool:
        return self.state in (EXITED, UNKNOWN)


@dataclass
class RuntimePod:
    uid: str
    sandboxes: list[cri_pb2.PodSandbox] = field(default_factory=list)   # newest first
    containers: list[RuntimeContainer] = field(default_factory=list)    # newest first
    ip: str = ""

    @property
    def sandbox(self) -> cri_pb2.PodSandbox | None:
        return self.sandboxes[0] if self.sandboxes else None

    @property
    def sandbox_ready(self) -> bool:
        box = self.sandbox
        return box is not None and box.state == cri_pb2.SANDBOX_READY

    def instances(self, name: str, init: bool) -> list[RuntimeContainer]:
        return [c for c in self.containers if c.name == name and c.init == init]

    def latest(self, name: str, init: bool) -> RuntimeContainer | None:
        for c in self.containers:
            if c.name == name and c.init == init:
                return c
        return None

    def previous(self, name: str, init: bool) -> RuntimeContainer | None:
        """The instance before the latest (kubectl logs --previous)."""
        found = self.instances(name, init)
        return found[1] if len(found) > 1 else None

    @property
    def running_containers(self) -> list[RuntimeContainer]:
        return [c for c in self.containers if c.running]

    @property
    def empty(self) -> bool:
        return not self.sandboxes and not self.containers


class StatusCache:
    """ContainerStatus of exited containers, by ID (they never change)."""

    def __init__(self) -> None:
        self._exited: dict[str, RuntimeContainer] = {}
        self._ips: dict[str, str] = {}

    def forget(self, container_ids: list[str], sandbox_ids: list[str]) -> None:
        for cid in container_ids:
            self._exited.pop(cid, None)
        for sid in sandbox_ids:
            self._ips.pop(sid, None)

    async def read(self, runtime: Runtime, uid: str) -> RuntimePod:
        sandboxes = await runtime.list_pod_sandbox({labels.POD_UID: uid})
        sandboxes.sort(key=lambda s: (s.created_at, s.metadata.attempt), reverse=True)
        found = await runtime.list_containers({labels.POD_UID: uid})
        pod = RuntimePod(uid, sandboxes)
        for c in found:
            cached = self._exited.get(c.id)
            if cached is not None:
                pod.containers.append(cached)
                continue
            try:
                status = await runtime.container_status(c.id)
            except CRIError as err:
                if err.not_found:  # removed between the list and now
                    continue
                raise
            rc = from_status(status, c.pod_sandbox_id)
            if rc.exited:
                self._exited[c.id] = rc
            pod.containers.append(rc)
        pod.containers.sort(key=lambda c: (c.created_at, c.restart_count), reverse=True)
        box = pod.sandbox
        if box is not None and box.state == cri_pb2.SANDBOX_READY:
            ip = self._ips.get(box.id)
            if ip is None:
                try:
                    ip = (await runtime.pod_sandbox_status(box.id)).network.ip
                except CRIError as err:
                    if not err.not_found:
                        raise
                    ip = ""
                self._ips[box.id] = ip
            pod.ip = ip
        return pod


def from_status(s: cri_pb2.ContainerStatus, sandbox_id: str) -> RuntimeContainer:
    ann = s.annotations
    try:
        grace = int(ann.get(labels.GRACE_PERIOD, "30"))
    except ValueError:
        grace = 30
    return RuntimeContainer(
        id=s.id, name=s.labels.get(labels.CONTAINER_NAME, s.metadata.name),
        init=s.labels.get(labels.CONTAINER_TYPE) == "init", state=s.state, sandbox_id=sandbox_id,
        created_at=s.created_at / 1e9, started_at=s.started_at / 1e9, finished_at=s.finished_at / 1e9,
        exit_code=s.exit_code, reason=s.reason, message=s.message, image=s.image.image, image_ref=s.image_ref,
        restart_count=labels.restart_count(ann), hash=ann.get(labels.CONTAINER_HASH, ""), log_path=s.log_path,
        grace=grace)
