"""Attach: a stream to a running container's own process, through its monitor.

The monitor (crishim/_monitor.py) holds the container's output, its stdin
(for a container created with `stdin`) and its pty, and serves them on
`attach.sock` in the bundle; this connects there and translates between the
gRPC stream and the monitor's frames. The socket is reached as
/proc/self/fd/N/attach.sock, N the bundle directory held open, because a
bundle's path can be longer than an AF_UNIX path may be.

Attach refuses, naming the container, what cannot work: a container that is
not running, stdin on a container created without it. Output written
before the attach is in the log, not on the stream (as with the CRI).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
from collections.abc import AsyncIterator

from proto import cri_pb2

from . import _monitor as mon
from ._errors import FailedPrecondition, InvalidArgument, RuntimeFailure
from ._runtime import Runtime


async def _connect(rt: Runtime, container_id: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    dir_fd = os.open(rt.store.container_dir(container_id), os.O_RDONLY | os.O_DIRECTORY)
    try:
        return await asyncio.open_unix_connection(mon.dir_path(dir_fd, mon.ATTACH_SOCKET))
    except OSError as err:
        raise RuntimeFailure(f"container {container_id[:12]}: its monitor does not take attach connections "
                             f"({os.strerror(err.errno) if err.errno else err})") from None
    finally:
        os.close(dir_fd)


async def attach_stream(rt: Runtime,
                        requests: AsyncIterator[cri_pb2.AttachRequest]) -> AsyncIterator[cri_pb2.ExecResponse]:
    first = await anext(requests, None)
    if first is None or first.WhichOneof("message") != "start":
        raise InvalidArgument("attach: the first request must be `start`")
    start = first.start
    rec = rt.find_container(start.container_id)
    name = rec.config.get("metadata", {}).get("name", "")
    what = f'container "{name}" ({rec.id[:12]})'
    state, _ = await rt.container_state(rec)
    if state != "running":
        raise FailedPrecondition(f"{what} is {state}, not running: cannot attach to it")
    if start.stdin and not rec.config.get("stdin"):
        raise FailedPrecondition(f"{what} was not created with stdin: cannot attach to its stdin")
    try:
        reader, writer = await _connect(rt, rec.id)
    except RuntimeFailure:
        state, _ = await rt.container_state(rec)
        if state != "running":   # it ended meanwhile
            raise FailedPrecondition(f"{what} is {state}, not running: cannot attach to it") from None
        raise
    writer.write(mon.frame(mon.HELLO, b"\x01" if start.stdin else b"\x00"))

    async def feed() -> None:
        async for req in requests:
            kind = req.WhichOneof("message")
            if kind == "stdin" and start.stdin:
                writer.write(mon.frame(mon.STDIN, req.stdin))
            elif kind == "resize":
                writer.write(mon.frame(mon.RESIZE, struct.pack(">HH", min(req.resize.width, 65535),
                                                              min(req.resize.height, 65535))))
            elif kind == "close_stdin" and start.stdin:
                writer.write(mon.frame(mon.CLOSE_STDIN))
            await writer.drain()

    feeder = asyncio.create_task(feed())
    wanted = {mon.STDOUT: start.stdout, mon.STDERR: start.stderr and not rec.config.get("tty")}
    try:
        while True:
            try:
                kind, length = mon.FRAME.unpack(await reader.readexactly(mon.FRAME.size))
                payload = await reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError):
                return   # the monitor is gone without an exit code (killed): the stream just ends
            if kind == mon.EXIT:
                yield cri_pb2.ExecResponse(exit_code=struct.unpack(">i", payload)[0])
                return
            if wanted.get(kind):
                yield (cri_pb2.ExecResponse(stdout=payload) if kind == mon.STDOUT
                       else cri_pb2.ExecResponse(stderr=payload))
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await feeder
        writer.close()
