"""TaintToleration: NoSchedule and NoExecute taints keep off pods that do
not tolerate them (Equal and Exists operators, empty key and effect
wildcards), PreferNoSchedule only scores; with the shared manifests'
toleration examples and the scheduler's message format."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.framework import Code, Taint, Toleration

from .support import Cluster, example, node, pod

GPU = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


@pytest.mark.parametrize(("toleration", "taint", "ok"), [
    ({"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}, GPU, True),
    ({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}, GPU, True),  # Equal is the default
    ({"key": "dedicated", "operator": "Equal", "value": "cpu", "effect": "NoSchedule"}, GPU, False),
    ({"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}, GPU, True),
    ({"key": "dedicated", "operator": "Exists"}, GPU, True),  # empty effect: all effects
    ({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}, GPU, False),
    ({"operator": "Exists"}, GPU, True),  # empty key with Exists: everything
    ({"key": "other", "operator": "Exists"}, GPU, False),
    ({"key": "k", "operator": "Equal", "value": "", "effect": "NoExecute"},
     {"key": "k", "value": "", "effect": "NoExecute"}, True),
])
def test_toleration_matching(toleration: dict[str, str], taint: dict[str, str], ok: bool) -> None:
    t = Toleration(toleration.get("key", ""), toleration.get("operator", "Equal"), toleration.get("value", ""),
                   toleration.get("effect", ""))
    assert t.tolerates(Taint(taint["key"], taint["value"], taint["effect"])) is ok
    c = Cluster(["TaintToleration"]).add(node("n", taints=[taint]))
    assert (c.filter(pod("p", tolerations=[toleration]), "n") is None) is ok


def test_untolerated_taint_message() -> None:
    c = Cluster(["TaintToleration"]).add(node("n", taints=[GPU]))
    status = c.filter(pod("p"), "n")
    assert status is not None and status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.reasons == ("node(s) had untolerated taint {dedicated: gpu}",)
    c2 = Cluster(["TaintToleration"]).add(node("m", taints=[
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]))
    status = c2.filter(pod("p"), "m")
    assert status is not None and status.reasons == ("node(s) had untolerated taint "
                                                     "{node-role.kubernetes.io/control-plane: }",)


def test_prefer_no_schedule_does_not_filter_but_scores() -> None:
    c = Cluster(["TaintToleration"]).add(
        node("clean"), node("soft", taints=[{"key": "spot", "value": "true", "effect": "PreferNoSchedule"}]),
        node("softer", taints=[{"key": "spot", "value": "true", "effect": "PreferNoSchedule"},
                               {"key": "old", "value": "", "effect": "PreferNoSchedule"}]))
    p = pod("p")
    assert set(c.feasible(p)) == {"clean", "soft", "softer"}
    # reversed: 0 untolerated -> 100, 1 of max 2 -> 50, 2 -> 0; weight 3
    assert c.scores(p) == {"clean": 300, "soft": 150, "softer": 0}
    tolerant = pod("q", tolerations=[{"key": "spot", "operator": "Exists", "effect": "PreferNoSchedule"}])
    assert c.scores(tolerant) == {"clean": 300, "soft": 300, "softer": 0}


def test_the_toleration_example() -> None:
    c = Cluster(["TaintToleration"]).add(
        node("tainted", taints=[{"key": "example-key", "value": "", "effect": "NoSchedule"}]),
        node("executing", taints=[{"key": "example-key", "value": "", "effect": "NoExecute"}]))
    assert c.feasible(example("pods/pod-with-toleration.yaml")) == ["tainted"]
    assert c.feasible(example("pods/pod-nginx.yaml")) == []


def daemonset_pod(path: str) -> Any:
    from api import decode_manifest, load_documents

    from .support import EXAMPLES
    ds = decode_manifest(load_documents((EXAMPLES / path).read_text())[0])
    return pod("ds", tolerations=[{"key": t.key, "operator": t.operator, "effect": t.effect}
                                  for t in ds.spec.template.spec.tolerations])


def test_the_daemonset_examples_tolerate_control_plane_taints() -> None:
    c = Cluster(["TaintToleration"]).add(
        node("master", taints=[{"key": "node-role.kubernetes.io/master", "value": "", "effect": "NoSchedule"}]),
        node("cp", taints=[{"key": "node-role.kubernetes.io/control-plane", "value": "", "effect": "NoSchedule"}]))
    assert c.feasible(daemonset_pod("controllers/fluentd-daemonset.yaml")) == ["cp", "master"]
    # daemonset.yaml tolerates only the old master taint (operator Equal, empty value)
    assert c.feasible(daemonset_pod("controllers/daemonset.yaml")) == ["master"]
