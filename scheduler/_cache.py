"""The scheduler's cache: nodes and the pods on them, including pods the
scheduler has decided to place but whose binding has not landed yet.

The informers feed it every node and every assigned pod. Between choosing
a node for a pod and the apiserver confirming the binding there is a gap
of a few milliseconds to seconds; if the cache did not count the pod on its
node during that gap, the next cycles would see the room it takes as free
and overcommit the node. So the scheduler *assumes* the pod onto the node
(counts it at once), binds in the background, and then either the
informer's event for the bound pod *confirms* it, or a failed bind makes
the scheduler *forget* it (the room is given back and the pod requeued).

Besides the per-node totals (see NodeInfo) the cache keeps what affinity
and spreading ask across nodes: an index of assigned pods by label
(key=value), the pods that carry affinity terms, how many nodes hold each
image, and the namespaces' labels (for namespaceSelector). All of it is
updated incrementally, per event.

Snapshot is what a cycle reads. Every change to the cache happens in an
informer handler or in the scheduler between cycles, and a cycle's
filtering, scoring and reserving never await, so nothing can change
under a cycle: the snapshot is a consistent view without copying, and
only the node list (in zone-interleaved order, the order nodes are tried)
is rebuilt, when nodes come or go.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator, Mapping

from api import Selector
from proto import core_pb2

from .framework import REGION_LABEL, ZONE_LABEL, NodeCounts, NodeInfo, PodInfo

log = logging.getLogger(__name__)

_EQUALITY = ("=", "==", "in")


@dataclasses.dataclass(slots=True)
class _PodState:
    info: PodInfo
    node: str
    assumed: bool = False
    binding_finished: bool = False


class Cache:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self._pods: dict[str, _PodState] = {}
        self._by_label: dict[tuple[str, str], dict[str, PodInfo]] = {}
        self._by_label_key: dict[str, dict[str, PodInfo]] = {}
        self.affinity_pods: dict[str, PodInfo] = {}
        self.anti_affinity_pods: dict[str, PodInfo] = {}
        self._image_nodes: dict[str, int] = {}
        self.namespace_labels: dict[str, dict[str, str]] = {}
        self._claim_users: dict[tuple[str, str], int] = {}
        self.node_counts = NodeCounts()
        # bumped whenever the node list or its zone order changes
        self.node_set_generation = 0

    # ------------------------------------------------------------ nodes

    def add_node(self, node: core_pb2.Node) -> NodeInfo:
        name = node.metadata.name
        ni = self.nodes.get(name)
        if ni is None:
            ni = self.nodes[name] = NodeInfo(name)
        old_zone = _zone(ni.labels) if ni.node is not None else None
        had_node = ni.node is not None
        self._node_facts(ni, -1)
        ni.set_node(node)
        self._node_facts(ni, 1)
        if not had_node or old_zone != _zone(ni.labels):
            self.node_set_generation += 1
        return ni

    update_node = add_node

    def remove_node(self, name: str) -> None:
        ni = self.nodes.get(name)
        if ni is None or ni.node is None:
            return
        self._node_facts(ni, -1)
        ni.node = None
        if not ni.pods:
            del self.nodes[name]
        # else: keep the pods' accounting until their deletions arrive
        self.node_set_generation += 1

    def _node_facts(self, ni: NodeInfo, sign: int) -> None:
        if ni.node is None:
            return
        for image in ni.images:
            self._image_nodes[image] = self._image_nodes.get(image, 0) + sign
            if self._image_nodes[image] <= 0:
                del self._image_nodes[image]
        counts = self.node_counts
        if any(t.effect == "PreferNoSchedule" for t in ni.taints):
            counts.prefer_no_schedule_taints += sign
        if any(t.effect in ("NoSchedule", "NoExecute") for t in ni.taints):
            counts.hard_taints += sign
        if ni.unschedulable:
            counts.unschedulable += sign

    def image_num_nodes(self, image: str) -> int:
        return self._image_nodes.get(image, 0)

    # ------------------------------------------------------------ namespaces

    def set_namespace(self, ns: core_pb2.Namespace) -> None:
        self.namespace_labels[ns.metadata.name] = dict(ns.metadata.labels)

    def remove_namespace(self, name: str) -> None:
        self.namespace_labels.pop(name, None)

    def labels_of_namespace(self, name: str) -> Mapping[str, str]:
        return self.namespace_labels.get(name, {})

    # ------------------------------------------------------------ pods: the scheduler's side

    def assume_pod(self, pi: PodInfo, node: str) -> PodInfo:
        """Count `pi` on `node` before its binding is confirmed; returns the
        assumed PodInfo (nodeName set)."""
        if pi.uid in self._pods:
            raise KeyError(f"pod {pi.key} is already in the cache, so it cannot be assumed")
        assumed = dataclasses.replace(pi, node_name=node)
        self._pods[pi.uid] = _PodState(assumed, node, assumed=True)
        self._place(assumed, node)
        return assumed

    def finish_binding(self, uid: str) -> None:
        state = self._pods.get(uid)
        if state is not None and state.assumed:
            state.binding_finished = True

    def forget_pod(self, uid: str) -> None:
        """Undo assume_pod after a failed bind (or reserve)."""
        state = self._pods.get(uid)
        if state is None or not state.assumed:
            return
        del self._pods[uid]
        self._unplace(state.info, state.node)

    def is_assumed(self, uid: str) -> bool:
        state = self._pods.get(uid)
        return state is not None and state.assumed

    def assumed_count(self) -> int:
        return sum(1 for s in list(self._pods.values()) if s.assumed)  # list(): also read by /metrics' thread

    # ------------------------------------------------------------ pods: the informer's side

    def add_pod(self, pi: PodInfo) -> None:
        """An assigned pod appeared (or an assumed one was confirmed)."""
        state = self._pods.get(pi.uid)
        if state is not None:
            if state.assumed and state.node == pi.node_name:
                # the binding landed: keep the accounting, switch to the real pod
                self._swap_info(state, pi)
                state.assumed = False
                return
            self._unplace(state.info, state.node)
        self._pods[pi.uid] = _PodState(pi, pi.node_name)
        self._place(pi, pi.node_name)

    def update_pod(self, pi: PodInfo) -> None:
        state = self._pods.get(pi.uid)
        if state is None or state.node != pi.node_name:
            self.add_pod(pi)
            return
        state.assumed = False
        self._swap_info(state, pi)

    def remove_pod(self, uid: str) -> None:
        state = self._pods.pop(uid, None)
        if state is not None:
            self._unplace(state.info, state.node)

    def get_pod(self, uid: str) -> PodInfo | None:
        state = self._pods.get(uid)
        return state.info if state is not None else None

    def pod_count(self) -> int:
        return len(self._pods)

    def sizes(self) -> dict[str, int]:
        assumed = self.assumed_count()
        return {"nodes": sum(1 for n in list(self.nodes.values()) if n.node is not None),
                "pods": len(self._pods) - assumed, "assumed_pods": assumed}

    # ------------------------------------------------------------ queries

    def pods_matching(self, selector: Selector) -> Iterable[PodInfo]:
        """Candidate pods for `selector`, narrowed by the label index (the
        caller still checks the selector and the namespace)."""
        if selector.match_nothing:
            return ()
        best: dict[str, PodInfo] | None = None
        for req in selector.requirements:
            if req.operator in _EQUALITY:
                found: dict[str, PodInfo] = {}
                for value in req.values:
                    found.update(self._by_label.get((req.key, value), {}))
                candidates = found
            elif req.operator == "exists":
                candidates = self._by_label_key.get(req.key, {})
            else:
                continue
            if best is None or len(candidates) < len(best):
                best = candidates
        if best is None:
            return (s.info for s in list(self._pods.values()))
        return list(best.values())

    def claim_users(self, namespace: str, claim: str) -> int:
        """How many assigned pods use the PersistentVolumeClaim."""
        return self._claim_users.get((namespace, claim), 0)

    def all_pods(self) -> Iterator[PodInfo]:
        return (s.info for s in self._pods.values())

    # ------------------------------------------------------------ internals

    def _swap_info(self, state: _PodState, pi: PodInfo) -> None:
        old = state.info
        if old is pi:
            return
        ni = self.nodes.get(state.node)
        if ni is not None:
            ni.remove_pod(old)
            ni.add_pod(pi)
        self._unindex(old)
        self._index(pi)
        state.info = pi

    def _place(self, pi: PodInfo, node: str) -> None:
        ni = self.nodes.get(node)
        if ni is None:
            ni = self.nodes[node] = NodeInfo(node)  # the node object may arrive later
        ni.add_pod(pi)
        self._index(pi)

    def _unplace(self, pi: PodInfo, node: str) -> None:
        ni = self.nodes.get(node)
        if ni is not None:
            ni.remove_pod(pi)
            if ni.node is None and not ni.pods:
                del self.nodes[node]
        self._unindex(pi)

    def _index(self, pi: PodInfo) -> None:
        uid = pi.uid
        for kv in pi.labels.items():
            bucket = self._by_label.get(kv)
            if bucket is None:
                bucket = self._by_label[kv] = {}
            bucket[uid] = pi
            keyed = self._by_label_key.get(kv[0])
            if keyed is None:
                keyed = self._by_label_key[kv[0]] = {}
            keyed[uid] = pi
        if pi.has_affinity:
            self.affinity_pods[uid] = pi
        if pi.required_anti_affinity:
            self.anti_affinity_pods[uid] = pi
        for claim in pi.claims:
            key = (pi.namespace, claim)
            self._claim_users[key] = self._claim_users.get(key, 0) + 1

    def _unindex(self, pi: PodInfo) -> None:
        uid = pi.uid
        for kv in pi.labels.items():
            bucket = self._by_label.get(kv)
            if bucket is not None and bucket.get(uid) is pi:
                del bucket[uid]
                if not bucket:
                    del self._by_label[kv]
            keyed = self._by_label_key.get(kv[0])
            if keyed is not None and keyed.get(uid) is pi:
                del keyed[uid]
                if not keyed:
                    del self._by_label_key[kv[0]]
        if self.affinity_pods.get(uid) is pi:
            del self.affinity_pods[uid]
        if self.anti_affinity_pods.get(uid) is pi:
            del self.anti_affinity_pods[uid]
        for claim in pi.claims:
            key = (pi.namespace, claim)
            left = self._claim_users.get(key, 0) - 1
            if left > 0:
                self._claim_users[key] = left
            else:
                self._claim_users.pop(key, None)


def _zone(labels: Mapping[str, str]) -> str:
    return f"{labels.get(REGION_LABEL, '')}:{labels.get(ZONE_LABEL, '')}"


class Snapshot:
    """The view of the cache one cycle reads (see the module docstring)."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.node_infos: list[NodeInfo] = []
        self._generation = -1

    def update(self) -> None:
        cache = self.cache
        if cache.node_set_generation == self._generation:
            return
        zones: dict[str, list[NodeInfo]] = {}
        for ni in cache.nodes.values():
            if ni.node is not None:
                zones.setdefault(_zone(ni.labels), []).append(ni)
        ordered: list[NodeInfo] = []
        columns = [sorted(nodes, key=lambda n: n.name) for _, nodes in sorted(zones.items())]
        for i in range(max((len(c) for c in columns), default=0)):
            ordered.extend(c[i] for c in columns if i < len(c))
        self.node_infos = ordered
        self._generation = cache.node_set_generation

    def __len__(self) -> int:
        return len(self.node_infos)

    def get(self, name: str) -> NodeInfo | None:
        ni = self.cache.nodes.get(name)
        return ni if ni is not None and ni.node is not None else None

    def pods_matching(self, selector: Selector) -> Iterable[PodInfo]:
        return self.cache.pods_matching(selector)

    def namespace_labels(self, name: str) -> Mapping[str, str]:
        return self.cache.labels_of_namespace(name)

    def affinity_pods(self) -> Iterable[PodInfo]:
        return self.cache.affinity_pods.values()

    def anti_affinity_pods(self) -> Iterable[PodInfo]:
        return self.cache.anti_affinity_pods.values()

    def image_num_nodes(self, image: str) -> int:
        return self.cache.image_num_nodes(image)

    def node_counts(self) -> NodeCounts:
        return self.cache.node_counts

    def claim_users(self, namespace: str, claim: str) -> int:
        return self.cache.claim_users(namespace, claim)
