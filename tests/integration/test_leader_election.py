"""Leader election against a real apiserver, with short timings (lease 2 s,
renew deadline 1.5 s, retry 0.3 s): of two candidates exactly one leads; a
leader stopped without releasing is replaced within about a lease duration;
a clean release hands over within a retry period; a leader cut off from its
apiserver stops before the other starts; and the Lease records holder,
duration and transitions the way Kubernetes does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api import parse_time
from client import ClientConfig, Clientset, LeaderElector
from proto import coordination_pb2
from tests.support.wait import eventually

from .conftest import Etcd, start_apiserver

LEASE = "test-lock"


class Candidate:
    """One elector with its callbacks timed on the real monotonic clock."""

    def __init__(self, clientset: Clientset, namespace: str, identity: str, *, release_on_cancel: bool) -> None:
        self.identity = identity
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self.stop_signalled = False
        self.new_leaders: list[str] = []
        self.elector = LeaderElector(clientset, namespace, LEASE, identity,
                                     lease_duration=2.0, renew_deadline=1.5, retry_period=0.3,
                                     on_started_leading=self._lead, on_new_leader=self.new_leaders.append,
                                     release_on_cancel=release_on_cancel)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.elector.run())

    async def _lead(self, stop: asyncio.Event) -> None:
        self.started_at = time.monotonic()
        try:
            await stop.wait()
        finally:
            self.stopped_at = time.monotonic()
            self.stop_signalled = stop.is_set()

    async def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


@pytest.fixture
async def candidates() -> AsyncIterator[list[Candidate]]:
    made: list[Candidate] = []
    yield made
    for c in made:
        await c.cancel()


async def lease_spec(client: Clientset, namespace: str) -> coordination_pb2.LeaseSpec:
    return (await client.resource(coordination_pb2.Lease, namespace).get(LEASE)).spec


async def test_one_leads_and_the_other_takes_over_when_it_stops(
        client: Clientset, namespace: str, candidates: list[Candidate]) -> None:
    a = Candidate(client, namespace, "a", release_on_cancel=False)
    b = Candidate(client, namespace, "b", release_on_cancel=False)
    candidates.extend((a, b))
    a.start()
    b.start()
    await eventually(lambda: a.elector.is_leader() or b.elector.is_leader(), "a leader")
    for _ in range(60):  # 3 s: longer than a lease, many renewals
        assert a.elector.is_leader() != b.elector.is_leader(), "not exactly one leader"
        await asyncio.sleep(0.05)
    leader, standby = (a, b) if a.elector.is_leader() else (b, a)
    spec = await lease_spec(client, namespace)
    assert (spec.holderIdentity, spec.leaseDurationSeconds, spec.leaseTransitions) == (leader.identity, 2, 0)
    assert standby.new_leaders == [leader.identity]

    stopped = time.monotonic()
    await leader.cancel()  # gone without releasing, like a crashed process
    assert leader.stop_signalled
    assert (await lease_spec(client, namespace)).holderIdentity == leader.identity
    await eventually(standby.elector.is_leader, "the standby to take over", timeout=5)
    taken_wall = time.time()
    assert standby.started_at is not None
    takeover = standby.started_at - stopped
    # It waited out the lease it last saw renewed (at most a retry period
    # before the stop) and took it within a jittered retry period after.
    assert 2.0 - 0.3 - 0.1 <= takeover <= 2.0 + 0.3 * 2.2 + 0.5, takeover
    spec = await lease_spec(client, namespace)
    assert (spec.holderIdentity, spec.leaseTransitions) == (standby.identity, 1)
    assert abs(parse_time(spec.acquireTime) - taken_wall) < 0.5  # acquireTime: when the new holder took it
    assert parse_time(spec.renewTime) >= parse_time(spec.acquireTime)


async def test_a_clean_release_hands_over_at_once(client: Clientset, namespace: str,
                                                  candidates: list[Candidate]) -> None:
    alone = Candidate(client, namespace, "a", release_on_cancel=True)
    candidates.append(alone)
    alone.start()
    await eventually(alone.elector.is_leader, "the only candidate to lead")
    await alone.cancel()
    spec = await lease_spec(client, namespace)
    assert (spec.holderIdentity, spec.leaseDurationSeconds, spec.leaseTransitions) == ("", 1, 0)
    assert spec.HasField("holderIdentity")

    a = Candidate(client, namespace, "a", release_on_cancel=True)
    b = Candidate(client, namespace, "b", release_on_cancel=True)
    candidates.extend((a, b))
    a.start()
    await eventually(a.elector.is_leader, "a to take the released lease")
    assert (await lease_spec(client, namespace)).leaseTransitions == 1
    b.start()
    await asyncio.sleep(1.0)
    assert not b.elector.is_leader()
    released = time.monotonic()
    await a.cancel()
    await eventually(b.elector.is_leader, "b to take over", timeout=5)
    assert b.started_at is not None and b.started_at - released < 1.0  # a retry period, not a lease
    spec = await lease_spec(client, namespace)
    assert (spec.holderIdentity, spec.leaseDurationSeconds, spec.leaseTransitions) == ("b", 2, 2)


async def test_a_leader_cut_off_from_the_apiserver_stops_before_the_other_starts(
        etcd: Etcd, workdir: Path, client: Clientset, namespace: str, candidates: list[Candidate]) -> None:
    own = await asyncio.to_thread(start_apiserver, etcd, workdir)
    own_client = Clientset.connect(ClientConfig(server=own.target))
    try:
        a = Candidate(own_client, namespace, "a", release_on_cancel=True)
        b = Candidate(client, namespace, "b", release_on_cancel=True)
        candidates.extend((a, b))
        a.start()
        await eventually(a.elector.is_leader, "a to lead")
        b.start()
        await asyncio.sleep(1.0)
        await asyncio.to_thread(own.stop)  # a can no longer renew
        cut = time.monotonic()
        await eventually(b.elector.is_leader, "b to take over", timeout=8)
        assert a.stopped_at is not None and a.stop_signalled
        assert b.started_at is not None
        assert a.stopped_at < b.started_at, "both were working at once"
        assert a.stopped_at - cut <= 1.5 + 0.2, "a kept leading past its renew deadline"
        assert a.task is not None and a.task.done()  # run() returned: leadership lost
        spec = await lease_spec(client, namespace)
        assert (spec.holderIdentity, spec.leaseTransitions) == ("b", 1)
    finally:
        for c in candidates:
            await c.cancel()
        await own_client.close()
        await asyncio.to_thread(own.stop)
