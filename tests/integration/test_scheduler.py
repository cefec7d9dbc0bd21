"""The scheduler process against a real apiserver and etcd: 100 pods filling
10 nodes exactly and never beyond; taints and tolerations (with `kubelab
taint`), a cordoned node (`kubelab cordon`), `kubelab label nodes`;
affinity and anti-affinity spreading; topology spread; preemption with
PriorityClasses and a PodDisruptionBudget; a pod for an unknown
schedulerName left alone; the FailedScheduling event and condition, as
`kubelab describe pod` shows them; and /metrics.

These tests get an etcd and an apiserver of their own (module-wide): the
session's apiserver holds other tests' nodes and pending pods, which a
scheduler would rightly place. Each test starts its own scheduler and
removes its nodes and pods afterwards, whatever happens.
"""

from __future__ import annotations

import asyncio
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from api import StatusError, from_dict
from client import ClientConfig, Clientset
from deploy.local import APIServerProcess, ComponentProcess
from proto import core_pb2, policy_pb2, scheduling_pb2
from tests.support.podsim import PodSimulator
from tests.support.wait import eventually

from .cli_support import Kubelab

HOST = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"


def make_node(name: str, *, cpu: str = "4", memory: str = "8Gi", pods: int = 110,
              labels: dict[str, str] | None = None) -> core_pb2.Node:
    amounts = {"cpu": cpu, "memory": memory, "pods": str(pods)}
    return from_dict(core_pb2.Node, {
        "metadata": {"name": name, "labels": {HOST: name, **(labels or {})}},
        "status": {"capacity": amounts, "allocatable": amounts, "conditions": [{"type": "Ready", "status": "True"}]},
    })


def make_pod(name: str, *, namespace: str, cpu: str | None = None, memory: str | None = None,
             labels: dict[str, str] | None = None, **spec: Any) -> core_pb2.Pod:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    return from_dict(core_pb2.Pod, {
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                 "resources": {"requests": requests}}], **spec},
    })


async def all_pods(cs: Clientset, namespace: str) -> list[core_pb2.Pod]:
    return list((await cs.resource(core_pb2.Pod, namespace).list()).items)


def scheduled_condition(pod: core_pb2.Pod) -> core_pb2.PodCondition | None:
    return next((c for c in pod.status.conditions if c.type == "PodScheduled"), None)




@pytest.fixture
async def cs(cluster: APIServerProcess) -> AsyncIterator[Clientset]:
    clientset = Clientset.connect(ClientConfig(server=cluster.target))
    yield clientset
    await clientset.close()


class Env:
    """One test's namespace, nodes and scheduler, all removed afterwards."""

    def __init__(self, cs: Clientset, api: APIServerProcess, workdir: Path) -> None:
        self.cs = cs
        self.api = api
        self.workdir = workdir
        self.ns = f"t-{uuid.uuid4().hex[:8]}"
        self.nodes: list[str] = []
        self.schedulers: list[ComponentProcess] = []
        self.kubelab = Kubelab(api.target)

    def start_scheduler(self, *flags: str) -> ComponentProcess:
        proc = ComponentProcess("scheduler", self.api.target, log=self.workdir / f"scheduler-{self.ns}.log",
                                extra=["--leader-elect", "false", *flags])
        self.schedulers.append(proc)
        return proc.wait_ready()

    async def node(self, name: str, **kw: Any) -> core_pb2.Node:
        self.nodes.append(name)
        return await self.cs.resource(core_pb2.Node).create(make_node(name, **kw))

    async def pod(self, name: str, **kw: Any) -> core_pb2.Pod:
        return await self.cs.resource(core_pb2.Pod, self.ns).create(make_pod(name, namespace=self.ns, **kw))

    async def get(self, name: str) -> core_pb2.Pod:
        return await self.cs.resource(core_pb2.Pod, self.ns).get(name)

    async def placement(self) -> dict[str, str]:
        return {p.metadata.name: p.spec.nodeName for p in await all_pods(self.cs, self.ns)}

    async def bound(self, *names: str, timeout: float = 20.0) -> dict[str, str]:
        async def done() -> bool:
            placed = await self.placement()
            return all(placed.get(n) for n in names)
        await eventually(done, f"{names} bound", timeout)
        return {n: node for n, node in (await self.placement()).items() if n in names}

    async def unschedulable(self, name: str, timeout: float = 20.0) -> str:
        """Wait for PodScheduled=False, reason Unschedulable; its message."""
        async def marked() -> bool:
            cond = scheduled_condition(await self.get(name))
            return cond is not None and cond.status == "False" and cond.reason == "Unschedulable"
        await eventually(marked, f"{name} marked unschedulable", timeout)
        cond = scheduled_condition(await self.get(name))
        assert cond is not None
        return cond.message

    def cli(self, *args: str) -> str:
        return self.kubelab.ok(*args).output

    async def cleanup(self) -> None:
        for proc in self.schedulers:
            proc.stop()
        pods = self.cs.resource(core_pb2.Pod, self.ns)
        for p in await all_pods(self.cs, self.ns):
            try:
                await pods.delete(p.metadata.name, grace_period=0)
            except StatusError:
                pass
        for name in self.nodes:
            try:
                await self.cs.resource(core_pb2.Node).delete(name)
            except StatusError:
                pass


