"""The per-container monitor: `python -S crishim/_monitor.py ...` (stdlib only).

The shim starts one per container, in its own session, and it outlives the
shim: it runs `runc create` with the container's stdout and stderr on pipes
(or takes the pty master runc sends over --console-socket for a tty),
becomes the container's parent (as a child subreaper, like conmon), copies
the output into the CRI log file (`<RFC3339Nano> stdout|stderr F|P <line>`,
P for a line cut at 16 KiB), rotates that file by size (`<log>.1` is the
newest old file), and when the container's init exits writes exit.json: the
exit code (128+signal for a signal), the finish time, and whether the
cgroup saw an OOM kill. The log is drained before exit.json appears, so
whoever sees the container exited can read all its output.

It tells the shim over --sync-fd `ok <pid>` once runc has created the
container, or `error <message>`. If the shim is gone by then, it carries
on: a restarted shim finds the container through runc and the files.
"""

from __future__ import annotations

import argparse
import array
import ctypes
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

MAX_LINE = 16 * 1024
PR_SET_CHILD_SUBREAPER = 36


def rfc3339nano(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


class LogWriter:
    """Writes CRI log lines to `path`, rotating when it would pass max_size."""

    def __init__(self, path: Path, max_size: int, max_files: int, clock: object = time.time_ns) -> None:
        self.path = path
        self.max_size = max_size
        self.max_files = max(1, max_files)
        self.clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(path, "ab")
        self.size = self.fh.tell()
        self.pending: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}

    def _rotate(self) -> None:
        self.fh.close()
        if self.max_files == 1:
            self.path.unlink(missing_ok=True)
        else:
            for n in range(self.max_files - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{n}")
                if n == self.max_files - 1:
                    older.unlink(missing_ok=True)
                else:
                    newer = self.path.with_name(f"{self.path.name}.{n + 1}")
                    if older.exists():
                        os.replace(older, newer)
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self.fh = open(self.path, "ab")
        self.size = 0

    def _line(self, stream: str, tag: str, content: bytes) -> None:
        line = f"{rfc3339nano(self.clock())} {stream} {tag} ".encode() + content + b"\n"  # type: ignore[operator]
        if self.max_size > 0 and self.size > 0 and self.size + len(line) > self.max_size:
            self._rotate()
        self.fh.write(line)
        self.size += len(line)

    def write(self, stream: str, data: bytes) -> None:
        buf = self.pending[stream]
        buf += data
        while True:
            nl = buf.find(b"\n")
            if nl == -1 or nl > MAX_LINE:
                if len(buf) < MAX_LINE:
                    break
                self._line(stream, "P", bytes(buf[:MAX_LINE]))
                del buf[:MAX_LINE]
                continue
            self._line(stream, "F", bytes(buf[:nl]))
            del buf[:nl + 1]
        self.fh.flush()

    def close(self) -> None:
        for stream, buf in self.pending.items():
            if buf:
                self._line(stream, "F", bytes(buf))
                buf.clear()
        self.fh.close()


def oom_kills(path: str) -> int:
    """The `oom_kill` count of a cgroup (v1 memory.oom_control, v2 memory.events)."""
    try:
        for line in Path(path).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def write_json(path: Path, value: dict[str, object]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)


def notify(fd: int, message: str) -> None:
    if fd < 0:
        return
    try:
        os.write(fd, message.encode() + b"\n")
        os.close(fd)
    except OSError:
        pass  # the shim is gone; it will find us through runc and exit.json


def _create(args: argparse.Namespace) -> tuple[int, dict[int, str]]:
    """runc create; returns the container's pid and {fd: stream} to copy."""
    argv = [args.runc, "--root", args.runc_root, "create", "--bundle", args.bundle, "--pid-file", args.pid_file]
    streams: dict[int, str] = {}
    console: socket.socket | None = None
    err_r, err_w = os.pipe()
    if args.tty:
        sock_path = os.path.join(args.bundle, "console.sock")
        if os.path.exists(sock_path):
            os.unlink(sock_path)
        console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        console.bind(sock_path)
        console.listen(1)
        argv += ["--console-socket", sock_path]
        stdout_w = stderr_w = os.open(os.devnull, os.O_WRONLY)
        diag = err_w
    else:
        out_r, stdout_w = os.pipe()
        stderr_w, diag = err_w, err_w
        streams = {out_r: "stdout", err_r: "stderr"}
    proc = subprocess.Popen([*argv, args.id], stdin=subprocess.DEVNULL, stdout=stdout_w, stderr=diag,
                            close_fds=True)
    code = proc.wait()
    for fd in {stdout_w, stderr_w, err_w}:
        os.close(fd)
    if code != 0:
        os.set_blocking(err_r, False)
        try:
            message = os.read(err_r, 65536).decode(errors="replace").strip()
        except BlockingIOError:
            message = ""
        raise RuntimeError(message.splitlines()[-1] if message else f"runc create exited with {code}")
    if console is not None:
        console.settimeout(10)
        conn, _ = console.accept()
        fds = array.array("i")
        _msg, ancdata, _flags, _addr = conn.recvmsg(1024, socket.CMSG_LEN(fds.itemsize))
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:fds.itemsize])
        conn.close()
        console.close()
        os.close(err_r)
        streams = {fds[0]: "stdout"}
    return int(Path(args.pid_file).read_text().strip()), streams


def monitor(args: argparse.Namespace) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    try:
        pid, streams = _create(args)
    except Exception as err:
        notify(args.sync_fd, f"error {err}")
        return 1
    notify(args.sync_fd, f"ok {pid}")
    log = LogWriter(Path(args.log_path), args.log_max_size, args.log_max_files)
    sel = selectors.DefaultSelector()
    for fd in streams:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    sel.register(wake_r, selectors.EVENT_READ)
    status: int | None = None
    finished = 0
    idle_since = 0.0
    while True:
        if status is not None and (not streams or time.monotonic() - idle_since > 1.0):
            break
        for key, _ in sel.select(timeout=1.0):
            fd = int(key.fd)  # type: ignore[arg-type]
            if fd == wake_r:
                os.read(wake_r, 4096)
                continue
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                continue
            except OSError:   # EIO: the pty's last writer is gone
                data = b""
            if data:
                log.write(streams[fd], data)
                idle_since = time.monotonic()
            else:
                sel.unregister(fd)
                os.close(fd)
                del streams[fd]
        while status is None:
            try:
                reaped, raw = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if reaped == 0:
                break
            if reaped == pid:
                status, finished, idle_since = raw, time.time_ns(), time.monotonic()
    log.close()
    code = os.waitstatus_to_exitcode(status) if status is not None else 255
    exit_code = 128 - code if code < 0 else code
    write_json(Path(args.exit_file), {"exitCode": exit_code, "finishedAt": finished or time.time_ns(),
                                      "signal": -code if code < 0 else 0,
                                      "oomKilled": oom_kills(args.oom_file) > args.oom_before})
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="crishim monitor")
    p.add_argument("--id", required=True)
    p.add_argument("--bundle", required=True)
    p.add_argument("--runc", default="runc")
    p.add_argument("--runc-root", required=True)
    p.add_argument("--pid-file", required=True)
    p.add_argument("--exit-file", required=True)
    p.add_argument("--log-path", required=True)
    p.add_argument("--log-max-size", type=int, default=10 * 1024 * 1024)
    p.add_argument("--log-max-files", type=int, default=5)
    p.add_argument("--oom-file", default="")
    p.add_argument("--oom-before", type=int, default=0)
    p.add_argument("--sync-fd", type=int, default=-1)
    p.add_argument("--tty", action="store_true")
    return monitor(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
