"""Strategies for the core group's storage kinds: PersistentVolume and
PersistentVolumeClaim.

A PV is a piece of storage (cluster-scoped, exactly one volume source); a
PVC is a namespaced request for one. Their rules exist so that binding is
sound: a PV's source never changes under a bound claim, a claim's spec is
frozen after creation (quota and limit ranges were charged against it) except
that a bound claim may grow. The PVC spec rules are shared with a
StatefulSet's volumeClaimTemplates, which become PVCs one per replica.
"""

from __future__ import annotations

import posixpath
from typing import Any

from api import (
    FieldError,
    Quantity,
    forbidden_field,
    invalid,
    is_dns1123_subdomain,
    not_supported,
    required,
    rfc3339,
)

from ._checks import immutable, optional_immutable, positive_quantity, quantity
from ._pod import validate_label_selector, validate_node_selector_term
from ._strategy import AGE, NAME, Column, Strategy

ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
VOLUME_MODES = ("Block", "Filesystem")
PV_PHASES = ("Pending", "Available", "Bound", "Released", "Failed")
PVC_PHASES = ("Pending", "Bound", "Lost")
_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
_SHORT_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                ("ReadWriteOncePod", "RWOP"))
# PersistentVolumeSpec's volume sources, in the order Kubernetes checks them.
_PV_SOURCES = ("hostPath", "gcePersistentDisk", "awsElasticBlockStore", "nfs", "iscsi", "local", "csi")


def access_modes_text(modes: Any) -> str:
    """RWO,ROX,RWX,RWOP as kubectl abbreviates access modes."""
    return ",".join(short for mode, short in _SHORT_MODES if mode in modes)


