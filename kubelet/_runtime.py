"""The container runtime as the kubelet sees it: the CRI calls, async.

`Runtime` mirrors the RuntimeService and ImageService of proto/cri.proto
(one method per call the kubelet makes). Two implementations exist:

* `RemoteRuntime`: a gRPC client of the CRI shim on a unix socket
  (`--container-runtime-endpoint unix:///run/kubelab/crishim.sock`);
* `HollowRuntime` (kubelet/_hollow.py): containers in memory, for hollow
  nodes and unit tests.

Failures are `CRIError`s carrying the gRPC status code the shim answered
(NOT_FOUND, INVALID_ARGUMENT, FAILED_PRECONDITION, UNAVAILABLE, ...), so
the kubelet reacts to the same codes whichever runtime it runs on. A shim
that is down makes every call fail with UNAVAILABLE; the kubelet reports
its node NotReady and retries on its next sync, never guessing state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import grpc
import grpc.aio

from proto import cri_pb2, cri_pb2_grpc

_MAX_MESSAGE = 64 * 1024 * 1024


class CRIError(Exception):
    """A runtime call failed; `code` is the gRPC status code."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.code == grpc.StatusCode.NOT_FOUND

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class Runtime(Protocol):
    """The CRI calls the kubelet uses (RuntimeService + ImageService)."""

    async def version(self) -> cri_pb2.VersionResponse: ...

    async def status(self) -> cri_pb2.StatusResponse: ...

    async def update_runtime_config(self, pod_cidr: str) -> None: ...

    async def run_pod_sandbox(self, config: cri_pb2.PodSandboxConfig) -> str: ...

    async def stop_pod_sandbox(self, sandbox_id: str) -> None: ...

    async def remove_pod_sandbox(self, sandbox_id: str) -> None: ...

    async def pod_sandbox_status(self, sandbox_id: str) -> cri_pb2.PodSandboxStatus: ...

    async def list_pod_sandbox(self, labels: dict[str, str] | None = None) -> list[cri_pb2.PodSandbox]: ...

    async def create_container(self, sandbox_id: str, config: cri_pb2.ContainerConfig,
                               sandbox_config: cri_pb2.PodSandboxConfig) -> str: ...

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, timeout: int) -> None: ...

    async def remove_container(self, container_id: str) -> None: ...

    async def list_containers(self, labels: dict[str, str] | None = None) -> list[cri_pb2.Container]: ...

    async def container_status(self, container_id: str) -> cri_pb2.ContainerStatus: ...

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: int) -> cri_pb2.ExecSyncResponse: ...

    def exec(self, requests: AsyncIterator[cri_pb2.ExecRequest]) -> AsyncIterator[cri_pb2.ExecResponse]: ...

    def attach(self, requests: AsyncIterator[cri_pb2.AttachRequest]) -> AsyncIterator[cri_pb2.ExecResponse]: ...

    async def list_container_stats(self) -> list[cri_pb2.ContainerStats]: ...

    async def list_images(self) -> list[cri_pb2.Image]: ...

    async def image_status(self, image: str) -> cri_pb2.Image | None: ...

    async def pull_image(self, image: str, sandbox_config: cri_pb2.PodSandboxConfig | None = None) -> str: ...

    async def remove_image(self, image: str) -> None: ...

    async def image_fs_info(self) -> cri_pb2.ImageFsInfoResponse: ...


def _error(err: grpc.aio.AioRpcError) -> CRIError:
    return CRIError(err.code(), err.details() or err.code().name)


