"""The ResourceQuota controller: every quota's status says how much of
each limited resource its namespace uses.

`status.hard` copies `spec.hard`; `status.used` holds, for each resource
named there, what the namespace's objects add up to, counted as
Kubernetes' quota evaluators count:

* pods that have not finished (and whose deletion grace has not run out)
  count for `pods`, and their requests and limits for `requests.cpu` (or
  `cpu`), `requests.memory` (`memory`), `limits.cpu`, `limits.memory`,
  ephemeral storage, hugepages and extended resources
  (`requests.example.com/gpu`); a pod's request is the larger of its
  containers' sum and any one init container's, plus its overhead;
* quota scopes narrow the pods counted: Terminating (activeDeadlineSeconds
  set) / NotTerminating, BestEffort / NotBestEffort, PriorityClass (by
  scopeSelector), CrossNamespacePodAffinity;
* `services`, `services.nodeports`, `services.loadbalancers`;
* `persistentvolumeclaims` and `requests.storage`, in all and per class
  (`<class>.storageclass.storage.k8s.io/requests.storage`);
* `configmaps`, `secrets`, `replicationcontrollers`, `resourcequotas`, and
  `count/<resource>[.<group>]` for any namespaced kind.

Keys are quota keys. A change to any namespaced object (but Events)
enqueues the quotas of its namespace; the counts are read from the
informer caches. `--resource-quota-sync-period` re-counts every quota
periodically, as Kubernetes does, to repair anything missed. The status is
written only when it changed. (Enforcement at admission, which reads this
status, is the apiserver's part.)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import Any

from api import SCHEME, Kind, Quantity, QuantityError, StatusError, parse_time
from client import Lister, split_key
from proto import core_pb2, meta_pb2

from ._controller import Controller, ControllerContext
from ._podutil import unwrap

ResourceQuota = core_pb2.ResourceQuota
Pod = core_pb2.Pod

#: Short names Kubernetes counts as objects of a core kind.
OBJECT_COUNTS = {"pods": "pods", "services": "services", "configmaps": "configmaps", "secrets": "secrets",
                 "replicationcontrollers": "replicationcontrollers", "resourcequotas": "resourcequotas",
                 "persistentvolumeclaims": "persistentvolumeclaims"}
POD_SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass",
              "CrossNamespacePodAffinity")
STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/"
_COMPUTE = ("cpu", "memory", "ephemeral-storage")


def _add(total: dict[str, Quantity], name: str, q: Quantity) -> None:
    have = total.get(name)
    total[name] = q if have is None else have + q


def _parse(q: meta_pb2.Quantity) -> Quantity | None:
    try:
        return Quantity.parse(q.value)
    except QuantityError:
        return None


def _container_amounts(resources: Any) -> tuple[dict[str, Quantity], dict[str, Quantity]]:
    requests = {n: q for n, v in resources.requests.items() if (q := _parse(v)) is not None}
    limits = {n: q for n, v in resources.limits.items() if (q := _parse(v)) is not None}
    return requests, limits


def pod_amounts(pod: Pod) -> tuple[dict[str, Quantity], dict[str, Quantity]]:
    """A pod's effective requests and limits: max(sum of containers, each
    init container) per resource, plus overhead."""
    out: list[dict[str, Quantity]] = []
    for which in (0, 1):
        total: dict[str, Quantity] = {}
        for c in pod.spec.containers:
            for name, q in _container_amounts(c.resources)[which].items():
                _add(total, name, q)
        for c in pod.spec.initContainers:
            for name, q in _container_amounts(c.resources)[which].items():
                if name not in total or total[name] < q:
                    total[name] = q
        for name, value in pod.spec.overhead.items():
            extra = _parse(value)
            if extra is not None and name in total:
                _add(total, name, extra)
        out.append(total)
    return out[0], out[1]


def pod_counts(pod: Pod, now: float) -> bool:
    """Whether a pod still uses quota: not finished, and not past the end
    of its deletion grace period."""
    if pod.status.phase in ("Succeeded", "Failed"):
        return False
    if pod.metadata.deletionTimestamp:
        try:
            return parse_time(pod.metadata.deletionTimestamp) > now
        except ValueError:
            return True
    return True


def _best_effort(pod: Pod) -> bool:
    if pod.status.qosClass:
        return pod.status.qosClass == "BestEffort"
    requests, limits = pod_amounts(pod)
    return not any(n in requests or n in limits for n in ("cpu", "memory"))


def _cross_namespace_affinity(pod: Pod) -> bool:
    affinity = pod.spec.affinity
    terms = [*affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution,
             *affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution,
             *(w.podAffinityTerm for w in affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution),
             *(w.podAffinityTerm for w in affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution)]
    return any(t.namespaces or t.HasField("namespaceSelector") for t in terms)


def _scope_requirements(quota: ResourceQuota) -> list[tuple[str, str, tuple[str, ...]]]:
    reqs: list[tuple[str, str, tuple[str, ...]]] = [(scope, "Exists", ()) for scope in quota.spec.scopes]
    reqs += [(r.scopeName, r.operator, tuple(r.values)) for r in quota.spec.scopeSelector.matchExpressions]
    return reqs


def pod_matches_scopes(pod: Pod, quota: ResourceQuota) -> bool:
    for scope, operator, values in _scope_requirements(quota):
        if scope == "Terminating":
            ok = pod.spec.HasField("activeDeadlineSeconds") and pod.spec.activeDeadlineSeconds >= 0
        elif scope == "NotTerminating":
            ok = not (pod.spec.HasField("activeDeadlineSeconds") and pod.spec.activeDeadlineSeconds >= 0)
        elif scope == "BestEffort":
            ok = _best_effort(pod)
        elif scope == "NotBestEffort":
            ok = not _best_effort(pod)
        elif scope == "CrossNamespacePodAffinity":
            ok = _cross_namespace_affinity(pod)
        elif scope == "PriorityClass":
            name = pod.spec.priorityClassName
            ok = {"In": name in values, "NotIn": name not in values, "Exists": bool(name),
                  "DoesNotExist": not name}.get(operator, False)
            operator = "Exists"  # the operator was applied above
        else:
            ok = False
        if (operator == "DoesNotExist") == ok:
            return False
    return True


def pod_usage(pods: Iterable[Pod], quota: ResourceQuota, now: float) -> dict[str, Quantity]:
    used: dict[str, Quantity] = {}
    count = 0
    for pod in pods:
        if not pod_counts(pod, now) or not pod_matches_scopes(pod, quota):
            continue
        count += 1
        requests, limits = pod_amounts(pod)
        for name, q in requests.items():
            _add(used, f"requests.{name}", q)
            if name in _COMPUTE or name.startswith("hugepages-"):
                _add(used, name, q)
        for name, q in limits.items():
            _add(used, f"limits.{name}", q)
    used["pods"] = used["count/pods"] = Quantity(count)
    return used


def service_usage(services: Iterable[core_pb2.Service]) -> dict[str, Quantity]:
    count = node_ports = balancers = 0
    for svc in services:
        count += 1
        if svc.spec.type == "NodePort":
            node_ports += len(svc.spec.ports)
        elif svc.spec.type == "LoadBalancer":
            balancers += 1
            if not svc.spec.HasField("allocateLoadBalancerNodePorts") or svc.spec.allocateLoadBalancerNodePorts:
                node_ports += len(svc.spec.ports)
    return {"services": Quantity(count), "count/services": Quantity(count),
            "services.nodeports": Quantity(node_ports), "services.loadbalancers": Quantity(balancers)}


def claim_usage(claims: Iterable[core_pb2.PersistentVolumeClaim], quota: ResourceQuota) -> dict[str, Quantity]:
    used: dict[str, Quantity] = {}
    classes = [values for scope, _op, values in _scope_requirements(quota) if scope == "VolumeAttributesClass"]
    for pvc in claims:
        if classes and not all(pvc.spec.volumeAttributesClassName in values for values in classes):
            continue
        cls = pvc.spec.storageClassName if pvc.spec.HasField("storageClassName") else ""
        one = Quantity(1)
        for name in ("persistentvolumeclaims", "count/persistentvolumeclaims"):
            _add(used, name, one)
        if cls:
            _add(used, f"{cls}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims", one)
        if "storage" in pvc.spec.resources.requests:
            q = _parse(pvc.spec.resources.requests["storage"])
            if q is not None:
                _add(used, "requests.storage", q)
                if cls:
                    _add(used, f"{cls}{STORAGE_CLASS_SUFFIX}requests.storage", q)
    for name in ("persistentvolumeclaims", "count/persistentvolumeclaims", "requests.storage"):
        used.setdefault(name, Quantity(0))  # sums start from the first amount, keeping its notation
    return used


def _is_pod_resource(name: str) -> bool:
    return name in ("pods", "count/pods", *_COMPUTE) or name.startswith(("limits.", "hugepages-")) or \
        (name.startswith("requests.") and name != "requests.storage")


def count_kind(resource_name: str) -> Kind | None:
    """The kind `count/<resource>[.<group>]` (or a plain object count) names."""
    name = resource_name[len("count/"):] if resource_name.startswith("count/") else \
        OBJECT_COUNTS.get(resource_name, "")
    if not name:
        return None
    resource, _, group = name.partition(".")
    for kind in SCHEME:
        if kind.namespaced and kind.resource == resource and kind.group == group:
            return kind
    return None


class ResourceQuotaController(Controller):
    name = "resourcequota"
    event_source = "resource-quota-controller"
    default_workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.sync_period = float(getattr(ctx.options, "resource_quota_sync_period", 300.0))
        quotas = ctx.informers.informer_for(ResourceQuota)
        self.quotas = quotas.lister()
        quotas.add_event_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new))
        self.listers: dict[str, Lister[Any]] = {}
        for kind in SCHEME:
            if not kind.namespaced or kind.resource == "events":
                continue
            informer = ctx.informers.informer_for(kind.message)
            self.listers[kind.group_resource] = informer.lister()
            if kind.message is not ResourceQuota:
                informer.add_event_handler(on_add=self._content_changed,
                                           on_update=self._content_updated,
                                           on_delete=lambda obj: self._content_changed(unwrap(obj)))

    @classmethod
    def add_flags(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--resource-quota-sync-period", type=float, default=300.0, metavar="SECONDS",
                            help="how often every quota is counted again from scratch (default %(default)s)")

    def _content_changed(self, obj: Any) -> None:
        for quota in self.quotas.list(obj.metadata.namespace):
            self.enqueue(quota)

    def _content_updated(self, old: Any, new: Any) -> None:
        if old is not new:  # a resync of every object need not recount every quota
            self._content_changed(new)

    def periodic(self) -> list[tuple[float, Callable[[], None], bool]]:
        return [(self.sync_period, self.resync, False)]

    def resync(self) -> None:
        for quota in self.quotas.list():
            self.enqueue(quota)

    def _list(self, kind_message: type[Any], namespace: str) -> list[Any]:
        return self.listers[SCHEME.for_message(kind_message).group_resource].list(namespace)

    def usage(self, quota: ResourceQuota) -> dict[str, Quantity]:
        """What the quota's namespace uses of every resource in spec.hard."""
        namespace = quota.metadata.namespace
        wanted = set(quota.spec.hard)
        scoped = bool(_scope_requirements(quota))
        computed: dict[str, Quantity] = {}
        if any(_is_pod_resource(n) for n in wanted):
            computed.update(pod_usage(self._list(Pod, namespace), quota, self.clock.now()))
        if any("persistentvolumeclaims" in n or "requests.storage" in n for n in wanted):
            computed.update(claim_usage(self._list(core_pb2.PersistentVolumeClaim, namespace), quota))
        if not scoped and any(n.startswith("services") or n == "count/services" for n in wanted):
            computed.update(service_usage(self._list(core_pb2.Service, namespace)))
        used: dict[str, Quantity] = {}
        for name in sorted(wanted):
            if name in computed:
                used[name] = computed[name]
                continue
            kind = count_kind(name)
            if kind is not None and not scoped:
                used[name] = Quantity(len(self.listers[kind.group_resource].list(namespace)))
            else:
                used[name] = Quantity(0)
        return used

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        try:
            quota = self.quotas.get(namespace, name)
        except StatusError as err:
            if err.reason == "NotFound":
                return
            raise
        used = {n: str(q) for n, q in self.usage(quota).items()}
        hard = {n: q.value for n, q in quota.spec.hard.items()}
        if {n: q.value for n, q in quota.status.hard.items()} == hard and \
                {n: q.value for n, q in quota.status.used.items()} == used:
            return
        new = ResourceQuota()
        new.CopyFrom(quota)
        new.status.hard.clear()
        for n, v in hard.items():
            new.status.hard[n].value = v
        new.status.used.clear()
        for n, v in used.items():
            new.status.used[n].value = v
        try:
            await self.clientset.resource(ResourceQuota, namespace).update_status(new)
        except StatusError as err:
            if err.reason != "NotFound":
                raise
