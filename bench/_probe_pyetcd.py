"""The etcd operations the apiserver makes, through etcd-sdk-python (module
pyetcd, blocking calls on a grpc sync channel, safe to share between
threads).

Gets and ranges use its public `get_response`/`get_prefix_response`; watches
its `add_watch_prefix_callback` (every watch of one client shares one gRPC
stream, and callbacks run on one background thread). Transactions go to
its KV stub directly with etcd's messages, the way its own `transaction()`
sends them: `transaction()` returns (succeeded, responses) and drops the
response header, and the apiserver needs the header's revision - it is the
new resourceVersion. Imported only by the probe subprocess.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyetcd
from pyetcd import etcdrpc

_TIMEOUT = 60.0


def version() -> str:
    from importlib.metadata import version as dist_version
    return dist_version("etcd-sdk-python")


class Adapter:
    def __init__(self, endpoint: str) -> None:
        host, _, port = endpoint.rpartition(":")
        self._client = pyetcd.client(host=host, port=int(port), timeout=_TIMEOUT,
                                     grpc_options=[("grpc.max_receive_message_length", 256 * 1024 * 1024)])
        self._watch_ids: list[Any] = []

    def _txn(self, compare: Any, key: bytes, value: bytes) -> Any:
        c = self._client
        request = etcdrpc.TxnRequest(
            compare=[compare],
            success=[etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=key, value=value))],
            failure=[etcdrpc.RequestOp(request_range=etcdrpc.RangeRequest(key=key))])
        return c.kvstub.Txn(request, c.timeout, credentials=c.call_credentials, metadata=c.metadata)

    def put(self, key: bytes, value: bytes) -> int:
        return int(self._client.put(key, value).header.revision)

    def create(self, key: bytes, value: bytes) -> int:
        compare = etcdrpc.Compare(result=etcdrpc.Compare.EQUAL, target=etcdrpc.Compare.CREATE, key=key,
                                  create_revision=0)
        resp = self._txn(compare, key, value)
        if not resp.succeeded:
            raise KeyError(key)
        return int(resp.header.revision)

    def compare_and_swap(self, key: bytes, value: bytes, mod_revision: int) -> int:
        compare = etcdrpc.Compare(result=etcdrpc.Compare.EQUAL, target=etcdrpc.Compare.MOD, key=key,
                                  mod_revision=mod_revision)
        resp = self._txn(compare, key, value)
        if not resp.succeeded:
            raise ValueError(f"{key!r} changed")
        return int(resp.header.revision)

    def get(self, key: bytes) -> int:
        resp = self._client.get_response(key)
        return int(resp.kvs[0].mod_revision) if resp.kvs else 0

    def range(self, prefix: bytes) -> int:
        return len(self._client.get_prefix_response(prefix).kvs)

    def watch(self, prefix: bytes, on_key: Callable[[bytes], None]) -> None:
        def callback(response: Any) -> None:
            if isinstance(response, Exception):
                return
            for event in response.events:
                on_key(event.key)
        self._watch_ids.append(self._client.add_watch_prefix_callback(prefix, callback))

    def close(self) -> None:
        for watch_id in self._watch_ids:
            self._client.cancel_watch(watch_id)
        self._client.close()


class AsyncAdapter:
    """The same client as an asyncio program (the apiserver) would have to
    use it: every blocking call handed to a thread pool with
    `run_in_executor`, every watch event handed back to the event loop with
    `call_soon_threadsafe`. The thread hops are part of its cost."""

    def __init__(self, endpoint: str, threads: int = 32) -> None:
        import asyncio
        from concurrent.futures import ThreadPoolExecutor
        self._sync = Adapter(endpoint)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="etcd")
        self._loop = asyncio.get_running_loop()

    def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self._loop.run_in_executor(self._pool, fn, *args)

    async def put(self, key: bytes, value: bytes) -> int:
        return int(await self._run(self._sync.put, key, value))

    async def create(self, key: bytes, value: bytes) -> int:
        return int(await self._run(self._sync.create, key, value))

    async def compare_and_swap(self, key: bytes, value: bytes, mod_revision: int) -> int:
        return int(await self._run(self._sync.compare_and_swap, key, value, mod_revision))

    async def get(self, key: bytes) -> int:
        return int(await self._run(self._sync.get, key))

    async def range(self, prefix: bytes) -> int:
        return int(await self._run(self._sync.range, prefix))

    async def watch(self, prefix: bytes, on_key: Callable[[bytes], None]) -> None:
        loop = self._loop
        await self._run(self._sync.watch, prefix, lambda key: loop.call_soon_threadsafe(on_key, key))

    async def close(self) -> None:
        await self._run(self._sync.close)
        self._pool.shutdown()
