"""One etcd client under the apiserver's operations, in a process of its own:
`python -m bench._probe --client etcd3aio|etcd-sdk-python --etcd URL`
prints the measurements as JSON on stdout. etcd_clients.py runs it once
per client and draws the table.

The plan, at concurrency 1 and 32 - coroutines on one channel for etcd3aio,
threads sharing one client for etcd-sdk-python (each library's own way to
be concurrent), and etcd-sdk-python+asyncio: coroutines handing its blocking
calls to 32 threads, which is how the asyncio apiserver would have to use it:

* create  - put-if-absent transactions (compare create_revision == 0, put;
            on failure read the key), unique keys, ~1 KiB values;
* update  - compare-and-swap transactions (compare mod_revision, put);
            each worker owns one key and chains the revisions it gets
            back, so none conflicts;
* get     - single-key reads of random keys among those created;
* range   - a prefix range of 10,000 keys (~1 KiB each, ~10 MB);
* watch   - 1 or 32 watchers on a prefix while paced puts land on it;
            latency from sending each put to a watcher receiving its event.

Besides ops/s and latency it reports the client process's CPU time per
operation (all threads): on a 2-core machine that shares its cores with
etcd, the client's CPU is throughput etcd does not get.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ._stats import Summary

VALUE = b"v" * 1024
# client -> (module, adapter class in it)
ADAPTERS = {
    "etcd3aio": ("bench._probe_etcd3aio", "Adapter"),
    "etcd-sdk-python": ("bench._probe_pyetcd", "Adapter"),
    "etcd-sdk-python+asyncio": ("bench._probe_pyetcd", "AsyncAdapter"),
}
CONCURRENCY = (1, 32)


@dataclass(frozen=True)
class ProbeSizes:
    creates: tuple[int, int]  # at concurrency 1, 32
    updates: tuple[int, int]
    gets: tuple[int, int]
    ranges: tuple[int, int]
    range_keys: int
    watch_puts: int
    watch_rate: float


FULL = ProbeSizes(creates=(2_000, 10_000), updates=(2_000, 10_000), gets=(3_000, 15_000), ranges=(20, 64),
                  range_keys=10_000, watch_puts=300, watch_rate=100)
QUICK = ProbeSizes(creates=(300, 1_500), updates=(300, 1_500), gets=(500, 3_000), ranges=(5, 16),
                   range_keys=10_000, watch_puts=100, watch_rate=100)


@dataclass
class Measurement:
    op: str
    concurrency: int
    ops: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_op: float
    first_error: str = ""


def _measurement(op: str, concurrency: int, latencies: list[float], errors: list[str], seconds: float,
                 cpu: float) -> Measurement:
    s = Summary.of(latencies)
    n = max(1, len(latencies))
    return Measurement(op, concurrency, len(latencies), len(errors), round(seconds, 4), round(s.p50 * 1000, 3),
                       round(s.p99 * 1000, 3), round(cpu / n * 1e6, 1), errors[0] if errors else "")


OnResult = Callable[[int, Any], None]


class ThreadRunner:
    """Drives a blocking adapter: `concurrency` threads share it."""

    def __init__(self, adapter: Any) -> None:
        self.adapter = adapter

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    def closed_loop(self, op: str, fn: Callable[[int, int], Any], count: int, concurrency: int,
                    on_result: OnResult | None = None) -> Measurement:
        todo = iter(range(count))
        lock = threading.Lock()
        latencies: list[float] = []
        errors: list[str] = []

        def worker(w: int) -> None:
            mine: list[float] = []
            while True:
                with lock:
                    i = next(todo, None)
                if i is None:
                    break
                t = time.monotonic()
                try:
                    result = fn(w, i)
                except Exception as err:
                    errors.append(f"{type(err).__name__}: {err}")
                    continue
                mine.append(time.monotonic() - t)
                if on_result:
                    on_result(w, result)
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(concurrency)]
        cpu, start = time.process_time(), time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return _measurement(op, concurrency, latencies, errors, time.monotonic() - start, time.process_time() - cpu)

    def watch_delivery(self, prefix: bytes, watchers: int, puts: int, rate: float) -> Measurement:
        stamps: list[dict[bytes, float]] = [{} for _ in range(watchers)]
        for seen in stamps:
            self.adapter.watch(prefix, lambda key, seen=seen: seen.setdefault(key, time.monotonic()))
        _await_sentinel(lambda key: self.adapter.put(key, b"s"), prefix, stamps, time.sleep)
        sent: dict[bytes, float] = {}
        errors: list[str] = []
        cpu, start = time.process_time(), time.monotonic()
        for k in range(puts):
            delay = start + k / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            key = prefix + b"k%06d" % k
            sent[key] = time.monotonic()
            try:
                self.adapter.put(key, VALUE)
            except Exception as err:
                errors.append(f"{type(err).__name__}: {err}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(sent.keys() <= seen.keys() for seen in stamps):
            time.sleep(0.01)
        return _deliveries(watchers, sent, stamps, errors, time.monotonic() - start, time.process_time() - cpu)

    def close(self) -> None:
        self.adapter.close()


class AsyncRunner:
    """Drives an asyncio adapter: `concurrency` coroutines on one loop."""

    def __init__(self, make_adapter: Callable[[], Any]) -> None:
        self.loop = asyncio.new_event_loop()

        async def make() -> Any:
            return make_adapter()
        self.adapter = self.loop.run_until_complete(make())

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.loop.run_until_complete(fn(*args))

    def closed_loop(self, op: str, fn: Callable[[int, int], Any], count: int, concurrency: int,
                    on_result: OnResult | None = None) -> Measurement:
        todo = iter(range(count))
        latencies: list[float] = []
        errors: list[str] = []

        async def worker(w: int) -> None:
            for i in todo:
                t = time.monotonic()
                try:
                    result = await fn(w, i)
                except Exception as err:
                    errors.append(f"{type(err).__name__}: {err}")
                    continue
                latencies.append(time.monotonic() - t)
                if on_result:
                    on_result(w, result)

        async def run() -> None:
            await asyncio.gather(*(worker(w) for w in range(concurrency)))

        cpu, start = time.process_time(), time.monotonic()
        self.loop.run_until_complete(run())
        return _measurement(op, concurrency, latencies, errors, time.monotonic() - start, time.process_time() - cpu)

    def watch_delivery(self, prefix: bytes, watchers: int, puts: int, rate: float) -> Measurement:
        async def run() -> Measurement:
            stamps: list[dict[bytes, float]] = [{} for _ in range(watchers)]
            for seen in stamps:
                await self.adapter.watch(prefix, lambda key, seen=seen: seen.setdefault(key, time.monotonic()))
            await _await_sentinel_async(lambda key: self.adapter.put(key, b"s"), prefix, stamps)
            sent: dict[bytes, float] = {}
            errors: list[str] = []
            cpu, start = time.process_time(), time.monotonic()
            for k in range(puts):
                delay = start + k / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                key = prefix + b"k%06d" % k
                sent[key] = time.monotonic()
                try:
                    await self.adapter.put(key, VALUE)
                except Exception as err:
                    errors.append(f"{type(err).__name__}: {err}")
            deadline = time.monotonic() + 10
            # a short poll at the end of a measurement; no need for an Event
            while time.monotonic() < deadline and not all(sent.keys() <= seen.keys() for seen in stamps):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            return _deliveries(watchers, sent, stamps, errors, time.monotonic() - start, time.process_time() - cpu)
        return self.loop.run_until_complete(run())

    def close(self) -> None:
        self.loop.run_until_complete(self.adapter.close())
        self.loop.close()


def _await_sentinel(put: Callable[[bytes], Any], prefix: bytes, stamps: list[dict[bytes, float]],
                    sleep: Callable[[float], None]) -> None:
    """Put sentinel keys until every watcher has seen one: then all are live."""
    for attempt in range(200):
        key = prefix + b"sentinel-%d" % attempt
        put(key)
        sleep(0.05)
        if all(key in seen for seen in stamps):
            return
    raise RuntimeError("the watchers never saw the sentinel")


async def _await_sentinel_async(put: Callable[[bytes], Any], prefix: bytes, stamps: list[dict[bytes, float]]) -> None:
    for attempt in range(200):
        key = prefix + b"sentinel-%d" % attempt
        await put(key)
        await asyncio.sleep(0.05)
        if all(key in seen for seen in stamps):
            return
    raise RuntimeError("the watchers never saw the sentinel")


def _deliveries(watchers: int, sent: dict[bytes, float], stamps: list[dict[bytes, float]], errors: list[str],
                seconds: float, cpu: float) -> Measurement:
    latencies = [seen[key] - at for seen in stamps for key, at in sent.items() if key in seen]
    missing = watchers * len(sent) - len(latencies)
    errors = errors + [f"{missing} deliveries missing"] * (missing > 0)
    return _measurement("watch", watchers, latencies, errors, seconds, cpu)


def run_plan(runner: ThreadRunner | AsyncRunner, sizes: ProbeSizes, prefix: bytes) -> list[Measurement]:
    a = runner.adapter
    out: list[Measurement] = []

    def key(kind: str, *parts: int) -> bytes:
        return prefix + kind.encode() + b"/" + b"/".join(b"%06d" % p for p in parts)

    Op = Callable[[int, int], Any]  # (worker, index) -> the adapter's answer (or a coroutine of it)

    def creates(c: int) -> Op:
        return lambda w, i: a.create(key("create", c, i), VALUE)

    def updates(c: int, revisions: dict[int, int]) -> Op:
        return lambda w, i: a.compare_and_swap(key("update", c, w), VALUE, revisions[w])

    def chain(revisions: dict[int, int]) -> OnResult:
        def remember(w: int, revision: Any) -> None:
            revisions[w] = int(revision)
        return remember

    def gets(picks: list[bytes]) -> Op:
        return lambda w, i: a.get(picks[i])

    runner.call(a.get, prefix + b"warm-up")  # connect before anything is timed
    created: list[bytes] = []
    for c, n in zip(CONCURRENCY, sizes.creates, strict=True):
        out.append(runner.closed_loop("create", creates(c), n, c))
        created += [key("create", c, i) for i in range(n)]

    for c, n in zip(CONCURRENCY, sizes.updates, strict=True):
        # each worker owns a key and chains the revisions its swaps return
        revisions = {w: int(runner.call(a.put, key("update", c, w), VALUE)) for w in range(c)}
        out.append(runner.closed_loop("update", updates(c, revisions), n, c, on_result=chain(revisions)))

    rng = random.Random(1)
    for c, n in zip(CONCURRENCY, sizes.gets, strict=True):
        out.append(runner.closed_loop("get", gets([rng.choice(created) for _ in range(n)]), n, c))

    fill = runner.closed_loop("fill", lambda w, i: a.put(key("range", i), VALUE), sizes.range_keys, 32)
    if fill.errors:
        raise RuntimeError(f"filling the range failed: {fill.first_error}")
    range_prefix = prefix + b"range/"
    for c, n in zip(CONCURRENCY, sizes.ranges, strict=True):
        out.append(runner.closed_loop("range", lambda w, i: a.range(range_prefix), n, c))
    got = runner.call(a.range, range_prefix)
    if got != sizes.range_keys:
        raise RuntimeError(f"the range returned {got} keys, not {sizes.range_keys}")

    for watchers in CONCURRENCY:
        out.append(runner.watch_delivery(prefix + b"watch-%d/" % watchers, watchers, sizes.watch_puts,
                                         sizes.watch_rate))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench._probe")
    p.add_argument("--client", required=True, choices=list(ADAPTERS))
    p.add_argument("--etcd", required=True, help="etcd client URL")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    module_name, class_name = ADAPTERS[args.client]
    module = importlib.import_module(module_name)
    adapter = getattr(module, class_name)
    endpoint = args.etcd.removeprefix("http://").rstrip("/")
    runner: ThreadRunner | AsyncRunner
    if inspect.iscoroutinefunction(adapter.get):
        runner = AsyncRunner(lambda: adapter(endpoint))
    else:
        runner = ThreadRunner(adapter(endpoint))
    try:
        results = run_plan(runner, QUICK if args.quick else FULL, b"/probe/")
    finally:
        runner.close()
    model = "asyncio" if isinstance(runner, AsyncRunner) else "threads"
    print(json.dumps({"client": args.client, "version": module.version(), "model": model,
                      "results": [asdict(r) for r in results]}))


if __name__ == "__main__":
    main()
