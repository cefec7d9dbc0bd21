"""The node proxy: container logs, exec, attach and node summaries,
streamed from the kubelets through the apiserver (the NodeProxy service of
proto/api.proto).

kubectl never dials a kubelet: `kubectl logs`, `exec` and `attach` go to
kube-apiserver's pods/log, pods/exec and pods/attach subresources and `top`
to the node proxy, and the apiserver dials the kubelet on the node the pod is bound to.
This does the same, so the CLI needs only its way to the apiserver (in the
lab, a unix socket on the host), while the apiserver, inside the lab's
network, reaches every kubelet at its Node's InternalIP and
`status.daemonEndpoints.kubeletEndpoint.Port` (0, what a kubelet with
`--port 0` reports, means it serves no API: refused without dialling):

1. authorize like any call: get pods/log, create pods/exec and
   pods/attach, get nodes/proxy (no in-flight slot for the streams: they
   are long-running, like watches);
2. read the pod from storage, check the container is one of its own and
   that it is bound to a node, read that Node;
3. dial the kubelet (an unreachable one fails at once with
   ServiceUnavailable "error dialing backend: ..." rather than after
   gRPC's reconnect backoff; a channel that failed is dropped, so the next
   call dials afresh), and stream the kubelet's own service through.

The kubelet's refusals come back as BadRequest with its message (a
container waiting to start, no previous instance, exec into a container
that is not running), as kube-apiserver passes them on. When the client
goes away the upstream call is cancelled, which ends a followed log or an
exec on the kubelet too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import grpc.aio

from api import StatusError, bad_request, new_error, not_found
from proto import api_pb2, api_pb2_grpc, core_pb2, cri_pb2, kubelet_pb2, kubelet_pb2_grpc

from ._service import Handler
from .storage import Unavailable

_EOF = grpc.aio.EOF  # type: ignore[attr-defined]  # the end of a stream's reads (missing from the stubs)

log = logging.getLogger(__name__)

DIAL_TIMEOUT = 10.0
SUMMARY_TIMEOUT = 30.0
# The Node address types tried, in order (kube-apiserver's
# --kubelet-preferred-address-types, without the DNS kinds nodes here never report).
ADDRESS_TYPES = ("InternalIP", "ExternalIP", "Hostname")


class KubeletConnections:
    """One gRPC channel per kubelet address, dialled on first use."""

    def __init__(self, dial_timeout: float = DIAL_TIMEOUT) -> None:
        self.dial_timeout = dial_timeout
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def stub(self, target: str) -> kubelet_pb2_grpc.KubeletStub:
        channel = self._channels.get(target)
        if channel is None:
            # No HTTP proxy from the environment: kubelets are on the cluster's network.
            channel = grpc.aio.insecure_channel(target, options=[("grpc.enable_http_proxy", 0),
                                                                 ("grpc.max_receive_message_length",
                                                                  64 * 1024 * 1024)])
            self._channels[target] = channel
        try:
            await self._dial(channel, target)
        except StatusError:
            self._channels.pop(target, None)
            await channel.close(None)
            raise
        return kubelet_pb2_grpc.KubeletStub(channel)

    async def _dial(self, channel: grpc.aio.Channel, target: str) -> None:
        try:
            async with asyncio.timeout(self.dial_timeout):
                state = channel.get_state(try_to_connect=True)
                while state != grpc.ChannelConnectivity.READY:
                    if state in (grpc.ChannelConnectivity.TRANSIENT_FAILURE, grpc.ChannelConnectivity.SHUTDOWN):
                        raise dialing_error(target, await self._why(target))
                    await channel.wait_for_state_change(state)
                    state = channel.get_state(try_to_connect=True)
        except TimeoutError:
            raise dialing_error(target, "i/o timeout") from None

    async def _why(self, target: str) -> str:
        """Why a connection fails, in the words of the OS (gRPC's channel
        state does not say): one plain TCP connect to the same address."""
        host, _, port = target.rpartition(":")
        try:
            async with asyncio.timeout(self.dial_timeout):
                _reader, writer = await asyncio.open_connection(host.strip("[]"), int(port))
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return "connected, but the peer does not speak the kubelet's gRPC API"
        except TimeoutError:
            return "i/o timeout"
        except OSError as err:
            return f"connect: {os.strerror(err.errno).lower() if err.errno else err}"

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close(None)


def dialing_error(target: str, why: str) -> StatusError:
    return new_error("ServiceUnavailable", f"error dialing backend: dial tcp {target}: {why}")


def kubelet_target(node: core_pb2.Node) -> str:
    """HOST:PORT of the node's kubelet API."""
    addresses = {a.type: a.address for a in reversed(node.status.addresses) if a.address}
    for kind in ADDRESS_TYPES:
        if kind in addresses:
            host = addresses[kind]
            break
    else:
        known = ", ".join(f"{a.type}={a.address}" for a in node.status.addresses)
        raise new_error("ServiceUnavailable", f'no preferred addresses found for node "{node.metadata.name}"; '
                                              f"known addresses: [{known}]")
    port = node.status.daemonEndpoints.kubeletEndpoint.Port
    if port <= 0:
        # What a kubelet started with --port 0 reports: it serves no API.
        raise new_error("ServiceUnavailable", f'node "{node.metadata.name}" does not serve the kubelet API: '
                                              "status.daemonEndpoints.kubeletEndpoint.Port is 0 (kubelet --port 0)")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_container(pod: core_pb2.Pod, container: str) -> None:
    """The pod has this container, or (none named) just one to choose."""
    names = [c.name for c in pod.spec.containers]
    inits = [c.name for c in pod.spec.initContainers]
    if not container:
        if len(names) != 1:
            extra = f" or one of the init containers: [{' '.join(inits)}]" if inits else ""
            raise bad_request(f"a container name must be specified for pod {pod.metadata.name}, choose one of: "
                              f"[{' '.join(names)}]{extra}")
        return
    if container not in names and container not in inits:
        raise bad_request(f"container {container} is not valid for pod {pod.metadata.name}")


