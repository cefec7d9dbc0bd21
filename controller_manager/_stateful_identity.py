"""A StatefulSet pod's identity and storage.

Each pod of StatefulSet `web` has an ordinal and is named `web-<ordinal>`,
whatever node it lands on and however often it is recreated. Its hostname
is its name and its subdomain the set's serviceName, so with the headless
Service of that name it resolves as `web-0.<serviceName>.<ns>.svc...`. The
labels `statefulset.kubernetes.io/pod-name` (a Service may select one pod)
and `apps.kubernetes.io/pod-index` say who it is.

Each volumeClaimTemplate gives each ordinal its own PersistentVolumeClaim,
`<template>-<set>-<ordinal>`, created before the pod and never deleted by
a rescheduling: the recreated pod mounts the same claim. Claims are
removed only as persistentVolumeClaimRetentionPolicy asks, through owner
references the garbage collector follows: whenDeleted=Delete makes the set
an owner of every claim it creates; whenScaled=Delete makes a condemned
pod the owner of its claims just before the pod is deleted.
"""

from __future__ import annotations

import re

from api import SCHEME
from proto import apps_pb2, core_pb2, meta_pb2

from ._history import HASH_LABEL
from ._owner import new_controller_ref

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
STATEFULSET_KIND = SCHEME.for_message(apps_pb2.StatefulSet)
POD_KIND = SCHEME.for_message(core_pb2.Pod)

_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")


def pod_name(set_name: str, ordinal: int) -> str:
    return f"{set_name}-{ordinal}"


def ordinal_of(set_name: str, pod: core_pb2.Pod) -> int | None:
    """The ordinal of a pod named `<set>-<n>`, else None (not a member)."""
    m = _ORDINAL.match(pod.metadata.name)
    if m is None or m.group(1) != set_name:
        return None
    return int(m.group(2))


def claim_name(template: core_pb2.PersistentVolumeClaim, set_name: str, ordinal: int) -> str:
    return f"{template.metadata.name}-{set_name}-{ordinal}"


def new_pod(sts: apps_pb2.StatefulSet, template: core_pb2.PodTemplateSpec, ordinal: int,
            revision: str) -> core_pb2.Pod:
    """Pod `ordinal` of the set, from `template` (of `revision`)."""
    name = pod_name(sts.metadata.name, ordinal)
    pod = core_pb2.Pod()
    pod.metadata.name = name
    pod.metadata.namespace = sts.metadata.namespace
    pod.metadata.labels.update(template.metadata.labels)
    pod.metadata.labels[POD_NAME_LABEL] = name
    pod.metadata.labels[POD_INDEX_LABEL] = str(ordinal)
    pod.metadata.labels[HASH_LABEL] = revision
    pod.metadata.annotations.update(template.metadata.annotations)
    pod.metadata.ownerReferences.append(new_controller_ref(sts, STATEFULSET_KIND))
    pod.spec.CopyFrom(template.spec)
    pod.spec.hostname = name
    if sts.spec.serviceName:
        pod.spec.subdomain = sts.spec.serviceName
    mount_claims(sts, pod, ordinal)
    return pod


def mount_claims(sts: apps_pb2.StatefulSet, pod: core_pb2.Pod, ordinal: int) -> None:
    """Each claim template becomes the volume of that name, bound to this
    ordinal's claim (replacing a volume of the same name in the template)."""
    names = {t.metadata.name for t in sts.spec.volumeClaimTemplates}
    kept = [v for v in pod.spec.volumes if v.name not in names]
    volumes: list[core_pb2.Volume] = []
    for v in kept:
        copy = core_pb2.Volume()
        copy.CopyFrom(v)
        volumes.append(copy)
    for t in sts.spec.volumeClaimTemplates:
        volume = core_pb2.Volume(name=t.metadata.name)
        volume.persistentVolumeClaim.claimName = claim_name(t, sts.metadata.name, ordinal)
        volumes.append(volume)
    del pod.spec.volumes[:]
    pod.spec.volumes.extend(volumes)


def new_claims(sts: apps_pb2.StatefulSet, ordinal: int) -> list[core_pb2.PersistentVolumeClaim]:
    """The claims pod `ordinal` needs, as they are to be created."""
    claims = []
    delete_with_set = sts.spec.persistentVolumeClaimRetentionPolicy.whenDeleted == "Delete"
    for t in sts.spec.volumeClaimTemplates:
        claim = core_pb2.PersistentVolumeClaim()
        claim.metadata.name = claim_name(t, sts.metadata.name, ordinal)
        claim.metadata.namespace = sts.metadata.namespace
        claim.metadata.labels.update(t.metadata.labels)
        claim.metadata.labels.update(sts.spec.selector.matchLabels)
        claim.metadata.annotations.update(t.metadata.annotations)
        claim.spec.CopyFrom(t.spec)
        if delete_with_set:
            claim.metadata.ownerReferences.append(_plain_owner(new_controller_ref(sts, STATEFULSET_KIND)))
        claims.append(claim)
    return claims


def _plain_owner(ref: meta_pb2.OwnerReference) -> meta_pb2.OwnerReference:
    """An owner that is not the claim's controller (claims have none)."""
    ref.controller = False
    return ref


def pod_owner_reference(pod: core_pb2.Pod) -> meta_pb2.OwnerReference:
    return _plain_owner(new_controller_ref(pod, POD_KIND))


def identity_labels_match(sts: apps_pb2.StatefulSet, pod: core_pb2.Pod, ordinal: int) -> bool:
    labels = pod.metadata.labels
    return labels.get(POD_NAME_LABEL) == pod.metadata.name and labels.get(POD_INDEX_LABEL) == str(ordinal)
