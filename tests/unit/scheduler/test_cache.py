"""The scheduler cache: per-node totals kept up as pods come and go,
assumed pods (counted at once, confirmed by the informer or forgotten
after a failed bind), the label index affinity and spreading use, node
removal with pods still on it, and the snapshot's zone-interleaved order."""

from __future__ import annotations

from api import parse_selector
from scheduler._cache import Cache, Snapshot
from scheduler.framework import new_pod_info

from .support import node, pod

ZONE = "topology.kubernetes.io/zone"


def test_totals_follow_pods() -> None:
    cache = Cache()
    cache.add_node(node("n", cpu="4", memory="8Gi"))
    a = new_pod_info(pod("a", cpu="1", memory="1Gi", node_name="n"))
    b = new_pod_info(pod("b", node_name="n"))
    cache.add_pod(a)
    cache.add_pod(b)
    ni = cache.nodes["n"]
    assert (ni.req_cpu, ni.req_mem, len(ni.pods)) == (1000, 1024**3, 2)
    assert (ni.nz_cpu, ni.nz_mem) == (1100, 1024**3 + 200 * 1024**2)  # b counts the defaults for scoring
    cache.remove_pod(a.uid)
    assert (ni.req_cpu, ni.req_mem, len(ni.pods)) == (0, 0, 1)


def test_assume_confirm_and_forget() -> None:
    cache = Cache()
    cache.add_node(node("n", cpu="2"))
    queued = new_pod_info(pod("p", cpu="1"))
    assumed = cache.assume_pod(queued, "n")
    assert assumed.node_name == "n" and cache.is_assumed(queued.uid)
    assert cache.nodes["n"].req_cpu == 1000
    cache.forget_pod(queued.uid)  # the bind failed
    assert cache.nodes["n"].req_cpu == 0 and not cache.is_assumed(queued.uid)

    cache.assume_pod(queued, "n")
    cache.finish_binding(queued.uid)
    bound = pod("p", cpu="1", node_name="n", uid=queued.uid)
    cache.add_pod(queued.with_pod(bound))  # the informer saw the binding
    assert not cache.is_assumed(queued.uid)
    assert cache.nodes["n"].req_cpu == 1000 and cache.pod_count() == 1
    cache.forget_pod(queued.uid)  # a confirmed pod is not forgotten
    assert cache.nodes["n"].req_cpu == 1000


def test_a_binding_that_landed_elsewhere_moves_the_pod() -> None:
    cache = Cache()
    cache.add_node(node("a"))
    cache.add_node(node("b"))
    queued = new_pod_info(pod("p", cpu="1"))
    cache.assume_pod(queued, "a")
    cache.add_pod(new_pod_info(pod("p", cpu="1", node_name="b", uid=queued.uid)))
    assert cache.nodes["a"].req_cpu == 0 and cache.nodes["b"].req_cpu == 1000


def test_label_index() -> None:
    cache = Cache()
    cache.add_node(node("n"))
    for name, labels in (("w1", {"app": "web", "tier": "front"}), ("w2", {"app": "web"}), ("d", {"app": "db"})):
        cache.add_pod(new_pod_info(pod(name, labels=labels, node_name="n")))
    assert sorted(p.name for p in cache.pods_matching(parse_selector("app=web"))) == ["w1", "w2"]
    assert sorted(p.name for p in cache.pods_matching(parse_selector("app in (web,db),tier"))) == ["w1"]
    # an index narrows the candidates; the caller still checks the whole selector
    candidates = {p.name for p in cache.pods_matching(parse_selector("app!=web"))}
    assert candidates == {"w1", "w2", "d"}


def test_a_removed_node_keeps_its_pods_until_they_go() -> None:
    cache = Cache()
    cache.add_node(node("n"))
    p = new_pod_info(pod("p", node_name="n"))
    cache.add_pod(p)
    snapshot = Snapshot(cache)
    cache.remove_node("n")
    snapshot.update()
    assert len(snapshot) == 0 and "n" in cache.nodes
    cache.remove_pod(p.uid)
    assert "n" not in cache.nodes


def test_pods_may_arrive_before_their_node() -> None:
    cache = Cache()
    cache.add_pod(new_pod_info(pod("p", cpu="1", node_name="late")))
    cache.add_node(node("late"))
    assert cache.nodes["late"].req_cpu == 1000


def test_snapshot_interleaves_zones() -> None:
    cache = Cache()
    for name, zone in (("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b"), ("c1", "c"), ("c2", "c")):
        cache.add_node(node(name, labels={ZONE: zone}))
    snapshot = Snapshot(cache)
    snapshot.update()
    assert [n.name for n in snapshot.node_infos] == ["a1", "b1", "c1", "a2", "c2", "a3"]
    assert cache.sizes() == {"nodes": 6, "pods": 0, "assumed_pods": 0}


def test_node_counts() -> None:
    cache = Cache()
    cache.add_node(node("t", taints=[{"key": "k", "value": "", "effect": "NoSchedule"}]))
    cache.add_node(node("u", unschedulable=True))
    assert (cache.node_counts.hard_taints, cache.node_counts.unschedulable) == (1, 1)
    cache.update_node(node("t"))
    cache.remove_node("u")
    assert (cache.node_counts.hard_taints, cache.node_counts.unschedulable) == (0, 0)
