"""Waiting in tests: poll a condition until it holds, with a deadline that
only matters when something is broken (never a speed assertion)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

from api import StatusError

Check = Callable[[], bool | Awaitable[bool]]


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
