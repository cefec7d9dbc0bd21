"""controller_manager/podautoscaler.py, _replica_calculator.py and
_metrics_source.py with an in-memory metrics source and a fake clock:
CPU utilisation and memory average-value targets, the 10 % tolerance,
unready and unmeasured pods, min and max replicas, Kubernetes' scale-up
limit, the scale-down stabilisation window, behavior policies, the status
conditions, and the file-backed metrics source."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from api import FakeClock, Selector, rfc3339
from client import EventBroadcaster, SharedInformerFactory
from controller_manager._controller import ControllerContext
from controller_manager._metrics_source import FileMetricsSource, InMemoryMetricsSource, MetricsUnavailable, PodMetric
from controller_manager._replica_calculator import MetricError, Timing, average_value_replicas, utilization_replicas
from controller_manager.podautoscaler import HorizontalPodAutoscalerController
from proto import apps_pb2, autoscaling_pb2, core_pb2
from tests.support.fakeclient import FakeClientset

from ._workloads import deployment, settle

Pod = core_pb2.Pod
HPA = autoscaling_pb2.HorizontalPodAutoscaler
NOW = 1_700_000_000.0


def pod(name: str, *, cpu: str = "100m", memory: str = "128Mi", ready: bool = True, phase: str = "Running",
        started: float = NOW - 600, labels: dict[str, str] | None = None) -> Pod:
    p = Pod()
    p.metadata.name, p.metadata.namespace = name, "ns"
    p.metadata.labels.update(labels or {"app": "web"})
    c = p.spec.containers.add(name="web", image="nginx")
    c.resources.requests["cpu"].value = cpu
    c.resources.requests["memory"].value = memory
    p.status.phase = phase
    p.status.startTime = rfc3339(started)
    p.status.conditions.add(type="Ready", status="True" if ready else "False", lastTransitionTime=rfc3339(started + 5))
    return p


def hpa(*, target: str = "web", kind: str = "Deployment", min_replicas: int = 1, max_replicas: int = 10,
        cpu_percent: int | None = 50, memory_average: str | None = None,
        behavior: autoscaling_pb2.HorizontalPodAutoscalerBehavior | None = None) -> HPA:
    h = HPA()
    h.metadata.name, h.metadata.namespace = target, "ns"
    h.spec.scaleTargetRef.kind = kind
    h.spec.scaleTargetRef.name = target
    h.spec.scaleTargetRef.apiVersion = "v1" if kind == "ReplicationController" else "apps/v1"
    h.spec.minReplicas = min_replicas
    h.spec.maxReplicas = max_replicas
    if cpu_percent is not None:
        m = h.spec.metrics.add(type="Resource")
        m.resource.name = "cpu"
        m.resource.target.type = "Utilization"
        m.resource.target.averageUtilization = cpu_percent
    if memory_average is not None:
        m = h.spec.metrics.add(type="Resource")
        m.resource.name = "memory"
        m.resource.target.type = "AverageValue"
        m.resource.target.averageValue.value = memory_average
    if behavior is not None:
        h.spec.behavior.CopyFrom(behavior)
    return h


class Rig:
    """The controller on a FakeClientset, its informers synced; the test
    calls sync itself, one evaluation at a time, moving the clock between."""

    def __init__(self, source: Any = None, **flags: Any) -> None:
        self.clock = FakeClock(NOW)
        self.cs = FakeClientset(clock=self.clock)
        self.metrics = InMemoryMetricsSource(self.clock) if source is None else source
        self.flags = flags

    async def __aenter__(self) -> Rig:
        clientset: Any = self.cs
        self.informers = SharedInformerFactory(clientset, clock=self.clock)
        self.broadcaster = EventBroadcaster(clientset, "controller-manager", clock=self.clock)
        ctx = ControllerContext(clientset, self.informers, self.broadcaster.new_recorder(), self.clock,
                                argparse.Namespace(**self.flags))
        self.hpa = HorizontalPodAutoscalerController(ctx, metrics=self.metrics)
        self.informers.start()
        await self.informers.wait_for_cache_sync(5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.hpa.queue.shut_down()
        await self.informers.shutdown()
        await self.broadcaster.shutdown(0.1)

    async def add(self, *objs: Any) -> None:
        for obj in objs:
            await self.cs.resource(type(obj), "ns").create(obj)
        await settle()

    async def evaluate(self, after: float = 15.0, name: str = "web") -> HPA:
        self.clock.step(after)
        await settle()
        await self.hpa.sync(f"ns/{name}")
        await settle()
        return self.cs.objects(HPA, "ns")[0]

    def replicas(self, kind: type[Any] = apps_pb2.Deployment) -> int:
        return int(self.cs.objects(kind, "ns")[0].spec.replicas)

    def use(self, **per_pod: str) -> None:
        """use(web_0="200m", ...): cpu usage per pod (underscores for dashes)."""
        for name, cpu in per_pod.items():
            self.metrics.set("ns", name.replace("_", "-"), cpu=cpu)


def condition(h: HPA, kind: str) -> autoscaling_pb2.HorizontalPodAutoscalerCondition:
    return next(c for c in h.status.conditions if c.type == kind)


async def test_scale_up_is_limited_per_step_and_reported() -> None:
    async with Rig() as rig:
        await rig.add(deployment("web", 2), pod("web-0"), pod("web-1"), hpa())
        rig.use(web_0="200m", web_1="200m")  # 200 % of the request, target 50 %: 8 replicas wanted
        h = await rig.evaluate()
        assert rig.replicas() == 4  # at most max(2 x 2, 4) in one step
        assert (h.status.currentReplicas, h.status.desiredReplicas) == (2, 4)
        assert h.status.lastScaleTime == rfc3339(rig.clock.now())
        metric = h.status.currentMetrics[0].resource
        assert (metric.name, metric.current.averageUtilization, metric.current.averageValue.value) == \
            ("cpu", 200, "200m")
        limited = condition(h, "ScalingLimited")
        assert (limited.status, limited.reason) == ("True", "ScaleUpLimit")
        assert condition(h, "ScalingActive").reason == "ValidMetricFound"
        assert condition(h, "AbleToScale").reason == "SucceededRescale"
        await rig.broadcaster.flush()
        (event,) = [e for e in rig.cs.objects(core_pb2.Event) if e.reason == "SuccessfulRescale"]
        assert event.message == "New size: 4; reason: cpu resource utilization (percentage of request) above target"
        h = await rig.evaluate()
        assert rig.replicas() == 8  # the next step, from 4


async def test_within_tolerance_nothing_changes() -> None:
    async with Rig() as rig:
        await rig.add(deployment("web", 2), pod("web-0"), pod("web-1"), hpa())
        rig.use(web_0="54m", web_1="54m")  # 54 % of 50 %: within 10 %
        h = await rig.evaluate()
        assert rig.replicas() == 2 and h.status.desiredReplicas == 2
        assert condition(h, "AbleToScale").reason == "ReadyForNewScale"
        assert condition(h, "ScalingLimited").status == "False"


async def test_scale_down_waits_for_the_stabilisation_window() -> None:
    async with Rig() as rig:
        await rig.add(deployment("web", 4), *(pod(f"web-{i}") for i in range(4)), hpa())
        rig.use(web_0="50m", web_1="50m", web_2="50m", web_3="50m")
        await rig.evaluate()
        rig.use(web_0="10m", web_1="10m", web_2="10m", web_3="10m")  # 20 %: one replica would do
        h = await rig.evaluate()
        assert rig.replicas() == 4 and condition(h, "ScalingActive").reason == "ScaleDownStabilized"
        await rig.evaluate(after=200)
        assert rig.replicas() == 4  # the 4 recommended 215 s ago still counts
        await rig.evaluate(after=90)
        assert rig.replicas() == 1


async def test_configurable_downscale_window() -> None:
    async with Rig(horizontal_pod_autoscaler_downscale_stabilization=30.0) as rig:
        await rig.add(deployment("web", 4), *(pod(f"web-{i}") for i in range(4)), hpa())
        rig.use(web_0="50m", web_1="50m", web_2="50m", web_3="50m")
        await rig.evaluate()
        rig.use(web_0="10m", web_1="10m", web_2="10m", web_3="10m")
        await rig.evaluate()
        assert rig.replicas() == 4
        await rig.evaluate(after=20)
        assert rig.replicas() == 1


async def test_min_and_max_replicas() -> None:
    async with Rig() as rig:
        await rig.add(deployment("web", 12), pod("web-0"), hpa(min_replicas=2, max_replicas=10))
        h = await rig.evaluate()
        assert rig.replicas() == 10 and h.status.desiredReplicas == 10
        rig.use(web_0="1m")
        for _ in range(3):
            await rig.evaluate(after=400)
        assert rig.replicas() == 2  # never below minReplicas
        h = rig.cs.objects(HPA, "ns")[0]
        limited = condition(h, "ScalingLimited")
        assert (limited.status, limited.reason) == ("True", "TooFewReplicas")


async def test_behavior_policies_limit_the_rate() -> None:
    behavior = autoscaling_pb2.HorizontalPodAutoscalerBehavior()
    behavior.scaleDown.stabilizationWindowSeconds = 0
    behavior.scaleDown.selectPolicy = "Max"
    behavior.scaleDown.policies.add(type="Pods", value=1, periodSeconds=60)
    behavior.scaleUp.stabilizationWindowSeconds = 0
    behavior.scaleUp.selectPolicy = "Max"
    behavior.scaleUp.policies.add(type="Percent", value=50, periodSeconds=60)
    async with Rig() as rig:
        await rig.add(deployment("web", 5), *(pod(f"web-{i}") for i in range(5)), hpa(behavior=behavior))
        rig.use(**{f"web_{i}": "5m" for i in range(5)})
        h = await rig.evaluate()
        assert rig.replicas() == 4
        assert condition(h, "ScalingLimited").reason == "ScaleDownLimit"
        await rig.evaluate(after=15)
        assert rig.replicas() == 4  # one pod per minute
        await rig.evaluate(after=46)
        assert rig.replicas() == 3
        rig.use(**{f"web_{i}": "500m" for i in range(5)})  # now far above target
        await rig.evaluate(after=61)
        assert rig.replicas() == 5  # +50 % of 3, rounded up


async def test_memory_average_value_and_several_metrics() -> None:
    async with Rig() as rig:
        await rig.add(deployment("web", 2), pod("web-0"), pod("web-1"),
                      hpa(cpu_percent=50, memory_average="100Mi"))
        rig.metrics.set("ns", "web-0", cpu="50m", memory="200Mi")
        rig.metrics.set("ns", "web-1", cpu="50m", memory="200Mi")
        h = await rig.evaluate()
        assert rig.replicas() == 4  # memory wants 4, cpu wants 2: the larger wins
        memory = h.status.currentMetrics[1].resource
        assert memory.name == "memory" and memory.current.averageValue.value == "209715200"  # as Kubernetes writes it


async def test_without_metrics_nothing_scales() -> None:
    async with Rig() as rig:
        await rig.add(deployment("web", 2), pod("web-0"), pod("web-1"), hpa())
        rig.metrics.fail = "nobody reports usage"
        h = await rig.evaluate()
        active = condition(h, "ScalingActive")
        assert (active.status, active.reason) == ("False", "FailedGetResourceMetric")
        assert "nobody reports usage" in active.message and rig.replicas() == 2


async def test_missing_target_and_unsupported_metric() -> None:
    async with Rig() as rig:
        await rig.add(hpa(target="ghost"))
        h = await rig.evaluate(name="ghost")
        able = condition(h, "AbleToScale")
        assert (able.status, able.reason) == ("False", "FailedGetScale")
        assert 'deployments "ghost" not found' in able.message


async def test_stateful_set_and_replication_controller_targets() -> None:
    async with Rig() as rig:
        sts = apps_pb2.StatefulSet()
        sts.metadata.name, sts.metadata.namespace = "web", "ns"
        sts.spec.replicas = 1
        sts.spec.selector.matchLabels["app"] = "web"
        await rig.add(sts, pod("web-0"), hpa(kind="StatefulSet"))
        rig.use(web_0="100m")
        await rig.evaluate()
        assert rig.replicas(apps_pb2.StatefulSet) == 2
    async with Rig() as rig:
        rc = core_pb2.ReplicationController()
        rc.metadata.name, rc.metadata.namespace = "web", "ns"
        rc.spec.replicas = 1
        rc.spec.selector["app"] = "web"
        await rig.add(rc, pod("web-0"), hpa(kind="ReplicationController"))
        rig.use(web_0="100m")
        await rig.evaluate()
        assert rig.replicas(core_pb2.ReplicationController) == 2


async def test_a_target_scaled_to_zero_disables_autoscaling() -> None:
    async with Rig() as rig:
        await rig.add(deployment("web", 0), hpa())
        h = await rig.evaluate()
        active = condition(h, "ScalingActive")
        assert (active.status, active.reason) == ("False", "ScalingDisabled") and rig.replicas() == 0


# ---------------------------------------------------------------- the arithmetic


def metric(value: int) -> PodMetric:
    return PodMetric(value, NOW)


def test_missing_and_unready_pods_are_counted_conservatively() -> None:
    timing = Timing()
    # two measured pods at 100 %, one without figures: a scale down would
    # assume 100 % for it, but this is a scale up: it counts as 0 %
    pods = [pod("a"), pod("b"), pod("c")]
    usage = {"a": metric(200), "b": metric(200)}
    rec = utilization_replicas(3, 100, pods, usage, "cpu", NOW, timing)
    assert rec.replicas == 4  # 400 / 300 = 1.33 x 3
    # scale down with a missing pod: it counts as its full request
    usage = {"a": metric(10), "b": metric(10)}
    rec = utilization_replicas(3, 50, pods, usage, "cpu", NOW, timing)
    assert rec.replicas == 3  # (10 + 10 + 100) / 300 = 40 % of 50 %: 0.8 x 3 = 2.4 -> 3
    # a pod that just started and is not ready counts as using nothing on a scale up
    young = pod("c", ready=False, started=NOW - 10)
    usage = {"a": metric(200), "b": metric(200), "c": metric(900)}
    rec = utilization_replicas(3, 100, [pod("a"), pod("b"), young], usage, "cpu", NOW, timing)
    assert rec.replicas == 4 and rec.utilization == 200  # c's 900m is not trusted
    # deleted and failed pods do not count at all
    gone = pod("d")
    gone.metadata.deletionTimestamp = rfc3339(NOW)
    rec = utilization_replicas(2, 100, [pod("a"), pod("b", phase="Failed"), gone], {"a": metric(100)}, "cpu",
                               NOW, timing)
    assert rec.replicas == 2


def test_calculator_errors_and_average_values() -> None:
    timing = Timing()
    with pytest.raises(MetricError, match="no pods returned by selector"):
        utilization_replicas(1, 50, [], {}, "cpu", NOW, timing)
    no_request = pod("a")
    del no_request.spec.containers[0].resources.requests["cpu"]
    with pytest.raises(MetricError, match="missing request for cpu"):
        utilization_replicas(1, 50, [no_request], {"a": metric(10)}, "cpu", NOW, timing)
    with pytest.raises(MetricError, match="did not receive metrics"):
        utilization_replicas(1, 50, [pod("a")], {}, "cpu", NOW, timing)
    rec = average_value_replicas(2, 1000, [pod("a"), pod("b")], {"a": metric(3000), "b": metric(1000)}, "memory",
                                 NOW, timing)
    assert (rec.replicas, rec.average, rec.utilization) == (4, 2000, None)
    rec = average_value_replicas(2, 1000, [pod("a"), pod("b")], {"a": metric(1050), "b": metric(1000)}, "memory",
                                 NOW, timing)
    assert rec.replicas == 2  # within tolerance


async def test_file_metrics_source(tmp_path: Path) -> None:
    path = tmp_path / "usage.yaml"
    path.write_text("ns:\n  web-0: {cpu: 250m, memory: 64Mi}\n  web-1: {cpu: '1'}\nother:\n  x: {cpu: 5m}\n")
    source = FileMetricsSource(str(path))
    cpu = await source.pod_usage("ns", Selector.everything(), "cpu")
    assert {k: v.value for k, v in cpu.items()} == {"web-0": 250, "web-1": 1000}
    memory = await source.pod_usage("ns", Selector.everything(), "memory")
    assert memory["web-0"].value == 64 * 2**20 * 1000
    path.write_text("ns: [not, a, mapping]\n")
    with pytest.raises(MetricsUnavailable, match="expected a mapping"):
        await FileMetricsSource(str(path)).pod_usage("ns", Selector.everything(), "cpu")
    with pytest.raises(MetricsUnavailable, match="No such file"):
        await FileMetricsSource(str(tmp_path / "absent.yaml")).pod_usage("ns", Selector.everything(), "cpu")


