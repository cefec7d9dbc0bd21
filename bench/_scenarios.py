"""The scenarios, in the order they run, and the sizes they run at.

Each scenario is a function from the shared `Bench` (the cluster, the
worker pool, the sizes) to table rows. They run in this order because later
ones build on earlier state:

* etcd     - raw etcd puts, the ceiling the apiserver's writes sit under;
* crud     - closed-loop creates then gets, 1 client and 32 clients; the
             pods it creates (namespace `bench`) are the ones `list` lists;
* list     - full lists of the `bench` namespace (topped up to its size
             first, so `--only list` works alone);
* memory   - the apiserver's RSS while it holds those pods, after a list;
* steady   - open-loop creates at a fixed rate (namespace `bench-steady`;
             after memory, so the pods it adds are not in the RSS figure);
* watch    - fan-out: many watchers, paced creates, delivery latency
             (namespace `bench-watch`).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rich.console import Console

from ._cluster import Cluster, CpuMeter, memory_of
from ._jobs import (
    Connect,
    CreatePods,
    EnsureNamespaces,
    EtcdPuts,
    GetPods,
    ListPods,
    LoadResult,
    PacedCreates,
    pod_name,
)
from ._profile import Profiler
from ._stats import Row, Summary, Target
from ._watchers import AwaitWatchers, FinishWatchers, StartWatchers
from ._workers import WorkerPool

BENCH_NS, STEADY_NS, WATCH_NS = "bench", "bench-steady", "bench-watch"
CLIENTS = 32  # "32 concurrent clients", as the issue puts it


@dataclass(frozen=True)
class Sizes:
    etcd_puts: int
    creates_1: int
    gets_1: int
    creates_many: int
    gets_many: int
    list_pods: int  # pods in `bench` when listing and measuring memory
    list_reps: int
    steady_rate: float
    steady_seconds: float
    watchers: int
    watch_writes: int
    watch_rate: float


FULL = Sizes(etcd_puts=20_000, creates_1=1_000, gets_1=2_000, creates_many=9_000, gets_many=10_000,
             list_pods=10_000, list_reps=10, steady_rate=1_000, steady_seconds=10, watchers=100,
             watch_writes=500, watch_rate=100)
QUICK = Sizes(etcd_puts=3_000, creates_1=200, gets_1=300, creates_many=1_000, gets_many=2_000,
              list_pods=1_200, list_reps=3, steady_rate=1_000, steady_seconds=2, watchers=100,
              watch_writes=100, watch_rate=100)
ISSUE_LIST_PODS = 10_000


class Bench:
    def __init__(self, cluster: Cluster, pool: WorkerPool, sizes: Sizes, progress: Console) -> None:
        self.cluster = cluster
        self.pool = pool
        self.sizes = sizes
        self.progress = progress
        self.bench_pods = 0  # pods named pod-000000.. that exist in BENCH_NS
        self.profiler: Profiler | None = None

    def cpu(self) -> CpuMeter:
        assert self.cluster.etcd is not None and self.cluster.apiserver is not None
        return CpuMeter({"apiserver": [self.cluster.apiserver.pid], "etcd": [self.cluster.etcd.pid],
                         "load generators": self.pool.pids})

    @contextlib.contextmanager
    def profiled(self) -> Iterator[None]:
        """Sample the apiserver during this block, if asked to (--profile)."""
        if self.profiler is None:
            yield
            return
        with self.profiler:
            yield

    def say(self, text: str) -> None:
        self.progress.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {text}")

    def soon(self, delay: float = 0.5) -> float:
        """A common start time for all workers, a moment from now."""
        return time.monotonic() + delay

    def split(self, total: int, parts: int) -> list[tuple[int, int]]:
        """`total` items as `parts` consecutive (first offset, count) slices."""
        base, extra = divmod(total, parts)
        out, first = [], 0
        for i in range(parts):
            n = base + (1 if i < extra else 0)
            out.append((first, n))
            first += n
        return out

    def create_bench_pods(self, count: int, clients: int) -> list[LoadResult]:
        """Closed-loop creates of the next `count` pods in BENCH_NS from
        `clients` clients spread over the workers."""
        workers = min(self.pool.size, clients)
        client_split = self.split(clients, workers)
        start = self.soon()
        jobs, first = [], self.bench_pods
        for w, (_, c) in enumerate(client_split):
            n = count * c // clients if w < workers - 1 else count - (first - self.bench_pods)
            jobs.append(CreatePods(BENCH_NS, "pod", first, n, c, start_at=start))
            first += n
        results = self.pool.run_all(jobs)
        self.bench_pods += count
        return results

    def get_bench_pods(self, count: int, clients: int) -> list[LoadResult]:
        workers = min(self.pool.size, clients)
        start = self.soon()
        jobs = [GetPods(BENCH_NS, "pod", self.bench_pods, n, c, seed=w, start_at=start)
                for w, ((_, c), (_, n)) in enumerate(zip(self.split(clients, workers), self.split(count, workers),
                                                         strict=True))]
        return self.pool.run_all(jobs)

    def ensure_bench_pods(self, count: int) -> None:
        if self.bench_pods < count:
            self.say(f"creating {count - self.bench_pods:,} more pods in namespace {BENCH_NS} (not measured)")
            results = self.create_bench_pods(count - self.bench_pods, CLIENTS)
            _raise_if_failed(results, "creating pods")


def _merge(results: list[LoadResult]) -> tuple[list[float], float, int, str]:
    latencies = [x for r in results for x in r.latencies]
    seconds = max(r.ended for r in results) - min(r.started for r in results)
    errors = sum(r.errors for r in results)
    first = next((r.first_error for r in results if r.first_error), "")
    return latencies, seconds, errors, first


def _row(scenario: str, results: list[LoadResult], target: Target | None = None, *,
         measure: Callable[[Row], float] | None = None) -> Row:
    latencies, seconds, errors, first = _merge(results)
    row = Row(scenario, len(latencies), seconds, Summary.of(latencies), errors, target,
              note=f"{errors} failed, first: {first}" if errors else "")
    if measure is not None:
        row.measured = measure(row)
    return row


def _raise_if_failed(results: list[LoadResult], what: str) -> None:
    failed = [r for r in results if r.errors]
    if failed:
        raise RuntimeError(f"{what}: {sum(r.errors for r in failed)} requests failed, first: {failed[0].first_error}")


def _with_cpu(row: Row, cpu: CpuMeter) -> Row:
    """Note how many cores each party kept busy over the row's wall time,
    and the apiserver's CPU time per operation."""
    cores = cpu.cores(row.seconds)
    row.extra["cpu_cores"] = cores
    text = "CPU cores busy: " + ", ".join(f"{name} {n:.2f}" for name, n in cores.items())
    if row.operations and cpu.seconds.get("apiserver"):
        per_op = cpu.seconds["apiserver"] / row.operations * 1e6
        row.extra["apiserver_cpu_us_per_op"] = round(per_op, 1)
        text += f"; apiserver CPU {per_op:,.0f} µs/op"
    row.note = "; ".join(n for n in (row.note, text) if n)
    return row


