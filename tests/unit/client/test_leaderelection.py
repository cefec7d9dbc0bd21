"""client/_leaderelection.py as a state machine on a FakeClock, against an
in-memory Lease store with resourceVersion compare-and-swap: one leader
among candidates; expiry judged from when a candidate saw the Lease change,
never from remote timestamps; fencing (a leader cut off from the apiserver,
or stuck on a hanging one, stops before a standby can take over); a Lease
taken by someone else stops the leader at once; clean release hands over
within a retry period; leaseTransitions, acquireTime and renewTime."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from api import FakeClock, already_exists, new_error, not_found, rfc3339_micro, stale_update
from client import LeaderElector
from proto import coordination_pb2

from .conftest import Advance, Settle

Lease = coordination_pb2.Lease


class LeaseServer:
    """One namespace's Leases, stored the way the apiserver would: every
    write bumps resourceVersion, and an update carrying a stale one is a
    Conflict. `log` records writes and callbacks in the order they happen."""

    def __init__(self) -> None:
        self.leases: dict[str, Lease] = {}
        self.revision = 0
        self.log: list[str] = []

    def store(self, lease: Lease) -> Lease:
        self.revision += 1
        saved = Lease()
        saved.CopyFrom(lease)
        saved.metadata.resourceVersion = str(self.revision)
        self.leases[lease.metadata.name] = saved
        self.log.append(f"write holder={saved.spec.holderIdentity!r}")
        out = Lease()
        out.CopyFrom(saved)
        return out


class LeaseView:
    """One candidate's connection to the LeaseServer; a test can cut it off
    (`down`) or make every call hang (`hang`)."""

    def __init__(self, server: LeaseServer) -> None:
        self.server = server
        self.down = False
        self.hang = False

    async def _reach(self) -> None:
        await asyncio.sleep(0)
        if self.hang:
            await asyncio.Event().wait()
        if self.down:
            raise new_error("ServiceUnavailable", "the server is unavailable: connection refused")

    async def get(self, name: str) -> Lease:
        await self._reach()
        if name not in self.server.leases:
            raise not_found("leases", "coordination.k8s.io", name)
        out = Lease()
        out.CopyFrom(self.server.leases[name])
        return out

    async def create(self, obj: Lease) -> Lease:
        await self._reach()
        if obj.metadata.name in self.server.leases:
            raise already_exists("leases", "coordination.k8s.io", obj.metadata.name)
        return self.server.store(obj)

    async def update(self, obj: Lease) -> Lease:
        await self._reach()
        current = self.server.leases.get(obj.metadata.name)
        if current is None:
            raise not_found("leases", "coordination.k8s.io", obj.metadata.name)
        if obj.metadata.resourceVersion != current.metadata.resourceVersion:
            raise stale_update("leases", "coordination.k8s.io", obj.metadata.name)
        return self.server.store(obj)


class Candidate:
    def __init__(self, server: LeaseServer, identity: str, clock: FakeClock, **options: Any) -> None:
        self.server = server
        self.identity = identity
        self.clock = clock
        self.view = LeaseView(server)
        self.started_at: float | None = None
        self.stopped_at: float | None = None  # when the work saw its stop signal / cancellation
        self.stop_was_set = False
        self.stopped_leading = 0
        self.leaders: list[str] = []
        self.elector = LeaderElector(self.view, "kube-system", "lock", identity, clock=clock, rand=lambda: 0.0,
                                     on_started_leading=self._lead, on_stopped_leading=self._stopped,
                                     on_new_leader=self.leaders.append, **options)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.elector.run())

    async def _lead(self, stop: asyncio.Event) -> None:
        self.started_at = self.clock.monotonic()
        self.server.log.append(f"{self.identity} started")
        try:
            await stop.wait()
        finally:
            self.stopped_at = self.clock.monotonic()
            self.stop_was_set = stop.is_set()
            self.server.log.append(f"{self.identity} work stopped")

    def _stopped(self) -> None:
        self.stopped_leading += 1

    async def cancel(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@pytest.fixture
def server() -> LeaseServer:
    return LeaseServer()


@pytest.fixture
async def candidates(server: LeaseServer, clock: FakeClock) -> AsyncIterator[list[Candidate]]:
    made: list[Candidate] = []
    yield made
    for c in made:
        if c.task is not None:
            await c.cancel()


def lease(server: LeaseServer) -> Lease:
    return server.leases["lock"]


async def test_the_first_candidate_creates_the_lease(
        server: LeaseServer, clock: FakeClock, candidates: list[Candidate], advance: Advance) -> None:
    a = Candidate(server, "a", clock)
    candidates.append(a)
    a.start()
    await advance(0)
    assert a.elector.is_leader() and a.started_at == 0
    spec = lease(server).spec
    assert (spec.holderIdentity, spec.leaseDurationSeconds, spec.leaseTransitions) == ("a", 15, 0)
    assert spec.HasField("leaseTransitions")
    assert spec.acquireTime == spec.renewTime == rfc3339_micro(clock.now())
    assert a.leaders == ["a"]
    acquired = spec.acquireTime
    await advance(2.1)
    spec = lease(server).spec
    assert spec.acquireTime == acquired and spec.renewTime != acquired
    assert spec.leaseTransitions == 0


async def test_exactly_one_of_several_leads(
        server: LeaseServer, clock: FakeClock, candidates: list[Candidate], advance: Advance) -> None:
    candidates.extend(Candidate(server, name, clock) for name in ("a", "b", "c"))
    for c in candidates:
        c.start()
    for _ in range(30):
        await advance(2, tick=0.25)
        assert sum(c.elector.is_leader() for c in candidates) == 1
    leader = next(c for c in candidates if c.elector.is_leader())
    assert all(c.leaders == [leader.identity] for c in candidates)
    assert all(c.started_at is None for c in candidates if c is not leader)
    assert lease(server).spec.leaseTransitions == 0


@pytest.mark.parametrize("remote_renew", [-3600.0, 3600.0], ids=["renewed-an-hour-ago", "renewed-in-the-future"])
async def test_expiry_is_judged_by_the_local_clock_only(
        server: LeaseServer, clock: FakeClock, candidates: list[Candidate], advance: Advance,
        remote_renew: float) -> None:
    ghost = Lease()
    ghost.metadata.name, ghost.metadata.namespace = "lock", "kube-system"
    ghost.spec.holderIdentity, ghost.spec.leaseDurationSeconds, ghost.spec.leaseTransitions = "ghost", 15, 4
    ghost.spec.renewTime = rfc3339_micro(clock.now() + remote_renew)
    server.store(ghost)
    b = Candidate(server, "b", clock)
    candidates.append(b)
    b.start()
    await advance(14.5, tick=0.25)
    assert not b.elector.is_leader(), "took a lease it had not seen unchanged for leaseDurationSeconds"
    assert b.leaders == ["ghost"]
    await advance(2.5, tick=0.25)  # 15 s since it first saw it, plus one retry period
    assert b.elector.is_leader()
    spec = lease(server).spec
    assert (spec.holderIdentity, spec.leaseTransitions) == ("b", 5)
    assert spec.acquireTime == spec.renewTime


@pytest.mark.timeout(20)  # a leader stuck on a hanging call must not hang the suite either
@pytest.mark.parametrize("failure", ["down", "hang"])
async def test_a_cut_off_leader_stops_before_a_standby_takes_over(
        server: LeaseServer, clock: FakeClock, candidates: list[Candidate], advance: Advance, failure: str) -> None:
    a, b = Candidate(server, "a", clock), Candidate(server, "b", clock)
    candidates.extend((a, b))
    a.start()
    await advance(0)
    b.start()
    await advance(5, tick=0.25)
    last_renewal = lease(server).spec.renewTime
    cut_at = clock.monotonic()
    setattr(a.view, failure, True)
    await advance(30, tick=0.1)
    assert a.task is not None and a.task.done() and a.task.exception() is None  # run() returned: lost
    assert a.stopped_at is not None and a.stop_was_set and a.stopped_leading == 1
    assert b.started_at is not None
    assert a.stopped_at < b.started_at, "fencing: the old leader was still working when the new one started"
    assert a.stopped_at - cut_at <= 10.0 + 0.11  # within renew_deadline of its last renewal
    assert b.started_at - cut_at >= 15.0 - 2.0  # not before leaseDuration after the last renewal b saw
    assert lease(server).spec.renewTime != last_renewal
    spec = lease(server).spec
    assert (spec.holderIdentity, spec.leaseTransitions) == ("b", 1)
    assert a.leaders == ["a"] and b.leaders == ["a", "b"]


async def test_a_lease_taken_by_another_stops_the_leader_at_once(
        server: LeaseServer, clock: FakeClock, candidates: list[Candidate], advance: Advance) -> None:
    a = Candidate(server, "a", clock)
    candidates.append(a)
    a.start()
    await advance(1)
    stolen = Lease()
    stolen.CopyFrom(lease(server))
    stolen.spec.holderIdentity = "intruder"
    server.store(stolen)
    await advance(2.1)  # the next renewal finds out
    assert not a.elector.is_leader()
    assert a.stopped_at is not None and a.stopped_at <= 2.1
    assert lease(server).spec.holderIdentity == "intruder"  # and it did not write over it


async def test_clean_shutdown_releases_and_the_standby_takes_over_at_once(
        server: LeaseServer, clock: FakeClock, candidates: list[Candidate], advance: Advance,
        settle: Settle) -> None:
    a, b = Candidate(server, "a", clock), Candidate(server, "b", clock)
    candidates.extend((a, b))
    a.start()
    await advance(0)
    b.start()
    await advance(4, tick=0.25)
    await a.cancel()
    spec = lease(server).spec
    assert (spec.holderIdentity, spec.leaseDurationSeconds, spec.leaseTransitions) == ("", 1, 0)
    # The work stopped before the release was written.
    assert server.log.index("a work stopped") < server.log.index("write holder=''")
    assert a.stopped_leading == 1
    released_at = clock.monotonic()
    await advance(2.1)
    assert b.elector.is_leader() and b.started_at is not None
    assert b.started_at - released_at <= 2.1  # a retry period, not a lease duration
    spec = lease(server).spec
    assert (spec.holderIdentity, spec.leaseDurationSeconds, spec.leaseTransitions) == ("b", 15, 1)


async def test_without_release_the_standby_waits_out_the_lease(
        server: LeaseServer, clock: FakeClock, candidates: list[Candidate], advance: Advance) -> None:
    a = Candidate(server, "a", clock, release_on_cancel=False)
    b = Candidate(server, "b", clock)
    candidates.extend((a, b))
    a.start()
    await advance(0)
    b.start()
    await advance(4, tick=0.25)
    await a.cancel()
    assert a.stopped_leading == 1 and lease(server).spec.holderIdentity == "a"
    await advance(10, tick=0.25)
    assert not b.elector.is_leader()
    await advance(8, tick=0.25)
    assert b.elector.is_leader()
    assert lease(server).spec.leaseTransitions == 1


async def test_a_crashing_leader_steps_down_and_raises(
        server: LeaseServer, clock: FakeClock, advance: Advance) -> None:
    async def crash(stop: asyncio.Event) -> None:
        raise RuntimeError("controller bug")

    stopped: list[bool] = []
    elector = LeaderElector(LeaseView(server), "kube-system", "lock", "a", clock=clock,
                            on_started_leading=crash, on_stopped_leading=lambda: stopped.append(True))
    task = asyncio.create_task(elector.run())
    await advance(0.5)
    assert task.done()
    with pytest.raises(RuntimeError, match="controller bug"):
        task.result()
    assert stopped == [True]
    assert lease(server).spec.holderIdentity == ""  # released: it had stopped working


async def test_settings_are_checked(server: LeaseServer) -> None:
    view = LeaseView(server)
    with pytest.raises(ValueError, match="greater than renew_deadline"):
        LeaderElector(view, "ns", "lock", "a", lease_duration=10, renew_deadline=10)
    with pytest.raises(ValueError, match=r"1.2 \* retry_period"):
        LeaderElector(view, "ns", "lock", "a", renew_deadline=2, retry_period=2)
    with pytest.raises(ValueError, match="identity"):
        LeaderElector(view, "ns", "lock", "")
