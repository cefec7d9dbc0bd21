"""Readiness decides who gets traffic (flow 4 of the issue).

One of three test-server pods starts failing its readiness probe (the test
creates /tmp/unready in its container with `kubelab exec`; the server's
/healthz then answers 500): the kubelet
marks it not Ready, the EndpointSlice lists it as not ready, and once every
node's proxy has caught up no request from any node reaches it. When the
file is gone it is Ready again, back in the endpoints, and answers again.
The pod is never restarted: readiness is not liveness.
"""

from __future__ import annotations

from functools import partial

from proto import core_pb2, discovery_pb2
from tests.support.wait import wait_for

from . import _manifests as m
from ._agent import Agent, tally
from ._lab import FIGURES, Lab, is_ready
from .conftest import Clients

SAMPLE = 300


def _endpoint_ready(lab: Lab, namespace: str, ip: str) -> bool | None:
    """Whether the Service's EndpointSlices list `ip` as ready (None: not listed)."""
    slices = lab.clientset.resource(discovery_pb2.EndpointSlice, namespace).list(
        label_selector="kubernetes.io/service-name=web").items
    for s in slices:
        for e in s.endpoints:
            if ip in e.addresses:
                return e.conditions.ready
    return None


def _pod(lab: Lab, namespace: str, name: str) -> core_pb2.Pod:
    return lab.clientset.resource(core_pb2.Pod, namespace).get(name)


def _avoids(agent: Agent, target: str, name: str) -> bool:
    return name not in tally(agent.get(target, n=30))


def _reaches(agent: Agent, target: str, name: str) -> bool:
    return name in tally(agent.get(target, n=30))


def test_unready_pod_leaves_endpoints_and_gets_no_traffic_until_ready(lab: Lab, namespace: str,
                                                                     clients: Clients) -> None:
    lab.apply(namespace, m.deployment("web"), m.service("web"))
    pods = lab.running_pods(namespace, "app=web", 3)
    flaky = pods[0]
    name, ip = flaky.metadata.name, flaky.status.podIP
    target = f"web.{namespace}.svc.cluster.local"
    agents = clients.each()
    for agent in agents:
        wait_for(partial(_reaches, agent, target, name), f"{agent.pod} reaching {name}")

    lab.kubelab("exec", name, "-n", namespace, "--", "touch", "/tmp/unready")
    wait_for(lambda: not is_ready(_pod(lab, namespace, name)), f"{name} to be not Ready")
    wait_for(lambda: _endpoint_ready(lab, namespace, ip) in (False, None), f"{name} ({ip}) out of the ready endpoints")
    for agent in agents:
        wait_for(partial(_avoids, agent, target, name), f"the proxy on {agent.node} to stop sending to {name}")
    for agent in agents:
        replies = agent.get(target, n=SAMPLE)
        counts = tally(replies)
        FIGURES.append(f"[{lab.proxy_mode}] {agent.node} while {name[-5:]} is unready: "
                       + ", ".join(f"{k[-5:]}={v}" for k, v in sorted(counts.items())))
        assert all(r.ok for r in replies), f"{agent.pod}: {counts}"
        assert name not in counts, f"{agent.pod} still reached the unready {name}: {counts}"
        assert len(counts) == 2, f"{agent.pod}: both ready pods answer: {counts}"
    assert _pod(lab, namespace, name).status.containerStatuses[0].restartCount == 0

    lab.kubelab("exec", name, "-n", namespace, "--", "rm", "/tmp/unready")
    wait_for(lambda: is_ready(_pod(lab, namespace, name)), f"{name} to be Ready again")
    wait_for(lambda: _endpoint_ready(lab, namespace, ip) is True, f"{name} ({ip}) back in the endpoints")
    for agent in agents:
        wait_for(partial(_reaches, agent, target, name), f"the proxy on {agent.node} to send to {name} again")
