"""Static pods from the manifest directory with their mirror pods, and
imagePullPolicy with ErrImagePull / ImagePullBackOff."""

from __future__ import annotations

from pathlib import Path

from kubelet._labels import CONFIG_MIRROR
from proto import core_pb2
from tests.unit.kubelet._harness import NODE, HollowNode, container, make_pod

MANIFEST = """\
apiVersion: v1
kind: Pod
metadata:
  name: etcd
  namespace: kube-system
spec:
  containers:
  - name: etcd
    image: busybox:1.36
"""


async def test_static_pod_runs_with_a_mirror_pod(tmp_path: Path) -> None:
    (tmp_path / "etcd.yaml").write_text(MANIFEST)
    (tmp_path / "broken.yaml").write_text("kind: Pod\nspec: [")
    async with HollowNode(pod_manifest_path=tmp_path, file_check_frequency=5) as node:
        await node.advance(3)
        mirror = node.pod(f"etcd-{NODE}", "kube-system")
        assert mirror is not None
        assert CONFIG_MIRROR in mirror.metadata.annotations
        assert mirror.metadata.ownerReferences[0].kind == "Node"
        assert mirror.status.phase == "Running"
        assert mirror.status.containerStatuses[0].ready
        running = node.runtime.running()
        assert len(running) == 1
        # the mirror deleted by someone: it comes back, the pod keeps running
        node.cs.graceful = None
        await node.cs.resource(core_pb2.Pod, "kube-system").delete(f"etcd-{NODE}")
        await node.advance(2)
        again = node.pod(f"etcd-{NODE}", "kube-system")
        assert again is not None and again.metadata.uid != mirror.metadata.uid
        assert [c.id for c in node.runtime.running()] == [c.id for c in running]
        # a restarted kubelet adopts the static pod's containers
        await node.restart()
        await node.advance(3)
        assert [c.id for c in node.runtime.running()] == [c.id for c in running]
        # the file removed: pod and mirror go
        (tmp_path / "etcd.yaml").unlink()
        await node.advance(8)
        assert not node.runtime.running()
        assert node.pod(f"etcd-{NODE}", "kube-system") is None


async def test_edited_manifest_replaces_the_pod(tmp_path: Path) -> None:
    (tmp_path / "etcd.yaml").write_text(MANIFEST)
    async with HollowNode(pod_manifest_path=tmp_path, file_check_frequency=5) as node:
        await node.advance(3)
        first = node.runtime.running()[0].id
        node.runtime._add_image("busybox:1.37")
        (tmp_path / "etcd.yaml").write_text(MANIFEST.replace("1.36", "1.37"))
        await node.advance(8)
        running = node.runtime.running()
        assert len(running) == 1 and running[0].id != first
        mirror = node.pod(f"etcd-{NODE}", "kube-system")
        assert mirror is not None and mirror.spec.containers[0].image == "busybox:1.37"


async def test_pull_policies() -> None:
    async with HollowNode() as node:
        await node.create(make_pod("present", container("c", imagePullPolicy="IfNotPresent")))
        await node.create(make_pod("always", container("c", imagePullPolicy="Always")))
        await node.create(make_pod("never", container("c", image="nothere:1", imagePullPolicy="Never")))
        await node.advance(2)
        assert node.runtime.pulls == ["busybox:1.36"]  # only Always pulled
        waiting = node.container_status("never", "c").state.waiting
        assert waiting.reason == "ErrImageNeverPull" and "not present with pull policy of Never" in waiting.message
        pulled = [e.message for e in node.events("Pulled")]
        assert any("already present on machine" in m for m in pulled)
        assert any("Successfully pulled" in m for m in pulled)


async def test_a_long_pull_shows_container_creating_meanwhile() -> None:
    async with HollowNode() as node:
        node.runtime.pull_seconds["registry.local/big:1"] = 60
        await node.create(make_pod("p", container("c", image="registry.local/big:1")))
        await node.advance(5)
        pod = node.pod("p")
        assert pod is not None and pod.status.phase == "Pending" and pod.status.startTime
        assert node.container_status("p", "c").state.waiting.reason == "ContainerCreating"
        await node.advance(60)
        assert node.container_status("p", "c").state.HasField("running")


async def test_pull_failure_is_err_image_pull_then_image_pull_backoff() -> None:
    async with HollowNode() as node:
        node.runtime.pull_errors["registry.local/app:1"] = "manifest unknown"
        await node.create(make_pod("p", container("c", image="registry.local/app:1")))
        await node.advance(1)
        waiting = node.container_status("p", "c").state.waiting
        assert waiting.reason in ("ErrImagePull", "ImagePullBackOff")  # the relist after the sandbox resyncs
        failed = [e.message for e in node.events("Failed")]
        assert any("manifest unknown" in m for m in failed) and "Error: ErrImagePull" in failed
        await node.advance(5)
        assert node.container_status("p", "c").state.waiting.reason == "ImagePullBackOff"
        pulls = len(node.runtime.pulls)
        await node.advance(6)  # the 10 s backoff is over: pulled again, failed again
        assert len(node.runtime.pulls) == pulls + 1
        del node.runtime.pull_errors["registry.local/app:1"]
        await node.advance(25)
        assert node.container_status("p", "c").state.HasField("running")
        assert node.events("Pulling") and node.events("Failed")
