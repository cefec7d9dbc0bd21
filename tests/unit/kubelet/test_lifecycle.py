"""Pod lifecycle on a hollow node: sandbox, init containers in order, app
containers, phases and conditions, restart policies and CrashLoopBackOff."""

from __future__ import annotations

import itertools

from proto import core_pb2
from tests.unit.kubelet._harness import HollowNode, container, make_pod


async def test_pod_runs_and_reports_running_and_ready() -> None:
    async with HollowNode() as node:
        await node.create(make_pod("web", container("a"), container("b")))
        await node.advance(2)
        status = node.status("web")
        assert status.phase == "Running"
        assert status.podIP.startswith("10.244.")
        assert status.hostIP == "10.0.0.1"
        assert status.startTime
        assert status.qosClass == "BestEffort"
        assert [c.name for c in status.containerStatuses] == ["a", "b"]
        for cs in status.containerStatuses:
            assert cs.state.HasField("running") and cs.ready and cs.started and cs.restartCount == 0
            assert cs.containerID.startswith("hollow://")
        assert {c.type: c.status for c in status.conditions} == {
            "PodScheduled": "True", "Initialized": "True", "ContainersReady": "True", "Ready": "True"}
        assert [e.reason for e in node.events("Started")]


async def test_init_containers_run_in_order_each_to_success() -> None:
    async with HollowNode() as node:
        node.runtime.script("first").run_seconds = 5
        node.runtime.script("second").run_seconds = 5
        await node.create(make_pod("p", container("app"), init=(container("first"), container("second"))))
        await node.advance(1)
        status = node.status("p")
        assert status.phase == "Pending"
        assert node.container_status("p", "first", init=True).state.HasField("running")
        assert node.container_status("p", "second", init=True).state.waiting.reason == "PodInitializing"
        assert node.container_status("p", "app").state.waiting.reason == "PodInitializing"
        init = node.condition("p", "Initialized")
        assert init.status == "False" and init.reason == "ContainersNotInitialized"
        assert len(node.runtime.running("p")) == 1
        await node.advance(5)
        assert node.container_status("p", "first", init=True).state.terminated.reason == "Completed"
        assert node.container_status("p", "second", init=True).state.HasField("running")
        assert node.container_status("p", "app").state.waiting.reason == "PodInitializing"
        await node.advance(6)
        assert node.status("p").phase == "Running"
        assert node.container_status("p", "app").state.HasField("running")
        assert node.condition("p", "Initialized").status == "True"


async def test_failed_init_container_with_never_fails_the_pod() -> None:
    async with HollowNode() as node:
        script = node.runtime.script("setup")
        script.run_seconds, script.exit_code = 1, 3
        await node.create(make_pod("p", container("app"), init=(container("setup"),), restart_policy="Never"))
        await node.advance(3)
        status = node.status("p")
        assert status.phase == "Failed"
        term = node.container_status("p", "setup", init=True).state.terminated
        assert term.exitCode == 3 and term.reason == "Error"
        assert node.container_status("p", "app").state.HasField("waiting")
        assert not node.runtime.running("p")
        assert all(b.status.state != 0 for b in node.runtime.sandboxes.values())  # sandbox stopped


async def test_failed_init_container_is_restarted_under_always() -> None:
    async with HollowNode() as node:
        script = node.runtime.script("setup")
        script.run_seconds, script.exit_code = 1, 1
        await node.create(make_pod("p", container("app"), init=(container("setup"),)))
        await node.advance(2)
        cs = node.container_status("p", "setup", init=True)
        assert cs.restartCount >= 1
        script.exit_code = 0
        await node.advance(60)
        assert node.status("p").phase == "Running"


async def test_restart_policy_never_and_onfailure() -> None:
    async with HollowNode() as node:
        node.runtime.script("job", "done").run_seconds = 2
        fail = node.runtime.script("job", "broken")
        fail.run_seconds, fail.exit_code = 2, 1
        retry = node.runtime.script("job", "retry")
        retry.run_seconds, retry.exit_code = 2, 1
        await node.create(make_pod("done", container("job"), restart_policy="Never"))
        await node.create(make_pod("broken", container("job"), restart_policy="Never"))
        await node.create(make_pod("retry", container("job"), restart_policy="OnFailure"))
        await node.advance(4)
        assert node.status("done").phase == "Succeeded"
        assert node.container_status("done", "job").state.terminated.reason == "Completed"
        ready = node.condition("done", "Ready")
        assert ready.status == "False" and ready.reason == "PodCompleted"
        assert node.status("broken").phase == "Failed"
        assert node.container_status("broken", "job").restartCount == 0
        assert node.status("retry").phase == "Running"
        assert node.container_status("retry", "job").restartCount >= 1
        retry.exit_code = 0
        await node.advance(120)
        assert node.status("retry").phase == "Succeeded"


