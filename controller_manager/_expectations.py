"""Expectations: what a controller is still waiting to see in its cache.

A controller that creates five pods learns of them only when the pod
informer delivers them. If it synced again before then, its cache would
still show too few pods and it would create five more. So before it
writes, it records what it expects ("5 creations for default/web"), the
informer's handlers count the objects off as they arrive
(`creation_observed`, `deletion_observed`), and `sync` changes nothing
until `satisfied(key)`: until then it only reports status. This is
Kubernetes' ControllerExpectations (with the UID-tracking variant folded
in: deletions may be expected by object key, so the same deletion seen
twice - first the deletionTimestamp, then the DELETE event - counts once).

Failure behaviour: a write the API refused will never be observed, so the
caller lowers its expectations for every creation or deletion that did not
happen. Anything else that goes wrong (a watch event lost for good) is
covered by a time limit: expectations older than `ttl` (5 minutes, as in
Kubernetes) count as satisfied, and the controller looks again.

Keys are the controller's work-queue keys; the class holds no objects.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from api import Clock

#: Kubernetes' ExpectationsTimeout.
DEFAULT_TTL = 300.0


@dataclass
class _Expected:
    adds: int
    deletes: int
    since: float
    #: Keys of the objects whose deletion is expected, when expected by key.
    deleting: set[str] | None = None

    def fulfilled(self) -> bool:
        return self.adds <= 0 and self.deletes <= 0


class ControllerExpectations:
    def __init__(self, clock: Clock, ttl: float = DEFAULT_TTL) -> None:
        self._clock = clock
        self._ttl = ttl
        self._records: dict[str, _Expected] = {}

    # ------------------------------------------------------------ reads

    def satisfied(self, key: str) -> bool:
        """Whether `sync` may act for `key`: nothing is pending, or what is
        pending is too old to wait for (or nothing was ever recorded)."""
        record = self._records.get(key)
        if record is None:
            return True
        return record.fulfilled() or self._clock.monotonic() - record.since > self._ttl

    def pending(self, key: str) -> tuple[int, int] | None:
        """(creations, deletions) still expected, or None without a record."""
        record = self._records.get(key)
        return None if record is None else (record.adds, record.deletes)

    # ------------------------------------------------------------ the controller's side

    def expect_creations(self, key: str, count: int) -> None:
        """About to create `count` objects (replaces any earlier record)."""
        self._records[key] = _Expected(count, 0, self._clock.monotonic())

    def expect_deletions(self, key: str, objects: int | Collection[str]) -> None:
        """About to delete objects: a count, or the keys of the objects
        (then only deletions of those keys are counted off)."""
        if isinstance(objects, int):
            self._records[key] = _Expected(0, objects, self._clock.monotonic())
        else:
            self._records[key] = _Expected(0, len(objects), self._clock.monotonic(), set(objects))

    def expect(self, key: str, creations: int, deletions: Collection[str] = ()) -> None:
        """About to create `creations` objects and delete the objects with
        these keys, in one record (Kubernetes' SetExpectations)."""
        self._records[key] = _Expected(creations, len(deletions), self._clock.monotonic(),
                                       set(deletions) if deletions else None)

    def lower(self, key: str, adds: int = 0, deletes: int = 0) -> None:
        """Writes that failed: they will never be observed."""
        record = self._records.get(key)
        if record is not None:
            record.adds -= adds
            record.deletes -= deletes

    def delete(self, key: str) -> None:
        """Forget `key` (its controller object is gone)."""
        self._records.pop(key, None)

    # ------------------------------------------------------------ the informer's side

    def creation_observed(self, key: str) -> None:
        self.lower(key, adds=1)

    def deletion_observed(self, key: str, object_key: str | None = None) -> None:
        """One deletion seen. If the deletions were expected by key, only a
        key still expected counts, and only once."""
        record = self._records.get(key)
        if record is None:
            return
        if record.deleting is not None:
            if object_key is None or object_key not in record.deleting:
                return
            record.deleting.discard(object_key)
        record.deletes -= 1


class OwnWrites:
    """The resourceVersion of each object's latest write by this controller.

    A controller's cache trails its own writes: the watch event of a status
    update arrives a moment after the update returns. A sync that starts in
    that moment reads the older object, and its next write is a Conflict
    (and a retry with backoff) - or, worse, a decision taken on a state the
    controller itself has already moved past. Since the event of the write
    is on its way and will queue the key again, such a sync can simply stop
    early: `stale(key, cached)` says when. resourceVersions are etcd
    revisions here, so they compare as numbers; anything else is never
    called stale.
    """

    def __init__(self) -> None:
        self._written: dict[str, int] = {}

    def wrote(self, key: str, resource_version: str) -> None:
        try:
            self._written[key] = max(int(resource_version), self._written.get(key, 0))
        except ValueError:
            pass

    def stale(self, key: str, cached_version: str) -> bool:
        written = self._written.get(key)
        if written is None:
            return False
        try:
            behind = int(cached_version) < written
        except ValueError:
            behind = False
        if not behind:
            del self._written[key]  # caught up: nothing to remember
        return behind

    def forget(self, key: str) -> None:
        self._written.pop(key, None)
