"""The scheduling loop: one pod at a time through its profile's plugins,
bindings in the background (Kubernetes' scheduleOne).

A scheduling cycle pops a pod and, without awaiting anything:

1. PreFilter - per-pod state, or an outright "fits nowhere";
2. Filter - nodes in zone-interleaved order, starting where the last cycle
   stopped, until enough feasible nodes are found: all nodes below 100,
   else Kubernetes' adaptive share (50 % minus 1 % per 125 nodes, at least
   5 % and at least 100 nodes), or `percentageOfNodesToScore`. A pod
   nominated to a node by an earlier preemption tries that node first;
3. PreScore and Score over the feasible nodes, weighted, and the highest
   total wins (ties broken at random);
4. assume the pod on the node in the cache and run Reserve.

Then the binding cycle (PreBind, Bind, PostBind) runs as a task of its own,
up to `max_binds_in_flight` at a time, while the next cycle starts; the
assumed pod keeps its room taken meanwhile. A failed bind gives the room
back (forget), un-reserves, and sends the pod to backoff.

A pod that fits nowhere goes to PostFilter (preemption); then it is marked
PodScheduled=False, reason Unschedulable, with a message counting the
reasons per node ("0/5 nodes are available: 2 Insufficient cpu, 3 node(s)
had untolerated taint {dedicated: gpu}."), the same message goes out as a
FailedScheduling event, and the pod waits in the queue for a cluster event
that could help it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from api import Clock, RealClock, StatusError, rfc3339
from client import Clientset, EventRecorder
from proto import core_pb2

from . import _metrics as metrics
from ._cache import Cache, Snapshot
from ._queue import SchedulingQueue
from .framework import (
    ASSIGNED_POD,
    ActionType,
    ClusterEvent,
    Code,
    CycleState,
    Framework,
    NodeInfo,
    PodInfo,
    QueuedPodInfo,
    Status,
    fit_error_message,
)

log = logging.getLogger(__name__)

MIN_FEASIBLE_NODES = 100
MIN_FEASIBLE_PERCENTAGE = 5
BASE_PERCENTAGE = 50
NO_NODES = "no nodes available to schedule pods"
MAX_YIELDS = 400  # loop turns given to the informers between two cycles, at most
QUIET_TURNS = 6  # turns without an informer event after which they are taken to be caught up
BINDING_FAILED = ClusterEvent(ASSIGNED_POD, ActionType.DELETE, "AssignedPodDelete")


def num_feasible_nodes_to_find(percentage: int | None, num_nodes: int) -> int:
    """How many feasible nodes a cycle looks for before it stops filtering."""
    if num_nodes < MIN_FEASIBLE_NODES:
        return num_nodes
    if not percentage:
        percentage = max(MIN_FEASIBLE_PERCENTAGE, BASE_PERCENTAGE - num_nodes // 125)
    if percentage >= 100:
        return num_nodes
    return max(num_nodes * percentage // 100, MIN_FEASIBLE_NODES)


@dataclass
class FitError(Exception):
    """No node fits: per node, the status that rejected it."""

    num_nodes: int
    statuses: dict[str, Status]
    rejectors: set[str] = field(default_factory=set)
    pre_filter_message: str = ""
    post_filter_message: str = ""

    @property
    def message(self) -> str:
        if self.pre_filter_message:
            text = f"0/{self.num_nodes} nodes are available: {self.pre_filter_message}."
        else:
            text = fit_error_message(self.num_nodes, self.statuses)
        if self.post_filter_message:
            text += f" {self.post_filter_message.rstrip('.')}."
        return text


class Scheduler:
    def __init__(self, cache: Cache, queue: SchedulingQueue, profiles: Mapping[str, Framework], snapshot: Snapshot,
                 *, clientset: Clientset | None = None, recorders: Mapping[str, EventRecorder] | None = None,
                 percentage_of_nodes_to_score: int = 0, clock: Clock | None = None, max_binds_in_flight: int = 64,
                 rand: random.Random | None = None) -> None:
        self.cache = cache
        self.queue = queue
        self.profiles = profiles
        self.snapshot = snapshot
        self.clientset = clientset
        self.recorders = recorders or {}
        self.percentage = percentage_of_nodes_to_score
        self.clock: Clock = clock or RealClock()
        self.rand = rand or random.Random()
        self._next_start = 0
        self.informer_activity: Callable[[], int] | None = None  # a counter of informer events handled
        self._bind_slots = asyncio.Semaphore(max_binds_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ the loop

    async def run(self, stop: asyncio.Event) -> None:
        log.info("scheduling pods for profiles %s", ", ".join(self.profiles))
        loop = asyncio.create_task(self._loop())
        await stop.wait()
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await self.drain()

    async def _loop(self) -> None:
        while True:
            try:
                await self.schedule_one()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduling cycle failed")
            await self._let_others_run()

    async def _let_others_run(self) -> None:
        """Give the informers (and binding replies, and the event sender) the
        event loop between cycles. A watch delivers one event per loop turn
        or two, so a single yield per cycle lets a busy scheduler fall ever
        further behind its watches - until the apiserver closes a watch
        whose client does not keep up. So: keep yielding while informer
        events are still arriving, up to a bound that guarantees scheduling
        progresses too (Kubernetes gets this from running informers in
        goroutines of their own)."""
        await asyncio.sleep(0)
        activity = self.informer_activity
        if activity is None:
            return
        quiet = 0
        for _ in range(MAX_YIELDS):
            seen = activity()
            await asyncio.sleep(0)
            if activity() != seen:
                quiet = 0
            else:
                quiet += 1
                if quiet >= QUIET_TURNS:
                    return

    async def drain(self) -> None:
        """Wait for the bindings and status writes in flight."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def schedule_one(self) -> None:
        qpi = await self.queue.pop()
        pi = qpi.info
        fwk = self.profiles.get(pi.scheduler_name)
        if fwk is None or pi.terminating or self.cache.is_assumed(pi.uid):
            self.queue.done(pi.uid)
            return
        cycle = self.queue.scheduling_cycle
        start = self.clock.monotonic()
        state = CycleState()
        try:
            node = self.schedule_pod(fwk, state, pi)
        except FitError as fit:
            await self._unschedulable(fwk, state, qpi, fit, cycle, start)
            return
        except Exception as err:
            log.exception("scheduling %s failed", pi.key)
            self._failed(fwk, qpi, str(err), "SchedulerError", "", cycle)
            metrics.observe_attempt(metrics.ERROR, fwk.profile_name, self.clock.monotonic() - start)
            return

        assumed = self.cache.assume_pod(pi, node)
        self.queue.nominator.delete_nominated_pod(pi)
        status = fwk.run_reserve(state, assumed, node)
        if status is not None:
            self.cache.forget_pod(pi.uid)
            if status.is_rejected():
                message = FitError(len(self.snapshot), {node: status}, {status.plugin}).message
                self._failed(fwk, qpi, message, "Unschedulable", "", cycle, unschedulable=True)
            else:
                self._failed(fwk, qpi, status.message, "SchedulerError", "", cycle)
            return
        await self._bind_slots.acquire()
        self._spawn(self._binding_cycle(fwk, state, qpi, assumed, node, start, cycle), bind=True)

    # ------------------------------------------------------------ the algorithm

    def schedule_pod(self, fwk: Framework, state: CycleState, pi: PodInfo) -> str:
        """The chosen node's name, or FitError."""
        self.snapshot.update()
        if not len(self.snapshot):
            raise FitError(0, {}, pre_filter_message="")
        feasible, statuses, rejectors = self.find_nodes_that_fit(fwk, state, pi)
        if not feasible:
            raise FitError(len(self.snapshot), statuses, rejectors)
        if len(feasible) == 1:
            return feasible[0].name
        status = fwk.run_pre_score(state, pi, feasible)
        if status is not None:
            raise RuntimeError(f"running PreScore plugin {status.plugin!r}: {status.message}")
        totals = fwk.run_score(state, pi, feasible)
        return self.select_host(feasible, totals)

    def find_nodes_that_fit(self, fwk: Framework, state: CycleState,
                            pi: PodInfo) -> tuple[list[NodeInfo], dict[str, Status], set[str]]:
        snapshot = self.snapshot
        names, status = fwk.run_pre_filter(state, pi)
        if status is not None:
            fit = FitError(len(snapshot), {n.name: status for n in snapshot.node_infos}, {status.plugin},
                           pre_filter_message=status.message)
            raise fit
        nominated = pi.pod.status.nominatedNodeName
        if nominated and names is None:
            ni = snapshot.get(nominated)
            if ni is not None and fwk.run_filters_with_nominated_pods(state, pi, ni) is None:
                return [ni], {}, set()
        nodes = snapshot.node_infos if names is None else [n for n in map(snapshot.get, sorted(names)) if n]
        wanted = num_feasible_nodes_to_find(fwk.profile.percentage_of_nodes_to_score or self.percentage, len(nodes))
        filters = [(p.name, p.filter) for p in fwk.active_filters(state)]
        with_nominated = self.queue.nominator.has_nominations()
        feasible: list[NodeInfo] = []
        statuses: dict[str, Status] = {}
        rejectors: set[str] = set()
        n = len(nodes)
        start = self._next_start % n if n and names is None else 0
        processed = 0
        only = filters[0][1] if len(filters) == 1 and not with_nominated else None
        for ni in (nodes[start:] + nodes[:start]) if start else nodes:
            processed += 1
            st: Status | None = None
            if only is not None:  # the common case, without the inner loop
                st = only(state, pi, ni)
                if st is not None:
                    rejectors.add(filters[0][0])
            elif with_nominated:
                st = fwk.run_filters_with_nominated_pods(state, pi, ni)
                if st is not None:
                    rejectors.add(st.plugin)
            else:
                for name, check in filters:
                    st = check(state, pi, ni)
                    if st is not None:
                        rejectors.add(name)
                        break
            if st is None:
                feasible.append(ni)
                if len(feasible) >= wanted:
                    break
            else:
                statuses[ni.name] = st
        if names is None and n:
            self._next_start = (start + processed) % n
        return feasible, statuses, rejectors

    def select_host(self, nodes: list[NodeInfo], totals: list[int]) -> str:
        best = max(totals)
        top = [i for i, t in enumerate(totals) if t == best]
        return nodes[top[0] if len(top) == 1 else self.rand.choice(top)].name

    # ------------------------------------------------------------ binding

    async def _binding_cycle(self, fwk: Framework, state: CycleState, qpi: QueuedPodInfo, pi: PodInfo, node: str,
                             start: float, cycle: int) -> None:
        try:
            status = await fwk.run_pre_bind(state, pi, node)
            if status is None:
                status = await fwk.run_bind(state, pi, node)
        except Exception as err:
            log.exception("binding %s to %s failed", pi.key, node)
            status = Status(Code.ERROR, (str(err),))
        if status is not None:
            fwk.run_unreserve(state, pi, node)
            self.cache.forget_pod(pi.uid)
            self.queue.move_all_to_active_or_backoff(BINDING_FAILED)  # the room it held may help others
            log.info("binding %s to %s failed: %s", pi.key, node, status.message)
            self._failed(fwk, qpi, f"Binding rejected: {status.message}", "SchedulerError", "", cycle)
            metrics.observe_attempt(metrics.ERROR, fwk.profile_name, self.clock.monotonic() - start)
            return
        self.cache.finish_binding(pi.uid)
        self.queue.done(pi.uid)
        fwk.run_post_bind(state, pi, node)
        recorder = self.recorders.get(fwk.profile_name)
        if recorder is not None:
            recorder.event(qpi.info.pod, "Normal", "Scheduled", f"Successfully assigned {pi.key} to {node}")
        metrics.observe_attempt(metrics.SCHEDULED, fwk.profile_name, self.clock.monotonic() - start)

    # ------------------------------------------------------------ failures

    async def _unschedulable(self, fwk: Framework, state: CycleState, qpi: QueuedPodInfo, fit: FitError,
                             cycle: int, start: float) -> None:
        pi = qpi.info
        nominated = ""
        clear_nomination = False
        if fit.num_nodes == 0:
            self._failed(fwk, qpi, NO_NODES, "SchedulerError", "", cycle)
            metrics.observe_attempt(metrics.ERROR, fwk.profile_name, self.clock.monotonic() - start)
            return
        if fwk.post_filter:
            metrics.PREEMPTION_ATTEMPTS.inc()
            result, status = await fwk.run_post_filter(state, pi, fit.statuses)
            if status.is_success() and result is not None:
                nominated = result.nominated_node_name
            else:
                fit.post_filter_message = status.message
                clear_nomination = result is not None and not result.nominated_node_name
        qpi.unschedulable_plugins = set(fit.rejectors)
        self._failed(fwk, qpi, fit.message, "Unschedulable", nominated, cycle, unschedulable=True,
                     clear_nomination=clear_nomination)
        metrics.observe_attempt(metrics.UNSCHEDULABLE, fwk.profile_name, self.clock.monotonic() - start)

    def _failed(self, fwk: Framework, qpi: QueuedPodInfo, message: str, reason: str, nominated: str, cycle: int,
                *, unschedulable: bool = False, clear_nomination: bool = False) -> None:
        """Requeue the pod, say why (event + PodScheduled=False) and record
        a nomination (handleSchedulingFailure)."""
        pi = qpi.info
        if unschedulable:
            self.queue.add_unschedulable(qpi, cycle)
        else:
            self.queue.add_backoff(qpi)
        if nominated:
            self.queue.nominator.add_nominated_pod(pi, nominated)
        elif clear_nomination:
            self.queue.nominator.delete_nominated_pod(pi)
        log.info("unable to schedule %s: %s", pi.key, message)
        recorder = self.recorders.get(fwk.profile_name)
        if recorder is not None:
            recorder.event(pi.pod, "Warning", "FailedScheduling", message)
        new_nomination = nominated if nominated else ("" if clear_nomination else None)
        self._spawn(self._update_status(pi, reason, message, new_nomination))

    async def _update_status(self, pi: PodInfo, reason: str, message: str, nominated: str | None) -> None:
        """PodScheduled=False with the reason, and status.nominatedNodeName,
        unless the pod already says so (or is gone, or got bound)."""
        if self.clientset is None:
            return
        pods = self.clientset.resource(core_pb2.Pod, pi.namespace)
        pod = pi.pod
        for attempt in range(3):
            if pod.spec.nodeName or pod.metadata.uid != pi.uid:
                return
            current = next((c for c in pod.status.conditions if c.type == "PodScheduled"), None)
            same = (current is not None and current.status == "False" and current.reason == reason
                    and current.message == message)
            if same and (nominated is None or pod.status.nominatedNodeName == nominated):
                return
            new = core_pb2.Pod()
            new.CopyFrom(pod)
            kept = [c for c in new.status.conditions if c.type != "PodScheduled"]
            condition = core_pb2.PodCondition(type="PodScheduled", status="False", reason=reason, message=message,
                                              lastProbeTime="", lastTransitionTime=rfc3339(self.clock.now()))
            if current is not None and current.status == "False":
                condition.lastTransitionTime = current.lastTransitionTime
            del new.status.conditions[:]
            new.status.conditions.extend([*kept, condition])
            if nominated is not None:
                new.status.nominatedNodeName = nominated
            try:
                await pods.update_status(new)
                return
            except StatusError as err:
                if err.reason == "NotFound":
                    return
                if err.reason != "Conflict" or attempt == 2:
                    log.warning("updating the status of %s: %s", pi.key, err)
                    return
                try:
                    pod = await pods.get(pi.name)
                except StatusError:
                    return

    def _spawn(self, coro: Coroutine[Any, Any, None], *, bind: bool = False) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def finished(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if bind:
                self._bind_slots.release()
            if not t.cancelled() and t.exception() is not None:
                log.error("background task failed", exc_info=t.exception())

        task.add_done_callback(finished)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
