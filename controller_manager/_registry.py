"""Which controllers exist: name -> "module:Class".

`--controllers` picks from this table as kube-controller-manager does:
`*` means every controller that is on by default, `name` turns one on,
`-name` turns one off. Each controller lives in its own module and is
imported only when enabled (or when its flags are listed by --help).
"""

from __future__ import annotations

import importlib

from ._controller import Controller

CONTROLLERS: dict[str, str] = {
    "serviceaccount": "controller_manager.serviceaccount:ServiceAccountController",
    "replicaset": "controller_manager.replicaset:ReplicaSetController",
    "replicationcontroller": "controller_manager.replicaset:ReplicationControllerController",
    "deployment": "controller_manager.deployment:DeploymentController",
    "daemonset": "controller_manager.daemonset:DaemonSetController",
    "statefulset": "controller_manager.statefulset:StatefulSetController",
    "job": "controller_manager.job:JobController",
    "cronjob": "controller_manager.cronjob:CronJobController",
    "horizontalpodautoscaling": "controller_manager.podautoscaler:HorizontalPodAutoscalerController",
    "endpoint": "controller_manager.endpoints:EndpointsController",
    "endpointslice": "controller_manager.endpointslice:EndpointSliceController",
    "nodelifecycle": "controller_manager.nodelifecycle:NodeLifecycleController",
    "taint-eviction-controller": "controller_manager.tainteviction:TaintEvictionController",
    "nodeipam": "controller_manager.nodeipam:NodeIPAMController",
    "namespace": "controller_manager.namespace:NamespaceController",
    "garbagecollector": "controller_manager.garbagecollector:GarbageCollector",
    "resourcequota": "controller_manager.resourcequota:ResourceQuotaController",
    "persistentvolume-binder": "controller_manager.volume:PersistentVolumeController",
    "podgc": "controller_manager.podgc:PodGCController",
    "serviceaccount-token": "controller_manager.serviceaccount_tokens:TokensController",
}

#: Controllers that `*` does not include.
OFF_BY_DEFAULT: set[str] = set()


def load(name: str) -> type[Controller]:
    module, _, attr = CONTROLLERS[name].partition(":")
    cls: type[Controller] = getattr(importlib.import_module(module), attr)
    return cls


def enabled(spec: str) -> list[str]:
    """The controllers a `--controllers` value turns on, in table order."""
    items = [s.strip() for s in spec.split(",") if s.strip()]
    for item in items:
        name = item[1:] if item.startswith("-") else item
        if name != "*" and name not in CONTROLLERS:
            raise ValueError(f"unknown controller {name!r}: known are {', '.join(sorted(CONTROLLERS))}")
    wanted: set[str] = set()
    for item in items:
        if item == "*":
            wanted |= set(CONTROLLERS) - OFF_BY_DEFAULT
        elif not item.startswith("-"):
            wanted.add(item)
    wanted -= {item[1:] for item in items if item.startswith("-")}
    return [name for name in CONTROLLERS if name in wanted]
