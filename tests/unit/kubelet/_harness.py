"""One hollow node on the in-memory clientset, for the kubelet's unit tests.

`HollowNode` wires a NodeAgent as `python -m kubelet --hollow` does (a
PodDispatcher over a pod and a node informer), on tests/support's
FakeClientset (pods deleted with the apiserver's grace rule), a FakeClock
and a HollowRuntime whose containers the test scripts. `advance(seconds)`
moves the clock in small steps and lets every task run in between, so a
test walks through minutes of backoff and grace periods without sleeping.
`restart()` throws the kubelet away and starts a new one on the same
runtime and API state, as a killed and restarted kubelet would.
"""

from __future__ import annotations

import asyncio
from typing import Any, Self, cast

from api import FakeClock
from client import Clientset, EventBroadcaster, Informer
from kubelet import HollowRuntime, KubeletConfig, NodeAgent, PodDispatcher
from kubelet._env import ClientGetter
from kubelet._kuberuntime import EnvSources, NoVolumes
from proto import core_pb2
from tests.support.fakeclient import FakeClientset, pod_grace

NODE = "node-1"
NODE_IP = "10.0.0.1"
IMAGE = "busybox:1.36"


async def settle(rounds: int = 30) -> None:
    loop = asyncio.get_running_loop()
    quiet = 0
    while quiet < rounds:
        before = len(loop._ready)  # type: ignore[attr-defined]
        await asyncio.sleep(0)
        quiet = quiet + 1 if before == 0 else 0


def make_pod(name: str, *containers: core_pb2.Container, namespace: str = "ns", restart_policy: str = "Always",
             init: tuple[core_pb2.Container, ...] = (), grace: int = 30, node: str = NODE,
             **spec: Any) -> core_pb2.Pod:
    pod = core_pb2.Pod()
    pod.metadata.name, pod.metadata.namespace = name, namespace
    pod.spec.nodeName = node
    pod.spec.restartPolicy = restart_policy
    pod.spec.terminationGracePeriodSeconds = grace
    pod.spec.containers.extend(containers or [container("main")])
    pod.spec.initContainers.extend(init)
    for key, value in spec.items():
        setattr(pod.spec, key, value)
    pod.status.phase = "Pending"
    pod.status.conditions.add(type="PodScheduled", status="True")
    return pod


def container(name: str, image: str = IMAGE, **fields: Any) -> core_pb2.Container:
    fields.setdefault("imagePullPolicy", "IfNotPresent")
    c = core_pb2.Container(name=name, image=image, terminationMessagePath="/dev/termination-log", **fields)
    return c


class HollowNode:
    def __init__(self, *, clock: FakeClock | None = None, **config: Any) -> None:
        self.clock = clock or FakeClock()
        self.cs = FakeClientset(clock=self.clock, graceful=pod_grace)
        self.runtime = HollowRuntime(clock=self.clock, images=(IMAGE,))
        config.setdefault("cpu", "4")
        config.setdefault("memory", "8Gi")
        config.setdefault("ephemeral_storage", "100Gi")
        config.setdefault("hollow", True)
        config.setdefault("resolv_conf", None)
        self.config = KubeletConfig(node_name=NODE, node_ip=NODE_IP, **config)
        self.agent: NodeAgent | None = None

    @property
    def clientset(self) -> Clientset:
        return cast(Clientset, self.cs)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        cs = self.clientset
        self.pods: Informer[core_pb2.Pod] = Informer(cs.resource(core_pb2.Pod), clock=self.clock)
        self.nodes: Informer[core_pb2.Node] = Informer(cs.resource(core_pb2.Node), clock=self.clock)
        self.services: Informer[core_pb2.Service] = Informer(cs.resource(core_pb2.Service), clock=self.clock)
        self.broadcaster = EventBroadcaster(cs, "kubelet", host=NODE, clock=self.clock)
        services = self.services.lister()
        env = EnvSources(ClientGetter(cs, core_pb2.Secret), ClientGetter(cs, core_pb2.ConfigMap),
                         lambda: services.list())
        self.agent = NodeAgent(self.config, cs, self.runtime, clock=self.clock, broadcaster=self.broadcaster,
                               network=self.runtime, volumes=NoVolumes(), env=env, runtime_name="hollow")
        dispatcher = PodDispatcher(self.pods, self.nodes)
        dispatcher.add(self.agent)
        for informer in (self.pods, self.nodes, self.services):
            informer.start()
            await informer.wait_for_sync(5)
        await self.agent.start()
        self.agent.mark_sources_ready()
        await settle()

    async def stop(self) -> None:
        if self.agent is not None:
            await self.agent.stop()
            self.agent = None
        for informer in (self.pods, self.nodes, self.services):
            await informer.stop()
        await self.broadcaster.shutdown(0.1)

    async def restart(self) -> None:
        """A new kubelet on the same runtime and API state."""
        await self.stop()
        await self.start()

    async def advance(self, seconds: float, tick: float = 0.5) -> None:
        await settle()
        left = seconds
        while left > 1e-9:
            step = min(tick, left)
            self.clock.step(step)
            left -= step
            await settle()

    # ------------------------------------------------------------ the API side

    async def create(self, pod: core_pb2.Pod) -> core_pb2.Pod:
        created = await self.cs.resource(core_pb2.Pod, pod.metadata.namespace).create(pod)
        await settle()
        return cast(core_pb2.Pod, created)

    def pod(self, name: str, namespace: str = "ns") -> core_pb2.Pod | None:
        found = [p for p in self.cs.objects(core_pb2.Pod, namespace) if p.metadata.name == name]
        return found[0] if found else None

    def status(self, name: str, namespace: str = "ns") -> core_pb2.PodStatus:
        pod = self.pod(name, namespace)
        assert pod is not None, f"pod {namespace}/{name} is gone"
        return pod.status

    def container_status(self, pod: str, name: str, init: bool = False) -> core_pb2.ContainerStatus:
        status = self.status(pod)
        found = [c for c in (status.initContainerStatuses if init else status.containerStatuses) if c.name == name]
        assert found, f"no status for container {name} in {status}"
        return found[0]

    def condition(self, pod: str, type_: str) -> core_pb2.PodCondition:
        return next(c for c in self.status(pod).conditions if c.type == type_)

    def events(self, reason: str) -> list[core_pb2.Event]:
        return [e for e in self.cs.objects(core_pb2.Event) if e.reason == reason]

    def node(self) -> core_pb2.Node:
        return self.cs.objects(core_pb2.Node)[0]
