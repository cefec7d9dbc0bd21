"""An in-memory container runtime for hollow nodes and unit tests (what
kubemark's fake runtime is to Kubernetes).

It implements the same `Runtime` interface as the CRI shim's client, so the
kubelet runs on it unchanged: sandboxes get an IP at once, containers
report Running as soon as they are started, and nothing executes. What a
real process would decide is scripted per container (by container name,
optionally narrowed to one pod) through `ContainerScript`: how long it
runs and with which exit code, OOM kills, exec results (which is what exec
probes and hooks see), HTTP and TCP probe answers, create/start failures,
how long it takes to stop after SIGTERM, its CPU and memory usage and its
log lines. A pod can carry its own scripts as annotations
(`hollow.kubelab.io/script.<container>: '{"run_seconds": 5, "exit_code": 1}'`),
which is how integration tests and benchmarks script a hollow node that
runs in another process. Image pulls succeed unless an image is listed in `pull_errors`.

Time comes from an injected clock and container exits are evaluated lazily
on every read, so a hollow node costs no task per container, and a test
with a FakeClock steps through minutes of container life without waiting.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import grpc
from google.protobuf.message import Message

from api import Clock, RealClock
from proto import cri_pb2

from ._runtime import CRIError

M = TypeVar("M", bound=Message)

RUNNING, EXITED, CREATED = cri_pb2.CONTAINER_RUNNING, cri_pb2.CONTAINER_EXITED, cri_pb2.CONTAINER_CREATED


@dataclass
class ContainerScript:
    """What a hollow container does. Change fields at any time; running
    containers see the change from then on."""

    run_seconds: float | None = None    # exits this long after it starts; None: runs until stopped
    exit_code: int = 0
    oom: bool = False                   # the exit is an OOM kill (137, OOMKilled)
    create_error: str = ""              # CreateContainer fails with this message
    start_error: str = ""               # StartContainer fails with this message
    exec_exit_codes: dict[tuple[str, ...], int] = field(default_factory=dict)
    exec_default: int = 0
    exec_output: bytes = b""
    http_status: dict[str, int] = field(default_factory=dict)  # by path
    http_default: int = 200
    tcp_open: bool = True
    term_seconds: float = 0.0           # how long it takes to exit after SIGTERM
    term_exit_code: int = 143
    cpu_nano_cores: int = 1_000_000
    memory_bytes: int = 8 * 1024 * 1024
    logs: list[str] = field(default_factory=list)


_DEFAULT_SCRIPT = ContainerScript()


@dataclass
class _Sandbox:
    status: cri_pb2.PodSandboxStatus
    config: cri_pb2.PodSandboxConfig


@dataclass
class _Container:
    status: cri_pb2.ContainerStatus
    sandbox_id: str
    pod_name: str
    runtime: HollowRuntime

    @property
    def script(self) -> ContainerScript:
        """Looked up on every use, so a script set after the container was
        created (or changed since) applies from then on."""
        return self.runtime._script_for(self.pod_name, self.status.metadata.name)


class HollowRuntime:
    """A `Runtime` with nothing underneath. One per hollow node."""

    def __init__(self, *, clock: Clock | None = None, pod_cidr: str = "10.244.0.0/16",
                 images: tuple[str, ...] = (), log_root: Path | None = None) -> None:
        self.clock = clock or RealClock()
        self.sandboxes: dict[str, _Sandbox] = {}
        self.containers: dict[str, _Container] = {}
        self.images: dict[str, cri_pb2.Image] = {}
        self.pull_errors: dict[str, str] = {}
        self.pull_seconds: dict[str, float] = {}   # how long a pull of an image takes (on the clock)
        self.pulls: list[str] = []
        self.attached: list[str] = []      # container ids, in the order attaches began
        self.scripts: dict[tuple[str, str], ContainerScript] = {}
        self.down = False                  # every call fails UNAVAILABLE, like a stopped shim
        self.log_root = log_root
        self._annotated: dict[str, list[tuple[str, str]]] = {}  # sandbox -> scripts from its pod's annotations
        self._ips = self._ip_source(pod_cidr)
        for image in images:
            self._add_image(image)

    # ------------------------------------------------------------ scripting

    def script(self, container: str, pod: str = "*") -> ContainerScript:
        """The script of `container` (in pod `pod`, or in any pod)."""
        return self.scripts.setdefault((pod, container), ContainerScript())

    def _script_for(self, pod: str, container: str) -> ContainerScript:
        return self.scripts.get((pod, container)) or self.scripts.get(("*", container)) or _DEFAULT_SCRIPT

    def kill(self, container_id: str, exit_code: int = 137, reason: str = "") -> None:
        """The process dies now (a crash, the OOM killer)."""
        rec = self.containers[container_id]
        if rec.status.state == RUNNING:
            self._exit(rec, exit_code, reason)

    def running(self, pod: str | None = None) -> list[cri_pb2.ContainerStatus]:
        self._advance_all()
        return [c.status for c in self.containers.values()
                if c.status.state == RUNNING and (pod is None or c.pod_name == pod)]

    # ------------------------------------------------------------ internals

    def _ip_source(self, cidr: str) -> Iterator[str]:
        """Addresses .2, .3, ... of the pod CIDR, round and round (lazily:
        a thousand hollow nodes must not hold a thousand address lists)."""
        net = ipaddress.ip_network(cidr, strict=False)
        size = max(1, net.num_addresses - 3)
        return (str(net.network_address + 2 + i % size) for i in itertools.count())

    def _check(self) -> None:
        if self.down:
            raise CRIError(grpc.StatusCode.UNAVAILABLE, "connection refused: the runtime is down")

    def _now(self) -> int:
        return int(self.clock.now() * 1e9)

    def _sandbox(self, sandbox_id: str) -> _Sandbox:
        found = self.sandboxes.get(sandbox_id)
        if found is None:
            raise CRIError(grpc.StatusCode.NOT_FOUND, f"sandbox {sandbox_id!r} not found")
        return found

    def _container(self, container_id: str) -> _Container:
        found = self.containers.get(container_id)
        if found is None:
            raise CRIError(grpc.StatusCode.NOT_FOUND, f"container {container_id!r} not found")
        self._advance(found)
        return found

    def _advance(self, rec: _Container) -> None:
        s = rec.status
        if s.state != RUNNING or rec.script.run_seconds is None:
            return
        ends = s.started_at + int(rec.script.run_seconds * 1e9)
        if self._now() >= ends:
            code, reason = (137, "OOMKilled") if rec.script.oom else (rec.script.exit_code, "")
            self._exit(rec, code, reason, ends)

    def _advance_all(self) -> None:
        for rec in self.containers.values():
            self._advance(rec)

    def _exit(self, rec: _Container, code: int, reason: str = "", at: int | None = None) -> None:
        s = rec.status
        s.state = EXITED
        s.exit_code = code
        s.finished_at = at or self._now()
        s.reason = reason or ("Completed" if code == 0 else "Error")

    def _add_image(self, image: str) -> cri_pb2.Image:
        ref = _normalize(image)
        found = self.images.get(ref)
        if found is None:
            digest = hashlib.sha256(ref.encode()).hexdigest()
            found = cri_pb2.Image(id=f"sha256:{digest}", repo_tags=[ref],
                                  repo_digests=[f"{ref.rsplit(':', 1)[0]}@sha256:{digest}"], size=5 * 1024 * 1024)
            self.images[ref] = found
        return found

    # ------------------------------------------------------------ RuntimeService

    async def version(self) -> cri_pb2.VersionResponse:
        self._check()
        return cri_pb2.VersionResponse(version="0.1.0", runtime_name="hollow", runtime_version="0.1.0",
                                       runtime_api_version="v1")

    async def status(self) -> cri_pb2.StatusResponse:
        self._check()
        return cri_pb2.StatusResponse(conditions=[cri_pb2.RuntimeCondition(type="RuntimeReady", status=True),
                                                  cri_pb2.RuntimeCondition(type="NetworkReady", status=True)])

    async def update_runtime_config(self, pod_cidr: str) -> None:
        self._check()
        if pod_cidr:
            self._ips = self._ip_source(pod_cidr)

    async def run_pod_sandbox(self, config: cri_pb2.PodSandboxConfig) -> str:
        self._check()
        sid = uuid.uuid4().hex
        host_network = config.linux.security_context.namespace_options.network == cri_pb2.NODE
        status = cri_pb2.PodSandboxStatus(id=sid, metadata=config.metadata, state=cri_pb2.SANDBOX_READY,
                                          created_at=self._now(), labels=config.labels,
                                          annotations=config.annotations)
        status.network.ip = "" if host_network else next(self._ips)
        status.linux.namespaces.options.CopyFrom(config.linux.security_context.namespace_options)
        self.sandboxes[sid] = _Sandbox(status, config)
        return sid

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        self._check()
        box = self.sandboxes.get(sandbox_id)
        if box is None:
            return
        for rec in self.containers.values():
            if rec.sandbox_id == sandbox_id:
                self._advance(rec)
                if rec.status.state == RUNNING:
                    self._exit(rec, 137)
        box.status.state = cri_pb2.SANDBOX_NOTREADY

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        self._check()
        self.sandboxes.pop(sandbox_id, None)
        for key in self._annotated.pop(sandbox_id, []):
            self.scripts.pop(key, None)
        for cid in [cid for cid, rec in self.containers.items() if rec.sandbox_id == sandbox_id]:
            del self.containers[cid]

    async def pod_sandbox_status(self, sandbox_id: str) -> cri_pb2.PodSandboxStatus:
        self._check()
        return _copy(self._sandbox(sandbox_id).status)

    async def list_pod_sandbox(self, labels: dict[str, str] | None = None) -> list[cri_pb2.PodSandbox]:
        self._check()
        out = []
        for box in self.sandboxes.values():
            s = box.status
            if labels and any(s.labels.get(k) != v for k, v in labels.items()):
                continue
            out.append(cri_pb2.PodSandbox(id=s.id, metadata=s.metadata, state=s.state, created_at=s.created_at,
                                          labels=s.labels, annotations=s.annotations))
        return out

    async def create_container(self, sandbox_id: str, config: cri_pb2.ContainerConfig,
                               sandbox_config: cri_pb2.PodSandboxConfig) -> str:
        self._check()
        box = self._sandbox(sandbox_id)
        if box.status.state != cri_pb2.SANDBOX_READY:
            raise CRIError(grpc.StatusCode.FAILED_PRECONDITION, f"sandbox {sandbox_id} is not ready")
        pod_name = box.config.metadata.name
        raw = box.config.annotations.get(SCRIPT_ANNOTATION + config.metadata.name)
        if raw and (pod_name, config.metadata.name) not in self.scripts:
            self.scripts[(pod_name, config.metadata.name)] = script_from_annotation(raw, config.metadata.name)
            self._annotated.setdefault(sandbox_id, []).append((pod_name, config.metadata.name))
        script = self._script_for(pod_name, config.metadata.name)
        if script.create_error:
            raise CRIError(grpc.StatusCode.INVALID_ARGUMENT, script.create_error)
        if _normalize(config.image.image) not in self.images:
            raise CRIError(grpc.StatusCode.NOT_FOUND, f"image {config.image.image!r} not found")
        cid = uuid.uuid4().hex
        log_path = ""
        if box.config.log_directory and config.log_path:
            log_path = str(Path(box.config.log_directory) / config.log_path)
        status = cri_pb2.ContainerStatus(id=cid, metadata=config.metadata, state=CREATED, created_at=self._now(),
                                         image=config.image, image_ref=self.images[_normalize(config.image.image)].id,
                                         labels=config.labels, annotations=config.annotations, mounts=config.mounts,
                                         log_path=log_path, resources=config.linux.resources)
        self.containers[cid] = _Container(status, sandbox_id, pod_name, self)
        return cid

    async def start_container(self, container_id: str) -> None:
        self._check()
        rec = self._container(container_id)
        if rec.status.state != CREATED:
            raise CRIError(grpc.StatusCode.FAILED_PRECONDITION, f"container {container_id} is not in created state")
        if rec.script.start_error:
            self._exit(rec, 128, "StartError")
            rec.status.message = rec.script.start_error
            raise CRIError(grpc.StatusCode.UNKNOWN, rec.script.start_error)
        rec.status.state = RUNNING
        rec.status.started_at = self._now()
        if rec.script.logs and rec.status.log_path:
            path = Path(rec.status.log_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            stamp = rfc3339_nano(rec.status.started_at)
            with path.open("a") as fh:
                for line in rec.script.logs:
                    fh.write(f"{stamp} stdout F {line}\n")

    async def stop_container(self, container_id: str, timeout: int) -> None:
        self._check()
        rec = self._container(container_id)
        if rec.status.state == CREATED:
            self._exit(rec, 0)
            return
        if rec.status.state != RUNNING:
            return
        takes = rec.script.term_seconds
        if takes > timeout:
            await self.clock.sleep(timeout)
            self._advance(rec)
            if rec.status.state == RUNNING:
                self._exit(rec, 137)
            return
        if takes > 0:
            await self.clock.sleep(takes)
        self._advance(rec)
        if rec.status.state == RUNNING:
            self._exit(rec, rec.script.term_exit_code)

    async def remove_container(self, container_id: str) -> None:
        self._check()
        self.containers.pop(container_id, None)

    async def list_containers(self, labels: dict[str, str] | None = None) -> list[cri_pb2.Container]:
        self._check()
        out = []
        for rec in self.containers.values():
            s = rec.status
            if labels and any(s.labels.get(k) != v for k, v in labels.items()):
                continue
            self._advance(rec)
            out.append(cri_pb2.Container(id=s.id, pod_sandbox_id=rec.sandbox_id, metadata=s.metadata, image=s.image,
                                         image_ref=s.image_ref, state=s.state, created_at=s.created_at,
                                         labels=s.labels, annotations=s.annotations))
        return out

    async def container_status(self, container_id: str) -> cri_pb2.ContainerStatus:
        self._check()
        return _copy(self._container(container_id).status)

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: int) -> cri_pb2.ExecSyncResponse:
        self._check()
        rec = self._container(container_id)
        if rec.status.state != RUNNING:
            raise CRIError(grpc.StatusCode.FAILED_PRECONDITION, f"container {container_id} is not running")
        code = rec.script.exec_exit_codes.get(tuple(cmd), rec.script.exec_default)
        return cri_pb2.ExecSyncResponse(stdout=rec.script.exec_output, exit_code=code)

    async def exec(self, requests: AsyncIterator[cri_pb2.ExecRequest]) -> AsyncIterator[cri_pb2.ExecResponse]:
        self._check()
        first = await anext(requests)
        start = first.start
        result = await self.exec_sync(start.container_id, list(start.cmd), 0)
        async for _ in requests:  # stdin is read and dropped until the client closes it
            pass
        if result.stdout:
            yield cri_pb2.ExecResponse(stdout=result.stdout)
        yield cri_pb2.ExecResponse(exit_code=result.exit_code)

    async def attach(self, requests: AsyncIterator[cri_pb2.AttachRequest]) -> AsyncIterator[cri_pb2.ExecResponse]:
        """A hollow process prints nothing and reads nothing: the stream
        stays open, silent, until the container exits, then gives its code."""
        self._check()
        first = await anext(requests)
        rec = self._container(first.start.container_id)
        if rec.status.state != RUNNING:
            raise CRIError(grpc.StatusCode.FAILED_PRECONDITION, f"container {rec.status.id} is not running")
        self.attached.append(rec.status.id)
        drain = asyncio.ensure_future(self._drain(requests))
        try:
            while self._current(rec).state == RUNNING:
                await self.clock.sleep(0.5)
        finally:
            drain.cancel()
        yield cri_pb2.ExecResponse(exit_code=rec.status.exit_code)

    @staticmethod
    async def _drain(requests: AsyncIterator[cri_pb2.AttachRequest]) -> None:
        async for _ in requests:
            pass

    def _current(self, rec: _Container) -> cri_pb2.ContainerStatus:
        self._advance(rec)
        return rec.status

    async def list_container_stats(self) -> list[cri_pb2.ContainerStats]:
        self._check()
        now = self._now()
        out = []
        for rec in self.containers.values():
            self._advance(rec)
            s = rec.status
            if s.state != RUNNING:
                continue
            stats = cri_pb2.ContainerStats()
            stats.attributes.id = s.id
            stats.attributes.metadata.CopyFrom(s.metadata)
            stats.attributes.labels.update(s.labels)
            stats.cpu.timestamp = now
            stats.cpu.usage_nano_cores.value = rec.script.cpu_nano_cores
            stats.cpu.usage_core_nano_seconds.value = rec.script.cpu_nano_cores * max(0, now - s.started_at) // 10**9
            stats.memory.timestamp = now
            stats.memory.working_set_bytes.value = rec.script.memory_bytes
            stats.memory.usage_bytes.value = rec.script.memory_bytes
            out.append(stats)
        return out

    # ------------------------------------------------------------ ImageService

    async def list_images(self) -> list[cri_pb2.Image]:
        self._check()
        return list(self.images.values())

    async def image_status(self, image: str) -> cri_pb2.Image | None:
        self._check()
        return self.images.get(_normalize(image))

    async def pull_image(self, image: str, sandbox_config: cri_pb2.PodSandboxConfig | None = None) -> str:
        self._check()
        self.pulls.append(image)
        seconds = self.pull_seconds.get(image) or self.pull_seconds.get(_normalize(image))
        if seconds:
            await self.clock.sleep(seconds)
        error = self.pull_errors.get(image) or self.pull_errors.get(_normalize(image))
        if error:
            raise CRIError(grpc.StatusCode.UNAVAILABLE, error)
        return self._add_image(image).id

    async def remove_image(self, image: str) -> None:
        self._check()
        self.images.pop(_normalize(image), None)

    async def image_fs_info(self) -> cri_pb2.ImageFsInfoResponse:
        self._check()
        used = sum(i.size for i in self.images.values())
        resp = cri_pb2.ImageFsInfoResponse()
        fs = resp.image_filesystems.add(timestamp=self._now())
        fs.used_bytes.value = used
        return resp

    # ------------------------------------------------------------ probes over the "network"

    async def http_get(self, pod: str, container: str, url: str, headers: list[tuple[str, str]],
                       timeout: float) -> int:
        """What an HTTP GET to this container answers (its status code)."""
        script = self._script_for(pod, container)
        return script.http_status.get(urlsplit(url).path or "/", script.http_default)

    async def tcp_connect(self, pod: str, container: str, host: str, port: int, timeout: float) -> None:
        if not self._script_for(pod, container).tcp_open:
            raise ConnectionRefusedError(f"dial tcp {host}:{port}: connect: connection refused")


SCRIPT_ANNOTATION = "hollow.kubelab.io/script."
_SCRIPT_FIELDS: dict[str, type | tuple[type, ...]] = {
                  "run_seconds": (int, float, type(None)), "exit_code": int, "oom": bool, "create_error": str,
                  "start_error": str, "exec_default": int, "http_default": int, "tcp_open": bool,
                  "term_seconds": (int, float), "term_exit_code": int, "cpu_nano_cores": int, "memory_bytes": int,
                  "logs": list}


def script_from_annotation(raw: str, container: str) -> ContainerScript:
    """A ContainerScript from the pod annotation `hollow.kubelab.io/script.<container>`
    (JSON of ContainerScript fields): how tests and benchmarks script hollow
    containers from a manifest, like kwok's stages."""
    where = f"annotation {SCRIPT_ANNOTATION}{container}"
    try:
        fields = json.loads(raw)
    except ValueError as err:
        raise CRIError(grpc.StatusCode.INVALID_ARGUMENT, f"{where}: invalid JSON: {err}") from None
    if not isinstance(fields, dict):
        raise CRIError(grpc.StatusCode.INVALID_ARGUMENT, f"{where}: want a JSON object")
    for name, value in fields.items():
        want = _SCRIPT_FIELDS.get(name)
        if want is None:
            raise CRIError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"{where}: unknown field {name!r}; known: {', '.join(sorted(_SCRIPT_FIELDS))}")
        if not isinstance(value, want) or (isinstance(value, bool) and want in (int, (int, float))):
            raise CRIError(grpc.StatusCode.INVALID_ARGUMENT, f"{where}: {name}: invalid value {value!r}")
    return ContainerScript(**fields)


def _normalize(image: str) -> str:
    """docker.io/library/busybox:latest for busybox, as runtimes name images."""
    name = image
    if "@" not in name and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = "docker.io/library/" + name
    elif "." not in first and ":" not in first and first != "localhost":
        name = "docker.io/" + name
    return name


def rfc3339_nano(nanos: int) -> str:
    from datetime import UTC, datetime
    seconds, rest = divmod(nanos, 10**9)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest:09d}Z"


def _copy(msg: M) -> M:
    new = type(msg)()
    new.CopyFrom(msg)
    return new