def kubelet_failure(err: grpc.aio.AioRpcError, target: str) -> StatusError:
    """The kubelet's gRPC failure as the Status the client gets."""
    code, message = err.code(), err.details() or err.code().name
    if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
        return bad_request(message)
    if code == grpc.StatusCode.UNAVAILABLE:
        if "failed to connect" in message or "Connection refused" in message or "Socket closed" in message:
            return dialing_error(target, message)
        return new_error("ServiceUnavailable", message)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return new_error("Timeout", f"the kubelet at {target} did not answer in time")
    return new_error("InternalError", f"the kubelet at {target}: {code.name}: {message}")


async def _abort(context: grpc.aio.ServicerContext, err: StatusError) -> None:
    await context.abort(err.grpc_code, err.message, trailing_metadata=err.trailing_metadata())


async def _through(context: grpc.aio.ServicerContext, call: Any, first: Any, request_iterator: AsyncIterator[Any],
                   target: str) -> AsyncIterator[cri_pb2.ExecResponse]:
    """Stream an exec or attach through to the kubelet: `first`, then the
    client's requests as they come (stdin, resizes, close; the client
    half-closing ends our side too), and the kubelet's responses back."""
    await call.write(first)

    async def pump() -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
            async for req in request_iterator:
                await call.write(req)
            await call.done_writing()

    writer = asyncio.create_task(pump())
    try:
        while True:
            response = await call.read()
            if response is _EOF:
                break
            yield response
    except grpc.aio.AioRpcError as err:
        if err.code() != grpc.StatusCode.CANCELLED:
            await _abort(context, kubelet_failure(err, target))
    finally:
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        call.cancel()


