"""What every volume plugin shares: the result type, the error, the host
the plugins work against, and the plugin interface.

A plugin serves one field of core/v1 Volume (`SOURCE`, e.g. "configMap")
and keeps its per-pod data under `<pods>/<uid>/volumes/<NAME>/<volume>`
with Kubernetes' plugin directory names (`kubernetes.io~configmap`, ...),
so a reader who knows where the real kubelet keeps a pod's volumes finds
them in the same place. `setup` is idempotent: the manager calls it on
every mount and, for plugins marked `refreshable`, again on every refresh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from api import Clock
from kubelet._env import ObjectGetter
from proto import core_pb2


@dataclass
class MountedVolume:
    """A volume ready on the node: what containers bind-mount, and whether
    the volume itself is read-only (configMap, secret, downwardAPI and
    projected always are; a PVC with readOnly: true is)."""

    host_path: Path
    read_only: bool


class VolumeError(Exception):
    """A volume cannot be set up or mounted into a container.

    The kubelet reports it as a FailedMount event (from `mount`) or as the
    container's CreateContainerConfigError (from `container_mounts`).
    `volume` names the volume; `errors` holds every failure when several
    volumes of one pod failed (the first one is the message)."""

    def __init__(self, message: str, *, volume: str = "", errors: list[VolumeError] | None = None) -> None:
        super().__init__(message)
        self.volume = volume
        self.errors: list[VolumeError] = errors or [self]


@dataclass
class VolumeHost:
    """What plugins may use (Kubernetes' VolumeHost): the pods directory,
    the API, the clock and the node's facts."""

    pods_dir: Path
    clientset: Any
    config_maps: ObjectGetter
    secrets: ObjectGetter
    node_name: str
    clock: Clock
    node_allocatable: Mapping[str, Any] | None = None
    memory_backed_secrets: bool = True

    def volume_dir(self, pod: core_pb2.Pod, plugin: str, name: str) -> Path:
        return self.pods_dir / pod.metadata.uid / "volumes" / plugin / name


def fs_group(pod: core_pb2.Pod) -> int | None:
    ctx = pod.spec.securityContext
    return ctx.fsGroup if ctx.HasField("fsGroup") else None


class VolumePlugin:
    """One volume type. Subclasses set NAME and SOURCE and implement setup."""

    NAME: ClassVar[str]
    SOURCE: ClassVar[str]
    #: re-run setup on refresh (content projected from API objects)
    refreshable: ClassVar[bool] = False

    async def setup(self, host: VolumeHost, pod: core_pb2.Pod, volume: core_pb2.Volume) -> MountedVolume:
        raise NotImplementedError
