"""The generic registry store: one object lifecycle for every kind.

This is Kubernetes' genericregistry.Store in small. It owns the rules that
hold for all kinds - keys, resourceVersions, optimistic concurrency,
generateName, uid and timestamps, finalizers and graceful deletion, dry run,
list pagination, watches - and asks the kind's Strategy only for what
differs. Reads of the latest state go to etcd; reads that accept any recent
state, and every watch, are served by the watch cache.

A store that cannot be reached raises storage.Unavailable, which the
service layer answers as ServiceUnavailable, the way every other failure
becomes a Status in one place.

Objects are stored as protobuf bytes without a resourceVersion: the
resourceVersion is etcd's mod revision, added on the way out. Since
concatenated protobuf messages merge, adding it to stored bytes is an
append (`with_resource_version`), not a decode and re-encode.
"""

from __future__ import annotations

import base64
import builtins
import json
import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError, Message

from api import (
    Clock,
    FieldSelector,
    FieldSelectorError,
    Selector,
    SelectorError,
    StatusError,
    already_exists,
    bad_request,
    conflict,
    gone,
    internal,
    invalid,
    invalid_object,
    new_error,
    not_found,
    parse_field_selector,
    parse_selector,
    rfc3339,
    stale_update,
    too_large,
)

from ._admission import AdmissionChain, Attributes
from ._auth import UserInfo
from .registry import Reservation, Strategy
from .registry._strategy import carry_system_fields, validate_object_meta, validate_object_meta_update
from .storage import (
    CachedObject,
    Cacher,
    CacheWatcher,
    Compacted,
    KeyExists,
    KeyNotFound,
    RevisionMismatch,
    Store,
    TooOld,
    Unavailable,
)

#: etcd's default request limit; Kubernetes refuses objects larger than this.
MAX_OBJECT_BYTES = 1_572_864
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_MAX_GENERATE_BASE = 63 - 5
_UPDATE_RETRIES = 16


def with_resource_version(data: bytes, revision: int) -> bytes:
    """Stored bytes with metadata.resourceVersion set. Every kind's message
    has `metadata` as field 1 and ObjectMeta has resourceVersion as field 6."""
    rv = str(revision).encode()
    inner = b"\x32" + bytes([len(rv)]) + rv
    return data + b"\x0a" + bytes([len(inner)]) + inner


@dataclass(frozen=True)
class Raw:
    """An object as it goes out: serialized bytes with the resourceVersion."""

    data: bytes
    revision: int


@dataclass(frozen=True)
class RawEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    data: bytes
    revision: int


@dataclass(frozen=True)
class ListOutcome:
    items: builtins.list[Raw]
    revision: int
    continue_token: str
    remaining: int | None


class WatchEnded(Exception):
    """The server ended a watch; the message says why and where to resume."""

    def __init__(self, error: StatusError) -> None:
        super().__init__(error.message)
        self.error = error


