"""The extension points a plugin may implement, and what it may reach.

A plugin is a class with a `NAME` that subclasses the extension points it
implements, exactly as a Kubernetes plugin implements the Go interfaces
(FilterPlugin, ScorePlugin, ...). Its constructor is its factory: it gets
its `args` (the profile's pluginConfig entry for it, a mapping) and the
`Handle`, through which it reaches the snapshot, the clientset, informers,
the event recorder and the other plugins (preemption runs the filters).

The points, in the order a cycle reaches them:

    PreEnqueue   may this pod enter the active queue at all (gates)?
    QueueSort    which waiting pod goes first?
    PreFilter    once per pod: compute state, or reject the pod outright
    Filter       per node: can the pod go here?
    PostFilter   only if no node passed: make room (preemption)
    PreScore     once per pod, over the nodes that passed
    Score        per node: how good is it (0..100), then NormalizeScore
    Reserve      the node is chosen: claim what the pod needs
    PreBind/Bind/PostBind   in the background: make it so in the apiserver

Everything up to Reserve is synchronous, by design (see Snapshot); binding
is a coroutine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ._nodeinfo import NodeInfo
from ._podinfo import PodInfo, QueuedPodInfo
from ._status import ClusterEvent, CycleState, Status

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from api import Selector
    from client import Clientset, EventRecorder, Lister, SharedInformerFactory

MAX_NODE_SCORE = 100


@dataclass
class NodeCounts:
    """How many nodes have a property that some filter or score turns on;
    at 0 the plugin can skip the pod (every node would pass, or score
    alike)."""

    hard_taints: int = 0  # a NoSchedule or NoExecute taint
    prefer_no_schedule_taints: int = 0
    unschedulable: int = 0


class SharedLister(Protocol):
    """What a cycle may read of the cluster (the cache's Snapshot)."""

    node_infos: list[NodeInfo]

    def __len__(self) -> int: ...

    def get(self, name: str) -> NodeInfo | None: ...

    def pods_matching(self, selector: Selector) -> Iterable[PodInfo]: ...

    def namespace_labels(self, name: str) -> Mapping[str, str]: ...

    def affinity_pods(self) -> Iterable[PodInfo]: ...

    def anti_affinity_pods(self) -> Iterable[PodInfo]: ...

    def image_num_nodes(self, image: str) -> int: ...

    def node_counts(self) -> NodeCounts: ...

    def claim_users(self, namespace: str, claim: str) -> int: ...


class PodNominator(Protocol):
    """Pods that preemption has promised a node (status.nominatedNodeName)."""

    def nominated_pods_for_node(self, node: str) -> list[PodInfo]: ...

    def add_nominated_pod(self, pi: PodInfo, node: str) -> None: ...

    def delete_nominated_pod(self, pi: PodInfo) -> None: ...

    def has_nominations(self) -> bool: ...


class Handle(Protocol):
    """What the framework offers plugins (Kubernetes' framework.Handle)."""

    profile_name: str
    clientset: Clientset | None
    informer_factory: SharedInformerFactory | None
    recorder: EventRecorder | None
    nominator: PodNominator

    @property
    def snapshot(self) -> SharedLister: ...

    def lister(self, kind: type[Message]) -> Lister[Any]: ...

    def run_filters_with_nominated_pods(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None: ...

    def run_pre_filter_add_pod(self, state: CycleState, pod: PodInfo, added: PodInfo,
                               node: NodeInfo) -> Status | None: ...

    def run_pre_filter_remove_pod(self, state: CycleState, pod: PodInfo, removed: PodInfo,
                                  node: NodeInfo) -> Status | None: ...


class Plugin:
    NAME: ClassVar[str] = ""

    def __init__(self, args: Mapping[str, Any], handle: Handle) -> None:
        self.args = args
        self.handle = handle

    @property
    def name(self) -> str:
        return self.NAME


class EnqueueExtensions:
    """A plugin that can reject pods says which cluster events might make
    such a pod schedulable, so the queue retries it when one happens."""

    def events_to_register(self) -> list[ClusterEvent]:
        raise NotImplementedError


class QueueSortPlugin(Plugin):
    def sort_key(self, qpi: QueuedPodInfo) -> tuple[Any, ...]:
        """Smaller keys are scheduled first."""
        raise NotImplementedError


class PreEnqueuePlugin(Plugin):
    def pre_enqueue(self, pod: PodInfo) -> Status | None:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class PreFilterResult:
    """A PreFilter may narrow the nodes worth filtering (None: all)."""

    node_names: frozenset[str] | None = None


class PreFilterExtensions(Protocol):
    """Keeps a PreFilter's state right when preemption adds or removes pods
    in its what-if (and when nominated pods are counted)."""

    def add_pod(self, state: CycleState, pod: PodInfo, added: PodInfo, node: NodeInfo) -> Status | None: ...

    def remove_pod(self, state: CycleState, pod: PodInfo, removed: PodInfo, node: NodeInfo) -> Status | None: ...


class PreFilterPlugin(Plugin):
    def pre_filter(self, state: CycleState, pod: PodInfo) -> PreFilterResult | Status | None:
        raise NotImplementedError

    def pre_filter_extensions(self) -> PreFilterExtensions | None:
        return None


class FilterPlugin(Plugin):
    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class PostFilterResult:
    nominated_node_name: str = ""


class PostFilterPlugin(Plugin):
    async def post_filter(self, state: CycleState, pod: PodInfo,
                          statuses: Mapping[str, Status]) -> tuple[PostFilterResult | None, Status]:
        raise NotImplementedError


class PreScorePlugin(Plugin):
    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        raise NotImplementedError


class ScorePlugin(Plugin):
    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        """0..MAX_NODE_SCORE, or any integer if the plugin normalizes."""
        raise NotImplementedError

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        """`score` for each node, in order. A plugin on the hot path may
        override this with one loop, saving a call per node (Kubernetes
        gets the same effect by scoring nodes in parallel goroutines)."""
        score = self.score
        return [score(state, pod, n) for n in nodes]

    def normalize_scores(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        """Rescale `scores` (one per node, in order) to 0..MAX_NODE_SCORE in
        place; the default keeps them."""


class ReservePlugin(Plugin):
    def reserve(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        raise NotImplementedError

    def unreserve(self, state: CycleState, pod: PodInfo, node: str) -> None:
        raise NotImplementedError


class PreBindPlugin(Plugin):
    async def pre_bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        raise NotImplementedError


class BindPlugin(Plugin):
    async def bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        """Bind, or return SKIP to let the next bind plugin do it."""
        raise NotImplementedError


class PostBindPlugin(Plugin):
    def post_bind(self, state: CycleState, pod: PodInfo, node: str) -> None:
        raise NotImplementedError


# extension point name (as in the configuration file) -> the class a plugin must subclass
EXTENSION_POINTS: dict[str, type[Plugin]] = {
    "preEnqueue": PreEnqueuePlugin,
    "queueSort": QueueSortPlugin,
    "preFilter": PreFilterPlugin,
    "filter": FilterPlugin,
    "postFilter": PostFilterPlugin,
    "preScore": PreScorePlugin,
    "score": ScorePlugin,
    "reserve": ReservePlugin,
    "preBind": PreBindPlugin,
    "bind": BindPlugin,
    "postBind": PostBindPlugin,
}
