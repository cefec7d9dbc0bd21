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

Attach: the monitor serves `attach.sock` in the bundle. A client (the
shim's Attach) gets the output from then on, framed by stream, and the
exit code when the container ends; it may write the container's stdin (the
write end of a pipe the monitor holds for a container created with
`stdin: true`, or the pty master for a tty) and resize the terminal. With
`stdin_once` the container's stdin is closed when the first client that
attached to it detaches or closes its input, as the CRI says; otherwise it
stays open for the next one. A client too slow to take the output is
dropped rather than allowed to stall the log; input beyond a bound waits
in the client's socket until the container reads.

It tells the shim over --sync-fd `ok <pid>` once runc has created the
container, or `error <message>`. If the shim is gone by then, it carries
on: a restarted shim finds the container through runc and the files.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import ctypes
import fcntl
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

MAX_LINE = 16 * 1024
PR_SET_CHILD_SUBREAPER = 36
ATTACH_SOCKET = "attach.sock"
# The attach protocol: frames of a kind (1 byte), a length (4 bytes, big
# endian) and the payload. To the client: output and, last, the exit code
# (4 bytes, signed); from it: HELLO (b"\x01" to attach stdin), stdin bytes,
# the end of its input, and a terminal size (width, height: 2 bytes each).
FRAME = struct.Struct(">BI")
STDOUT, STDERR, EXIT = 1, 2, 3
HELLO, STDIN, CLOSE_STDIN, RESIZE = 10, 11, 12, 13
STDIN_BUFFER = 1024 * 1024        # input held for a container that does not read
CLIENT_BACKLOG = 8 * 1024 * 1024  # output held for a client that does not take it


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


def dir_path(dir_fd: int, name: str) -> str:
    """A short path to `name` in the directory open as `dir_fd`: an AF_UNIX
    socket's path is limited to 107 bytes and a bundle's path can be longer."""
    return f"/proc/self/fd/{dir_fd}/{name}"


def frame(kind: int, payload: bytes = b"") -> bytes:
    return FRAME.pack(kind, len(payload)) + payload


def _create(args: argparse.Namespace, dir_fd: int) -> tuple[int, dict[int, str], int]:
    """runc create; returns the container's pid, {fd: stream} to copy, and
    the fd its stdin is written through (-1 for none)."""
    argv = [args.runc, "--root", args.runc_root, "create", "--bundle", args.bundle, "--pid-file", args.pid_file]
    streams: dict[int, str] = {}
    console: socket.socket | None = None
    stdin_r = stdin_w = -1
    err_r, err_w = os.pipe()
    if args.tty:
        console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock_path = dir_path(dir_fd, "console.sock")
        if os.path.exists(sock_path):
            os.unlink(sock_path)
        console.bind(sock_path)
        console.listen(1)
        argv += ["--console-socket", sock_path]
        stdout_w = stderr_w = os.open(os.devnull, os.O_WRONLY)
        diag = err_w
    else:
        out_r, stdout_w = os.pipe()
        stderr_w, diag = err_w, err_w
        streams = {out_r: "stdout", err_r: "stderr"}
        if args.stdin:
            stdin_r, stdin_w = os.pipe()
    proc = subprocess.Popen([*argv, args.id], stdin=stdin_r if stdin_r >= 0 else subprocess.DEVNULL,
                            stdout=stdout_w, stderr=diag, close_fds=True, pass_fds=(dir_fd,))
    code = proc.wait()
    for fd in {stdout_w, stderr_w, err_w, stdin_r} - {-1}:
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
        os.unlink(sock_path)
        os.close(err_r)
        streams = {fds[0]: "stdout"}
        stdin_w = fds[0] if args.stdin else -1
    return int(Path(args.pid_file).read_text().strip()), streams, stdin_w


