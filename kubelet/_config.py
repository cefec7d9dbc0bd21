"""The kubelet's settings (a KubeletConfiguration's worth), built from the
command line by __main__ or by hand in tests and hollow nodes.

Capacity is read from the machine unless overridden (`--cpu`, `--memory`,
`--max-pods`, `--ephemeral-storage`); hollow nodes always pass it, so a
thousand of them do not each read /proc. Eviction thresholds use the
kubelet's syntax (`memory.available<100Mi,nodefs.available<10%`); a bad
one is a ValueError naming the threshold and the rule it breaks.
"""

from __future__ import annotations

import os
import platform
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from api import Quantity, QuantityError

EVICTION_SIGNALS = ("memory.available", "nodefs.available")
DEFAULT_EVICTION_HARD = "memory.available<100Mi,nodefs.available<10%"


@dataclass(frozen=True)
class Threshold:
    """A hard eviction threshold: `signal` below `quantity` bytes or below
    `percentage` of capacity."""

    signal: str
    quantity: int = 0
    percentage: float = 0.0

    def limit(self, capacity: int) -> int:
        return int(capacity * self.percentage) if self.percentage else self.quantity

    def __str__(self) -> str:
        return f"{self.signal}<{self.percentage * 100:g}%" if self.percentage else f"{self.signal}<{self.quantity}"


def parse_eviction_hard(text: str) -> list[Threshold]:
    out: list[Threshold] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        signal, sep, value = part.partition("<")
        signal, value = signal.strip(), value.strip()
        if not sep:
            raise ValueError(f"--eviction-hard {part!r}: want SIGNAL<QUANTITY or SIGNAL<PERCENT%")
        if signal not in EVICTION_SIGNALS:
            raise ValueError(f"--eviction-hard {part!r}: unsupported signal {signal!r}; supported: "
                             f"{', '.join(EVICTION_SIGNALS)}")
        if value.endswith("%"):
            try:
                pct = float(value[:-1]) / 100
            except ValueError:
                raise ValueError(f"--eviction-hard {part!r}: {value!r} is not a percentage") from None
            if not 0 < pct <= 1:
                raise ValueError(f"--eviction-hard {part!r}: the percentage must be in (0%, 100%]")
            out.append(Threshold(signal, percentage=pct))
            continue
        try:
            q = Quantity.parse(value)
        except QuantityError as err:
            raise ValueError(f"--eviction-hard {part!r}: {err}") from None
        if q.amount < 0:
            raise ValueError(f"--eviction-hard {part!r}: must not be negative")
        out.append(Threshold(signal, quantity=q.value()))
    return out


def machine_cpu() -> str:
    return str(os.cpu_count() or 1)


def machine_memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1])}Ki"
    except OSError:
        pass
    return "4Gi"


def machine_storage(path: Path) -> str:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return str(shutil.disk_usage(probe).total)
    except OSError:
        return "20Gi"


def machine_arch() -> str:
    arch = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(arch, arch)


@dataclass
class KubeletConfig:
    node_name: str
    node_ip: str = "127.0.0.1"
    root_dir: Path = Path("/var/lib/kubelet")
    pod_logs_dir: Path = Path("/var/log/pods")
    cluster_dns: list[str] = field(default_factory=lambda: ["10.96.0.10"])
    cluster_domain: str = "cluster.local"
    resolv_conf: Path | None = Path("/etc/resolv.conf")
    cpu: str = ""
    memory: str = ""
    ephemeral_storage: str = ""
    max_pods: int = 110
    port: int = 10250
    node_status_update_frequency: float = 10.0
    node_status_report_frequency: float = 300.0
    node_lease_duration: int = 40
    sync_frequency: float = 60.0
    relist_period: float = 1.0
    housekeeping_interval: float = 10.0
    pod_manifest_path: Path | None = None
    file_check_frequency: float = 20.0
    eviction_hard: list[Threshold] = field(default_factory=lambda: parse_eviction_hard(DEFAULT_EVICTION_HARD))
    labels: dict[str, str] = field(default_factory=dict)
    # Hollow nodes keep nothing on disk: no pod directories, /etc/hosts
    # files or volumes, and no container logs.
    hollow: bool = False

    def __post_init__(self) -> None:
        self.cpu = self.cpu or machine_cpu()
        self.memory = self.memory or machine_memory()
        self.ephemeral_storage = self.ephemeral_storage or machine_storage(self.root_dir)
        for name in ("cpu", "memory", "ephemeral_storage"):
            try:
                Quantity.parse(getattr(self, name))
            except QuantityError as err:
                raise ValueError(f"--{name.replace('_', '-')} {getattr(self, name)!r}: {err}") from None
        if self.max_pods < 1:
            raise ValueError(f"--max-pods {self.max_pods}: must be at least 1")

    @property
    def pods_dir(self) -> Path:
        return self.root_dir / "pods"

    def capacity(self) -> dict[str, str]:
        return {"cpu": self.cpu, "memory": self.memory, "ephemeral-storage": self.ephemeral_storage,
                "pods": str(self.max_pods)}

    def allocatable(self) -> dict[str, str]:
        """Capacity less the hard eviction thresholds that are quantities
        (as Kubernetes subtracts them), never below zero."""
        out = self.capacity()
        for t in self.eviction_hard:
            name = {"memory.available": "memory", "nodefs.available": "ephemeral-storage"}[t.signal]
            total = Quantity.parse(out[name]).value()
            out[name] = str(max(0, total - t.limit(total)))
        return out
