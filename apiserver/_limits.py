"""Max in-flight requests: past the limit a request gets TooManyRequests at
once, rather than queueing until everything is slow. Mutating and read-only
requests have separate limits, as in Kubernetes; watches don't count."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from api import too_many_requests

from ._metrics import INFLIGHT, REJECTED


class InflightLimiter:
    def __init__(self, max_readonly: int, max_mutating: int) -> None:
        self._limits = {"readOnly": max_readonly, "mutating": max_mutating}
        self._current = {"readOnly": 0, "mutating": 0}

    @contextlib.contextmanager
    def slot(self, mutating: bool) -> Iterator[None]:
        kind = "mutating" if mutating else "readOnly"
        limit = self._limits[kind]
        if limit > 0 and self._current[kind] >= limit:
            REJECTED.labels(kind).inc()
            raise too_many_requests()
        self._current[kind] += 1
        INFLIGHT.labels(kind).set(self._current[kind])
        try:
            yield
        finally:
            self._current[kind] -= 1
            INFLIGHT.labels(kind).set(self._current[kind])
