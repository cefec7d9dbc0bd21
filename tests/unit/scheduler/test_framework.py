"""The framework runtime: building a profile's plugins from the registry,
the errors for unknown plugins and wrong extension points, PreFilter and
PreScore skips, weighted scores, Reserve/Unreserve and Bind order, and
the statuses plugins answer in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from scheduler._cache import Cache, Snapshot
from scheduler.framework import (
    SKIP,
    BindPlugin,
    Code,
    CycleState,
    FilterPlugin,
    Framework,
    Handle,
    NodeInfo,
    PodInfo,
    Profile,
    ReservePlugin,
    ScorePlugin,
    Status,
    error,
    new_pod_info,
    unschedulable,
)
from scheduler.plugins import REGISTRY

from .support import Cluster, node, pod

CALLS: list[str] = []


class Recorder(ReservePlugin, BindPlugin):
    """A test plugin: reserves (or refuses to), binds (or skips), and logs."""

    NAME = "Recorder"

    def __init__(self, args: Mapping[str, Any], handle: Handle) -> None:
        super().__init__(args, handle)
        self.refuse = bool(args.get("refuse"))
        self.skip_bind = bool(args.get("skipBind"))

    def reserve(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        CALLS.append(f"{self.NAME}.reserve {node}")
        return unschedulable("no room in the ledger") if self.refuse else None

    def unreserve(self, state: CycleState, pod: PodInfo, node: str) -> None:
        CALLS.append(f"{self.NAME}.unreserve {node}")

    async def bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        CALLS.append(f"{self.NAME}.bind {node}")
        return SKIP if self.skip_bind else None


class Second(Recorder):
    NAME = "Second"


class Constant(ScorePlugin, FilterPlugin):
    """Scores every node by the number in its name; filters out "odd" ones."""

    NAME = "Constant"

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return int(node.name[1:])

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return unschedulable("odd") if int(node.name[1:]) % 2 else None


TEST_REGISTRY = {**REGISTRY, "Recorder": Recorder, "Second": Second, "Constant": Constant}


def framework(plugins: dict[str, list[str]], *, args: dict[str, Any] | None = None,
              weights: dict[str, int] | None = None) -> Framework:
    base = {"queueSort": ["PrioritySort"], "bind": ["DefaultBinder"]}
    profile = Profile("test", {**base, **plugins}, weights or {}, args or {})
    return Framework(profile, TEST_REGISTRY, snapshot=Snapshot(Cache()))


def test_unknown_plugins_and_wrong_extension_points() -> None:
    with pytest.raises(ValueError, match="plugin 'Nope' does not exist"):
        framework({"filter": ["Nope"]})
    with pytest.raises(ValueError, match="plugin 'ImageLocality' does not extend filter plugin"):
        framework({"filter": ["ImageLocality"]})
    with pytest.raises(ValueError, match="exactly one queueSort plugin"):
        framework({"queueSort": []})
    with pytest.raises(ValueError, match="hardPodAffinityWeight"):
        framework({"filter": ["InterPodAffinity"]}, args={"InterPodAffinity": {"hardPodAffinityWeight": 500}})


def test_a_plugin_is_built_once_for_all_its_extension_points() -> None:
    fwk = framework({"preFilter": ["NodeResourcesFit"], "filter": ["NodeResourcesFit"]})
    assert fwk.pre_filter[0] is fwk.filter[0]


def test_scores_are_weighted_and_summed() -> None:
    fwk = framework({"score": ["Constant", "NodeResourcesLeastAllocated"]},
                    weights={"Constant": 3, "NodeResourcesLeastAllocated": 1})
    nodes = [NodeInfo("n1", node("n1", cpu="1", memory="1000Mi")), NodeInfo("n4", node("n4", cpu="1", memory="1000Mi"))]
    state = CycleState()
    # Constant: 1*3 and 4*3; least allocated of an empty pod on 1 cpu / 1000Mi: 85
    assert fwk.run_score(state, new_pod_info(pod("p")), nodes) == [88, 97]


def test_prefilter_skip_removes_the_filter() -> None:
    c = Cluster(["NodePorts", "NodeResourcesFit"]).add(node("n"))
    state, _, status = c.pre_filter(pod("p"))
    assert status is None
    assert "NodePorts" in state.skip_filter
    assert [p.name for p in c.framework.active_filters(state)] == ["NodeResourcesFit"]


def test_reserve_failure_unreserves_what_was_reserved() -> None:
    CALLS.clear()
    fwk = framework({"reserve": ["Recorder", "Second"]}, args={"Second": {"refuse": True}})
    status = fwk.run_reserve(CycleState(), new_pod_info(pod("p")), "n1")
    assert status is not None and status.plugin == "Second" and status.code == Code.UNSCHEDULABLE
    assert CALLS == ["Recorder.reserve n1", "Second.reserve n1", "Second.unreserve n1", "Recorder.unreserve n1"]


async def test_bind_plugins_in_order_until_one_binds() -> None:
    CALLS.clear()
    fwk = framework({"bind": ["Recorder", "Second"]}, args={"Recorder": {"skipBind": True}})
    assert await fwk.run_bind(CycleState(), new_pod_info(pod("p")), "n1") is None
    assert CALLS == ["Recorder.bind n1", "Second.bind n1"]
    everyone_skips = framework({"bind": ["Recorder"]}, args={"Recorder": {"skipBind": True}})
    status = await everyone_skips.run_bind(CycleState(), new_pod_info(pod("p")), "n1")
    assert status is not None and status.code == Code.ERROR


def test_statuses() -> None:
    st = unschedulable("Insufficient cpu", "Insufficient memory")
    assert st.message == "Insufficient cpu, Insufficient memory"
    assert st.is_rejected() and not st.is_success()
    assert st.with_plugin("NodeResourcesFit").plugin == "NodeResourcesFit"
    assert str(error("boom")) == "ERROR: boom"


def test_cycle_state_clone_copies_cloneable_values() -> None:
    class Counter:
        def __init__(self, n: int) -> None:
            self.n = n

        def clone(self) -> Counter:
            return Counter(self.n)

    state = CycleState()
    state.write("c", Counter(1))
    state.write("shared", [1])
    copy = state.clone()
    copy.read("c").n = 2
    assert state.read("c").n == 1 and copy.read("shared") is state.read("shared")
