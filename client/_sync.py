"""A blocking face on the async clientset, for scripts and the REPL.

    cs = SyncClientset(load_config())
    for pod in cs.resource(core_pb2.Pod, "default").list().items:
        print(pod.metadata.name)

Every call runs on a private event loop in a background thread, so the same
async code serves both; nothing is implemented twice.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from api import Kind

from ._clientset import Clientset, ObjectList, ResourceClient, WatchEvent
from ._config import ClientConfig

T = TypeVar("T", bound=Message)
R = TypeVar("R")

_DONE = object()


class SyncClientset:
    def __init__(self, config: ClientConfig) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kubelab-client", daemon=True)
        self._thread.start()

        async def connect() -> Clientset:
            return Clientset.connect(config)
        self.clientset = self.run(connect())

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def resource(self, kind: type[T] | Kind, namespace: str = "") -> SyncResourceClient[T]:
        return SyncResourceClient(self, self.clientset.resource(kind, namespace))

    def close(self) -> None:
        self.run(self.clientset.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> SyncClientset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SyncResourceClient(Generic[T]):
    def __init__(self, owner: SyncClientset, inner: ResourceClient[T]) -> None:
        self._owner = owner
        self.inner = inner

    def create(self, obj: T, **kw: Any) -> T:
        return self._owner.run(self.inner.create(obj, **kw))

    def get(self, name: str, **kw: Any) -> T:
        return self._owner.run(self.inner.get(name, **kw))

    def list(self, **kw: Any) -> ObjectList[T]:
        return self._owner.run(self.inner.list(**kw))

    def list_all(self, **kw: Any) -> ObjectList[T]:
        return self._owner.run(self.inner.list_all(**kw))

    def update(self, obj: T, **kw: Any) -> T:
        return self._owner.run(self.inner.update(obj, **kw))

    def update_status(self, obj: T, **kw: Any) -> T:
        return self._owner.run(self.inner.update_status(obj, **kw))

    def patch(self, name: str, patch: Any, **kw: Any) -> T:
        return self._owner.run(self.inner.patch(name, patch, **kw))

    def delete(self, name: str, **kw: Any) -> T:
        return self._owner.run(self.inner.delete(name, **kw))

    def watch(self, **kw: Any) -> Iterator[WatchEvent[T]]:
        """Blocking iteration over a watch; stop by breaking out of the loop."""
        events: queue.Queue[Any] = queue.Queue()

        async def pump() -> None:
            try:
                async for event in self.inner.watch(**kw):
                    events.put(event)
            except BaseException as err:  # hand any failure to the reading thread
                events.put(err)
            finally:
                events.put(_DONE)

        future = asyncio.run_coroutine_threadsafe(pump(), self._owner._loop)
        try:
            while True:
                item = events.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            future.cancel()
