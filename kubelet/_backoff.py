"""Per-key exponential backoff for container restarts and image pulls
(Kubernetes' flowcontrol.Backoff).

CrashLoopBackOff: the first time a container exits it is restarted at
once and its key gets a 10 s backoff; each later exit waits until the
backoff has passed since the container finished, then doubles it, up to
5 minutes. A key left alone for twice the maximum (10 minutes: a
container that ran that long before failing again) starts over at 10 s.
Image pulls use the same shape (ErrImagePull, then ImagePullBackOff).

The state is in memory only: a restarted kubelet starts every key afresh,
as Kubernetes' does. Time comes from an injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from api import Clock


@dataclass
class _Entry:
    backoff: float
    last_update: float


class Backoff:
    def __init__(self, clock: Clock, initial: float = 10.0, maximum: float = 300.0) -> None:
        self.clock = clock
        self.initial = initial
        self.maximum = maximum
        self._entries: dict[str, _Entry] = {}

    def _expired(self, entry: _Entry, now: float) -> bool:
        return now - entry.last_update > 2 * self.maximum

    def get(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry.backoff if entry is not None else 0.0

    def next(self, key: str) -> None:
        """Record one more failure of `key` now: start or double its backoff."""
        now = self.clock.now()
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, now):
            self._entries[key] = _Entry(self.initial, now)
            return
        entry.backoff = min(entry.backoff * 2, self.maximum)
        entry.last_update = now

    def in_backoff_since(self, key: str, since: float) -> bool:
        """Whether `key` must still wait, counting from `since` (when the
        container finished, or when the pull failed)."""
        entry = self._entries.get(key)
        if entry is None:
            return False
        now = self.clock.now()
        if self._expired(entry, now):
            return False
        return now - since < entry.backoff

    def in_backoff_since_update(self, key: str) -> bool:
        """Whether `key` must still wait, counting from its last failure
        (image pulls: a failed pull is not retried before then)."""
        entry = self._entries.get(key)
        if entry is None:
            return False
        return self.clock.now() - entry.last_update < entry.backoff

    def remaining(self, key: str, since: float) -> float:
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        return max(0.0, since + entry.backoff - self.clock.now())

    def remaining_since_update(self, key: str) -> float:
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        return max(0.0, entry.last_update + entry.backoff - self.clock.now())

    def forget(self, prefix: str) -> None:
        """Drop every key starting with `prefix` (a pod that went away)."""
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]

    def gc(self) -> None:
        now = self.clock.now()
        for key in [k for k, e in self._entries.items() if self._expired(e, now)]:
            del self._entries[key]