@pytest.fixture
async def env(cs: Clientset, cluster: APIServerProcess, tmp_path: Path) -> AsyncIterator[Env]:
    e = Env(cs, cluster, tmp_path)
    await cs.resource(core_pb2.Namespace).create(core_pb2.Namespace(metadata={"name": e.ns}))
    try:
        yield e
    finally:
        await e.cleanup()


async def cli(env: Env, *args: str) -> str:
    """The CLI runs asyncio.run itself: run it off the test's event loop."""
    return await asyncio.to_thread(env.cli, *args)


# ------------------------------------------------------------------ capacity

async def test_fills_ten_nodes_exactly_and_never_beyond(env: Env) -> None:
    sched = env.start_scheduler()
    for i in range(10):
        await env.node(f"{env.ns}-n{i}", cpu="1", memory="4Gi")
    creates = [env.pod(f"p{i:03d}", cpu="100m", memory="100Mi") for i in range(100)]
    await asyncio.gather(*creates)
    placed = await env.bound(*(f"p{i:03d}" for i in range(100)), timeout=60)
    per_node: dict[str, int] = {}
    for node_name in placed.values():
        per_node[node_name] = per_node.get(node_name, 0) + 1
    assert per_node == {f"{env.ns}-n{i}": 10 for i in range(10)}  # 10 x 100m = exactly 1 cpu each

    await env.pod("one-too-many", cpu="100m")
    message = await env.unschedulable("one-too-many")
    assert message.startswith("0/10 nodes are available: 10 Insufficient cpu.")
    assert "preemption: 0/10 nodes are available: 10 No preemption victims found for incoming pod." in message
    await asyncio.sleep(1.5)
    assert not (await env.get("one-too-many")).spec.nodeName

    described = await cli(env, "describe", "pod", "one-too-many", "-n", env.ns)
    assert "FailedScheduling" in described and "0/10 nodes are available: 10 Insufficient cpu." in described
    assert "PodScheduled" in described
    events = (await env.cs.resource(core_pb2.Event, env.ns).list()).items
    scheduled = [e for e in events if e.reason == "Scheduled"]
    assert len(scheduled) >= 90 and scheduled[0].source.component == "default-scheduler"

    # room freed by a deleted pod is noticed without waiting for a timer
    await env.cs.resource(core_pb2.Pod, env.ns).delete("p000", grace_period=0)
    await env.bound("one-too-many", timeout=15)

    with urllib.request.urlopen(f"http://127.0.0.1:{sched.metrics_port}/metrics", timeout=5) as resp:
        metrics = resp.read().decode()
    assert 'scheduler_schedule_attempts_total{profile="default-scheduler",result="scheduled"}' in metrics
    assert 'scheduler_schedule_attempts_total{profile="default-scheduler",result="unschedulable"}' in metrics
    assert "scheduler_scheduling_attempt_duration_seconds_bucket" in metrics
    assert 'scheduler_pending_pods{queue="active"}' in metrics
    assert "scheduler_preemption_attempts_total" in metrics


# ------------------------------------------------------------------ taints, cordon, labels

