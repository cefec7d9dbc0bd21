"""Per-kind behaviour for the generic store: one Strategy per kind.

`build_strategies` maps every kind in the scheme to its strategy; a kind
missing from `_BY_RESOURCE` would get the base Strategy (names, metadata,
generation, status handling, NAME/AGE columns). The modules are split by
API group and idea: core.py, core_config.py, core_storage.py,
core_policy.py, apps.py, statefulset.py, batch.py, rbac.py, autoscaling.py,
cluster.py; the shared pieces are _pod.py (pod specs), _workload.py
(selectors and templates), _checks.py (field rules), _columns.py (printing)
and _cron.py (schedules).
"""

from __future__ import annotations

from api import SCHEME

from .._allocators import NodePortAllocator, ServiceIPAllocator
from ._strategy import AGE, NAME, Column, Reservation, Strategy
from .apps import ControllerRevisionStrategy, DaemonSetStrategy, DeploymentStrategy, ReplicaSetStrategy
from .autoscaling import HorizontalPodAutoscalerStrategy
from .batch import CronJobStrategy, JobStrategy
from .cluster import (
    EndpointSliceStrategy,
    LeaseStrategy,
    PodDisruptionBudgetStrategy,
    PriorityClassStrategy,
    StorageClassStrategy,
)
from .core import EndpointsStrategy, NamespaceStrategy, NodeStrategy, PodStrategy, ServiceStrategy
from .core_config import (
    ConfigMapStrategy,
    EventStrategy,
    ReplicationControllerStrategy,
    SecretStrategy,
    ServiceAccountStrategy,
)
from .core_policy import LimitRangeStrategy, ResourceQuotaStrategy
from .core_storage import PersistentVolumeClaimStrategy, PersistentVolumeStrategy
from .rbac import ClusterRoleBindingStrategy, ClusterRoleStrategy, RoleBindingStrategy, RoleStrategy
from .statefulset import StatefulSetStrategy

_BY_RESOURCE: dict[str, type[Strategy]] = {
    "namespaces": NamespaceStrategy,
    "nodes": NodeStrategy,
    "pods": PodStrategy,
    "endpoints": EndpointsStrategy,
    "configmaps": ConfigMapStrategy,
    "secrets": SecretStrategy,
    "serviceaccounts": ServiceAccountStrategy,
    "events": EventStrategy,
    "replicationcontrollers": ReplicationControllerStrategy,
    "persistentvolumes": PersistentVolumeStrategy,
    "persistentvolumeclaims": PersistentVolumeClaimStrategy,
    "resourcequotas": ResourceQuotaStrategy,
    "limitranges": LimitRangeStrategy,
    "deployments.apps": DeploymentStrategy,
    "replicasets.apps": ReplicaSetStrategy,
    "daemonsets.apps": DaemonSetStrategy,
    "statefulsets.apps": StatefulSetStrategy,
    "controllerrevisions.apps": ControllerRevisionStrategy,
    "jobs.batch": JobStrategy,
    "cronjobs.batch": CronJobStrategy,
    "roles.rbac.authorization.k8s.io": RoleStrategy,
    "clusterroles.rbac.authorization.k8s.io": ClusterRoleStrategy,
    "rolebindings.rbac.authorization.k8s.io": RoleBindingStrategy,
    "clusterrolebindings.rbac.authorization.k8s.io": ClusterRoleBindingStrategy,
    "leases.coordination.k8s.io": LeaseStrategy,
    "endpointslices.discovery.k8s.io": EndpointSliceStrategy,
    "horizontalpodautoscalers.autoscaling": HorizontalPodAutoscalerStrategy,
    "priorityclasses.scheduling.k8s.io": PriorityClassStrategy,
    "storageclasses.storage.k8s.io": StorageClassStrategy,
    "poddisruptionbudgets.policy": PodDisruptionBudgetStrategy,
}


def build_strategies(ips: ServiceIPAllocator, ports: NodePortAllocator) -> dict[str, Strategy]:
    """group_resource ("pods", "deployments.apps") -> strategy."""
    out: dict[str, Strategy] = {}
    for kind in SCHEME:
        if kind.group_resource == "services":
            out[kind.group_resource] = ServiceStrategy(kind, ips, ports)
        else:
            out[kind.group_resource] = _BY_RESOURCE.get(kind.group_resource, Strategy)(kind)
    return out


__all__ = ["AGE", "NAME", "Column", "Reservation", "Strategy", "build_strategies"]
