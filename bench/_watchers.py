"""Watchers for the fan-out scenario, living in worker processes between
jobs.

`StartWatchers` opens the watches and leaves them running in the worker's
background; each watcher notes the moment (time.monotonic, comparable
across processes) it first sees each pod name. `AwaitWatchers` waits for
one name to reach all of them - the scenario uses a sentinel pod created
after the watches were opened to know they are all registered. Once the
writer is done, `FinishWatchers` waits for the rest, stops the watches
and returns the stamps; the scenario subtracts the writer's stamps.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from ._jobs import pods_client
from ._workers import WorkerEnv


@dataclass
class StartWatchers:
    """Open `count` watches on pods in `namespace` from `resource_version`
    and leave them running; each notes when it first saw each pod name."""

    namespace: str
    count: int
    resource_version: str

    async def run(self, env: WorkerEnv) -> int:
        pods = pods_client(env, self.namespace)
        receipts: list[dict[str, float]] = [{} for _ in range(self.count)]
        errors: list[str] = []
        arrived = asyncio.Event()

        async def watch(seen: dict[str, float]) -> None:
            try:
                async for event in pods.watch(resource_version=self.resource_version):
                    seen.setdefault(event.object.metadata.name, time.monotonic())
                    arrived.set()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                errors.append(f"{type(err).__name__}: {err}")

        env.background["tasks"] = [asyncio.create_task(watch(seen)) for seen in receipts]
        env.background["receipts"] = receipts
        env.background["watch_errors"] = errors
        env.background["arrived"] = arrived
        return self.count


async def _until(env: WorkerEnv, done: Callable[[], bool], timeout: float) -> None:
    """Wait until `done()` holds, re-checking whenever a watcher receives
    an event, or until `timeout`."""
    arrived: asyncio.Event = env.background["arrived"]
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        arrived.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrived.wait(), max(0.0, deadline - time.monotonic()))


@dataclass
class AwaitWatchers:
    """Wait until every watcher here has seen pod `name`; returns how many did."""

    name: str
    timeout: float = 30.0

    async def run(self, env: WorkerEnv) -> int:
        receipts: list[dict[str, float]] = env.background["receipts"]
        await _until(env, lambda: all(self.name in seen for seen in receipts), self.timeout)
        return sum(self.name in seen for seen in receipts)


@dataclass
class FinishWatchers:
    """Wait (up to `timeout`) until every watcher has seen every name, stop
    the watchers, and return per watcher the stamps of those names, plus
    any errors that ended a watch."""

    names: list[str]
    timeout: float = 30.0

    async def run(self, env: WorkerEnv) -> tuple[list[dict[str, float]], list[str]]:
        receipts: list[dict[str, float]] = env.background["receipts"]
        wanted = set(self.names)
        await _until(env, lambda: all(wanted <= seen.keys() for seen in receipts), self.timeout)
        for task in env.background.pop("tasks", []):
            task.cancel()
        stamps = [{n: t for n, t in seen.items() if n in wanted} for seen in receipts]
        return stamps, list(env.background.get("watch_errors", []))
