"""DefaultBinder: bind through the apiserver's pods/binding subresource,
which sets spec.nodeName and the PodScheduled condition in one
compare-and-swap write and refuses a pod that is already bound or being
deleted (a Conflict) - so a second scheduler, or a retried bind, can
never move a pod. The pod's UID goes along as a precondition: a pod
deleted and recreated under the same name is not bound by mistake."""

from __future__ import annotations

from api import StatusError
from proto import core_pb2
from scheduler.framework import BindPlugin, CycleState, PodInfo, Status, error


class DefaultBinder(BindPlugin):
    NAME = "DefaultBinder"

    async def bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        clientset = self.handle.clientset
        if clientset is None:
            return error("the default binder has no clientset")
        try:
            await clientset.resource(core_pb2.Pod, pod.namespace).bind(pod.name, node, uid=pod.uid)
        except StatusError as err:
            return error(f"binding rejected: {err.reason}: {err.message}")
        return None
