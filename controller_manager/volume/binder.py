"""The PersistentVolume binder: claims get volumes, released volumes are
reclaimed (Kubernetes' persistentvolume-binder).

One work queue carries both kinds' keys: a claim's is `namespace/name`, a
volume's (cluster-scoped) is its bare name, so `sync` tells them apart by
the slash. Each side only ever moves its object one step towards "both
agree they are bound":

Claims. A claim without a volume gets the smallest Available volume that
satisfies it - same storage class, every requested access mode, the same
volume mode, at least the requested size, labels matching the claim's
selector - or a volume pre-bound to it by name. Binding writes the
volume's claimRef (with the claim's uid) and phase Bound first, then the
claim's volumeName and phase Bound with the volume's capacity and access
modes; every step is a compare-and-swap on what the cache showed, so two
claims racing for one volume cannot both win. No volume: a claim of a
class served by the hostPath provisioner gets one made for it (see
provisioner.py); other claims wait (event FailedBinding or
ExternalProvisioning). A claim with no storageClassName at all is given
the default class, as Kubernetes' retroactive default assignment does. A
class with volumeBindingMode WaitForFirstConsumer binds only once the
scheduler has annotated the claim with its node.

A bound claim whose volume vanished is Lost.

Volumes. A volume without claimRef is Available. One whose claim (checked
by uid, and against the API before anything irreversible) is gone is
Released and reclaimed by its policy: Retain keeps it Released for an
admin; Delete removes it (a hostPath volume this controller provisioned:
its directory, then the object; any other: Failed, since nothing here can
delete it); Recycle is not supported (Failed, as in current Kubernetes).

`--pvclaimbinder-sync-period` re-queues every claim and volume
periodically, so a volume created for a claim that gave up waiting is
still found.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any

import component_base
from api import Quantity, StatusError, selector_from_message
from client import split_key
from proto import core_pb2, storage_pb2

from .._controller import Controller, ControllerContext
from .._podutil import unwrap
from .provisioner import DEFAULT_CLASS_ANNOTATION, DEFAULT_DIR, HostPathProvisioner, default_storage_class

log = logging.getLogger(__name__)

PV = core_pb2.PersistentVolume
PVC = core_pb2.PersistentVolumeClaim
StorageClass = storage_pb2.StorageClass

BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"


def claim_class(claim: PVC) -> str | None:
    """The class a claim asks for; None when it names none at all."""
    if BETA_CLASS_ANNOTATION in claim.metadata.annotations:
        return claim.metadata.annotations[BETA_CLASS_ANNOTATION]
    return claim.spec.storageClassName if claim.spec.HasField("storageClassName") else None


def volume_class(pv: PV) -> str:
    return pv.metadata.annotations.get(BETA_CLASS_ANNOTATION, pv.spec.storageClassName)


def _size(q: Any) -> Quantity:
    try:
        return Quantity.parse(q.value)
    except ValueError:
        return Quantity(0)


def satisfies(pv: PV, claim: PVC, cls: str) -> bool:
    """Whether a volume can serve a claim (ignoring who it is bound to)."""
    if pv.metadata.deletionTimestamp or volume_class(pv) != cls:
        return False
    if not set(claim.spec.accessModes) <= set(pv.spec.accessModes):
        return False
    mode = claim.spec.volumeMode if claim.spec.HasField("volumeMode") else "Filesystem"
    if (pv.spec.volumeMode if pv.spec.HasField("volumeMode") else "Filesystem") != mode:
        return False
    if "storage" in claim.spec.resources.requests and \
            _size(pv.spec.capacity["storage"]) < _size(claim.spec.resources.requests["storage"]):
        return False
    return not (claim.spec.HasField("selector") and
                not selector_from_message(claim.spec.selector).matches(dict(pv.metadata.labels)))


def _claim_ref(claim: PVC) -> core_pb2.ObjectReference:
    return core_pb2.ObjectReference(kind="PersistentVolumeClaim", apiVersion="v1",
                                    namespace=claim.metadata.namespace, name=claim.metadata.name,
                                    uid=claim.metadata.uid, resourceVersion=claim.metadata.resourceVersion)


def _refers_to(pv: PV, claim: PVC) -> bool:
    ref = pv.spec.claimRef
    return pv.spec.HasField("claimRef") and ref.namespace == claim.metadata.namespace and \
        ref.name == claim.metadata.name and ref.uid in ("", claim.metadata.uid)


class PersistentVolumeController(Controller):
    name = "persistentvolume-binder"
    event_source = "persistentvolume-controller"
    default_workers = 1

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        self.sync_period = float(getattr(opts, "pvclaimbinder_sync_period", 15.0))
        self.default_class_name = str(getattr(opts, "default_storage_class", "standard"))
        enabled = bool(getattr(opts, "enable_hostpath_provisioner", True))
        self.provisioner = HostPathProvisioner(getattr(opts, "hostpath_provisioner_dir", DEFAULT_DIR)) \
            if enabled else None
        volumes = ctx.informers.informer_for(PV)
        claims = ctx.informers.informer_for(PVC)
        classes = ctx.informers.informer_for(StorageClass)
        self.volumes = volumes.lister()
        self.claims = claims.lister()
        self.classes = classes.lister()
        volumes.add_event_handler(on_add=self._volume_changed, on_update=lambda _old, new: self._volume_changed(new),
                                  on_delete=lambda pv: self._volume_changed(unwrap(pv)))
        claims.add_event_handler(on_add=self._claim_changed, on_update=lambda _old, new: self._claim_changed(new),
                                 on_delete=lambda pvc: self._claim_changed(unwrap(pvc)))
        classes.add_event_handler(on_add=lambda _sc: self._enqueue_unbound(),
                                  on_update=lambda _old, _new: self._enqueue_unbound())

    @classmethod
    def add_flags(cls, parser: argparse.ArgumentParser) -> None:
        g = parser.add_argument_group("persistent volume binder")
        g.add_argument("--pvclaimbinder-sync-period", type=float, default=15.0, metavar="SECONDS",
                       help="how often every claim and volume is looked at again (default %(default)s)")
        g.add_argument("--enable-hostpath-provisioner", type=component_base.boolean, default=True, metavar="BOOL",
                       help="provision hostPath volumes for classes of provisioner kubernetes.io/host-path "
                            "(default %(default)s)")
        g.add_argument("--hostpath-provisioner-dir", default=DEFAULT_DIR, metavar="DIR",
                       help="where provisioned hostPath volumes live (default %(default)s)")
        g.add_argument("--default-storage-class", default="standard", metavar="NAME",
                       help="create this StorageClass, marked default and served by the hostPath provisioner, "
                            "when no class is marked default; empty: do not (default %(default)s)")

    # ------------------------------------------------------------ handlers

    def _volume_changed(self, pv: PV) -> None:
        self.queue.add(pv.metadata.name)
        if pv.spec.HasField("claimRef") and pv.spec.claimRef.name:
            self.queue.add(f"{pv.spec.claimRef.namespace}/{pv.spec.claimRef.name}")
        elif not pv.metadata.deletionTimestamp:
            self._enqueue_unbound()  # a new free volume may fit a waiting claim

    def _claim_changed(self, claim: PVC) -> None:
        self.queue.add(f"{claim.metadata.namespace}/{claim.metadata.name}")
        if claim.spec.volumeName:
            self.queue.add(claim.spec.volumeName)

    def _enqueue_unbound(self) -> None:
        for claim in self.claims.list():
            if not claim.spec.volumeName:
                self.queue.add(f"{claim.metadata.namespace}/{claim.metadata.name}")

    # ------------------------------------------------------------ run

    async def run(self, workers: int) -> None:
        await self.ensure_default_class()
        await super().run(workers)

    def periodic(self) -> list[tuple[float, Callable[[], None], bool]]:
        return [(self.sync_period, self.resync, False)]

    def resync(self) -> None:
        for claim in self.claims.list():
            self.queue.add(f"{claim.metadata.namespace}/{claim.metadata.name}")
        for pv in self.volumes.list():
            self.queue.add(pv.metadata.name)

    async def ensure_default_class(self) -> None:
        if not self.default_class_name or self.provisioner is None:
            return
        classes = self.classes.list()
        if any(c.metadata.annotations.get(DEFAULT_CLASS_ANNOTATION) == "true" for c in classes) or \
                any(c.metadata.name == self.default_class_name for c in classes):
            return
        try:
            await self.clientset.resource(StorageClass).create(default_storage_class(self.default_class_name))
            log.info("created the default StorageClass %r (hostPath provisioner)", self.default_class_name)
        except StatusError as err:
            if err.reason != "AlreadyExists":
                log.warning("could not create the default StorageClass %r: %s", self.default_class_name, err)

    def default_class(self) -> StorageClass | None:
        defaults = [c for c in self.classes.list() if c.metadata.annotations.get(DEFAULT_CLASS_ANNOTATION) == "true"]
        # Several defaults: the newest wins, as in Kubernetes.
        return max(defaults, key=lambda c: (c.metadata.creationTimestamp, c.metadata.name), default=None)

    def _class(self, name: str) -> StorageClass | None:
        try:
            return self.classes.get("", name) if name else None
        except StatusError:
            return None

    # ------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        if "/" in key:
            namespace, name = split_key(key)
            try:
                claim = self.claims.get(namespace, name)
            except StatusError as err:
                if err.reason == "NotFound":
                    return
                raise
            if claim.metadata.deletionTimestamp:
                return
            if claim.spec.volumeName:
                await self._sync_bound_claim(claim)
            else:
                await self._sync_unbound_claim(claim)
            return
        try:
            pv = self.volumes.get("", key)
        except StatusError as err:
            if err.reason == "NotFound":
                return
            raise
        await self._sync_volume(pv)

    async def _sync_unbound_claim(self, claim: PVC) -> None:
        cls = claim_class(claim)
        if cls is None:
            default = self.default_class()
            if default is not None:
                new = PVC()
                new.CopyFrom(claim)
                new.spec.storageClassName = default.metadata.name
                await self.clientset.resource(PVC, claim.metadata.namespace).update(new)
                return  # the update brings the claim back with its class
            cls = ""
        sc = self._class(cls)
        if sc is not None and sc.HasField("volumeBindingMode") and sc.volumeBindingMode == "WaitForFirstConsumer" \
                and SELECTED_NODE not in claim.metadata.annotations:
            self.recorder.event(claim, "Normal", "WaitForFirstConsumer",
                                "waiting for first consumer to be created before binding")
            return
        volume = self._find_volume(claim, cls)
        if volume is not None:
            await self._bind(volume, claim)
            return
        if sc is not None and self.provisioner is not None and sc.provisioner == self.provisioner.name:
            await self._provision(claim, sc)
        elif sc is not None:
            self.recorder.event(claim, "Normal", "ExternalProvisioning",
                                f"Waiting for a volume to be created either by the external provisioner "
                                f"'{sc.provisioner}' or manually by the system administrator.")
        else:
            self.recorder.event(claim, "Normal", "FailedBinding",
                                "no persistent volumes available for this claim and no storage class is set"
                                if not cls else f'storageclass.storage.k8s.io "{cls}" not found')
        await self._claim_phase(claim, "Pending")

    def _find_volume(self, claim: PVC, cls: str) -> PV | None:
        """A volume pre-bound to the claim, else the smallest free fit."""
        fits: list[PV] = []
        for pv in self.volumes.list():
            if pv.spec.HasField("claimRef") and pv.spec.claimRef.name:
                if _refers_to(pv, claim) and satisfies(pv, claim, cls):
                    return pv
                continue
            if pv.status.phase in ("Available", "Pending", "") and satisfies(pv, claim, cls):
                fits.append(pv)
        return min(fits, key=lambda v: (_size(v.spec.capacity["storage"]), v.metadata.name), default=None)

    async def _provision(self, claim: PVC, sc: StorageClass) -> None:
        assert self.provisioner is not None
        if claim.spec.HasField("selector"):
            self.recorder.event(claim, "Warning", "ProvisioningFailed",
                                "Failed to provision volume: claim.Spec.Selector is not supported for "
                                "dynamic provisioning")
            return
        pv = self.provisioner.volume_for(claim, sc)
        await self.provisioner.make_directory(pv)
        try:
            await self.clientset.resource(PV).create(pv)
        except StatusError as err:
            if err.reason != "AlreadyExists":
                self.recorder.event(claim, "Warning", "ProvisioningFailed", f"Failed to provision volume: {err}")
                raise
            return
        self.recorder.event(claim, "Normal", "ProvisioningSucceeded",
                            f"Successfully provisioned volume {pv.metadata.name} using {self.provisioner.name}")

    async def _bind(self, pv: PV, claim: PVC) -> None:
        """Both halves of a binding, volume first; each step skipped when
        already done, so an interrupted binding is finished by a retry."""
        volumes = self.clientset.resource(PV)
        if not (pv.spec.HasField("claimRef") and pv.spec.claimRef.uid == claim.metadata.uid):
            new = PV()
            new.CopyFrom(pv)
            if not (pv.spec.HasField("claimRef") and pv.spec.claimRef.name):
                new.metadata.annotations[BOUND_BY_CONTROLLER] = "yes"
            new.spec.claimRef.CopyFrom(_claim_ref(claim))
            pv = await volumes.update(new)
        if pv.status.phase != "Bound":
            new = PV()
            new.CopyFrom(pv)
            new.status.phase = "Bound"
            new.status.message = new.status.reason = ""
            pv = await volumes.update_status(new)
        claims = self.clientset.resource(PVC, claim.metadata.namespace)
        if claim.spec.volumeName != pv.metadata.name or claim.metadata.annotations.get(BIND_COMPLETED) != "yes":
            new_claim = PVC()
            new_claim.CopyFrom(claim)
            if not claim.spec.volumeName:
                new_claim.metadata.annotations[BOUND_BY_CONTROLLER] = "yes"
            new_claim.spec.volumeName = pv.metadata.name
            new_claim.metadata.annotations[BIND_COMPLETED] = "yes"
            claim = await claims.update(new_claim)
        status = claim.status
        if status.phase != "Bound" or list(status.accessModes) != list(pv.spec.accessModes) or \
                dict((k, v.value) for k, v in status.capacity.items()) != \
                dict((k, v.value) for k, v in pv.spec.capacity.items()):
            new_claim = PVC()
            new_claim.CopyFrom(claim)
            new_claim.status.phase = "Bound"
            del new_claim.status.accessModes[:]
            new_claim.status.accessModes.extend(pv.spec.accessModes)
            new_claim.status.capacity.clear()
            for name, q in pv.spec.capacity.items():
                new_claim.status.capacity[name].CopyFrom(q)
            await claims.update_status(new_claim)
            log.info("bound claim %s/%s to volume %s", claim.metadata.namespace, claim.metadata.name,
                     pv.metadata.name)

    async def _sync_bound_claim(self, claim: PVC) -> None:
        try:
            pv: PV | None = self.volumes.get("", claim.spec.volumeName)
        except StatusError:
            pv = None
        completed = claim.metadata.annotations.get(BIND_COMPLETED) == "yes"
        if pv is None:
            if completed and claim.status.phase != "Lost":
                self.recorder.event(claim, "Warning", "ClaimLost",
                                    "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
                await self._claim_phase(claim, "Lost")
            elif not completed:
                await self._claim_phase(claim, "Pending")
            return
        if not (pv.spec.HasField("claimRef") and pv.spec.claimRef.name) or _refers_to(pv, claim):
            cls = claim_class(claim) or ""
            if _refers_to(pv, claim) or satisfies(pv, claim, cls):
                await self._bind(pv, claim)
            else:
                self.recorder.event(claim, "Warning", "VolumeMismatch",
                                    "Cannot bind to requested volume: it does not satisfy the claim")
                await self._claim_phase(claim, "Pending")
            return
        if completed:
            if claim.status.phase != "Lost":
                self.recorder.event(claim, "Warning", "ClaimMisbound",
                                    "Two claims are bound to the same volume, this one is bound incorrectly")
                await self._claim_phase(claim, "Lost")
        else:
            self.recorder.event(claim, "Warning", "FailedBinding", "volume already bound to a different claim.")
            await self._claim_phase(claim, "Pending")

    async def _claim_phase(self, claim: PVC, phase: str) -> None:
        if claim.status.phase == phase:
            return
        new = PVC()
        new.CopyFrom(claim)
        new.status.phase = phase
        try:
            await self.clientset.resource(PVC, claim.metadata.namespace).update_status(new)
        except StatusError as err:
            if err.reason != "NotFound":
                raise

    async def _volume_phase(self, pv: PV, phase: str, message: str = "", reason: str = "") -> PV:
        if pv.status.phase == phase and pv.status.message == message:
            return pv
        new = PV()
        new.CopyFrom(pv)
        new.status.phase, new.status.message, new.status.reason = phase, message, reason
        return await self.clientset.resource(PV).update_status(new)

    async def _sync_volume(self, pv: PV) -> None:
        if pv.metadata.deletionTimestamp:
            return
        ref = pv.spec.claimRef
        if not (pv.spec.HasField("claimRef") and ref.name):
            await self._volume_phase(pv, "Available")
            return
        if not ref.uid:
            await self._volume_phase(pv, "Available")  # pre-bound by name: the claim's sync binds it
            return
        try:
            claim: PVC | None = self.claims.get(ref.namespace, ref.name)
        except StatusError:
            claim = None
        if claim is None or claim.metadata.uid != ref.uid:
            # Maybe only the cache is behind: ask before anything irreversible.
            try:
                fresh = await self.clientset.resource(PVC, ref.namespace).get(ref.name)
            except StatusError as err:
                if err.reason != "NotFound":
                    raise
                fresh = None
            if fresh is not None and fresh.metadata.uid == ref.uid:
                self.queue.add(f"{ref.namespace}/{ref.name}")
                return
            await self._release(pv)
            return
        if claim.spec.volumeName == pv.metadata.name:
            await self._volume_phase(pv, "Bound")
        elif not claim.spec.volumeName:
            self.queue.add(f"{ref.namespace}/{ref.name}")  # binding in progress: the claim's side finishes it
        elif pv.metadata.annotations.get(BOUND_BY_CONTROLLER) == "yes":
            # We reserved this volume for a claim that is bound elsewhere: free it.
            new = PV()
            new.CopyFrom(pv)
            new.spec.ClearField("claimRef")
            new.metadata.annotations.pop(BOUND_BY_CONTROLLER, None)
            pv = await self.clientset.resource(PV).update(new)
            await self._volume_phase(pv, "Available")

    async def _release(self, pv: PV) -> None:
        """The claim is gone: Released, then the reclaim policy."""
        if pv.status.phase not in ("Released", "Failed"):
            pv = await self._volume_phase(pv, "Released")
        if pv.status.phase == "Failed":
            return
        policy = pv.spec.persistentVolumeReclaimPolicy or "Retain"
        if policy == "Retain":
            return
        if policy == "Recycle":
            message = "Recycle is not supported: delete and re-create the volume instead"
            self.recorder.event(pv, "Warning", "VolumeFailedRecycle", message)
            await self._volume_phase(pv, "Failed", message)
            return
        if self.provisioner is None or not self.provisioner.owns(pv):
            message = "error getting deleter volume plugin for volume: no deletable volume plugin matched"
            self.recorder.event(pv, "Warning", "VolumeFailedDelete", message)
            await self._volume_phase(pv, "Failed", message)
            return
        try:
            await self.provisioner.delete(pv)
        except (OSError, ValueError) as err:
            self.recorder.event(pv, "Warning", "VolumeFailedDelete", str(err))
            await self._volume_phase(pv, "Failed", str(err))
            return
        try:
            await self.clientset.resource(PV).delete(pv.metadata.name, uid=pv.metadata.uid)
        except StatusError as err:
            if err.reason not in ("NotFound", "Conflict"):
                raise
            return  # deleted already (a second look before the cache caught up)
        log.info("deleted released volume %s (reclaim policy Delete)", pv.metadata.name)
