"""An in-memory clientset for unit tests: the real client's interface over
a dictionary instead of an apiserver.

    cs = FakeClientset(clock=FakeClock())
    pods = cs.resource(core_pb2.Pod, "default")      # a FakeResourceClient[Pod]
    await pods.create(pod)
    async for event in pods.watch(): ...

`FakeClientset.resource(kind, namespace)` returns a client with the same
verbs and signatures as client.ResourceClient - create (generateName, uid,
creationTimestamp, generation), get, list / list_all (label and field
selectors), update and update_status (optimistic concurrency: a stale
resourceVersion is a Conflict; the main resource keeps the stored status,
/status keeps everything else; a spec change bumps the generation), patch
(JSON merge, strategic merge with the proto's merge keys, JSON patch; a
`metadata.uid` in the patch that differs from the object's is Invalid, as
the apiserver answers), delete (uid and resourceVersion preconditions,
finalizers, optional graceful deletion), bind for pods, finalize for
namespaces, and watch (from a
resourceVersion, or "" / "0" for ADDED events of what exists first;
selectors applied as the apiserver does, so an object that stops matching
is a DELETED event). So informers, listers and controllers run on it
unchanged: `SharedInformerFactory(FakeClientset(...))` works.

Every object handed out is a copy; resourceVersions come from one counter,
like etcd's revision. What only a test needs:

* `actions`: every call made (`Action(verb, resource, namespace, name,
  subresource)`), and `count(verb, resource)`;
* `inject(verb, resource, error, times=1, match=None)`: the next matching
  calls fail with `error` before doing anything;
* `hold_watches(*resources)` / `release_watches()`: watch events queue up
  instead of being delivered, which is how a test plays a slow watch;
* `objects(kind, namespace)`: what is stored, without recording an action;
* `graceful`: a function (kind, object, requested grace) -> seconds; a
  delete with a positive answer only marks the object (deletionTimestamp),
  as the apiserver does for scheduled pods. `pod_grace` is the apiserver's
  rule for pods. The default removes every object at once.

Status given on create is kept (the apiserver resets it for most kinds), so
a test can create a pod that is already Running. Not modelled: defaulting
and validation (build objects as the apiserver would store them), admission,
list paging (every list is one page), watch timeouts.
"""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from api import (
    JSON_PATCH,
    MERGE_PATCH,
    SCHEME,
    STRATEGIC_MERGE_PATCH,
    Clock,
    Kind,
    RealClock,
    StatusError,
    already_exists,
    bad_request,
    conflict,
    from_dict,
    gone,
    invalid,
    invalid_object,
    json_merge_patch,
    json_patch,
    not_found,
    parse_field_selector,
    parse_selector,
    rfc3339,
    stale_update,
    strategic_merge,
    to_dict,
)
from client import ObjectList, WatchEvent
from proto import core_pb2

T = TypeVar("T", bound=Message)

GracePolicy = Callable[[Kind, Any, "int | None"], int]
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def pod_grace(kind: Kind, obj: Any, requested: int | None) -> int:
    """The apiserver's rule: a scheduled, unfinished pod waits for its kubelet."""
    if kind.kind != "Pod" or not obj.spec.nodeName or obj.status.phase in ("Succeeded", "Failed"):
        return 0
    if requested is not None:
        return max(requested, 0)
    return int(obj.spec.terminationGracePeriodSeconds) if obj.spec.HasField("terminationGracePeriodSeconds") else 30


@functools.cache
def _strategies() -> dict[str, Any]:
    from apiserver.registry import build_strategies
    return build_strategies(None, None)  # type: ignore[arg-type]  # no Service allocation here


def _strategy(kind: Kind) -> Any:
    return _strategies()[kind.group_resource]


@dataclass(frozen=True)
class Action:
    verb: str
    resource: str  # group_resource: "pods", "replicasets.apps"
    namespace: str
    name: str
    subresource: str = ""


@dataclass
class _Injection:
    verb: str
    resource: str
    error: StatusError
    times: int
    match: Callable[[str, str], bool] | None


