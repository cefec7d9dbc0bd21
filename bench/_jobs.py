"""The load jobs worker processes run: closed-loop creates and gets,
open-loop (paced) creates, lists and raw etcd puts (the watchers are in
_watchers.py).

Each job is a small picklable dataclass whose `run(env)` executes inside a
worker (see _workers.py) and returns a `LoadResult`. Latencies are client-side: from just before the call to
just after the reply is decoded, or - for paced creates - from the time
the request was *scheduled*, so a server that falls behind is charged for
the queue it causes (no coordinated omission).

Pods are the Kubernetes documentation's nginx pod (one container, image
nginx:1.14.2, port 80) with a unique name: `{prefix}-{index:06d}`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from ._workers import WorkerEnv

NGINX_POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "nginx"},
    "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]},
}


def pod_name(prefix: str, index: int) -> str:
    return f"{prefix}-{index:06d}"


@dataclass
class LoadResult:
    started: float
    ended: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    items: int = 0  # for lists: objects in the last answer
    issued: dict[str, float] = field(default_factory=dict)  # paced creates: name -> when it was sent
    completions: dict[str, float] = field(default_factory=dict)  # paced creates: name -> reply stamp
    issue_lag: list[float] = field(default_factory=list)  # paced creates: how late the generator issued

    def fail(self, err: BaseException) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = f"{type(err).__name__}: {err}"


async def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


def _template() -> Any:
    from api import decode_manifest
    return decode_manifest(NGINX_POD)


def pods_client(env: WorkerEnv, namespace: str) -> Any:
    from proto import core_pb2
    return env.clientset.resource(core_pb2.Pod, namespace)


@dataclass
class Connect:
    """Open the worker's channel (one round trip), so no timed call pays for it."""

    async def run(self, env: WorkerEnv) -> str:
        info = await env.clientset.version()
        return str(info.gitVersion)


@dataclass
class EnsureNamespaces:
    names: list[str]

    async def run(self, env: WorkerEnv) -> int:
        from api import StatusError
        from proto import core_pb2
        namespaces = env.clientset.resource(core_pb2.Namespace)
        made = 0
        for name in self.names:
            try:
                await namespaces.create(core_pb2.Namespace(metadata={"name": name}))
                made += 1
            except StatusError as err:
                if err.reason != "AlreadyExists":
                    raise
        return made


@dataclass
class CreatePods:
    """`clients` coroutines create pods `first` .. `first+count-1` as fast
    as the server answers (closed loop)."""

    namespace: str
    prefix: str
    first: int
    count: int
    clients: int
    start_at: float = 0.0

    async def run(self, env: WorkerEnv) -> LoadResult:
        pods = pods_client(env, self.namespace)
        template = _template()
        indices = iter(range(self.first, self.first + self.count))
        await _sleep_until(self.start_at)
        result = LoadResult(time.monotonic(), 0.0)

        async def client() -> None:
            for i in indices:  # shared: each index is taken by exactly one client
                pod = type(template)()
                pod.CopyFrom(template)
                pod.metadata.name = pod_name(self.prefix, i)
                t = time.monotonic()
                try:
                    await pods.create(pod)
                except Exception as err:  # counted, and the first one reported
                    result.fail(err)
                else:
                    result.latencies.append(time.monotonic() - t)

        await asyncio.gather(*(client() for _ in range(self.clients)))
        result.ended = time.monotonic()
        return result


@dataclass
class GetPods:
    """`clients` coroutines get random pods among `population` existing ones
    (`prefix`-0 .. -population-1), `count` gets in all (closed loop)."""

    namespace: str
    prefix: str
    population: int
    count: int
    clients: int
    seed: int = 0
    start_at: float = 0.0

    async def run(self, env: WorkerEnv) -> LoadResult:
        import random
        pods = pods_client(env, self.namespace)
        rng = random.Random(self.seed)
        names = [pod_name(self.prefix, rng.randrange(self.population)) for _ in range(self.count)]
        todo = iter(names)
        await _sleep_until(self.start_at)
        result = LoadResult(time.monotonic(), 0.0)

        async def client() -> None:
            for name in todo:
                t = time.monotonic()
                try:
                    await pods.get(name)
                except Exception as err:
                    result.fail(err)
                else:
                    result.latencies.append(time.monotonic() - t)

        await asyncio.gather(*(client() for _ in range(self.clients)))
        result.ended = time.monotonic()
        return result


