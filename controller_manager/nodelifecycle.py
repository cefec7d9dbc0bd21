"""The node lifecycle controller: notices nodes that stopped reporting,
marks them, and taints them so their pods move elsewhere.

Health. A kubelet proves it is alive by renewing a Lease named after its
node in `kube-node-lease` (every 10 s) and by posting node status. The
controller records, on its own clock, when it last *saw* either change
(never comparing the kubelet's timestamps with its own, so clock skew does
not matter). A node not heard from for `--node-monitor-grace-period` (40 s;
`--node-startup-grace-period` for one that never posted a Ready condition)
gets every condition set to Unknown ("Kubelet stopped posting node
status."), and its pods are marked not ready, so Endpoints drop them at
once.

Taints. From the Ready condition: False -> `node.kubernetes.io/not-ready`,
Unknown -> `node.kubernetes.io/unreachable`, each as NoSchedule (added at
once: nothing new should land there) and as NoExecute (which makes the
taint-eviction controller evict pods that do not tolerate it, after their
tolerationSeconds). When the node is Ready again both go.

Eviction rate. Adding a NoExecute taint is what starts evictions, so it is
rate-limited per zone (`topology.kubernetes.io/zone`), as in Kubernetes:
`--node-eviction-rate` nodes per second while a zone is healthy;
`--secondary-node-eviction-rate` when more than `--unhealthy-zone-threshold`
of a zone (with more than 2 unhealthy nodes) is down, or none at all for
zones no bigger than `--large-cluster-size-threshold`; and when every node
of every zone is down the controller assumes the problem is its own
connectivity, adds no NoExecute taints and removes those it added.

Keys are node names. A periodic monitor (`--node-monitor-period`)
recomputes the zones and enqueues every node; Lease and Node changes
enqueue their node. `sync` never waits for a token: a node that has to wait
is queued again for when its zone's bucket will have one.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from api import StatusError, parse_time, rfc3339
from client import TokenBucket
from proto import coordination_pb2, core_pb2

from ._controller import Controller, ControllerContext

log = logging.getLogger(__name__)

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
LEASE_NAMESPACE = "kube-node-lease"
ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
REGION_LABELS = ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region")
#: Conditions a kubelet posts that go Unknown when it falls silent.
KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")

Node = core_pb2.Node
Pod = core_pb2.Pod

NORMAL, PARTIAL, FULL = "Normal", "PartialDisruption", "FullDisruption"


@dataclass
class NodeHealth:
    """What the controller last saw of a node, and when (its own monotonic clock)."""

    probe: float
    lease_renew: str = ""
    heartbeat: str = ""


def condition(node: Node, kind: str) -> core_pb2.NodeCondition | None:
    return next((c for c in node.status.conditions if c.type == kind), None)


def ready_status(node: Node) -> str:
    ready = condition(node, "Ready")
    return ready.status if ready is not None and ready.status else "Unknown"


def zone_of(node: Node) -> str:
    labels = node.metadata.labels
    region = next((labels[k] for k in REGION_LABELS if k in labels), "")
    zone = next((labels[k] for k in ZONE_LABELS if k in labels), "")
    return f"{region}/{zone}" if region else zone


def wanted_taint_key(status: str) -> str | None:
    """The taint key a Ready status calls for (None when Ready)."""
    return {"True": None, "False": NOT_READY}.get(status, UNREACHABLE)


def zone_state(ready: int, not_ready: int, threshold: float) -> str:
    if ready == 0 and not_ready > 0:
        return FULL
    if not_ready > 2 and not_ready / (ready + not_ready) >= threshold:
        return PARTIAL
    return NORMAL


class NodeLifecycleController(Controller):
    name = "nodelifecycle"
    event_source = "node-controller"
    default_workers = 4

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        self.monitor_period = float(getattr(opts, "node_monitor_period", 5.0))
        self.grace_period = float(getattr(opts, "node_monitor_grace_period", 40.0))
        self.startup_grace_period = float(getattr(opts, "node_startup_grace_period", 60.0))
        self.eviction_rate = float(getattr(opts, "node_eviction_rate", 0.1))
        self.secondary_eviction_rate = float(getattr(opts, "secondary_node_eviction_rate", 0.01))
        self.unhealthy_threshold = float(getattr(opts, "unhealthy_zone_threshold", 0.55))
        self.large_cluster = int(getattr(opts, "large_cluster_size_threshold", 50))
        nodes = ctx.informers.informer_for(Node)
        leases = ctx.informers.informer_for(coordination_pb2.Lease)
        pods = ctx.informers.informer_for(Pod)
        with contextlib.suppress(ValueError):  # another controller indexed pods by node already
            pods.add_indexers({"spec.nodeName": lambda p: [p.spec.nodeName] if p.spec.nodeName else []})
        self.nodes = nodes.lister()
        self.leases = leases.lister()
        self.pods = pods.lister()
        nodes.add_event_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new),
                                on_delete=self.enqueue)
        leases.add_event_handler(on_add=self._lease_changed, on_update=lambda _old, new: self._lease_changed(new))
        self._health: dict[str, NodeHealth] = {}
        self._zone_states: dict[str, str] = {}
        self._buckets: dict[str, tuple[float, TokenBucket]] = {}
        self._all_down = False
        #: Nodes whose pods still have to be marked not ready (survives a failed try).
        self._pods_to_mark: set[str] = set()

    @classmethod
    def add_flags(cls, parser: argparse.ArgumentParser) -> None:
        g = parser.add_argument_group("node lifecycle controller")
        g.add_argument("--node-monitor-period", type=float, default=5.0, metavar="SECONDS",
                       help="how often every node's health is checked (default %(default)s)")
        g.add_argument("--node-monitor-grace-period", type=float, default=40.0, metavar="SECONDS",
                       help="how long a node may go without renewing its Lease or posting status before it "
                            "is marked Unknown (default %(default)s)")
        g.add_argument("--node-startup-grace-period", type=float, default=60.0, metavar="SECONDS",
                       help="the same for a node that never posted a Ready condition (default %(default)s)")
        g.add_argument("--node-eviction-rate", type=float, default=0.1, metavar="NODES_PER_SECOND",
                       help="how many nodes per second get NoExecute taints in a healthy zone "
                            "(default %(default)s)")
        g.add_argument("--secondary-node-eviction-rate", type=float, default=0.01, metavar="NODES_PER_SECOND",
                       help="the same in a zone that is partly down (default %(default)s)")
        g.add_argument("--unhealthy-zone-threshold", type=float, default=0.55, metavar="FRACTION",
                       help="the fraction of a zone's nodes that must be down for it to count as partly "
                            "down (default %(default)s)")
        g.add_argument("--large-cluster-size-threshold", type=int, default=50, metavar="NODES",
                       help="a partly-down zone this big or smaller gets no evictions at all "
                            "(default %(default)s)")

    def _lease_changed(self, lease: coordination_pb2.Lease) -> None:
        if lease.metadata.namespace == LEASE_NAMESPACE:
            self.queue.add(lease.metadata.name)

    # ------------------------------------------------------------ monitor

    def periodic(self) -> list[tuple[float, Callable[[], None], bool]]:
        return [(self.monitor_period, self.monitor, True)]

    def monitor(self) -> None:
        """Judge the zones, and look at every node again."""
        self.update_zones()
        for node in self.nodes.list():
            self.enqueue(node)

    def update_zones(self) -> None:
        """Recompute each zone's state from the cache. A node counts as
        down if it says so or has been silent past its grace period (its
        condition may not have been updated yet), so that nodes falling
        silent together are judged together."""
        counts: dict[str, list[int]] = {}
        now = self.clock.monotonic()
        for node in self.nodes.list():
            health = self._observe(node)
            up = ready_status(node) == "True" and now - health.probe <= self._grace(node)
            counts.setdefault(zone_of(node), [0, 0])[0 if up else 1] += 1
        states = {zone: zone_state(r, d, self.unhealthy_threshold) for zone, (r, d) in counts.items()}
        all_down = bool(states) and all(s == FULL for s in states.values())
        if all_down != self._all_down:
            log.warning("nodelifecycle: %s", "every node in every zone is down: no evictions until some come back"
                        if all_down else "some nodes are back: evictions resume")
        for zone, state in states.items():
            if self._zone_states.get(zone) != state:
                log.info("nodelifecycle: zone %r is now %s", zone, state)
        self._zone_states, self._all_down = states, all_down

    def _zone_rate(self, zone: str) -> float:
        state = self._zone_states.get(zone, NORMAL)
        if self._all_down:
            return 0.0
        if state == PARTIAL:
            size = sum(1 for n in self.nodes.list() if zone_of(n) == zone)
            return self.secondary_eviction_rate if size > self.large_cluster else 0.0
        return self.eviction_rate

    def _bucket(self, zone: str) -> TokenBucket | None:
        rate = self._zone_rate(zone)
        if rate <= 0:
            return None
        held = self._buckets.get(zone)
        if held is None or held[0] != rate:
            held = self._buckets[zone] = (rate, TokenBucket(rate, 1, self.clock))
        return held[1]

    # ------------------------------------------------------------ sync

    def _observe(self, node: Node) -> NodeHealth:
        """Update when the node was last heard from: its Lease's renewTime
        or its Ready heartbeat changing, as seen on our clock."""
        name = node.metadata.name
        now = self.clock.monotonic()
        ready = condition(node, "Ready")
        heartbeat = ready.lastHeartbeatTime if ready is not None else ""
        try:
            lease = self.leases.get(LEASE_NAMESPACE, name)
            renew = lease.spec.renewTime
        except StatusError:
            renew = ""
        health = self._health.get(name)
        if health is None:
            # A node that never posted Ready counts from its creation; one
            # seen for the first time with a Ready condition from now.
            probe = now
            if ready is None and node.metadata.creationTimestamp:
                probe = now - max(0.0, self.clock.now() - parse_time(node.metadata.creationTimestamp))
            health = self._health[name] = NodeHealth(probe, renew, heartbeat)
            return health
        if renew != health.lease_renew or heartbeat != health.heartbeat:
            if renew or heartbeat:
                health.probe = now
            health.lease_renew, health.heartbeat = renew, heartbeat
        return health

    async def sync(self, key: str) -> None:
        try:
            node = self.nodes.get("", key)
        except StatusError as err:
            if err.reason != "NotFound":
                raise
            self._health.pop(key, None)
            self._pods_to_mark.discard(key)
            return
        health = self._observe(node)
        before = ready_status(node)
        grace = self._grace(node)
        silent_for = self.clock.monotonic() - health.probe
        if silent_for > grace:
            node = await self._mark_unknown(node)
        after = ready_status(node)
        if before == "True" and after != "True":
            self.recorder.event(node, "Normal", "NodeNotReady", f"Node {key} status is now: NodeNotReady")
            self._pods_to_mark.add(key)
        if key in self._pods_to_mark:
            if after == "True":
                self._pods_to_mark.discard(key)
            else:
                await self._mark_pods_not_ready(key)
                self._pods_to_mark.discard(key)
        if after != "True":
            self.update_zones()
        await self._reconcile_taints(node)
        if after == "True":
            # Check again when the grace period would run out.
            self.queue.add_after(key, max(0.0, grace - silent_for) + 0.1)

    def _grace(self, node: Node) -> float:
        return self.grace_period if condition(node, "Ready") is not None else self.startup_grace_period

    async def _mark_unknown(self, node: Node) -> Node:
        """Every kubelet condition Unknown, as a silent kubelet leaves them."""
        now = rfc3339(self.clock.now())
        new = Node()
        new.CopyFrom(node)
        changed = False
        if condition(new, "Ready") is None:
            new.status.conditions.add(type="Ready", status="Unknown", reason="NodeStatusNeverUpdated",
                                      message="Kubelet never posted node status.", lastHeartbeatTime="",
                                      lastTransitionTime=now)
            changed = True
        for cond in new.status.conditions:
            if cond.type in KUBELET_CONDITIONS and cond.status != "Unknown":
                cond.status = "Unknown"
                cond.reason = "NodeStatusUnknown"
                cond.message = "Kubelet stopped posting node status."
                cond.lastTransitionTime = now
                changed = True
        if not changed:
            return node
        log.info("nodelifecycle: node %s stopped posting status: conditions now Unknown", node.metadata.name)
        return await self.clientset.resource(Node).update_status(new)

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        now = rfc3339(self.clock.now())
        for pod in self.pods.by_index("spec.nodeName", node_name):
            if pod.status.phase in ("Succeeded", "Failed"):
                continue
            ready = next((c for c in pod.status.conditions if c.type == "Ready"), None)
            if ready is None or ready.status != "True":
                continue
            new = Pod()
            new.CopyFrom(pod)
            for cond in new.status.conditions:
                if cond.type in ("Ready", "ContainersReady"):
                    cond.status = "False"
                    cond.lastTransitionTime = now
            try:
                await self.clientset.resource(Pod, pod.metadata.namespace).update_status(new)
            except StatusError as err:
                if err.reason != "NotFound":
                    raise

    async def _reconcile_taints(self, node: Node) -> None:
        wanted = wanted_taint_key(ready_status(node))
        taints = list(node.spec.taints)
        ours = [t for t in taints if t.key in (NOT_READY, UNREACHABLE)]
        others = [t for t in taints if t.key not in (NOT_READY, UNREACHABLE)]
        keep = [t for t in ours if t.key == wanted]
        have_noschedule = any(t.effect == "NoSchedule" for t in keep)
        have_noexecute = any(t.effect == "NoExecute" for t in keep)
        now = rfc3339(self.clock.now())
        if wanted is not None and not have_noschedule:
            keep.append(core_pb2.Taint(key=wanted, effect="NoSchedule"))
        if wanted is not None and self._all_down:
            keep = [t for t in keep if t.effect != "NoExecute"]  # our own connectivity is suspect
        elif wanted is not None and not have_noexecute:
            swapping = any(t.effect == "NoExecute" for t in ours)  # not-ready <-> unreachable
            if swapping or self._take_token(node):
                keep.append(core_pb2.Taint(key=wanted, effect="NoExecute", timeAdded=now))
        if sorted(t.SerializeToString(deterministic=True) for t in keep) == \
                sorted(t.SerializeToString(deterministic=True) for t in ours):
            return
        new = Node()
        new.CopyFrom(node)
        del new.spec.taints[:]
        new.spec.taints.extend(others + keep)
        await self.clientset.resource(Node).update(new)
        added = [t for t in keep if t not in ours]
        if any(t.effect == "NoExecute" for t in added):
            log.info("nodelifecycle: node %s tainted %s:NoExecute", node.metadata.name, wanted)

    def _take_token(self, node: Node) -> bool:
        """May this node get its NoExecute taint now? If not, it is queued
        again for when its zone may taint another node."""
        bucket = self._bucket(zone_of(node))
        if bucket is None:
            self.queue.add_after(node.metadata.name, self.monitor_period)
            return False
        if bucket.try_accept():
            return True
        self.queue.add_after(node.metadata.name, max(0.05, (1 - bucket.tokens) / bucket.qps))
        return False
