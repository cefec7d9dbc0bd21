"""The scheme: every kind the API serves, and the names it is known by.

A kind is reachable by its apiVersion + kind (what a manifest says), by its
resource name and group (what a call addresses: "deployments" in "apps"), by
its short names and singular name (what `kubelab get deploy` types), and by
its protobuf message (what code holds). One table, read by the apiserver,
the client library and the CLI alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from google.protobuf.message import Message

from proto import (
    apps_pb2,
    autoscaling_pb2,
    batch_pb2,
    coordination_pb2,
    core_pb2,
    discovery_pb2,
    policy_pb2,
    rbac_pb2,
    scheduling_pb2,
    storage_pb2,
)

_TYPE_URL_PREFIX = "type.googleapis.com/"


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    kind: str
    resource: str
    message: type[Message]
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = field(default=())

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def group_resource(self) -> str:
        """"deployments.apps", or "pods" for the core group."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def type_url(self) -> str:
        return _TYPE_URL_PREFIX + self.message.DESCRIPTOR.full_name

    @property
    def has_status(self) -> bool:
        return "status" in self.message.DESCRIPTOR.fields_by_name

    @property
    def has_spec(self) -> bool:
        return "spec" in self.message.DESCRIPTOR.fields_by_name


_ALL = ("all",)

KINDS: tuple[Kind, ...] = (
    Kind("", "v1", "Namespace", "namespaces", core_pb2.Namespace, False, ("ns",)),
    Kind("", "v1", "Node", "nodes", core_pb2.Node, False, ("no",)),
    Kind("", "v1", "Pod", "pods", core_pb2.Pod, True, ("po",), _ALL),
    Kind("", "v1", "Service", "services", core_pb2.Service, True, ("svc",), _ALL),
    Kind("", "v1", "Endpoints", "endpoints", core_pb2.Endpoints, True, ("ep",)),
    Kind("", "v1", "ConfigMap", "configmaps", core_pb2.ConfigMap, True, ("cm",)),
    Kind("", "v1", "Secret", "secrets", core_pb2.Secret, True),
    Kind("", "v1", "ServiceAccount", "serviceaccounts", core_pb2.ServiceAccount, True, ("sa",)),
    Kind("", "v1", "Event", "events", core_pb2.Event, True, ("ev",)),
    Kind("", "v1", "ReplicationController", "replicationcontrollers", core_pb2.ReplicationController, True,
         ("rc",), _ALL),
    Kind("", "v1", "PersistentVolume", "persistentvolumes", core_pb2.PersistentVolume, False, ("pv",)),
    Kind("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", core_pb2.PersistentVolumeClaim, True,
         ("pvc",)),
    Kind("", "v1", "ResourceQuota", "resourcequotas", core_pb2.ResourceQuota, True, ("quota",)),
    Kind("", "v1", "LimitRange", "limitranges", core_pb2.LimitRange, True, ("limits",)),
    Kind("apps", "v1", "Deployment", "deployments", apps_pb2.Deployment, True, ("deploy",), _ALL),
    Kind("apps", "v1", "ReplicaSet", "replicasets", apps_pb2.ReplicaSet, True, ("rs",), _ALL),
    Kind("apps", "v1", "DaemonSet", "daemonsets", apps_pb2.DaemonSet, True, ("ds",), _ALL),
    Kind("apps", "v1", "StatefulSet", "statefulsets", apps_pb2.StatefulSet, True, ("sts",), _ALL),
    Kind("apps", "v1", "ControllerRevision", "controllerrevisions", apps_pb2.ControllerRevision, True),
    Kind("batch", "v1", "Job", "jobs", batch_pb2.Job, True, (), _ALL),
    Kind("batch", "v1", "CronJob", "cronjobs", batch_pb2.CronJob, True, ("cj",), _ALL),
    Kind("rbac.authorization.k8s.io", "v1", "Role", "roles", rbac_pb2.Role, True),
    Kind("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", rbac_pb2.ClusterRole, False),
    Kind("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", rbac_pb2.RoleBinding, True),
    Kind("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings",
         rbac_pb2.ClusterRoleBinding, False),
    Kind("coordination.k8s.io", "v1", "Lease", "leases", coordination_pb2.Lease, True),
    Kind("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", discovery_pb2.EndpointSlice, True),
    Kind("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
         autoscaling_pb2.HorizontalPodAutoscaler, True, ("hpa",), _ALL),
    Kind("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", scheduling_pb2.PriorityClass, False,
         ("pc",)),
    Kind("storage.k8s.io", "v1", "StorageClass", "storageclasses", storage_pb2.StorageClass, False, ("sc",)),
    Kind("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", policy_pb2.PodDisruptionBudget, True,
         ("pdb",)),
)


class UnknownKindError(LookupError):
    pass


class Scheme:
    """Lookups over KINDS; every miss says what was asked for."""

    def __init__(self, kinds: tuple[Kind, ...] = KINDS) -> None:
        self._kinds = kinds
        self._by_gvk = {(k.api_version, k.kind): k for k in kinds}
        self._by_gr = {(k.group, k.resource): k for k in kinds}
        self._by_message = {k.message.DESCRIPTOR.full_name: k for k in kinds}
        self._by_kind_name: dict[str, list[Kind]] = {}
        for k in kinds:
            self._by_kind_name.setdefault(k.kind, []).append(k)

    def __iter__(self) -> Iterator[Kind]:
        return iter(self._kinds)

    def by_gvk(self, api_version: str, kind: str) -> Kind:
        found = self._by_gvk.get((api_version, kind))
        if found is None:
            raise UnknownKindError(f'no matches for kind "{kind}" in version "{api_version}"')
        return found

    def by_resource(self, group: str, resource: str) -> Kind:
        found = self._by_gr.get((group, resource))
        if found is None:
            raise UnknownKindError(f'the server could not find the requested resource "{resource}" '
                                   f'in group "{group}"' if group else
                                   f'the server could not find the requested resource "{resource}"')
        return found

    def for_message(self, message: Message | type[Message]) -> Kind:
        found = self._by_message.get(message.DESCRIPTOR.full_name)
        if found is None:
            raise UnknownKindError(f"{message.DESCRIPTOR.full_name} is not a kind the API serves")
        return found

    def by_type_url(self, type_url: str) -> Kind:
        found = self._by_message.get(type_url.rsplit("/", 1)[-1])
        if found is None:
            raise UnknownKindError(f"{type_url} is not a kind the API serves")
        return found

    def versions_of_kind(self, kind: str) -> list[Kind]:
        return list(self._by_kind_name.get(kind, ()))

    def lookup(self, name: str) -> Kind:
        """Resolve what a user types: "po", "pods", "pod", "Pod",
        "deployments.apps", "deploy", "deployment.v1.apps"."""
        text = name.strip()
        lowered = text.lower()
        resource, _, group = lowered.partition(".")
        if group.startswith("v") and "." in group:  # deployments.v1.apps
            _version, _, group = group.partition(".")
        candidates = [k for k in self._kinds if not group or k.group == group]
        for k in candidates:
            if resource in (k.resource, k.singular) or resource in k.short_names:
                return k
        raise UnknownKindError(f'the server doesn\'t have a resource type "{text}"')


SCHEME = Scheme()
