"""The framework runtime: one profile's plugins, run extension point by
extension point.

A Profile (from the configuration file) names, for each extension point,
the plugins to run in order, the score weights and the plugins' args. The
Framework builds each named plugin once through the registry (name ->
factory) and keeps, per extension point, the instances in order; there is
no code here that knows any plugin by name.

The Framework is also the plugins' Handle: preemption asks it to run the
filters for a what-if node, and plugins reach the snapshot, the client and
the informers through it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ._interface import (
    EXTENSION_POINTS,
    BindPlugin,
    EnqueueExtensions,
    FilterPlugin,
    Handle,
    Plugin,
    PodNominator,
    PostBindPlugin,
    PostFilterPlugin,
    PostFilterResult,
    PreBindPlugin,
    PreEnqueuePlugin,
    PreFilterPlugin,
    PreFilterResult,
    PreScorePlugin,
    QueueSortPlugin,
    ReservePlugin,
    ScorePlugin,
    SharedLister,
)
from ._nodeinfo import NodeInfo
from ._podinfo import PodInfo, QueuedPodInfo
from ._status import SKIP, ClusterEvent, Code, CycleState, Status, error, unschedulable

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from client import Clientset, EventRecorder, Lister, SharedInformerFactory

log = logging.getLogger(__name__)

Factory = Callable[[Mapping[str, Any], Handle], Plugin]
Registry = Mapping[str, Factory]
P = TypeVar("P", bound=Plugin)


@dataclass
class Profile:
    """A resolved scheduling profile."""

    scheduler_name: str
    plugins: dict[str, list[str]]  # extension point -> plugin names, in order
    weights: dict[str, int] = field(default_factory=dict)  # score plugin -> weight
    plugin_args: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    percentage_of_nodes_to_score: int | None = None


class _NoNominations:
    def nominated_pods_for_node(self, node: str) -> list[PodInfo]:
        return []

    def add_nominated_pod(self, pi: PodInfo, node: str) -> None:
        pass

    def delete_nominated_pod(self, pi: PodInfo) -> None:
        pass

    def has_nominations(self) -> bool:
        return False


class Framework:
    def __init__(self, profile: Profile, registry: Registry, *, snapshot: SharedLister,
                 clientset: Clientset | None = None, informer_factory: SharedInformerFactory | None = None,
                 recorder: EventRecorder | None = None, nominator: PodNominator | None = None,
                 listers: Mapping[type[Message], Lister[Any]] | None = None) -> None:
        self.profile = profile
        self.profile_name = profile.scheduler_name
        self._snapshot = snapshot
        self.clientset = clientset
        self.informer_factory = informer_factory
        self.recorder = recorder
        self.nominator: PodNominator = nominator or _NoNominations()
        self._listers = dict(listers or {})
        self.plugins: dict[str, Plugin] = {}
        for point, names in profile.plugins.items():
            if point not in EXTENSION_POINTS:
                raise ValueError(f"unknown extension point {point!r}")
            for name in names:
                if name not in self.plugins:
                    factory = registry.get(name)
                    if factory is None:
                        raise ValueError(f"plugin {name!r} does not exist")
                    self.plugins[name] = factory(profile.plugin_args.get(name, {}), self)
                if not isinstance(self.plugins[name], EXTENSION_POINTS[point]):
                    raise ValueError(f"plugin {name!r} does not extend {point} plugin")
        self.pre_enqueue = self._at("preEnqueue", PreEnqueuePlugin)
        sorts = self._at("queueSort", QueueSortPlugin)
        if len(sorts) != 1:
            raise ValueError(f"profile {self.profile_name!r}: exactly one queueSort plugin must be enabled, "
                             f"not {len(sorts)}")
        self.queue_sort = sorts[0]
        self.pre_filter = self._at("preFilter", PreFilterPlugin)
        self.filter = self._at("filter", FilterPlugin)
        self.post_filter = self._at("postFilter", PostFilterPlugin)
        self.pre_score = self._at("preScore", PreScorePlugin)
        self.score = self._at("score", ScorePlugin)
        self.weights = {p.name: profile.weights.get(p.name, 1) for p in self.score}
        self.reserve = self._at("reserve", ReservePlugin)
        self.pre_bind = self._at("preBind", PreBindPlugin)
        self.bind = self._at("bind", BindPlugin)
        if not self.bind:
            raise ValueError(f"profile {self.profile_name!r}: at least one bind plugin must be enabled")
        self.post_bind = self._at("postBind", PostBindPlugin)

    def _at(self, point: str, kind: type[P]) -> list[P]:
        out = []
        for name in self.profile.plugins.get(point, []):
            plugin = self.plugins[name]
            assert isinstance(plugin, kind)
            out.append(plugin)
        return out

    # ------------------------------------------------------------ Handle

    @property
    def snapshot(self) -> SharedLister:
        return self._snapshot

    def lister(self, kind: type[Message]) -> Lister[Any]:
        """The informer cache's lister for a kind (PVCs, PVs, PDBs, ...);
        tests hand in listers over indexers they fill themselves."""
        found = self._listers.get(kind)
        if found is None:
            if self.informer_factory is None:
                raise LookupError(f"no lister for {kind.__name__}: the framework has no informer factory")
            found = self._listers[kind] = self.informer_factory.lister_for(kind)
        return found

    def events_to_register(self) -> dict[str, list[ClusterEvent]]:
        return {name: p.events_to_register() for name, p in self.plugins.items() if isinstance(p, EnqueueExtensions)}

    # ------------------------------------------------------------ queueing

    def queue_sort_key(self, qpi: QueuedPodInfo) -> tuple[Any, ...]:
        return self.queue_sort.sort_key(qpi)

    def run_pre_enqueue(self, pod: PodInfo) -> Status | None:
        for p in self.pre_enqueue:
            status = p.pre_enqueue(pod)
            if status is not None and not status.is_success():
                return status.with_plugin(p.name)
        return None

    # ------------------------------------------------------------ filtering

    def run_pre_filter(self, state: CycleState, pod: PodInfo) -> tuple[frozenset[str] | None, Status | None]:
        """Every PreFilter; returns the node names to consider (None: all) and
        a rejecting status (with its plugin) if the pod cannot go anywhere."""
        names: frozenset[str] | None = None
        for p in self.pre_filter:
            result = p.pre_filter(state, pod)
            if isinstance(result, Status):
                if result.code == Code.SKIP:
                    state.skip_filter.add(p.name)
                    continue
                if not result.is_success():
                    return None, result.with_plugin(p.name)
            elif isinstance(result, PreFilterResult) and result.node_names is not None:
                names = result.node_names if names is None else names & result.node_names
                if not names:
                    return names, unschedulable(
                        "node(s) didn't satisfy plugin(s) [" + p.name + "] simultaneously").with_plugin(p.name)
        return names, None

    def active_filters(self, state: CycleState) -> list[FilterPlugin]:
        skip = state.skip_filter
        return [p for p in self.filter if p.name not in skip] if skip else list(self.filter)

    def run_filters(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        for p in self.active_filters(state):
            status = p.filter(state, pod, node)
            if status is not None:
                return status.with_plugin(p.name)
        return None

    def run_filters_with_nominated_pods(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        """Filters with the pods nominated to this node (of at least this
        pod's priority) counted as if already there, and then without them:
        a node must fit both ways (Kubernetes' two-pass check)."""
        nominated = [p for p in self.nominator.nominated_pods_for_node(node.name)
                     if p.uid != pod.uid and p.priority >= pod.priority]
        if not nominated:
            return self.run_filters(state, pod, node)
        with_state, with_node = state.clone(), node.clone()
        for p in nominated:
            with_node.add_pod(p)
            status = self.run_pre_filter_add_pod(with_state, pod, p, with_node)
            if status is not None:
                return status
        status = self.run_filters(with_state, pod, with_node)
        if status is not None:
            return status
        return self.run_filters(state, pod, node)

    def run_pre_filter_add_pod(self, state: CycleState, pod: PodInfo, added: PodInfo,
                               node: NodeInfo) -> Status | None:
        for p in self.pre_filter:
            ext = p.pre_filter_extensions()
            if ext is None or p.name in state.skip_filter:
                continue
            status = ext.add_pod(state, pod, added, node)
            if status is not None and not status.is_success():
                return status.with_plugin(p.name)
        return None

    def run_pre_filter_remove_pod(self, state: CycleState, pod: PodInfo, removed: PodInfo,
                                  node: NodeInfo) -> Status | None:
        for p in self.pre_filter:
            ext = p.pre_filter_extensions()
            if ext is None or p.name in state.skip_filter:
                continue
            status = ext.remove_pod(state, pod, removed, node)
            if status is not None and not status.is_success():
                return status.with_plugin(p.name)
        return None

    async def run_post_filter(self, state: CycleState, pod: PodInfo,
                              statuses: Mapping[str, Status]) -> tuple[PostFilterResult | None, Status]:
        """The first PostFilter that succeeds wins; otherwise the messages of
        all of them, joined."""
        messages: list[str] = []
        result: PostFilterResult | None = None
        for p in self.post_filter:
            r, status = await p.post_filter(state, pod, statuses)
            if status.is_success():
                return r, status
            if status.code not in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE):
                return r, status.with_plugin(p.name)
            if r is not None:
                result = r
            messages.extend(status.reasons)
        return result, Status(Code.UNSCHEDULABLE, tuple(messages))

    # ------------------------------------------------------------ scoring

    def run_pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        for p in self.pre_score:
            status = p.pre_score(state, pod, nodes)
            if status is None:
                continue
            if status.code == Code.SKIP:
                state.skip_score.add(p.name)
            elif not status.is_success():
                return status.with_plugin(p.name)
        return None

    def run_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        """Each node's weighted total over the score plugins."""
        totals: list[int] | None = None
        skip = state.skip_score
        for p in self.score:
            if p.name in skip:
                continue
            scores = p.score_nodes(state, pod, nodes)
            p.normalize_scores(state, pod, scores)
            weight = self.weights[p.name]
            if totals is None:
                totals = scores if weight == 1 else [s * weight for s in scores]
            else:
                totals = [t + s * weight for t, s in zip(totals, scores, strict=True)]
        return totals if totals is not None else [0] * len(nodes)

    # ------------------------------------------------------------ reserving and binding

    def run_reserve(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        for p in self.reserve:
            status = p.reserve(state, pod, node)
            if status is not None and not status.is_success():
                self.run_unreserve(state, pod, node)
                return status.with_plugin(p.name)
        return None

    def run_unreserve(self, state: CycleState, pod: PodInfo, node: str) -> None:
        for p in reversed(self.reserve):
            try:
                p.unreserve(state, pod, node)
            except Exception:
                log.exception("unreserve of plugin %s failed for pod %s", p.name, pod.key)

    async def run_pre_bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        for p in self.pre_bind:
            status = await p.pre_bind(state, pod, node)
            if status is not None and not status.is_success():
                return status.with_plugin(p.name)
        return None

    async def run_bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        for p in self.bind:
            status = await p.bind(state, pod, node)
            if status is SKIP or (status is not None and status.code == Code.SKIP):
                continue
            return status.with_plugin(p.name) if status is not None else None
        return error(f"no bind plugin bound pod {pod.key}")

    def run_post_bind(self, state: CycleState, pod: PodInfo, node: str) -> None:
        for p in self.post_bind:
            try:
                p.post_bind(state, pod, node)
            except Exception:
                log.exception("post-bind of plugin %s failed for pod %s", p.name, pod.key)
