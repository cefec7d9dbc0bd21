"""tmpfs mounts and the mount table, through libc (no `mount` processes).

Only the kubelet's own mounts are made here: tmpfs for emptyDir with
medium Memory and for the Secret and projected volumes whose content stays
off the disk, and the bind mounts that pin a container's subPath (see
_subpath.py). `mount_points_under` reads /proc/self/mountinfo, so
mounts left by an earlier kubelet run are found and removed too. A failed
mount or unmount raises OSError with the path and the kernel's reason.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

MS_NOSUID = 2
MS_NODEV = 4
MS_BIND = 4096
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def mount_tmpfs(target: Path, size_bytes: int = 0) -> None:
    """Mount a tmpfs on `target` (size 0: the kernel's default, half of RAM)."""
    options = f"size={size_bytes}" if size_bytes > 0 else ""
    if _libc.mount(b"tmpfs", os.fsencode(target), b"tmpfs", MS_NOSUID | MS_NODEV, options.encode() or None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount -t tmpfs -o {options or 'defaults'} tmpfs {target}: {os.strerror(err)}")


def bind_mount(source: str, target: Path) -> None:
    """Bind-mount `source` (a path or /proc/self/fd/N) on `target`."""
    if _libc.mount(os.fsencode(source), os.fsencode(target), None, MS_BIND, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount --bind {source} {target}: {os.strerror(err)}")


def unmount(target: Path) -> None:
    """Unmount `target`; a busy mount is detached (lazy unmount) instead."""
    path = os.fsencode(target)
    if _libc.umount2(path, 0) == 0:
        return
    err = ctypes.get_errno()
    if err == errno.EBUSY and _libc.umount2(path, MNT_DETACH) == 0:
        log.warning("%s was busy: detached it (lazy unmount)", target)
        return
    if err == errno.EINVAL and not is_mount_point(target):
        return  # not mounted (any more)
    raise OSError(err, f"umount {target}: {os.strerror(err)}")


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as \\ooo."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_points_under(root: Path) -> list[Path]:
    """Mount points at or below `root`, deepest first (the unmount order)."""
    prefix = os.path.realpath(root)
    found: list[Path] = []
    try:
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                point = _unescape(line.split()[4])
                if point == prefix or point.startswith(prefix + "/"):
                    found.append(Path(point))
    except FileNotFoundError:
        return []
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def is_mount_point(path: Path) -> bool:
    """Whether something is mounted exactly at `path`, by the mount table:
    os.path.ismount misses a bind mount from the same filesystem."""
    target = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as fh:
            return any(_unescape(line.split()[4]) == target for line in fh)
    except FileNotFoundError:
        return os.path.ismount(path)


def fs_type(path: Path) -> str:
    """The filesystem type mounted exactly at `path` ("" if none)."""
    target = os.path.realpath(path)
    fstype = ""
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            if _unescape(left.split()[4]) == target:
                fstype = right.split()[0]  # the last (top) mount wins
    return fstype
