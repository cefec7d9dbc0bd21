"""One scheduling cycle end to end in memory: how many nodes are filtered
(Kubernetes' adaptive percentageOfNodesToScore), the FailedScheduling
message that counts reasons per node, the choice among equal scores,
assuming and binding (and forgetting after a failed bind), and the event
handlers that decide which pods this scheduler takes (the shared
schedulerName examples)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from typing import Any

import pytest

from scheduler._cache import Cache, Snapshot
from scheduler._handlers import EventHandlers, node_change
from scheduler._queue import SchedulingQueue
from scheduler._scheduler import FitError, Scheduler, num_feasible_nodes_to_find
from scheduler.framework import (
    ActionType,
    BindPlugin,
    CycleState,
    Framework,
    Handle,
    PodInfo,
    Profile,
    Status,
    error,
    new_pod_info,
)
from scheduler.plugins import REGISTRY

from .support import Cluster, example, node, pod

GPU = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


@pytest.mark.parametrize(("percentage", "nodes", "wanted"), [
    (0, 50, 50), (0, 99, 99), (0, 100, 100), (0, 500, 230), (0, 1000, 420), (0, 5000, 500), (0, 20000, 1000),
    (30, 1000, 300), (100, 1000, 1000), (10, 500, 100),
])
def test_how_many_feasible_nodes_to_find(percentage: int, nodes: int, wanted: int) -> None:
    assert num_feasible_nodes_to_find(percentage, nodes) == wanted


def test_filtering_stops_at_enough_and_resumes_where_it_stopped() -> None:
    c = Cluster(["NodeResourcesFit"])
    for i in range(200):
        c.add(node(f"n{i:03d}"))
    state, pi, _ = c.pre_filter(pod("p"))
    feasible, statuses, _ = c.scheduler.find_nodes_that_fit(c.framework, state, pi)
    assert len(feasible) == 100 and not statuses  # 200 nodes: 50 % - 1 %, at least 100
    state, pi, _ = c.pre_filter(pod("q"))
    again, _, _ = c.scheduler.find_nodes_that_fit(c.framework, state, pi)
    assert {n.name for n in again}.isdisjoint(n.name for n in feasible)


def test_the_failed_scheduling_message_counts_reasons_per_node() -> None:
    c = Cluster()
    for i in range(3):
        c.add(node(f"gpu{i}", taints=[GPU]))
    for i in range(2):
        c.add(node(f"small{i}", cpu="1"))
    with pytest.raises(FitError) as err:
        c.schedule(pod("p", cpu="2"))
    assert err.value.message == ("0/5 nodes are available: 2 Insufficient cpu, "
                                 "3 node(s) had untolerated taint {dedicated: gpu}.")
    assert err.value.rejectors == {"TaintToleration", "NodeResourcesFit"}


def test_a_prefilter_rejection_names_itself_once() -> None:
    c = Cluster().add(node("n1"), node("n2"))
    with pytest.raises(FitError) as err:
        c.schedule(pod("p", volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]))
    assert err.value.message == '0/2 nodes are available: persistentvolumeclaim "data" not found.'


def test_ties_are_broken_at_random() -> None:
    c = Cluster(["NodeResourcesFit", "NodeResourcesLeastAllocated"])
    for i in range(4):
        c.add(node(f"n{i}"))
    c.scheduler.rand = random.Random(7)
    chosen = {c.schedule(pod(f"p{i}")) for i in range(40)}
    assert len(chosen) > 1


class FakeBinder(BindPlugin):
    NAME = "FakeBinder"
    calls: list[tuple[str, str]] = []

    def __init__(self, args: Mapping[str, Any], handle: Handle) -> None:
        super().__init__(args, handle)
        self.fail = bool(args.get("fail"))

    async def bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        FakeBinder.calls.append((pod.name, node))
        await asyncio.sleep(0)
        return error("Conflict: pod is already assigned") if self.fail else None


def scheduler_with_binder(fail: bool) -> tuple[Scheduler, Cache, SchedulingQueue]:
    cache = Cache()
    snapshot = Snapshot(cache)
    profile = Profile("default-scheduler", {"queueSort": ["PrioritySort"], "preFilter": ["NodeResourcesFit"],
                                            "filter": ["NodeResourcesFit"], "bind": ["FakeBinder"]},
                      plugin_args={"FakeBinder": {"fail": fail}})
    fwk = Framework(profile, {**REGISTRY, "FakeBinder": FakeBinder}, snapshot=snapshot)
    queue = SchedulingQueue({"default-scheduler": fwk})
    return Scheduler(cache, queue, {"default-scheduler": fwk}, snapshot), cache, queue


async def test_a_bound_pod_stays_assumed_until_the_informer_confirms_it() -> None:
    sched, cache, queue = scheduler_with_binder(fail=False)
    cache.add_node(node("n", cpu="1"))
    p = new_pod_info(pod("p", cpu="1"))
    queue.add(p)
    await sched.schedule_one()
    assert cache.is_assumed(p.uid) and cache.nodes["n"].req_cpu == 1000
    await sched.drain()
    assert ("p", "n") in FakeBinder.calls
    assert cache.is_assumed(p.uid) and queue.where(p.uid) == ""
    # the next pod sees the node full even though no informer event came yet
    queue.add(new_pod_info(pod("q", cpu="1")))
    await sched.schedule_one()
    assert queue.pending()["unschedulable"] == 1


async def test_a_failed_bind_gives_the_room_back(caplog: pytest.LogCaptureFixture) -> None:
    sched, cache, queue = scheduler_with_binder(fail=True)
    cache.add_node(node("n", cpu="1"))
    p = new_pod_info(pod("p", cpu="1"))
    queue.add(p)
    with caplog.at_level(logging.INFO):
        await sched.schedule_one()
        await sched.drain()
    assert not cache.is_assumed(p.uid) and cache.nodes["n"].req_cpu == 0
    assert queue.where(p.uid) == "backoff"
    assert "Binding rejected: Conflict: pod is already assigned" in caplog.text


async def test_unschedulable_pods_wait_with_their_rejecting_plugins(caplog: pytest.LogCaptureFixture) -> None:
    c = Cluster().add(node("n", cpu="1"))
    c.queue.add(new_pod_info(pod("big", cpu="2")))
    with caplog.at_level(logging.INFO):
        await c.scheduler.schedule_one()
    (qpi,) = list(c.queue.waiting())
    assert qpi.unschedulable_plugins == {"NodeResourcesFit"}
    assert c.queue.where(qpi.uid) == "unschedulable"
    assert ("0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
            "1 No preemption victims found for incoming pod.") in caplog.text


def test_the_scheduler_name_examples() -> None:
    cache = Cache()
    queue = SchedulingQueue({"default-scheduler": Cluster().framework})
    handlers = EventHandlers(cache, queue, ["default-scheduler"])
    handlers.on_pod_add(example("admin/sched/pod1.yaml"))
    other = example("admin/sched/pod3.yaml")
    assert other.spec.schedulerName == "my-scheduler"
    handlers.on_pod_add(other)
    assert [q.info.name for q in queue.waiting()] == ["no-annotation"]
    assert not handlers.responsible(other)


def test_handlers_move_bound_pods_into_the_cache() -> None:
    cache = Cache()
    queue = SchedulingQueue({"default-scheduler": Cluster().framework})
    handlers = EventHandlers(cache, queue, ["default-scheduler"])
    handlers.on_node_add(node("n"))
    unbound = pod("p", cpu="1")
    handlers.on_pod_add(unbound)
    bound = pod("p", cpu="1", uid=unbound.metadata.uid, node_name="n")
    handlers.on_pod_update(unbound, bound)
    assert list(queue.waiting()) == [] and cache.nodes["n"].req_cpu == 1000
    finished = pod("p", cpu="1", uid=unbound.metadata.uid, node_name="n")
    finished.status.phase = "Succeeded"
    handlers.on_pod_update(bound, finished)
    assert cache.nodes["n"].req_cpu == 0
    # a pod of another scheduler still takes room once it is bound
    elsewhere = pod("x", cpu="1", node_name="n", schedulerName="my-scheduler")
    handlers.on_pod_add(elsewhere)
    assert cache.nodes["n"].req_cpu == 1000


def test_node_changes_are_classified() -> None:
    base = node("n")
    assert node_change(base, node("n")) == ActionType(0)
    assert node_change(base, node("n", labels={"a": "b"})) == ActionType.UPDATE_NODE_LABEL
    assert node_change(base, node("n", taints=[GPU])) == ActionType.UPDATE_NODE_TAINT
    assert node_change(base, node("n", unschedulable=True)) == ActionType.UPDATE_NODE_SPEC
    assert node_change(base, node("n", cpu="8")) == ActionType.UPDATE_NODE_ALLOCATABLE
