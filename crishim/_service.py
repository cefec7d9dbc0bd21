"""The gRPC servicers: RuntimeService and ImageService from proto/cri.proto.

Each handler turns a request into a call on the runtime and its answer into
a response; a CRIError becomes its status code with the error's message,
anything else INTERNAL with the exception's text. Handlers are thin on
purpose: the behaviour lives in _sandboxes, _containers, _exec, _attach and
_images.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
import grpc.aio
from prometheus_client import Counter, Histogram

from component_base import disk_usage
from proto import cri_pb2, cri_pb2_grpc

from . import RUNTIME_API_VERSION, RUNTIME_NAME, VERSION, _attach, _exec, _stats
from ._containers import Containers
from ._errors import CRIError, InvalidArgument
from ._images import Credentials, Image
from ._runtime import Runtime
from ._sandboxes import Sandboxes, info

log = logging.getLogger(__name__)
T = TypeVar("T")
OPERATIONS = Counter("crishim_operations_total", "CRI calls served", ["operation", "code"])
LATENCY = Histogram("crishim_operation_duration_seconds", "CRI call latency", ["operation"],
                    buckets=(0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))


def handler(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    @functools.wraps(fn)
    async def wrapped(self: Any, request: Any, context: grpc.aio.ServicerContext) -> T:
        with LATENCY.labels(fn.__name__).time():
            try:
                result = await fn(self, request, context)
            except CRIError as err:
                OPERATIONS.labels(fn.__name__, err.code.name).inc()
                await context.abort(err.code, str(err))
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception as err:
                log.exception("%s failed", fn.__name__)
                OPERATIONS.labels(fn.__name__, "INTERNAL").inc()
                await context.abort(grpc.StatusCode.INTERNAL, f"{fn.__name__}: {err}")
        OPERATIONS.labels(fn.__name__, "OK").inc()
        return result
    return wrapped


RATE_WINDOW_NS = 1_000_000_000  # the shortest interval a CPU rate is measured over


class RuntimeService(cri_pb2_grpc.RuntimeServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.containers = Containers(runtime)
        self.sandboxes = Sandboxes(runtime, self.containers)
        self._samples: dict[str, tuple[_stats.Sample | None, _stats.Sample | None]] = {}

    @handler
    async def Version(self, request: cri_pb2.VersionRequest, context: Any) -> cri_pb2.VersionResponse:
        return cri_pb2.VersionResponse(version=VERSION, runtime_name=RUNTIME_NAME, runtime_version=VERSION,
                                       runtime_api_version=RUNTIME_API_VERSION)

    @handler
    async def Status(self, request: cri_pb2.StatusRequest, context: Any) -> cri_pb2.StatusResponse:
        net_ready = self.rt.conflist() is not None
        conditions = [cri_pb2.RuntimeCondition(type="RuntimeReady", status=True),
                      cri_pb2.RuntimeCondition(type="NetworkReady", status=net_ready,
                                               reason="" if net_ready else "NetworkPluginNotReady",
                                               message="" if net_ready else "no pod CIDR yet: UpdateRuntimeConfig")]
        return cri_pb2.StatusResponse(conditions=conditions, info={"podCIDR": self.rt.pod_cidr} if request.verbose
                                      else {})

    @handler
    async def UpdateRuntimeConfig(self, request: cri_pb2.UpdateRuntimeConfigRequest,
                                  context: Any) -> cri_pb2.UpdateRuntimeConfigResponse:
        cidr = request.runtime_config.network_config.pod_cidr
        if cidr and cidr != self.rt.pod_cidr:
            try:
                ipaddress.ip_network(cidr)
            except ValueError as err:
                raise InvalidArgument(f"runtimeConfig.networkConfig.podCidr: Invalid value: {cidr!r}: {err}") from err
            self.rt.set_pod_cidr(cidr)
        return cri_pb2.UpdateRuntimeConfigResponse()

    @handler
    async def RunPodSandbox(self, request: cri_pb2.RunPodSandboxRequest, context: Any) -> cri_pb2.RunPodSandboxResponse:
        return cri_pb2.RunPodSandboxResponse(pod_sandbox_id=await self.sandboxes.run(request.config))

    @handler
    async def StopPodSandbox(self, request: cri_pb2.StopPodSandboxRequest,
                             context: Any) -> cri_pb2.StopPodSandboxResponse:
        if request.pod_sandbox_id in self.rt.store.sandboxes:
            await self.sandboxes.stop(request.pod_sandbox_id)
        return cri_pb2.StopPodSandboxResponse()

    @handler
    async def RemovePodSandbox(self, request: cri_pb2.RemovePodSandboxRequest,
                               context: Any) -> cri_pb2.RemovePodSandboxResponse:
        await self.sandboxes.remove(request.pod_sandbox_id)
        return cri_pb2.RemovePodSandboxResponse()

    @handler
    async def PodSandboxStatus(self, request: cri_pb2.PodSandboxStatusRequest,
                               context: Any) -> cri_pb2.PodSandboxStatusResponse:
        status = await self.sandboxes.status(request.pod_sandbox_id)
        extra = {k: str(v) for k, v in info(self.rt.store.sandboxes[status.id]).items()} if request.verbose else {}
        return cri_pb2.PodSandboxStatusResponse(status=status, info=extra)

    @handler
    async def ListPodSandbox(self, request: cri_pb2.ListPodSandboxRequest,
                             context: Any) -> cri_pb2.ListPodSandboxResponse:
        flt = request.filter if request.HasField("filter") else None
        return cri_pb2.ListPodSandboxResponse(items=await self.sandboxes.list(flt))

    @handler
    async def CreateContainer(self, request: cri_pb2.CreateContainerRequest,
                              context: Any) -> cri_pb2.CreateContainerResponse:
        return cri_pb2.CreateContainerResponse(
            container_id=await self.containers.create(request.pod_sandbox_id, request.config))

    @handler
    async def StartContainer(self, request: cri_pb2.StartContainerRequest,
                             context: Any) -> cri_pb2.StartContainerResponse:
        await self.containers.start(request.container_id)
        return cri_pb2.StartContainerResponse()

    @handler
    async def StopContainer(self, request: cri_pb2.StopContainerRequest, context: Any) -> cri_pb2.StopContainerResponse:
        await self.containers.stop(request.container_id, request.timeout)
        return cri_pb2.StopContainerResponse()

    @handler
    async def RemoveContainer(self, request: cri_pb2.RemoveContainerRequest,
                              context: Any) -> cri_pb2.RemoveContainerResponse:
        await self.containers.remove(request.container_id)
        return cri_pb2.RemoveContainerResponse()

    @handler
    async def ListContainers(self, request: cri_pb2.ListContainersRequest,
                             context: Any) -> cri_pb2.ListContainersResponse:
        flt = request.filter if request.HasField("filter") else None
        return cri_pb2.ListContainersResponse(containers=await self.containers.list(flt))

    @handler
    async def ContainerStatus(self, request: cri_pb2.ContainerStatusRequest,
                              context: Any) -> cri_pb2.ContainerStatusResponse:
        status = await self.containers.status(request.container_id)
        extra = {}
        if request.verbose:
            rec = self.rt.store.containers[status.id]
            extra = {"pid": str(rec.pid), "cgroupsPath": rec.cgroups_path,
                     "bundle": str(self.rt.store.container_dir(rec.id))}
        return cri_pb2.ContainerStatusResponse(status=status, info=extra)

    @handler
    async def ExecSync(self, request: cri_pb2.ExecSyncRequest, context: Any) -> cri_pb2.ExecSyncResponse:
        return await _exec.exec_sync(self.rt, request.container_id, list(request.cmd), request.timeout)

    async def Exec(self, request_iterator: AsyncIterator[cri_pb2.ExecRequest],
                   context: grpc.aio.ServicerContext) -> AsyncIterator[cri_pb2.ExecResponse]:
        try:
            async for response in _exec.exec_stream(self.rt, request_iterator):
                yield response
        except CRIError as err:
            await context.abort(err.code, str(err))

    async def Attach(self, request_iterator: AsyncIterator[cri_pb2.AttachRequest],
                     context: grpc.aio.ServicerContext) -> AsyncIterator[cri_pb2.ExecResponse]:
        try:
            async for response in _attach.attach_stream(self.rt, request_iterator):
                yield response
        except CRIError as err:
            await context.abort(err.code, str(err))

    async def _stats(self, container_ids: list[str]) -> list[cri_pb2.ContainerStats]:
        out = []
        for cid in container_ids:
            rec = self.rt.store.containers.get(cid)
            if rec is None:
                continue
            config = rec.config
            attrs = cri_pb2.ContainerAttributes(
                id=rec.id, metadata=cri_pb2.ContainerMetadata(name=config.get("metadata", {}).get("name", ""),
                                                              attempt=config.get("metadata", {}).get("attempt", 0)),
                labels=config.get("labels", {}), annotations=config.get("annotations", {}))
            now = self.rt.clock()
            sample = _stats.sample(rec.cgroups_path, now)
            upper = self.rt.store.container_dir(rec.id) / "upper"
            used, inodes = await asyncio.to_thread(disk_usage, upper)
            layer = cri_pb2.FilesystemUsage(timestamp=now, fs_id=cri_pb2.FilesystemIdentifier(mountpoint=str(upper)))
            layer.used_bytes.value, layer.inodes_used.value = used, inodes
            # usage_nano_cores is a rate: measured against a sample at least
            # RATE_WINDOW older (as cadvisor keeps a housekeeping interval),
            # so readers asking back to back (top, the HPA, the kubelet)
            # do not each get the noise of a few milliseconds (until a
            # container has two samples that far apart, the last one serves).
            older, newer = self._samples.get(rec.id, (None, None))
            recent = newer is not None and sample.timestamp - newer.timestamp < RATE_WINDOW_NS
            out.append(_stats.to_proto(attrs, sample, older if recent and older is not None else newer, layer))
            if not recent:
                self._samples[rec.id] = (newer, sample)
        for gone in self._samples.keys() - self.rt.store.containers.keys():   # removed containers
            del self._samples[gone]
        return out

    @handler
    async def ContainerStats(self, request: cri_pb2.ContainerStatsRequest,
                             context: Any) -> cri_pb2.ContainerStatsResponse:
        rec = self.rt.find_container(request.container_id)
        return cri_pb2.ContainerStatsResponse(stats=(await self._stats([rec.id]))[0])

    @handler
    async def ListContainerStats(self, request: cri_pb2.ListContainerStatsRequest,
                                 context: Any) -> cri_pb2.ListContainerStatsResponse:
        flt = request.filter
        wanted = []
        for c in await self.containers.list(cri_pb2.ContainerFilter(
                id=flt.id, pod_sandbox_id=flt.pod_sandbox_id, label_selector=flt.label_selector)):
            if c.state == cri_pb2.CONTAINER_RUNNING:
                wanted.append(c.id)
        return cri_pb2.ListContainerStatsResponse(stats=await self._stats(wanted))


def _image(image: Image) -> cri_pb2.Image:
    out = cri_pb2.Image(id=image.id, repo_tags=image.repo_tags, repo_digests=image.repo_digests, size=image.size,
                        spec=cri_pb2.ImageSpec(image=image.id))
    user = str(image.config.get("User") or "").split(":")[0]
    if user.isdigit() or not user:
        out.uid.value = int(user or 0)
    else:
        out.username = user
    return out


class ImageService(cri_pb2_grpc.ImageServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    @handler
    async def ListImages(self, request: cri_pb2.ListImagesRequest, context: Any) -> cri_pb2.ListImagesResponse:
        name = request.filter.image.image
        images = [self.rt.images.find(name)] if name else self.rt.images.list_images()
        return cri_pb2.ListImagesResponse(images=[_image(i) for i in images if i is not None])

    @handler
    async def ImageStatus(self, request: cri_pb2.ImageStatusRequest, context: Any) -> cri_pb2.ImageStatusResponse:
        image = self.rt.images.find(request.image.image)
        if image is None:
            return cri_pb2.ImageStatusResponse()
        extra = {"config": str(image.config), "manifest": image.manifest} if request.verbose else {}
        return cri_pb2.ImageStatusResponse(image=_image(image), info=extra)

    @handler
    async def PullImage(self, request: cri_pb2.PullImageRequest, context: Any) -> cri_pb2.PullImageResponse:
        auth = request.auth
        username, password = auth.username, auth.password
        if auth.auth and not username:
            username, _, password = base64.b64decode(auth.auth).decode().partition(":")
        image = await self.rt.images.pull(request.image.image,
                                          Credentials(username, password, auth.registry_token or auth.identity_token))
        return cri_pb2.PullImageResponse(image_ref=image.id)

    @handler
    async def RemoveImage(self, request: cri_pb2.RemoveImageRequest, context: Any) -> cri_pb2.RemoveImageResponse:
        in_use = {layer for rec in self.rt.store.containers.values() for layer in rec.layers}
        await self.rt.images.remove(request.image.image, in_use | self._sandbox_layers())
        return cri_pb2.RemoveImageResponse()

    def _sandbox_layers(self) -> set[str]:
        image = self.rt.images.find(self.rt.options.pod_infra_image)
        if image is None or not self.rt.store.sandboxes:
            return set()
        return {p.name for p in self.rt.images.layer_dirs(image)}

    @handler
    async def ImageFsInfo(self, request: cri_pb2.ImageFsInfoRequest, context: Any) -> cri_pb2.ImageFsInfoResponse:
        now = self.rt.clock()
        out = cri_pb2.ImageFsInfoResponse()
        for target, path in ((out.image_filesystems, self.rt.images.root),
                             (out.container_filesystems, self.rt.options.root / "containers")):
            used, inodes = await asyncio.to_thread(disk_usage, path)
            usage = target.add(timestamp=now, fs_id=cri_pb2.FilesystemIdentifier(mountpoint=str(path)))
            usage.used_bytes.value, usage.inodes_used.value = used, inodes
        return out
