"""The scheduling queue (Kubernetes' PriorityQueue): where unscheduled pods
wait, in three places.

* activeQ - pods to try now, a heap in the profile's QueueSort order
  (PrioritySort: higher priority first, then the one waiting longest);
* backoffQ - pods that failed recently and wait out their backoff,
  1 s doubling per attempt up to 10 s (`podInitialBackoffSeconds`,
  `podMaxBackoffSeconds`), then go to activeQ;
* unschedulable - pods no node could take. Retrying them on a timer would
  burn cycles on pods nothing has changed for, so they stay here until a
  cluster event happens that one of the plugins that rejected the pod
  registered for (a node added, a taint removed, a pod deleted, ...); then
  they go to activeQ, or to backoffQ if their backoff has not run out. A
  pod that waits 5 minutes is retried anyway, in case an event was missed.

A pod that was being scheduled when such an event arrived (its cycle
started before the event) goes to backoffQ instead of unschedulable: the
event may be what it needed, and it must not wait for the next one.
PreEnqueue plugins (scheduling gates) can keep a pod out of activeQ; it
waits as "gated" until an update to the pod lifts the gate.

The queue also holds the nominator: pods promised a node by preemption
(`status.nominatedNodeName`), which other pods' filters count on that node
so that the room made for a pod is not taken by another.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from api import Clock, RealClock

from .framework import (
    UNSCHEDULABLE_TIMEOUT,
    ClusterEvent,
    Framework,
    PodInfo,
    QueuedPodInfo,
)

log = logging.getLogger(__name__)

MAX_IN_UNSCHEDULABLE = 300.0  # seconds before an unschedulable pod is retried regardless
_LEFTOVER_CHECK = 30.0


class Nominator:
    """Pods nominated to nodes, by node (Kubernetes' PodNominator)."""

    def __init__(self) -> None:
        self._by_node: dict[str, dict[str, PodInfo]] = {}
        self._node_of: dict[str, str] = {}

    def add_nominated_pod(self, pi: PodInfo, node: str) -> None:
        self.delete_nominated_pod(pi)
        if node:
            self._by_node.setdefault(node, {})[pi.uid] = pi
            self._node_of[pi.uid] = node

    def delete_nominated_pod(self, pi: PodInfo) -> None:
        node = self._node_of.pop(pi.uid, None)
        if node is not None:
            pods = self._by_node.get(node, {})
            pods.pop(pi.uid, None)
            if not pods:
                self._by_node.pop(node, None)

    def update(self, pi: PodInfo) -> None:
        """Follow the pod's status.nominatedNodeName (set or cleared)."""
        nominated = pi.pod.status.nominatedNodeName
        if nominated:
            self.add_nominated_pod(pi, nominated)
        elif pi.uid in self._node_of:
            self.delete_nominated_pod(pi)

    def nominated_pods_for_node(self, node: str) -> list[PodInfo]:
        pods = self._by_node.get(node)
        return list(pods.values()) if pods else []

    def nominated_node(self, uid: str) -> str:
        return self._node_of.get(uid, "")

    def has_nominations(self) -> bool:
        return bool(self._node_of)


class SchedulingQueue:
    def __init__(self, profiles: Mapping[str, Framework], *, clock: Clock | None = None,
                 initial_backoff: float = 1.0, max_backoff: float = 10.0,
                 max_in_unschedulable: float = MAX_IN_UNSCHEDULABLE, nominator: Nominator | None = None) -> None:
        if not profiles:
            raise ValueError("a scheduling queue needs at least one profile")
        self.profiles = profiles
        self._sort_key = next(iter(profiles.values())).queue_sort_key
        self.clock: Clock = clock or RealClock()
        self.initial_backoff = initial_backoff
        self.max_backoff = max(max_backoff, initial_backoff)
        self.max_in_unschedulable = max_in_unschedulable
        self.nominator = nominator or Nominator()
        self._active: dict[str, QueuedPodInfo] = {}
        self._active_heap: list[tuple[tuple[Any, ...], QueuedPodInfo]] = []
        self._backoff: dict[str, QueuedPodInfo] = {}
        self._backoff_heap: list[tuple[float, int, QueuedPodInfo]] = []
        self._unschedulable: dict[str, QueuedPodInfo] = {}
        self._in_flight: dict[str, QueuedPodInfo] = {}
        self._deleted_in_flight: set[str] = set()
        self._events: dict[str, list[ClusterEvent]] = {}
        for fwk in profiles.values():
            self._events.update(fwk.events_to_register())
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._closed = False
        self._last_leftover_flush = self.clock.monotonic()
        self.scheduling_cycle = 0
        self.move_request_cycle = -1

    # ------------------------------------------------------------ informer side

    def add(self, pi: PodInfo) -> None:
        """A new unscheduled pod."""
        if pi.uid in self._in_flight or self._find(pi.uid) is not None:
            self.update(pi)
            return
        qpi = QueuedPodInfo(pi, self.clock.monotonic(), seq=next(self._seq))
        self.nominator.update(pi)
        self._enqueue_checked(qpi)

    def update(self, pi: PodInfo, *, spec_changed: bool = True) -> None:
        """A newer version of a pod the queue holds (or should hold)."""
        uid = pi.uid
        self.nominator.update(pi)
        qpi = self._in_flight.get(uid)
        if qpi is not None:
            qpi.info = pi
            if spec_changed:
                self.move_request_cycle = self.scheduling_cycle  # retry it promptly if this cycle fails
            return
        qpi = self._find(uid)
        if qpi is None:
            self.add(pi)
            return
        qpi.info = pi
        if uid in self._unschedulable and spec_changed:
            del self._unschedulable[uid]
            qpi.gated_by = ""
            if self._backing_off(qpi):
                self._push_backoff(qpi)
            else:
                self._enqueue_checked(qpi)

    def delete(self, pi: PodInfo) -> None:
        uid = pi.uid
        self.nominator.delete_nominated_pod(pi)
        if uid in self._in_flight:
            self._deleted_in_flight.add(uid)
        self._active.pop(uid, None)
        self._backoff.pop(uid, None)
        self._unschedulable.pop(uid, None)

    def move_all_to_active_or_backoff(self, event: ClusterEvent) -> int:
        """Retry the unschedulable pods this event might help; how many moved."""
        moved = 0
        for qpi in list(self._unschedulable.values()):
            if qpi.gated_by or not self._worth_retrying(qpi, event):
                continue
            del self._unschedulable[qpi.uid]
            if self._backing_off(qpi):
                self._push_backoff(qpi)
            else:
                self._push_active(qpi)
            moved += 1
        self.move_request_cycle = self.scheduling_cycle
        if moved:
            log.debug("%s moved %d unschedulable pods", event, moved)
        return moved

    def _worth_retrying(self, qpi: QueuedPodInfo, event: ClusterEvent) -> bool:
        if event is UNSCHEDULABLE_TIMEOUT or not qpi.unschedulable_plugins:
            return True
        for plugin in qpi.unschedulable_plugins:
            for registered in self._events.get(plugin, ()):
                if event.matches(registered):
                    return True
        return False

    # ------------------------------------------------------------ scheduler side

    async def pop(self) -> QueuedPodInfo:
        """The next pod to schedule, waiting for one."""
        while True:
            if self._closed:
                raise asyncio.CancelledError("the scheduling queue is closed")
            now = self.clock.monotonic()
            self._flush_backoff(now)
            if now - self._last_leftover_flush >= _LEFTOVER_CHECK:
                self._flush_leftovers(now)
            while self._active_heap:
                _, qpi = heapq.heappop(self._active_heap)
                if self._active.get(qpi.uid) is not qpi:
                    continue  # deleted or moved since it was pushed
                del self._active[qpi.uid]
                qpi.attempts += 1
                if qpi.initial_attempt is None:
                    qpi.initial_attempt = now
                self.scheduling_cycle += 1
                self._in_flight[qpi.uid] = qpi
                return qpi
            self._wakeup.clear()
            timeout = _LEFTOVER_CHECK
            if self._backoff_heap:
                timeout = min(timeout, max(0.0, self._backoff_heap[0][0] - now))
            await self._wait(timeout)

    def done(self, uid: str) -> None:
        """The scheduler has finished with a popped pod (bound or requeued)."""
        self._in_flight.pop(uid, None)
        self._deleted_in_flight.discard(uid)

    def add_unschedulable(self, qpi: QueuedPodInfo, cycle: int) -> None:
        """A pod no node could take: wait for an event (or backoff, if one
        came while it was being scheduled, or no plugin said why)."""
        if not self._back_from_attempt(qpi):
            return
        if qpi.unschedulable_plugins and self.move_request_cycle < cycle:
            self._unschedulable[qpi.uid] = qpi
        else:
            self._push_backoff(qpi)

    def add_backoff(self, qpi: QueuedPodInfo) -> None:
        """A pod whose attempt failed for another reason (an error, a failed bind)."""
        if self._back_from_attempt(qpi):
            self._push_backoff(qpi)

    def _back_from_attempt(self, qpi: QueuedPodInfo) -> bool:
        """Take a pod back from its scheduling attempt, its backoff started;
        False if it was deleted or added anew meanwhile (nothing to queue)."""
        uid = qpi.uid
        self._in_flight.pop(uid, None)
        if uid in self._deleted_in_flight or self._find(uid) is not None:
            self._deleted_in_flight.discard(uid)
            return False
        qpi.timestamp = self.clock.monotonic()
        qpi.backoff_expiry = qpi.timestamp + self.backoff_duration(qpi.attempts)
        return True

    def backoff_duration(self, attempts: int) -> float:
        duration = self.initial_backoff
        for _ in range(1, attempts):
            duration *= 2
            if duration >= self.max_backoff:
                return self.max_backoff
        return duration

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    # ------------------------------------------------------------ introspection

    def pending(self) -> dict[str, int]:
        gated = sum(1 for q in list(self._unschedulable.values()) if q.gated_by)  # list(): read by /metrics' thread
        return {"active": len(self._active), "backoff": len(self._backoff),
                "unschedulable": len(self._unschedulable) - gated, "gated": gated}

    def waiting(self) -> Iterator[QueuedPodInfo]:
        yield from self._active.values()
        yield from self._backoff.values()
        yield from self._unschedulable.values()

    def where(self, uid: str) -> str:
        """Which part of the queue holds the pod ("" if none)."""
        for name, part in (("active", self._active), ("backoff", self._backoff),
                           ("unschedulable", self._unschedulable), ("in-flight", self._in_flight)):
            if uid in part:
                return name
        return ""

    # ------------------------------------------------------------ internals

    def _find(self, uid: str) -> QueuedPodInfo | None:
        return self._active.get(uid) or self._backoff.get(uid) or self._unschedulable.get(uid)

    def _enqueue_checked(self, qpi: QueuedPodInfo) -> None:
        """To activeQ unless a PreEnqueue plugin holds it back."""
        fwk = self.profiles.get(qpi.info.scheduler_name)
        status = fwk.run_pre_enqueue(qpi.info) if fwk is not None else None
        if status is not None:
            qpi.gated_by = status.plugin
            self._unschedulable[qpi.uid] = qpi
            return
        qpi.gated_by = ""
        self._push_active(qpi)

    def _push_active(self, qpi: QueuedPodInfo) -> None:
        self._backoff.pop(qpi.uid, None)
        self._active[qpi.uid] = qpi
        heapq.heappush(self._active_heap, (self._sort_key(qpi), qpi))
        self._wakeup.set()

    def _push_backoff(self, qpi: QueuedPodInfo) -> None:
        self._backoff[qpi.uid] = qpi
        heapq.heappush(self._backoff_heap, (qpi.backoff_expiry, next(self._seq), qpi))
        self._wakeup.set()

    def _backing_off(self, qpi: QueuedPodInfo) -> bool:
        return qpi.backoff_expiry > self.clock.monotonic()

    def _flush_backoff(self, now: float) -> None:
        heap = self._backoff_heap
        while heap and heap[0][0] <= now:
            _, _, qpi = heapq.heappop(heap)
            if self._backoff.get(qpi.uid) is qpi:
                del self._backoff[qpi.uid]
                self._push_active(qpi)

    def _flush_leftovers(self, now: float) -> None:
        self._last_leftover_flush = now
        stale = [q for q in self._unschedulable.values()
                 if not q.gated_by and now - q.timestamp >= self.max_in_unschedulable]
        for qpi in stale:
            del self._unschedulable[qpi.uid]
            if self._backing_off(qpi):
                self._push_backoff(qpi)
            else:
                self._push_active(qpi)

    async def _wait(self, timeout: float) -> None:
        waiter = asyncio.ensure_future(self._wakeup.wait())
        timer = asyncio.ensure_future(self.clock.sleep(timeout))
        try:
            await asyncio.wait((waiter, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, timer):
                task.cancel()



def pod_updated(old: PodInfo, new: PodInfo) -> bool:
    """Whether an update changed what scheduling looks at (the spec or the
    labels), as opposed to the status alone: the scheduler's own status
    writes must not make a pod retry."""
    if old.labels != new.labels:
        return True
    return old.pod.spec.SerializeToString(deterministic=True) != new.pod.spec.SerializeToString(deterministic=True)
