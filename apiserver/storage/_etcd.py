"""The Store on a real etcd, through etcd3aio (asyncio, on grpc.aio).

Why etcd3aio: it is an asyncio client on grpc.aio, so the apiserver's event
loop talks to etcd without threads, and it exposes etcd's own request
messages (Compare, RequestOp) rather than hiding transactions behind a
narrower API. bench/etcd_clients.py measures it beside etcd-sdk-python
(pyetcd, thread-based); the README has the figures.

Calls go to etcd3aio's KV stub with etcd3aio's request messages and a gRPC
deadline, without its retry wrapper: the apiserver's own callers retry
where retrying is safe, and a transaction retried after a lost reply could
report "already exists" for its own create. (The wrapper's per-call asyncio
timeout also costs measurable CPU at thousands of calls a second.)
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

import grpc
import grpc.aio
from etcd3aio.kv import (
    CompactionRequest,
    Compare,
    DeleteRangeRequest,
    KVStub,
    PutRequest,
    RangeRequest,
    RequestOp,
    TxnRequest,
)
from etcd3aio.watch import WatchService
from prometheus_client import Histogram

from ._interface import (
    Compacted,
    KeyExists,
    KeyNotFound,
    KeyValue,
    ListResult,
    RevisionMismatch,
    StoreEvent,
    Unavailable,
)

ETCD_LATENCY = Histogram(
    "etcd_request_duration_seconds", "Latency of etcd requests made by the apiserver.",
    ["operation"], buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

_MAX_MESSAGE = 256 * 1024 * 1024


def _endpoint(url: str) -> str:
    for scheme in ("http://", "https://"):
        if url.startswith(scheme):
            url = url[len(scheme):]
    return url.rstrip("/")


def _same_revision(key: str, revision: int) -> Compare:
    return Compare(result=Compare.EQUAL, target=Compare.MOD, key=key.encode(), mod_revision=revision)


def _absent(key: str) -> Compare:
    return Compare(result=Compare.EQUAL, target=Compare.CREATE, key=key.encode(), create_revision=0)


def _put(key: str, value: bytes) -> RequestOp:
    return RequestOp(request_put=PutRequest(key=key.encode(), value=value))


def _get(key: str) -> RequestOp:
    return RequestOp(request_range=RangeRequest(key=key.encode()))


def _delete(key: str) -> RequestOp:
    return RequestOp(request_delete_range=DeleteRangeRequest(key=key.encode()))


def prefix_end(prefix: bytes) -> bytes:
    """The first key after every key that starts with `prefix`."""
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\x00"


class EtcdStore:
    """See the Store protocol in _interface.py for the contract."""

    def __init__(self, servers: Sequence[str], *, timeout: float = 30.0) -> None:
        endpoints = [_endpoint(s) for s in servers]
        target = "ipv4:" + ",".join(e.replace("localhost", "127.0.0.1") for e in endpoints)
        self._channel = grpc.aio.insecure_channel(target, options=[
            ("grpc.lb_policy_name", "round_robin"),
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.max_send_message_length", _MAX_MESSAGE),
            ("grpc.keepalive_time_ms", 10_000),
            ("grpc.keepalive_timeout_ms", 5_000),
            ("grpc.keepalive_permit_without_calls", True),
        ])
        self._kv = KVStub(self._channel)
        self._watch = WatchService(self._channel, max_attempts=1)
        self._timeout = timeout
        self._latency = {op: ETCD_LATENCY.labels(op) for op in
                         ("get", "range", "count", "revision", "create", "update", "delete", "compact")}
        self.servers = list(servers)

    async def _call(self, operation: str, method: Any, request: Any) -> Any:
        start = time.perf_counter()
        try:
            return await method(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.OUT_OF_RANGE and "compacted" in (err.details() or ""):
                raise Compacted(0, 0) from None
            raise Unavailable(f"etcd {operation} failed: {err.code().name}: {err.details()}") from None
        finally:
            self._latency[operation].observe(time.perf_counter() - start)

    # ------------------------------------------------------------------ reads

    async def get(self, key: str) -> KeyValue | None:
        resp = await self._call("get", self._kv.Range, RangeRequest(key=key.encode()))
        if not resp.kvs:
            return None
        kv = resp.kvs[0]
        return KeyValue(key, kv.value, kv.mod_revision, kv.create_revision)

    async def range(self, prefix: str, *, revision: int = 0, limit: int = 0, start_key: str = "") -> ListResult:
        start = (start_key or prefix).encode()
        resp = await self._call("range", self._kv.Range, RangeRequest(
            key=start, range_end=prefix_end(prefix.encode()), revision=revision, limit=limit))
        items = [KeyValue(kv.key.decode(), kv.value, kv.mod_revision, kv.create_revision) for kv in resp.kvs]
        return ListResult(items, resp.header.revision, bool(resp.more), int(resp.count))

    async def count(self, prefix: str) -> int:
        resp = await self._call("count", self._kv.Range, RangeRequest(
            key=prefix.encode(), range_end=prefix_end(prefix.encode()), count_only=True))
        return int(resp.count)

    async def current_revision(self) -> int:
        resp = await self._call("revision", self._kv.Range, RangeRequest(key=b"/registry/", count_only=True))
        return int(resp.header.revision)

    # ------------------------------------------------------------------ writes

    async def create(self, key: str, value: bytes, *, side_creates: Mapping[str, bytes] = {}) -> int:
        keys = [key, *side_creates]
        compare = [_absent(k) for k in keys]
        success = [_put(key, value)] + [_put(k, v) for k, v in side_creates.items()]
        failure = [_get(k) for k in keys]
        resp = await self._call("create", self._kv.Txn, TxnRequest(compare=compare, success=success, failure=failure))
        if not resp.succeeded:
            for k, r in zip(keys, resp.responses, strict=True):
                if r.response_range.kvs:
                    raise KeyExists(k)
            raise KeyExists(key)
        return int(resp.header.revision)

    async def update(self, key: str, value: bytes, expected_revision: int, *,
                     side_creates: Mapping[str, bytes] = {}, side_deletes: Sequence[str] = ()) -> int:
        compare = [_same_revision(key, expected_revision)] + [_absent(k) for k in side_creates]
        success = [_put(key, value)] + [_put(k, v) for k, v in side_creates.items()]
        success += [_delete(k) for k in side_deletes]
        failure = [_get(key)] + [_get(k) for k in side_creates]
        resp = await self._call("update", self._kv.Txn, TxnRequest(compare=compare, success=success, failure=failure))
        if not resp.succeeded:
            self._raise_write_failure(key, expected_revision, list(side_creates), resp)
        return int(resp.header.revision)

    async def delete(self, key: str, expected_revision: int, *, side_deletes: Sequence[str] = ()) -> int:
        compare = [_same_revision(key, expected_revision)]
        success = [_delete(key)] + [_delete(k) for k in side_deletes]
        resp = await self._call("delete", self._kv.Txn, TxnRequest(compare=compare, success=success,
                                                                   failure=[_get(key)]))
        if not resp.succeeded:
            self._raise_write_failure(key, expected_revision, [], resp)
        return int(resp.header.revision)

    @staticmethod
    def _raise_write_failure(key: str, expected: int, side_keys: list[str], resp: Any) -> None:
        kvs = resp.responses[0].response_range.kvs
        if not kvs:
            raise KeyNotFound(key)
        kv = kvs[0]
        if kv.mod_revision != expected:
            raise RevisionMismatch(key, KeyValue(key, kv.value, kv.mod_revision, kv.create_revision))
        for k, r in zip(side_keys, list(resp.responses)[1:], strict=True):
            if r.response_range.kvs:
                raise KeyExists(k)
        raise RevisionMismatch(key, KeyValue(key, kv.value, kv.mod_revision, kv.create_revision))

    # ------------------------------------------------------------------ watch

    async def watch(self, prefix: str, start_revision: int) -> AsyncGenerator[list[StoreEvent], None]:
        stream: Any = self._watch.watch(prefix.encode(), range_end=prefix_end(prefix.encode()),
                                        start_revision=start_revision)
        try:
            async for resp in stream:
                if resp.compact_revision:
                    raise Compacted(start_revision, int(resp.compact_revision))
                if resp.canceled:
                    raise Unavailable(f"etcd cancelled the watch on {prefix}: {resp.cancel_reason}")
                if not resp.events:
                    continue
                yield [StoreEvent("DELETE" if ev.type == 1 else "PUT", ev.kv.key.decode(), ev.kv.value,
                                  ev.kv.mod_revision, ev.kv.create_revision) for ev in resp.events]
        except grpc.aio.AioRpcError as err:
            raise Unavailable(f"etcd watch on {prefix} failed: {err.code().name}: {err.details()}") from None
        finally:
            await stream.aclose()

    # ------------------------------------------------------------------ upkeep

    async def compact(self, revision: int) -> None:
        try:
            await self._call("compact", self._kv.Compact, CompactionRequest(revision=revision))
        except Compacted:
            pass  # someone compacted further already

    async def close(self) -> None:
        await self._channel.close(None)
