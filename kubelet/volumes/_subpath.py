"""subPath: one file or directory of a volume mounted into a container,
pinned so that it cannot point outside the volume.

A container can write symlinks into its volumes, so a subPath is never
handed to the runtime as a path to resolve later (CVE-2017-1002101).
Like the kubelet, `bind_subpath`:

1. rejects an absolute subPath or one with a `..` element (a VolumeError
   naming the volume, the container and the rule);
2. resolves symlinks and checks the result is still inside the volume;
3. opens the resolved path one element at a time with O_NOFOLLOW (making
   missing directories on the way, with the volume directory's mode), so
   a symlink swapped in after step 2 is refused, not followed;
4. bind-mounts the opened file descriptor (/proc/self/fd/N) on a target
   of its own under `<pod>/volume-subpaths/<volume>/<container>/<index>`,
   and the runtime mounts that target.

The bind mounts are removed with the pod (VolumeManager.unmount). A
configMap key mounted by subPath is pinned to the version it had when the
container started: it does not see later updates, as in Kubernetes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ._base import VolumeError
from ._mount import bind_mount, is_mount_point, unmount


def _within(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


def check_subpath(sub_path: str, what: str) -> None:
    if os.path.isabs(sub_path):
        raise VolumeError(f"{what}: subPath {sub_path!r} must be a relative path")
    if ".." in sub_path.split("/"):
        raise VolumeError(f"{what}: subPath {sub_path!r} must not contain '..'")


def _open_within(base: str, relative: str, dir_mode: int, what: str) -> int:
    """An O_PATH descriptor of base/relative, opened element by element
    without following symlinks; missing directories are made."""
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise VolumeError(f"{what}: subPath leaves the volume")
    fd = os.open(base, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            try:
                child = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except FileNotFoundError:
                os.mkdir(part, dir_mode, dir_fd=fd)
                child = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = child
            mode = os.fstat(fd).st_mode
            if stat.S_ISLNK(mode):
                raise VolumeError(f"{what}: subPath element {part!r} became a symlink while it was being opened")
    except OSError as err:
        os.close(fd)
        raise VolumeError(f"{what}: cannot open subPath: {err.strerror}") from None
    except VolumeError:
        os.close(fd)
        raise
    return fd


def bind_subpath(volume_path: Path, sub_path: str, target: Path, *, what: str) -> Path:
    """Bind-mount volume_path/sub_path on `target` (see the module
    docstring) and return `target`. `what` names the volume mount in errors
    (`volume "cfg" mounted into container "app"`)."""
    check_subpath(sub_path, what)
    base = os.path.realpath(volume_path)
    if not os.path.isdir(base):
        raise VolumeError(f"{what}: volume path {volume_path} is not a directory")
    resolved = os.path.realpath(os.path.join(base, sub_path))
    if not _within(resolved, base):
        raise VolumeError(f"{what}: subPath {sub_path!r} resolves to {resolved}, outside the volume")
    dir_mode = stat.S_IMODE(os.stat(base).st_mode)
    fd = _open_within(base, os.path.relpath(resolved, base), dir_mode, what)
    try:
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        for _ in range(8):  # the previous start's bind mount(s): a restarted container mounts afresh
            if not is_mount_point(target):
                break
            unmount(target)
        target.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        if target.exists() and target.is_dir() != is_dir:  # the subPath changed type since the last start
            target.rmdir() if target.is_dir() else target.unlink()
        if is_dir:
            target.mkdir(mode=0o750, exist_ok=True)
        elif not target.exists():
            target.touch(mode=0o640)
        try:
            bind_mount(f"/proc/self/fd/{fd}", target)
        except OSError as err:
            raise VolumeError(f"{what}: {err}") from None
    finally:
        os.close(fd)
    return target
