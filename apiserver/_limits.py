"""Max in-flight requests: past the limit a request gets TooManyRequests at
once, rather than queueing until everything is slow. Mutating and read-only
requests have separate limits, as in Kubernetes; watches don't count."""

from __future__ import annotations

from api import too_many_requests

from ._metrics import INFLIGHT, REJECTED


class _Slots:
    """The slots of one kind of request; used as `with slots:`."""

    def __init__(self, kind: str, limit: int) -> None:
        self.limit = limit
        self.current = 0
        INFLIGHT.labels(kind).set_function(lambda: self.current)
        self._rejected = REJECTED.labels(kind)

    def __enter__(self) -> None:
        if self.limit > 0 and self.current >= self.limit:
            self._rejected.inc()
            raise too_many_requests()
        self.current += 1

    def __exit__(self, *exc: object) -> None:
        self.current -= 1


class InflightLimiter:
    def __init__(self, max_readonly: int, max_mutating: int) -> None:
        self._readonly = _Slots("readOnly", max_readonly)
        self._mutating = _Slots("mutating", max_mutating)

    def slot(self, mutating: bool) -> _Slots:
        return self._mutating if mutating else self._readonly