async def test_taints_and_tolerations(env: Env) -> None:
    env.start_scheduler()
    gpu1, gpu2, small = f"{env.ns}-gpu1", f"{env.ns}-gpu2", f"{env.ns}-small"
    await env.node(gpu1)
    await env.node(gpu2)
    await env.node(small, cpu="1")
    out = await cli(env, "taint", "nodes", gpu1, gpu2, "dedicated=gpu:NoSchedule")
    assert out.splitlines() == [f"node/{gpu1} tainted", f"node/{gpu2} tainted"]
    again = await asyncio.to_thread(env.kubelab.fails, "taint", "nodes", gpu1, "dedicated=other:NoSchedule")
    assert f"error: node {gpu1} already has dedicated taint(s) with same effect(s) and --overwrite is false" \
        in again.output

    tolerant = {"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}
    await env.pod("trainer", cpu="2", **tolerant)
    await env.pod("web", cpu="2")
    placed = await env.bound("trainer")
    assert placed["trainer"] in (gpu1, gpu2)
    message = await env.unschedulable("web")
    assert message.startswith("0/3 nodes are available: 1 Insufficient cpu, "
                              "2 node(s) had untolerated taint {dedicated: gpu}.")

    # removing the taint is an event that brings the waiting pod back at once
    out = await cli(env, "taint", "nodes", gpu2, "dedicated-")
    assert out.strip() == f"node/{gpu2} untainted"
    assert (await env.bound("web", timeout=10))["web"] == gpu2


async def test_cordon_uncordon_and_label_nodes(env: Env) -> None:
    env.start_scheduler()
    a, b = f"{env.ns}-a", f"{env.ns}-b"
    await env.node(a)
    await env.node(b)
    assert (await cli(env, "cordon", a)).strip() == f"node/{a} cordoned"
    assert (await cli(env, "cordon", a)).strip() == f"node/{a} already cordoned"
    for i in range(4):
        await env.pod(f"p{i}")
    placed = await env.bound(*(f"p{i}" for i in range(4)))
    assert set(placed.values()) == {b}

    await env.pod("needs-a", nodeSelector={"role": "special"})
    message = await env.unschedulable("needs-a")
    assert "1 node(s) didn't match Pod's node affinity/selector" in message
    assert "1 node(s) were unschedulable" in message
    assert (await cli(env, "label", "nodes", a, "role=special")).strip() == f"node/{a} labeled"
    await asyncio.sleep(1)
    assert not (await env.get("needs-a")).spec.nodeName  # labeled, but still cordoned
    assert (await cli(env, "uncordon", a)).strip() == f"node/{a} uncordoned"
    assert (await env.bound("needs-a", timeout=10))["needs-a"] == a


# ------------------------------------------------------------------ affinity and spreading

async def test_affinity_and_anti_affinity(env: Env) -> None:
    env.start_scheduler()
    for zone in ("a", "b", "c"):
        for i in range(2):
            await env.node(f"{env.ns}-{zone}{i}", labels={ZONE: f"zone-{zone}"})
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "store"}}, "topologyKey": ZONE}]}}
    for i in range(4):
        await env.pod(f"store-{i}", labels={"app": "store"}, affinity=anti)
    await eventually(lambda: _count_bound(env, "store-", 3), "three stores bound", 20)
    placed = await env.placement()
    zones = {placed[f"store-{i}"].rsplit("-", 1)[1][0] for i in range(4) if placed[f"store-{i}"]}
    assert zones == {"a", "b", "c"}  # one per zone, and the fourth has nowhere to go
    pending = next(f"store-{i}" for i in range(4) if not placed[f"store-{i}"])
    message = await env.unschedulable(pending)
    assert "6 node(s) didn't satisfy existing pods anti-affinity rules" in message  # checked first

    near = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "store"}}, "topologyKey": HOST}]}}
    await env.pod("web", affinity=near)
    web_node = (await env.bound("web"))["web"]
    assert web_node in {placed[f"store-{i}"] for i in range(4)}


async def _count_bound(env: Env, prefix: str, count: int) -> bool:
    placed = await env.placement()
    return sum(1 for name, node in placed.items() if name.startswith(prefix) and node) >= count


async def test_topology_spread(env: Env) -> None:
    env.start_scheduler()
    for zone, count in (("a", 3), ("b", 1)):
        for i in range(count):
            await env.node(f"{env.ns}-{zone}{i}", labels={ZONE: f"zone-{zone}"})
    spread = [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "web"}}}]
    for i in range(6):
        await env.pod(f"web-{i}", labels={"app": "web"}, topologySpreadConstraints=spread)
        await env.bound(f"web-{i}")  # one at a time, as a rollout would
    placed = await env.placement()
    per_zone = {"a": 0, "b": 0}
    for node_name in placed.values():
        per_zone[node_name.rsplit("-", 1)[1][0]] += 1
    assert per_zone == {"a": 3, "b": 3}  # zone b's single node takes half despite zone a's three