@dataclass
class PacedCreates:
    """Open loop: request k is issued at `start_at + offset + k/rate`
    whether or not earlier ones have returned; its latency runs from that
    scheduled moment to the reply. Requests still out `drain` seconds after
    the last was issued count as errors."""

    namespace: str
    prefix: str
    first: int
    count: int
    rate: float
    start_at: float
    offset: float = 0.0
    stride: int = 1  # this worker takes every stride-th index
    drain: float = 30.0

    async def run(self, env: WorkerEnv) -> LoadResult:
        pods = pods_client(env, self.namespace)
        template = _template()
        result = LoadResult(self.start_at + self.offset, 0.0)
        tasks: set[asyncio.Task[None]] = set()

        async def one(name: str, scheduled: float) -> None:
            pod = type(template)()
            pod.CopyFrom(template)
            pod.metadata.name = name
            try:
                await pods.create(pod)
            except Exception as err:
                result.fail(err)
                return
            done = time.monotonic()
            result.latencies.append(done - scheduled)
            result.completions[name] = done

        for k in range(self.count):
            scheduled = self.start_at + self.offset + k / self.rate
            await _sleep_until(scheduled)
            now = time.monotonic()
            result.issue_lag.append(now - scheduled)
            name = pod_name(self.prefix, self.first + k * self.stride)
            result.issued[name] = now
            task = asyncio.create_task(one(name, scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            _, pending = await asyncio.wait(set(tasks), timeout=self.drain)
            for task in pending:
                task.cancel()
                result.fail(TimeoutError(f"no reply {self.drain:.0f}s after the schedule ended"))
        result.ended = time.monotonic()
        return result


@dataclass
class ListPods:
    """`reps` full lists, one after another. resource_version "" is a
    consistent list (the apiserver reads etcd); "0" may be served from the
    watch cache."""

    namespace: str
    reps: int
    resource_version: str = ""

    async def run(self, env: WorkerEnv) -> LoadResult:
        pods = pods_client(env, self.namespace)
        result = LoadResult(time.monotonic(), 0.0)
        for _ in range(self.reps):
            t = time.monotonic()
            try:
                answer = await pods.list(resource_version=self.resource_version)
            except Exception as err:
                result.fail(err)
                continue
            result.latencies.append(time.monotonic() - t)
            result.items = len(answer.items)
        result.ended = time.monotonic()
        return result


@dataclass
class EtcdPuts:
    """`clients` coroutines put `value_size`-byte values straight to etcd
    through etcd3aio, on one channel, as the apiserver would."""

    prefix: str
    first: int
    count: int
    clients: int
    value_size: int = 1024
    start_at: float = 0.0

    async def run(self, env: WorkerEnv) -> LoadResult:
        import grpc.aio
        from etcd3aio.kv import KVService
        endpoint = env.etcd_url.removeprefix("http://").rstrip("/")
        channel = grpc.aio.insecure_channel(endpoint)
        kv = KVService(channel, max_attempts=1)
        value = b"v" * self.value_size
        keys = iter(range(self.first, self.first + self.count))
        try:
            await kv.get(b"/warm-up")
            await _sleep_until(self.start_at)
            result = LoadResult(time.monotonic(), 0.0)

            async def client() -> None:
                for i in keys:
                    t = time.monotonic()
                    try:
                        await kv.put(f"{self.prefix}{i:08d}".encode(), value, timeout=30)
                    except Exception as err:
                        result.fail(err)
                    else:
                        result.latencies.append(time.monotonic() - t)

            await asyncio.gather(*(client() for _ in range(self.clients)))
            result.ended = time.monotonic()
            return result
        finally:
            await channel.close(None)