class Client:
    """One attached client: bytes it sent not yet parsed, output not yet sent."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.stdin = False        # attached to the container's stdin


class Monitor:
    """The loop: output to the log and to attached clients, clients' input
    to the container, until the container's init exits and its output is drained."""

    def __init__(self, args: argparse.Namespace, streams: dict[int, str], stdin_fd: int,
                 listener: socket.socket | None, wake_r: int) -> None:
        self.args = args
        self.log = LogWriter(Path(args.log_path), args.log_max_size, args.log_max_files)
        self.streams = streams
        self.pty = next(iter(streams)) if args.tty else -1   # the master: output, input and size
        self.stdin_fd = stdin_fd
        self.stdin_pending = bytearray()
        self.stdin_eof = False            # close the pipe once stdin_pending is written
        self.stdin_once_done = False
        self.listener = listener
        self.wake_r = wake_r
        self.clients: dict[int, Client] = {}
        self.sel = selectors.DefaultSelector()
        self.registered: dict[int, int] = {}
        for fd in [*streams, stdin_fd, wake_r, listener.fileno() if listener else -1]:
            if fd >= 0:
                os.set_blocking(fd, False)
                self._update(fd)

    # ------------------------------------------------------------ the selector

    def _events(self, fd: int) -> int:
        events = 0
        if fd in self.streams or fd == self.wake_r or (self.listener is not None and fd == self.listener.fileno()):
            events |= selectors.EVENT_READ
        if fd == self.stdin_fd and self.stdin_pending:
            events |= selectors.EVENT_WRITE
        client = self.clients.get(fd)
        if client is not None:
            if len(self.stdin_pending) < STDIN_BUFFER:
                events |= selectors.EVENT_READ
            if client.outbox:
                events |= selectors.EVENT_WRITE
        return events

    def _update(self, fd: int) -> None:
        events, now = self._events(fd), self.registered.get(fd, 0)
        if events == now:
            return
        if not events:
            self.sel.unregister(fd)
            del self.registered[fd]
        elif not now:
            self.sel.register(fd, events)
            self.registered[fd] = events
        else:
            self.sel.modify(fd, events)
            self.registered[fd] = events

    def _forget(self, fd: int) -> None:
        if fd in self.registered:
            self.sel.unregister(fd)
            del self.registered[fd]

    # ------------------------------------------------------------ output

    def _output(self, fd: int) -> bool:
        """Copy what the container wrote; False at the stream's end."""
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return True
        except OSError:   # EIO: the pty's last writer is gone
            data = b""
        if not data:
            del self.streams[fd]
            self._forget(fd)
            if fd != self.pty:   # the pty stays open: stdin and resizes still name it
                os.close(fd)
            return False
        stream = self.streams[fd]
        self.log.write(stream, data)
        message = frame(STDOUT if stream == "stdout" else STDERR, data)
        for client in list(self.clients.values()):
            client.outbox += message
            if len(client.outbox) > CLIENT_BACKLOG:
                self._detach(client)   # too slow: it must not hold the container's output back
            else:
                self._update(client.sock.fileno())
        return True

    def _send(self, client: Client) -> None:
        try:
            sent = client.sock.send(client.outbox)
        except BlockingIOError:
            return
        except OSError:
            self._detach(client)
            return
        del client.outbox[:sent]
        self._update(client.sock.fileno())

    # ------------------------------------------------------------ input

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            sock, _ = self.listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        self.clients[sock.fileno()] = Client(sock)
        self._update(sock.fileno())

    def _receive(self, client: Client) -> None:
        try:
            data = client.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._detach(client)
            return
        client.inbox += data
        while len(client.inbox) >= FRAME.size:
            kind, length = FRAME.unpack_from(client.inbox)
            if len(client.inbox) < FRAME.size + length:
                break
            payload = bytes(client.inbox[FRAME.size:FRAME.size + length])
            del client.inbox[:FRAME.size + length]
            self._request(client, kind, payload)
        self._update_clients()

    def _request(self, client: Client, kind: int, payload: bytes) -> None:
        if kind == HELLO:
            client.stdin = bool(payload[:1] == b"\x01") and self.stdin_fd >= 0
        elif kind == STDIN and client.stdin and self.stdin_fd >= 0 and not self.stdin_eof:
            self.stdin_pending += payload
            self._update(self.stdin_fd)
        elif kind == CLOSE_STDIN and client.stdin:
            self._input_done(client)
        elif kind == RESIZE and self.pty >= 0 and len(payload) == 4:
            width, height = struct.unpack(">HH", payload)
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.pty, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def _input_done(self, client: Client) -> None:
        """A client's input ended: with stdin_once the container's stdin ends too."""
        client.stdin = False
        if self.args.stdin_once and not self.stdin_once_done:
            self.stdin_once_done = True
            self._close_stdin()

    def _close_stdin(self) -> None:
        """End the container's input once what is pending is written: a
        pipe is closed; the pty master (the output too) gets ^D, the end of
        input on a terminal."""
        if self.stdin_fd < 0:
            return
        if self.pty >= 0:
            self.stdin_pending += b"\x04"
        else:
            self.stdin_eof = True
        self._flush_stdin()

    def _flush_stdin(self) -> None:
        try:
            while self.stdin_pending:
                written = os.write(self.stdin_fd, self.stdin_pending[:65536])
                del self.stdin_pending[:written]
        except BlockingIOError:
            pass
        except OSError:   # EPIPE (or EIO for a pty): the container closed its stdin or exited
            self.stdin_pending.clear()
        if self.stdin_eof and not self.stdin_pending:
            self._forget(self.stdin_fd)
            os.close(self.stdin_fd)
            self.stdin_fd = -1
        else:
            self._update(self.stdin_fd)
        self._update_clients()

    def _update_clients(self) -> None:
        for fd in list(self.clients):
            self._update(fd)

    def _detach(self, client: Client) -> None:
        fd = client.sock.fileno()
        if client.stdin:
            self._input_done(client)
        self._forget(fd)
        self.clients.pop(fd, None)
        client.sock.close()

    # ------------------------------------------------------------ the loop

    def run(self, pid: int) -> int:
        status: int | None = None
        finished = 0
        idle_since = 0.0
        while True:
            if status is not None and (not self.streams or time.monotonic() - idle_since > 1.0):
                break
            for key, events in self.sel.select(timeout=1.0):
                fd = int(key.fd)  # type: ignore[arg-type]
                if fd == self.wake_r:
                    os.read(self.wake_r, 4096)
                    continue
                if self.listener is not None and fd == self.listener.fileno():
                    self._accept()
                    continue
                client = self.clients.get(fd)
                if client is not None:
                    if events & selectors.EVENT_WRITE:
                        self._send(client)
                    if events & selectors.EVENT_READ and fd in self.clients:
                        self._receive(client)
                    continue
                if events & selectors.EVENT_WRITE and fd == self.stdin_fd:
                    self._flush_stdin()
                if events & selectors.EVENT_READ and fd in self.streams and self._output(fd):
                    idle_since = time.monotonic()
            while status is None:
                try:
                    reaped, raw = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if reaped == 0:
                    break
                if reaped == pid:
                    status, finished, idle_since = raw, time.time_ns(), time.monotonic()
        self.log.close()
        code = os.waitstatus_to_exitcode(status) if status is not None else 255
        exit_code = 128 - code if code < 0 else code
        args = self.args
        write_json(Path(args.exit_file), {"exitCode": exit_code, "finishedAt": finished or time.time_ns(),
                                          "signal": -code if code < 0 else 0,
                                          "oomKilled": oom_kills(args.oom_file) > args.oom_before})
        self._goodbye(exit_code)
        return 0

    def _goodbye(self, exit_code: int) -> None:
        """Tell every attached client the exit code (after the output they are owed), then close."""
        if self.listener is not None:
            self.listener.close()
        message = frame(EXIT, struct.pack(">i", exit_code))
        for client in list(self.clients.values()):
            with contextlib.suppress(OSError):
                client.sock.settimeout(1.0)
                client.sock.sendall(bytes(client.outbox) + message)
            client.sock.close()
        self.clients.clear()


def monitor(args: argparse.Namespace) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    dir_fd = os.open(args.bundle, os.O_RDONLY | os.O_DIRECTORY)
    try:
        pid, streams, stdin_fd = _create(args, dir_fd)
        attach_path = dir_path(dir_fd, ATTACH_SOCKET)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(attach_path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(attach_path)
        os.chmod(attach_path, 0o600)
        listener.listen(16)
    except Exception as err:
        notify(args.sync_fd, f"error {err}")
        return 1
    notify(args.sync_fd, f"ok {pid}")
    try:
        return Monitor(args, streams, stdin_fd, listener, wake_r).run(pid)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(attach_path)


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
    p.add_argument("--stdin", action="store_true", help="keep the container's stdin open for attach")
    p.add_argument("--stdin-once", action="store_true", help="close it when the first attached client detaches")
    return monitor(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
