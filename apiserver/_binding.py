"""Binding a pod to a node: the pods/binding subresource.

The scheduler does not update a pod; it creates a Binding, and the
apiserver turns that into one compare-and-swap write of the pod that sets
spec.nodeName and the PodScheduled condition together. A pod that is
already bound, or already being deleted, is refused with a Conflict, so two
schedulers (or a retried bind) can never move a pod that runs somewhere.
"""

from __future__ import annotations

from typing import Any

from api import Clock, conflict, rfc3339
from proto import core_pb2

from ._auth import UserInfo
from ._store import ResourceStore


async def bind(pods: ResourceStore, namespace: str, binding: core_pb2.Binding, user: UserInfo, clock: Clock,
               *, dry_run: bool = False) -> Any:
    name = binding.metadata.name
    target = binding.target

    def assign(pod: Any) -> Any:
        if binding.metadata.uid and binding.metadata.uid != pod.metadata.uid:
            raise conflict("pods/binding", "", name, f"Precondition failed: UID in precondition: "
                                                     f"{binding.metadata.uid}, UID in object meta: {pod.metadata.uid}")
        if pod.metadata.deletionTimestamp:
            raise conflict("pods/binding", "", name, f"pod {name} is being deleted, cannot be assigned to a host")
        if pod.spec.nodeName:
            raise conflict("pods/binding", "", name,
                           f'pod {name} is already assigned to node "{pod.spec.nodeName}"')
        if target.kind not in ("", "Node"):
            raise conflict("pods/binding", "", name, f"a pod can only be bound to a Node, not to a {target.kind}")
        pod.spec.nodeName = target.name
        pod.metadata.annotations.update(binding.metadata.annotations)
        conditions = [c for c in pod.status.conditions if c.type != "PodScheduled"]
        conditions.append(core_pb2.PodCondition(type="PodScheduled", status="True",
                                                lastTransitionTime=rfc3339(clock.now())))
        del pod.status.conditions[:]
        pod.status.conditions.extend(conditions)
        return pod

    return await pods.guaranteed_update(namespace, name, assign, user, subresource="binding", dry_run=dry_run,
                                        operation="CREATE")
