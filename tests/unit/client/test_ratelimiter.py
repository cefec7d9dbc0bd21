"""client/_ratelimiter.py: per-item exponential backoff (5 ms doubling to
1000 s), the token bucket (10 qps, burst 100) and the max-of combinator,
all on a FakeClock."""

from __future__ import annotations

import pytest

from api import FakeClock
from client import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    TokenBucket,
    default_controller_rate_limiter,
)


def test_item_backoff_doubles_from_5ms_and_caps_at_1000s() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    delays = [limiter.when("a") for _ in range(20)]
    assert delays[:4] == pytest.approx([0.005, 0.01, 0.02, 0.04])
    assert delays[17] == pytest.approx(0.005 * 2 ** 17)  # 655 s, still under the cap
    assert delays[18:] == [1000.0, 1000.0]
    assert limiter.num_requeues("a") == 20
    for _ in range(500):  # no overflow however long it keeps failing
        assert limiter.when("a") == 1000.0


def test_item_backoff_is_per_item_and_forget_resets() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    for _ in range(5):
        limiter.when("a")
    assert limiter.when("b") == pytest.approx(0.005)
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == pytest.approx(0.005)


def test_token_bucket_burst_then_rate(clock: FakeClock) -> None:
    bucket = TokenBucket(10, 100, clock)
    assert all(bucket.reserve() == 0 for _ in range(100))
    assert bucket.reserve() == pytest.approx(0.1)
    assert bucket.reserve() == pytest.approx(0.2)  # reservations queue up behind each other
    clock.step(0.2)
    assert bucket.reserve() == pytest.approx(0.1)
    clock.step(60)
    assert bucket.tokens == pytest.approx(100)  # refills only up to the burst


def test_token_bucket_try_accept_takes_nothing_when_empty(clock: FakeClock) -> None:
    bucket = TokenBucket(1 / 300, 2, clock)
    assert bucket.try_accept() and bucket.try_accept()
    assert not bucket.try_accept()
    clock.step(299)
    assert not bucket.try_accept()
    clock.step(1)
    assert bucket.try_accept()
    with pytest.raises(ValueError, match="qps > 0"):
        TokenBucket(0, 1, clock)


def test_bucket_limiter_is_global_across_items(clock: FakeClock) -> None:
    limiter = BucketRateLimiter(10, 2, clock)
    assert [limiter.when("a"), limiter.when("b")] == [0, 0]
    assert limiter.when("c") == pytest.approx(0.1)
    assert limiter.num_requeues("c") == 0


def test_default_controller_limiter_takes_the_longer_wait(clock: FakeClock) -> None:
    limiter = default_controller_rate_limiter(clock)
    # 100 different keys fail once: the burst covers them, each waits 5 ms.
    assert [limiter.when(f"k{i}") for i in range(100)] == pytest.approx([0.005] * 100)
    # The 101st failure overall has to wait for a token (0.1 s > 5 ms).
    assert limiter.when("k100") == pytest.approx(0.1)
    # One key failing many times is held back by its own backoff.
    clock.step(1000)
    for _ in range(10):
        limiter.when("hot")
    assert limiter.when("hot") == pytest.approx(0.005 * 2 ** 10)
    assert limiter.num_requeues("hot") == 11
    limiter.forget("hot")
    assert limiter.num_requeues("hot") == 0


def test_max_of_needs_a_limiter() -> None:
    with pytest.raises(ValueError):
        MaxOfRateLimiter()
