"""Rate limiters: how long an item should wait before it is tried again.

These are client-go's workqueue rate limiters. A controller whose `sync`
fails puts the key back with `add_rate_limited`, and the limiter decides
the delay:

* `ItemExponentialFailureRateLimiter`: per item, 5 ms doubling on every
  failure up to 1000 s, until `forget(item)` after a success; one broken
  object backs off alone without slowing the others;
* `BucketRateLimiter`: a token bucket over all items (10 per second, burst
  100), so a thousand keys failing at once cannot hammer the apiserver;
* `MaxOfRateLimiter`: the longest of several, which is how
  `default_controller_rate_limiter()` combines the two.

`TokenBucket` is also what the event recorder's spam filter uses. Time
comes from an injectable Clock; nothing here sleeps.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol

from api import Clock, RealClock


class RateLimiter(Protocol):
    def when(self, item: Hashable) -> float:
        """Seconds `item` should wait before its next try (counts a failure)."""
        ...

    def forget(self, item: Hashable) -> None:
        """Stop tracking `item` (it succeeded)."""
        ...

    def num_requeues(self, item: Hashable) -> int: ...


class TokenBucket:
    """`burst` tokens, refilled at `qps` per second (golang.org/x/time/rate)."""

    def __init__(self, qps: float, burst: int, clock: Clock | None = None) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs qps > 0 and burst >= 1 (got qps={qps}, burst={burst})")
        self.qps = qps
        self.burst = burst
        self._clock = clock or RealClock()
        self._tokens = float(burst)
        self._last = self._clock.monotonic()

    def _refill(self) -> None:
        now = self._clock.monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now

    def try_accept(self) -> bool:
        """Take a token if one is there; False (and take nothing) if not."""
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def reserve(self) -> float:
        """Take a token, borrowing from the future if need be; the seconds
        until that token is really there."""
        self._refill()
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens


class ItemExponentialFailureRateLimiter:
    def __init__(self, base: float = 0.005, cap: float = 1000.0) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        exp = self._failures.get(item, 0)
        self._failures[item] = exp + 1
        if exp >= 64:  # 2**64 * base is past any sane cap; avoid huge numbers
            return self.cap
        return min(self.base * 2 ** exp, self.cap)

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter:
    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Clock | None = None) -> None:
        self.bucket = TokenBucket(qps, burst, clock)

    def when(self, item: Hashable) -> float:
        return self.bucket.reserve()

    def forget(self, item: Hashable) -> None:
        pass

    def num_requeues(self, item: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    def __init__(self, *limiters: RateLimiter) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self.limiters = limiters

    def when(self, item: Hashable) -> float:
        return max(limiter.when(item) for limiter in self.limiters)

    def forget(self, item: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)


def default_controller_rate_limiter(clock: Clock | None = None) -> MaxOfRateLimiter:
    """Per-item 5 ms..1000 s exponential backoff, and 10 qps / burst 100 overall."""
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(0.005, 1000.0), BucketRateLimiter(10.0, 100, clock))
