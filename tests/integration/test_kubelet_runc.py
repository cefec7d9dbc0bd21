"""The kubelet on the real CRI shim and runc, against the session apiserver
(through its unix socket): a pod with an init container and two containers
sharing an emptyDir and localhost runs and becomes Ready (an exec readiness
probe fetches over localhost what the init container wrote; an HTTP
readiness probe from the kubelet reaches the pod IP); then `kill -9` of
the kubelet and of the shim, and both started again, restart nothing:
same container IDs, restart counts 0, still Ready. Deleting the pod then
stops its containers and removes it.

Kubelet and shim run inside a scratch network namespace (tests/support/
crishim.py), so the pod network is the scratch namespace's own bridge;
everything made is removed afterwards, whatever happens.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import pytest

from api import StatusError, from_dict
from client import Clientset
from deploy.local import ManagedProcess, health_serving, wait_until
from proto import coordination_pb2, core_pb2
from tests.support.crishim import BUSYBOX, Shim, require_tools, scratch_netns
from tests.support.wait import eventually

pytestmark = [pytest.mark.integration, pytest.mark.skipif(require_tools() is not None, reason=str(require_tools()))]


class KubeletProcess:
    def __init__(self, netns: str, base: Path, server: str, node: str, shim: Shim) -> None:
        self.health = f"unix://{base}/kubelet-health.sock"
        import sys
        self.argv = ["nsenter", f"--net=/run/netns/{netns}", sys.executable, "-m", "kubelet", "--server", server,
                     "--hostname-override", node, "--node-ip", "127.0.0.1",
                     "--container-runtime-endpoint", f"unix://{shim.socket}", "--root-dir", str(base / "kubelet"),
                     "--pod-logs-dir", str(base / "pod-logs"), "--port", "0", "--resolv-conf", "",
                     "--health-bind-address", self.health, "--metrics-bind-address", "",
                     "--node-status-update-frequency", "2", "-v", "debug"]
        self.log = base / "kubelet.log"
        self.proc: ManagedProcess | None = None

    def start(self) -> None:
        self.proc = ManagedProcess(self.argv, self.log)
        wait_until(lambda: health_serving(self.health), 60, "kubelet", self.proc.proc, self.log)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(30)


def web_pod(namespace: str, node: str) -> core_pb2.Pod:
    fetch = "wget -q -O- http://127.0.0.1:8080/index.html | grep -q hello-from-init"
    return from_dict(core_pb2.Pod, {
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "nodeName": node, "terminationGracePeriodSeconds": 5,
            "volumes": [{"name": "shared", "emptyDir": {}}],
            "initContainers": [{"name": "init", "image": BUSYBOX, "imagePullPolicy": "Never",
                                "command": ["sh", "-c", "echo hello-from-init > /shared/index.html"],
                                "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]}],
            "containers": [
                {"name": "server", "image": BUSYBOX, "imagePullPolicy": "Never",
                 "command": ["httpd", "-f", "-p", "8080", "-h", "/shared"],
                 "ports": [{"name": "http", "containerPort": 8080}],
                 "readinessProbe": {"httpGet": {"path": "/index.html", "port": "http"}, "periodSeconds": 1},
                 "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]},
                {"name": "client", "image": BUSYBOX, "imagePullPolicy": "Never",
                 "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"],
                 "readinessProbe": {"exec": {"command": ["sh", "-c", fetch]}, "periodSeconds": 1},
                 "volumeMounts": [{"name": "shared", "mountPath": "/shared", "readOnly": True}]},
            ]}})


def ready(pod: core_pb2.Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)


async def test_real_pod_survives_kill_9_of_kubelet_and_shim(client: Clientset, namespace: str,
                                                            apiserver_socket: str) -> None:
    node = f"kl-{uuid.uuid4().hex[:6]}"
    pods = client.resource(core_pb2.Pod, namespace)
    with scratch_netns() as netns:
        base = Path(tempfile.mkdtemp(prefix="kubelet-runc-"))
        shim = Shim(netns, base)
        kubelet = KubeletProcess(netns, base, apiserver_socket, node, shim)
        try:
            shim.start()
            kubelet.start()
            await pods.create(web_pod(namespace, node))

            async def running_and_ready() -> bool:
                got = await pods.get("web")
                return got.status.phase == "Running" and ready(got)
            await eventually(running_and_ready, "pod web Running and Ready (see kubelet.log, crishim.log)")
            before = await pods.get("web")
            assert before.status.initContainerStatuses[0].state.terminated.reason == "Completed"
            ids = {c.name: c.containerID for c in before.status.containerStatuses}
            assert all(ids.values()) and before.status.podIP

            kubelet.kill()
            shim.kill()
            shim.start()
            kubelet.start()
            leases = client.resource(coordination_pb2.Lease, "kube-node-lease")
            renew = (await leases.get(node)).spec.renewTime

            async def settled() -> bool:  # the new kubelet has run for a while: its lease moved on twice
                got = (await leases.get(node)).spec.renewTime
                nonlocal renew
                if got != renew:
                    renew = got
                    settled.count += 1  # type: ignore[attr-defined]
                return settled.count >= 2  # type: ignore[attr-defined]
            settled.count = 0  # type: ignore[attr-defined]
            await eventually(settled, "two lease renewals by the restarted kubelet", timeout=60)
            after = await pods.get("web")
            assert {c.name: c.containerID for c in after.status.containerStatuses} == ids
            assert [c.restartCount for c in after.status.containerStatuses] == [0, 0]
            assert ready(after) and after.status.podIP == before.status.podIP

            await pods.delete("web")

            async def gone() -> bool:
                try:
                    await pods.get("web")
                except StatusError as err:
                    return err.reason == "NotFound"
                return False
            await eventually(gone, "pod web removed after its containers stopped")
        finally:
            kubelet.stop()
            for c in (client.resource(core_pb2.Node), client.resource(coordination_pb2.Lease, "kube-node-lease")):
                try:
                    await c.delete(node)
                except StatusError:
                    pass
            shim.cleanup()
