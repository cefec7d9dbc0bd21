"""Running a command in a running container: ExecSync and the Exec stream.

Both are `runc exec`, which takes the container's env, cwd and user from
its spec. ExecSync collects the output (at most 16 MiB per stream, as the
CRI caps it) and, past its timeout, kills the command and fails with
DEADLINE_EXCEEDED. A tty Exec runs runc on a pseudo-terminal of ours: runc
finds a terminal on its stdin, puts it in raw mode and copies it to and from
the container's own pty; a resize sets our terminal's size and sends runc
SIGWINCH, which passes the size on.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
import signal
import struct
import termios
from collections.abc import AsyncIterator
from pathlib import Path

from proto import cri_pb2

from ._errors import DeadlineExceeded, FailedPrecondition, InvalidArgument
from ._runtime import Runtime

MAX_OUTPUT = 16 * 1024 * 1024


async def _running(rt: Runtime, container_id: str) -> str:
    rec = rt.find_container(container_id)
    state, _ = await rt.container_state(rec)
    if state != "running":
        raise FailedPrecondition(f'container "{rec.id}" is {state}, not running: cannot exec in it')
    return rec.id


async def _read_capped(stream: asyncio.StreamReader | None) -> bytes:
    if stream is None:
        return b""
    out = bytearray()
    while chunk := await stream.read(65536):
        if len(out) < MAX_OUTPUT:
            out += chunk[:MAX_OUTPUT - len(out)]
    return bytes(out)


def _kill_exec(pid_file: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(pid_file.read_text()), signal.SIGKILL)


async def exec_sync(rt: Runtime, container_id: str, cmd: list[str], timeout: int) -> cri_pb2.ExecSyncResponse:
    if not cmd:
        raise InvalidArgument("cmd: Required value")
    cid = await _running(rt, container_id)
    pid_file = rt.options.state_dir / f"exec-{secrets.token_hex(8)}.pid"
    proc = await asyncio.create_subprocess_exec(*rt.runc.argv("exec", "--pid-file", str(pid_file), cid, *cmd),
                                                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    gathered = asyncio.gather(_read_capped(proc.stdout), _read_capped(proc.stderr), proc.wait())
    try:
        out, err, code = await asyncio.wait_for(gathered, timeout if timeout > 0 else None)
    except TimeoutError:
        _kill_exec(pid_file)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise DeadlineExceeded(f"command {cmd!r} in container {cid[:12]} timed out after {timeout}s") from None
    finally:
        pid_file.unlink(missing_ok=True)
    return cri_pb2.ExecSyncResponse(stdout=out, stderr=err, exit_code=code)


def _set_size(fd: int, size: cri_pb2.TerminalSize) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size.height, size.width, 0, 0))


async def exec_stream(rt: Runtime, requests: AsyncIterator[cri_pb2.ExecRequest]) -> AsyncIterator[cri_pb2.ExecResponse]:
    first = await anext(requests, None)
    if first is None or first.WhichOneof("message") != "start":
        raise InvalidArgument("exec: the first request must be `start`")
    start = first.start
    if not start.cmd:
        raise InvalidArgument("start.cmd: Required value")
    cid = await _running(rt, start.container_id)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[cri_pb2.ExecResponse | None] = asyncio.Queue()
    master = -1
    if start.tty:
        master, slave = os.openpty()
        proc = await asyncio.create_subprocess_exec(*rt.runc.argv("exec", "-t", cid, *start.cmd),
                                                    stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        stdin_fd = master
        readers = {master: "stdout"}
    else:
        proc = await asyncio.create_subprocess_exec(
            *rt.runc.argv("exec", cid, *start.cmd),
            stdin=asyncio.subprocess.PIPE if start.stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        stdin_fd = -1
        readers = {}
    open_streams = 0

    async def pump(reader: asyncio.StreamReader | None, kind: str, wanted: bool) -> None:
        while reader is not None and (chunk := await reader.read(65536)):
            if wanted:
                await queue.put(cri_pb2.ExecResponse(stdout=chunk) if kind == "stdout"
                                else cri_pb2.ExecResponse(stderr=chunk))

    def on_master() -> None:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            chunk = b""
        if chunk:
            queue.put_nowait(cri_pb2.ExecResponse(stdout=chunk))
        else:
            loop.remove_reader(master)
            queue.put_nowait(None)

    async def feed() -> None:
        async for req in requests:
            kind = req.WhichOneof("message")
            if kind == "stdin" and start.stdin:
                if stdin_fd >= 0:
                    await asyncio.to_thread(os.write, stdin_fd, req.stdin)
                elif proc.stdin is not None:
                    proc.stdin.write(req.stdin)
                    await proc.stdin.drain()
            elif kind == "resize" and master >= 0:
                _set_size(master, req.resize)
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGWINCH)
            elif kind == "close_stdin":
                if stdin_fd >= 0:
                    os.write(stdin_fd, b"\x04")
                elif proc.stdin is not None:
                    proc.stdin.close()

    tasks = [asyncio.create_task(feed())]
    if master >= 0:
        loop.add_reader(master, on_master)
        open_streams = len(readers)
    else:
        async def pumps() -> None:
            await asyncio.gather(pump(proc.stdout, "stdout", start.stdout), pump(proc.stderr, "stderr", start.stderr))
            await queue.put(None)
        tasks.append(asyncio.create_task(pumps()))
        open_streams = 1
    try:
        while open_streams:
            item = await queue.get()
            if item is None:
                open_streams -= 1
                continue
            yield item
        code = await proc.wait()
        yield cri_pb2.ExecResponse(exit_code=code)
    finally:
        for task in tasks:
            task.cancel()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if master >= 0:
            loop.remove_reader(master)
            os.close(master)
