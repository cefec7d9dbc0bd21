"""Persistent volumes: the binder that pairs PersistentVolumeClaims with
PersistentVolumes (binder.py) and the hostPath dynamic provisioner behind
the default StorageClass (provisioner.py)."""

from .binder import PersistentVolumeController
from .provisioner import HostPathProvisioner

__all__ = ["HostPathProvisioner", "PersistentVolumeController"]
