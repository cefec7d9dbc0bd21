"""A rolling update under load (flow 3 of the issue).

A client pod on every node sends requests to the Service without pause
while `kubelab set image` replaces the Deployment's pods one by one, and
again while `kubelab rollout undo` brings the first image back: not one
request may fail. That holds only when every part does its share, as in
Kubernetes: the Deployment surges a pod and waits for it to be Ready
before it removes an old one (maxSurge 1, maxUnavailable 0 for three
replicas); the readiness probe decides Ready; the EndpointSlice
controller drops a terminating pod from the ready endpoints; every node's
proxy rewrites its rules; and the old pod keeps serving meanwhile, for
which the pod has a preStop hook that sleeps, as Kubernetes' docs advise
for servers that stop listening at SIGTERM.
"""

from __future__ import annotations

from collections import Counter
from functools import partial

from proto import apps_pb2
from tests.support.wait import wait_for

from . import _manifests as m
from ._agent import Agent, Reply, tally
from ._lab import FIGURES, Lab, is_ready
from .conftest import Clients


def _rolled_out(lab: Lab, namespace: str, image: str) -> bool:
    """Every pod of the Deployment runs `image` and is Ready, and no other
    pod is left, not even a terminating one."""
    pods = lab.pods(namespace, "app=web")
    images = Counter(p.spec.containers[0].image for p in pods)
    assert images.keys() == {image} and len(pods) == 3, dict(images)
    return all(is_ready(p) for p in pods)


def _answered_by(agent: Agent, target: str, names: set[str]) -> bool:
    return tally(agent.get(target, n=30)).keys() == names


def _under_load(lab: Lab, agents: list[Agent], target: str, label: str, action: list[str], namespace: str,
                image: str) -> dict[str, list[Reply]]:
    for agent in agents:
        agent.start_load(label, target)
    try:
        lab.kubelab(*action, "-n", namespace)
        lab.kubelab("rollout", "status", "deployment/web", "-n", namespace, "--timeout", "120s", timeout=150)
        wait_for(lambda: _rolled_out(lab, namespace, image), f"only {image} pods left", timeout=60)
    finally:
        replies = {agent.node: agent.stop_load(label) for agent in agents}
    return replies


def _check(lab: Lab, what: str, replies: dict[str, list[Reply]], old: set[str], new: set[str]) -> None:
    for node, seen in replies.items():
        counts = tally(seen)
        FIGURES.append(f"[{lab.proxy_mode}] {what}, client on {node}: {len(seen)} requests, "
                       f"{counts['<failed>']} failed")
        failures = Counter(r.body for r in seen if not r.ok)
        assert not failures, f"{what}: the client on {node} saw failures: {dict(failures)}"
        assert len(seen) > 20, f"{what}: the client on {node} sent only {len(seen)} requests"
        answered = set(counts)
        assert answered <= old | new, f"{what}: answers from unknown pods {answered - old - new}"
        assert answered & old and answered & new, f"{what}: {node} saw old {answered & old} and new {answered & new}"


def test_rolling_update_under_load_fails_no_request_and_undo_restores(lab: Lab, namespace: str,
                                                                       clients: Clients) -> None:
    lab.apply(namespace, m.deployment("web", pre_stop_seconds=3), m.service("web"))
    first = {p.metadata.name for p in lab.running_pods(namespace, "app=web", 3)}
    target = f"web.{namespace}.svc.cluster.local"
    agents = clients.each()
    for agent in agents:
        wait_for(partial(_answered_by, agent, target, first), f"{agent.pod} reaching every backend")

    replies = _under_load(lab, agents, target, "update", ["set", "image", "deployment/web", f"web={m.AGNHOST}"],
                          namespace, m.AGNHOST)
    second = {p.metadata.name for p in lab.pods(namespace, "app=web")}
    _check(lab, "set image", replies, first, second)

    replies = _under_load(lab, agents, target, "undo", ["rollout", "undo", "deployment/web"], namespace,
                          m.TESTSERVER)
    third = {p.metadata.name for p in lab.pods(namespace, "app=web")}
    _check(lab, "rollout undo", replies, second, third)
    deployment = lab.clientset.resource(apps_pb2.Deployment, namespace).get("web")
    assert deployment.spec.template.spec.containers[0].image == m.TESTSERVER
    history = lab.kubelab("rollout", "history", "deployment/web", "-n", namespace).stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"], history
