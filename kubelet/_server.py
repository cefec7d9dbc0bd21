"""The kubelet's own gRPC service (`--port`, 10250): container logs, exec
and the stats summary (proto/kubelet.proto).

* ContainerLogs finds the pod among this kubelet's pods (a static pod by
  its mirror's name too), the container's current instance - or with
  `previous` the one before it - and streams its CRI log file
  (kubelet/_logs.py).
* Exec resolves the running container and proxies the stream to the
  runtime's Exec: stdin, resizes and close go down, output and the exit
  code come back. Attach does the same with the runtime's Attach, for the
  container's own process; stdin only where the spec keeps it open
  (`stdin: true`), the terminal as the spec has it (`tty`).
* GetSummary groups the runtime's ListContainerStats by pod, and adds the
  node's totals and filesystem.

Errors are gRPC status codes with a message naming the pod and container:
NOT_FOUND (no such pod, container or previous instance), INVALID_ARGUMENT
(a bad request field), FAILED_PRECONDITION (exec into a container that is
not running), UNAVAILABLE (the runtime failed).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from api import rfc3339
from proto import core_pb2, cri_pb2, kubelet_pb2, kubelet_pb2_grpc

from . import _labels as labels
from ._eviction import StatsProvider
from ._kubelet import Kubelet
from ._logs import LogOptions, read_log
from ._podstate import RuntimeContainer
from ._runtime import CRIError

log = logging.getLogger(__name__)


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class KubeletServicer(kubelet_pb2_grpc.KubeletServicer):
    def __init__(self, kubelet: Kubelet, stats: StatsProvider) -> None:
        self.kubelet = kubelet
        self.stats = stats

    # ------------------------------------------------------------ lookups

    def _pod(self, namespace: str, name: str) -> core_pb2.Pod:
        if not name:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "pod: Required value")
        namespace = namespace or "default"
        for rec in self.kubelet.records.values():
            if rec.pod.metadata.namespace == namespace and rec.pod.metadata.name == name:
                return rec.pod
        raise _Abort(grpc.StatusCode.NOT_FOUND, f'pod "{name}" in namespace "{namespace}" is not running on node '
                                                f'"{self.kubelet.config.node_name}"')

    @staticmethod
    def _container_name(pod: core_pb2.Pod, name: str) -> tuple[str, bool]:
        names = [c.name for c in pod.spec.containers]
        inits = [c.name for c in pod.spec.initContainers]
        if not name:
            if len(names) == 1:
                return names[0], False
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                         f"a container name must be specified for pod {pod.metadata.name}, choose one of: "
                         f"[{' '.join(names)}]" + (f" or one of the init containers: [{' '.join(inits)}]"
                                                   if inits else ""))
        if name in names:
            return name, False
        if name in inits:
            return name, True
        raise _Abort(grpc.StatusCode.NOT_FOUND, f'container "{name}" is not valid for pod "{pod.metadata.name}"')

    async def _instance(self, pod: core_pb2.Pod, name: str, init: bool, previous: bool) -> RuntimeContainer:
        try:
            rp = await self.kubelet.cache.read(self.kubelet.runtime, pod.metadata.uid)
        except CRIError as err:
            raise _Abort(grpc.StatusCode.UNAVAILABLE, f"the container runtime: {err}") from None
        found = rp.previous(name, init) if previous else rp.latest(name, init)
        if found is None:
            if previous:
                raise _Abort(grpc.StatusCode.NOT_FOUND, f'previous terminated container "{name}" in pod '
                                                        f'"{pod.metadata.name}" not found')
            raise _Abort(grpc.StatusCode.NOT_FOUND, f'container "{name}" in pod "{pod.metadata.name}" is waiting to '
                                                    "start: ContainerCreating")
        return found

    # ------------------------------------------------------------ logs

    async def ContainerLogs(self, request: kubelet_pb2.ContainerLogsRequest,
                            context: grpc.aio.ServicerContext) -> AsyncIterator[kubelet_pb2.LogChunk]:
        try:
            if request.tail_lines < 0 and request.has_tail_lines:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "tail_lines: must be greater than or equal to 0")
            if request.since_seconds < 0 or request.limit_bytes < 0:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "since_seconds and limit_bytes must not be negative")
            pod = self._pod(request.namespace, request.pod)
            name, init = self._container_name(pod, request.container)
            rc = await self._instance(pod, name, init, request.previous)
        except _Abort as err:
            await context.abort(err.code, err.message)
            return
        if not rc.log_path:
            await context.abort(grpc.StatusCode.NOT_FOUND, f'container "{name}" in pod "{pod.metadata.name}" has no '
                                                           "log file")
            return
        options = LogOptions(tail_lines=request.tail_lines if request.has_tail_lines else -1,
                             since_time=self.kubelet.clock.now() - request.since_seconds
                             if request.since_seconds else 0.0,
                             limit_bytes=request.limit_bytes, timestamps=request.timestamps,
                             follow=request.follow and not request.previous)
        runtime = self.kubelet.runtime

        async def running() -> bool:
            try:
                return (await runtime.container_status(rc.id)).state == cri_pb2.CONTAINER_RUNNING
            except CRIError:
                return False

        async for chunk in read_log(Path(rc.log_path), options, running):
            yield kubelet_pb2.LogChunk(data=chunk)

    # ------------------------------------------------------------ exec

    async def _running(self, namespace: str, pod_name: str, container: str) -> tuple[core_pb2.Pod, str,
                                                                                     RuntimeContainer]:
        pod = self._pod(namespace, pod_name)
        name, init = self._container_name(pod, container)
        rc = await self._instance(pod, name, init, False)
        if not rc.running:
            raise _Abort(grpc.StatusCode.FAILED_PRECONDITION,
                         f'container "{name}" in pod "{pod.metadata.name}" is not running')
        return pod, name, rc

    async def _proxy(self, context: grpc.aio.ServicerContext, what: str,
                     responses: AsyncIterator[cri_pb2.ExecResponse]) -> AsyncIterator[cri_pb2.ExecResponse]:
        try:
            async for response in responses:
                yield response
        except CRIError as err:
            code = err.code if err.code != grpc.StatusCode.UNKNOWN else grpc.StatusCode.UNAVAILABLE
            await context.abort(code, f"{what}: {err.message}")

    async def Exec(self, request_iterator: AsyncIterator[kubelet_pb2.ExecRequest],
                   context: grpc.aio.ServicerContext) -> AsyncIterator[cri_pb2.ExecResponse]:
        target = await _start(request_iterator, context)
        try:
            if not target.command:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "command: Required value")
            pod, name, rc = await self._running(target.namespace, target.pod, target.container)
        except _Abort as err:
            await context.abort(err.code, err.message)
            return
        start = cri_pb2.ExecStart(container_id=rc.id, cmd=list(target.command), tty=target.tty, stdin=target.stdin,
                                  stdout=target.stdout or not (target.stdout or target.stderr),
                                  stderr=target.stderr and not target.tty)
        requests = _downstream(cri_pb2.ExecRequest(start=start), request_iterator, cri_pb2.ExecRequest)
        async for response in self._proxy(context, f"exec in {pod.metadata.name}/{name}",
                                          self.kubelet.runtime.exec(requests)):
            yield response

    async def Attach(self, request_iterator: AsyncIterator[kubelet_pb2.AttachRequest],
                     context: grpc.aio.ServicerContext) -> AsyncIterator[cri_pb2.ExecResponse]:
        target = await _start(request_iterator, context)
        try:
            pod, name, rc = await self._running(target.namespace, target.pod, target.container)
            spec = next(c for c in [*pod.spec.containers, *pod.spec.initContainers] if c.name == name)
            if target.stdin and not spec.stdin:
                raise _Abort(grpc.StatusCode.FAILED_PRECONDITION,
                             f'container "{name}" in pod "{pod.metadata.name}" does not keep stdin open (its spec '
                             "has no stdin: true): cannot attach to its stdin")
        except _Abort as err:
            await context.abort(err.code, err.message)
            return
        # The terminal is the container's: a tty container's output is one stream.
        start = cri_pb2.AttachStart(container_id=rc.id, tty=spec.tty, stdin=target.stdin,
                                    stdout=target.stdout or not (target.stdout or target.stderr),
                                    stderr=target.stderr and not spec.tty)
        requests = _downstream(cri_pb2.AttachRequest(start=start), request_iterator, cri_pb2.AttachRequest)
        async for response in self._proxy(context, f"attach to {pod.metadata.name}/{name}",
                                          self.kubelet.runtime.attach(requests)):
            yield response

    # ------------------------------------------------------------ stats

    async def GetSummary(self, request: kubelet_pb2.SummaryRequest,
                         context: grpc.aio.ServicerContext) -> kubelet_pb2.Summary:
        kubelet = self.kubelet
        try:
            stats = await kubelet.runtime.list_container_stats()
        except CRIError as err:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"the container runtime: {err}")
            raise
        now = rfc3339(kubelet.clock.now())
        by_uid: dict[str, list[cri_pb2.ContainerStats]] = {}
        for s in stats:
            by_uid.setdefault(s.attributes.labels.get(labels.POD_UID, ""), []).append(s)
        summary = kubelet_pb2.Summary()
        node = summary.node
        node.node_name = kubelet.config.node_name
        node.cpu.time = node.memory.time = now
        for rec in kubelet.records.values():
            pod = rec.pod
            if request.namespace and pod.metadata.namespace != request.namespace:
                continue
            mine = by_uid.get(pod.metadata.uid, [])
            if not mine:
                continue
            ps = summary.pods.add()
            ps.pod_ref.name, ps.pod_ref.namespace, ps.pod_ref.uid = (pod.metadata.name, pod.metadata.namespace,
                                                                    pod.metadata.uid)
            ps.start_time = pod.status.startTime or rec.start_time
            ps.cpu.time = ps.memory.time = now
            for s in mine:
                cs = ps.containers.add(name=s.attributes.metadata.name)
                cs.cpu.time = cs.memory.time = now
                cs.cpu.usage_nano_cores = s.cpu.usage_nano_cores.value
                cs.cpu.usage_core_nano_seconds = s.cpu.usage_core_nano_seconds.value
                cs.memory.usage_bytes = s.memory.usage_bytes.value
                cs.memory.working_set_bytes = s.memory.working_set_bytes.value
                cs.memory.rss_bytes = s.memory.rss_bytes.value
                cs.rootfs.used_bytes = s.writable_layer.used_bytes.value
                for total, part in ((ps.cpu, cs.cpu), (node.cpu, cs.cpu)):
                    total.usage_nano_cores += part.usage_nano_cores
                    total.usage_core_nano_seconds += part.usage_core_nano_seconds
                for mem in (ps.memory, node.memory):
                    mem.usage_bytes += cs.memory.usage_bytes
                    mem.working_set_bytes += cs.memory.working_set_bytes
                    mem.rss_bytes += cs.memory.rss_bytes
        try:
            observed = await self.stats.observe()
            node.memory.available_bytes = observed.memory_available
            node.fs.time = now
            node.fs.available_bytes, node.fs.capacity_bytes = observed.fs_available, observed.fs_capacity
            node.fs.used_bytes = max(0, observed.fs_capacity - observed.fs_available)
        except (OSError, CRIError) as err:
            log.debug("node stats: %s", err)
        return summary


async def _start(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
    """The `start` of an exec or attach: its first request (refused otherwise)."""
    first = await anext(aiter(requests), None)
    if first is None or not first.HasField("start"):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first request must be `start`")
    return first.start


async def _downstream(first: Any, upstream: AsyncIterator[Any], message: type[Any]) -> AsyncIterator[Any]:
    """The runtime's requests: `first`, then the client's stdin, resizes and
    close (the same fields in the kubelet's and the runtime's messages)."""
    yield first
    async for req in upstream:
        kind = req.WhichOneof("message")
        if kind in ("stdin", "resize", "close_stdin"):
            yield message(**{kind: getattr(req, kind)})


class KubeletServer:
    """The gRPC server around the servicer."""

    def __init__(self, kubelet: Kubelet, stats: StatsProvider) -> None:
        self.servicer = KubeletServicer(kubelet, stats)
        self._server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self, address: str) -> KubeletServer:
        """Serve on HOST:PORT (PORT 0 picks one) or unix:///path."""
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", 16 * 1024 * 1024)])
        kubelet_pb2_grpc.add_KubeletServicer_to_server(self.servicer, server)
        self.port = server.add_insecure_port(address)
        await server.start()
        self._server = server
        log.info("kubelet API serving on %s", address if address.startswith("unix:") else
                 f"{address.rsplit(':', 1)[0]}:{self.port}")
        return self

    async def stop(self, grace: float = 1.0) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
