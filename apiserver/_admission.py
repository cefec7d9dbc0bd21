"""Admission: the plugins every write passes after defaulting.

Mutating plugins (`admit`) may change the object; validating plugins
(`validate`) may only refuse it. The chain runs all mutations, then the
object is validated, then every validation plugin - the order Kubernetes
uses. The plugins here are Kubernetes' defaults that the rest of the
cluster relies on:

* NamespaceLifecycle - content only in namespaces that exist and are not
  terminating; the system namespaces cannot be deleted.
* ServiceAccount - a pod without one runs as `default`.
* DefaultTolerationSeconds - pods tolerate not-ready/unreachable nodes for
  300 s before eviction (configurable).
* Priority - a pod's priority comes from its PriorityClass (or the global
  default class); unknown classes are refused.
* LimitRanger - default requests and limits from the namespace's
  LimitRanges, and their min/max enforced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from api import Kind, Quantity, forbidden, not_found
from proto import core_pb2, meta_pb2

from ._auth import UserInfo

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public")


@dataclass
class Attributes:
    operation: str  # CREATE, UPDATE, DELETE
    kind: Kind
    namespace: str
    name: str
    obj: Any  # the new object (None for DELETE)
    old: Any  # the stored object (None for CREATE)
    subresource: str
    user: UserInfo
    dry_run: bool


class Lookup(Protocol):
    """Read access to other objects, for plugins that consult them."""

    async def get(self, group: str, resource: str, namespace: str, name: str) -> Any | None: ...

    def list_cached(self, group: str, resource: str, namespace: str) -> list[Any]: ...


class AdmissionPlugin:
    name = ""

    async def admit(self, a: Attributes) -> None:
        pass

    async def validate(self, a: Attributes) -> None:
        pass


class AdmissionChain:
    def __init__(self, plugins: Sequence[AdmissionPlugin]) -> None:
        self.plugins = list(plugins)

    async def admit(self, a: Attributes) -> None:
        for plugin in self.plugins:
            await plugin.admit(a)

    async def validate(self, a: Attributes) -> None:
        for plugin in self.plugins:
            await plugin.validate(a)


def _is_pod_create(a: Attributes) -> bool:
    return a.operation == "CREATE" and a.kind.kind == "Pod" and a.kind.group == "" and not a.subresource


def _is_pod_write(a: Attributes) -> bool:
    return a.operation in ("CREATE", "UPDATE") and a.kind.kind == "Pod" and a.kind.group == "" and not a.subresource


class NamespaceLifecycle(AdmissionPlugin):
    name = "NamespaceLifecycle"

    def __init__(self, lookup: Lookup) -> None:
        self._lookup = lookup

    async def validate(self, a: Attributes) -> None:
        if a.kind.kind == "Namespace" and a.kind.group == "":
            if a.operation == "DELETE" and a.name in SYSTEM_NAMESPACES:
                raise forbidden("namespaces", "", a.name, "this namespace may not be deleted")
            return
        if not a.kind.namespaced or a.operation != "CREATE":
            return
        ns = await self._lookup.get("", "namespaces", "", a.namespace)
        if ns is None:
            raise not_found("namespaces", "", a.namespace)
        if ns.metadata.deletionTimestamp or ns.status.phase == "Terminating":
            if a.kind.resource in ("events",):
                return  # controllers still report on what they delete
            raise forbidden(a.kind.resource, a.kind.group, a.name,
                            f"unable to create new content in namespace {a.namespace} because it is being terminated")


class ServiceAccountDefault(AdmissionPlugin):
    name = "ServiceAccount"

    async def admit(self, a: Attributes) -> None:
        if _is_pod_create(a) and not a.obj.spec.serviceAccountName:
            a.obj.spec.serviceAccountName = a.obj.spec.serviceAccount or "default"
        if _is_pod_create(a) and not a.obj.spec.serviceAccount:
            a.obj.spec.serviceAccount = a.obj.spec.serviceAccountName


class DefaultTolerationSeconds(AdmissionPlugin):
    name = "DefaultTolerationSeconds"

    def __init__(self, seconds: int = 300) -> None:
        self._seconds = seconds

    async def admit(self, a: Attributes) -> None:
        # On updates too, as in Kubernetes: an update (or a re-apply) that
        # leaves the defaults out gets them back rather than removing them.
        if not _is_pod_write(a):
            return
        spec = a.obj.spec
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            if any((t.key == key or (not t.key and t.operator == "Exists")) and t.effect in ("", "NoExecute")
                   for t in spec.tolerations):
                continue
            spec.tolerations.add(key=key, operator="Exists", effect="NoExecute", tolerationSeconds=self._seconds)


class Priority(AdmissionPlugin):
    name = "Priority"

    def __init__(self, lookup: Lookup) -> None:
        self._lookup = lookup

    async def admit(self, a: Attributes) -> None:
        if not _is_pod_create(a):
            return
        spec = a.obj.spec
        value, policy = 0, "PreemptLowerPriority"
        if spec.priorityClassName:
            pc = await self._lookup.get("scheduling.k8s.io", "priorityclasses", "", spec.priorityClassName)
            if pc is None:
                raise forbidden("pods", "", a.name, f"no PriorityClass with name {spec.priorityClassName} was found")
            value = pc.value
            policy = pc.preemptionPolicy if pc.HasField("preemptionPolicy") else policy
        else:
            defaults = [pc for pc in self._lookup.list_cached("scheduling.k8s.io", "priorityclasses", "")
                        if pc.globalDefault]
            if defaults:
                pc = min(defaults, key=lambda c: c.value)
                spec.priorityClassName = pc.metadata.name
                value = pc.value
                policy = pc.preemptionPolicy if pc.HasField("preemptionPolicy") else policy
        if spec.HasField("priority") and spec.priority != value:
            raise forbidden("pods", "", a.name,
                            f"the integer value of priority ({spec.priority}) must not be provided in pod spec; "
                            f"priority admission controller computed {value} from the given PriorityClass name")
        spec.priority = value
        if not spec.HasField("preemptionPolicy"):
            spec.preemptionPolicy = policy


class LimitRanger(AdmissionPlugin):
    name = "LimitRanger"

    def __init__(self, lookup: Lookup) -> None:
        self._lookup = lookup

    def _ranges(self, namespace: str) -> list[Any]:
        return [item for lr in self._lookup.list_cached("", "limitranges", namespace)
                for item in lr.spec.limits if item.type == "Container"]

    async def admit(self, a: Attributes) -> None:
        if not _is_pod_create(a):
            return
        for item in self._ranges(a.namespace):
            for c in list(a.obj.spec.initContainers) + list(a.obj.spec.containers):
                res = c.resources
                for name, q in item.default.items():
                    if name not in res.limits:
                        res.limits[name].CopyFrom(q)
                for name, q in item.defaultRequest.items():
                    if name not in res.requests:
                        res.requests[name].CopyFrom(res.limits[name] if name in res.limits else q)

    async def validate(self, a: Attributes) -> None:
        if not _is_pod_create(a):
            return
        problems: list[str] = []
        for item in self._ranges(a.namespace):
            for c in list(a.obj.spec.initContainers) + list(a.obj.spec.containers):
                problems += _check_bounds(c.resources, item)
        if problems:
            body = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
            raise forbidden("pods", "", a.name, body)


def _q(q: meta_pb2.Quantity) -> Quantity:
    return Quantity.parse(q.value)


def _check_bounds(res: core_pb2.ResourceRequirements, item: core_pb2.LimitRangeItem) -> list[str]:
    out = []
    for name, low in item.min.items():
        if name in res.requests and _q(res.requests[name]) < _q(low):
            out.append(f"minimum {name} usage per Container is {low.value}, but request is {res.requests[name].value}")
    for name, high in item.max.items():
        if name not in res.limits:
            out.append(f"maximum {name} usage per Container is {high.value}.  No limit is specified")
        elif _q(res.limits[name]) > _q(high):
            out.append(f"maximum {name} usage per Container is {high.value}, but limit is {res.limits[name].value}")
    return out


def default_chain(lookup: Lookup, toleration_seconds: int = 300, disabled: Sequence[str] = ()) -> AdmissionChain:
    plugins: list[AdmissionPlugin] = [NamespaceLifecycle(lookup), ServiceAccountDefault(),
                                      DefaultTolerationSeconds(toleration_seconds), Priority(lookup),
                                      LimitRanger(lookup)]
    unknown = set(disabled) - {p.name for p in plugins}
    if unknown:
        raise ValueError(f"unknown admission plugins: {', '.join(sorted(unknown))}")
    return AdmissionChain([p for p in plugins if p.name not in disabled])
