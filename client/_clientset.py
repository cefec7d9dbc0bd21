"""The typed clientset: every verb for every kind, over one gRPC channel.

    cs = Clientset.connect(load_config())
    pods = cs.resource(core_pb2.Pod, "default")        # ResourceClient[Pod]
    pod = await pods.get("web-0")
    async for event in pods.watch(resource_version=pod.metadata.resourceVersion):
        ...

A ResourceClient is generic in the message it serves, so a type checker
knows `pods.get()` returns a Pod. Failures raise api.StatusError with the
server's reason and message. A TooManyRequests answer is retried with
backoff (the server refused before doing anything), as client-go does.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc
import grpc.aio
from google.protobuf import any_pb2
from google.protobuf.message import Message

from api import SCHEME, STRATEGIC_MERGE_PATCH, Kind, StatusError
from proto import api_pb2, api_pb2_grpc, core_pb2

from ._config import ClientConfig

T = TypeVar("T", bound=Message)
R = TypeVar("R")

_MAX_MESSAGE = 256 * 1024 * 1024
_RETRIES = 8


def make_channel(config: ClientConfig) -> grpc.aio.Channel:
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", _MAX_MESSAGE),
        ("grpc.max_send_message_length", _MAX_MESSAGE),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_permit_without_calls", 1),
    ]
    if config.tls_server_name:
        options.append(("grpc.ssl_target_name_override", config.tls_server_name))
    if config.secure:
        ca = open(config.certificate_authority, "rb").read()
        key = open(config.client_key, "rb").read() if config.client_key else None
        cert = open(config.client_certificate, "rb").read() if config.client_certificate else None
        creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
        return grpc.aio.secure_channel(config.server, creds, options=options)
    return grpc.aio.insecure_channel(config.server, options=options)


@dataclass(frozen=True)
class ObjectList(Generic[T]):
    items: list[T]
    resource_version: str
    continue_token: str = ""
    remaining: int | None = None


@dataclass(frozen=True)
class WatchEvent(Generic[T]):
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    object: T

    @property
    def resource_version(self) -> str:
        return self.object.metadata.resourceVersion  # type: ignore[attr-defined, no-any-return]


class Clientset:
    """A connection to the apiserver and the way to a ResourceClient per kind."""

    def __init__(self, channel: grpc.aio.Channel, *, token: str = "", namespace: str = "default") -> None:
        self.channel = channel
        self._resources = api_pb2_grpc.ResourcesStub(channel)
        self._discovery = api_pb2_grpc.DiscoveryStub(channel)
        self._metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        self.namespace = namespace

    @classmethod
    def connect(cls, config: ClientConfig) -> Clientset:
        return cls(make_channel(config), token=config.token, namespace=config.namespace)

    def resource(self, kind: type[T] | Kind, namespace: str = "") -> ResourceClient[T]:
        """The client for one kind, scoped to `namespace` ("" = all
        namespaces for list and watch; ignored for cluster-scoped kinds)."""
        k = kind if isinstance(kind, Kind) else SCHEME.for_message(kind)
        return ResourceClient(self, k, namespace if k.namespaced else "")

    async def call(self, method: Callable[..., Awaitable[R]], request: Message, *, timeout: float | None = None,
                   retry_unavailable: bool = False) -> R:
        delay = 0.05
        for attempt in range(_RETRIES):
            try:
                return await method(request, metadata=self._metadata, timeout=timeout)
            except grpc.aio.AioRpcError as err:
                error = StatusError.from_rpc_error(err)
                retry = error.reason == "TooManyRequests" or (
                    retry_unavailable and error.reason == "ServiceUnavailable")
                if not retry or attempt == _RETRIES - 1:
                    raise error from None
                wait = max(delay, float(error.status.details.retryAfterSeconds or 0) * 0.1)
                await asyncio.sleep(wait * (1 + random.random() * 0.2))
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    async def server_resources(self) -> api_pb2.APIResourceList:
        return await self.call(self._discovery.ServerResources, api_pb2.DiscoveryRequest(), retry_unavailable=True)

    async def version(self) -> api_pb2.VersionInfo:
        return await self.call(self._discovery.Version, api_pb2.DiscoveryRequest(), retry_unavailable=True)

    async def convert_to_table(self, objects: list[Message]) -> api_pb2.Table:
        packed = [any_pb2.Any(type_url=SCHEME.for_message(o).type_url, value=o.SerializeToString()) for o in objects]
        return await self.call(self._resources.ConvertToTable, api_pb2.ConvertToTableRequest(objects=packed))

    async def close(self) -> None:
        await self.channel.close(None)

    async def __aenter__(self) -> Clientset:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class ResourceClient(Generic[T]):
    def __init__(self, clientset: Clientset, kind: Kind, namespace: str) -> None:
        self._cs = clientset
        self._stub = clientset._resources
        self.kind = kind
        self.namespace = namespace

    def _ns(self, obj: Message | None = None) -> str:
        if not self.kind.namespaced:
            return ""
        if obj is not None and obj.metadata.namespace:  # type: ignore[attr-defined]
            return obj.metadata.namespace  # type: ignore[attr-defined, no-any-return]
        return self.namespace or self._cs.namespace

    def _pack(self, obj: Message) -> any_pb2.Any:
        return any_pb2.Any(type_url=self.kind.type_url, value=obj.SerializeToString())

    def _unpack(self, packed: any_pb2.Any) -> T:
        return self.kind.message.FromString(packed.value)  # type: ignore[return-value]

    def _ref(self) -> dict[str, str]:
        return {"group": self.kind.group, "resource": self.kind.resource}

    async def create(self, obj: T, *, dry_run: bool = False) -> T:
        req = api_pb2.CreateRequest(**self._ref(), namespace=self._ns(obj), object=self._pack(obj), dryRun=dry_run)
        return self._unpack((await self._cs.call(self._stub.Create, req)).object)

    async def get(self, name: str, *, resource_version: str = "") -> T:
        req = api_pb2.GetRequest(**self._ref(), namespace=self._ns(), name=name, resourceVersion=resource_version)
        return self._unpack((await self._cs.call(self._stub.Get, req, retry_unavailable=True)).object)

    async def list(self, *, label_selector: str = "", field_selector: str = "", resource_version: str = "",
                   limit: int = 0, continue_token: str = "") -> ObjectList[T]:
        req = api_pb2.ListRequest(**self._ref(), namespace=self.namespace, labelSelector=label_selector,
                                  fieldSelector=field_selector, resourceVersion=resource_version, limit=limit)
        setattr(req, "continue", continue_token)
        resp = await self._cs.call(self._stub.List, req, retry_unavailable=True)
        remaining = resp.metadata.remainingItemCount if resp.metadata.HasField("remainingItemCount") else None
        return ObjectList([self._unpack(i) for i in resp.items], resp.metadata.resourceVersion,
                          getattr(resp.metadata, "continue"), remaining)

    async def list_all(self, *, label_selector: str = "", field_selector: str = "", page: int = 500) -> ObjectList[T]:
        """Every matching object, fetched `page` at a time from one snapshot."""
        items: list[T] = []
        token = ""
        while True:
            chunk = await self.list(label_selector=label_selector, field_selector=field_selector, limit=page,
                                    continue_token=token)
            items.extend(chunk.items)
            if not chunk.continue_token:
                return ObjectList(items, chunk.resource_version)
            token = chunk.continue_token

    async def update(self, obj: T, *, dry_run: bool = False) -> T:
        req = api_pb2.UpdateRequest(**self._ref(), namespace=self._ns(obj), object=self._pack(obj), dryRun=dry_run)
        return self._unpack((await self._cs.call(self._stub.Update, req)).object)

    async def update_status(self, obj: T, *, dry_run: bool = False) -> T:
        req = api_pb2.UpdateRequest(**self._ref(), namespace=self._ns(obj), object=self._pack(obj), dryRun=dry_run)
        return self._unpack((await self._cs.call(self._stub.UpdateStatus, req)).object)

    async def finalize(self, obj: T) -> T:
        """A namespace's finalize subresource: store its spec.finalizers."""
        req = api_pb2.UpdateRequest(group=self.kind.group, resource=self.kind.resource, namespace=self._ns(obj),
                                    object=self._pack(obj), subresource="finalize")
        return self._unpack((await self._cs.call(self._stub.Update, req)).object)

    async def bind(self, name: str, node: str, *, uid: str = "", annotations: dict[str, str] | None = None,
                   dry_run: bool = False) -> T:
        """pods/binding: put pod `name` on `node` (a Conflict if it is
        already bound or being deleted)."""
        binding = core_pb2.Binding(metadata={"name": name, "namespace": self._ns(), "uid": uid,
                                             "annotations": annotations or {}},
                                   target={"kind": "Node", "name": node})
        req = api_pb2.BindRequest(namespace=self._ns(), binding=binding, dryRun=dry_run)
        return self._unpack((await self._cs.call(self._stub.Bind, req)).object)

    async def patch(self, name: str, patch: Any, *, patch_type: str = STRATEGIC_MERGE_PATCH,
                    subresource: str = "", dry_run: bool = False) -> T:
        body = patch if isinstance(patch, bytes) else json.dumps(patch).encode()
        req = api_pb2.PatchRequest(**self._ref(), namespace=self._ns(), name=name, patchType=patch_type, patch=body,
                                   subresource=subresource, dryRun=dry_run)
        return self._unpack((await self._cs.call(self._stub.Patch, req)).object)

    async def delete(self, name: str, *, grace_period: int | None = None, propagation: str = "",
                     uid: str | None = None, resource_version: str | None = None, dry_run: bool = False) -> T:
        req = api_pb2.DeleteRequest(group=self.kind.group, resource=self.kind.resource, namespace=self._ns(),
                                    name=name, propagationPolicy=propagation, dryRun=dry_run)
        if grace_period is not None:
            req.gracePeriodSeconds = grace_period
        if uid is not None:
            req.preconditions.uid = uid
        if resource_version is not None:
            req.preconditions.resourceVersion = resource_version
        return self._unpack((await self._cs.call(self._stub.Delete, req)).object)

    async def watch(self, *, resource_version: str = "", label_selector: str = "", field_selector: str = "",
                    bookmarks: bool = False, timeout_seconds: int = 0) -> AsyncIterator[WatchEvent[T]]:
        """Events after `resource_version` ("" or "0": first an ADDED per
        existing object). Ends when the server ends the watch; raises
        StatusError (Gone, TooManyRequests, ...) when it ends with an error."""
        req = api_pb2.WatchRequest(**self._ref(), namespace=self.namespace, labelSelector=label_selector,
                                   fieldSelector=field_selector, resourceVersion=resource_version,
                                   allowWatchBookmarks=bookmarks, timeoutSeconds=timeout_seconds)
        call = self._stub.Watch(req, metadata=self._cs._metadata)
        try:
            async for event in call:
                yield WatchEvent(event.type, self._unpack(event.object))
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.CANCELLED:
                return
            raise StatusError.from_rpc_error(err) from None
        finally:
            call.cancel()