class ResourceStore:
    def __init__(self, strategy: Strategy, storage: Store, cacher: Cacher, admission: AdmissionChain,
                 clock: Clock) -> None:
        self.strategy = strategy
        self.kind = strategy.kind
        self.storage = storage
        self.cacher = cacher
        self.admission = admission
        self.clock = clock
        self.prefix = f"/registry/{self.kind.resource}/"

    # ------------------------------------------------------------ keys

    def key(self, namespace: str, name: str) -> str:
        if self.kind.namespaced:
            return f"{self.prefix}{namespace}/{name}"
        return f"{self.prefix}{name}"

    def scope_prefix(self, namespace: str) -> str:
        if self.kind.namespaced and namespace:
            return f"{self.prefix}{namespace}/"
        return self.prefix

    def decode(self, data: bytes) -> Any:
        try:
            return self.kind.message.FromString(data)
        except DecodeError as err:
            raise internal(f"stored {self.kind.resource} object does not decode: {err}") from None

    def attrs(self, data: bytes) -> tuple[Any, dict[str, str]]:
        return self.strategy.attrs(self.decode(data))

    def _encode(self, obj: Message) -> bytes:
        obj.metadata.resourceVersion = ""  # type: ignore[attr-defined]
        data = obj.SerializeToString(deterministic=True)
        if len(data) > MAX_OBJECT_BYTES:
            raise too_large(MAX_OBJECT_BYTES)
        return data

    def _side_key_taken(self, name: str, key: str, reservation: Reservation) -> None:
        if key in reservation.explain:
            raise self._invalid(name, [reservation.explain[key]])
        self.strategy.taken(key)

    def _not_found(self, name: str) -> StatusError:
        return not_found(self.kind.resource, self.kind.group, name)

    def _invalid(self, name: str, errors: builtins.list[Any]) -> StatusError:
        return invalid_object(self.kind.kind, self.kind.group, name, errors)

    @staticmethod
    def _finish(obj: Any, revision: int) -> Any:
        obj.metadata.resourceVersion = str(revision)
        return obj

    # ------------------------------------------------------------ create

    async def create(self, obj: Any, namespace: str, user: UserInfo, *, dry_run: bool = False) -> Any:
        meta = obj.metadata
        if self.kind.namespaced:
            if meta.namespace and namespace and meta.namespace != namespace:
                raise bad_request("the namespace of the provided object does not match the namespace sent on "
                                  "the request")
            meta.namespace = namespace or meta.namespace
            if not meta.namespace:
                raise bad_request(f"a namespace is required to create {self.kind.resource}")
        else:
            meta.namespace = ""
        if meta.resourceVersion:
            raise bad_request("resourceVersion should not be set on objects to be created")
        generated = not meta.name and bool(meta.generateName)
        for attempt in range(8 if generated else 1):
            if generated:
                # The base is cut so the name stays a valid 63-character name.
                meta.name = meta.generateName[:_MAX_GENERATE_BASE] + "".join(
                    random.choice(_GENERATE_ALPHABET) for _ in range(5))
            try:
                return await self._create_once(obj, user, dry_run)
            except StatusError as err:
                if not (generated and err.reason == "AlreadyExists" and attempt < 7):
                    raise
        raise AssertionError("unreachable")

    async def _create_once(self, obj: Any, user: UserInfo, dry_run: bool) -> Any:
        now = self.clock.now()
        self.strategy.prepare_for_create(obj, now)
        self.strategy.default(obj)
        attrs = Attributes("CREATE", self.kind, obj.metadata.namespace, obj.metadata.name, obj, None, "", user, dry_run)
        await self.admission.admit(attrs)
        errors = validate_object_meta(obj, self.strategy) + self.strategy.validate(obj)
        if errors:
            raise self._invalid(obj.metadata.name, errors)
        await self.admission.validate(attrs)
        key = self.key(obj.metadata.namespace, obj.metadata.name)
        for _ in range(_UPDATE_RETRIES):
            candidate = obj
            if self.strategy.reserves_side_keys:  # each try picks afresh from the caller's object
                candidate = type(obj)()
                candidate.CopyFrom(obj)
            reservation = await self.strategy.reserve(candidate, None, dry_run)
            data = self._encode(candidate)
            if dry_run:
                return candidate
            try:
                revision = await self.storage.create(key, data, side_creates=reservation.creates)
            except KeyExists as err:
                if err.key == key:
                    raise already_exists(self.kind.resource, self.kind.group, obj.metadata.name) from None
                self._side_key_taken(obj.metadata.name, err.key, reservation)
                continue  # a concurrent writer took the same allocation: pick again
            return self._finish(candidate, revision)
        raise new_error("ServiceUnavailable", f"could not reserve what {self.kind.kind} {obj.metadata.name!r} "
                                              "needs after several tries; try again")

    # ------------------------------------------------------------ reads

    async def get(self, namespace: str, name: str, resource_version: str = "") -> Raw:
        key = self.key(namespace, name)
        if resource_version:
            await self._wait_for_cache(resource_version)
            cached = self.cacher.get(key)
            if cached is None:
                raise self._not_found(name)
            return Raw(with_resource_version(cached.value, cached.revision), cached.revision)
        kv = await self.storage.get(key)
        if kv is None:
            raise self._not_found(name)
        return Raw(with_resource_version(kv.value, kv.mod_revision), kv.mod_revision)

    async def get_object(self, namespace: str, name: str) -> Any:
        raw = await self.get(namespace, name)
        return self.decode(raw.data)

    async def _wait_for_cache(self, resource_version: str) -> None:
        wanted = _parse_revision(resource_version)
        if wanted and not await self.cacher.wait_for_revision(wanted, 3.0):
            raise new_error("Timeout", f"Too large resource version: {wanted}, current: {self.cacher.revision}",
                            retry_after=1)

    def _predicate(self, namespace: str, labels: str, fields: str,
                   scope_by_namespace: bool = False) -> Callable[[CachedObject], bool] | None:
        try:
            label_sel = parse_selector(labels) if labels else Selector()
        except SelectorError as err:
            raise bad_request(f"unable to parse requirement: {err}" if "unable" not in str(err) else str(err)) from None
        try:
            field_sel = parse_field_selector(fields) if fields else FieldSelector()
        except FieldSelectorError as err:
            raise bad_request(str(err)) from None
        allowed = {"metadata.name", "metadata.namespace", *self.strategy.selectable_fields}
        for req in field_sel.requirements:
            if req.field not in allowed:
                raise bad_request(f'field label not supported: {req.field}')
        # Lists scope by key prefix; only watches, which see the whole
        # resource, need the namespace in the predicate.
        ns = namespace if self.kind.namespaced and scope_by_namespace else ""
        if label_sel.empty() and field_sel.empty() and not ns:
            return None

        def predicate(obj: CachedObject) -> bool:
            if ns and obj.fields.get("metadata.namespace") != ns:
                return False
            return label_sel.matches(obj.labels) and field_sel.matches(obj.fields)
        return predicate

    async def list(self, namespace: str, *, label_selector: str = "", field_selector: str = "",
                   resource_version: str = "", limit: int = 0, continue_token: str = "") -> ListOutcome:
        predicate = self._predicate(namespace, label_selector, field_selector)
        prefix = self.scope_prefix(namespace)
        if resource_version and not continue_token and not limit:
            await self._wait_for_cache(resource_version)
            cached = self.cacher.list(prefix, predicate)
            return ListOutcome([Raw(with_resource_version(o.value, o.revision), o.revision) for o in cached],
                               self.cacher.revision, "", None)
        return await self._list_from_etcd(prefix, predicate, limit, continue_token)

    async def _list_from_etcd(self, prefix: str, predicate: Callable[[CachedObject], bool] | None, limit: int,
                              continue_token: str) -> ListOutcome:
        revision, start = 0, ""
        if continue_token:
            revision, start = _decode_continue(continue_token, prefix)
        items: builtins.list[Raw] = []
        try:
            while True:
                page = await self.storage.range(prefix, revision=revision, limit=limit, start_key=start)
                revision = revision or page.revision
                last_key = ""
                for kv in page.items:
                    last_key = kv.key
                    if predicate is not None:
                        labels, fields = self.attrs(kv.value)
                        if not predicate(CachedObject(kv.key, b"", kv.mod_revision, labels, fields)):
                            continue
                    items.append(Raw(with_resource_version(kv.value, kv.mod_revision), kv.mod_revision))
                if not limit or not page.more:
                    return ListOutcome(items, revision, "", None)
                start = last_key + "\x00"
                if len(items) >= limit:
                    remaining = page.count - len(page.items) if predicate is None else None
                    return ListOutcome(items, revision, _encode_continue(revision, start, prefix), remaining)
        except Compacted:
            raise new_error("Expired", "The provided continue parameter is too old to display a consistent list "
                                       "result. You can start a new list without the continue parameter.") from None

    # ------------------------------------------------------------ update

    async def update(self, obj: Any, namespace: str, user: UserInfo, *, subresource: str = "",
                     dry_run: bool = False) -> Any:
        name = obj.metadata.name
        if self.kind.namespaced:
            if obj.metadata.namespace and namespace and obj.metadata.namespace != namespace:
                raise bad_request("the namespace of the provided object does not match the namespace sent on "
                                  "the request")
            namespace = namespace or obj.metadata.namespace
            obj.metadata.namespace = namespace
        else:
            namespace = ""
        if not name:
            raise self._invalid(name, [invalid("metadata.name", name, "name is required for an update")])
        requested = obj.metadata.resourceVersion
        return await self.guaranteed_update(
            namespace, name, lambda current: obj, user, precondition_rv=requested, subresource=subresource,
            dry_run=dry_run, create_missing=self.strategy.allow_create_on_update and not subresource)

    def check_subresource(self, subresource: str) -> None:
        if subresource == "" or (subresource == "status" and self.kind.has_status) or \
                subresource in self.strategy.subresources:
            return
        raise new_error("NotFound", f"the server could not find the requested resource "
                                    f"({self.kind.group_resource}/{subresource})")

    async def guaranteed_update(self, namespace: str, name: str, mutate: Callable[[Any], Any], user: UserInfo, *,
                                precondition_rv: str = "", subresource: str = "", dry_run: bool = False,
                                create_missing: bool = False, operation: str = "UPDATE") -> Any:
        """Read, let `mutate` produce the new object from the stored one,
        validate and compare-and-swap; retry on a race unless the caller
        pinned a resourceVersion, in which case a race is a Conflict.
        A subresource ("status", "finalize", "binding") changes only what
        the kind's strategy lets that subresource change."""
        self.check_subresource(subresource)
        key = self.key(namespace, name)
        for _ in range(_UPDATE_RETRIES):
            kv = await self.storage.get(key)
            if kv is None:
                if create_missing:
                    fresh = mutate(None)
                    return await self.create(fresh, namespace, user, dry_run=dry_run)
                raise self._not_found(name)
            old = self._finish(self.decode(kv.value), kv.mod_revision)
            if precondition_rv and precondition_rv != str(kv.mod_revision):
                raise stale_update(self.kind.resource, self.kind.group, name)
            copy = type(old)()
            copy.CopyFrom(old)
            new = mutate(copy)
            if new.metadata.resourceVersion and new.metadata.resourceVersion != str(kv.mod_revision):
                raise stale_update(self.kind.resource, self.kind.group, name)
            new.metadata.name = name
            new.metadata.namespace = namespace
            carry_system_fields(new, old)
            if subresource == "":
                self.strategy.prepare_for_update(new, old)
            elif subresource == "status":
                self.strategy.prepare_for_status_update(new, old)
            else:
                self.strategy.prepare_for_subresource_update(subresource, new, old)
            self.strategy.default(new)
            attrs = Attributes(operation, self.kind, namespace, name, new, old, subresource, user, dry_run)
            await self.admission.admit(attrs)
            errors = validate_object_meta(new, self.strategy) + validate_object_meta_update(new, old)
            if subresource == "":
                errors += self.strategy.validate_update(new, old)
            elif subresource == "status":
                errors += self.strategy.validate_status_update(new, old)
            else:
                errors += self.strategy.validate_subresource_update(subresource, new, old)
            if errors:
                raise self._invalid(name, errors)
            await self.admission.validate(attrs)
            reservation = await self.strategy.reserve(new, old, dry_run) if not subresource else None
            data = self._encode(new)
            if data == kv.value and not (reservation and (reservation.creates or reservation.deletes)):
                return old  # nothing changed: no write, no event, same resourceVersion
            if dry_run:
                return self._finish(new, kv.mod_revision)
            if self._ready_to_go(new):
                return await self._remove(key, new, kv.mod_revision)
            try:
                revision = await self.storage.update(
                    key, data, kv.mod_revision,
                    side_creates=reservation.creates if reservation else {},
                    side_deletes=reservation.deletes if reservation else ())
            except KeyExists as err:
                if reservation is not None:
                    self._side_key_taken(name, err.key, reservation)
                continue
            except RevisionMismatch:
                if precondition_rv:
                    raise stale_update(self.kind.resource, self.kind.group, name) from None
                continue
            except KeyNotFound:
                raise self._not_found(name) from None
            return self._finish(new, revision)
        raise conflict(self.kind.resource, self.kind.group, name,
                       "the object kept changing while the update was retried; try again")

    def _ready_to_go(self, obj: Any) -> bool:
        """A marked object whose last finalizer is gone and whose grace
        period is over leaves the store (Kubernetes' ShouldDeleteDuringUpdate)."""
        meta = obj.metadata
        return (bool(meta.deletionTimestamp) and not meta.finalizers and not self.strategy.blocks_deletion(obj)
                and meta.deletionGracePeriodSeconds == 0)

    async def _remove(self, key: str, obj: Any, revision: int) -> Any:
        try:
            await self.storage.delete(key, revision, side_deletes=self.strategy.release(obj))
        except RevisionMismatch:
            raise stale_update(self.kind.resource, self.kind.group, obj.metadata.name) from None
        except KeyNotFound:
            raise self._not_found(obj.metadata.name) from None
        return self._finish(obj, revision)

    # ------------------------------------------------------------ delete

    async def delete(self, namespace: str, name: str, user: UserInfo, *, grace_period: int | None = None,
                     propagation: str = "", uid: str | None = None, resource_version: str | None = None,
                     dry_run: bool = False) -> Any:
        key = self.key(namespace if self.kind.namespaced else "", name)
        if propagation not in ("", "Background", "Foreground", "Orphan"):
            raise self._invalid(name, [invalid("propagationPolicy", propagation,
                                               'must be one of "Background", "Foreground", "Orphan"')])
        if grace_period is not None and grace_period < 0:
            grace_period = 0
        for _ in range(_UPDATE_RETRIES):
            kv = await self.storage.get(key)
            if kv is None:
                raise self._not_found(name)
            obj = self._finish(self.decode(kv.value), kv.mod_revision)
            meta = obj.metadata
            if uid is not None and uid != meta.uid:
                raise conflict(self.kind.resource, self.kind.group, name,
                               f"Precondition failed: UID in precondition: {uid}, UID in object meta: {meta.uid}")
            if resource_version is not None and resource_version != str(kv.mod_revision):
                raise conflict(self.kind.resource, self.kind.group, name,
                               f"Precondition failed: ResourceVersion in precondition: {resource_version}, "
                               f"ResourceVersion in meta: {kv.mod_revision}")
            attrs = Attributes("DELETE", self.kind, namespace, name, None, obj, "", user, dry_run)
            await self.admission.validate(attrs)
            _apply_propagation(meta, propagation)
            grace = self.strategy.graceful_delete_seconds(obj, grace_period)
            keep = bool(meta.finalizers) or self.strategy.blocks_deletion(obj)
            if not keep and grace == 0:
                if dry_run:
                    return obj
                try:
                    await self.storage.delete(key, kv.mod_revision, side_deletes=self.strategy.release(obj))
                except RevisionMismatch:
                    continue
                except KeyNotFound:
                    raise self._not_found(name) from None
                return obj
            now = self.clock.now()
            if meta.deletionTimestamp:
                # Already going: a delete may only shorten the grace period.
                if meta.deletionGracePeriodSeconds <= grace and not _finalizers_changed(obj, kv.value, self):
                    return obj
            else:
                self.strategy.mark_deleting(obj)
                meta.generation += 1 if self.kind.has_spec else 0
            meta.deletionTimestamp = rfc3339(now + grace)
            meta.deletionGracePeriodSeconds = grace
            if dry_run:
                return obj
            data = self._encode(obj)
            try:
                revision = await self.storage.update(key, data, kv.mod_revision)
            except RevisionMismatch:
                continue
            except KeyNotFound:
                raise self._not_found(name) from None
            return self._finish(obj, revision)
        raise conflict(self.kind.resource, self.kind.group, name,
                       "the object kept changing while the delete was retried; try again")

    # ------------------------------------------------------------ watch

    async def watch(self, namespace: str, *, label_selector: str = "", field_selector: str = "",
                    resource_version: str = "", bookmarks: bool = False, bookmark_interval: float = 60.0,
                    timeout: float = 0.0) -> AsyncGenerator[RawEvent, None]:
        predicate = self._predicate(namespace, label_selector, field_selector, scope_by_namespace=True) or (
            lambda _o: True)
        start = _parse_revision(resource_version) if resource_version not in ("", "0") else None
        try:
            watcher = self.cacher.watch(start, predicate)
        except TooOld:
            assert start is not None
            async for event in self._watch_etcd(start, predicate):
                yield event
            return
        async for event in self._watch_cache(watcher, bookmarks, bookmark_interval, timeout):
            yield event

    async def _watch_cache(self, watcher: CacheWatcher, bookmarks: bool, interval: float,
                           timeout: float) -> AsyncIterator[RawEvent]:
        deadline = self.clock.monotonic() + timeout if timeout else None
        last = watcher.after
        try:
            while True:
                wait = interval if bookmarks else None
                if deadline is not None:
                    left = deadline - self.clock.monotonic()
                    if left <= 0:
                        return
                    wait = min(wait, left) if wait else left
                try:
                    event = await watcher.next(wait)
                except Exception as closed:  # WatcherClosed
                    raise WatchEnded(new_error(
                        "TooManyRequests" if "keep up" in str(closed) else "ServiceUnavailable",
                        f"watch of {self.kind.group_resource} closed: {closed}", retry_after=1)) from None
                if event is None:
                    if bookmarks and watcher.pending() == 0:
                        last = max(last, self.cacher.revision)
                        yield RawEvent("BOOKMARK", self._bookmark(last), last)
                    continue
                last = max(last, event.revision)
                yield RawEvent(event.type, with_resource_version(event.obj.value, event.revision), event.revision)
        finally:
            watcher.stop()

    def _bookmark(self, revision: int) -> bytes:
        empty = self.kind.message()
        empty.metadata.resourceVersion = str(revision)  # type: ignore[attr-defined]
        return empty.SerializeToString()

    async def _watch_etcd(self, start: int, predicate: Callable[[CachedObject], bool]) -> AsyncIterator[RawEvent]:
        """A watch from before the cache's window: straight from etcd's
        history, or Gone once etcd has compacted it."""
        known: dict[str, CachedObject] = {}
        try:
            past = await self.storage.range(self.prefix, revision=start)
        except Compacted:
            raise WatchEnded(gone(f"too old resource version: {start} ({self.cacher.window_start})")) from None
        for kv in past.items:
            labels, fields = self.attrs(kv.value)
            known[kv.key] = CachedObject(kv.key, kv.value, kv.mod_revision, labels, fields)
        try:
            async for batch in self.storage.watch(self.prefix, start + 1):
                for ev in batch:
                    prev = known.get(ev.key)
                    if ev.type == "DELETE":
                        known.pop(ev.key, None)
                        if prev is not None and predicate(prev):
                            yield RawEvent("DELETED", with_resource_version(prev.value, ev.mod_revision),
                                           ev.mod_revision)
                        continue
                    labels, fields = self.attrs(ev.value)
                    obj = CachedObject(ev.key, ev.value, ev.mod_revision, labels, fields)
                    known[ev.key] = obj
                    was, now = prev is not None and predicate(prev), predicate(obj)
                    kind = "MODIFIED" if was and now else "ADDED" if now else "DELETED" if was else ""
                    if kind:
                        yield RawEvent(kind, with_resource_version(ev.value, ev.mod_revision), ev.mod_revision)
        except Compacted:
            raise WatchEnded(gone(f"too old resource version: {start}")) from None
        except Unavailable as err:
            raise WatchEnded(new_error("ServiceUnavailable", str(err))) from None


