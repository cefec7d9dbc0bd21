"""The pod garbage collector: pods nothing else will ever remove.

Every `--pod-gc-period` (20 s) it scans the pod cache for:

* terminated pods (Succeeded or Failed) beyond `--terminated-pod-gc-threshold`
  (12500; 0 disables): the oldest go first, so a namespace's history of
  finished Job pods cannot grow without bound;
* orphaned pods: bound to a node that does not exist. A node missing from
  the cache is only believed gone once it has been missing for a
  quarantine period (40 s, in case the cache lags a new node) *and* the API
  confirms it;
* unscheduled pods marked for deletion: no kubelet will ever finish them;
* pods marked for deletion on a node tainted
  `node.kubernetes.io/out-of-service` (an admin's statement that the node
  is down for good).

The scan only picks keys; `sync(key)` re-reads the pod from the cache and
acts only if the reason still holds. Orphaned pods are first marked Failed
(condition DisruptionTarget, reason DeletionByPodGC), as Kubernetes does,
and every pod it removes is deleted with grace period 0: there is no
kubelet left to wait for.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

from api import StatusError, rfc3339
from client import object_key, split_key
from proto import core_pb2

from ._controller import Controller, ControllerContext

log = logging.getLogger(__name__)

Pod = core_pb2.Pod
Node = core_pb2.Node
OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"
QUARANTINE_SECONDS = 40.0

TERMINATED, ORPHANED, UNSCHEDULED, OUT_OF_SERVICE_NODE = "terminated", "orphaned", "unscheduled", "out-of-service"


def terminated(pod: Pod) -> bool:
    return pod.status.phase in ("Succeeded", "Failed")


def eviction_order(pod: Pod) -> tuple[int, str, str]:
    """Evicted pods first, then by age, oldest first (Kubernetes'
    byEvictionAndCreationTimestamp)."""
    evicted = pod.status.reason == "Evicted"
    return (0 if evicted else 1), pod.metadata.creationTimestamp, object_key(pod)


class PodGCController(Controller):
    name = "podgc"
    event_source = "pod-garbage-collector"
    default_workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        self.threshold = int(getattr(opts, "terminated_pod_gc_threshold", 12500))
        self.period = float(getattr(opts, "pod_gc_period", 20.0))
        self.quarantine = float(getattr(opts, "pod_gc_orphan_quarantine", QUARANTINE_SECONDS))
        self.pods = ctx.informers.informer_for(Pod).lister()
        self.nodes = ctx.informers.informer_for(Node).lister()
        #: why each picked pod key was picked
        self.reasons: dict[str, str] = {}
        #: node name -> when the cache was first seen without it (monotonic)
        self.missing_since: dict[str, float] = {}

    @classmethod
    def add_flags(cls, parser: argparse.ArgumentParser) -> None:
        g = parser.add_argument_group("pod garbage collector")
        g.add_argument("--terminated-pod-gc-threshold", type=int, default=12500, metavar="N",
                       help="how many terminated pods may exist before the oldest are deleted; 0 disables "
                            "(default %(default)s)")
        g.add_argument("--pod-gc-period", type=float, default=20.0, metavar="SECONDS",
                       help="how often pods are scanned (default %(default)s)")
        g.add_argument("--pod-gc-orphan-quarantine", type=float, default=QUARANTINE_SECONDS, metavar="SECONDS",
                       help="how long a node must be missing before its pods count as orphaned "
                            "(default %(default)s)")

    def periodic(self) -> list[tuple[float, Callable[[], None], bool]]:
        return [(self.period, self.scan, True)]

    def scan(self) -> None:
        """Pick the pods to collect and enqueue them."""
        pods = self.pods.list()
        picked: dict[str, str] = {}
        if self.threshold > 0:
            done = sorted((p for p in pods if terminated(p) and not p.metadata.deletionTimestamp),
                          key=eviction_order)
            for pod in done[:max(0, len(done) - self.threshold)]:
                picked[object_key(pod)] = TERMINATED
        now = self.clock.monotonic()
        present = {n.metadata.name for n in self.nodes.list()}
        for name in list(self.missing_since):
            if name in present:
                del self.missing_since[name]
        for pod in pods:
            key = object_key(pod)
            node = pod.spec.nodeName
            if node and node not in present:
                since = self.missing_since.setdefault(node, now)
                if now - since >= self.quarantine:
                    picked[key] = ORPHANED
            elif not node and pod.metadata.deletionTimestamp:
                picked[key] = UNSCHEDULED
            elif node and pod.metadata.deletionTimestamp and not terminated(pod) and self._out_of_service(node):
                picked[key] = OUT_OF_SERVICE_NODE
        self.reasons = picked
        for key in picked:
            self.queue.add(key)

    def _out_of_service(self, node_name: str) -> bool:
        try:
            node = self.nodes.get("", node_name)
        except StatusError:
            return False
        return any(t.key == OUT_OF_SERVICE and t.effect in ("NoExecute", "NoSchedule") for t in node.spec.taints)

    async def sync(self, key: str) -> None:
        reason = self.reasons.get(key)
        if reason is None:
            return
        await self._collect(key, reason)  # raises to be retried, the reason kept
        self.reasons.pop(key, None)

    async def _collect(self, key: str, reason: str) -> None:
        namespace, name = split_key(key)
        try:
            pod = self.pods.get(namespace, name)
        except StatusError as err:
            if err.reason == "NotFound":
                return
            raise
        if reason == TERMINATED and not terminated(pod):
            return
        if reason in (UNSCHEDULED, OUT_OF_SERVICE_NODE) and not pod.metadata.deletionTimestamp:
            return
        if reason == ORPHANED:
            if not pod.spec.nodeName or await self._node_exists(pod.spec.nodeName):
                return
            await self._mark_failed(pod, f"PodGC: node {pod.spec.nodeName} no longer exists")
        log.info("podgc: deleting %s pod %s", reason, key)
        try:
            await self.clientset.resource(Pod, namespace).delete(name, grace_period=0, uid=pod.metadata.uid)
        except StatusError as err:
            if err.reason not in ("NotFound", "Conflict"):
                raise

    async def _node_exists(self, name: str) -> bool:
        try:
            await self.clientset.resource(Node).get(name)
        except StatusError as err:
            if err.reason == "NotFound":
                return False
            raise
        return True

    async def _mark_failed(self, pod: Pod, message: str) -> None:
        if terminated(pod):
            return
        new = Pod()
        new.CopyFrom(pod)
        new.status.phase = "Failed"
        new.status.reason = new.status.reason or "NodeLost"
        new.status.message = message
        kept = [c for c in new.status.conditions if c.type != "DisruptionTarget"]
        kept.append(core_pb2.PodCondition(type="DisruptionTarget", status="True", reason="DeletionByPodGC",
                                          message=message, lastTransitionTime=rfc3339(self.clock.now())))
        del new.status.conditions[:]
        new.status.conditions.extend(kept)
        try:
            await self.clientset.resource(Pod, pod.metadata.namespace).update_status(new)
        except StatusError as err:
            if err.reason not in ("NotFound", "Conflict"):
                raise
