"""The CRI shim survives its own death: after `kill -9` and a restart it
recovers its sandboxes and containers from disk and runc, the running
container kept running (and logging) meanwhile, an attach made after the
restart reaches it through its monitor, and its later exit is
reported with its exit code."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from proto import cri_pb2
from tests.support.crishim import (
    Attached,
    Shim,
    container_config,
    require_tools,
    sandbox_config,
    scratch_netns,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.skipif(require_tools() is not None, reason=str(require_tools()))]


def sockets(pid: int) -> int:
    """How many sockets process `pid` holds."""
    fds = Path(f"/proc/{pid}/fd")
    return sum(1 for fd in fds.iterdir() if os.readlink(fd).startswith("socket:")) if fds.exists() else 0


def test_kill_9_and_restart_keeps_containers_and_reports_their_exit() -> None:
    with scratch_netns() as netns:
        shim = Shim(netns, Path(tempfile.mkdtemp(prefix="crishim-restart-")))
        try:
            shim.start()
            config = sandbox_config("survivor", shim.logs)
            sandbox_id = shim.runtime.RunPodSandbox(cri_pb2.RunPodSandboxRequest(config=config)).pod_sandbox_id
            ip = shim.runtime.PodSandboxStatus(cri_pb2.PodSandboxStatusRequest(
                pod_sandbox_id=sandbox_id)).status.network.ip
            script = "echo before; while [ ! -f /tmp/stop ]; do sleep 0.1; done; echo after; exit 42"
            cid = shim.runtime.CreateContainer(cri_pb2.CreateContainerRequest(
                pod_sandbox_id=sandbox_id, config=container_config("app", ["sh", "-c", script]),
                sandbox_config=config)).container_id
            shim.runtime.StartContainer(cri_pb2.StartContainerRequest(container_id=cid))
            pid = json.loads((shim.root / "containers" / cid / "container.json").read_text())["pid"]

            shim.kill()
            os.kill(pid, 0)   # the container outlived the shim
            shim.start()

            st = shim.runtime.ContainerStatus(cri_pb2.ContainerStatusRequest(container_id=cid)).status
            assert st.state == cri_pb2.CONTAINER_RUNNING
            sandbox = shim.runtime.PodSandboxStatus(cri_pb2.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id)).status
            assert (sandbox.state, sandbox.network.ip) == (cri_pb2.SANDBOX_READY, ip)
            listed = shim.runtime.ListContainers(cri_pb2.ListContainersRequest()).containers
            assert [(c.id, c.state) for c in listed] == [(cid, cri_pb2.CONTAINER_RUNNING)]

            # Its monitor outlived the shim too: an attach made now gets the rest of its output and its end.
            monitor = json.loads((shim.root / "containers" / cid / "container.json").read_text())["monitor_pid"]
            attached = Attached(shim, cid)
            wait_for(lambda: sockets(monitor) >= 2, "the monitor to take the attach (its listener and the client)")
            reply = shim.runtime.ExecSync(cri_pb2.ExecSyncRequest(container_id=cid, cmd=["touch", "/tmp/stop"]))
            assert reply.exit_code == 0
            wait_for(lambda: shim.runtime.ContainerStatus(cri_pb2.ContainerStatusRequest(
                container_id=cid)).status.state == cri_pb2.CONTAINER_EXITED, "the container to exit")
            st = shim.runtime.ContainerStatus(cri_pb2.ContainerStatusRequest(container_id=cid)).status
            assert (st.exit_code, st.reason) == (42, "Error")
            assert st.started_at <= st.finished_at
            lines = [line.split(" ", 3)[3] for line in Path(st.log_path).read_text().splitlines()]
            assert lines == ["before", "after"]
            wait_for(attached.ended, "the attach to end with the container")
            assert (bytes(attached.stdout), attached.exit_codes, attached.error) == (b"after\n", [42], None)

            shim.runtime.StopPodSandbox(cri_pb2.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))
            assert not (shim.root / "cni" / "networks" / "kubelab" / ip).exists()
            shim.runtime.RemovePodSandbox(cri_pb2.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))
            assert not (shim.root / "containers" / cid).exists()
        finally:
            shim.cleanup()


def test_a_create_cut_short_is_cleaned_up_at_restart() -> None:
    """A runc container without a record (the shim died between runc create
    and saving the record) is removed when the shim starts."""
    with scratch_netns() as netns:
        shim = Shim(netns, Path(tempfile.mkdtemp(prefix="crishim-restart-")))
        try:
            shim.start()
            config = sandbox_config("orphan", shim.logs)
            sandbox_id = shim.runtime.RunPodSandbox(cri_pb2.RunPodSandboxRequest(config=config)).pod_sandbox_id
            cid = shim.runtime.CreateContainer(cri_pb2.CreateContainerRequest(
                pod_sandbox_id=sandbox_id, config=container_config("lost", ["sleep", "1000"]),
                sandbox_config=config)).container_id
            shim.kill()
            (shim.root / "containers" / cid / "container.json").unlink()
            shim.start()
            assert shim.runtime.ListContainers(cri_pb2.ListContainersRequest()).containers == []
            assert not (shim.root / "containers" / cid).exists()
            assert not (shim.state / "runc" / cid).exists()
            shim.runtime.StopPodSandbox(cri_pb2.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))
            shim.runtime.RemovePodSandbox(cri_pb2.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))
        finally:
            shim.cleanup()
