"""SchedulingGates: a pod with `spec.schedulingGates` waits outside the
active queue until every gate has been removed (a PreEnqueue plugin); the
removal is a pod update, which brings it back."""

from __future__ import annotations

from scheduler.framework import ClusterEvent, EnqueueExtensions, PodInfo, PreEnqueuePlugin, Status, unresolvable


class SchedulingGates(PreEnqueuePlugin, EnqueueExtensions):
    NAME = "SchedulingGates"

    def pre_enqueue(self, pod: PodInfo) -> Status | None:
        gates = [g.name for g in pod.pod.spec.schedulingGates]
        if not gates:
            return None
        return unresolvable(f"waiting for scheduling gates: [{' '.join(gates)}]")

    def events_to_register(self) -> list[ClusterEvent]:
        return []  # only the pod's own update (which always requeues it) lifts a gate
