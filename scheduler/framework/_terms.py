"""The selectors and terms pods carry, compiled once for matching many
times: taints and tolerations, node selector terms (required and
preferred node affinity), pod affinity terms and topology spread
constraints.

Each is a small immutable value built from its proto message, with a
`matches` that plugins call per node or per pod. Invalid input that the
apiserver's validation would have refused (an unknown operator, a Gt with
a non-integer) compiles to a term that matches nothing rather than
raising in the middle of a scheduling cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from api import Requirement, Selector, SelectorError, selector_from_message
from proto import core_pb2

if TYPE_CHECKING:
    from ._podinfo import PodInfo

NamespaceLabels = Callable[[str], Mapping[str, str]]


# ---------------------------------------------------------------- taints and tolerations

class Taint(NamedTuple):
    key: str
    value: str
    effect: str

    def __str__(self) -> str:
        # kubectl's and the scheduler's way of naming a taint in messages
        return f"{{{self.key}: {self.value}}}"


class Toleration(NamedTuple):
    key: str
    operator: str
    value: str
    effect: str

    def tolerates(self, taint: Taint) -> bool:
        """v1.Toleration.ToleratesTaint: an empty effect matches every
        effect, an empty key (with Exists) every key."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return self.value == taint.value


def tolerated(tolerations: tuple[Toleration, ...], taint: Taint) -> bool:
    return any(t.tolerates(taint) for t in tolerations)


# ---------------------------------------------------------------- node selectors

_NODE_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!", "Gt": "gt", "Lt": "lt"}


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    """One term: all of its expressions (labels) and fields (metadata.name)
    must match. An empty term matches no node, as in Kubernetes."""

    labels: Selector
    fields: tuple[Requirement, ...]
    empty: bool

    @classmethod
    def parse(cls, term: core_pb2.NodeSelectorTerm) -> NodeSelectorTerm:
        try:
            reqs = tuple(_node_requirement(r) for r in term.matchExpressions)
            fields = tuple(_node_requirement(r) for r in term.matchFields if r.key == "metadata.name")
        except SelectorError:
            return cls(Selector.nothing(), (), True)
        unknown_field = any(r.key != "metadata.name" for r in term.matchFields)
        return cls(Selector(reqs), fields, (not reqs and not fields) or unknown_field)

    def matches(self, labels: Mapping[str, str], name: str) -> bool:
        if self.empty or not self.labels.matches(labels):
            return False
        return all(r.matches({"metadata.name": name}) for r in self.fields)


def _node_requirement(r: core_pb2.NodeSelectorRequirement) -> Requirement:
    op = _NODE_OPERATORS.get(r.operator)
    if op is None:
        raise SelectorError(f"{r.operator!r} is not a valid node selector operator")
    if op in ("gt", "lt") and (len(r.values) != 1 or not r.values[0].lstrip("-").isdigit()):
        raise SelectorError(f"{r.operator} needs one integer value")
    return Requirement(r.key, op, tuple(r.values))


@dataclass(frozen=True, slots=True)
class RequiredNodeAffinity:
    """spec.nodeSelector AND (any of the required node affinity terms)."""

    node_selector: tuple[tuple[str, str], ...]
    terms: tuple[NodeSelectorTerm, ...] | None  # None: no required node affinity

    def matches(self, labels: Mapping[str, str], name: str) -> bool:
        for key, value in self.node_selector:
            if labels.get(key) != value:
                return False
        if self.terms is None:
            return True
        return any(t.matches(labels, name) for t in self.terms)


@dataclass(frozen=True, slots=True)
class PreferredNodeTerm:
    weight: int
    term: NodeSelectorTerm


# ---------------------------------------------------------------- pod affinity

@dataclass(frozen=True, slots=True)
class AffinityTerm:
    """A PodAffinityTerm compiled: which pods (selector, namespaces) in
    which topology domain (topologyKey); `weight` for preferred terms."""

    selector: Selector
    namespaces: frozenset[str]
    namespace_selector: Selector | None
    topology_key: str
    weight: int = 0

    @classmethod
    def parse(cls, term: core_pb2.PodAffinityTerm, pod_namespace: str, pod_labels: Mapping[str, str],
              weight: int = 0) -> AffinityTerm:
        try:
            selector = selector_from_message(term.labelSelector if term.HasField("labelSelector") else None)
        except SelectorError:
            selector = Selector.nothing()
        extra = [Requirement(k, "in", (pod_labels[k],)) for k in term.matchLabelKeys if k in pod_labels]
        extra += [Requirement(k, "notin", (pod_labels[k],)) for k in term.mismatchLabelKeys if k in pod_labels]
        if extra and not selector.match_nothing:
            selector = Selector(selector.requirements + tuple(extra))
        ns_selector: Selector | None = None
        if term.HasField("namespaceSelector"):
            try:
                ns_selector = selector_from_message(term.namespaceSelector)
            except SelectorError:
                ns_selector = Selector.nothing()
        namespaces = frozenset(term.namespaces)
        if not namespaces and ns_selector is None:
            namespaces = frozenset((pod_namespace,))
        return cls(selector, namespaces, ns_selector, term.topologyKey, weight)

    def matches(self, pod: PodInfo, namespace_labels: NamespaceLabels) -> bool:
        if pod.namespace not in self.namespaces:
            if self.namespace_selector is None:
                return False
            if not self.namespace_selector.empty() and not self.namespace_selector.matches(
                    namespace_labels(pod.namespace)):
                return False
        return self.selector.matches(pod.labels)


# ---------------------------------------------------------------- topology spread

@dataclass(frozen=True, slots=True)
class SpreadConstraint:
    max_skew: int
    topology_key: str
    when_unsatisfiable: str  # DoNotSchedule or ScheduleAnyway
    selector: Selector
    min_domains: int
    node_affinity_policy: str  # Honor or Ignore
    node_taints_policy: str  # Honor or Ignore

    @classmethod
    def parse(cls, c: core_pb2.TopologySpreadConstraint, pod_labels: Mapping[str, str]) -> SpreadConstraint:
        try:
            selector = selector_from_message(c.labelSelector if c.HasField("labelSelector") else None)
        except SelectorError:
            selector = Selector.nothing()
        extra = tuple(Requirement(k, "in", (pod_labels[k],)) for k in c.matchLabelKeys if k in pod_labels)
        if extra and not selector.match_nothing:
            selector = Selector(selector.requirements + extra)
        return cls(max(1, c.maxSkew), c.topologyKey, c.whenUnsatisfiable or "DoNotSchedule", selector,
                   c.minDomains if c.HasField("minDomains") else 1,
                   c.nodeAffinityPolicy if c.HasField("nodeAffinityPolicy") else "Honor",
                   c.nodeTaintsPolicy if c.HasField("nodeTaintsPolicy") else "Ignore")