async def test_crash_loop_backoff_doubles_from_10s_to_5min() -> None:
    async with HollowNode() as node:
        script = node.runtime.script("crash")
        script.run_seconds, script.exit_code = 0.1, 2
        await node.create(make_pod("p", container("crash")))
        starts: list[float] = []
        count = -1
        t0 = node.clock.now()
        for _ in range(int(1400 / 0.5)):
            await node.advance(0.5)
            cs = node.container_status("p", "crash")
            if cs.restartCount != count:
                count = cs.restartCount
                starts.append(node.clock.now() - t0)
        gaps = [round(b - a) for a, b in itertools.pairwise(starts)]
        # restart 1 at once, then 10 s, 20 s, 40 s, ... capped at 300 s (each plus the run and the relist)
        assert gaps[0] <= 2
        assert [g // 10 * 10 for g in gaps[1:6]] == [10, 20, 40, 80, 160]
        assert all(290 <= g <= 302 for g in gaps[6:])
        cs = node.container_status("p", "crash")
        assert cs.state.waiting.reason == "CrashLoopBackOff"
        assert "back-off 5m0s" in cs.state.waiting.message or "back-off 300s" in cs.state.waiting.message
        assert cs.lastState.terminated.exitCode == 2
        assert node.status("p").phase == "Running"
        assert node.events("BackOff")


async def test_backoff_resets_after_ten_minutes_running() -> None:
    async with HollowNode() as node:
        script = node.runtime.script("c")
        script.run_seconds, script.exit_code = 0.1, 1
        await node.create(make_pod("p", container("c")))
        await node.advance(200)  # deep into the backoff
        script.run_seconds = 700  # now it runs for more than 10 minutes before failing
        await node.advance(400)
        before = node.container_status("p", "c").restartCount
        await node.advance(710)
        cs = node.container_status("p", "c")
        assert cs.restartCount == before + 1  # restarted at once, not after 5 minutes
        assert cs.state.HasField("running")


async def test_pod_status_is_written_only_when_it_changes() -> None:
    async with HollowNode() as node:
        await node.create(make_pod("p"))
        await node.advance(3)
        writes = node.cs.count("update", "pods", "status")
        await node.advance(120)
        assert node.cs.count("update", "pods", "status") == writes


async def test_oom_killed_and_container_reasons() -> None:
    async with HollowNode() as node:
        script = node.runtime.script("hog")
        script.run_seconds, script.oom = 1, True
        await node.create(make_pod("p", container("hog"), restart_policy="Never"))
        await node.advance(3)
        term = node.container_status("p", "hog").state.terminated
        assert term.reason == "OOMKilled" and term.exitCode == 137
        assert node.status("p").phase == "Failed"


def _pod_with(c: core_pb2.Container) -> core_pb2.Pod:
    return make_pod("p", c)


async def test_missing_config_map_is_create_container_config_error() -> None:
    async with HollowNode() as node:
        c = container("app")
        c.env.add(name="X").valueFrom.configMapKeyRef.CopyFrom(core_pb2.ConfigMapKeySelector(name="cfg", key="k"))
        await node.create(_pod_with(c))
        await node.advance(2)
        waiting = node.container_status("p", "app").state.waiting
        assert waiting.reason == "CreateContainerConfigError"
        assert "cfg" in waiting.message
        cm = core_pb2.ConfigMap()
        cm.metadata.name, cm.metadata.namespace = "cfg", "ns"
        cm.data["k"] = "v"
        await node.cs.resource(core_pb2.ConfigMap, "ns").create(cm)
        await node.advance(12)
        assert node.container_status("p", "app").state.HasField("running")
        envs = [c for c in node.runtime.containers.values() if c.status.state == 1]
        assert envs