@dataclass
class _Watcher:
    kind: Kind
    namespace: str
    labels: Any
    fields: Any
    queue: asyncio.Queue[WatchEvent[Any]]

    def matches(self, obj: Any) -> bool:
        if not self.labels.matches(obj.metadata.labels):
            return False
        return all(req.matches({req.field: _field_value(obj, req.field)}) for req in self.fields.requirements)


def _copy(obj: T) -> T:
    out = type(obj)()
    out.CopyFrom(obj)
    return out


def _field_value(obj: Any, path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = getattr(value, part, "")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class FakeClientset:
    def __init__(self, *, clock: Clock | None = None, namespace: str = "default",
                 graceful: GracePolicy | None = None) -> None:
        self.clock = clock or RealClock()
        self.namespace = namespace
        self.graceful = graceful
        self.revision = 1
        self.actions: list[Action] = []
        self._store: dict[str, dict[tuple[str, str], Any]] = {}
        self._history: list[tuple[int, str, Kind, Any]] = []
        self._watchers: list[_Watcher] = []
        self._injections: list[_Injection] = []
        self._held: set[str] = set()
        self._released = asyncio.Event()

    def resource(self, kind: type[T] | Kind, namespace: str = "") -> FakeResourceClient[T]:
        k = kind if isinstance(kind, Kind) else SCHEME.for_message(kind)
        return FakeResourceClient(self, k, namespace if k.namespaced else "")

    async def close(self) -> None:
        for watcher in self._watchers:
            watcher.queue.put_nowait(WatchEvent("CLOSED", watcher.kind.message()))

    # ------------------------------------------------------------ the test's side

    def count(self, verb: str, resource: str, subresource: str = "") -> int:
        return sum(1 for a in self.actions if a.verb == verb and a.resource == resource
                   and a.subresource == subresource)

    def inject(self, verb: str, resource: str, error: StatusError, *, times: int = 1,
               match: Callable[[str, str], bool] | None = None) -> None:
        """Fail the next `times` calls of `verb` on `resource` (for which
        match(namespace, name) holds) with `error`."""
        self._injections.append(_Injection(verb, resource, error, times, match))

    def hold_watches(self, *resources: str) -> None:
        """Queue watch events of these resources ("pods", ...; none: all)
        instead of delivering them."""
        self._held |= set(resources) or {"*"}

    def release_watches(self) -> None:
        self._held.clear()
        self._released.set()
        self._released = asyncio.Event()

    async def _delivery(self, kind: Kind) -> None:
        while "*" in self._held or kind.group_resource in self._held:
            await self._released.wait()

    def objects(self, kind: type[T], namespace: str | None = None) -> list[T]:
        k = SCHEME.for_message(kind)
        items = self._store.get(k.group_resource, {})
        return [_copy(o) for (ns, _), o in sorted(items.items()) if namespace is None or ns == namespace]

    # ------------------------------------------------------------ internals

    def _record(self, verb: str, kind: Kind, namespace: str, name: str, subresource: str = "") -> None:
        self.actions.append(Action(verb, kind.group_resource, namespace, name, subresource))
        for injection in self._injections:
            if injection.verb == verb and injection.resource == kind.group_resource and injection.times > 0 and (
                    injection.match is None or injection.match(namespace, name)):
                injection.times -= 1
                raise injection.error

    def _items(self, kind: Kind) -> dict[tuple[str, str], Any]:
        return self._store.setdefault(kind.group_resource, {})

    def _next_revision(self) -> str:
        self.revision += 1
        return str(self.revision)

    def _emit(self, type_: str, kind: Kind, obj: Any, old: Any | None = None) -> None:
        self._history.append((self.revision, type_, kind, _copy(obj)))
        for w in self._watchers:
            if w.kind != kind or (w.namespace and obj.metadata.namespace != w.namespace):
                continue
            now, before = w.matches(obj), old is not None and w.matches(old)
            if type_ == "MODIFIED" and now != before:
                out_type = "ADDED" if now else "DELETED"
            elif now:
                out_type = type_
            else:
                continue
            w.queue.put_nowait(WatchEvent(out_type, _copy(obj)))


class FakeResourceClient(Generic[T]):
    """client.ResourceClient's verbs on a FakeClientset's store."""

    def __init__(self, cs: FakeClientset, kind: Kind, namespace: str) -> None:
        self._cs = cs
        self.kind = kind
        self.namespace = namespace

    # ------------------------------------------------------------ helpers

    def _ns(self, obj: Any | None = None) -> str:
        if not self.kind.namespaced:
            return ""
        if obj is not None and obj.metadata.namespace:
            return str(obj.metadata.namespace)
        return self.namespace or self._cs.namespace

    def _stored(self, namespace: str, name: str) -> Any:
        obj = self._cs._items(self.kind).get((namespace, name))
        if obj is None:
            raise not_found(self.kind.resource, self.kind.group, name)
        return obj

    def _invalid(self, name: str, field: str, value: Any, detail: str) -> StatusError:
        return invalid_object(self.kind.kind, self.kind.group, name, [invalid(field, value, detail)])

    def _store(self, obj: Any, old: Any) -> Any:
        """Write `obj` over `old` (carrying system fields); remove it if it
        was marked for deletion and nothing holds it any more."""
        meta, was = obj.metadata, old.metadata
        for field in ("uid", "creationTimestamp"):
            if getattr(meta, field) and getattr(meta, field) != getattr(was, field):
                raise self._invalid(meta.name, f"metadata.{field}", getattr(meta, field), "field is immutable")
            setattr(meta, field, getattr(was, field))
        meta.deletionTimestamp = was.deletionTimestamp
        if was.HasField("deletionGracePeriodSeconds"):
            meta.deletionGracePeriodSeconds = was.deletionGracePeriodSeconds
        if self.kind.has_spec:
            changed = obj.spec.SerializeToString(deterministic=True) != old.spec.SerializeToString(deterministic=True)
            meta.generation = was.generation + (1 if changed else 0)
        else:
            meta.generation = was.generation
        meta.resourceVersion = was.resourceVersion
        if obj == old:
            return _copy(old)  # no change: no write, no event
        key = (meta.namespace, meta.name)
        held = bool(meta.finalizers) or (self.kind.kind == "Namespace" and bool(obj.spec.finalizers))
        if meta.deletionTimestamp and not held and meta.deletionGracePeriodSeconds == 0:
            del self._cs._items(self.kind)[key]
            meta.resourceVersion = self._cs._next_revision()
            self._cs._emit("DELETED", self.kind, obj)
            return _copy(obj)
        meta.resourceVersion = self._cs._next_revision()
        stored = _copy(obj)
        self._cs._items(self.kind)[key] = stored
        self._cs._emit("MODIFIED", self.kind, stored, old)
        return _copy(stored)

    # ------------------------------------------------------------ verbs

    async def create(self, obj: T, *, dry_run: bool = False) -> T:
        new: Any = _copy(obj)
        meta = new.metadata
        namespace = self._ns(new)
        if not meta.name and meta.generateName:
            meta.name = meta.generateName + "".join(
                _ALPHABET[b % len(_ALPHABET)] for b in uuid.uuid4().bytes[:5])
        self._cs._record("create", self.kind, namespace, meta.name)
        if not meta.name:
            raise self._invalid("", "metadata.name", "", "name or generateName is required")
        meta.namespace = namespace
        items = self._cs._items(self.kind)
        if (namespace, meta.name) in items:
            raise already_exists(self.kind.resource, self.kind.group, meta.name)
        meta.uid = str(uuid.uuid4())
        meta.creationTimestamp = rfc3339(self._cs.clock.now())
        meta.generation = 1 if self.kind.has_spec else 0
        meta.ClearField("deletionTimestamp")
        if dry_run:
            return new  # type: ignore[no-any-return]
        meta.resourceVersion = self._cs._next_revision()
        items[(namespace, meta.name)] = _copy(new)
        self._cs._emit("ADDED", self.kind, new)
        return new  # type: ignore[no-any-return]

    async def get(self, name: str, *, resource_version: str = "") -> T:
        namespace = self._ns()
        self._cs._record("get", self.kind, namespace, name)
        return _copy(self._stored(namespace, name))  # type: ignore[no-any-return]

    async def list(self, *, label_selector: str = "", field_selector: str = "", resource_version: str = "",
                   limit: int = 0, continue_token: str = "") -> ObjectList[T]:
        self._cs._record("list", self.kind, self.namespace, "")
        labels, fields = parse_selector(label_selector), parse_field_selector(field_selector)
        probe = _Watcher(self.kind, self.namespace, labels, fields, asyncio.Queue())
        items = [_copy(o) for (ns, _), o in sorted(self._cs._items(self.kind).items())
                 if (not self.namespace or ns == self.namespace) and probe.matches(o)]
        return ObjectList(items, str(self._cs.revision))

    async def list_all(self, *, label_selector: str = "", field_selector: str = "",
                       page: int = 500) -> ObjectList[T]:
        return await self.list(label_selector=label_selector, field_selector=field_selector)

    async def update(self, obj: T, *, dry_run: bool = False) -> T:
        return await self._update(obj, "")

    async def update_status(self, obj: T, *, dry_run: bool = False) -> T:
        return await self._update(obj, "status")

    async def _update(self, obj: Any, subresource: str) -> Any:
        namespace, name = self._ns(obj), obj.metadata.name
        self._cs._record("update", self.kind, namespace, name, subresource)
        old = self._stored(namespace, name)
        if obj.metadata.resourceVersion and obj.metadata.resourceVersion != old.metadata.resourceVersion:
            raise stale_update(self.kind.resource, self.kind.group, name)
        return self._apply(old, obj, subresource)

    def _apply(self, old: Any, obj: Any, subresource: str) -> Any:
        new = _copy(obj)
        new.metadata.namespace = old.metadata.namespace
        if subresource == "status":
            # What /status keeps is the kind's rule (a Deployment keeps the
            # annotations sent): ask the apiserver's own strategy.
            _strategy(self.kind).prepare_for_status_update(new, old)
        elif self.kind.has_status:
            new.status.CopyFrom(old.status)
        return self._store(new, old)

    async def patch(self, name: str, patch: Any, *, patch_type: str = STRATEGIC_MERGE_PATCH,
                    subresource: str = "", dry_run: bool = False) -> T:
        namespace = self._ns()
        self._cs._record("patch", self.kind, namespace, name, subresource)
        body = json.loads(patch) if isinstance(patch, bytes) else patch
        old = self._stored(namespace, name)
        doc = to_dict(old)
        if patch_type == MERGE_PATCH:
            doc = json_merge_patch(doc, body)
        elif patch_type == STRATEGIC_MERGE_PATCH:
            doc = strategic_merge(doc, body, self.kind.message.DESCRIPTOR)  # type: ignore[arg-type]
        elif patch_type == JSON_PATCH:
            doc = json_patch(doc, body)
        else:
            raise bad_request(f"the server does not support patch type {patch_type!r}")
        new: Any = from_dict(self.kind.message, doc)
        rv = new.metadata.resourceVersion
        if rv and rv != old.metadata.resourceVersion:
            raise stale_update(self.kind.resource, self.kind.group, name)
        return self._apply(old, new, subresource)  # type: ignore[no-any-return]

    async def delete(self, name: str, *, grace_period: int | None = None, propagation: str = "",
                     uid: str | None = None, resource_version: str | None = None, dry_run: bool = False) -> T:
        namespace = self._ns()
        self._cs._record("delete", self.kind, namespace, name)
        old = self._stored(namespace, name)
        meta = old.metadata
        if uid is not None and uid != meta.uid:
            raise conflict(self.kind.resource, self.kind.group, name,
                           f"Precondition failed: UID in precondition: {uid}, UID in object meta: {meta.uid}")
        if resource_version is not None and resource_version != meta.resourceVersion:
            raise conflict(self.kind.resource, self.kind.group, name,
                           f"Precondition failed: ResourceVersion in precondition: {resource_version}, "
                           f"ResourceVersion in meta: {meta.resourceVersion}")
        # As the apiserver does: a propagation policy becomes a finalizer the
        # garbage collector acts on, and a namespace is held by its
        # spec.finalizers (Terminating) until the namespace controller
        # finalizes it.
        finalizers = [f for f in meta.finalizers if f not in ("orphan", "foregroundDeletion")]
        if propagation in ("Orphan", "Foreground"):
            finalizers.append("orphan" if propagation == "Orphan" else "foregroundDeletion")
        elif not propagation:
            finalizers = list(meta.finalizers)
        namespace_held = self.kind.kind == "Namespace" and bool(old.spec.finalizers)
        grace = self._cs.graceful(self.kind, old, grace_period) if self._cs.graceful else 0
        if not finalizers and not namespace_held and grace == 0:
            del self._cs._items(self.kind)[(namespace, name)]
            gone_obj = _copy(old)
            gone_obj.metadata.resourceVersion = self._cs._next_revision()
            self._cs._emit("DELETED", self.kind, gone_obj)
            return gone_obj  # type: ignore[no-any-return]
        if meta.deletionTimestamp and meta.deletionGracePeriodSeconds <= grace and list(meta.finalizers) == finalizers:
            return _copy(old)  # type: ignore[no-any-return]
        new = _copy(old)
        del new.metadata.finalizers[:]
        new.metadata.finalizers.extend(finalizers)
        if meta.deletionTimestamp and list(meta.finalizers) != finalizers:
            grace = meta.deletionGracePeriodSeconds
        new.metadata.deletionTimestamp = meta.deletionTimestamp or rfc3339(self._cs.clock.now() + grace)
        new.metadata.deletionGracePeriodSeconds = grace
        if self.kind.kind == "Namespace":
            new.status.phase = "Terminating"
        new.metadata.resourceVersion = self._cs._next_revision()
        self._cs._items(self.kind)[(namespace, name)] = new
        self._cs._emit("MODIFIED", self.kind, new, old)
        return _copy(new)  # type: ignore[no-any-return]

    async def finalize(self, obj: T) -> T:
        """A namespace's finalize subresource: only spec.finalizers change."""
        namespace, name = self._ns(obj), obj.metadata.name  # type: ignore[attr-defined]
        self._cs._record("update", self.kind, namespace, name, "finalize")
        old = self._stored(namespace, name)
        new = _copy(old)
        del new.spec.finalizers[:]
        new.spec.finalizers.extend(obj.spec.finalizers)  # type: ignore[attr-defined]
        return self._store(new, old)  # type: ignore[no-any-return]

    async def bind(self, name: str, node: str, *, uid: str = "", annotations: dict[str, str] | None = None,
                   dry_run: bool = False) -> T:
        namespace = self._ns()
        self._cs._record("create", self.kind, namespace, name, "binding")
        old = self._stored(namespace, name)
        if (uid and uid != old.metadata.uid) or old.spec.nodeName or old.metadata.deletionTimestamp:
            raise conflict(self.kind.resource, self.kind.group, name, "pod is already assigned or going away")
        new = _copy(old)
        new.spec.nodeName = node
        new.status.conditions.append(core_pb2.PodCondition(type="PodScheduled", status="True"))
        return self._store(new, old)  # type: ignore[no-any-return]

    async def watch(self, *, resource_version: str = "", label_selector: str = "", field_selector: str = "",
                    bookmarks: bool = False, timeout_seconds: int = 0) -> AsyncIterator[WatchEvent[T]]:
        self._cs._record("watch", self.kind, self.namespace, "")
        watcher = _Watcher(self.kind, self.namespace, parse_selector(label_selector),
                           parse_field_selector(field_selector), asyncio.Queue())
        if resource_version in ("", "0"):
            for (ns, _), obj in sorted(self._cs._items(self.kind).items()):
                if (not self.namespace or ns == self.namespace) and watcher.matches(obj):
                    watcher.queue.put_nowait(WatchEvent("ADDED", _copy(obj)))
        else:
            since = int(resource_version)
            if self._cs._history and since < self._cs._history[0][0] - 1:
                raise gone(f"too old resource version: {since}")
            for revision, type_, kind, obj in self._cs._history:
                if revision > since and kind == self.kind and (
                        not self.namespace or obj.metadata.namespace == self.namespace) \
                        and watcher.matches(obj):
                    watcher.queue.put_nowait(WatchEvent(type_, _copy(obj)))
        self._cs._watchers.append(watcher)
        try:
            while True:
                event = await watcher.queue.get()
                if event.type == "CLOSED":
                    return
                await self._cs._delivery(self.kind)
                yield event
        finally:
            self._cs._watchers.remove(watcher)