# ------------------------------------------------------------------ priority and preemption

async def test_preemption(env: Env) -> None:
    env.start_scheduler()
    classes = env.cs.resource(scheduling_pb2.PriorityClass)
    high, low, polite = f"{env.ns}-high", f"{env.ns}-low", f"{env.ns}-polite"
    await classes.create(scheduling_pb2.PriorityClass(metadata={"name": high}, value=1000))
    await classes.create(scheduling_pb2.PriorityClass(metadata={"name": low}, value=10))
    await classes.create(scheduling_pb2.PriorityClass(metadata={"name": polite}, value=500,
                                                      preemptionPolicy="Never"))
    kubelet = await PodSimulator(env.cs, [], namespace=env.ns, schedule=False).start()  # ends pods as a kubelet
    try:
        a, b = f"{env.ns}-a", f"{env.ns}-b"
        await env.node(a, cpu="2")
        await env.node(b, cpu="2")
        for name, node_name in (("guarded-0", a), ("guarded-1", a), ("batch-0", b), ("batch-1", b)):
            await env.pod(name, cpu="1", priorityClassName=low, labels={"app": name.split("-")[0]},
                          nodeSelector={HOST: node_name})
        await env.bound("guarded-0", "guarded-1", "batch-0", "batch-1")
        pdb = from_dict(policy_pb2.PodDisruptionBudget, {"metadata": {"name": "guarded", "namespace": env.ns},
                                                         "spec": {"minAvailable": 2,
                                                                  "selector": {"matchLabels": {"app": "guarded"}}}})
        await env.cs.resource(policy_pb2.PodDisruptionBudget, env.ns).create(pdb)

        await env.pod("never", cpu="1", priorityClassName=polite)
        message = await env.unschedulable("never")
        assert message.endswith("preemption: not eligible due to preemptionPolicy=Never.")

        await env.pod("important", cpu="1", priorityClassName=high)
        placed = await env.bound("important", timeout=30)
        assert placed["important"] == b  # the budget keeps node a's pods
        names = set(await env.placement())
        assert {"guarded-0", "guarded-1"} <= names
        assert len({"batch-0", "batch-1"} & names) == 1  # exactly one victim
        # the room made for "important" was held for it, not taken by the waiting "never" (lower priority)
        events = (await env.cs.resource(core_pb2.Event, env.ns).list()).items
        preempted = [e for e in events if e.reason == "Preempted"]
        assert len(preempted) == 1 and preempted[0].message.endswith(f"on node {b}")
        assert not (await env.get("never")).spec.nodeName
    finally:
        await kubelet.stop()
        await classes.delete(high)
        await classes.delete(low)
        await classes.delete(polite)


# ------------------------------------------------------------------ other schedulers' pods

async def test_a_pod_for_another_scheduler_is_left_alone(env: Env) -> None:
    env.start_scheduler()
    await env.node(f"{env.ns}-n")
    mine = await env.pod("no-annotation", labels={"name": "multischeduler-example"})
    theirs = await env.pod("annotation-second-scheduler", schedulerName="my-scheduler")
    await env.bound(mine.metadata.name)
    await asyncio.sleep(2)
    after = await env.get(theirs.metadata.name)
    assert not after.spec.nodeName and not after.status.conditions
    assert after.metadata.resourceVersion == theirs.metadata.resourceVersion  # untouched
    events = (await env.cs.resource(core_pb2.Event, env.ns).list()).items
    assert not [e for e in events if e.involvedObject.name == theirs.metadata.name]


async def test_a_second_profile_serves_its_scheduler_name(env: Env, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
                      "profiles:\n- schedulerName: default-scheduler\n- schedulerName: my-scheduler\n"
                      "  plugins:\n    score:\n      disabled: [{name: '*'}]\n")
    env.start_scheduler("--config", str(config))
    await env.node(f"{env.ns}-n")
    await env.pod("annotation-second-scheduler", schedulerName="my-scheduler")
    await env.bound("annotation-second-scheduler")
    events = (await env.cs.resource(core_pb2.Event, env.ns).list()).items
    assert any(e.reason == "Scheduled" and e.source.component == "my-scheduler" for e in events)

