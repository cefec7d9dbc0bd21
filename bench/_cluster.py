"""The system under test: a fresh etcd and apiserver in a temporary
directory, stopped (and the directory removed, unless kept) however the run
ends.

Both are started the way `kubelab up` and the integration tests start them
(deploy/local.py), so the benchmark measures the same flags. The context
manager stops the apiserver before etcd - a Ctrl-C, a failed scenario or a
SIGTERM (which `python -m bench` turns into KeyboardInterrupt) all go
through `__exit__`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from deploy.local import APIServerProcess, EtcdProcess, etcd_binary


class Cluster:
    def __init__(self, *, keep: bool = False, apiserver_flags: Sequence[str] = ()) -> None:
        self.keep = keep
        self.apiserver_flags = list(apiserver_flags)
        self.workdir = Path(tempfile.mkdtemp(prefix="kubelab-bench-"))
        self._stack = contextlib.ExitStack()
        self.etcd: EtcdProcess | None = None
        self.apiserver: APIServerProcess | None = None

    def __enter__(self) -> Cluster:
        self._stack.callback(self._cleanup)
        try:
            self.etcd = EtcdProcess(self.workdir / "etcd-data", log=self.workdir / "etcd.log")
            self._stack.callback(self.etcd.stop)
            self.etcd.wait_ready()
            self.apiserver = APIServerProcess(self.etcd.url, log=self.workdir / "apiserver.log",
                                              extra=self.apiserver_flags)
            self._stack.callback(self.apiserver.stop)
            self.apiserver.wait_ready()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()  # apiserver, then etcd, then the directory

    def _cleanup(self) -> None:
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def target(self) -> str:
        assert self.apiserver is not None
        return self.apiserver.target

    @property
    def etcd_url(self) -> str:
        assert self.etcd is not None
        return self.etcd.url


def memory_of(pid: int) -> dict[str, float]:
    """VmRSS (resident now) and VmHWM (peak resident) of a process, in MB
    (10^6 bytes, as the target is written)."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out[name] = int(rest.split()[0]) * 1024 / 1e6  # the kernel reports kB (KiB)
    return out


def etcd_version() -> str:
    try:
        out = subprocess.run([etcd_binary(), "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.splitlines()[0].split(":", 1)[-1].strip() if out else "unknown"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (all threads)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # after the command name: state is field 3, utime 14 and stime 15 (1-based)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds each group of processes used during a block. Divided by
    the phase's wall time it says how many cores each kept busy - on a
    2-core machine, who the bottleneck was."""

    def __init__(self, groups: Mapping[str, Sequence[int]]) -> None:
        self.groups = {name: list(pids) for name, pids in groups.items()}
        self.seconds: dict[str, float] = {}

    def _sample(self) -> dict[str, float]:
        return {name: sum(cpu_seconds(p) for p in pids) for name, pids in self.groups.items()}

    def __enter__(self) -> CpuMeter:
        self._start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._sample()
        self.seconds = {name: end[name] - self._start[name] for name in self.groups}

    def cores(self, wall: float) -> dict[str, float]:
        return {name: round(used / wall, 2) if wall > 0 else 0.0 for name, used in self.seconds.items()}