def _p99_ms(row: Row) -> float:
    return row.latency.p99 * 1000 if row.latency else math.nan


# ---------------------------------------------------------------- scenarios


def etcd_raw(b: Bench) -> list[Row]:
    n = b.sizes.etcd_puts
    b.say(f"etcd: {n:,} puts of 1 KiB, {CLIENTS} concurrent, through etcd3aio from {b.pool.size} processes")
    start = b.soon(1.0)
    jobs = [EtcdPuts("/bench/raw/", first, count, c, start_at=start)
            for (first, count), (_, c) in zip(b.split(n, b.pool.size), b.split(CLIENTS, b.pool.size), strict=True)]
    with b.cpu() as cpu:
        results = b.pool.run_all(jobs)
    return [_with_cpu(_row(f"etcd put 1 KiB, {CLIENTS} concurrent (ceiling)", results), cpu)]


def crud(b: Bench) -> list[Row]:
    s = b.sizes
    rows = []
    b.say(f"crud: {s.creates_1:,} creates, 1 client")
    rows.append(_row("create pod, 1 client", b.create_bench_pods(s.creates_1, 1)))
    b.say(f"crud: {s.gets_1:,} gets, 1 client")
    rows.append(_row("get pod, 1 client", b.get_bench_pods(s.gets_1, 1)))
    b.say(f"crud: {s.creates_many:,} creates, {CLIENTS} clients in {b.pool.size} processes")
    with b.profiled(), b.cpu() as cpu:
        created = b.create_bench_pods(s.creates_many, CLIENTS)
    rows.append(_with_cpu(_row(f"create pod, {CLIENTS} clients", created, Target.at_least(2_000, "creates/s"),
                               measure=lambda r: r.ops_per_second), cpu))
    b.say(f"crud: {s.gets_many:,} gets, {CLIENTS} clients in {b.pool.size} processes")
    with b.cpu() as cpu:
        got = b.get_bench_pods(s.gets_many, CLIENTS)
    rows.append(_with_cpu(_row(f"get pod, {CLIENTS} clients", got), cpu))
    return rows