class RemoteRuntime:
    """The CRI shim over its unix socket. Calls carry a deadline, so a hung
    shim fails a sync instead of freezing a pod worker; image pulls get a
    long one."""

    def __init__(self, endpoint: str, *, timeout: float = 30.0, pull_timeout: float = 600.0) -> None:
        if endpoint.startswith("/"):
            endpoint = "unix://" + endpoint
        if not endpoint.startswith("unix:"):
            raise ValueError(f"--container-runtime-endpoint {endpoint!r}: want unix:///path/to/socket")
        self.endpoint = endpoint
        self._channel = grpc.aio.insecure_channel(endpoint, options=[
            ("grpc.max_receive_message_length", _MAX_MESSAGE), ("grpc.max_send_message_length", _MAX_MESSAGE)])
        self._rt = cri_pb2_grpc.RuntimeServiceStub(self._channel)
        self._img = cri_pb2_grpc.ImageServiceStub(self._channel)
        self._timeout = timeout
        self._pull_timeout = pull_timeout

    async def close(self) -> None:
        await self._channel.close(None)

    async def _call(self, method: object, request: object, timeout: float | None = None) -> object:
        try:
            return await method(request, timeout=timeout or self._timeout)  # type: ignore[operator]
        except grpc.aio.AioRpcError as err:
            raise _error(err) from None

    async def version(self) -> cri_pb2.VersionResponse:
        return await self._call(self._rt.Version, cri_pb2.VersionRequest(version="v1"))  # type: ignore[return-value]

    async def status(self) -> cri_pb2.StatusResponse:
        return await self._call(self._rt.Status, cri_pb2.StatusRequest())  # type: ignore[return-value]

    async def update_runtime_config(self, pod_cidr: str) -> None:
        req = cri_pb2.UpdateRuntimeConfigRequest()
        req.runtime_config.network_config.pod_cidr = pod_cidr
        await self._call(self._rt.UpdateRuntimeConfig, req)

    async def run_pod_sandbox(self, config: cri_pb2.PodSandboxConfig) -> str:
        resp = await self._call(self._rt.RunPodSandbox, cri_pb2.RunPodSandboxRequest(config=config), 120.0)
        return resp.pod_sandbox_id  # type: ignore[attr-defined, no-any-return]

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        await self._call(self._rt.StopPodSandbox, cri_pb2.StopPodSandboxRequest(pod_sandbox_id=sandbox_id), 120.0)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        await self._call(self._rt.RemovePodSandbox, cri_pb2.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))

    async def pod_sandbox_status(self, sandbox_id: str) -> cri_pb2.PodSandboxStatus:
        resp = await self._call(self._rt.PodSandboxStatus, cri_pb2.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id))
        return resp.status  # type: ignore[attr-defined, no-any-return]

    async def list_pod_sandbox(self, labels: dict[str, str] | None = None) -> list[cri_pb2.PodSandbox]:
        req = cri_pb2.ListPodSandboxRequest()
        if labels:
            req.filter.label_selector.update(labels)
        resp = await self._call(self._rt.ListPodSandbox, req)
        return list(resp.items)  # type: ignore[attr-defined]

    async def create_container(self, sandbox_id: str, config: cri_pb2.ContainerConfig,
                               sandbox_config: cri_pb2.PodSandboxConfig) -> str:
        req = cri_pb2.CreateContainerRequest(pod_sandbox_id=sandbox_id, config=config, sandbox_config=sandbox_config)
        resp = await self._call(self._rt.CreateContainer, req, 120.0)
        return resp.container_id  # type: ignore[attr-defined, no-any-return]

    async def start_container(self, container_id: str) -> None:
        await self._call(self._rt.StartContainer, cri_pb2.StartContainerRequest(container_id=container_id), 120.0)

    async def stop_container(self, container_id: str, timeout: int) -> None:
        req = cri_pb2.StopContainerRequest(container_id=container_id, timeout=timeout)
        await self._call(self._rt.StopContainer, req, timeout + self._timeout)

    async def remove_container(self, container_id: str) -> None:
        await self._call(self._rt.RemoveContainer, cri_pb2.RemoveContainerRequest(container_id=container_id))

    async def list_containers(self, labels: dict[str, str] | None = None) -> list[cri_pb2.Container]:
        req = cri_pb2.ListContainersRequest()
        if labels:
            req.filter.label_selector.update(labels)
        resp = await self._call(self._rt.ListContainers, req)
        return list(resp.containers)  # type: ignore[attr-defined]

    async def container_status(self, container_id: str) -> cri_pb2.ContainerStatus:
        resp = await self._call(self._rt.ContainerStatus, cri_pb2.ContainerStatusRequest(container_id=container_id))
        return resp.status  # type: ignore[attr-defined, no-any-return]

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: int) -> cri_pb2.ExecSyncResponse:
        req = cri_pb2.ExecSyncRequest(container_id=container_id, cmd=cmd, timeout=timeout)
        return await self._call(self._rt.ExecSync, req, (timeout or 3600) + self._timeout)  # type: ignore[return-value]

    def exec(self, requests: AsyncIterator[cri_pb2.ExecRequest]) -> AsyncIterator[cri_pb2.ExecResponse]:
        return self._stream(self._rt.Exec(requests))

    def attach(self, requests: AsyncIterator[cri_pb2.AttachRequest]) -> AsyncIterator[cri_pb2.ExecResponse]:
        return self._stream(self._rt.Attach(requests))

    @staticmethod
    async def _stream(call: Any) -> AsyncIterator[cri_pb2.ExecResponse]:
        try:
            async for response in call:
                yield response
        except grpc.aio.AioRpcError as err:
            raise _error(err) from None
        finally:
            call.cancel()

    async def list_container_stats(self) -> list[cri_pb2.ContainerStats]:
        resp = await self._call(self._rt.ListContainerStats, cri_pb2.ListContainerStatsRequest())
        return list(resp.stats)  # type: ignore[attr-defined]

    async def list_images(self) -> list[cri_pb2.Image]:
        resp = await self._call(self._img.ListImages, cri_pb2.ListImagesRequest())
        return list(resp.images)  # type: ignore[attr-defined]

    async def image_status(self, image: str) -> cri_pb2.Image | None:
        resp = await self._call(self._img.ImageStatus, cri_pb2.ImageStatusRequest(image=cri_pb2.ImageSpec(image=image)))
        return resp.image if resp.HasField("image") and resp.image.id else None  # type: ignore[attr-defined]

    async def pull_image(self, image: str, sandbox_config: cri_pb2.PodSandboxConfig | None = None) -> str:
        req = cri_pb2.PullImageRequest(image=cri_pb2.ImageSpec(image=image))
        if sandbox_config is not None:
            req.sandbox_config.CopyFrom(sandbox_config)
        resp = await self._call(self._img.PullImage, req, self._pull_timeout)
        return resp.image_ref  # type: ignore[attr-defined, no-any-return]

    async def remove_image(self, image: str) -> None:
        await self._call(self._img.RemoveImage, cri_pb2.RemoveImageRequest(image=cri_pb2.ImageSpec(image=image)))

    async def image_fs_info(self) -> cri_pb2.ImageFsInfoResponse:
        return await self._call(self._img.ImageFsInfo, cri_pb2.ImageFsInfoRequest())  # type: ignore[return-value]
