"""The scheduling queue: activeQ order (priority, then arrival), backoff
from 1 s doubling to 10 s, unschedulable pods retried only on a cluster
event one of their rejecting plugins registered for (or after 5 minutes),
the move-request cycle, scheduling gates, deletions, and the nominator.
Time is a FakeClock: nothing here sleeps."""

from __future__ import annotations

import asyncio

import pytest

from api import FakeClock
from scheduler._queue import SchedulingQueue
from scheduler.framework import ActionType, ClusterEvent, PodInfo, QueuedPodInfo, new_pod_info

from .support import Cluster, pod

NODE_ADD = ClusterEvent("Node", ActionType.ADD)
NODE_LABEL = ClusterEvent("Node", ActionType.UPDATE_NODE_LABEL)
NODE_TAINT = ClusterEvent("Node", ActionType.UPDATE_NODE_TAINT)
POD_DELETE = ClusterEvent("AssignedPod", ActionType.DELETE)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(clock: FakeClock) -> SchedulingQueue:
    fwk = Cluster().framework  # the default profile
    return SchedulingQueue({fwk.profile_name: fwk}, clock=clock)


async def pop(queue: SchedulingQueue) -> QueuedPodInfo:
    return await asyncio.wait_for(queue.pop(), 1)


def info(name: str, priority: int = 0, **spec: object) -> PodInfo:
    return new_pod_info(pod(name, priority=priority, **spec))


async def fail(queue: SchedulingQueue, qpi: QueuedPodInfo, *plugins: str) -> None:
    qpi.unschedulable_plugins = set(plugins)
    queue.add_unschedulable(qpi, queue.scheduling_cycle)


async def test_priority_then_arrival(queue: SchedulingQueue, clock: FakeClock) -> None:
    for name, prio in (("low-1", 0), ("high", 100), ("low-2", 0), ("mid", 50)):
        queue.add(info(name, prio))
        clock.step(0.001)
    order = [(await pop(queue)).info.name for _ in range(4)]
    assert order == ["high", "mid", "low-1", "low-2"]


def test_backoff_doubles_from_one_to_ten_seconds(queue: SchedulingQueue) -> None:
    assert [queue.backoff_duration(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


async def test_unschedulable_pods_wait_for_a_relevant_event(queue: SchedulingQueue, clock: FakeClock) -> None:
    queue.add(info("p"))
    qpi = await pop(queue)
    await fail(queue, qpi, "NodeResourcesFit")
    assert queue.pending()["unschedulable"] == 1
    clock.step(60)
    assert queue.move_all_to_active_or_backoff(NODE_LABEL) == 0  # labels do not give room
    assert queue.move_all_to_active_or_backoff(POD_DELETE) == 1  # a deleted pod does
    assert (await pop(queue)).info.name == "p"


async def test_a_taint_change_retries_pods_a_taint_refused(queue: SchedulingQueue, clock: FakeClock) -> None:
    for name, plugin in (("tainted", "TaintToleration"), ("full", "NodeResourcesFit")):
        queue.add(info(name))
        await fail(queue, await pop(queue), plugin)
    clock.step(60)
    queue.move_all_to_active_or_backoff(NODE_TAINT)
    assert queue.where((await pop(queue)).uid) == "in-flight"
    assert queue.pending() == {"active": 0, "backoff": 0, "unschedulable": 1, "gated": 0}


async def test_a_moved_pod_still_backing_off_waits_in_backoff(queue: SchedulingQueue, clock: FakeClock) -> None:
    queue.add(info("p"))
    qpi = await pop(queue)
    await fail(queue, qpi, "NodeResourcesFit")
    queue.move_all_to_active_or_backoff(NODE_ADD)
    assert queue.pending()["backoff"] == 1  # first attempt: 1 s of backoff left
    popping = asyncio.create_task(queue.pop())
    for _ in range(10):  # let the queue start waiting for the backoff to run out
        if clock.has_sleepers():
            break
        await asyncio.sleep(0)
    assert not popping.done()
    clock.step(1.0)
    assert (await asyncio.wait_for(popping, 1)).info.name == "p"
    assert qpi.attempts == 2


async def test_an_event_during_the_attempt_sends_the_pod_to_backoff(queue: SchedulingQueue) -> None:
    queue.add(info("p"))
    qpi = await pop(queue)
    cycle = queue.scheduling_cycle
    queue.move_all_to_active_or_backoff(NODE_ADD)  # e.g. a node appeared while this pod was being scheduled
    qpi.unschedulable_plugins = {"NodeResourcesFit"}
    queue.add_unschedulable(qpi, cycle)
    assert queue.where(qpi.uid) == "backoff"


async def test_no_rejecting_plugin_means_backoff(queue: SchedulingQueue) -> None:
    queue.add(info("p"))
    qpi = await pop(queue)
    await fail(queue, qpi)
    assert queue.where(qpi.uid) == "backoff"


async def test_leftover_unschedulable_pods_are_retried_after_five_minutes(queue: SchedulingQueue,
                                                                          clock: FakeClock) -> None:
    queue.add(info("p"))
    await fail(queue, await pop(queue), "NodeAffinity")
    clock.step(301)
    assert (await pop(queue)).info.name == "p"


async def test_scheduling_gates(queue: SchedulingQueue) -> None:
    gated = info("gated", schedulingGates=[{"name": "example.com/wait"}])
    queue.add(gated)
    assert queue.pending()["gated"] == 1
    assert queue.move_all_to_active_or_backoff(NODE_ADD) == 0
    queue.update(new_pod_info(pod("gated", uid=gated.uid)))  # the gate removed
    assert (await pop(queue)).info.name == "gated"


async def test_updates_retry_only_when_the_spec_or_labels_change(queue: SchedulingQueue, clock: FakeClock) -> None:
    queue.add(info("p"))
    qpi = await pop(queue)
    await fail(queue, qpi, "NodeAffinity")
    clock.step(60)
    queue.update(qpi.info, spec_changed=False)  # e.g. the scheduler's own status write
    assert queue.where(qpi.uid) == "unschedulable"
    queue.update(qpi.info, spec_changed=True)
    assert queue.where(qpi.uid) == "active"


async def test_deleted_pods_leave_the_queue(queue: SchedulingQueue) -> None:
    a, b = info("a"), info("b")
    queue.add(a)
    queue.add(b)
    queue.delete(a)
    qpi = await pop(queue)
    assert qpi.info.name == "b"
    queue.delete(b)  # deleted while being scheduled: not requeued
    await fail(queue, qpi, "NodeResourcesFit")
    assert queue.where(b.uid) == "" and queue.pending()["unschedulable"] == 0


def test_nominator(queue: SchedulingQueue) -> None:
    nominated = new_pod_info(pod("p", priority=10))
    nominated.pod.status.nominatedNodeName = "n1"
    queue.add(nominated)
    assert [p.name for p in queue.nominator.nominated_pods_for_node("n1")] == ["p"]
    cleared = new_pod_info(pod("p", uid=nominated.uid))
    queue.update(cleared)
    assert queue.nominator.nominated_pods_for_node("n1") == []
    assert not queue.nominator.has_nominations()
