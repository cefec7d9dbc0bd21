"""A pod's volumes on the node (the kubelet's volume manager and plugins).

The public surface: VolumeManager (mount / container_mounts / refresh /
unmount / pods_on_disk), MountedVolume and VolumeError. Everything else -
one module per volume type, the AtomicWriter, libc mounts, subPath
pinning - is private; see each module's docstring for its rules.
"""

from ._atomic_writer import AtomicWriter, FileProjection
from ._base import MountedVolume, VolumeError
from ._manager import PLUGINS, VolumeManager, volume_source

__all__ = ["PLUGINS", "AtomicWriter", "FileProjection", "MountedVolume", "VolumeError", "VolumeManager",
           "volume_source"]
