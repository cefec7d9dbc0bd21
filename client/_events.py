"""The event recorder: `kubelab describe` shows why things happened.

Components report what they did or could not do as core/v1 Events
attached to an object (`Scheduled`, `FailedScheduling`, `Pulled`,
`BackOff`, ...):

    broadcaster = EventBroadcaster(clientset, "scheduler", host="node-1")
    recorder = broadcaster.new_recorder()
    recorder.event(pod, "Normal", "Scheduled", f"Successfully assigned {ns}/{name} to node-1")

Recording never blocks and never fails the caller: `event()` builds the
Event, puts it on a bounded queue and returns; a background task writes it.
Bad input (a type other than Normal/Warning, an object without a name or
of an unknown kind) is logged and dropped; so is an event that finds the
queue full. As in client-go, before anything is written:

* a spam filter (a token bucket per involved object, burst 25, refilled
  one token per 5 minutes) drops floods from a hot loop;
* an identical event (same object, type, reason, message and source) seen
  again within the aggregation window is not created again: the Event
  already written gets `count` + 1 and a new `lastTimestamp` by a patch.
  If that Event has meanwhile expired it is created afresh.

Writes that fail with a retryable error (the apiserver is down or busy)
are retried a few times with jittered pauses; then the event is dropped
with a log line. Events are a best-effort record, never a control channel.
Events about cluster-scoped objects (Nodes, ...) go to "default", like
Kubernetes. `shutdown()` flushes what is queued, for a bounded time.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from api import SCHEME, Clock, RealClock, StatusError, rfc3339
from proto import core_pb2

from ._clientset import Clientset, ResourceClient
from ._ratelimiter import TokenBucket

log = logging.getLogger(__name__)

EVENT_TYPE_NORMAL = "Normal"
EVENT_TYPE_WARNING = "Warning"
_RETRYABLE = frozenset({"ServiceUnavailable", "Timeout", "TooManyRequests", "InternalError"})


@dataclass
class _Sent:
    """What the correlator remembers about an Event it wrote."""

    name: str
    namespace: str
    count: int
    first_timestamp: str
    last_seen: float  # local monotonic


class EventBroadcaster:
    def __init__(self, clientset: Clientset, component: str, host: str = "", *, clock: Clock | None = None,
                 queue_size: int = 1000, spam_burst: int = 25, spam_qps: float = 1 / 300,
                 aggregate_window: float = 600.0, cache_size: int = 4096, max_tries: int = 12,
                 retry_interval: float = 10.0, rand: Callable[[], float] = random.random) -> None:
        self.clientset = clientset
        self.component = component
        self.host = host
        self._clock = clock or RealClock()
        self._queue: asyncio.Queue[core_pb2.Event] = asyncio.Queue(maxsize=queue_size)
        self._spam_burst, self._spam_qps = spam_burst, spam_qps
        self._window = aggregate_window
        self._cache_size = cache_size
        self._max_tries, self._retry_interval = max_tries, retry_interval
        self._rand = rand
        self._buckets: collections.OrderedDict[tuple[str, ...], TokenBucket] = collections.OrderedDict()
        self._sent: collections.OrderedDict[tuple[str, ...], _Sent] = collections.OrderedDict()
        self._clients: dict[str, ResourceClient[core_pb2.Event]] = {}
        self._last_nanos = 0
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.dropped = 0

    def new_recorder(self, component: str = "") -> EventRecorder:
        """A recorder whose events name `component` as their source (the
        broadcaster's own component by default)."""
        return EventRecorder(self, component)

    # ------------------------------------------------------------ the caller's side

    def submit(self, event: core_pb2.Event) -> None:
        if self._closed:
            return
        try:
            if self._task is None:
                self._task = asyncio.get_running_loop().create_task(self._send_loop(), name="event broadcaster")
            self._queue.put_nowait(event)
        except (asyncio.QueueFull, RuntimeError) as err:
            self.dropped += 1
            if self.dropped & (self.dropped - 1) == 0:  # 1st, 2nd, 4th, ...: a flood must not flood the log too
                log.warning("dropping event %s %s on %s: %s (%d dropped so far)", event.type, event.reason,
                            event.involvedObject.name,
                            "queue full" if isinstance(err, asyncio.QueueFull) else err, self.dropped)

    def timestamp(self) -> str:
        return rfc3339(self._clock.now())

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait up to `timeout` seconds until everything queued is written
        (or dropped); False if some is still pending."""
        if self._task is None:
            return True
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            return False
        return True

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Stop taking events, try for `timeout` seconds to write those queued."""
        self._closed = True
        if self._task is None:
            return
        if not await self.flush(timeout):
            log.warning("event broadcaster: %d events not written at shutdown", self._queue.qsize())
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    # ------------------------------------------------------------ the sender

    async def _send_loop(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._record(event)
            except Exception:
                log.exception("event broadcaster: recording %s failed", event.reason)
            finally:
                self._queue.task_done()

    async def _record(self, event: core_pb2.Event) -> None:
        ref = event.involvedObject
        source = (event.source.component, event.source.host)
        subject = (*source, ref.kind, ref.apiVersion, ref.namespace, ref.name, ref.uid)
        if not self._allow(subject):
            self.dropped += 1
            log.debug("event spam filter dropped %s %s on %s", event.type, event.reason, ref.name)
            return
        key = (*subject, event.type, event.reason, event.message)
        now = self._clock.monotonic()
        sent = self._sent.get(key)
        if sent is not None and now - sent.last_seen <= self._window:
            sent.count += 1
            sent.last_seen = now
            self._sent.move_to_end(key)
            if await self._patch(sent, event.lastTimestamp):
                return
            event.firstTimestamp = sent.first_timestamp  # it expired: write it afresh, keeping the count
            event.count = sent.count
        else:
            sent = _Sent(f"{ref.name}.{self._unique_nanos():x}", event.metadata.namespace, 1,
                         event.firstTimestamp, now)
            self._remember(key, sent)
        event.metadata.name = sent.name
        await self._send(lambda: self._client(sent.namespace).create(event), f"creating event {sent.name}")

    async def _patch(self, sent: _Sent, last_timestamp: str) -> bool:
        """Bump an Event already written; False if it no longer exists."""
        patch = {"count": sent.count, "lastTimestamp": last_timestamp}
        try:
            await self._send(lambda: self._client(sent.namespace).patch(sent.name, patch),
                             f"updating event {sent.name}", raise_not_found=True)
        except StatusError:
            return False
        return True

    async def _send(self, call: Callable[[], Awaitable[Any]], what: str, *, raise_not_found: bool = False) -> None:
        for attempt in range(1, self._max_tries + 1):
            try:
                await call()
                return
            except StatusError as err:
                if err.reason == "NotFound" and raise_not_found:
                    raise
                if err.reason == "AlreadyExists":
                    return  # another writer got there first; the event is recorded
                if err.reason not in _RETRYABLE or attempt == self._max_tries:
                    log.warning("event broadcaster: %s: %s (dropped)", what, err)
                    self.dropped += 1
                    return
            await self._clock.sleep(self._retry_interval * (0.5 + self._rand()))

    # ------------------------------------------------------------ bookkeeping

    def _allow(self, subject: tuple[str, ...]) -> bool:
        bucket = self._buckets.get(subject)
        if bucket is None:
            bucket = self._buckets[subject] = TokenBucket(self._spam_qps, self._spam_burst, self._clock)
            if len(self._buckets) > self._cache_size:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(subject)
        return bucket.try_accept()

    def _remember(self, key: tuple[str, ...], sent: _Sent) -> None:
        self._sent[key] = sent
        self._sent.move_to_end(key)
        if len(self._sent) > self._cache_size:
            self._sent.popitem(last=False)

    def _unique_nanos(self) -> int:
        """Nanoseconds since the epoch, strictly increasing (names must differ)."""
        self._last_nanos = max(int(self._clock.now() * 1e9), self._last_nanos + 1)
        return self._last_nanos

    def _client(self, namespace: str) -> ResourceClient[core_pb2.Event]:
        client = self._clients.get(namespace)
        if client is None:
            client = self._clients[namespace] = self.clientset.resource(core_pb2.Event, namespace)
        return client


class EventRecorder:
    """Records Events on behalf of one component (client-go's EventRecorder)."""

    def __init__(self, broadcaster: EventBroadcaster, component: str = "") -> None:
        self._broadcaster = broadcaster
        self.component = component or broadcaster.component

    def for_component(self, component: str) -> EventRecorder:
        """A recorder on the same broadcaster for another component (each
        controller of a controller-manager names itself)."""
        return EventRecorder(self._broadcaster, component)

    def event(self, obj: Message, event_type: str, reason: str, message: str) -> None:
        """Record an Event about `obj` (any kind's message, or an
        ObjectReference); returns at once, never raises."""
        try:
            self._broadcaster.submit(self._build(obj, event_type, reason, message))
        except Exception as err:  # bad input must not fail the caller
            log.error("not recording event %s %r: %s", event_type, reason, err)

    def eventf(self, obj: Message, event_type: str, reason: str, fmt: str, *args: Any) -> None:
        try:
            message = fmt % args if args else fmt
        except (TypeError, ValueError) as err:
            message = f"{fmt} (bad format arguments {args!r}: {err})"
        self.event(obj, event_type, reason, message)

    def _build(self, obj: Message, event_type: str, reason: str, message: str) -> core_pb2.Event:
        if event_type not in (EVENT_TYPE_NORMAL, EVENT_TYPE_WARNING):
            raise ValueError(f"unsupported event type {event_type!r}: must be Normal or Warning")
        ref = object_reference(obj)
        if not ref.name:
            raise ValueError("the object has no name")
        b = self._broadcaster
        now = b.timestamp()
        event = core_pb2.Event(involvedObject=ref, reason=reason, message=message, type=event_type,
                               firstTimestamp=now, lastTimestamp=now, count=1,
                               reportingComponent=self.component, reportingInstance=b.host)
        event.source.component = self.component
        event.source.host = b.host
        event.metadata.namespace = ref.namespace or "default"
        return event


def object_reference(obj: Message) -> core_pb2.ObjectReference:
    """An ObjectReference naming `obj` at its current resourceVersion."""
    if isinstance(obj, core_pb2.ObjectReference):
        ref = core_pb2.ObjectReference()
        ref.CopyFrom(obj)
        return ref
    kind = SCHEME.for_message(obj)
    meta = obj.metadata  # type: ignore[attr-defined]
    return core_pb2.ObjectReference(kind=kind.kind, apiVersion=kind.api_version, name=meta.name,
                                    namespace=meta.namespace if kind.namespaced else "", uid=meta.uid,
                                    resourceVersion=meta.resourceVersion)
