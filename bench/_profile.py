"""Where the apiserver spends its time under load: py-spy attached to the
running apiserver for one phase, and a summary of the samples.

`python -m bench --only crud --profile stacks.txt` samples the apiserver
while 32 clients create pods and writes py-spy's collapsed stacks ("raw"
format: one `frame;frame;frame count` line per distinct stack), which
flamegraph tools read, then prints the functions with the most samples,
by self time and by inclusive time. py-spy is not a dependency of the
project: install it in the virtualenv (`.venv/bin/pip install py-spy`) to
use this. It samples without pausing the process (--nonblocking), so the
apiserver runs at nearly full speed while profiled; --profile-native
pauses it for each sample instead, to see into gRPC's C core and protobuf's
upb (a third or more of the time shows as the Python frame that called
into them otherwise).
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from rich.console import Console
from rich.table import Table


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not os.access(found, os.X_OK):
        raise SystemExit("bench --profile needs py-spy: .venv/bin/pip install py-spy")
    return found


class Profiler:
    def __init__(self, output: str, pid: int, rate: int = 200, *, native: bool = False) -> None:
        self.output = Path(output).resolve()
        self.pid = pid
        self.rate = rate
        self.native = native
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profiler:
        self._proc = subprocess.Popen(
            [py_spy(), "record", "--pid", str(self.pid), "--format", "raw", "--output", str(self.output),
             "--rate", str(self.rate), *(["--native"] if self.native else ["--nonblocking"])],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)  # let it attach before the load starts
        return self

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        proc = self._proc
        if proc is None:
            return
        proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return
        if typ is None and not self.output.exists():
            raise RuntimeError(f"py-spy wrote no profile: {err.decode(errors='replace')[-500:]}")


# Leaf frames that mean "waiting", which a native profile cannot tell from
# work (py-spy drops idle threads only for Python frames).
_IDLE = ("epoll_wait", "poll", "select", "pthread_cond_wait", "pthread_cond_timedwait", "__futex_abstimed_wait",
         "futex_wait", "sem_wait", "nanosleep", "clock_nanosleep")

# Where a leaf frame's time goes. Without --native, time in a C extension
# shows as the Python frame that called it: a handle's callback run by the
# event loop is gRPC's cygrpc, a thread's run() is gRPC's poller thread (a
# native profile shows both).
_LEAVES = (
    ("Handle._run (", "gRPC C callbacks run by the event loop"),
    ("Thread.run (", "threads (gRPC's poller, in C)"),
    ("EpollSelector.select (", "event loop: epoll"),
)
_COMPONENTS = (
    ("grpc/", "gRPC (cygrpc, C core)"), ("_message.abi3.so", "protobuf (upb)"), ("google/protobuf", "protobuf"),
    ("libc.so", "libc (syscalls, malloc)"), ("asyncio/", "asyncio"), ("apiserver/", "apiserver"),
    ("api/", "api (machinery)"), ("etcd3aio/", "etcd3aio"), ("prometheus_client/", "prometheus_client"),
    ("component_base/", "component_base"), ("libpython", "CPython interpreter"), (".c", "CPython interpreter"),
    (".h", "CPython interpreter"), ("<frozen", "CPython interpreter"),
)


@dataclass
class ProfileSummary:
    total: int  # samples of work (idle leaves dropped)
    idle: int
    own: list[tuple[str, int]]
    inclusive: list[tuple[str, int]]
    components: list[tuple[str, int]]


def summarize(path: Path, top: int = 25) -> ProfileSummary:
    """Top functions by self samples and by inclusive samples (counted once
    per stack even when a function recurses), and self samples by component."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    components: collections.Counter[str] = collections.Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        raw = stack.split(";")
        if raw[-1].split(" (", 1)[0].startswith(_IDLE):
            idle += count
            continue
        total += count
        frames = [_short(f) for f in raw]
        own[frames[-1]] += count
        components[_component(raw[-1])] += count
        for frame in set(frames):
            if _ours(frame):
                inclusive[frame] += count
    return ProfileSummary(total, idle, own.most_common(top), inclusive.most_common(top), components.most_common())


def _ours(frame: str) -> bool:
    """A frame worth an inclusive figure: the project's code and the
    libraries it calls, but not the entry points every sample has."""
    if any(root in frame for root in ("apiserver/__main__.py", "component_base/_serving.py")):
        return False
    return any(m in frame for m in ("(apiserver/", "(api/", "(component_base/", "(etcd3aio/", "(prometheus_client/",
                                    "(grpc/aio/"))


def _component(frame: str) -> str:
    for start, name in _LEAVES:
        if frame.startswith(start):
            return name
    where = frame.partition(" (")[2]
    for marker, name in _COMPONENTS:
        if marker in where:
            return name
    return "other"


def _short(frame: str) -> str:
    # py-spy frames look like "function (path/to/module.py:123)"; drop the line number
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{name} ({file})" if file else name


def print_summary(console: Console, path: Path, top: int = 25) -> None:
    summary = summarize(path, top)
    total = summary.total
    if not total:
        console.print(f"[yellow]no samples in {path}[/yellow]")
        return
    console.print(f"[dim]{path}: {total:,} samples of work, {summary.idle:,} idle samples dropped[/dim]")
    for title, column, entries in (("component", "component", summary.components),
                                   ("function, self samples", "function (module)", summary.own),
                                   ("function, inclusive samples", "function (module)", summary.inclusive)):
        t = Table(title=f"apiserver time by {title}")
        t.add_column("%", justify="right")
        t.add_column(column)
        for name, count in entries:
            t.add_row(f"{100 * count / total:.1f}", name)
        console.print(t)
