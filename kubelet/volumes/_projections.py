"""configMap, secret and downwardAPI volumes: API data projected as files.

Each is a directory under the pod's volume directory holding files made
from an object (ConfigMap, Secret) or from the pod itself (downwardAPI),
written by the AtomicWriter so that an update on refresh swaps every file
at once. Like Kubernetes, a Secret's files live on a tmpfs (never on the
node's disk) unless the manager was built with memory_backed_secrets=False
(hollow nodes, unprivileged runs); configMap and downwardAPI volumes live
on disk. All three are read-only to containers.

Failure: a missing object is `configmap "x" not found` (`secret ...`)
unless the volume is optional, in which case the volume is empty (and
filled in on a later refresh once the object appears); a read that fails
for another reason, or a bad item, is a VolumeError and the volume keeps
whatever it held before.
"""

from __future__ import annotations

from typing import Any, ClassVar

from api import StatusError
from kubelet._env import ObjectGetter
from proto import core_pb2

from ._atomic_writer import AtomicWriter
from ._base import MountedVolume, VolumeError, VolumeHost, VolumePlugin, fs_group
from ._emptydir import memory_medium_size, prepare_dir
from ._payload import Payload, config_map_data, default_mode, downward_api_payload, key_payload

CONFIG_MAP_MISSING_KEY = "configmap references non-existent config key"
SECRET_MISSING_KEY = "references non-existent secret key"  # noqa: S105 - an error message


async def fetch(getter: ObjectGetter, kind: str, namespace: str, name: str, optional: bool) -> Any | None:
    """The object, or None when it is missing and `optional`; VolumeError
    otherwise. `kind` is the kubelet's lower-case word (configmap, secret)."""
    try:
        return await getter.get(namespace, name)
    except StatusError as err:
        if err.reason != "NotFound":
            raise VolumeError(f"couldn't get {kind} {namespace}/{name}: {err}") from None
        if optional:
            return None
        raise VolumeError(f'{kind} "{name}" not found') from None


def write_projection(host: VolumeHost, pod: core_pb2.Pod, plugin: str, volume: core_pb2.Volume, payload: Payload,
                     *, memory: bool) -> MountedVolume:
    """Write `payload` atomically into the volume's directory (a tmpfs when
    `memory`), owned by the pod's fsGroup when it has one."""
    path = host.volume_dir(pod, plugin, volume.name)
    group = fs_group(pod)
    prepare_dir(path, memory=memory, size=memory_medium_size(pod, volume, host.node_allocatable) if memory else 0,
                group=group)
    try:
        AtomicWriter(path, host.clock).write(payload, group=group)
    except ValueError as err:
        raise VolumeError(str(err)) from None
    return MountedVolume(path, read_only=True)


class ConfigMapPlugin(VolumePlugin):
    NAME: ClassVar[str] = "kubernetes.io~configmap"
    SOURCE: ClassVar[str] = "configMap"
    refreshable: ClassVar[bool] = True

    async def setup(self, host: VolumeHost, pod: core_pb2.Pod, volume: core_pb2.Volume) -> MountedVolume:
        source = volume.configMap
        optional = source.HasField("optional") and source.optional
        config_map = await fetch(host.config_maps, "configmap", pod.metadata.namespace, source.name, optional)
        payload = key_payload(config_map_data(config_map), source.items, default_mode(source), optional=optional,
                              missing_key=CONFIG_MAP_MISSING_KEY)
        return write_projection(host, pod, self.NAME, volume, payload, memory=False)


class SecretPlugin(VolumePlugin):
    NAME: ClassVar[str] = "kubernetes.io~secret"
    SOURCE: ClassVar[str] = "secret"
    refreshable: ClassVar[bool] = True

    async def setup(self, host: VolumeHost, pod: core_pb2.Pod, volume: core_pb2.Volume) -> MountedVolume:
        source = volume.secret
        optional = source.HasField("optional") and source.optional
        secret = await fetch(host.secrets, "secret", pod.metadata.namespace, source.secretName, optional)
        data = dict(secret.data) if secret is not None else {}
        payload = key_payload(data, source.items, default_mode(source), optional=optional,
                              missing_key=SECRET_MISSING_KEY)
        return write_projection(host, pod, self.NAME, volume, payload, memory=host.memory_backed_secrets)


class DownwardAPIPlugin(VolumePlugin):
    NAME: ClassVar[str] = "kubernetes.io~downward-api"
    SOURCE: ClassVar[str] = "downwardAPI"
    refreshable: ClassVar[bool] = True

    async def setup(self, host: VolumeHost, pod: core_pb2.Pod, volume: core_pb2.Volume) -> MountedVolume:
        source = volume.downwardAPI
        payload = downward_api_payload(pod, source.items, default_mode(source),
                                       node_allocatable=host.node_allocatable)
        return write_projection(host, pod, self.NAME, volume, payload, memory=False)
