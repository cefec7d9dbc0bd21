"""emptyDir: scratch space that lives as long as the pod.

Medium "" is a directory in the pod's volume directory, on the node's
disk; its sizeLimit is not enforced by the filesystem but reported by
`disk_usage`, so the kubelet can evict a pod that writes past it (as
Kubernetes' eviction manager does). Medium "Memory" is a tmpfs sized like
Kubernetes sizes it: node allocatable memory, lowered to the pod's memory
limit and then to sizeLimit when those are smaller - writes past the size
fail with ENOSPC inside the container. Other media (HugePages) are not
supported: a clear VolumeError. The directory is world-writable (0777),
with the pod's fsGroup as group and set-gid, as the kubelet leaves it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from api import Quantity
from component_base import disk_usage as du
from kubelet._env import _quantities, host_allocatable
from proto import core_pb2

from ._base import MountedVolume, VolumeError, VolumeHost, VolumePlugin, fs_group
from ._mount import fs_type, is_mount_point, mount_tmpfs

MEDIUM_DEFAULT = ""
MEDIUM_MEMORY = "Memory"


def pod_memory_limit(pod: core_pb2.Pod) -> int:
    """The pod's memory limit in bytes (0: unlimited): the sum of its
    containers' limits, or the largest init container's if larger; any
    container without a limit makes the pod unlimited."""
    def limit(c: core_pb2.Container) -> int:
        q = c.resources.limits.get("memory")
        return Quantity.parse(q.value).value() if q is not None and q.value else 0
    app = [limit(c) for c in pod.spec.containers]
    init = [limit(c) for c in pod.spec.initContainers]
    if not app or 0 in app or 0 in init:
        return 0
    return max(sum(app), max(init, default=0))


def memory_medium_size(pod: core_pb2.Pod, volume: core_pb2.Volume,
                       node_allocatable: Mapping[str, Any] | None) -> int:
    allocatable = _quantities(node_allocatable) if node_allocatable is not None else host_allocatable()
    size = allocatable.get("memory", Quantity(0)).value()
    pod_limit = pod_memory_limit(pod)
    if 0 < pod_limit and (size == 0 or pod_limit <= size):
        size = pod_limit
    if volume.emptyDir.sizeLimit.value:
        limit = Quantity.parse(volume.emptyDir.sizeLimit.value).value()
        if 0 < limit and (size == 0 or limit <= size):
            size = limit
    return size


def prepare_dir(path: Path, *, memory: bool, size: int = 0, group: int | None = None) -> None:
    """The directory (or tmpfs mount) an emptyDir-like volume lives in."""
    path.mkdir(mode=0o750, parents=True, exist_ok=True)
    if memory and not is_mount_point(path):
        try:
            mount_tmpfs(path, size)
        except OSError as err:
            raise VolumeError(str(err)) from None
    elif memory and fs_type(path) != "tmpfs":
        raise VolumeError(f"{path} is mounted as {fs_type(path)}, not the tmpfs medium Memory asks for")
    os.chmod(path, 0o777)  # noqa: S103 - any container user may write an emptyDir, as in Kubernetes
    if group is not None:
        os.chown(path, -1, group)
        os.chmod(path, 0o777 | 0o2000)  # noqa: S103 - set-gid: new files get the fsGroup


class EmptyDirPlugin(VolumePlugin):
    NAME: ClassVar[str] = "kubernetes.io~empty-dir"
    SOURCE: ClassVar[str] = "emptyDir"

    async def setup(self, host: VolumeHost, pod: core_pb2.Pod, volume: core_pb2.Volume) -> MountedVolume:
        medium = volume.emptyDir.medium
        if medium not in (MEDIUM_DEFAULT, MEDIUM_MEMORY):
            raise VolumeError(f'emptyDir medium "{medium}" is not supported by kubelab (use "" or "Memory")')
        path = host.volume_dir(pod, self.NAME, volume.name)
        memory = medium == MEDIUM_MEMORY
        size = memory_medium_size(pod, volume, host.node_allocatable) if memory else 0
        prepare_dir(path, memory=memory, size=size, group=fs_group(pod))
        return MountedVolume(path, read_only=False)


def disk_usage(path: Path) -> int:
    """Bytes a directory tree takes on disk (like `du -s`), staying on its
    filesystem; a tmpfs counts what it holds."""
    if is_mount_point(path):
        fs = os.statvfs(path)
        return (fs.f_blocks - fs.f_bfree) * fs.f_frsize
    return du(path)[0]