class NodeProxyServicer(api_pb2_grpc.NodeProxyServicer):
    def __init__(self, handler: Handler, kubelets: KubeletConnections | None = None) -> None:
        self._h = handler
        self.kubelets = kubelets or KubeletConnections()

    # ------------------------------------------------------------ lookups

    async def _node(self, name: str) -> core_pb2.Node:
        node = await self._h.registry.get("", "nodes", "", name)
        if node is None:
            raise not_found("nodes", "", name)
        return node  # type: ignore[no-any-return]

    async def _pod_kubelet(self, context: grpc.aio.ServicerContext, verb: str, subresource: str, namespace: str,
                           name: str, container: str) -> tuple[kubelet_pb2_grpc.KubeletStub, str]:
        try:
            return await self._resolve(context, verb, subresource, namespace, name, container)
        except Unavailable as err:
            raise new_error("ServiceUnavailable", str(err)) from None

    async def _resolve(self, context: grpc.aio.ServicerContext, verb: str, subresource: str, namespace: str,
                       name: str, container: str) -> tuple[kubelet_pb2_grpc.KubeletStub, str]:
        if not name:
            raise bad_request("pod: Required value: the pod's name may not be empty")
        namespace = namespace or "default"
        store, _user = self._h.admit(context, verb, "", "pods", namespace, name, subresource)
        pod: core_pb2.Pod = await store.get_object(namespace, name)
        check_container(pod, container)
        if not pod.spec.nodeName:
            raise bad_request(f"pod {name} does not have a host assigned")
        target = kubelet_target(await self._node(pod.spec.nodeName))
        return await self.kubelets.stub(target), target

    # ------------------------------------------------------------ logs

    async def ContainerLogs(self, request: kubelet_pb2.ContainerLogsRequest,
                            context: grpc.aio.ServicerContext) -> AsyncIterator[kubelet_pb2.LogChunk]:
        try:
            stub, target = await self._pod_kubelet(context, "get", "log", request.namespace, request.pod,
                                                   request.container)
        except StatusError as err:
            await _abort(context, err)
            return
        forwarded = kubelet_pb2.ContainerLogsRequest()
        forwarded.CopyFrom(request)
        forwarded.namespace = request.namespace or "default"
        call = stub.ContainerLogs(forwarded)
        try:
            async for chunk in call:
                yield chunk
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                await _abort(context, kubelet_failure(err, target))
        finally:
            call.cancel()

    # ------------------------------------------------------------ exec

    async def Exec(self, request_iterator: AsyncIterator[kubelet_pb2.ExecRequest],
                   context: grpc.aio.ServicerContext) -> AsyncIterator[cri_pb2.ExecResponse]:
        def check(start: kubelet_pb2.ExecTarget) -> None:
            if not start.command:
                raise bad_request("command: Required value: you must specify at least one command for the "
                                  "container")
        async for response in self._stream(context, request_iterator, "exec", check):
            yield response

    async def Attach(self, request_iterator: AsyncIterator[kubelet_pb2.AttachRequest],
                     context: grpc.aio.ServicerContext) -> AsyncIterator[cri_pb2.ExecResponse]:
        async for response in self._stream(context, request_iterator, "attach", lambda start: None):
            yield response

    async def _stream(self, context: grpc.aio.ServicerContext, request_iterator: AsyncIterator[Any],
                      subresource: str, check: Callable[[Any], None]) -> AsyncIterator[cri_pb2.ExecResponse]:
        """pods/exec or pods/attach: the first request names the pod (and
        is checked), the rest stream through to the kubelet's Exec or Attach."""
        first = await anext(aiter(request_iterator), None)
        try:
            if first is None or not first.HasField("start"):
                raise bad_request(f"the first request of an {subresource} must be `start`, naming the pod")
            start = first.start
            check(start)
            stub, target = await self._pod_kubelet(context, "create", subresource, start.namespace, start.pod,
                                                   start.container)
        except StatusError as err:
            await _abort(context, err)
            return
        forwarded = type(first)()
        forwarded.CopyFrom(first)
        forwarded.start.namespace = start.namespace or "default"
        call = stub.Exec() if subresource == "exec" else stub.Attach()
        async for response in _through(context, call, forwarded, request_iterator, target):
            yield response

    # ------------------------------------------------------------ stats

    async def GetSummary(self, request: api_pb2.NodeSummaryRequest, context: grpc.aio.ServicerContext) -> Any:
        async def call() -> kubelet_pb2.Summary:
            if not request.node:
                raise bad_request("node: Required value: the node's name may not be empty")
            self._h.admit(context, "get", "", "nodes", "", request.node, "proxy")
            target = kubelet_target(await self._node(request.node))
            stub = await self.kubelets.stub(target)
            try:
                return await stub.GetSummary(kubelet_pb2.SummaryRequest(namespace=request.namespace),
                                             timeout=SUMMARY_TIMEOUT)
            except grpc.aio.AioRpcError as err:
                raise kubelet_failure(err, target) from None
        return await self._h.unary(context, "get", "", "nodes", call, mutating=False)
