"""Pulling images as the pod says: imagePullPolicy is the kubelet's to
enforce, the runtime only pulls when asked.

* Never: the image must already be on the node (ErrImageNeverPull);
* IfNotPresent: pull only when the node does not hold it;
* Always: ask the runtime to pull every time a container is started
  (cheap when the layers are there).

A failed pull is ErrImagePull; until its backoff (10 s doubling to 5 min,
per pod and image) has passed, the kubelet does not try again and reports
ImagePullBackOff. Every step is an Event on the pod (Pulling, Pulled,
Failed, BackOff), as `kubelab describe pod` shows them.
"""

from __future__ import annotations

from collections.abc import Callable

from api import default_pull_policy
from proto import core_pb2, cri_pb2

from ._backoff import Backoff
from ._runtime import CRIError, Runtime

ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACKOFF = "ImagePullBackOff"
ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"

EventFunc = Callable[[str, str, str], None]  # (type, reason, message)


class ImagePullError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def pull_policy(container: core_pb2.Container) -> str:
    if container.imagePullPolicy:
        return container.imagePullPolicy
    return default_pull_policy(container.image)


class ImageManager:
    def __init__(self, runtime: Runtime, backoff: Backoff) -> None:
        self.runtime = runtime
        self.backoff = backoff

    async def ensure(self, pod: core_pb2.Pod, container: core_pb2.Container, sandbox: cri_pb2.PodSandboxConfig,
                     event: EventFunc) -> str:
        """The image reference to create the container from; raises
        ImagePullError with the waiting reason otherwise."""
        image = container.image
        policy = pull_policy(container)
        try:
            present = await self.runtime.image_status(image)
        except CRIError as err:
            raise ImagePullError(ERR_IMAGE_PULL, f"failed to inspect image {image!r}: {err.message}") from None
        if policy == "Never" or (policy == "IfNotPresent" and present is not None):
            if present is None:
                message = f'Container image "{image}" is not present with pull policy of Never'
                event("Warning", ERR_IMAGE_NEVER_PULL, message)
                raise ImagePullError(ERR_IMAGE_NEVER_PULL, message)
            event("Normal", "Pulled", f'Container image "{image}" already present on machine')
            return present.id
        key = f"{pod.metadata.uid}_{image}"
        if self.backoff.in_backoff_since_update(key):
            message = f'Back-off pulling image "{image}"'
            event("Normal", "BackOff", message)
            raise ImagePullError(IMAGE_PULL_BACKOFF, message)
        event("Normal", "Pulling", f'Pulling image "{image}"')
        started = self.backoff.clock.monotonic()
        try:
            ref = await self.runtime.pull_image(image, sandbox)
        except CRIError as err:
            self.backoff.next(key)
            message = f'Failed to pull image "{image}": {err.message}'
            event("Warning", "Failed", message)
            event("Warning", "Failed", f"Error: {ERR_IMAGE_PULL}")
            raise ImagePullError(ERR_IMAGE_PULL, message) from None
        took = self.backoff.clock.monotonic() - started
        event("Normal", "Pulled", f'Successfully pulled image "{image}" in {took:.3f}s')
        return ref
