"""What the apiserver needs from a key-value store, and nothing more.

Keys are `/registry/<resource>/<namespace>/<name>`; values are serialized
objects; every write returns the store's new revision, which becomes the
object's resourceVersion. Writes are conditional - create only if absent,
update and delete only at the revision the caller read - so two writers can
never lose each other's update. A write may carry side keys in the same
transaction (a Service and the ClusterIP it reserves), so an allocation
never outlives or predates its owner.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int = 0


@dataclass(frozen=True, slots=True)
class StoreEvent:
    """One change in a watched range. `value` is empty for a delete."""

    type: str  # "PUT" or "DELETE"
    key: str
    value: bytes
    mod_revision: int
    create_revision: int = 0


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[KeyValue]
    revision: int
    more: bool
    count: int = 0  # keys in the whole range, returned or not


class StoreError(Exception):
    pass


class KeyExists(StoreError):
    """A create found its key (or one of its side keys) already there."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFound(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class RevisionMismatch(StoreError):
    """A conditional write saw another revision; `current` is what is there."""

    def __init__(self, key: str, current: KeyValue | None) -> None:
        super().__init__(f"revision mismatch on {key}")
        self.key = key
        self.current = current


class Compacted(StoreError):
    """The revision asked for is older than the store keeps history for."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"required revision {requested} has been compacted (compacted revision {compacted})")
        self.requested = requested
        self.compacted = compacted


class Unavailable(StoreError):
    pass


class Store(Protocol):
    async def get(self, key: str) -> KeyValue | None: ...

    async def range(self, prefix: str, *, revision: int = 0, limit: int = 0, start_key: str = "") -> ListResult:
        """Keys under `prefix` from `start_key` on, at `revision` (0: latest),
        as etcd's Range does."""
        ...

    async def count(self, prefix: str) -> int: ...

    async def create(self, key: str, value: bytes, *, side_creates: Mapping[str, bytes] = ...) -> int:
        """Create `key` and every side key, all or none; KeyExists names the
        one that was already there."""
        ...

    async def update(self, key: str, value: bytes, expected_revision: int, *,
                     side_creates: Mapping[str, bytes] = ..., side_deletes: Sequence[str] = ...) -> int:
        """Replace `key` if it is still at `expected_revision`; otherwise
        RevisionMismatch with what is there (or KeyNotFound)."""
        ...

    async def delete(self, key: str, expected_revision: int, *, side_deletes: Sequence[str] = ...) -> int: ...

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[StoreEvent]]:
        """Batches of changes after `start_revision - 1`, in revision order;
        raises Compacted when that history is gone."""
        ...

    async def current_revision(self) -> int: ...

    async def compact(self, revision: int) -> None: ...

    async def close(self) -> None: ...
