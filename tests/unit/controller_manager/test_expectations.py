"""controller_manager/_expectations.py: a key with pending creations or
deletions is not satisfied until they are observed or lowered; deletions
expected by key count each object once; records expire after the TTL;
a key with no record, or a forgotten one, is satisfied. OwnWrites tells a
cache that trails the controller's own last write."""

from __future__ import annotations

from api import FakeClock
from controller_manager._expectations import ControllerExpectations, OwnWrites


def test_creations_are_counted_off() -> None:
    e = ControllerExpectations(FakeClock())
    assert e.satisfied("ns/web") and e.pending("ns/web") is None
    e.expect_creations("ns/web", 3)
    assert not e.satisfied("ns/web")
    e.creation_observed("ns/web")
    e.creation_observed("ns/web")
    assert not e.satisfied("ns/web") and e.pending("ns/web") == (1, 0)
    e.lower("ns/web", adds=1)  # the last create was refused
    assert e.satisfied("ns/web")
    e.creation_observed("ns/other")  # no record: nothing happens
    assert e.pending("ns/other") is None


def test_deletions_by_key_count_once() -> None:
    e = ControllerExpectations(FakeClock())
    e.expect_deletions("ns/web", ["ns/a", "ns/b"])
    e.deletion_observed("ns/web", "ns/a")
    e.deletion_observed("ns/web", "ns/a")  # the DELETE after the deletionTimestamp
    e.deletion_observed("ns/web", "ns/zzz")  # not one we deleted
    e.deletion_observed("ns/web")  # no key: cannot be matched
    assert not e.satisfied("ns/web") and e.pending("ns/web") == (0, 1)
    e.deletion_observed("ns/web", "ns/b")
    assert e.satisfied("ns/web")


def test_counted_deletions() -> None:
    e = ControllerExpectations(FakeClock())
    e.expect_deletions("k", 2)
    e.deletion_observed("k", "x")
    e.deletion_observed("k")
    assert e.satisfied("k")


def test_expiry_and_forgetting() -> None:
    clock = FakeClock()
    e = ControllerExpectations(clock, ttl=300)
    e.expect_creations("k", 5)
    clock.step(299)
    assert not e.satisfied("k")
    clock.step(2)
    assert e.satisfied("k")  # a lost event must not block the controller forever
    e.expect_creations("k", 1)  # a new record starts a new clock
    assert not e.satisfied("k")
    e.delete("k")
    assert e.satisfied("k") and e.pending("k") is None


def test_own_writes_mark_a_cache_that_trails_them() -> None:
    writes = OwnWrites()
    assert not writes.stale("ns/web", "5")  # nothing written
    writes.wrote("ns/web", "10")
    writes.wrote("ns/web", "8")  # an older answer arriving late does not lower it
    assert writes.stale("ns/web", "9")
    assert not writes.stale("ns/web", "10")  # caught up: forgotten
    assert not writes.stale("ns/web", "3")
    writes.wrote("ns/web", "12")
    writes.forget("ns/web")
    assert not writes.stale("ns/web", "1")
    writes.wrote("ns/x", "not-a-number")
    assert not writes.stale("ns/x", "1")
