"""Probes: startup, liveness and readiness, each run by its own worker.

A worker per (pod, container, probe kind) ticks every `periodSeconds` and
keeps a result per container ID:

* nothing is probed before `initialDelaySeconds` have passed since the
  container started, and liveness and readiness wait until a startup
  probe (if any) has succeeded;
* a result changes only after `successThreshold` successes or
  `failureThreshold` failures in a row; each attempt is bounded by
  `timeoutSeconds`;
* readiness starts out failed, liveness and startup successful/unknown;
  a new container (its ID changed: it was restarted) starts over;
* every failed attempt is an Unhealthy event ("Liveness probe failed:
  ..."), as Kubernetes records them;
* after a liveness or startup failure the worker holds until the pod
  worker has replaced the container, so one failure is one restart.

A changed result wakes the pod's worker (`on_change`), which kills and
restarts on liveness/startup failure and sets the ready flags from
readiness. A probe that cannot even be attempted (an unknown named port)
is a failure whose message says why; the kubelet never crashes on one.

Probes act through the runtime (exec) and a `Network` (httpGet,
tcpSocket, grpc), so hollow nodes answer them from their scripts.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

from api import Clock, value_of
from proto import core_pb2

from ._network import Network
from ._runtime import CRIError, Runtime

log = logging.getLogger(__name__)

SUCCESS, FAILURE, UNKNOWN = "Success", "Failure", "Unknown"
STARTUP, LIVENESS, READINESS = "Startup", "Liveness", "Readiness"


def resolve_port(port: object, container: core_pb2.Container) -> int:
    value = value_of(port)  # type: ignore[arg-type]
    if isinstance(value, int):
        return value
    if value is None:
        raise ValueError("port is not set")
    if value.isdigit():
        return int(value)
    for p in container.ports:
        if p.name == value:
            return p.containerPort
    raise ValueError(f"container {container.name!r} has no port named {value!r}")


def http_request(action: core_pb2.HTTPGetAction, container: core_pb2.Container,
                 pod_ip: str) -> tuple[str, list[tuple[str, str]]]:
    port = resolve_port(action.port, container)
    host = action.host or pod_ip
    scheme = (action.scheme or "HTTP").lower()
    path = action.path or "/"
    if not path.startswith("/"):
        path = "/" + path
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"{scheme}://{netloc}{path}", [(h.name, h.value) for h in action.httpHeaders]


class Prober:
    """Runs one probe attempt and says what it found."""

    def __init__(self, runtime: Runtime, network: Network) -> None:
        self.runtime = runtime
        self.network = network

    async def probe(self, probe: core_pb2.Probe, pod: core_pb2.Pod, container: core_pb2.Container,
                    container_id: str, pod_ip: str) -> tuple[str, str]:
        timeout = probe.timeoutSeconds or 1
        try:
            if probe.HasField("exec"):
                resp = await asyncio.wait_for(
                    self.runtime.exec_sync(container_id, list(probe.exec.command), timeout), timeout + 1)
                if resp.exit_code == 0:
                    return SUCCESS, ""
                out = (resp.stdout + resp.stderr).decode(errors="replace").strip()
                return FAILURE, f"command {list(probe.exec.command)} exited with {resp.exit_code}: {out}".strip()
            if probe.HasField("httpGet"):
                url, headers = http_request(probe.httpGet, container, pod_ip)
                code = await self.network.http_get(pod.metadata.name, container.name, url, headers, timeout)
                if 200 <= code < 400:
                    return SUCCESS, ""
                return FAILURE, f"HTTP probe failed with statuscode: {code}"
            if probe.HasField("tcpSocket"):
                port = resolve_port(probe.tcpSocket.port, container)
                host = probe.tcpSocket.host or pod_ip
                await self.network.tcp_connect(pod.metadata.name, container.name, host, port, timeout)
                return SUCCESS, ""
            if probe.HasField("grpc"):
                await self.network.tcp_connect(pod.metadata.name, container.name, pod_ip, probe.grpc.port, timeout)
                return SUCCESS, ""
        except TimeoutError:
            return FAILURE, f"probe timed out after {timeout}s"
        except (OSError, CRIError, ValueError) as err:
            return FAILURE, str(err)
        return UNKNOWN, "the probe has no handler"


@dataclass
class ProbeTarget:
    """What a worker needs to know of its container at each tick."""

    pod: core_pb2.Pod
    container_id: str
    running: bool
    started_at: float
    pod_ip: str


Lookup = Callable[[str, str], "ProbeTarget | None"]


class ProbeManager:
    def __init__(self, prober: Prober, clock: Clock, lookup: Lookup, on_change: Callable[[str], None], *,
                 rand: Callable[[], float] = random.random,
                 on_failure: Callable[[core_pb2.Pod, str], None] | None = None) -> None:
        self.prober = prober
        self.clock = clock
        self.lookup = lookup                 # (pod uid, container name) -> target, None when the pod is gone
        self.on_change = on_change           # wakes the pod worker of a uid
        self.rand = rand
        self.on_failure = on_failure         # (pod, message): the Unhealthy event
        self.results: dict[tuple[str, str], str] = {}   # (container ID, kind) -> result
        self.messages: dict[tuple[str, str], str] = {}
        self._workers: dict[tuple[str, str, str], asyncio.Task[None]] = {}

    def add_pod(self, pod: core_pb2.Pod) -> None:
        uid = pod.metadata.uid
        for c in pod.spec.containers:
            for kind, probe in ((STARTUP, c.startupProbe), (LIVENESS, c.livenessProbe),
                                (READINESS, c.readinessProbe)):
                key = (uid, c.name, kind)
                if c.HasField(_FIELD[kind]) and key not in self._workers:
                    self._workers[key] = asyncio.create_task(self._worker(uid, c, kind, probe),
                                                             name=f"probe {kind} {pod.metadata.name}/{c.name}")

    def remove_pod(self, uid: str) -> None:
        for key in [k for k in self._workers if k[0] == uid]:
            self._workers.pop(key).cancel()

    async def stop(self) -> None:
        tasks = list(self._workers.values())
        self._workers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def result(self, container_id: str, kind: str) -> str | None:
        return self.results.get((container_id, kind))

    def ready(self, container: core_pb2.Container, container_id: str) -> bool:
        if not container.HasField("readinessProbe"):
            return True
        return self.results.get((container_id, READINESS)) == SUCCESS

    def started(self, container: core_pb2.Container, container_id: str) -> bool:
        if not container.HasField("startupProbe"):
            return True
        return self.results.get((container_id, STARTUP)) == SUCCESS

    def forget_container(self, container_id: str) -> None:
        for kind in (STARTUP, LIVENESS, READINESS):
            self.results.pop((container_id, kind), None)
            self.messages.pop((container_id, kind), None)

    def _set(self, uid: str, container_id: str, kind: str, result: str, message: str = "") -> None:
        key = (container_id, kind)
        self.messages[key] = message
        if self.results.get(key) != result:
            self.results[key] = result
            self.on_change(uid)

    async def _worker(self, uid: str, container: core_pb2.Container, kind: str, probe: core_pb2.Probe) -> None:
        period = max(1, probe.periodSeconds or 10)
        success_threshold = max(1, probe.successThreshold or 1)
        failure_threshold = max(1, probe.failureThreshold or 3)
        current_id = ""
        on_hold = False
        last, run = UNKNOWN, 0
        await self.clock.sleep(self.rand() * period)
        while True:
            target = self.lookup(uid, container.name)
            if target is None:
                return
            if target.container_id and target.container_id != current_id:
                current_id, on_hold, last, run = target.container_id, False, UNKNOWN, 0
                initial = {READINESS: FAILURE, LIVENESS: SUCCESS, STARTUP: UNKNOWN}[kind]
                self.results[(current_id, kind)] = initial
            if current_id and not on_hold and await self._tick(uid, container, kind, probe, target, current_id):
                result, message = await self.prober.probe(probe, target.pod, container, current_id, target.pod_ip)
                if result == FAILURE and self.on_failure is not None:
                    self.on_failure(target.pod, f"{kind} probe failed: {message}")
                run = run + 1 if result == last else 1
                last = result
                threshold = failure_threshold if result == FAILURE else success_threshold
                if result != UNKNOWN and run >= threshold:
                    self._set(uid, current_id, kind, result, message)
                    if result == FAILURE and kind in (LIVENESS, STARTUP):
                        on_hold, run = True, 0
                elif result == FAILURE:
                    self.messages[(current_id, kind)] = message
            await self.clock.sleep(period)

    async def _tick(self, uid: str, container: core_pb2.Container, kind: str, probe: core_pb2.Probe,
                    target: ProbeTarget, container_id: str) -> bool:
        """Whether to probe now."""
        if not target.running:
            if kind == READINESS:
                self._set(uid, container_id, kind, FAILURE)
            return False
        if kind == STARTUP and self.results.get((container_id, STARTUP)) == SUCCESS:
            return False
        if kind != STARTUP and container.HasField("startupProbe") and \
                self.results.get((container_id, STARTUP)) != SUCCESS:
            return False
        return self.clock.now() >= target.started_at + probe.initialDelaySeconds


_FIELD = {STARTUP: "startupProbe", LIVENESS: "livenessProbe", READINESS: "readinessProbe"}