def _validate_access_modes(modes: Any, path: str, detail: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not modes:
        errs.append(required(path, detail))
    for mode in modes:
        if mode not in ACCESS_MODES:
            errs.append(not_supported(path, mode, ACCESS_MODES))
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        errs.append(forbidden_field(path, "may not use ReadWriteOncePod with other access modes"))
    return errs


def _class_name(name: str, path: str) -> list[FieldError]:
    return [invalid(path, name, m) for m in is_dns1123_subdomain(name)]


# ---------------------------------------------------------------- PVC spec

def default_claim_spec(spec: Any) -> None:
    if not spec.HasField("volumeMode"):
        spec.volumeMode = "Filesystem"


def validate_claim_spec(spec: Any, path: str) -> list[FieldError]:
    """A claim's spec, on its own or as a StatefulSet's volumeClaimTemplate."""
    errs = _validate_access_modes(spec.accessModes, f"{path}.accessModes", "at least 1 access mode is required")
    if spec.HasField("selector"):
        errs += validate_label_selector(spec.selector, f"{path}.selector")
    storage_path = f"{path}.resources[storage]"
    if "storage" not in spec.resources.requests:
        errs.append(required(storage_path))
    else:
        errs += positive_quantity(spec.resources.requests["storage"], storage_path)
    if spec.HasField("storageClassName") and spec.storageClassName:
        errs += _class_name(spec.storageClassName, f"{path}.storageClassName")
    if spec.HasField("volumeMode") and spec.volumeMode not in VOLUME_MODES:
        errs.append(not_supported(f"{path}.volumeMode", spec.volumeMode, VOLUME_MODES))
    return errs


# ---------------------------------------------------------------- PersistentVolume


def _pv_claim(pv: Any, now: float) -> str:
    ref = pv.spec.claimRef
    return f"{ref.namespace}/{ref.name}" if pv.spec.HasField("claimRef") else ""


def _terminating_or(phase: str, obj: Any) -> str:
    return "Terminating" if obj.metadata.deletionTimestamp else phase


def _storage_class(obj: Any, spec_class: str) -> str:
    return obj.metadata.annotations.get(_CLASS_ANNOTATION, spec_class)


def _validate_pv_source(spec: Any, which: str, path: str) -> list[FieldError]:
    src = getattr(spec, which)
    needs = {"hostPath": ("path",), "gcePersistentDisk": ("pdName",), "awsElasticBlockStore": ("volumeID",),
             "nfs": ("server", "path"), "iscsi": ("targetPortal", "iqn"), "local": ("path",),
             "csi": ("driver", "volumeHandle")}[which]
    errs = [required(f"{path}.{field}") for field in needs if not getattr(src, field)]
    if which == "nfs" and src.path and not src.path.startswith("/"):
        errs.append(invalid(f"{path}.path", src.path, "must be an absolute path"))
    if which == "local" and not spec.HasField("nodeAffinity"):
        errs.append(required("spec.nodeAffinity", "Local volume requires node affinity"))
    return errs


class PersistentVolumeStrategy(Strategy):
    selectable_fields = ("status.phase",)
    columns = (
        NAME,
        Column("Capacity", lambda o, now: o.spec.capacity["storage"].value if "storage" in o.spec.capacity else "0"),
        Column("Access Modes", lambda o, now: access_modes_text(o.spec.accessModes)),
        Column("Reclaim Policy", lambda o, now: o.spec.persistentVolumeReclaimPolicy),
        Column("Status", lambda o, now: _terminating_or(o.status.phase, o)),
        Column("Claim", _pv_claim),
        Column("StorageClass", lambda o, now: _storage_class(o, o.spec.storageClassName)),
        Column("VolumeAttributesClass", lambda o, now: o.spec.volumeAttributesClassName
               if o.spec.HasField("volumeAttributesClassName") else "<unset>"),
        Column("Reason", lambda o, now: o.status.reason),
        AGE,
        Column("VolumeMode", lambda o, now: o.spec.volumeMode if o.spec.HasField("volumeMode") else "<unset>", 1),
    )

    def prepare_for_create(self, obj: Any, now: float) -> None:
        super().prepare_for_create(obj, now)
        obj.status.phase = "Pending"
        obj.status.lastPhaseTransitionTime = rfc3339(now)

    def default(self, obj: Any) -> None:
        spec = obj.spec
        spec.persistentVolumeReclaimPolicy = spec.persistentVolumeReclaimPolicy or "Retain"
        if not spec.HasField("volumeMode"):
            spec.volumeMode = "Filesystem"
        if spec.HasField("hostPath") and not spec.hostPath.HasField("type"):
            spec.hostPath.type = ""

    def validate(self, obj: Any) -> list[FieldError]:
        spec = obj.spec
        errs = _validate_access_modes(spec.accessModes, "spec.accessModes", "")
        if not spec.capacity:
            errs.append(required("spec.capacity"))
        if "storage" not in spec.capacity or len(spec.capacity) > 1:
            errs.append(not_supported("spec.capacity", sorted(spec.capacity), ["storage"]))
        for name, q in spec.capacity.items():
            errs += positive_quantity(q, f"spec.capacity[{name}]")
        if spec.storageClassName:
            errs += _class_name(spec.storageClassName, "spec.storageClassName")
        if spec.HasField("volumeMode") and spec.volumeMode not in VOLUME_MODES:
            errs.append(not_supported("spec.volumeMode", spec.volumeMode, VOLUME_MODES))
        policy = spec.persistentVolumeReclaimPolicy
        if policy and policy not in RECLAIM_POLICIES:
            errs.append(not_supported("spec.persistentVolumeReclaimPolicy", policy, RECLAIM_POLICIES))
        sources = [s for s in _PV_SOURCES if spec.HasField(s)]
        if not sources:
            errs.append(required("spec", "must specify a volume type"))
        for extra in sources[1:]:
            errs.append(forbidden_field(f"spec.{extra}", "may not specify more than 1 volume type"))
        if sources:
            errs += _validate_pv_source(spec, sources[0], f"spec.{sources[0]}")
        if spec.HasField("hostPath") and posixpath.normpath(spec.hostPath.path or ".") == "/" and policy == "Recycle":
            errs.append(forbidden_field("spec.persistentVolumeReclaimPolicy",
                                        "may not be 'recycle' for a hostPath mount of '/'"))
        for i, term in enumerate(spec.nodeAffinity.required.nodeSelectorTerms):
            errs += validate_node_selector_term(term, f"spec.nodeAffinity.required.nodeSelectorTerms[{i}]")
        return errs

    def validate_update(self, obj: Any, old: Any) -> list[FieldError]:
        errs = self.validate(obj)
        for source in _PV_SOURCES:
            if obj.spec.HasField(source) != old.spec.HasField(source) or \
                    getattr(obj.spec, source) != getattr(old.spec, source):
                errs.append(forbidden_field("spec.persistentvolumesource",
                                            "spec.persistentvolumesource is immutable after creation"))
                break
        errs += optional_immutable(obj.spec, old.spec, "volumeMode", "spec.volumeMode")
        if old.spec.HasField("nodeAffinity"):
            errs += immutable(obj.spec.nodeAffinity, old.spec.nodeAffinity, "spec.nodeAffinity")
        return errs

    def validate_status_update(self, obj: Any, old: Any) -> list[FieldError]:
        phase = obj.status.phase
        if phase and phase not in PV_PHASES:
            return [not_supported("status.phase", phase, PV_PHASES)]
        return []

    def fields(self, obj: Any) -> dict[str, str]:
        return {"status.phase": obj.status.phase}


# ---------------------------------------------------------------- PersistentVolumeClaim


def _pvc_capacity(pvc: Any, now: float) -> str:
    if not pvc.spec.volumeName:
        return ""
    return pvc.status.capacity["storage"].value if "storage" in pvc.status.capacity else "0"


class PersistentVolumeClaimStrategy(Strategy):
    columns = (
        NAME,
        Column("Status", lambda o, now: _terminating_or(o.status.phase, o)),
        Column("Volume", lambda o, now: o.spec.volumeName),
        Column("Capacity", _pvc_capacity),
        Column("Access Modes", lambda o, now: access_modes_text(o.status.accessModes) if o.spec.volumeName else ""),
        Column("StorageClass", lambda o, now: _storage_class(
            o, o.spec.storageClassName if o.spec.HasField("storageClassName") else "")),
        Column("VolumeAttributesClass", lambda o, now: o.spec.volumeAttributesClassName
               if o.spec.HasField("volumeAttributesClassName") else "<unset>"),
        AGE,
        Column("VolumeMode", lambda o, now: o.spec.volumeMode if o.spec.HasField("volumeMode") else "<unset>", 1),
    )

    def prepare_for_create(self, obj: Any, now: float) -> None:
        super().prepare_for_create(obj, now)
        obj.status.phase = "Pending"

    def default(self, obj: Any) -> None:
        default_claim_spec(obj.spec)

    def validate(self, obj: Any) -> list[FieldError]:
        return validate_claim_spec(obj.spec, "spec")

    def validate_update(self, obj: Any, old: Any) -> list[FieldError]:
        errs = self.validate(obj)
        allowed = type(old.spec)()
        allowed.CopyFrom(old.spec)
        # The binder sets volumeName once; a bound claim may be resized and
        # may move to another VolumeAttributesClass.
        if not old.spec.volumeName:
            allowed.volumeName = obj.spec.volumeName
        bound = obj.status.phase == "Bound"
        if bound:
            if "storage" in obj.spec.resources.requests:
                allowed.resources.requests["storage"].CopyFrom(obj.spec.resources.requests["storage"])
            if obj.spec.HasField("volumeAttributesClassName"):
                allowed.volumeAttributesClassName = obj.spec.volumeAttributesClassName
        if allowed.SerializeToString(deterministic=True) != obj.spec.SerializeToString(deterministic=True):
            errs.append(forbidden_field("spec", "spec is immutable after creation except resources.requests and "
                                                "volumeAttributesClassName for bound claims"))
        new_size, _ = quantity(obj.spec.resources.requests["storage"], "") \
            if "storage" in obj.spec.resources.requests else (None, [])
        old_size, _ = quantity(old.spec.resources.requests["storage"], "") \
            if "storage" in old.spec.resources.requests else (None, [])
        if isinstance(new_size, Quantity) and isinstance(old_size, Quantity) and new_size < old_size:
            errs.append(forbidden_field("spec.resources.requests.storage", "field can not be less than previous value"))
        errs += optional_immutable(obj.spec, old.spec, "volumeMode", "spec.volumeMode")
        return errs

    def validate_status_update(self, obj: Any, old: Any) -> list[FieldError]:
        phase = obj.status.phase
        if phase and phase not in PVC_PHASES:
            return [not_supported("status.phase", phase, PVC_PHASES)]
        return []
