"""PodTopologySpread: maxSkew per topology domain for DoNotSchedule
constraints (missing labels, minDomains, node inclusion policies, the
pod matching itself or not) and the ScheduleAnyway score."""

from __future__ import annotations

from typing import Any

from scheduler.framework import Code

from .support import Cluster, node, pod

ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"


def spread(key: str = ZONE, skew: int = 1, when: str = "DoNotSchedule", **extra: Any) -> list[dict[str, Any]]:
    return [{"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": when,
             "labelSelector": {"matchLabels": {"app": "web"}}, **extra}]


def zoned() -> Cluster:
    c = Cluster(["PodTopologySpread", "NodeAffinity"])
    for name, zone in (("a1", "a"), ("a2", "a"), ("b1", "b"), ("c1", "c")):
        c.add(node(name, labels={ZONE: zone, "tier": "gold" if name != "c1" else "bronze"}))
    c.add(node("nozone"))
    return c


def web(name: str, node_name: str = "", **spec: Any) -> Any:
    return pod(name, labels={"app": "web"}, node_name=node_name, **spec)


def test_skew_per_zone() -> None:
    c = zoned()
    c.add(web("w0", "a1"), web("w1", "b1"))
    p = web("p", topologySpreadConstraints=spread())
    # a:1 b:1 c:0 -> only zone c keeps the skew at 1
    assert c.feasible(p) == ["c1"]
    status = c.filter(p, "a2")
    assert status is not None and status.code == Code.UNSCHEDULABLE
    assert status.reasons == ("node(s) didn't match pod topology spread constraints",)
    missing = c.filter(p, "nozone")
    assert missing is not None and missing.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert missing.reasons == ("node(s) didn't match pod topology spread constraints (missing required label)",)
    assert set(c.feasible(web("p", topologySpreadConstraints=spread(skew=2)))) == {"a1", "a2", "b1", "c1"}


def test_pods_of_other_namespaces_selectors_or_terminating_do_not_count() -> None:
    c = zoned()
    c.add(pod("other-ns", namespace="x", labels={"app": "web"}, node_name="c1"),
          pod("other-app", labels={"app": "db"}, node_name="c1"), web("w0", "a1"), web("w1", "b1"))
    assert c.feasible(web("p", topologySpreadConstraints=spread())) == ["c1"]


def test_node_affinity_policy_limits_the_domains() -> None:
    c = zoned()
    c.add(web("w0", "a1"), web("w1", "b1"))
    gold_only = {"nodeSelector": {"tier": "gold"}}
    # zone c is not a domain for a gold-only pod (Honor), so a and b are even
    assert set(c.feasible(web("p", topologySpreadConstraints=spread(), **gold_only))) == {"a1", "a2", "b1"}
    ignoring = spread(nodeAffinityPolicy="Ignore")
    assert c.feasible(web("p", topologySpreadConstraints=ignoring, **gold_only)) == []


def test_min_domains() -> None:
    c = zoned()
    c.add(web("w0", "a1"), web("w1", "b1"), web("w2", "c1"))
    assert set(c.feasible(web("p", topologySpreadConstraints=spread()))) == {"a1", "a2", "b1", "c1"}
    # 3 domains < minDomains 4: the minimum counts as 0, so every zone is at skew 2
    assert c.feasible(web("p", topologySpreadConstraints=spread(minDomains=4))) == []


def test_a_pod_that_does_not_match_itself() -> None:
    c = zoned()
    c.add(web("w0", "a1"))
    other = pod("p", labels={"app": "other"}, topologySpreadConstraints=spread())
    # placing it adds nothing to any domain: a:1 - min 0 = 1 <= 1 everywhere
    assert set(c.feasible(other)) == {"a1", "a2", "b1", "c1"}


def test_schedule_anyway_scores_emptier_domains_higher() -> None:
    c = zoned()
    c.add(web("w0", "a1"), web("w1", "a2"), web("w2", "b1"))
    scores = c.scores(web("p", topologySpreadConstraints=spread(when="ScheduleAnyway")))
    assert scores["c1"] > scores["b1"] > scores["a1"] == scores["a2"]
    assert scores["nozone"] == 0


def test_spreading_over_hosts_while_scheduling() -> None:
    c = Cluster(["PodTopologySpread"])
    for i in range(3):
        c.add(node(f"n{i}"))
    placed: dict[str, int] = {}
    for i in range(6):
        name = c.schedule(web(f"w{i}", topologySpreadConstraints=spread(key=HOST)))
        placed[name] = placed.get(name, 0) + 1
        c.add(web(f"w{i}", name))
    assert placed == {"n0": 2, "n1": 2, "n2": 2}