def list_pods(b: Bench) -> list[Row]:
    s = b.sizes
    b.ensure_bench_pods(s.list_pods)
    rows = []
    for rv, how in (("", "from etcd"), ("0", "rv=0, watch cache")):
        b.say(f"list: {s.list_reps} lists of {b.bench_pods:,} pods ({how})")
        result = b.pool.run({0: ListPods(BENCH_NS, s.list_reps, rv)})[0]
        row = _row(f"list {result.items:,} pods, {how}", [result])
        if result.items != b.bench_pods:
            row.note = (row.note + "; " if row.note else "") + f"expected {b.bench_pods:,} items"
        rows.append(row)
    return rows


def memory(b: Bench) -> list[Row]:
    b.ensure_bench_pods(b.sizes.list_pods)
    b.pool.run({0: ListPods(BENCH_NS, 1)})  # "after the pods exist and a list has run"
    assert b.cluster.apiserver is not None
    mem = memory_of(b.cluster.apiserver.pid)
    b.say(f"memory: apiserver RSS {mem['VmRSS']:.0f} MB holding {b.bench_pods:,} pods")
    judged = b.bench_pods >= ISSUE_LIST_PODS
    row = Row(f"apiserver RSS, {b.bench_pods:,} pods", b.bench_pods,
              target=Target.at_most(150, "MB", judged=judged), measured=mem["VmRSS"],
              note=f"peak (VmHWM) {mem['VmHWM']:.0f} MB" + ("" if judged else "; target is for 10,000 pods"),
              extra={"rss_mb": round(mem["VmRSS"], 1), "hwm_mb": round(mem["VmHWM"], 1)})
    return [row]


def steady(b: Bench) -> list[Row]:
    s = b.sizes
    total = int(s.steady_rate * s.steady_seconds)
    workers = b.pool.size
    b.say(f"steady: {total:,} creates at {s.steady_rate:,.0f}/s (open loop, {workers} processes)")
    start = b.soon(1.0)
    jobs = [PacedCreates(STEADY_NS, "steady", w, len(range(w, total, workers)), s.steady_rate / workers, start,
                         offset=w / s.steady_rate, stride=workers) for w in range(workers)]
    with b.cpu() as cpu:
        results = b.pool.run_all(jobs)
    row = _row(f"create pod at {s.steady_rate:,.0f}/s, open loop", results,
               Target.at_most(50, "ms p99"), measure=_p99_ms)
    lag = Summary.of([x for r in results for x in r.issue_lag])
    row.extra["generator_lag_p99_ms"] = round(lag.p99 * 1000, 3)
    if lag.p99 > 0.005:
        row.note = (row.note + "; " if row.note else "") + f"load generator ran late: lag p99 {lag.p99 * 1000:.0f} ms"
    return [_with_cpu(row, cpu)]


