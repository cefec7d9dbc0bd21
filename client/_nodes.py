"""The node proxy's client: container logs, exec, attach and node
summaries through the apiserver (the NodeProxy service; see
apiserver/_nodeproxy.py).

    nodes = NodeProxyClient(cs)
    async for chunk in nodes.logs("default", "web-0", follow=True):
        sys.stdout.buffer.write(chunk)
    async with nodes.exec("default", "web-0", ["sh"], stdin=True) as session:
        await session.send(b"echo hi\\n"); await session.close_stdin()
        async for stream, data in session.output(): ...
        session.exit_code
    async with nodes.attach("default", "shell", stdin=True, tty=True) as session: ...
    summary = await nodes.summary("node-1")

Failures raise api.StatusError with the apiserver's reason, as every other
client call does. Streams are not retried: a log or an exec that broke
cannot be resumed where it was, so the caller decides.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc
import grpc.aio

from api import StatusError
from proto import api_pb2, api_pb2_grpc, cri_pb2, kubelet_pb2

from ._clientset import Clientset

_EOF = grpc.aio.EOF  # type: ignore[attr-defined]  # the end of a stream's reads (missing from the stubs)


class ExecSession:
    """One running exec (or attach): write stdin, resize the terminal, read
    the output.

    `output()` yields ("stdout" | "stderr", bytes) until the command (or
    the attached container) ends; then `exit_code` holds its exit status
    (None if the stream ended without one: an attach the client left)."""

    def __init__(self, open_call: Callable[[], Any],
                 start: kubelet_pb2.ExecRequest | kubelet_pb2.AttachRequest) -> None:
        self._open_call = open_call
        self._call: Any = None
        self._start = start
        self._message = type(start)   # ExecRequest or AttachRequest: the same stdin, resize and close
        self._lock = asyncio.Lock()
        self._closed = False
        self.exit_code: int | None = None

    async def _write(self, request: Any) -> None:
        async with self._lock:
            if self._closed:
                return
            try:
                await self._call.write(request)
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                self._closed = True  # the call is over: output() says why

    async def open(self) -> ExecSession:
        self._call = self._open_call()
        await self._write(self._start)
        return self

    async def send(self, data: bytes) -> None:
        if data:
            await self._write(self._message(stdin=data))

    async def resize(self, width: int, height: int) -> None:
        await self._write(self._message(resize=cri_pb2.TerminalSize(width=width, height=height)))

    async def close_stdin(self) -> None:
        """End of input: the command reads EOF."""
        await self._write(self._message(close_stdin=True))

    async def output(self) -> AsyncIterator[tuple[str, bytes]]:
        try:
            while True:
                response = await self._call.read()
                if response is _EOF:
                    return
                kind = response.WhichOneof("message")
                if kind == "exit_code":
                    self.exit_code = response.exit_code
                elif kind in ("stdout", "stderr"):
                    yield kind, getattr(response, kind)
        except grpc.aio.AioRpcError as err:
            raise StatusError.from_rpc_error(err) from None

    async def cancel(self) -> None:
        async with self._lock:
            self._closed = True
        if self._call is not None:
            self._call.cancel()

    async def __aenter__(self) -> ExecSession:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.cancel()


class NodeProxyClient:
    """The NodeProxy service over a clientset's channel and credentials."""

    def __init__(self, clientset: Clientset) -> None:
        self._cs = clientset
        self._stub = api_pb2_grpc.NodeProxyStub(clientset.channel)

    async def logs(self, namespace: str, pod: str, container: str = "", *, follow: bool = False,
                   previous: bool = False, timestamps: bool = False, tail_lines: int | None = None,
                   since_seconds: int = 0, limit_bytes: int = 0) -> AsyncIterator[bytes]:
        """The container's log, whole lines at a time; with `follow`, until
        the container stops (or the caller stops iterating)."""
        request = kubelet_pb2.ContainerLogsRequest(
            namespace=namespace, pod=pod, container=container, follow=follow, previous=previous,
            timestamps=timestamps, since_seconds=since_seconds, limit_bytes=limit_bytes)
        if tail_lines is not None and tail_lines >= 0:
            request.tail_lines, request.has_tail_lines = tail_lines, True
        call = self._stub.ContainerLogs(request, metadata=self._cs._metadata)
        try:
            async for chunk in call:
                yield chunk.data
        except grpc.aio.AioRpcError as err:
            raise StatusError.from_rpc_error(err) from None
        finally:
            call.cancel()

    def exec(self, namespace: str, pod: str, command: Sequence[str], container: str = "", *, stdin: bool = False,
             tty: bool = False, stdout: bool = True, stderr: bool = True) -> ExecSession:
        """An exec session (use `async with`); nothing runs until it is opened."""
        start = kubelet_pb2.ExecRequest(start=kubelet_pb2.ExecTarget(
            namespace=namespace, pod=pod, container=container, command=list(command), tty=tty, stdin=stdin,
            stdout=stdout, stderr=stderr and not tty))
        return ExecSession(lambda: self._stub.Exec(metadata=self._cs._metadata), start)

    def attach(self, namespace: str, pod: str, container: str = "", *, stdin: bool = False, tty: bool = False,
               stdout: bool = True, stderr: bool = True) -> ExecSession:
        """A session attached to the container's own process (use `async
        with`): its output from now on, its stdin if the spec keeps it open."""
        start = kubelet_pb2.AttachRequest(start=kubelet_pb2.AttachTarget(
            namespace=namespace, pod=pod, container=container, tty=tty, stdin=stdin, stdout=stdout,
            stderr=stderr and not tty))
        return ExecSession(lambda: self._stub.Attach(metadata=self._cs._metadata), start)

    async def summary(self, node: str, namespace: str = "", *, timeout: float | None = None) -> kubelet_pb2.Summary:
        """The node's Summary (node totals and per-pod usage) from its kubelet."""
        return await self._cs.call(self._stub.GetSummary, api_pb2.NodeSummaryRequest(node=node, namespace=namespace),
                                   timeout=timeout)