def _apply_propagation(meta: Any, policy: str) -> None:
    finalizers = list(meta.finalizers)
    if policy == "Orphan":
        finalizers = [f for f in finalizers if f != "foregroundDeletion"]
        if "orphan" not in finalizers:
            finalizers.append("orphan")
    elif policy == "Foreground":
        finalizers = [f for f in finalizers if f != "orphan"]
        if "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
    elif policy == "Background":
        finalizers = [f for f in finalizers if f not in ("orphan", "foregroundDeletion")]
    if finalizers != list(meta.finalizers):
        del meta.finalizers[:]
        meta.finalizers.extend(finalizers)


def _finalizers_changed(obj: Any, stored: bytes, store: ResourceStore) -> bool:
    return list(obj.metadata.finalizers) != list(store.decode(stored).metadata.finalizers)


def _parse_revision(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise bad_request(f'invalid resource version "{text}"') from None
    if value < 0:
        raise bad_request(f'invalid resource version "{text}"')
    return value


def _encode_continue(revision: int, start_key: str, prefix: str) -> str:
    body = json.dumps({"v": 1, "rv": revision, "start": start_key[len(prefix):]}).encode()
    return base64.urlsafe_b64encode(body).decode()


def _decode_continue(token: str, prefix: str) -> tuple[int, str]:
    try:
        body = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(body["rv"]), prefix + str(body["start"])
    except (ValueError, KeyError, TypeError):
        raise bad_request("continue key is not valid: it must be the continue value of a previous list") from None
