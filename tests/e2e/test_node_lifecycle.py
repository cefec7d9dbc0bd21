"""A node dies (flow 7 of the issue).

The node's kubelet is stopped: SIGSTOP, so it neither renews its Lease nor
posts status, exactly as a kubelet that died; `kubelab join` would restart
a kubelet that exited, which a frozen one never does, and SIGCONT brings
the node back for the tests after this one. The controller-manager runs
with a 20 s --node-monitor-grace-period (conftest.py), after which its
node-lifecycle controller marks the node NotReady (Ready=Unknown) and
taints it node.kubernetes.io/unreachable (NoSchedule and NoExecute). The
test's pods tolerate that taint for 2 s only, so the taint-eviction
controller deletes them; the ReplicaSet replaces them on the other nodes,
and the Service keeps answering from the replacements throughout: a client
pod on a surviving node sends requests without pause the whole time, and
none may fail. (The stopped node's containers keep running, as they would
behind a hung kubelet, so its pods serve until they leave the endpoints.)
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections import Counter
from collections.abc import Iterator

from proto import core_pb2
from tests.support.wait import wait_for

from . import _manifests as m
from ._agent import tally
from ._lab import FIGURES, Lab, is_ready
from .conftest import Clients

UNREACHABLE = "node.kubernetes.io/unreachable"


def _ready(node: core_pb2.Node) -> str:
    return next((c.status for c in node.status.conditions if c.type == "Ready"), "")


def _taints(node: core_pb2.Node) -> set[tuple[str, str]]:
    return {(t.key, t.effect) for t in node.spec.taints}


@contextlib.contextmanager
def _stopped_kubelet(lab: Lab, node: str) -> Iterator[None]:
    pid = lab.node_component_pid(node, "kubelet")
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
        nodes = lab.clientset.resource(core_pb2.Node)
        wait_for(lambda: _ready(nodes.get(node)) == "True" and not _taints(nodes.get(node)),
                 f"{node} Ready again and untainted", timeout=90)


def test_dead_node_is_tainted_and_its_pods_move_while_the_service_answers(lab: Lab, namespace: str,
                                                                           clients: Clients) -> None:
    lab.apply(namespace, m.deployment("web", spread="ScheduleAnyway", tolerate_node_loss_seconds=2, grace=2),
              m.service("web"))
    pods = lab.running_pods(namespace, "app=web", 3)
    victim = pods[-1].spec.nodeName
    survivors = [n for n in lab.nodes if n != victim]
    client = clients.on(survivors[0])
    target = f"web.{namespace}.svc.cluster.local"
    wait_for(lambda: tally(client.get(target, n=30)).keys() == {p.metadata.name for p in pods},
             "the Service answering from every pod")
    moved = {p.metadata.name for p in pods if p.spec.nodeName == victim}
    nodes = lab.clientset.resource(core_pb2.Node)

    client.start_load("node-death", target)
    try:
        with _stopped_kubelet(lab, victim):
            wait_for(lambda: _ready(nodes.get(victim)) == "Unknown", f"{victim} NotReady", timeout=90)
            assert "NotReady" in lab.kubelab("get", "node", victim).stdout
            wait_for(lambda: {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")} <= _taints(nodes.get(victim)),
                     f"{victim} tainted {UNREACHABLE}", timeout=60)

            def replaced() -> set[str]:
                live = [p for p in lab.pods(namespace, "app=web") if not p.metadata.deletionTimestamp]
                assert not moved & {p.metadata.name for p in live}, "the victim's pods are not deleted yet"
                assert len(live) == 3 and all(is_ready(p) for p in live), [p.metadata.name for p in live]
                assert all(p.spec.nodeName in survivors for p in live)
                return {p.metadata.name for p in live}
            serving = wait_for(replaced, f"the pods of {victim} recreated on {survivors}", timeout=90)
            wait_for(lambda: tally(client.get(target, n=30)).keys() == serving,
                     f"the Service answering from {serving} only")
    finally:
        replies = client.stop_load("node-death")
    failures = Counter(r.body for r in replies if not r.ok)
    FIGURES.append(f"[{lab.proxy_mode}] node death ({victim}): {len(replies)} requests from {client.node}, "
                   f"{sum(failures.values())} failed")
    assert not failures, f"requests failed while {victim} died: {dict(failures)}"
    assert len(replies) > 20
