"""The taint eviction controller: pods on a node with NoExecute taints they
do not tolerate are evicted (Kubernetes' NoExecuteTaintManager).

The node lifecycle controller decides *that* a node is tainted (and
rate-limits it); this controller decides *when* each pod on it goes:

* a pod that tolerates every NoExecute taint without tolerationSeconds
  stays as long as the taints do;
* a pod with a toleration for every taint, some with tolerationSeconds,
  goes after the smallest of those, counted from when this controller
  first saw it on the tainted node (the apiserver's admission gives every
  pod `not-ready`/`unreachable` tolerations of 300 s by default);
* a pod that does not tolerate some NoExecute taint goes at once.

Eviction is a graceful delete, preceded by a `DisruptionTarget` condition
(reason DeletionByTaintManager) so that a Job's pod failure policy can tell
an eviction from a crash, and announced by a TaintManagerEviction event.
Keys are pod keys; a node's taint change enqueues the pods on it, and a pod
whose time has not come is queued again for when it will.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

from api import StatusError, rfc3339
from client import DeletedFinalStateUnknown, split_key
from proto import core_pb2

from ._controller import Controller, ControllerContext
from ._podutil import unwrap

log = logging.getLogger(__name__)

Node = core_pb2.Node
Pod = core_pb2.Pod
NODE_INDEX = "spec.nodeName"


def tolerates(toleration: core_pb2.Toleration, taint: core_pb2.Taint) -> bool:
    """Kubernetes' ToleratesTaint."""
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.key and toleration.key != taint.key:
        return False
    if toleration.operator == "Exists":
        return True
    if toleration.operator in ("", "Equal"):
        return bool(toleration.key) and toleration.value == taint.value
    return False


def toleration_seconds(tolerations: Iterable[core_pb2.Toleration], taints: list[core_pb2.Taint]) -> float | None:
    """How long a pod may stay on a node with these NoExecute taints:
    None forever, 0 not at all."""
    tolerations = list(tolerations)
    least: float | None = None
    for taint in taints:
        matching = [t for t in tolerations if tolerates(t, taint)]
        if not matching:
            return 0.0
        for t in matching:
            if t.HasField("tolerationSeconds"):
                seconds = max(0.0, float(t.tolerationSeconds))
                least = seconds if least is None else min(least, seconds)
    return least


class TaintEvictionController(Controller):
    name = "taint-eviction-controller"
    event_source = "taint-eviction-controller"
    default_workers = 4

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        nodes = ctx.informers.informer_for(Node)
        pods = ctx.informers.informer_for(Pod)
        with contextlib.suppress(ValueError):  # another controller indexed pods by node already
            pods.add_indexers({NODE_INDEX: lambda p: [p.spec.nodeName] if p.spec.nodeName else []})
        self.nodes = nodes.lister()
        self.pods = pods.lister()
        nodes.add_event_handler(on_add=self._node_changed, on_update=self._node_updated)
        pods.add_event_handler(on_add=self._pod_changed, on_update=lambda _old, new: self._pod_changed(new),
                               on_delete=self._pod_deleted)
        #: pod uid -> when it was first seen on a node with NoExecute taints (monotonic)
        self._first_seen: dict[str, float] = {}

    def _node_changed(self, node: Node) -> None:
        for pod in self.pods.by_index(NODE_INDEX, node.metadata.name):
            self.enqueue(pod)

    def _node_updated(self, old: Node, new: Node) -> None:
        if [t for t in old.spec.taints if t.effect == "NoExecute"] != \
                [t for t in new.spec.taints if t.effect == "NoExecute"] or old is new:
            self._node_changed(new)

    def _pod_deleted(self, pod: Pod | DeletedFinalStateUnknown[Pod]) -> None:
        self._first_seen.pop(unwrap(pod).metadata.uid, None)

    def _pod_changed(self, pod: Pod) -> None:
        if pod.spec.nodeName:
            self.enqueue(pod)

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        try:
            pod = self.pods.get(namespace, name)
            node = self.nodes.get("", pod.spec.nodeName) if pod.spec.nodeName else None
        except StatusError as err:
            if err.reason != "NotFound":
                raise
            return
        uid = pod.metadata.uid
        taints = [t for t in node.spec.taints if t.effect == "NoExecute"] if node is not None else []
        if not taints or pod.metadata.deletionTimestamp or pod.status.phase in ("Succeeded", "Failed"):
            self._first_seen.pop(uid, None)
            return
        allowed = toleration_seconds(pod.spec.tolerations, taints)
        if allowed is None:
            self._first_seen.pop(uid, None)
            return
        now = self.clock.monotonic()
        since = self._first_seen.setdefault(uid, now)
        left = since + allowed - now
        if left > 0:
            self.queue.add_after(key, left)
            return
        await self._evict(pod)
        self._first_seen.pop(uid, None)

    async def _evict(self, pod: Pod) -> None:
        client = self.clientset.resource(Pod, pod.metadata.namespace)
        new = Pod()
        new.CopyFrom(pod)
        kept = [c for c in new.status.conditions if c.type != "DisruptionTarget"]
        kept.append(core_pb2.PodCondition(type="DisruptionTarget", status="True", reason="DeletionByTaintManager",
                                          message="Taint manager: deleting due to NoExecute taint",
                                          lastTransitionTime=rfc3339(self.clock.now())))
        del new.status.conditions[:]
        new.status.conditions.extend(kept)
        try:
            await client.update_status(new)
            self.recorder.event(pod, "Normal", "TaintManagerEviction",
                                f"Marking for deletion Pod {pod.metadata.namespace}/{pod.metadata.name}")
            await client.delete(pod.metadata.name, uid=pod.metadata.uid)
            log.info("taint eviction: evicted pod %s/%s from node %s", pod.metadata.namespace, pod.metadata.name,
                     pod.spec.nodeName)
        except StatusError as err:
            if err.reason != "NotFound":
                raise
