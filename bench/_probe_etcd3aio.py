"""The etcd operations the apiserver makes, through etcd3aio (asyncio).

Written the way apiserver/storage/_etcd.py writes them: one grpc.aio
channel, KVService and WatchService with max_attempts=1, etcd's own
Compare/RequestOp messages, a timeout on every call. Imported only by the
probe subprocess (see etcd_clients.py for why).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc.aio
from etcd3aio.kv import Compare, KVService, prefix_range_end
from etcd3aio.watch import WatchService

_TIMEOUT = 60.0


def version() -> str:
    from importlib.metadata import version as dist_version
    return dist_version("etcd3aio")


class Adapter:
    def __init__(self, endpoint: str) -> None:
        self._channel = grpc.aio.insecure_channel(endpoint, options=[
            ("grpc.max_receive_message_length", 256 * 1024 * 1024)])
        self._kv = KVService(self._channel, max_attempts=1)
        self._watch = WatchService(self._channel, max_attempts=1)
        self._tasks: list[asyncio.Task[None]] = []

    async def put(self, key: bytes, value: bytes) -> int:
        resp = await self._kv.put(key, value, timeout=_TIMEOUT)
        return int(resp.header.revision)

    async def create(self, key: bytes, value: bytes) -> int:
        """Put if absent: the revision, or KeyError if the key exists."""
        resp = await self._kv.txn([KVService.txn_compare_create_revision(key, 0)], [KVService.txn_op_put(key, value)],
                                  [KVService.txn_op_get(key)], timeout=_TIMEOUT)
        if not resp.succeeded:
            raise KeyError(key)
        return int(resp.header.revision)

    async def compare_and_swap(self, key: bytes, value: bytes, mod_revision: int) -> int:
        """Put if the key is still at `mod_revision`: the new revision, or
        ValueError on a conflict."""
        compare = Compare(result=Compare.EQUAL, target=Compare.MOD, key=key, mod_revision=mod_revision)
        resp = await self._kv.txn([compare], [KVService.txn_op_put(key, value)], [KVService.txn_op_get(key)],
                                  timeout=_TIMEOUT)
        if not resp.succeeded:
            raise ValueError(f"{key!r} changed")
        return int(resp.header.revision)

    async def get(self, key: bytes) -> int:
        resp = await self._kv.get(key, timeout=_TIMEOUT)
        return int(resp.kvs[0].mod_revision) if resp.kvs else 0

    async def range(self, prefix: bytes) -> int:
        resp = await self._kv.get(prefix, range_end=prefix_range_end(prefix), timeout=_TIMEOUT)
        return len(resp.kvs)

    async def watch(self, prefix: bytes, on_key: Callable[[bytes], None]) -> None:
        """Start watching `prefix` in the background; `on_key` gets each
        changed key as it arrives."""
        async def follow() -> None:
            async for resp in self._watch.watch(prefix, range_end=prefix_range_end(prefix)):
                for event in resp.events:
                    on_key(event.kv.key)
        self._tasks.append(asyncio.create_task(follow()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._channel.close(None)
