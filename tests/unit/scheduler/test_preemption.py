"""Preemption's policy and choices, without an apiserver: which pods on a
node are victims (only lower priority, the least important, as few as
possible), PodDisruptionBudgets respected where possible, the best node
among candidates, who may preempt (preemptionPolicy Never, a nomination
still waiting for its victims), and nominated pods holding their room."""

from __future__ import annotations

from api import from_dict
from proto import policy_pb2
from scheduler.framework import (
    NO_VICTIMS,
    Candidate,
    Code,
    CycleState,
    Evaluator,
    Victims,
    new_pod_info,
    pick_one,
    unschedulable,
)
from scheduler.plugins.defaultpreemption import DefaultPreemption

from .support import Cluster, node, pod


def low(name: str, node_name: str, priority: int = 0, cpu: str = "1", **kw: object) -> object:
    return pod(name, cpu=cpu, priority=priority, node_name=node_name, **kw)


def preemption(c: Cluster) -> DefaultPreemption:
    plugin = c.framework.plugins["DefaultPreemption"]
    assert isinstance(plugin, DefaultPreemption)
    return plugin


def candidates(c: Cluster, preemptor: object) -> tuple[list[Candidate], dict[str, object]]:
    state, pi, status = c.pre_filter(preemptor)  # type: ignore[arg-type]
    assert status is None
    statuses = {n.name: c.framework.run_filters(state, pi, n) for n in c.snapshot.node_infos}
    assert all(s is not None for s in statuses.values()), "the preemptor must fit nowhere"
    plugin = preemption(c)
    return Evaluator(c.framework, plugin).find_candidates(state, pi, statuses, plugin.budgets())  # type: ignore[arg-type]


def test_the_fewest_least_important_victims() -> None:
    c = Cluster().add(node("n", cpu="3"))
    c.add(low("old", "n", priority=5), low("mid", "n", priority=10), low("new", "n", priority=1))
    (cand,), _ = candidates(c, pod("vip", cpu="1", priority=100))
    assert [v.name for v in cand.victims.pods] == ["new"]
    (cand,), _ = candidates(c, pod("vip", cpu="2", priority=100))
    assert [v.name for v in cand.victims.pods] == ["old", "new"]


def test_equal_or_higher_priority_pods_are_never_victims() -> None:
    c = Cluster().add(node("n", cpu="2"), low("peer", "n", priority=100, cpu="2"))
    found, statuses = candidates(c, pod("p", cpu="1", priority=100))
    assert found == []
    status = statuses["n"]
    assert status is not None and status.reasons == (NO_VICTIMS,)  # type: ignore[attr-defined]


def test_no_candidate_where_even_all_victims_would_not_make_room() -> None:
    c = Cluster().add(node("n", cpu="2"), low("a", "n", cpu="1"))
    found, statuses = candidates(c, pod("p", cpu="4", priority=100))
    assert found == []
    assert statuses["n"].reasons == ("Insufficient cpu",)  # type: ignore[attr-defined]


def test_unresolvable_nodes_are_not_tried() -> None:
    c = Cluster().add(node("full", cpu="1"), low("a", "full"),
                      node("tainted", cpu="4", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]))
    found, statuses = candidates(c, pod("p", cpu="1", priority=100))
    assert [x.node for x in found] == ["full"]
    assert statuses["tainted"].reasons == ("Preemption is not helpful for scheduling",)  # type: ignore[attr-defined]


def pdb(name: str, labels: dict[str, str], min_available: int) -> policy_pb2.PodDisruptionBudget:
    return from_dict(policy_pb2.PodDisruptionBudget, {
        "metadata": {"name": name, "namespace": "default", "generation": 1},
        "spec": {"minAvailable": min_available, "selector": {"matchLabels": labels}}})


def test_disruption_budgets_are_respected_where_possible() -> None:
    c = Cluster().add(node("a", cpu="1"), node("b", cpu="1"))
    c.add(low("guarded", "a", labels={"app": "db"}), low("free", "b", labels={"app": "batch"}))
    c.add(pdb("db", {"app": "db"}, min_available=1))
    found, _ = candidates(c, pod("p", cpu="1", priority=100))
    by_node = {x.node: x.victims.pdb_violations for x in found}
    assert by_node == {"a": 1, "b": 0}
    assert pick_one(found).node == "b"
    # with only the guarded pod to evict, the budget is broken rather than the pod left out
    only = Cluster().add(node("a", cpu="1"), low("guarded", "a", labels={"app": "db"}),
                         pdb("db", {"app": "db"}, min_available=1))
    (cand,), _ = candidates(only, pod("p", cpu="1", priority=100))
    assert cand.victims.pdb_violations == 1


def test_a_budget_with_room_is_no_violation() -> None:
    c = Cluster().add(node("a", cpu="2"), low("db-0", "a", labels={"app": "db"}),
                      low("db-1", "a", labels={"app": "db"}), pdb("db", {"app": "db"}, min_available=1))
    (cand,), _ = candidates(c, pod("p", cpu="1", priority=100))
    assert cand.victims.pdb_violations == 0 and len(cand.victims.pods) == 1


def test_picking_among_candidates() -> None:
    def cand(node_name: str, *prios: int, violations: int = 0) -> Candidate:
        pods = [new_pod_info(pod(f"{node_name}-{i}", priority=p)) for i, p in enumerate(prios)]
        return Candidate(node_name, Victims(sorted(pods, key=lambda v: -v.priority), violations))

    assert pick_one([cand("a", 1, violations=1), cand("b", 50)]).node == "b"  # fewer budget violations
    assert pick_one([cand("a", 10), cand("b", 5, 5)]).node == "b"  # lower highest victim priority
    assert pick_one([cand("a", 5, 5), cand("b", 5, 1)]).node == "b"  # lower priority sum
    assert pick_one([cand("a", 5, 0, 0), cand("b", 5, 0)]).node == "b"  # fewer victims


async def test_who_may_preempt() -> None:
    c = Cluster().add(node("n", cpu="1"))
    never = new_pod_info(pod("polite", cpu="1", priority=100, preemptionPolicy="Never"))
    result, status = await preemption(c).post_filter(CycleState(), never, {"n": unschedulable("Insufficient cpu")})
    assert result is None and status.code == Code.UNSCHEDULABLE
    assert status.message == "preemption: not eligible due to preemptionPolicy=Never."

    terminating = pod("going", cpu="1", node_name="n")
    terminating.metadata.deletionTimestamp = "2024-01-01T00:00:00Z"  # an earlier preemption's victim
    c.add(terminating)
    waiting = pod("waiting", cpu="1", priority=100)
    waiting.status.nominatedNodeName = "n"
    ok, why = preemption(c).eligible(new_pod_info(waiting), {"n": unschedulable("Insufficient cpu")})
    assert not ok and why == "not eligible due to a terminating pod on the nominated node."


def test_nominated_pods_hold_their_room() -> None:
    c = Cluster(["NodeResourcesFit"]).add(node("n", cpu="2"))
    promised = new_pod_info(pod("promised", cpu="2", priority=100))
    c.nominator.add_nominated_pod(promised, "n")
    state, pi, _ = c.pre_filter(pod("lower", cpu="1", priority=1))
    status = c.framework.run_filters_with_nominated_pods(state, pi, c.node_info("n"))
    assert status is not None and status.reasons == ("Insufficient cpu",)
    state, pi, _ = c.pre_filter(pod("higher", cpu="1", priority=1000))
    assert c.framework.run_filters_with_nominated_pods(state, pi, c.node_info("n")) is None
