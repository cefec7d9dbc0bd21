"""An in-memory stand-in for ResourceClient[ConfigMap], for the reflector
and informer tests: the same `kind`, `list_all` and `watch` shapes, with
the watch stream scripted by the test (events, bookmarks, errors such as
Gone, or HANG for a watch that stays open with nothing to say)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from api import SCHEME, StatusError, new_error
from client import ObjectList, WatchEvent
from proto import core_pb2

HANG = "hang"
Step = WatchEvent[core_pb2.ConfigMap] | StatusError | str


def error(reason: str) -> StatusError:
    return new_error(reason, f"scripted {reason}")


class FakeResourceClient:
    kind = SCHEME.for_message(core_pb2.ConfigMap)

    def __init__(self, namespace: str = "ns") -> None:
        self.namespace = namespace
        self.objects: dict[str, core_pb2.ConfigMap] = {}
        self.revision = 1
        self.list_errors: list[StatusError] = []
        self.scripts: asyncio.Queue[list[Step]] = asyncio.Queue()
        self.lists = 0
        self.watches: list[dict[str, Any]] = []

    # ------------------------------------------------------------ test side

    def put(self, name: str, **data: str) -> core_pb2.ConfigMap:
        """Create or change an object (bumping the revision); no event."""
        self.revision += 1
        obj = core_pb2.ConfigMap(data=data)
        obj.metadata.namespace, obj.metadata.name = self.namespace, name
        obj.metadata.resourceVersion = str(self.revision)
        self.objects[name] = obj
        return obj

    def remove(self, name: str) -> core_pb2.ConfigMap:
        self.revision += 1
        obj = self.objects.pop(name)
        gone = core_pb2.ConfigMap()
        gone.CopyFrom(obj)
        gone.metadata.resourceVersion = str(self.revision)
        return gone

    def event(self, type_: str, name: str, **data: str) -> WatchEvent[core_pb2.ConfigMap]:
        """Apply a change and return the watch event announcing it."""
        obj = self.remove(name) if type_ == "DELETED" else self.put(name, **data)
        copy = core_pb2.ConfigMap()
        copy.CopyFrom(obj)
        return WatchEvent(type_, copy)

    def bookmark(self, revision: int) -> WatchEvent[core_pb2.ConfigMap]:
        obj = core_pb2.ConfigMap()
        obj.metadata.resourceVersion = str(revision)
        return WatchEvent("BOOKMARK", obj)

    def script(self, *steps: Step) -> None:
        """What the next watch() call delivers; it ends after the last step
        unless that is HANG."""
        self.scripts.put_nowait(list(steps))

    # ------------------------------------------------------------ ResourceClient side

    async def list_all(self, *, label_selector: str = "", field_selector: str = "",
                       page: int = 500) -> ObjectList[core_pb2.ConfigMap]:
        if self.list_errors:
            raise self.list_errors.pop(0)
        self.lists += 1
        items = []
        for obj in self.objects.values():
            copy = core_pb2.ConfigMap()
            copy.CopyFrom(obj)
            items.append(copy)
        return ObjectList(items, str(self.revision))

    async def watch(self, *, resource_version: str = "", label_selector: str = "", field_selector: str = "",
                    bookmarks: bool = False, timeout_seconds: int = 0,
                    ) -> AsyncIterator[WatchEvent[core_pb2.ConfigMap]]:
        self.watches.append({"resource_version": resource_version, "bookmarks": bookmarks,
                             "timeout_seconds": timeout_seconds})
        for step in await self.scripts.get():
            if step == HANG:
                await asyncio.Event().wait()
            if isinstance(step, StatusError):
                raise step
            assert isinstance(step, WatchEvent)
            yield step
