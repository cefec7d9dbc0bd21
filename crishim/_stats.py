"""Container stats from the container's cgroup: CPU time (cpuacct.usage, or
cpu.stat on cgroup v2), memory usage and working set (usage minus inactive
file pages, as the kubelet's eviction manager counts it), RSS, and the
writable layer's size. usage_nano_cores needs two samples: the previous
one per container is kept in memory, so the first answer after a (re)start
has none, like cadvisor's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from proto import cri_pb2

CGROUP = Path("/sys/fs/cgroup")
UNIFIED = (CGROUP / "cgroup.controllers").exists()


@dataclass
class Sample:
    timestamp: int
    cpu_ns: int | None
    memory_usage: int | None
    working_set: int | None
    rss: int | None


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stat(path: Path) -> dict[str, int]:
    try:
        return {k: int(v) for k, v in (line.split() for line in path.read_text().splitlines() if " " in line)}
    except (OSError, ValueError):
        return {}


def sample(cgroups_path: str, now: int) -> Sample:
    rel = cgroups_path.lstrip("/")
    if UNIFIED:
        base = CGROUP / rel
        cpu = _stat(base / "cpu.stat").get("usage_usec")
        stat = _stat(base / "memory.stat")
        usage = _read_int(base / "memory.current")
        inactive, rss = stat.get("inactive_file", 0), stat.get("anon")
        return Sample(now, cpu * 1000 if cpu is not None else None, usage,
                      max(0, usage - inactive) if usage is not None else None, rss)
    usage = _read_int(CGROUP / "memory" / rel / "memory.usage_in_bytes")
    stat = _stat(CGROUP / "memory" / rel / "memory.stat")
    inactive = stat.get("total_inactive_file", 0)
    return Sample(now, _read_int(CGROUP / "cpuacct" / rel / "cpuacct.usage"), usage,
                  max(0, usage - inactive) if usage is not None else None, stat.get("total_rss"))




def to_proto(attrs: cri_pb2.ContainerAttributes, now_sample: Sample, previous: Sample | None,
             layer: cri_pb2.FilesystemUsage) -> cri_pb2.ContainerStats:
    stats = cri_pb2.ContainerStats(attributes=attrs, writable_layer=layer)
    if now_sample.cpu_ns is not None:
        stats.cpu.timestamp = now_sample.timestamp
        stats.cpu.usage_core_nano_seconds.value = now_sample.cpu_ns
        if previous is not None and previous.cpu_ns is not None and now_sample.timestamp > previous.timestamp:
            delta = max(0, now_sample.cpu_ns - previous.cpu_ns)
            stats.cpu.usage_nano_cores.value = delta * 1_000_000_000 // (now_sample.timestamp - previous.timestamp)
    if now_sample.memory_usage is not None:
        stats.memory.timestamp = now_sample.timestamp
        stats.memory.usage_bytes.value = now_sample.memory_usage
        stats.memory.working_set_bytes.value = now_sample.working_set or 0
        if now_sample.rss is not None:
            stats.memory.rss_bytes.value = now_sample.rss
    return stats
