"""Termination: deletionTimestamp, preStop, SIGTERM, the grace period,
SIGKILL, the final status and the delete with grace 0; pods deleted from
the API behind the kubelet's back; orphans found in the runtime."""

from __future__ import annotations

import asyncio

from api import StatusError
from proto import core_pb2, cri_pb2
from tests.unit.kubelet._harness import HollowNode, container, make_pod


async def _delete(node: HollowNode, name: str, grace: int | None = None) -> None:
    await node.cs.resource(core_pb2.Pod, "ns").delete(name, grace_period=grace)


async def test_delete_waits_for_sigterm_then_removes_the_pod() -> None:
    async with HollowNode() as node:
        node.runtime.script("app").term_seconds = 5  # takes 5 s to exit after SIGTERM
        await node.create(make_pod("p", container("app"), grace=30))
        await node.advance(2)
        await _delete(node, "p")
        await node.advance(3)
        pod = node.pod("p")
        assert pod is not None and pod.metadata.deletionTimestamp  # still terminating
        assert node.runtime.running("p")
        await node.advance(3)
        assert node.pod("p") is None
        assert not node.runtime.containers and not node.runtime.sandboxes
        killing = node.events("Killing")
        assert killing and "Stopping container app" in killing[0].message
        updates = [a for a in node.cs.actions if a.verb == "delete" and a.resource == "pods"]
        assert len(updates) == 2  # the user's, then the kubelet's with grace 0


async def test_grace_period_ends_in_sigkill() -> None:
    async with HollowNode() as node:
        node.runtime.script("app").term_seconds = 1000  # ignores SIGTERM
        await node.create(make_pod("p", container("app"), grace=10))
        await node.advance(2)
        await _delete(node, "p")
        await node.advance(9)
        assert node.pod("p") is not None and node.runtime.running("p")
        statuses = []
        await node.advance(2)
        assert node.pod("p") is None
        statuses = [a for a in node.cs.actions if a.subresource == "status"]
        assert statuses


async def test_final_status_reports_the_exit_before_the_pod_goes() -> None:
    async with HollowNode() as node:
        script = node.runtime.script("app")
        script.term_seconds, script.term_exit_code = 1, 0
        await node.create(make_pod("p", container("app"), grace=30))
        await node.advance(2)
        seen: list[core_pb2.PodStatus] = []

        async def watch() -> None:
            async for event in node.cs.resource(core_pb2.Pod, "ns").watch(resource_version="0"):
                seen.append(event.object.status)

        watcher = asyncio.create_task(watch())
        await _delete(node, "p")
        await node.advance(3)
        watcher.cancel()
        assert node.pod("p") is None
        final = seen[-1]
        assert final.phase == "Succeeded"
        assert final.containerStatuses[0].state.terminated.exitCode == 0


async def test_pre_stop_hook_runs_before_sigterm() -> None:
    async with HollowNode() as node:
        c = container("app")
        c.lifecycle.preStop.exec.command.extend(["/bin/sh", "-c", "sleep 1"])
        calls: list[list[str]] = []
        runtime = node.runtime
        original = runtime.exec_sync

        async def exec_sync(container_id: str, cmd: list[str], timeout: int) -> cri_pb2.ExecSyncResponse:
            calls.append(cmd)
            assert runtime.containers[container_id].status.state == 1  # still running: before SIGTERM
            return await original(container_id, cmd, timeout)

        runtime.exec_sync = exec_sync  # type: ignore[method-assign]
        await node.create(make_pod("p", c))
        await node.advance(2)
        await _delete(node, "p")
        await node.advance(4)
        assert calls == [["/bin/sh", "-c", "sleep 1"]]
        assert node.pod("p") is None


async def test_pre_stop_sleep_counts_against_the_grace_period() -> None:
    async with HollowNode() as node:
        c = container("app")
        c.lifecycle.preStop.sleep.seconds = 8
        node.runtime.script("app").term_seconds = 1000
        await node.create(make_pod("p", c, grace=10))
        await node.advance(2)
        await _delete(node, "p")
        await node.advance(7)
        assert node.runtime.running("p")   # still in preStop
        await node.advance(6)               # 8 s of hook + at least 2 s, then SIGKILL
        assert node.pod("p") is None


async def test_force_deleted_pod_is_killed_and_cleaned_up() -> None:
    async with HollowNode() as node:
        await node.create(make_pod("p"))
        await node.advance(2)
        await _delete(node, "p", grace=0)
        assert node.pod("p") is None
        await node.advance(3)
        assert not node.runtime.containers and not node.runtime.sandboxes


async def test_orphans_in_the_runtime_are_removed_once_sources_are_ready() -> None:
    async with HollowNode() as node:
        await node.create(make_pod("p"))
        await node.advance(2)
        await node.stop()
        # the pod goes while no kubelet runs
        pod = node.pod("p")
        assert pod is not None
        node.cs.graceful = None
        await node.cs.resource(core_pb2.Pod, "ns").delete("p")
        assert node.runtime.running()
        await node.start()
        await node.advance(3)
        assert not node.runtime.containers and not node.runtime.sandboxes


async def test_delete_of_a_finished_pod_needs_no_kill() -> None:
    async with HollowNode() as node:
        node.runtime.script("app").run_seconds = 1
        await node.create(make_pod("p", container("app"), restart_policy="Never"))
        await node.advance(3)
        assert node.status("p").phase == "Succeeded"
        try:
            await _delete(node, "p")
        except StatusError:
            pass
        await node.advance(2)
        assert node.pod("p") is None
        assert not node.runtime.sandboxes
