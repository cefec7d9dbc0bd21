"""SharedInformerFactory: one informer per kind, shared by every controller.

The controller-manager runs a dozen controllers that all watch Pods; with a
factory they share one list, one watch and one cache instead of a dozen.
Ask for an informer (or a lister) by message class before `start()`; an
informer asked for after `start()` is started by the next `start()` call,
as in client-go.

    factory = SharedInformerFactory(clientset, resync=30)
    pods = factory.informer_for(core_pb2.Pod)
    pods.add_event_handler(on_add=enqueue)
    factory.start()
    await factory.wait_for_cache_sync()

If the apiserver is unreachable the informers keep retrying with backoff;
`wait_for_cache_sync(timeout)` is how a caller decides to give up.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar, cast

from google.protobuf.message import Message

from api import Clock, RealClock

from ._clientset import Clientset
from ._informer import Informer
from ._lister import Lister

T = TypeVar("T", bound=Message)


class SharedInformerFactory:
    def __init__(self, clientset: Clientset, namespace: str = "", resync: float = 0.0, *,
                 label_selector: str = "", field_selector: str = "", clock: Clock | None = None) -> None:
        self.clientset = clientset
        self.namespace = namespace
        self.resync = resync
        self._label_selector = label_selector
        self._field_selector = field_selector
        self._clock = clock or RealClock()
        self._informers: dict[type[Message], Informer[Any]] = {}

    def informer_for(self, kind: type[T]) -> Informer[T]:
        """The shared informer for a kind, created on first request."""
        informer = self._informers.get(kind)
        if informer is None:
            informer = Informer(self.clientset.resource(kind, self.namespace), resync=self.resync,
                                label_selector=self._label_selector, field_selector=self._field_selector,
                                clock=self._clock)
            self._informers[kind] = informer
        return cast(Informer[T], informer)

    def lister_for(self, kind: type[T]) -> Lister[T]:
        return self.informer_for(kind).lister()

    def start(self) -> None:
        """Start every informer requested so far that is not running yet."""
        for informer in self._informers.values():
            informer.start()

    async def wait_for_cache_sync(self, timeout: float | None = None) -> dict[type[Message], bool]:
        """Wait until every started informer has synced (or `timeout`
        passes); which kinds synced."""
        started = {k: i for k, i in self._informers.items() if i.started}
        results = await asyncio.gather(*(i.wait_for_sync(timeout) for i in started.values()))
        return dict(zip(started, results, strict=True))

    async def shutdown(self) -> None:
        """Stop every informer and wait for their tasks to end."""
        await asyncio.gather(*(i.stop() for i in self._informers.values()))
