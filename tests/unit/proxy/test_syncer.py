"""The sync loop with a fake clock: the first sync is full, a burst of
changes within min-sync-period becomes one partial sync, a periodic full
resync, a failed sync is retried in full with its changes, and UDP
conntrack entries of removed endpoints are flushed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from api import FakeClock
from proxy import ChangeTracker, ProxySnapshot, ServicePortName, SyncResult, SyncRunner
from proxy._runner import CommandRunner, ConntrackFlusher

from ._fixtures import WEB, endpoint_slice, service


class RecordingProxier:
    """A backend that remembers what it was asked to do (the sync loop is
    what these tests are about, not the kernel)."""

    mode = "recording"

    def __init__(self) -> None:
        self.calls: list[set[ServicePortName] | None] = []
        self.fail = 0

    def sync(self, snapshot: ProxySnapshot, changed: set[ServicePortName] | None) -> SyncResult:
        self.calls.append(None if changed is None else set(changed))
        if self.fail:
            self.fail -= 1
            raise RuntimeError("iptables-restore: line 3 failed")
        return SyncResult(full=changed is None, rules={"nat": 1})

    def cleanup(self) -> None:
        pass


async def inline(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a sync on the event loop itself (the real runner uses a thread)."""
    return fn(*args)


async def settle(clock: FakeClock, seconds: float, step: float = 0.1) -> None:
    for _ in range(round(seconds / step)):
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        clock.step(step)
        for _ in range(5):
            await asyncio.sleep(0)


async def test_bounded_frequency_and_periodic_full_sync() -> None:
    clock = FakeClock()
    tracker = ChangeTracker(clock)
    proxier = RecordingProxier()
    runner = SyncRunner(proxier, tracker, min_sync_period=1.0, sync_period=30.0, clock=clock, offload=inline)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await settle(clock, 0.5)
    assert proxier.calls == [None], "the first sync is full"
    tracker.service_changed("default/web", service())
    runner.kick()
    for i in range(5):  # a burst within min-sync-period
        tracker.slice_changed("default", f"web-{i}", endpoint_slice(f"web-{i}", endpoints=[(f"10.0.0.{i + 1}", True)]))
        runner.kick()
    await settle(clock, 2.0)
    assert proxier.calls == [None, {WEB}], "the burst is one partial sync"
    await settle(clock, 30.0)
    assert proxier.calls[-1] is None and len(proxier.calls) == 3, "a full resync every sync-period"
    stop.set()
    await task


async def test_a_failed_sync_is_retried_in_full_with_its_changes() -> None:
    clock = FakeClock()
    tracker = ChangeTracker(clock)
    proxier = RecordingProxier()
    healthy: list[bool] = []

    async def on_health(ok: bool) -> None:
        healthy.append(ok)

    runner = SyncRunner(proxier, tracker, min_sync_period=1.0, sync_period=300.0, clock=clock, on_health=on_health,
                        offload=inline)
    assert await runner.sync_once(True)
    proxier.fail = 1
    tracker.service_changed("default/web", service())
    assert not await runner.sync_once(False)
    assert runner.needs_full and tracker.pending(), "the changes went back"
    assert await runner.sync_once(runner.needs_full)
    assert proxier.calls == [None, {WEB}, None] and healthy == [True, False, True]


class RecordingRunner(CommandRunner):
    def __init__(self) -> None:
        super().__init__()
        self.commands: list[list[str]] = []

    def run(self, argv: list[str], stdin: str | None = None, *, check: bool = True) -> str:  # type: ignore[override]
        self.commands.append(list(argv))
        return ""


async def test_udp_conntrack_entries_of_removed_endpoints_are_flushed(monkeypatch: pytest.MonkeyPatch) -> None:
    import proxy._runner as runner_module
    monkeypatch.setattr(runner_module, "conntrack_available", lambda: True)
    clock = FakeClock()
    tracker = ChangeTracker(clock)
    commands = RecordingRunner()
    runner = SyncRunner(RecordingProxier(), tracker, clock=clock, conntrack=ConntrackFlusher(commands), offload=inline)
    dns = ServicePortName("default", "web", "dns", "UDP")
    tracker.service_changed("default/web", service(ports=[{"name": "dns", "port": 53, "protocol": "UDP"}]))
    slice_ = endpoint_slice("web-a", endpoints=[("10.0.0.1", True), ("10.0.0.2", True)], port=53, port_name="dns",
                            protocol="UDP")
    tracker.slice_changed("default", "web-a", slice_)
    await runner.sync_once(True)
    assert commands.commands == [["conntrack", "-D", "-p", "udp", "--orig-dst", "10.96.0.10"]], \
        "a UDP service that just got endpoints loses its stale entries"
    commands.commands.clear()
    slice_.endpoints[1].conditions.ready = False
    tracker.slice_changed("default", "web-a", slice_)
    await runner.sync_once(False)
    assert dns in runner._last.services
    assert commands.commands == [["conntrack", "-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--dst-nat",
                                  "10.0.0.2"]]
