"""The load generator: worker processes, each with its own event loop and
gRPC channel, driven over a pipe.

One Python thread generating 32 clients' worth of requests would measure
itself as much as the apiserver (it decodes every reply under one GIL), so
the load comes from a few separate OS processes instead. Each worker is a
fresh interpreter (the `spawn` start method: forking a process that already
runs gRPC threads is unsafe) that connects once and then runs jobs the
parent sends it, one at a time, replying with the job's result. A job may
leave tasks running in the background (the watch scenario's watchers keep
watching while another worker writes).

Timing: every stamp is `time.monotonic()`, which on Linux is one clock for
all processes, so the parent can subtract a writer's stamp from a
watcher's, and can give all workers one start time.

Failure: a job that raises sends back its traceback and the parent raises
`WorkerError`; a worker that dies is noticed within a second. Workers
ignore SIGINT (a terminal's Ctrl-C goes to the parent, which stops them),
and `close()` terminates any that do not leave when asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import signal
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

_READY = "ready"


class WorkerError(RuntimeError):
    pass


@dataclass
class WorkerEnv:
    """What a job may use inside a worker: its index, its clientset (one
    channel per worker) and state that outlives a job."""

    index: int
    target: str
    etcd_url: str
    background: dict[str, Any] = field(default_factory=dict)
    _clientset: Any = None

    @property
    def clientset(self) -> Any:
        if self._clientset is None:
            from client import ClientConfig, Clientset
            self._clientset = Clientset.connect(ClientConfig(server=self.target))
        return self._clientset

    async def close(self) -> None:
        for task in self.background.get("tasks", []):
            task.cancel()
        if self._clientset is not None:
            await self._clientset.close()


class Job(Protocol):
    async def run(self, env: WorkerEnv) -> Any: ...


def _worker_main(index: int, target: str, etcd_url: str, conn: multiprocessing.connection.Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_serve(WorkerEnv(index, target, etcd_url), conn))


async def _serve(env: WorkerEnv, conn: multiprocessing.connection.Connection) -> None:
    loop = asyncio.get_running_loop()
    conn.send(_READY)
    try:
        while True:
            # recv blocks, so it runs in a thread: background tasks keep going.
            job = await loop.run_in_executor(None, conn.recv)
            if job is None:
                return
            try:
                result = await job.run(env)
            except Exception:
                conn.send(("error", traceback.format_exc()))
            else:
                conn.send(("ok", result))
    except (EOFError, OSError):
        return  # the parent went away
    finally:
        await env.close()


class WorkerPool:
    def __init__(self, size: int, target: str, etcd_url: str) -> None:
        self.size = size
        self._target = target
        self._etcd_url = etcd_url
        self._procs: list[multiprocessing.process.BaseProcess] = []
        self._conns: list[multiprocessing.connection.Connection] = []

    def start(self, timeout: float = 60.0) -> WorkerPool:
        ctx = multiprocessing.get_context("spawn")
        for i in range(self.size):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(i, self._target, self._etcd_url, child),
                               name=f"bench-worker-{i}", daemon=True)
            proc.start()
            child.close()
            self._procs.append(proc)
            self._conns.append(parent)
        for i in range(self.size):
            if self._receive(i, timeout, "start") != _READY:
                raise WorkerError(f"worker {i} did not start")
        return self

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def run(self, jobs: Mapping[int, Job], timeout: float = 900.0) -> dict[int, Any]:
        """Send each worker its job, wait for every answer."""
        self.submit(jobs)
        return self.collect(list(jobs), timeout)

    def run_all(self, jobs: Sequence[Job], timeout: float = 900.0) -> list[Any]:
        """Job i to worker i, results in the same order."""
        results = self.run(dict(enumerate(jobs)), timeout)
        return [results[i] for i in range(len(jobs))]

    def submit(self, jobs: Mapping[int, Job]) -> None:
        for worker, job in jobs.items():
            self._conns[worker].send(job)

    def collect(self, workers: list[int], timeout: float = 900.0) -> dict[int, Any]:
        deadline = time.monotonic() + timeout
        results: dict[int, Any] = {}
        for worker in workers:
            status, value = self._receive(worker, max(0.0, deadline - time.monotonic()), "job")
            if status == "error":
                raise WorkerError(f"worker {worker} failed:\n{value}")
            results[worker] = value
        return results

    def _receive(self, worker: int, timeout: float, what: str) -> Any:
        conn, proc = self._conns[worker], self._procs[worker]
        deadline = time.monotonic() + timeout
        while not conn.poll(1.0):
            if not proc.is_alive():
                raise WorkerError(f"worker {worker} exited (code {proc.exitcode}) during {what}")
            if time.monotonic() > deadline:
                raise WorkerError(f"worker {worker} did not finish its {what} in {timeout:.0f}s")
        try:
            return conn.recv()
        except EOFError:
            proc.join(1)
            raise WorkerError(f"worker {worker} exited (code {proc.exitcode}) during {what}") from None

    def close(self, grace: float = 5.0) -> None:
        """Ask every worker to leave; after `grace` seconds terminate the
        ones still there (busy in a job), then kill any that linger."""
        for conn in self._conns:
            with contextlib.suppress(OSError, ValueError):
                conn.send(None)
        for signal_them in (lambda p: None, lambda p: p.terminate(), lambda p: p.kill()):
            for proc in self._procs:
                if proc.is_alive():
                    signal_them(proc)
            deadline = time.monotonic() + grace
            for proc in self._procs:
                proc.join(max(0.0, deadline - time.monotonic()))
            if not any(p.is_alive() for p in self._procs):
                break
            grace = 5.0
        for conn in self._conns:
            conn.close()
        self._procs.clear()
        self._conns.clear()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, typ: type[BaseException] | None, *exc: object) -> None:
        self.close(grace=5.0 if typ is None else 0.0)  # on failure or Ctrl-C, don't wait on busy workers
