"""The kubelet's volume manager: a pod's volumes set up before its
containers start, kept current while it runs, torn down after it is gone.

    <root>/<pod uid>/volumes/<plugin>/<volume>     what plugins set up
    <root>/<pod uid>/volume-subpaths/...           subPath bind mounts

`mount` sets up every volume of a pod (idempotent: the pod worker calls it
on every sync); `container_mounts` turns a container's volumeMounts into
CRI mounts; `refresh` re-projects configMap, secret, downwardAPI and
projected volumes (the AtomicWriter writes only when the content changed,
so calling it on every sync is cheap); `unmount` removes a pod's mounts
and directory; `pods_on_disk` lists the pod directories, so the kubelet
can clean up pods it no longer knows about after a restart.

Failure: every volume of a pod is tried; if any failed, `mount` raises one
VolumeError (`MountVolume.SetUp failed for volume "x" : ...`, Kubernetes'
FailedMount wording) carrying all of them in `errors`, and the volumes
that worked stay set up for the next try. `unmount` deletes nothing while
anything under the pod's directory is still mounted, so a failed unmount
can never delete a volume's content through a mount. Calls for one pod are
serialised by a per-pod lock; the file work is small and runs inline.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from api import Clock, RealClock
from kubelet._env import ClientGetter, ObjectGetter, expand, mapping_for
from proto import core_pb2, cri_pb2

from ._base import MountedVolume, VolumeError, VolumeHost, VolumePlugin
from ._emptydir import EmptyDirPlugin
from ._hostpath import HostPathPlugin
from ._mount import mount_points_under, unmount
from ._projected import ProjectedPlugin
from ._projections import ConfigMapPlugin, DownwardAPIPlugin, SecretPlugin
from ._pvc import PersistentVolumeClaimPlugin
from ._subpath import bind_subpath, check_subpath

log = logging.getLogger(__name__)

MAX_STACKED_MOUNTS = 8
PLUGINS: tuple[VolumePlugin, ...] = (EmptyDirPlugin(), HostPathPlugin(), ConfigMapPlugin(), SecretPlugin(),
                                     DownwardAPIPlugin(), ProjectedPlugin(), PersistentVolumeClaimPlugin())
_PROPAGATION = {
    "": cri_pb2.PROPAGATION_PRIVATE,
    "None": cri_pb2.PROPAGATION_PRIVATE,
    "HostToContainer": cri_pb2.PROPAGATION_HOST_TO_CONTAINER,
    "Bidirectional": cri_pb2.PROPAGATION_BIDIRECTIONAL,
}


def volume_source(volume: core_pb2.Volume) -> str:
    """The one source field set on a Volume (`emptyDir`, `configMap`, ...)."""
    sources = [field.name for field, _ in volume.ListFields() if field.name != "name"]
    if len(sources) != 1:
        raise VolumeError(f'volume "{volume.name}": must set exactly one volume source, found '
                          f"{len(sources)} ({', '.join(sources) or 'none'})", volume=volume.name)
    return sources[0]


class VolumeManager:
    def __init__(self, root: Path, clientset: Any, *, node_name: str, clock: Clock | None = None,
                 node_allocatable: Mapping[str, Any] | None = None, memory_backed_secrets: bool = True,
                 config_maps: ObjectGetter | None = None, secrets: ObjectGetter | None = None) -> None:
        """`root` is `<kubelet root-dir>/pods`. ConfigMaps and Secrets are
        read with a GET each through `clientset` unless getters are given
        (a kubelet with informers passes ListerGetters). `node_allocatable`
        sizes memory volumes (None: this host's memory)."""
        self.root = Path(root)
        self.host = VolumeHost(
            pods_dir=self.root, clientset=clientset,
            config_maps=config_maps or ClientGetter(clientset, core_pb2.ConfigMap),
            secrets=secrets or ClientGetter(clientset, core_pb2.Secret), node_name=node_name,
            clock=clock or RealClock(), node_allocatable=node_allocatable,
            memory_backed_secrets=memory_backed_secrets)
        self._plugins = {plugin.SOURCE: plugin for plugin in PLUGINS}
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    def _pod_dir(self, uid: str) -> Path:
        if not uid or "/" in uid or uid in (".", ".."):
            raise VolumeError(f"invalid pod uid {uid!r}")
        return self.root / uid

    def _plugin(self, volume: core_pb2.Volume) -> VolumePlugin:
        source = volume_source(volume)
        plugin = self._plugins.get(source)
        if plugin is None:
            supported = ", ".join(sorted(self._plugins))
            raise VolumeError(f'volume "{volume.name}": {source} volumes are not supported by kubelab nodes '
                              f"(supported: {supported})", volume=volume.name)
        return plugin

    async def _setup(self, pod: core_pb2.Pod, volumes: Sequence[core_pb2.Volume]) -> dict[str, MountedVolume]:
        mounted: dict[str, MountedVolume] = {}
        errors: list[VolumeError] = []
        for volume in volumes:
            try:
                mounted[volume.name] = await self._plugin(volume).setup(self.host, pod, volume)
            except VolumeError as err:
                errors.append(VolumeError(f'MountVolume.SetUp failed for volume "{volume.name}" : {err}',
                                          volume=volume.name))
        if errors:
            raise VolumeError(str(errors[0]), volume=errors[0].volume, errors=errors)
        return mounted

    async def mount(self, pod: core_pb2.Pod) -> dict[str, MountedVolume]:
        """Set up every volume of `pod`; volume name -> MountedVolume."""
        async with self._lock(pod.metadata.uid):
            self._pod_dir(pod.metadata.uid).mkdir(mode=0o750, parents=True, exist_ok=True)
            return await self._setup(pod, pod.spec.volumes)

    async def refresh(self, pod: core_pb2.Pod) -> None:
        """Re-project the pod's API-backed volumes that are set up (a
        changed ConfigMap, Secret, label or annotation shows in the files)."""
        async with self._lock(pod.metadata.uid):
            due = []
            for volume in pod.spec.volumes:
                plugin = self._plugin(volume)
                if plugin.refreshable and self.host.volume_dir(pod, plugin.NAME, volume.name).is_dir():
                    due.append(volume)
            await self._setup(pod, due)

    def container_mounts(self, pod: core_pb2.Pod, container: core_pb2.Container,
                         mounted: Mapping[str, MountedVolume], *,
                         env: Sequence[tuple[str, str]] = ()) -> list[cri_pb2.Mount]:
        """The CRI mounts for `container`'s volumeMounts. `env` (the
        container's environment) expands subPathExpr."""
        mounts: list[cri_pb2.Mount] = []
        env_map = dict(env)
        for index, vm in enumerate(container.volumeMounts):
            what = f'volume "{vm.name}" mounted at {vm.mountPath} in container "{container.name}"'
            volume = mounted.get(vm.name)
            if volume is None:
                raise VolumeError(f'cannot find volume "{vm.name}" to mount into container "{container.name}"',
                                  volume=vm.name)
            propagation = vm.mountPropagation if vm.HasField("mountPropagation") else ""
            if propagation not in _PROPAGATION:
                raise VolumeError(f"{what}: invalid mountPropagation {propagation!r} (supported: None, "
                                  "HostToContainer, Bidirectional)", volume=vm.name)
            privileged = container.securityContext.HasField("privileged") and container.securityContext.privileged
            if propagation == "Bidirectional" and not privileged:
                raise VolumeError(f"{what}: Bidirectional mount propagation is available only to privileged "
                                  "containers", volume=vm.name)
            sub_path = vm.subPath
            if vm.subPathExpr:
                sub_path = expand(vm.subPathExpr, mapping_for(env_map))
            host_path = volume.host_path
            if sub_path:
                check_subpath(sub_path, what)
                target = self._pod_dir(pod.metadata.uid) / "volume-subpaths" / vm.name / container.name / str(index)
                host_path = bind_subpath(volume.host_path, sub_path, target, what=what)
            mounts.append(cri_pb2.Mount(container_path=vm.mountPath, host_path=str(host_path),
                                        readonly=vm.readOnly or volume.read_only,
                                        propagation=_PROPAGATION[propagation]))
        return mounts

    async def unmount(self, pod_uid: str) -> None:
        """Unmount everything under the pod's directory (tmpfs volumes,
        subPath binds) and remove the directory."""
        pod_dir = self._pod_dir(pod_uid)
        async with self._lock(pod_uid):
            errors: list[str] = []
            left = mount_points_under(pod_dir)
            for _ in range(MAX_STACKED_MOUNTS):  # each pass removes one mount of a stack
                if not left or errors:
                    break
                for point in left:
                    try:
                        unmount(point)
                    except OSError as err:
                        errors.append(str(err))
                left = mount_points_under(pod_dir)
            if errors or left:
                raise VolumeError(f"pod {pod_uid}: cannot remove its volumes while mounted: "
                                  f"{'; '.join(errors) or ', '.join(map(str, left))}")
            if pod_dir.exists():
                shutil.rmtree(pod_dir)
            log.info("removed the volumes of pod %s", pod_uid)
        self._locks.pop(pod_uid, None)

    def pods_on_disk(self) -> list[str]:
        """The uids of the pods that have a directory under root."""
        if not self.root.is_dir():
            return []
        return sorted(entry.name for entry in self.root.iterdir() if entry.is_dir() and not entry.is_symlink())