def watch(b: Bench) -> list[Row]:
    s = b.sizes
    writer = 0
    hosts = list(range(1, b.pool.size)) or [0]  # watchers apart from the writer when there is room
    per_host = dict(zip(hosts, (n for _, n in b.split(s.watchers, len(hosts))), strict=True))
    b.say(f"watch: {s.watchers} watchers in {len(hosts)} processes, then {s.watch_writes} creates at "
          f"{s.watch_rate:,.0f}/s")
    b.pool.run({h: StartWatchers(WATCH_NS, n, "") for h, n in per_host.items()})
    # A pod created after the watches were opened: once every watcher has
    # seen it (live, or as an initial ADDED), every watch is registered.
    b.pool.run({writer: CreatePods(WATCH_NS, "sentinel", 0, 1, 1)})
    seen = b.pool.run({h: AwaitWatchers(pod_name("sentinel", 0)) for h in hosts})
    if sum(seen.values()) != s.watchers:
        raise RuntimeError(f"only {sum(seen.values())} of {s.watchers} watchers started")
    names = [pod_name("watched", i) for i in range(s.watch_writes)]
    with b.cpu() as cpu:
        written: LoadResult = b.pool.run({writer: PacedCreates(WATCH_NS, "watched", 0, s.watch_writes,
                                                               s.watch_rate, b.soon())})[writer]
        stamps = b.pool.run({h: FinishWatchers(names) for h in hosts})
    latencies, from_issue, early, missing = [], [], 0, 0
    watch_errors: list[str] = []
    for per_watcher, errors in stamps.values():
        watch_errors += errors
        for seen_at in per_watcher:
            for name in names:
                if name not in seen_at or name not in written.completions:
                    missing += 1
                    continue
                delay = seen_at[name] - written.completions[name]
                early += delay < 0
                latencies.append(max(0.0, delay))
                from_issue.append(seen_at[name] - written.issued[name])
    issue = Summary.of(from_issue)
    reply = Summary.of([written.completions[n] - written.issued[n] for n in written.completions])
    seconds = written.ended - written.started
    row = Row(f"watch: {s.watchers} watchers, creates at {s.watch_rate:,.0f}/s",
              len(latencies), seconds, Summary.of(latencies), missing,
              Target.at_most(100, "ms p99"),
              extra={"events_before_writer_reply": early, "writer_errors": written.errors,
                     "from_send_p50_ms": round(issue.p50 * 1000, 3), "from_send_p99_ms": round(issue.p99 * 1000, 3),
                     "writer_p50_ms": round(reply.p50 * 1000, 3), "writer_p99_ms": round(reply.p99 * 1000, 3)})
    row.measured = _p99_ms(row)
    notes = [f"from the write's send: p50 {issue.p50 * 1000:.1f} ms, p99 {issue.p99 * 1000:.1f} ms "
             f"(the create itself: p50 {reply.p50 * 1000:.1f} ms, p99 {reply.p99 * 1000:.1f} ms)"]
    if early:
        notes.append(f"{early:,} of {len(latencies):,} events arrived before the writer had its reply "
                     "(counted as 0 ms)")
    if missing:
        notes.append(f"{missing} deliveries missing (a failed write counts once per watcher)")
    if watch_errors:
        notes.append(f"watch ended: {watch_errors[0]}")
    if written.errors:
        notes.append(f"writer: {written.first_error}")
    row.note = "; ".join(notes)
    return [_with_cpu(row, cpu)]


SCENARIOS: dict[str, Callable[[Bench], list[Row]]] = {
    "etcd": etcd_raw, "crud": crud, "list": list_pods, "memory": memory, "steady": steady, "watch": watch,
}
NAMESPACES = [BENCH_NS, STEADY_NS, WATCH_NS]


def prepare(b: Bench) -> None:
    b.pool.run_all([Connect() for _ in range(b.pool.size)])
    b.pool.run({0: EnsureNamespaces(NAMESPACES)})
