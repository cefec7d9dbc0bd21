"""The gRPC servicers: the generic Resources service and Discovery.

Each call goes through the same steps as a request through kube-apiserver's
handler chain: find the kind, authenticate, authorize, take an in-flight
slot, run the verb on the kind's store, and turn any StatusError into a
gRPC status carrying the Kubernetes Status. Metrics are recorded per verb
and resource.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
import grpc.aio
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError

from api import (
    JSON_PATCH,
    MERGE_PATCH,
    SCHEME,
    STRATEGIC_MERGE_PATCH,
    Clock,
    Kind,
    StatusError,
    UnknownKindError,
    bad_request,
    from_dict,
    internal,
    json_merge_patch,
    json_patch,
    new_error,
    strategic_merge,
    to_dict,
    too_large,
)
from proto import api_pb2, api_pb2_grpc

from ._auth import ANONYMOUS, AuthenticatorChain, AuthorizerChain, Credentials, RequestAttributes, UserInfo
from ._binding import bind
from ._limits import InflightLimiter
from ._metrics import LATENCY, REQUESTS, WATCH_EVENTS, WATCHERS
from ._registry import Registry
from ._store import MAX_OBJECT_BYTES, ResourceStore, WatchEnded
from .storage import Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

VERSION = api_pb2.VersionInfo(major="1", minor="31", gitVersion="v1.31.0+kubelab.0.1.0",
                              platform=f"linux/{platform.machine()}", pythonVersion=platform.python_version())


def _credentials(context: grpc.aio.ServicerContext) -> Credentials:
    metadata = {k.lower(): v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
    auth = context.auth_context() or {}
    cn = b"".join(auth.get("x509_common_name", [])).decode()
    orgs: tuple[str, ...] = ()
    subject = b"".join(auth.get("x509_subject", [])).decode()
    if subject:
        orgs = tuple(part[2:] for part in subject.split(",") if part.strip().startswith("O="))
    return Credentials(metadata, cn, orgs)


class Handler:
    """The steps every call shares; the servicers only say what is specific."""

    def __init__(self, registry: Registry, authn: AuthenticatorChain, authz: AuthorizerChain,
                 limiter: InflightLimiter, clock: Clock) -> None:
        self.registry = registry
        self.authn = authn
        self.authz = authz
        self.limiter = limiter
        self.clock = clock
        self._children: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}

    def admit(self, context: grpc.aio.ServicerContext, verb: str, group: str, resource: str, namespace: str,
              name: str = "", subresource: str = "") -> tuple[ResourceStore, UserInfo]:
        store = self.registry.store_for(group, resource)
        user = self.authn.authenticate(_credentials(context)) if self.authn.needs_credentials else ANONYMOUS
        ns = namespace if store.kind.namespaced else ""
        self.authz.check(RequestAttributes(user, verb, group, resource, ns, name, subresource))
        return store, user

    def _metrics(self, verb: str, group: str, resource: str, code: str) -> tuple[Any, Any]:
        key = (verb, group, resource, code)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = (REQUESTS.labels(verb, group, resource, code),
                                           LATENCY.labels(verb, group, resource))
        return found

    async def unary(self, context: grpc.aio.ServicerContext, verb: str, group: str, resource: str,
                    call: Callable[[], Awaitable[T]], *, mutating: bool) -> T:
        start = time.perf_counter()
        code = "200"
        try:
            with self.limiter.slot(mutating):
                return await call()
        except (StatusError, Unavailable) as err:
            failure = err if isinstance(err, StatusError) else new_error("ServiceUnavailable", str(err))
            code = str(failure.code)
            await context.abort(failure.grpc_code, failure.message, trailing_metadata=failure.trailing_metadata())
            raise AssertionError("unreachable") from None
        except Exception as err:  # a bug: say so, with the stack in the log
            code = "500"
            log.exception("%s %s failed", verb, resource)
            failure = internal(f"{type(err).__name__}: {err}")
            await context.abort(failure.grpc_code, failure.message, trailing_metadata=failure.trailing_metadata())
            raise AssertionError("unreachable") from None
        finally:
            requests, latency = self._metrics(verb, group, resource, code)
            requests.inc()
            latency.observe(time.perf_counter() - start)


def _pack(kind: Kind, data: bytes) -> any_pb2.Any:
    return any_pb2.Any(type_url=kind.type_url, value=data)


def _respond(kind: Kind, obj: Any) -> api_pb2.ObjectResponse:
    return api_pb2.ObjectResponse(object=_pack(kind, obj.SerializeToString()))


def _unpack(kind: Kind, packed: any_pb2.Any) -> Any:
    if len(packed.value) > MAX_OBJECT_BYTES:
        raise too_large(MAX_OBJECT_BYTES)
    if packed.type_url != kind.type_url:
        try:
            sent = SCHEME.by_type_url(packed.type_url).kind
        except UnknownKindError:
            sent = packed.type_url or "an empty object"
        raise bad_request(f"{sent} cannot be handled as a {kind.kind}: the request is for {kind.group_resource}")
    try:
        return kind.message.FromString(packed.value)
    except DecodeError as err:
        raise bad_request(f"the body of the request is not a {kind.kind}: {err}") from None


class ResourcesServicer(api_pb2_grpc.ResourcesServicer):
    def __init__(self, handler: Handler, bookmark_interval: float = 60.0) -> None:
        self._h = handler
        self._bookmark_interval = bookmark_interval

    async def Create(self, request: api_pb2.CreateRequest, context: grpc.aio.ServicerContext) -> Any:
        async def call() -> api_pb2.ObjectResponse:
            store, user = self._h.admit(context, "create", request.group, request.resource, request.namespace)
            obj = _unpack(store.kind, request.object)
            created = await store.create(obj, request.namespace, user, dry_run=request.dryRun)
            return _respond(store.kind, created)
        return await self._h.unary(context, "create", request.group, request.resource, call, mutating=True)

    async def Get(self, request: api_pb2.GetRequest, context: grpc.aio.ServicerContext) -> Any:
        async def call() -> api_pb2.ObjectResponse:
            store, _ = self._h.admit(context, "get", request.group, request.resource, request.namespace, request.name)
            raw = await store.get(request.namespace, request.name, request.resourceVersion)
            return api_pb2.ObjectResponse(object=_pack(store.kind, raw.data))
        return await self._h.unary(context, "get", request.group, request.resource, call, mutating=False)

    async def List(self, request: api_pb2.ListRequest, context: grpc.aio.ServicerContext) -> Any:
        async def call() -> api_pb2.ListResponse:
            store, _ = self._h.admit(context, "list", request.group, request.resource, request.namespace)
            outcome = await store.list(request.namespace, label_selector=request.labelSelector,
                                       field_selector=request.fieldSelector,
                                       resource_version=request.resourceVersion, limit=request.limit,
                                       continue_token=getattr(request, "continue"))
            response = api_pb2.ListResponse(items=[_pack(store.kind, r.data) for r in outcome.items])
            response.metadata.resourceVersion = str(outcome.revision)
            setattr(response.metadata, "continue", outcome.continue_token)
            if outcome.remaining is not None:
                response.metadata.remainingItemCount = outcome.remaining
            return response
        return await self._h.unary(context, "list", request.group, request.resource, call, mutating=False)

    async def _update(self, request: api_pb2.UpdateRequest, context: grpc.aio.ServicerContext,
                      subresource: str) -> Any:
        async def call() -> api_pb2.ObjectResponse:
            if subresource not in ("", "status", "finalize"):
                raise new_error("NotFound", f"the server could not find the requested resource "
                                            f"({request.resource}/{subresource})")
            kind = self._h.registry.store_for(request.group, request.resource).kind
            obj = _unpack(kind, request.object)
            store, user = self._h.admit(context, "update", request.group, request.resource, request.namespace,
                                        obj.metadata.name, subresource)
            updated = await store.update(obj, request.namespace, user, subresource=subresource,
                                         dry_run=request.dryRun)
            return _respond(store.kind, updated)
        return await self._h.unary(context, "update", request.group, request.resource, call, mutating=True)

    async def Update(self, request: api_pb2.UpdateRequest, context: grpc.aio.ServicerContext) -> Any:
        return await self._update(request, context, request.subresource)

    async def UpdateStatus(self, request: api_pb2.UpdateRequest,
                           context: grpc.aio.ServicerContext) -> Any:
        return await self._update(request, context, "status")

    async def Bind(self, request: api_pb2.BindRequest, context: grpc.aio.ServicerContext) -> Any:
        async def call() -> api_pb2.ObjectResponse:
            store, user = self._h.admit(context, "create", "", "pods", request.namespace,
                                        request.binding.metadata.name, "binding")
            pod = await bind(store, request.namespace or request.binding.metadata.namespace, request.binding, user,
                             self._h.clock, dry_run=request.dryRun)
            return _respond(store.kind, pod)
        return await self._h.unary(context, "bind", "", "pods", call, mutating=True)

    async def Patch(self, request: api_pb2.PatchRequest, context: grpc.aio.ServicerContext) -> Any:
        async def call() -> api_pb2.ObjectResponse:
            if request.subresource not in ("", "status", "finalize"):
                raise new_error("NotFound", f"the server could not find the requested resource "
                                            f"({request.resource}/{request.subresource})")
            store, user = self._h.admit(context, "patch", request.group, request.resource, request.namespace,
                                        request.name, request.subresource)
            if len(request.patch) > MAX_OBJECT_BYTES:
                raise too_large(MAX_OBJECT_BYTES)
            try:
                patch = json.loads(request.patch or b"{}")
            except ValueError as err:
                raise bad_request(f"the patch is not valid JSON: {err}") from None
            apply = _patcher(store.kind, request.patchType, patch)
            ns = request.namespace if store.kind.namespaced else ""
            patched = await store.guaranteed_update(ns, request.name, apply, user, subresource=request.subresource,
                                                    dry_run=request.dryRun, operation="UPDATE")
            return _respond(store.kind, patched)
        return await self._h.unary(context, "patch", request.group, request.resource, call, mutating=True)

    async def Delete(self, request: api_pb2.DeleteRequest, context: grpc.aio.ServicerContext) -> Any:
        async def call() -> api_pb2.ObjectResponse:
            store, user = self._h.admit(context, "delete", request.group, request.resource, request.namespace,
                                        request.name)
            pre = request.preconditions
            deleted = await store.delete(
                request.namespace, request.name, user,
                grace_period=request.gracePeriodSeconds if request.HasField("gracePeriodSeconds") else None,
                propagation=request.propagationPolicy,
                uid=pre.uid if pre.HasField("uid") else None,
                resource_version=pre.resourceVersion if pre.HasField("resourceVersion") else None,
                dry_run=request.dryRun)
            return _respond(store.kind, deleted)
        return await self._h.unary(context, "delete", request.group, request.resource, call, mutating=True)

    async def Watch(self, request: api_pb2.WatchRequest,
                    context: grpc.aio.ServicerContext) -> AsyncIterator[api_pb2.WatchEvent]:
        try:
            store, _ = self._h.admit(context, "watch", request.group, request.resource, request.namespace)
            events: AsyncGenerator[Any, None] = store.watch(request.namespace, label_selector=request.labelSelector,
                                 field_selector=request.fieldSelector, resource_version=request.resourceVersion,
                                 bookmarks=request.allowWatchBookmarks, bookmark_interval=self._bookmark_interval,
                                 timeout=float(request.timeoutSeconds))
            kind = store.kind
            gauge = WATCHERS.labels(kind.group, kind.resource)
            sent = WATCH_EVENTS.labels(kind.group, kind.resource)
            gauge.inc()
            try:
                async for event in events:
                    sent.inc()
                    yield api_pb2.WatchEvent(type=event.type, object=_pack(kind, event.data))
            finally:
                gauge.dec()
                await events.aclose()
        except WatchEnded as ended:
            err = ended.error
            await context.abort(err.grpc_code, err.message, trailing_metadata=err.trailing_metadata())
        except StatusError as err:
            await context.abort(err.grpc_code, err.message, trailing_metadata=err.trailing_metadata())

    async def ConvertToTable(self, request: api_pb2.ConvertToTableRequest,
                             context: grpc.aio.ServicerContext) -> Any:
        async def call() -> api_pb2.Table:
            table = api_pb2.Table()
            now = self._h.clock.now()
            if not request.objects:
                return table
            kind = SCHEME.by_type_url(request.objects[0].type_url)
            strategy = self._h.registry.stores[kind.group_resource].strategy
            for column in strategy.columns:
                table.columnDefinitions.add(name=column.name, type=column.type, priority=column.priority)
            for packed in request.objects:
                obj = _unpack(kind, packed)
                table.rows.add(cells=strategy.rows(obj, now))
            return table
        return await self._h.unary(context, "table", "", "", call, mutating=False)


def _patcher(kind: Kind, patch_type: str, patch: Any) -> Callable[[Any], Any]:
    if patch_type not in (MERGE_PATCH, STRATEGIC_MERGE_PATCH, JSON_PATCH):
        raise new_error("BadRequest", f"the server does not support patch type {patch_type!r}; use "
                                      f"{MERGE_PATCH}, {STRATEGIC_MERGE_PATCH} or {JSON_PATCH}")
    if patch_type == JSON_PATCH and not isinstance(patch, list):
        raise bad_request("a JSON patch must be a list of operations")
    if patch_type != JSON_PATCH and not isinstance(patch, dict):
        raise bad_request("a merge patch must be a JSON object")

    def apply(current: Any) -> Any:
        doc = to_dict(current)
        if patch_type == MERGE_PATCH:
            doc = json_merge_patch(doc, patch)
        elif patch_type == STRATEGIC_MERGE_PATCH:
            doc = strategic_merge(doc, patch, kind.message.DESCRIPTOR)  # type: ignore[arg-type]
        else:
            doc = json_patch(doc, patch)
        for key in ("apiVersion", "kind"):
            doc.pop(key, None)
        return from_dict(kind.message, doc,
                         what=f'{kind.kind} in version "{kind.version}" cannot be handled as a {kind.kind}')
    return apply


class DiscoveryServicer(api_pb2_grpc.DiscoveryServicer):
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    async def ServerResources(self, request: api_pb2.DiscoveryRequest,
                              context: grpc.aio.ServicerContext) -> api_pb2.APIResourceList:
        out = api_pb2.APIResourceList()
        for kind in SCHEME:
            out.resources.add(
                name=kind.resource, singularName=kind.singular, namespaced=kind.namespaced, group=kind.group,
                version=kind.version, kind=kind.kind,
                verbs=["create", "delete", "get", "list", "patch", "update", "watch"],
                shortNames=list(kind.short_names), categories=list(kind.categories),
                subresources=(["status"] if kind.has_status else [])
                + list(self._registry.stores[kind.group_resource].strategy.subresources))
        return out

    async def Version(self, request: api_pb2.DiscoveryRequest,
                      context: grpc.aio.ServicerContext) -> api_pb2.VersionInfo:
        return VERSION
