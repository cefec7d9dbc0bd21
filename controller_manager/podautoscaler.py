"""The HorizontalPodAutoscaler controller (autoscaling/v2, resource metrics).

Every HPA is looked at once per sync period (15 s by default, like
kube-controller-manager's `--horizontal-pod-autoscaler-sync-period`): the
key re-queues itself after each sync, and a spec change brings it forward.
One look:

1. Read the target (Deployment, ReplicaSet, StatefulSet or
   ReplicationController) from its informer: its spec.replicas is the
   current scale, its selector picks the pods.
2. Outside [minReplicas, maxReplicas] the answer is the nearest bound.
   A target scaled to 0 by hand disables autoscaling until it is scaled up.
3. Otherwise each metric (cpu or memory, as Utilization of the requests or
   as AverageValue) gives a replica count (_replica_calculator.py, with the
   10 % tolerance); the largest wins.
4. The recommendation is stabilised and rate limited (_hpa_behavior.py):
   without `behavior`, Kubernetes' defaults (scale down only to the
   highest recommendation of the last 300 s,
   `--horizontal-pod-autoscaler-downscale-stabilization`; scale up at most
   to max(2 x current, 4) per sync); with `behavior`, its stabilisation
   windows and its Pods/Percent policies over their periods.
5. If the count changes, spec.replicas of the target is patched and a
   SuccessfulRescale event says why. The status (current and desired
   replicas, current metrics, and the AbleToScale, ScalingActive and
   ScalingLimited conditions) is written when it changed.

Usage comes from a MetricsSource (_metrics_source.py). The recommendation
history and scale events are kept in memory, as in Kubernetes: a restarted
controller-manager starts its stabilisation windows afresh. Pods, Object,
External and ContainerResource metrics are reported as unsupported in the
ScalingActive condition: nothing in the lab serves them.
"""

from __future__ import annotations

import argparse
import logging
from decimal import Decimal
from typing import Any

from google.protobuf.message import Message

from api import (
    MERGE_PATCH,
    Quantity,
    Selector,
    SelectorError,
    StatusError,
    parse_quantity,
    rfc3339,
    selector_from_map,
    selector_from_message,
)
from client import EVENT_TYPE_NORMAL, EVENT_TYPE_WARNING, NodeProxyClient, split_key
from proto import apps_pb2, autoscaling_pb2, core_pb2

from ._conditions import set_condition
from ._controller import Controller, ControllerContext
from ._hpa_behavior import (
    ScaleHistory,
    default_scale_down,
    default_scale_up,
    legacy_limit,
    rate_limit,
    stabilize,
    stabilize_down,
)
from ._metrics_source import FileMetricsSource, KubeletMetricsSource, MetricsSource, MetricsUnavailable
from ._replica_calculator import MetricError, Recommendation, Timing, average_value_replicas, utilization_replicas

log = logging.getLogger(__name__)

HPA = autoscaling_pb2.HorizontalPodAutoscaler

#: (API group, kind) -> message of the kinds an HPA can scale.
SCALABLE: dict[tuple[str, str], type[Message]] = {
    ("apps", "Deployment"): apps_pb2.Deployment,
    ("apps", "ReplicaSet"): apps_pb2.ReplicaSet,
    ("apps", "StatefulSet"): apps_pb2.StatefulSet,
    ("", "ReplicationController"): core_pb2.ReplicationController,
}

def _target_group(api_version: str) -> str | None:
    if not api_version:
        return None
    return api_version.split("/")[0] if "/" in api_version else ""


def _milli_quantity(milli: int) -> str:
    return str(Quantity(Decimal(milli) / 1000))


def _option(options: argparse.Namespace, name: str, default: Any) -> Any:
    value = getattr(options, name, None)
    return default if value is None else value


