"""runc, called as a command (its CLI is its stable interface), and the
overlay mounts of container root filesystems.

Every container lives in the shim's own runc root (--state-dir/runc), so
`runc list` there is exactly this node's containers: after a restart the
shim compares it with its records and cleans up what it never recorded.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import json
import os
from pathlib import Path
from typing import Any

from ._errors import NotFound, RuntimeFailure

_libc = ctypes.CDLL(None, use_errno=True)
MNT_DETACH = 2


class Runc:
    def __init__(self, binary: str, root: Path) -> None:
        self.binary = binary
        self.root = root

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.root), *args]

    async def run(self, *args: str, check: bool = True) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(*self.argv(*args), stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        code = proc.returncode or 0
        if code != 0 and check:
            message = err.decode(errors="replace").strip() or out.decode(errors="replace").strip()
            if "does not exist" in message or "not exist" in message:
                raise NotFound(f"runc {args[0]}: {message}")
            raise RuntimeFailure(f"runc {' '.join(args[:1])} {args[-1]}: {message}")
        return code, out.decode(errors="replace")

    async def state(self, container_id: str) -> dict[str, Any] | None:
        """runc's state of a container (status: created, running, stopped, paused), None if unknown."""
        code, out = await self.run("state", container_id, check=False)
        if code != 0:
            return None
        data = json.loads(out)
        return dict(data)

    async def list(self) -> list[dict[str, Any]]:
        if not self.root.exists():
            return []
        _, out = await self.run("list", "--format", "json")
        return list(json.loads(out or "null") or [])

    async def start(self, container_id: str) -> None:
        await self.run("start", container_id)

    async def kill(self, container_id: str, signal: str, all_processes: bool = False) -> None:
        args = ["kill", *(["--all"] if all_processes else []), container_id, signal]
        code, out = await self.run(*args, check=False)
        if code != 0 and "not running" not in out and "process already finished" not in out:
            state = await self.state(container_id)
            if state is not None and state.get("status") not in ("stopped",):
                raise RuntimeFailure(f"runc kill {container_id[:12]} {signal} failed")

    async def delete(self, container_id: str) -> None:
        await self.run("delete", "--force", container_id, check=False)


def mount_overlay(lower: list[Path], upper: Path, work: Path, target: Path) -> None:
    upper.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    if os.path.ismount(target):
        return
    if len(lower) == 1:   # overlayfs wants an upper layer on top of a single lower one: give it an empty one
        empty = upper.parent / "empty"
        empty.mkdir(exist_ok=True)
        lower = [*lower, empty]
    options = f"lowerdir={':'.join(map(str, lower))},upperdir={upper},workdir={work}"
    if _libc.mount(b"overlay", str(target).encode(), b"overlay", 0, options.encode()) != 0:
        err = ctypes.get_errno()
        raise RuntimeFailure(f"mounting the container rootfs at {target}: {os.strerror(err)} ({options})")


def unmount(target: Path) -> None:
    if _libc.umount2(str(target).encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise RuntimeFailure(f"unmounting {target}: {os.strerror(err)}")
