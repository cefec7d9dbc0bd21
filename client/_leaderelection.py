"""Leader election on a Lease (client-go's leaderelection with a LeaseLock).

Two replicas of the scheduler or the controller-manager must not both act.
Each runs a LeaderElector on the same Lease; the one whose identity the
Lease holds leads, the others stand by and take over when it stops
renewing. What makes it safe:

* Expiry is judged only on the local monotonic clock: a candidate records
  *when it saw* the Lease's content (renewTime) last change, and treats the
  Lease as expired `leaseDurationSeconds` after that. Remote timestamps are
  written for people to read and never compared, so clock skew between
  machines does not matter.
* Every write is a compare-and-swap on metadata.resourceVersion; of two
  candidates racing for an expired Lease one gets a Conflict and stays a
  candidate.
* Fencing: the leader counts its renew deadline from the moment it *sent*
  its last successful renewal. If renewals keep failing (the apiserver is
  unreachable, writes conflict) it stops leading `renew_deadline` seconds
  after that moment, even if an attempt is still hanging: the stop event
  handed to `on_started_leading` is set and the work task cancelled. A
  standby cannot acquire before `lease_duration` after it saw that same
  renewal, and `renew_deadline < lease_duration`, so the old leader has
  stopped before a new one starts. A leader that sees another holder in the
  Lease stops at once.
* On a clean shutdown (the `run()` task is cancelled, `release_on_cancel`)
  the work is stopped first, then the Lease is released as Kubernetes does
  (holderIdentity "", leaseDurationSeconds 1), so a standby takes over
  within one retry period instead of waiting out the lease. Work that
  crashes (`on_started_leading` raises) is treated the same way, and
  `run()` then re-raises its error.

`leaseTransitions` counts changes of holder; acquireTime is when the current
holder took the Lease. `run()` returns when leadership is lost, so a
component either exits (what Kubernetes components do) or calls it again
to stand for election anew.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from api import Clock, RealClock, StatusError, rfc3339_micro
from proto import coordination_pb2

from ._clientset import Clientset

log = logging.getLogger(__name__)

JITTER_FACTOR = 1.2
Lease = coordination_pb2.Lease


class LeaseClient(Protocol):
    """The verbs a LeaderElector uses (a ResourceClient[Lease] has them)."""

    async def get(self, name: str) -> coordination_pb2.Lease: ...

    async def create(self, obj: coordination_pb2.Lease) -> coordination_pb2.Lease: ...

    async def update(self, obj: coordination_pb2.Lease) -> coordination_pb2.Lease: ...


def _failure(task: asyncio.Task[Any]) -> BaseException | None:
    return task.exception() if task.done() and not task.cancelled() else None


def _copy(lease: coordination_pb2.Lease) -> coordination_pb2.Lease:
    out = coordination_pb2.Lease()
    out.CopyFrom(lease)
    return out


class LeaderElector:
    def __init__(self, leases: Clientset | LeaseClient, namespace: str, name: str, identity: str, *,
                 lease_duration: float = 15.0, renew_deadline: float = 10.0, retry_period: float = 2.0,
                 on_started_leading: Callable[[asyncio.Event], Awaitable[None] | None] | None = None,
                 on_stopped_leading: Callable[[], Awaitable[None] | None] | None = None,
                 on_new_leader: Callable[[str], Awaitable[None] | None] | None = None,
                 clock: Clock | None = None, release_on_cancel: bool = True,
                 rand: Callable[[], float] = random.random) -> None:
        if not identity:
            raise ValueError("leader election requires a non-empty identity")
        if min(lease_duration, renew_deadline, retry_period) <= 0:
            raise ValueError("lease_duration, renew_deadline and retry_period must be greater than zero")
        if lease_duration <= renew_deadline:
            raise ValueError(f"lease_duration ({lease_duration}) must be greater than renew_deadline "
                             f"({renew_deadline})")
        if renew_deadline <= JITTER_FACTOR * retry_period:
            raise ValueError(f"renew_deadline ({renew_deadline}) must be greater than {JITTER_FACTOR} * "
                             f"retry_period ({retry_period})")
        self._client: LeaseClient = (leases.resource(coordination_pb2.Lease, namespace)
                                     if isinstance(leases, Clientset) else leases)
        self.namespace, self.name, self.identity = namespace, name, identity
        self.lease_duration, self.renew_deadline, self.retry_period = lease_duration, renew_deadline, retry_period
        self._duration_seconds = math.ceil(lease_duration)
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._on_new_leader = on_new_leader
        self._clock = clock or RealClock()
        self.release_on_cancel = release_on_cancel
        self._rand = rand
        self._lease: coordination_pb2.Lease | None = None  # last seen, for its resourceVersion
        self._observed_raw = b""
        self._observed_at = 0.0  # local monotonic time the Lease's content last changed
        self._observed_duration = 0
        self._renewed_at = 0.0  # local monotonic time our last successful write was sent
        self._reported_leader = ""
        self._leading = False
        self._background: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------ public

    def is_leader(self) -> bool:
        """True while this elector leads (between the two callbacks)."""
        return self._leading

    @property
    def leader(self) -> str:
        """The holder identity last observed in the Lease ("" if none)."""
        return self._lease.spec.holderIdentity if self._lease is not None else ""

    async def run(self) -> None:
        """Stand for election, lead, and return once leadership is lost.
        Cancel the task running this to step down cleanly."""
        await self._acquire()
        stop = asyncio.Event()
        self._leading = True
        log.info("%s: acquired lease %s/%s", self.identity, self.namespace, self.name)
        work = asyncio.create_task(self._lead(stop), name=f"leading {self.name}")
        renew = asyncio.create_task(self._renew(), name=f"renewing {self.name}")
        step_down = False  # cancelled, or the work crashed: the Lease is still ours to release
        try:
            await asyncio.wait({work, renew}, return_when=asyncio.FIRST_COMPLETED)
            if not renew.done() and _failure(work) is None:
                await renew  # the work returned on its own; keep the Lease until it is lost
            step_down = not renew.done()
        except asyncio.CancelledError:
            step_down = True
            raise
        finally:
            # Fencing: stop the guarded work before anything else happens.
            stop.set()
            self._leading = False
            work.cancel()
            renew.cancel()
            await asyncio.gather(work, renew, return_exceptions=True)
            if step_down and self.release_on_cancel:
                await self._within(self.release(), self.renew_deadline)
            log.info("%s: stopped leading lease %s/%s", self.identity, self.namespace, self.name)
            await self._call(self._on_stopped)
        failure = _failure(work)
        if failure is not None:
            raise failure

    async def release(self) -> bool:
        """Give up the Lease if this elector holds it. Only call this once
        the work the Lease guards has stopped."""
        if self._lease is None or self._lease.spec.holderIdentity != self.identity:
            return True
        lease = _copy(self._lease)
        stamp = rfc3339_micro(self._clock.now())
        lease.spec.holderIdentity = ""
        lease.spec.leaseDurationSeconds = 1
        lease.spec.acquireTime = stamp
        lease.spec.renewTime = stamp
        now = self._clock.monotonic()
        try:
            released = await self._client.update(lease)
        except StatusError as err:
            log.warning("%s: could not release lease %s/%s: %s", self.identity, self.namespace, self.name, err)
            return False
        self._observe(released, now)
        return True

    # ------------------------------------------------------------ the state machine

    async def _acquire(self) -> None:
        while True:
            if await self._attempt(self.renew_deadline):
                return
            await self._clock.sleep(self.retry_period * (1 + JITTER_FACTOR * self._rand()))

    async def _renew(self) -> None:
        """Renew every retry_period; return once the renew deadline passed
        without a successful renewal, or another holder took the Lease."""
        while True:
            await self._clock.sleep(self.retry_period)
            while True:
                left = self._renewed_at + self.renew_deadline - self._clock.monotonic()
                if left <= 0:
                    log.warning("%s: failed to renew lease %s/%s within %.1fs", self.identity, self.namespace,
                                self.name, self.renew_deadline)
                    return
                if await self._attempt(left):
                    break
                if self.leader not in ("", self.identity):
                    log.warning("%s: lease %s/%s was taken by %s", self.identity, self.namespace, self.name,
                                self.leader)
                    return
                left = self._renewed_at + self.renew_deadline - self._clock.monotonic()
                await self._clock.sleep(min(self.retry_period, max(left, 0.0)))

    async def _attempt(self, timeout: float) -> bool:
        started = self._clock.monotonic()
        ok = await self._within(self._try_acquire_or_renew(), timeout)
        if ok:
            self._renewed_at = started
        self._report_leader()
        return ok

    async def _try_acquire_or_renew(self) -> bool:
        now = self._clock.monotonic()
        stamp = rfc3339_micro(self._clock.now())
        if self._leading and self._lease is not None and self._lease.spec.holderIdentity == self.identity:
            renewed = _copy(self._lease)  # the fast path: no read while we hold it
            renewed.spec.renewTime = stamp
            try:
                self._observe(await self._client.update(renewed), now)
                return True
            except StatusError as err:
                if err.reason != "Conflict":
                    log.info("%s: renewing lease %s/%s: %s", self.identity, self.namespace, self.name, err)
                    return False
        try:
            current = await self._client.get(self.name)
        except StatusError as err:
            if err.reason != "NotFound":
                log.info("%s: reading lease %s/%s: %s", self.identity, self.namespace, self.name, err)
                return False
            return await self._create(stamp, now)
        self._observe(current, now)
        holder = current.spec.holderIdentity
        if holder and holder != self.identity and self._observed_at + self._observed_duration > now:
            return False  # held, and not expired as far as we have seen
        lease = _copy(current)
        if holder != self.identity:
            lease.spec.acquireTime = stamp
            lease.spec.leaseTransitions = current.spec.leaseTransitions + 1
        lease.spec.holderIdentity = self.identity
        lease.spec.leaseDurationSeconds = self._duration_seconds
        lease.spec.renewTime = stamp
        try:
            self._observe(await self._client.update(lease), now)  # CAS on metadata.resourceVersion
        except StatusError as err:
            log.info("%s: taking lease %s/%s: %s", self.identity, self.namespace, self.name, err)
            return False
        return True

    async def _create(self, stamp: str, now: float) -> bool:
        lease = coordination_pb2.Lease()
        lease.metadata.name = self.name
        lease.metadata.namespace = self.namespace
        spec = lease.spec
        spec.holderIdentity = self.identity
        spec.leaseDurationSeconds = self._duration_seconds
        spec.acquireTime = spec.renewTime = stamp
        spec.leaseTransitions = 0
        try:
            self._observe(await self._client.create(lease), now)
        except StatusError as err:
            log.info("%s: creating lease %s/%s: %s", self.identity, self.namespace, self.name, err)
            return False
        return True

    def _observe(self, lease: coordination_pb2.Lease, now: float) -> None:
        raw = lease.spec.SerializeToString(deterministic=True)
        if raw != self._observed_raw:
            self._observed_raw = raw
            self._observed_at = now
            self._observed_duration = lease.spec.leaseDurationSeconds
        self._lease = lease

    def _report_leader(self) -> None:
        holder = self.leader
        if holder and holder != self._reported_leader:
            self._reported_leader = holder
            if self._on_new_leader is not None:
                self._spawn(self._call(self._on_new_leader, holder))

    # ------------------------------------------------------------ plumbing

    async def _lead(self, stop: asyncio.Event) -> None:
        if self._on_started is not None:
            result = self._on_started(stop)
            if inspect.isawaitable(result):
                await result

    async def _within(self, attempt: Coroutine[Any, Any, bool], seconds: float) -> bool:
        """The attempt's answer, or False if it has not answered after
        `seconds` on our clock (it is then cancelled)."""
        task = asyncio.ensure_future(attempt)
        timer = asyncio.ensure_future(self._clock.sleep(seconds))
        try:
            await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            task.cancel()
            timer.cancel()
            await asyncio.gather(task, timer, return_exceptions=True)
        if task.cancelled():
            return False
        if task.exception() is not None:
            log.warning("%s: lease %s/%s: %r", self.identity, self.namespace, self.name, task.exception())
            return False
        return task.result()

    async def _call(self, func: Callable[..., Awaitable[None] | None] | None, *args: Any) -> None:
        if func is None:
            return
        try:
            result = func(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("%s: leader election callback failed", self.identity)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
