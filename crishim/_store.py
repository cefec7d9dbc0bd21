"""What the shim knows about its sandboxes and containers, on disk.

One JSON file per sandbox (<root>/sandboxes/<id>/sandbox.json) and per
container (<root>/containers/<id>/container.json), written whole and renamed
into place, so a crash leaves the old record or the new one. The CRI configs
are kept in protobuf's JSON form, readable by people. A container's exit is
not here: its monitor writes exit.json beside it (see _monitor.py).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class SandboxRecord:
    id: str
    config: dict[str, Any]            # PodSandboxConfig, protobuf JSON
    created_at: int
    ready: bool = True
    netns: str = ""                   # the /run/netns name; "" for hostNetwork
    ip: str = ""
    additional_ips: list[str] = field(default_factory=list)
    cni_conflist: dict[str, Any] = field(default_factory=dict)
    cni_result: dict[str, Any] = field(default_factory=dict)
    pause_pid: int = 0
    cgroup_parent: str = ""


@dataclass
class ContainerRecord:
    id: str
    sandbox_id: str
    config: dict[str, Any]            # ContainerConfig, protobuf JSON
    image_id: str
    image_ref: str
    image_name: str
    created_at: int
    log_path: str
    cgroups_path: str
    layers: list[str] = field(default_factory=list)
    stop_signal: str = "SIGTERM"
    started_at: int = 0
    pid: int = 0
    monitor_pid: int = 0
    termination_log: str = ""         # host file behind terminationMessagePath


def _write(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as fh:
        json.dump(value, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _records(base: Path, filename: str) -> list[tuple[str, dict[str, Any]]]:
    base.mkdir(parents=True, exist_ok=True)
    found = []
    for entry in base.iterdir():
        path = entry / filename
        try:
            found.append((entry.name, dict(json.loads(path.read_text()))))
        except (OSError, ValueError, TypeError) as err:
            log.warning("record %s unreadable (%s): left for cleanup", path, err)
    return found


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sandboxes: dict[str, SandboxRecord] = {}
        self.containers: dict[str, ContainerRecord] = {}

    def sandbox_dir(self, sandbox_id: str) -> Path:
        return self.root / "sandboxes" / sandbox_id

    def container_dir(self, container_id: str) -> Path:
        return self.root / "containers" / container_id

    def load(self) -> None:
        for sid, value in _records(self.root / "sandboxes", "sandbox.json"):
            self.sandboxes[sid] = SandboxRecord(**value)
        for cid, value in _records(self.root / "containers", "container.json"):
            self.containers[cid] = ContainerRecord(**value)

    def save_sandbox(self, record: SandboxRecord) -> None:
        _write(self.sandbox_dir(record.id) / "sandbox.json", asdict(record))
        self.sandboxes[record.id] = record

    def save_container(self, record: ContainerRecord) -> None:
        _write(self.container_dir(record.id) / "container.json", asdict(record))
        self.containers[record.id] = record

    def exit_status(self, container_id: str) -> dict[str, Any] | None:
        try:
            return dict(json.loads((self.container_dir(container_id) / "exit.json").read_text()))
        except (OSError, ValueError):
            return None

    def record_exit(self, container_id: str, status: dict[str, Any]) -> None:
        _write(self.container_dir(container_id) / "exit.json", status)
