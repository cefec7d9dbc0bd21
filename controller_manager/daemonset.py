"""The DaemonSet controller: one pod on every eligible node.

Keys are DaemonSets. A pod maps to the DaemonSet that controls it (an
orphan to every DaemonSet whose selector matches it, which may adopt it); a
node that comes, goes or changes its labels, taints or schedulability
re-queues every DaemonSet; a ControllerRevision maps to its owner. A sync:

1. Records the template as a ControllerRevision (_history.py); its hash is
   what the pods of the current template carry in `controller-revision-hash`.
2. Groups the pods it controls by the node they run on (or are pinned to).
3. manage: for each node, decides with _daemon_nodes.py whether a pod
   should run there; creates the missing pods (pinned to their node by
   node affinity, with the automatic daemon tolerations), deletes pods on
   nodes that no longer qualify and on nodes that are gone, deletes failed
   pods so they are replaced (with a per-node backoff), and keeps one pod
   per node (two while a surge update replaces it).
4. If nothing is in flight, rolls out a new template (_daemonset_update.py):
   RollingUpdate with maxUnavailable deletes old pods (manage then creates
   their replacements) without more than maxUnavailable nodes lacking an
   available pod; with maxSurge it starts the new pod beside the old one
   and deletes the old one once the new one is available. OnDelete only
   uses the new template for pods that are deleted by someone else.
5. Deletes the oldest revisions no pod uses beyond revisionHistoryLimit
   and writes the status counters.

Pods are created with generateName and counted by expectations, so a slow
pod informer cannot cause a second pod on a node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from api import SCHEME, Selector, SelectorError, StatusError, selector_from_message
from client import EVENT_TYPE_NORMAL, EVENT_TYPE_WARNING, DeletedFinalStateUnknown, object_key, split_key
from proto import apps_pb2, core_pb2

from ._conditions import write_status
from ._controller import Controller, ControllerContext
from ._daemon_nodes import Fit, add_daemon_tolerations, node_fit, pin_to_node, target_node
from ._daemonset_update import rolling_update
from ._expectations import ControllerExpectations
from ._history import HASH_LABEL, ControllerRevision, HashCollision, Histories
from ._owner import (
    CONTROLLER_UID_INDEX,
    add_controller_uid_index,
    claim,
    controller_ref,
    new_controller_ref,
    owned_and_orphans,
    recheck_owner,
)
from ._podutil import creation_time, is_pod_available, is_pod_ready, unwrap

log = logging.getLogger(__name__)

DaemonSet = apps_pb2.DaemonSet
Pod = core_pb2.Pod
Node = core_pb2.Node
DAEMONSET_KIND = SCHEME.for_message(DaemonSet)

FAILED_POD_BACKOFF = 1.0
FAILED_POD_BACKOFF_MAX = 900.0


def _oldest_first(pods: Iterable[Pod]) -> list[Pod]:
    return sorted(pods, key=lambda p: (p.status.phase != "Running", creation_time(p), p.metadata.name))


class DaemonSetController(Controller):
    name = "daemonset"
    default_workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        sets = ctx.informers.informer_for(DaemonSet)
        pods = ctx.informers.informer_for(Pod)
        nodes = ctx.informers.informer_for(Node)
        revisions = ctx.informers.informer_for(ControllerRevision)
        self.sets = sets.lister()
        self.pods = pods.lister()
        self.nodes = nodes.lister()
        self.histories = Histories(self.clientset, revisions.lister())
        self.expectations = ControllerExpectations(ctx.clock)
        add_controller_uid_index(pods)
        add_controller_uid_index(revisions)
        self._failed_backoff: dict[tuple[str, str], tuple[float, float]] = {}  # (key, node) -> (delay, until)
        sets.add_event_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new),
                               on_delete=self.enqueue)
        pods.add_event_handler(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)
        nodes.add_event_handler(on_add=lambda _n: self._enqueue_all(), on_update=self._node_updated,
                                on_delete=lambda _n: self._enqueue_all())
        revisions.add_event_handler(on_add=self._revision_changed,
                                    on_update=lambda _old, new: self._revision_changed(new),
                                    on_delete=self._revision_changed)

    # ------------------------------------------------------------ handlers

    def _enqueue_all(self) -> None:
        for ds in self.sets.list():
            self.enqueue(ds)

    def _node_updated(self, old: Node, new: Node) -> None:
        def shape(n: Node) -> bytes:
            probe = Node()
            probe.metadata.labels.update(n.metadata.labels)
            probe.spec.taints.extend(n.spec.taints)
            probe.spec.unschedulable = n.spec.unschedulable
            return probe.SerializeToString(deterministic=True)
        if shape(old) != shape(new):
            self._enqueue_all()

    def _owner_key(self, pod: Pod) -> str | None:
        ref = controller_ref(pod)
        if ref is None or ref.kind != "DaemonSet":
            return None
        return f"{pod.metadata.namespace}/{ref.name}"

    def _enqueue_matching(self, pod: Pod) -> None:
        """An orphan: every DaemonSet that might adopt it."""
        for ds in self.sets.list(pod.metadata.namespace):
            try:
                if selector_from_message(ds.spec.selector).matches(pod.metadata.labels):
                    self.enqueue(ds)
            except SelectorError:
                continue

    def _pod_added(self, pod: Pod) -> None:
        key = self._owner_key(pod)
        if key is None:
            if controller_ref(pod) is None and not pod.metadata.deletionTimestamp:
                self._enqueue_matching(pod)
            return
        self.expectations.creation_observed(key)
        self.queue.add(key)

    def _pod_updated(self, old: Pod, new: Pod) -> None:
        key, old_key = self._owner_key(new), self._owner_key(old)
        if old_key is not None and old_key != key:
            self.queue.add(old_key)
        if key is None:
            if controller_ref(new) is None:
                self._enqueue_matching(new)
            return
        if new.metadata.deletionTimestamp:
            self.expectations.deletion_observed(key, object_key(new))
        self.queue.add(key)

    def _pod_deleted(self, pod: Pod | DeletedFinalStateUnknown[Pod]) -> None:
        obj = unwrap(pod)
        key = self._owner_key(obj)
        if key is None:
            return
        self.expectations.deletion_observed(key, object_key(obj))
        self.queue.add(key)

    def _revision_changed(self, rev: ControllerRevision | DeletedFinalStateUnknown[ControllerRevision]) -> None:
        obj = unwrap(rev)
        ref = controller_ref(obj)
        if ref is not None and ref.kind == "DaemonSet":
            self.queue.add(f"{obj.metadata.namespace}/{ref.name}")

    # ------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        try:
            ds = self.sets.get(namespace, name)
        except StatusError as err:
            if err.reason == "NotFound":
                self.expectations.delete(key)
                for k in [k for k in self._failed_backoff if k[0] == key]:
                    del self._failed_backoff[k]
                return
            raise
        if ds.metadata.deletionTimestamp:
            return
        try:
            selector = selector_from_message(ds.spec.selector)
        except SelectorError as err:
            self.recorder.event(ds, EVENT_TYPE_WARNING, "InvalidSelector", str(err))
            return
        if selector.empty():
            self.recorder.event(ds, EVENT_TYPE_WARNING, "SelectingAll",
                                "This daemon set is selecting all pods. A non-empty selector is required.")
            return
        sets = self.clientset.resource(DaemonSet, namespace)
        collisions = ds.status.collisionCount if ds.status.HasField("collisionCount") else None
        try:
            revisions, update = await self.histories.sync(ds, DAEMONSET_KIND, selector, ds.spec.template, collisions,
                                                          recheck_owner(ds, sets))
        except HashCollision:
            bumped = DaemonSet()
            bumped.CopyFrom(ds)
            bumped.status.collisionCount = (collisions or 0) + 1
            await sets.update_status(bumped)
            raise
        digest = update.metadata.labels[HASH_LABEL]
        nodes = self.nodes.list()
        by_node = await self._pods_by_node(ds, selector)
        spec = self._daemon_spec(ds)
        fits = {n.metadata.name: node_fit(spec, n) for n in nodes}
        if self.expectations.satisfied(key):
            await self._manage(key, ds, nodes, fits, by_node, digest)
            if self.expectations.satisfied(key) and ds.spec.updateStrategy.type == "RollingUpdate":
                # Read the pods again: what manage did may already be in the
                # cache (that is what satisfied expectations say).
                by_node = _group(self.pods.by_index(CONTROLLER_UID_INDEX, ds.metadata.uid))
                delete, create = rolling_update(ds, fits, by_node, digest, self.clock.now())
                await self._sync_nodes(key, ds, delete, create, digest)
        live = {p.metadata.labels.get(HASH_LABEL, "") for pods in by_node.values() for p in pods}
        keep = {r.metadata.name for r in revisions if r.metadata.labels.get(HASH_LABEL) in live}
        keep.add(update.metadata.name)
        limit = ds.spec.revisionHistoryLimit if ds.spec.HasField("revisionHistoryLimit") else 10
        await self.histories.truncate(ds, revisions, keep, limit)
        await self._update_status(key, ds, nodes, fits, by_node, digest)

    def _daemon_spec(self, ds: DaemonSet) -> core_pb2.PodSpec:
        spec = core_pb2.PodSpec()
        spec.CopyFrom(ds.spec.template.spec)
        add_daemon_tolerations(spec)
        return spec

    async def _pods_by_node(self, ds: DaemonSet, selector: Selector) -> dict[str, list[Pod]]:
        namespace = ds.metadata.namespace
        candidates = owned_and_orphans(self.pods, namespace, ds.metadata.uid)
        pods = await claim(ds, DAEMONSET_KIND, selector, candidates, self.clientset.resource(Pod, namespace),
                           recheck_owner(ds, self.clientset.resource(DaemonSet, namespace)))
        return _group(pods)

    # ------------------------------------------------------------ manage

    async def _manage(self, key: str, ds: DaemonSet, nodes: list[Node], fits: dict[str, Fit],
                      by_node: dict[str, list[Pod]], digest: str) -> None:
        surge = _allows_surge(ds)
        create: list[str] = []
        delete: list[Pod] = []
        now = self.clock.now()
        for node in nodes:
            name = node.metadata.name
            fit = fits[name]
            pods = by_node.get(name, [])
            if fit.should_run and not pods:
                create.append(name)
            elif fit.should_continue_running:
                running = []
                for pod in pods:
                    if pod.metadata.deletionTimestamp:
                        continue
                    if pod.status.phase == "Failed":
                        if self._failed_pod_may_go(key, name, now):
                            self.recorder.event(ds, EVENT_TYPE_WARNING, "FailedDaemonPod",
                                                f"Found failed daemon pod {pod.metadata.namespace}/"
                                                f"{pod.metadata.name} on node {name}, will try to kill it")
                            delete.append(pod)
                        continue
                    running.append(pod)
                delete += _duplicates(running, digest, surge)
            else:
                delete += [p for p in pods if not p.metadata.deletionTimestamp]
        known = {n.metadata.name for n in nodes}
        gone = [p for node, pods in by_node.items() if node not in known for p in pods]
        await self._sync_nodes(key, ds, delete, create, digest, force=gone)

    def _failed_pod_may_go(self, key: str, node: str, now: float) -> bool:
        """Replace a failed daemon pod, but back off per node (a pod that
        fails at once would otherwise be replaced in a hot loop)."""
        delay, until = self._failed_backoff.get((key, node), (0.0, 0.0))
        if now < until:
            self.queue.add_after(key, until - now)
            return False
        delay = min(max(delay * 2, FAILED_POD_BACKOFF), FAILED_POD_BACKOFF_MAX)
        self._failed_backoff[(key, node)] = (delay, now + delay)
        return True

    def _new_pod(self, ds: DaemonSet, node: str, digest: str) -> Pod:
        template = ds.spec.template
        pod = Pod()
        pod.metadata.namespace = ds.metadata.namespace
        pod.metadata.generateName = f"{ds.metadata.name}-"
        pod.metadata.labels.update(template.metadata.labels)
        pod.metadata.labels[HASH_LABEL] = digest
        pod.metadata.annotations.update(template.metadata.annotations)
        pod.metadata.ownerReferences.append(new_controller_ref(ds, DAEMONSET_KIND))
        pod.spec.CopyFrom(template.spec)
        add_daemon_tolerations(pod.spec)
        pin_to_node(pod.spec, node)
        return pod

    async def _sync_nodes(self, key: str, ds: DaemonSet, delete: list[Pod], create: list[str], digest: str, *,
                          force: list[Pod] | None = None) -> None:
        """Delete pods and create pods on nodes, counted by expectations.
        `force`d pods (on nodes that no longer exist) go without a grace
        period: no kubelet is left to confirm their end."""
        force = force or []
        if not delete and not create and not force:
            return
        namespace = ds.metadata.namespace
        pods = self.clientset.resource(Pod, namespace)
        self.expectations.expect(key, len(create), [object_key(p) for p in delete + force])
        errors: list[BaseException] = []
        batch, i = 1, 0
        while i < len(create):  # slow start: 1, 2, 4, ... at once
            chunk = create[i:i + batch]
            results = await asyncio.gather(*(pods.create(self._new_pod(ds, node, digest)) for node in chunk),
                                           return_exceptions=True)
            for node, result in zip(chunk, results, strict=True):
                if isinstance(result, BaseException):
                    self.expectations.lower(key, adds=1)  # never to be seen
                    self.recorder.event(ds, EVENT_TYPE_WARNING, "FailedCreate",
                                        f"Error creating pod on node {node}: {result}")
                    errors.append(result)
                else:
                    self.recorder.event(ds, EVENT_TYPE_NORMAL, "SuccessfulCreate",
                                        f"Created pod: {result.metadata.name}")
            i += len(chunk)
            if errors:
                self.expectations.lower(key, adds=len(create) - i)
                break
            batch *= 2
        for pod, grace in [(p, None) for p in delete] + [(p, 0) for p in force]:
            try:
                await pods.delete(pod.metadata.name, uid=pod.metadata.uid, grace_period=grace)
                self.recorder.event(ds, EVENT_TYPE_NORMAL, "SuccessfulDelete", f"Deleted pod: {pod.metadata.name}")
            except StatusError as err:
                self.expectations.deletion_observed(key, object_key(pod))
                if err.reason not in ("NotFound", "Conflict"):
                    errors.append(err)
        if errors:
            raise errors[0]

    # ------------------------------------------------------------ status

    async def _update_status(self, key: str, ds: DaemonSet, nodes: list[Node], fits: dict[str, Fit],
                             by_node: dict[str, list[Pod]], digest: str) -> None:
        now = self.clock.now()
        desired = current = misscheduled = ready = available = updated = 0
        for node in nodes:
            pods = by_node.get(node.metadata.name, [])
            if fits[node.metadata.name].should_run:
                desired += 1
                if pods:
                    current += 1
                    pod = _oldest_first(pods)[0]
                    if is_pod_ready(pod):
                        ready += 1
                        if is_pod_available(pod, ds.spec.minReadySeconds, now):
                            available += 1
                    if any(p.metadata.labels.get(HASH_LABEL) == digest and not p.metadata.deletionTimestamp
                           for p in pods):
                        updated += 1
            elif pods:
                misscheduled += 1
        new = DaemonSet()
        new.CopyFrom(ds)
        s = new.status
        s.desiredNumberScheduled, s.currentNumberScheduled, s.numberMisscheduled = desired, current, misscheduled
        s.numberReady, s.numberAvailable, s.updatedNumberScheduled = ready, available, updated
        s.numberUnavailable = max(0, desired - available)
        s.observedGeneration = ds.metadata.generation
        await write_status(self.clientset.resource(DaemonSet, ds.metadata.namespace), ds, new)
        if ds.spec.minReadySeconds > 0 and ready != available:
            self.queue.add_after(key, ds.spec.minReadySeconds)


def _group(pods: list[Pod]) -> dict[str, list[Pod]]:
    """Pods by the node they run on or are pinned to."""
    by_node: dict[str, list[Pod]] = {}
    for pod in pods:
        node = target_node(pod)
        if node:
            by_node.setdefault(node, []).append(pod)
    return by_node


def _allows_surge(ds: DaemonSet) -> bool:
    strategy = ds.spec.updateStrategy
    if strategy.type != "RollingUpdate":
        return False
    surge = strategy.rollingUpdate.maxSurge
    kind = surge.WhichOneof("kind")
    return (kind == "intVal" and surge.intVal > 0) or (kind == "strVal" and surge.strVal not in ("0", "0%"))


def _duplicates(running: list[Pod], digest: str, surge: bool) -> list[Pod]:
    """The pods beyond one per node (with surge: beyond the oldest new and
    the oldest old pod)."""
    ordered = _oldest_first(running)
    if len(ordered) <= 1:
        return []
    if not surge:
        return ordered[1:]
    extra: list[Pod] = []
    seen_new = seen_old = False
    for pod in ordered:
        if pod.metadata.labels.get(HASH_LABEL) == digest:
            if not seen_new:
                seen_new = True
                continue
        elif not seen_old:
            seen_old = True
            continue
        extra.append(pod)
    return extra
