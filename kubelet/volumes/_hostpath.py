"""hostPath: a file or directory of the node, checked against its type.

The types are Kubernetes': DirectoryOrCreate (made 0755 if missing),
Directory, FileOrCreate (made empty, 0644, if missing; its parent must
exist), File, Socket, CharDevice, BlockDevice, and "" (no check, the
default). A failed check is a VolumeError worded as the kubelet words it
(`hostPath type check failed: /x is not a directory`). Nothing is mounted
by the kubelet: containers bind-mount the path itself. The same check
serves hostPath PersistentVolumes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import ClassVar

from proto import core_pb2

from ._base import MountedVolume, VolumeError, VolumeHost, VolumePlugin

_CHECKS: dict[str, tuple[int, str]] = {
    "Directory": (stat.S_IFDIR, "is not a directory"),
    "File": (stat.S_IFREG, "is not a file"),
    "Socket": (stat.S_IFSOCK, "is not a socket file"),
    "CharDevice": (stat.S_IFCHR, "is not a character device"),
    "BlockDevice": (stat.S_IFBLK, "is not a block device"),
}
HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice",
                   "BlockDevice")


def check_host_path(path: str, path_type: str) -> None:
    """Check (and for the ...OrCreate types make) a hostPath; VolumeError."""
    if path_type not in HOST_PATH_TYPES:
        raise VolumeError(f"{path_type} is an invalid volume type")
    if path_type == "":
        return
    if path_type == "DirectoryOrCreate" and not os.path.lexists(path):
        try:
            old = os.umask(0)
            try:
                os.makedirs(path, mode=0o755, exist_ok=True)
            finally:
                os.umask(old)
        except OSError as err:
            raise VolumeError(f"hostPath type check failed: could not create directory {path}: {err.strerror}") \
                from None
        return
    if path_type == "FileOrCreate" and not os.path.lexists(path):
        try:
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
            os.fchmod(fd, 0o644)
            os.close(fd)
        except OSError as err:
            raise VolumeError(f"hostPath type check failed: could not create file {path}: {err.strerror}") from None
        return
    kind, wording = _CHECKS[path_type.removesuffix("OrCreate")]
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = 0
    if stat.S_IFMT(mode) != kind:
        raise VolumeError(f"hostPath type check failed: {path} {wording}")


class HostPathPlugin(VolumePlugin):
    NAME: ClassVar[str] = "kubernetes.io~host-path"
    SOURCE: ClassVar[str] = "hostPath"

    async def setup(self, host: VolumeHost, pod: core_pb2.Pod, volume: core_pb2.Volume) -> MountedVolume:
        source = volume.hostPath
        if not source.path.startswith("/"):
            raise VolumeError(f"hostPath {source.path!r} must be an absolute path")
        check_host_path(source.path, source.type)
        return MountedVolume(Path(source.path), read_only=False)
