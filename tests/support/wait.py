"""Waiting in tests: poll a condition until it holds, with a deadline that
only matters when something is broken (never a speed assertion)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from api import StatusError

Check = Callable[[], bool | Awaitable[bool]]
T = TypeVar("T")


async def eventually(check: Check, what: str = "", timeout: float = 60.0, interval: float = 0.05) -> None:
    """Poll `check` (a plain or an async function) until it returns true.
    An apiserver refusal (StatusError: NotFound, Conflict...) counts as
    "not yet"; anything else fails the test at once."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
        except StatusError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or check}")
        await asyncio.sleep(interval)


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 60.0, interval: float = 0.5) -> T:
    """The blocking kind, for tests driving a lab from outside: poll `check`
    until it returns something truthy, and return that. An exception inside
    `check` counts as "not yet" (the cluster may still be settling); on
    timeout, fail naming `what` and the last value or error."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
            if value:
                return value
            last = value
        except Exception as err:
            last = f"{type(err).__name__}: {err}"
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last saw: {last}")
        time.sleep(interval)
