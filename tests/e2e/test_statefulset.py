"""A StatefulSet behind a headless Service (flow 5 of the issue).

Each pod gets a stable DNS name, <pod>.<service>.<namespace>.svc.cluster.local,
from its hostname and the Service as its subdomain; cluster DNS answers it
with the pod's IP, and the pod answers requests to it with its own name.
A pod that is deleted comes back under the same name (a new pod, likely
with a new IP), and the same DNS name follows it. The headless Service
itself gets no virtual IP: its name resolves to the ready pods' IPs.
"""

from __future__ import annotations

from functools import partial

from proto import core_pb2
from tests.support.wait import wait_for

from . import _manifests as m
from ._agent import Agent, Reply
from ._lab import Lab, is_ready
from .conftest import Clients


def _answers(agent: Agent, host: str, name: str) -> bool:
    return agent.get(f"{host}:{m.PORT}", "hostname") == [Reply(True, name)]


def _resolves_to(agent: Agent, host: str, ip: str) -> bool:
    answer = agent.resolve(host)
    # busybox nslookup prints the server first, then "Name: ... Address: <ip>"
    return ip in answer.split("Name:", 1)[-1]


def _check_names(lab: Lab, namespace: str, agents: list[Agent], pods: list[core_pb2.Pod]) -> None:
    for pod in pods:
        fqdn = f"{pod.metadata.name}.web.{namespace}.svc.cluster.local"
        for agent in agents:
            wait_for(partial(_resolves_to, agent, fqdn, pod.status.podIP), f"{fqdn} -> {pod.status.podIP} "
                     f"from {agent.node}", timeout=30)
            wait_for(partial(_answers, agent, fqdn, pod.metadata.name), f"{fqdn} answering from {agent.node}",
                     timeout=30)


def test_statefulset_pods_keep_their_dns_names_across_deletion(lab: Lab, namespace: str, clients: Clients) -> None:
    lab.apply(namespace, m.service("web", headless=True), m.statefulset("web"))
    pods = lab.running_pods(namespace, "app=web", 3, timeout=120)
    assert [p.metadata.name for p in pods] == ["web-0", "web-1", "web-2"]
    assert all(p.spec.hostname == p.metadata.name and p.spec.subdomain == "web" for p in pods)
    service = lab.clientset.resource(core_pb2.Service, namespace).get("web")
    assert service.spec.clusterIP == "None"
    agents = clients.each()
    _check_names(lab, namespace, agents, pods)
    headless = agents[0].resolve(f"web.{namespace}.svc.cluster.local").split("Name:", 1)[-1]
    assert all(p.status.podIP in headless for p in pods), headless

    before = pods[1]
    lab.kubelab("delete", "pod", "web-1", "-n", namespace)

    def replaced() -> core_pb2.Pod:
        pod = lab.clientset.resource(core_pb2.Pod, namespace).get("web-1")
        assert pod.metadata.uid != before.metadata.uid, "web-1 not yet replaced"
        assert is_ready(pod), f"the new web-1 is {pod.status.phase}, not Ready"
        return pod
    after = wait_for(replaced, "a new web-1, Running and Ready", timeout=90)
    _check_names(lab, namespace, agents, [after])