class HorizontalPodAutoscalerController(Controller):
    name = "horizontalpodautoscaling"
    event_source = "horizontal-pod-autoscaler"
    default_workers = 5

    @classmethod
    def add_flags(cls, parser: argparse.ArgumentParser) -> None:
        g = parser.add_argument_group("horizontalpodautoscaling controller")
        g.add_argument("--horizontal-pod-autoscaler-sync-period", type=float, default=15.0, metavar="SECONDS",
                       help="how often every HPA is evaluated (default %(default)s)")
        g.add_argument("--horizontal-pod-autoscaler-downscale-stabilization", type=float, default=300.0,
                       metavar="SECONDS", help="an HPA without behavior scales down only to the highest "
                                               "recommendation of this window (default %(default)s)")
        g.add_argument("--horizontal-pod-autoscaler-tolerance", type=float, default=0.1, metavar="RATIO",
                       help="usage within this ratio of the target changes nothing (default %(default)s)")
        g.add_argument("--horizontal-pod-autoscaler-cpu-initialization-period", type=float, default=300.0,
                       metavar="SECONDS", help="after a pod starts, its cpu is trusted only once it is ready "
                                               "(default %(default)s)")
        g.add_argument("--horizontal-pod-autoscaler-initial-readiness-delay", type=float, default=30.0,
                       metavar="SECONDS", help="after a pod starts, readiness changes within this delay mean it "
                                               "never was ready (default %(default)s)")
        g.add_argument("--horizontal-pod-autoscaler-metrics-file", default="", metavar="PATH",
                       help="read pod usage from this YAML/JSON file (namespace -> pod -> {cpu, memory}) "
                            "instead of the kubelets' figures")

    def __init__(self, ctx: ControllerContext, metrics: MetricsSource | None = None) -> None:
        super().__init__(ctx)
        opts = ctx.options
        self.sync_period = float(_option(opts, "horizontal_pod_autoscaler_sync_period", 15.0))
        self.downscale_window = float(_option(opts, "horizontal_pod_autoscaler_downscale_stabilization", 300.0))
        self.timing = Timing(
            tolerance=float(_option(opts, "horizontal_pod_autoscaler_tolerance", 0.1)),
            cpu_initialization_period=float(_option(opts, "horizontal_pod_autoscaler_cpu_initialization_period",
                                                    300.0)),
            initial_readiness_delay=float(_option(opts, "horizontal_pod_autoscaler_initial_readiness_delay", 30.0)))
        if metrics is None:
            path = _option(opts, "horizontal_pod_autoscaler_metrics_file", "")
            metrics = FileMetricsSource(path) if path else KubeletMetricsSource(
                NodeProxyClient(ctx.clientset), ctx.informers.lister_for(core_pb2.Pod), clock=ctx.clock)
        self.metrics = metrics
        hpas = ctx.informers.informer_for(HPA)
        self.hpas = hpas.lister()
        self.pods = ctx.informers.lister_for(core_pb2.Pod)
        self.targets = {key: ctx.informers.lister_for(kind) for key, kind in SCALABLE.items()}
        hpas.add_event_handler(on_add=self.enqueue, on_update=self._hpa_updated, on_delete=self.enqueue)
        self._history: dict[str, ScaleHistory] = {}

    def _hpa_updated(self, old: HPA, new: HPA) -> None:
        # Our own status writes come back as updates: only a spec change
        # (or a resync) brings the next look forward.
        if old.metadata.generation != new.metadata.generation or \
                old.metadata.resourceVersion == new.metadata.resourceVersion:
            self.enqueue(new)

    # ------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        try:
            hpa = self.hpas.get(namespace, name)
        except StatusError as err:
            if err.reason == "NotFound":
                self._history.pop(key, None)
                return
            raise
        try:
            await self._reconcile(key, hpa)
        finally:
            self.queue.add_after(key, self.sync_period)

    async def _reconcile(self, key: str, hpa: HPA) -> None:
        now = self.clock.now()
        new = HPA()
        new.CopyFrom(hpa)
        status = new.status
        status.observedGeneration = hpa.metadata.generation
        spec = hpa.spec
        ref = spec.scaleTargetRef
        target = self._target(hpa)
        if isinstance(target, str):
            set_condition(status.conditions, "AbleToScale", "False", "FailedGetScale",
                          f"the HPA controller was unable to get the target's current scale: {target}", now)
            self.recorder.event(hpa, EVENT_TYPE_WARNING, "FailedGetScale", target)
            await self._write_status(hpa, new)
            return
        set_condition(status.conditions, "AbleToScale", "True", "SucceededGetScale",
                      "the HPA controller was able to get the target's current scale", now)
        current = target.spec.replicas if target.spec.HasField("replicas") else 1  # type: ignore[attr-defined]
        min_replicas = spec.minReplicas if spec.HasField("minReplicas") else 1
        max_replicas = spec.maxReplicas
        rescale_reason = ""
        metric_statuses: list[autoscaling_pb2.MetricStatus] | None = None
        if current == 0 and min_replicas != 0:
            desired = 0
            set_condition(status.conditions, "ScalingActive", "False", "ScalingDisabled",
                          "scaling is disabled since the replica count of the target is zero", now)
        elif current > max_replicas:
            desired, rescale_reason = max_replicas, "Current number of replicas above Spec.MaxReplicas"
        elif current < min_replicas:
            desired, rescale_reason = min_replicas, "Current number of replicas below Spec.MinReplicas"
        else:
            proposal, metric_name, metric_statuses, error = await self._replicas_for_metrics(hpa, target, current)
            if proposal is None:
                set_condition(status.conditions, "ScalingActive", "False", error[0], error[1], now)
                self.recorder.event(hpa, EVENT_TYPE_WARNING, error[0], error[1])
                self._set_current(status, current, current, metric_statuses)
                await self._write_status(hpa, new)
                return
            set_condition(status.conditions, "ScalingActive", "True", "ValidMetricFound",
                          f"the HPA was able to successfully calculate a replica count from {metric_name}", now)
            desired = self._normalize(key, hpa, status, current, proposal, min_replicas, now)
            rescale_reason = f"{metric_name} above target" if desired > current else "All metrics below target"
        if desired != current:
            kind = SCALABLE[self._kind_key(ref)]  # type: ignore[index]
            try:
                await self.clientset.resource(kind, hpa.metadata.namespace).patch(
                    ref.name, {"spec": {"replicas": desired}}, patch_type=MERGE_PATCH)
            except StatusError as err:
                set_condition(status.conditions, "AbleToScale", "False", "FailedUpdateScale",
                              f"the HPA controller was unable to update the target scale: {err}", now)
                self.recorder.event(hpa, EVENT_TYPE_WARNING, "FailedRescale",
                                    f"New size: {desired}; reason: {rescale_reason}; error: {err}")
                self._set_current(status, current, current, metric_statuses)
                await self._write_status(hpa, new)
                raise
            set_condition(status.conditions, "AbleToScale", "True", "SucceededRescale",
                          "the HPA controller was able to update the target scale to " + str(desired), now)
            self.recorder.event(hpa, EVENT_TYPE_NORMAL, "SuccessfulRescale",
                                f"New size: {desired}; reason: {rescale_reason}")
            if hpa.spec.HasField("behavior"):
                self._history.setdefault(key, ScaleHistory()).record_scale(hpa.spec.behavior, current, desired, now)
            status.lastScaleTime = rfc3339(now)
            log.info("%s: scaled %s/%s from %d to %d (%s)", key, ref.kind, ref.name, current, desired,
                     rescale_reason)
        else:
            set_condition(status.conditions, "AbleToScale", "True", "ReadyForNewScale",
                          "recommended size matches current size", now)
        self._set_current(status, current, desired, metric_statuses)
        await self._write_status(hpa, new)

    @staticmethod
    def _kind_key(ref: autoscaling_pb2.CrossVersionObjectReference) -> tuple[str, str] | None:
        group = _target_group(ref.apiVersion)
        for g, kind in SCALABLE:
            if kind == ref.kind and (group is None or group == g):
                return g, kind
        return None

    def _target(self, hpa: HPA) -> Message | str:
        """The scale target from its informer, or why there is none."""
        ref = hpa.spec.scaleTargetRef
        kind_key = self._kind_key(ref)
        if kind_key is None:
            return f"no scale subresource for {ref.apiVersion or '?'}, Kind={ref.kind}"
        try:
            return self.targets[kind_key].get(hpa.metadata.namespace, ref.name)
        except StatusError as err:
            if err.reason == "NotFound":
                return f'{ref.kind.lower()}s "{ref.name}" not found'
            raise

    @staticmethod
    def _selector(target: Message) -> Selector:
        sel = target.spec.selector  # type: ignore[attr-defined]
        if isinstance(target, core_pb2.ReplicationController):
            return selector_from_map(sel) if sel else Selector.nothing()
        return selector_from_message(sel) if target.spec.HasField("selector") else Selector.nothing()  # type: ignore

    def _set_current(self, status: autoscaling_pb2.HorizontalPodAutoscalerStatus, current: int, desired: int,
                     metrics: list[autoscaling_pb2.MetricStatus] | None) -> None:
        status.currentReplicas = current
        status.desiredReplicas = desired
        del status.currentMetrics[:]
        status.currentMetrics.extend(metrics or [])

    async def _write_status(self, old: HPA, new: HPA) -> None:
        if new.status.SerializeToString(deterministic=True) == old.status.SerializeToString(deterministic=True):
            return
        await self.clientset.resource(HPA, old.metadata.namespace).update_status(new)

    # ------------------------------------------------------------ metrics

    async def _replicas_for_metrics(self, hpa: HPA, target: Message, current: int,
                                    ) -> tuple[int | None, str, list[autoscaling_pb2.MetricStatus], tuple[str, str]]:
        """(the largest proposal or None, the metric behind it, the current
        metrics, (reason, message) of the last failure)."""
        try:
            selector = self._selector(target)
        except SelectorError as err:
            return None, "", [], ("InvalidSelector", f"couldn't convert selector into a corresponding internal "
                                                     f"selector object: {err}")
        namespace = hpa.metadata.namespace
        pods = self.pods.list(namespace, selector)
        statuses: list[autoscaling_pb2.MetricStatus] = []
        best: int | None = None
        best_name = ""
        invalid = 0
        error = ("", "")
        for spec in hpa.spec.metrics:
            try:
                replicas, name, metric_status = await self._replicas_for_metric(spec, namespace, selector, pods,
                                                                                current)
            except (MetricError, MetricsUnavailable) as err:
                invalid += 1
                statuses.append(autoscaling_pb2.MetricStatus())
                reason = f"FailedGet{spec.type}Metric" if isinstance(err, MetricsUnavailable) else \
                    "FailedComputeMetricsReplicas"
                error = (reason, f"the HPA was unable to compute the replica count: {err}")
                continue
            statuses.append(metric_status)
            if best is None or replicas > best:
                best, best_name = replicas, name
        # Scale on the valid metrics only if none failed, or if they scale up
        # (a failing metric might have wanted more replicas, never fewer).
        if best is None or (invalid and best < current):
            return None, "", statuses, error or ("FailedComputeMetricsReplicas", "no valid metrics")
        return best, best_name, statuses, error

    async def _replicas_for_metric(self, spec: autoscaling_pb2.MetricSpec, namespace: str, selector: Selector,
                                   pods: list[core_pb2.Pod], current: int,
                                   ) -> tuple[int, str, autoscaling_pb2.MetricStatus]:
        if spec.type != "Resource":
            raise MetricError(f"metric type {spec.type} is not supported: only Resource metrics (cpu, memory) are "
                              f"served in kubelab")
        resource, target = spec.resource.name, spec.resource.target
        if resource not in ("cpu", "memory"):
            raise MetricError(f"resource {resource} is not measured: only cpu and memory are")
        usage = await self.metrics.pod_usage(namespace, selector, resource)
        now = self.clock.now()
        status = autoscaling_pb2.MetricStatus(type="Resource")
        status.resource.name = resource
        rec: Recommendation
        if target.HasField("averageValue"):
            goal = parse_quantity(target.averageValue.value).milli_value()
            rec = average_value_replicas(current, goal, pods, usage, resource, now, self.timing)
            name = f"{resource} resource"
        else:
            percent = target.averageUtilization if target.HasField("averageUtilization") else 80
            rec = utilization_replicas(current, percent, pods, usage, resource, now, self.timing)
            status.resource.current.averageUtilization = rec.utilization or 0
            name = f"{resource} resource utilization (percentage of request)"
        status.resource.current.averageValue.value = _milli_quantity(rec.average)
        return rec.replicas, name, status

    # ------------------------------------------------------------ normalisation

    def _normalize(self, key: str, hpa: HPA, status: autoscaling_pb2.HorizontalPodAutoscalerStatus, current: int,
                   proposal: int, min_replicas: int, now: float) -> int:
        history = self._history.setdefault(key, ScaleHistory())
        if hpa.spec.HasField("behavior"):
            behavior = hpa.spec.behavior
            up = behavior.scaleUp if behavior.HasField("scaleUp") else default_scale_up()
            down = behavior.scaleDown if behavior.HasField("scaleDown") else \
                default_scale_down(int(self.downscale_window))
            stable = stabilize(history, current, proposal, up, down, now)
            limit = rate_limit(history, current, stable.replicas, min_replicas, hpa.spec.maxReplicas, up, down, now)
        else:
            stable = stabilize_down(history, proposal, self.downscale_window, now)
            limit = legacy_limit(current, stable.replicas, min_replicas, hpa.spec.maxReplicas)
        if stable.replicas != proposal:
            set_condition(status.conditions, "ScalingActive", "True", stable.reason, stable.message, now)
        set_condition(status.conditions, "ScalingLimited", "False" if limit.replicas == stable.replicas else "True",
                      limit.reason, limit.message, now)
        return limit.replicas
