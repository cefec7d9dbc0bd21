"""What the kubelet writes on sandboxes and containers so it can find its
way back: Kubernetes' `io.kubernetes.*` labels and annotations.

The runtime is the source of truth for what runs. Each sandbox carries the
pod's name, namespace and uid as labels; each container carries those plus
its container name, and as annotations its restart count and a hash of the
container spec it was created from. A kubelet that restarts (or a new one
on the same runtime) lists the runtime, reads these back, and adopts what
it finds: a running container whose hash still matches its spec is left
alone and its restart count carries on from the annotation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from google.protobuf.message import Message

from proto import core_pb2

POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
POD_UID = "io.kubernetes.pod.uid"
CONTAINER_NAME = "io.kubernetes.container.name"
CONTAINER_TYPE = "io.kubernetes.container.type"  # "init" or "regular"
CONTAINER_HASH = "io.kubernetes.container.hash"
RESTART_COUNT = "io.kubernetes.container.restartCount"
TERMINATION_MESSAGE_PATH = "io.kubernetes.container.terminationMessagePath"
GRACE_PERIOD = "io.kubernetes.pod.terminationGracePeriod"
KUBELET_MANAGED = "io.kubelab.kubelet.managed"

# Static pods (kubelet/_static.py) and their mirrors in the apiserver.
CONFIG_SOURCE = "kubernetes.io/config.source"
CONFIG_HASH = "kubernetes.io/config.hash"
CONFIG_MIRROR = "kubernetes.io/config.mirror"
CONFIG_SEEN = "kubernetes.io/config.seen"


def pod_labels(pod: core_pb2.Pod) -> dict[str, str]:
    meta = pod.metadata
    return {POD_NAME: meta.name, POD_NAMESPACE: meta.namespace, POD_UID: meta.uid, KUBELET_MANAGED: "true"}


def container_labels(pod: core_pb2.Pod, container: core_pb2.Container, init: bool) -> dict[str, str]:
    labels = pod_labels(pod)
    labels[CONTAINER_NAME] = container.name
    labels[CONTAINER_TYPE] = "init" if init else "regular"
    return labels


def container_annotations(pod: core_pb2.Pod, container: core_pb2.Container, restart_count: int) -> dict[str, str]:
    grace = pod.spec.terminationGracePeriodSeconds if pod.spec.HasField("terminationGracePeriodSeconds") else 30
    return {CONTAINER_HASH: container_hash(container), RESTART_COUNT: str(restart_count),
            TERMINATION_MESSAGE_PATH: container.terminationMessagePath, GRACE_PERIOD: str(grace)}


def container_hash(container: core_pb2.Container) -> str:
    """A stable hash of the spec a container was created from; a container
    whose spec changed (a new image) no longer matches and is replaced.
    Probes and resources are left out, as Kubernetes leaves out fields
    that can change without a restart."""
    spec = core_pb2.Container()
    spec.CopyFrom(container)
    for field in ("livenessProbe", "readinessProbe", "startupProbe", "resources", "resizePolicy"):
        spec.ClearField(field)
    return _digest(spec)


def _digest(message: Message) -> str:
    return hashlib.sha256(message.SerializeToString(deterministic=True)).hexdigest()[:16]


def restart_count(annotations: Mapping[str, str]) -> int:
    try:
        return int(annotations.get(RESTART_COUNT, "0"))
    except ValueError:
        return 0


def is_mirror_pod(pod: core_pb2.Pod) -> bool:
    return CONFIG_MIRROR in pod.metadata.annotations


def is_static_pod(pod: core_pb2.Pod) -> bool:
    return pod.metadata.annotations.get(CONFIG_SOURCE, "api") not in ("api", "")
