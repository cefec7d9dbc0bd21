"""A VolumeManager on a temporary pods directory, over the in-memory
clientset. Whatever a test leaves mounted under that directory (tmpfs,
subPath binds) is unmounted afterwards, even when the test failed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api import FakeClock, from_dict
from kubelet.volumes import VolumeManager
from kubelet.volumes._mount import mount_points_under, unmount
from proto import core_pb2
from tests.support.fakeclient import FakeClientset

NS = "shop"
ALLOCATABLE = {"cpu": "4", "memory": "1Gi"}

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting tmpfs and bind mounts needs root")


def make_pod(volumes: list[dict[str, Any]], containers: list[dict[str, Any]] | None = None,
             uid: str = "pod-uid-1", **spec: Any) -> core_pb2.Pod:
    return from_dict(core_pb2.Pod, {
        "metadata": {"name": "web-0", "namespace": NS, "uid": uid, "labels": {"app": "web"},
                     "annotations": {"build": "42"}},
        "spec": {"nodeName": "node-a", "volumes": volumes,
                 "containers": containers or [{"name": "app", "resources": {"limits": {"memory": "256Mi"}}}],
                 **spec},
    })


@pytest.fixture
def pods_dir(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "pods"
    try:
        yield root
    finally:
        for point in mount_points_under(tmp_path):
            unmount(point)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cs(clock: FakeClock) -> FakeClientset:
    return FakeClientset(clock=clock)


@pytest.fixture
def manager(pods_dir: Path, cs: FakeClientset, clock: FakeClock) -> VolumeManager:
    return VolumeManager(pods_dir, cs, node_name="node-a", clock=clock, node_allocatable=ALLOCATABLE)
