"""Restart safety: a new kubelet on the same runtime state adopts what runs
(nothing restarted, restart counts and readiness carry on), and a runtime
that goes down and comes back is waited out, not acted on."""

from __future__ import annotations

from tests.unit.kubelet._harness import HollowNode, container, make_pod


async def test_new_kubelet_restarts_nothing() -> None:
    async with HollowNode() as node:
        crash = node.runtime.script("crashy")
        crash.run_seconds, crash.exit_code = 0.1, 1
        await node.create(make_pod("p", container("steady"), container("crashy"),
                                   init=(container("setup"),)))
        node.runtime.script("setup").run_seconds = 1
        await node.advance(40)
        before_ids = {c.status.id for c in node.runtime.containers.values()}
        steady = node.container_status("p", "steady")
        restarts = node.container_status("p", "crashy").restartCount
        assert restarts >= 2 and steady.state.HasField("running")
        crash.run_seconds = None  # from now on it keeps running
        await node.advance(60)
        restarts = node.container_status("p", "crashy").restartCount
        pulls = len(node.runtime.pulls)

        await node.restart()
        await node.advance(30)
        after = node.container_status("p", "steady")
        assert after.containerID == steady.containerID and after.restartCount == 0
        assert node.container_status("p", "crashy").restartCount == restarts
        assert node.container_status("p", "setup", init=True).state.terminated.reason == "Completed"
        assert {c.status.id for c in node.runtime.containers.values()} >= {
            steady.containerID.split("//")[1]}
        assert len(node.runtime.sandboxes) == 1
        assert len(node.runtime.pulls) == pulls
        assert before_ids  # the original containers were there
        assert node.status("p").phase == "Running"


async def test_changed_spec_hash_replaces_the_container() -> None:
    async with HollowNode() as node:
        await node.create(make_pod("p", container("app")))
        await node.advance(2)
        old = node.container_status("p", "app").containerID
        pod = node.pod("p")
        assert pod is not None
        pod.spec.containers[0].image = "busybox:1.37"
        node.runtime._add_image("busybox:1.37")
        from proto import core_pb2
        await node.cs.resource(core_pb2.Pod, "ns").update(pod)
        await node.advance(3)
        cs = node.container_status("p", "app")
        assert cs.containerID != old and cs.restartCount == 1 and cs.image == "busybox:1.37"
        assert any("definition changed" in e.message for e in node.events("Killing"))


async def test_runtime_down_changes_nothing_then_recovers() -> None:
    async with HollowNode() as node:
        await node.create(make_pod("p"))
        await node.advance(2)
        running = node.container_status("p", "main").containerID
        node.runtime.down = True
        await node.advance(30)
        ready = next(c for c in node.node().status.conditions if c.type == "Ready")
        assert ready.status == "False" and "runtime is down" in ready.message
        assert node.status("p").phase == "Running"
        node.runtime.down = False
        await node.advance(30)
        assert node.container_status("p", "main").containerID == running
        ready = next(c for c in node.node().status.conditions if c.type == "Ready")
        assert ready.status == "True"


async def test_sandbox_that_died_is_recreated_and_init_runs_again() -> None:
    async with HollowNode() as node:
        node.runtime.script("setup").run_seconds = 1
        await node.create(make_pod("p", container("app"), init=(container("setup"),)))
        await node.advance(5)
        sandbox = next(iter(node.runtime.sandboxes))
        await node.runtime.stop_pod_sandbox(sandbox)  # the sandbox dies (and its containers with it)
        await node.advance(10)
        assert len([b for b in node.runtime.sandboxes.values() if b.status.state == 0]) == 1
        assert node.container_status("p", "setup", init=True).restartCount == 1
        assert node.container_status("p", "app").restartCount == 1
        assert node.status("p").phase == "Running"
        assert node.events("SandboxChanged")
