"""The runtime core: options, recovery after a restart, and launching a
runc container (pause or app) with its monitor.

A container is launched in three durable steps: its rootfs overlay is
mounted and config.json written; its monitor runs `runc create` and reports
back; its record is saved. A crash between the steps leaves a runc
container or a directory without a record, and `recover()` (run at every
start) removes exactly those. Containers with records need no reattaching:
their monitors never depended on the shim.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from . import _cni, _monitor
from ._errors import FailedPrecondition, NotFound, RuntimeFailure
from ._images import ImageStore
from ._runc import Runc, mount_overlay, unmount
from ._stats import UNIFIED
from ._store import ContainerRecord, SandboxRecord, Store

log = logging.getLogger(__name__)
R = TypeVar("R")
MONITOR = Path(_monitor.__file__).resolve()


@dataclass
class Options:
    root: Path = Path("/var/lib/kubelab-crishim")
    state_dir: Path = Path("/run/kubelab-crishim")
    node_name: str = ""
    runc: str = "runc"
    skopeo: str = "skopeo"
    cni_bin_dir: Path = Path("/usr/lib/cni")
    cni_conf_dir: Path | None = None
    cni_bridge: str = "cni0"
    cni_ip_masq: bool = False
    pod_cidr: str = ""
    pod_infra_image: str = "registry.k8s.io/pause:3.10"
    registry_config: Path | None = None
    cgroup_root: str = "/kubelab"
    log_max_size: int = 10 * 1024 * 1024
    log_max_files: int = 5


@dataclass
class Launched:
    pid: int
    monitor_pid: int


class Runtime:
    def __init__(self, options: Options, clock: Callable[[], int] = time.time_ns) -> None:
        self.options = options
        self.clock = clock
        self.store = Store(options.root)
        self.runc = Runc(options.runc, options.state_dir / "runc")
        self.images = ImageStore(options.root / "images", options.registry_config, options.skopeo)
        self.cni = _cni.CNI(options.cni_bin_dir)
        self.pod_cidr = options.pod_cidr
        self.locks: dict[str, asyncio.Lock] = {}
        self._reapers: set[asyncio.Task[int]] = set()

    def lock(self, key: str) -> asyncio.Lock:
        return self.locks.setdefault(key, asyncio.Lock())

    # ------------------------------------------------------------ startup

    async def start(self) -> None:
        self.options.root.mkdir(parents=True, exist_ok=True)
        self.options.state_dir.mkdir(parents=True, exist_ok=True)
        self.images.start()
        saved = self.options.root / "runtime-config.json"
        if not self.pod_cidr and saved.exists():
            self.pod_cidr = str(json.loads(saved.read_text()).get("podCIDR", ""))
        self.store.load()
        await self.recover()

    def set_pod_cidr(self, cidr: str) -> None:
        self.pod_cidr = cidr
        (self.options.root / "runtime-config.json").write_text(json.dumps({"podCIDR": cidr}))

    def conflist(self) -> dict[str, Any] | None:
        if self.options.cni_conf_dir is not None:
            found = _cni.load_conflist(self.options.cni_conf_dir, self.pod_cidr)
            if found is not None:
                return found
        if not self.pod_cidr:
            return None
        return _cni.builtin_conflist(self.pod_cidr, self.options.root / "cni" / "networks",
                                     self.options.cni_bridge, self.options.cni_ip_masq)

    async def recover(self) -> None:
        known = set(self.store.containers) | set(self.store.sandboxes)
        for state in await self.runc.list():
            if state["id"] not in known:
                log.warning("runc container %s has no record (a create cut short): removing it", state["id"][:12])
                await self.runc.delete(state["id"])
        for kind, records in (("containers", self.store.containers), ("sandboxes", self.store.sandboxes)):
            for entry in (self.options.root / kind).iterdir():
                if entry.name not in records:
                    self.cleanup_dir(entry / "rootfs" if kind == "containers" else entry / "pause" / "rootfs")
                    shutil.rmtree(entry, ignore_errors=True)
        for rec in list(self.store.containers.values()):
            await self.container_state(rec)
        log.info("recovered %d sandboxes and %d containers", len(self.store.sandboxes), len(self.store.containers))

    @staticmethod
    def cleanup_dir(rootfs: Path) -> None:
        if os.path.ismount(rootfs):
            unmount(rootfs)

    # ------------------------------------------------------------ launching

    def cgroups_path(self, sandbox: SandboxRecord, container_id: str) -> str:
        return f"{self.options.cgroup_root.rstrip('/')}/{sandbox.cgroup_parent.strip('/')}/{container_id}"

    async def launch(self, container_id: str, bundle: Path, spec: dict[str, Any], layers: list[Path],
                     log_path: str, *, stdin: bool = False, stdin_once: bool = False) -> Launched:
        """Mount the rootfs, write config.json and have a monitor `runc create` it
        (holding its stdin open for attach with `stdin`)."""
        mount_overlay(layers, bundle / "upper", bundle / "work", bundle / "rootfs")
        (bundle / "config.json").write_text(json.dumps(spec, indent=1))
        cgroup = spec["linux"]["cgroupsPath"]
        oom_file = (f"/sys/fs/cgroup{cgroup}/memory.events" if UNIFIED
                    else f"/sys/fs/cgroup/memory{cgroup}/memory.oom_control")
        sync_r, sync_w = os.pipe()
        argv = [sys.executable, "-S", str(MONITOR), "--id", container_id, "--bundle", str(bundle),
                "--runc", self.options.runc, "--runc-root", str(self.runc.root), "--pid-file", str(bundle / "pid"),
                "--exit-file", str(bundle / "exit.json"), "--log-path", log_path,
                "--log-max-size", str(self.options.log_max_size), "--log-max-files", str(self.options.log_max_files),
                "--oom-file", oom_file, "--sync-fd", str(sync_w)]
        if spec["process"].get("terminal"):
            argv.append("--tty")
        if stdin:
            argv += ["--stdin", *(["--stdin-once"] if stdin_once else [])]
        with open(bundle / "monitor.log", "ab") as diag:
            proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL, stdout=diag,
                                                        stderr=diag, pass_fds=(sync_w,), start_new_session=True,
                                                        cwd="/")
        os.close(sync_w)
        reader = os.fdopen(sync_r, "rb")
        try:
            line = (await asyncio.to_thread(reader.readline)).decode(errors="replace").strip()
        finally:
            reader.close()
        reaper = asyncio.create_task(proc.wait())   # the monitor is ours until the shim exits; then init reaps it
        self._reapers.add(reaper)
        reaper.add_done_callback(self._reapers.discard)
        verdict, _, detail = line.partition(" ")
        if verdict != "ok":
            await self.runc.delete(container_id)
            self.cleanup_dir(bundle / "rootfs")
            raise RuntimeFailure(f"creating container {container_id[:12]}: {detail or 'the monitor died'}")
        return Launched(int(detail), proc.pid)

    # ------------------------------------------------------------ container state

    def find_container(self, container_id: str) -> ContainerRecord:
        return _find(self.store.containers, container_id, "container")

    def find_sandbox(self, sandbox_id: str) -> SandboxRecord:
        return _find(self.store.sandboxes, sandbox_id, "pod sandbox")

    async def container_state(self, rec: ContainerRecord) -> tuple[str, dict[str, Any] | None]:
        """("created" | "running" | "exited", exit status). A container whose
        monitor vanished without writing exit.json is asked of runc; if runc
        has it stopped, its exit code is unknown and recorded as 255."""
        bundle = self.store.container_dir(rec.id)
        return await self._state(rec.id, bundle, rec.monitor_pid, bool(rec.started_at))

    async def _state(self, runc_id: str, bundle: Path, monitor_pid: int,
                     started: bool) -> tuple[str, dict[str, Any] | None]:
        status = _read_exit(bundle)
        if status is not None:
            return "exited", status
        if monitor_alive(monitor_pid, runc_id):
            return ("running" if started else "created"), None
        state = await self.runc.state(runc_id)
        status = _read_exit(bundle)   # the monitor may have finished meanwhile
        if status is not None:
            return "exited", status
        if state is not None and state.get("status") in ("running", "created", "paused"):
            return ("running" if state["status"] != "created" else "created"), None
        status = {"exitCode": 255, "finishedAt": self.clock(), "signal": 0, "oomKilled": False,
                  "message": "the container's monitor exited before it did; its exit status is unknown"}
        (bundle / "exit.json").write_text(json.dumps(status))
        return "exited", status

    async def wait_exit(self, runc_id: str, bundle: Path, monitor_pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state, _ = await self._state(runc_id, bundle, monitor_pid, True)
            if state == "exited":
                return True
            await asyncio.sleep(0.05)
        return False

    async def kill(self, runc_id: str, bundle: Path, monitor_pid: int, signal: str, timeout: float) -> None:
        """Send `signal`; after `timeout` seconds still running, SIGKILL every process of the container."""
        state, _ = await self._state(runc_id, bundle, monitor_pid, True)
        if state == "exited":
            return
        if timeout > 0 and signal not in ("SIGKILL", "KILL", "9"):
            await self.runc.kill(runc_id, signal)
            if await self.wait_exit(runc_id, bundle, monitor_pid, timeout):
                return
            log.info("container %s still running %.0fs after %s: killing it", runc_id[:12], timeout, signal)
        await self.runc.kill(runc_id, "SIGKILL", all_processes=True)
        if not await self.wait_exit(runc_id, bundle, monitor_pid, 30):
            raise RuntimeFailure(f"container {runc_id[:12]} did not exit after SIGKILL")

    async def destroy(self, runc_id: str, bundle: Path, monitor_pid: int) -> None:
        """Kill (at once), delete from runc, unmount and remove the bundle."""
        await self.kill(runc_id, bundle, monitor_pid, "SIGKILL", 0)
        await self.runc.delete(runc_id)
        self.cleanup_dir(bundle / "rootfs")
        await asyncio.to_thread(shutil.rmtree, bundle, True)

    def check_sandbox_ready(self, sandbox: SandboxRecord) -> None:
        if not sandbox.ready:
            raise FailedPrecondition(f'pod sandbox "{sandbox.id}" is not ready (stopped): create a new one')


def _find(records: dict[str, R], wanted: str, what: str) -> R:
    """The record with this id, or the only one whose id starts with it."""
    rec = records.get(wanted)
    if rec is None and wanted:
        matches = [r for rid, r in records.items() if rid.startswith(wanted)]
        rec = matches[0] if len(matches) == 1 else None
    if rec is None:
        raise NotFound(f'{what} "{wanted}" not found')
    return rec


def _read_exit(bundle: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads((bundle / "exit.json").read_text()))
    except (OSError, ValueError):
        return None


def monitor_alive(pid: int, container_id: str) -> bool:
    if pid <= 0:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return container_id.encode() in cmdline and b"_monitor.py" in cmdline

