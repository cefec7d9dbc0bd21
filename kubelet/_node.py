"""The node's own object: registration, status and the node Lease.

* Registration creates the Node (labels kubernetes.io/hostname, os, arch;
  capacity and allocatable; addresses) or, when it exists (a restarted
  kubelet), takes it over as it is, merging the labels in.
* Status (every `node_status_update_frequency`, 10 s): conditions
  MemoryPressure, DiskPressure, PIDPressure and Ready, addresses
  (InternalIP = --node-ip, Hostname), capacity/allocatable, nodeInfo,
  daemonEndpoints and the images the runtime holds. It is written when it
  changed, and at least every `node_status_report_frequency` (5 min): the
  Lease is the heartbeat, as in Kubernetes.
* The Lease `kube-node-lease/<node>` is renewed every duration/4 (10 s for
  the default 40 s) and owned by the Node, so it goes when the Node goes.
* The node's spec.podCIDR (set by the controller-manager's node IPAM) is
  passed to the runtime with UpdateRuntimeConfig when it first appears or
  changes.

Writes go onto the last copy of the Node/Lease this kubelet saw; a
Conflict re-reads and retries once, any other failure is logged and the
next period tries again. A kubelet cut off from the apiserver keeps its
pods running; the node lifecycle controller is the one that notices.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import platform
from collections.abc import Callable
from pathlib import Path

from api import Clock, StatusError, canonical_quantity, rfc3339, rfc3339_micro
from client import Clientset
from proto import coordination_pb2, core_pb2

from ._config import KubeletConfig, machine_arch
from ._runtime import CRIError, Runtime

log = logging.getLogger(__name__)

LEASE_NAMESPACE = "kube-node-lease"
KUBELET_VERSION = "v1.31.0-kubelab"
MAX_IMAGES = 50

# (type, True reason, True message, False reason, False message)
_PRESSURE = (
    ("MemoryPressure", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available",
     "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasDiskPressure", "kubelet has disk pressure",
     "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasInsufficientPID", "kubelet has insufficient PID available",
     "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
)


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


@functools.cache
def system_info() -> tuple[str, str, str, str]:
    """machine ID, boot ID, kernel, OS image: read once per process."""
    os_image = "Linux"
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            os_image = line.split("=", 1)[1].strip('"')
    return (_read("/etc/machine-id"), _read("/proc/sys/kernel/random/boot_id"), platform.release(), os_image)


class NodeStatusManager:
    def __init__(self, config: KubeletConfig, clientset: Clientset, runtime: Runtime, clock: Clock, *,
                 runtime_error: Callable[[], str], pressure: Callable[[], set[str]]) -> None:
        self.config = config
        self.clientset = clientset
        self.runtime = runtime
        self.clock = clock
        self.runtime_error = runtime_error    # "" when the runtime is healthy
        self.pressure = pressure              # condition types under pressure now
        self.node: core_pb2.Node | None = None
        self.lease: coordination_pb2.Lease | None = None
        self.pod_cidr = ""
        self._last_report = -1e18
        self._runtime_version = ""
        self._nodes = clientset.resource(core_pb2.Node)
        self._leases = clientset.resource(coordination_pb2.Lease, LEASE_NAMESPACE)

    # ------------------------------------------------------------ registration

    def initial_node(self) -> core_pb2.Node:
        c = self.config
        node = core_pb2.Node()
        node.metadata.name = c.node_name
        node.metadata.labels.update({"kubernetes.io/hostname": c.node_name, "kubernetes.io/os": "linux",
                                     "kubernetes.io/arch": machine_arch(), "beta.kubernetes.io/os": "linux",
                                     "beta.kubernetes.io/arch": machine_arch()})
        node.metadata.labels.update(c.labels)
        _resources(node.status, c)
        return node

    async def register(self) -> core_pb2.Node:
        """Create the Node, or adopt the one that exists. Retries until the
        apiserver answers (the caller bounds it by cancelling)."""
        delay = 0.5
        while True:
            try:
                node = await self._nodes.create(self.initial_node())
                log.info("%s: registered node", self.config.node_name)
                break
            except StatusError as err:
                if err.reason == "AlreadyExists":
                    node = await self._adopt()
                    break
                log.warning("%s: registering node: %s", self.config.node_name, err)
            await self.clock.sleep(delay)
            delay = min(delay * 2, 7.0)
        self.node_changed(node)
        return node

    async def _adopt(self) -> core_pb2.Node:
        node = await self._nodes.get(self.config.node_name)
        wanted = self.initial_node().metadata.labels
        if any(node.metadata.labels.get(k) != v for k, v in wanted.items()):
            node.metadata.labels.update(wanted)
            node = await self._nodes.update(node)
        return node

    def node_changed(self, node: core_pb2.Node) -> None:
        """The latest Node (from the informer or a write); hands a new
        podCIDR to the runtime."""
        if self.node is not None and node.metadata.resourceVersion and self.node.metadata.resourceVersion and \
                int(node.metadata.resourceVersion) < int(self.node.metadata.resourceVersion):
            return
        self.node = node
        cidr = node.spec.podCIDR
        if cidr and cidr != self.pod_cidr:
            self.pod_cidr = cidr
            asyncio.get_running_loop().create_task(self._push_cidr(cidr))

    async def _push_cidr(self, cidr: str) -> None:
        try:
            await self.runtime.update_runtime_config(cidr)
            log.info("%s: pod CIDR %s handed to the runtime", self.config.node_name, cidr)
        except CRIError as err:
            log.warning("%s: UpdateRuntimeConfig(%s): %s", self.config.node_name, cidr, err)
            self.pod_cidr = ""  # try again with the next status update

    # ------------------------------------------------------------ status

    async def build_status(self) -> core_pb2.NodeStatus:
        c = self.config
        assert self.node is not None
        old = self.node.status
        now = rfc3339(self.clock.now())
        status = core_pb2.NodeStatus()
        _resources(status, c)
        status.phase = "Running"
        pressure = self.pressure()
        for type_, true_reason, true_message, false_reason, false_message in _PRESSURE:
            on = type_ in pressure
            self._condition(status, old, type_, on, true_reason if on else false_reason,
                            true_message if on else false_message, now)
        problem = self.runtime_error()
        if not problem:
            problem = await self._runtime_status()
        if problem:
            self._condition(status, old, "Ready", False, "KubeletNotReady", problem, now)
        else:
            self._condition(status, old, "Ready", True, "KubeletReady", "kubelet is posting ready status", now)
        status.addresses.add(type="InternalIP", address=c.node_ip)
        status.addresses.add(type="Hostname", address=c.node_name)
        status.daemonEndpoints.kubeletEndpoint.Port = c.port
        machine_id, boot_id, kernel, os_image = system_info()
        info = status.nodeInfo
        info.machineID, info.systemUUID, info.bootID = machine_id, machine_id, boot_id
        info.kernelVersion, info.osImage = kernel, os_image
        info.containerRuntimeVersion = self._runtime_version
        info.kubeletVersion, info.kubeProxyVersion = KUBELET_VERSION, KUBELET_VERSION
        info.operatingSystem, info.architecture = "linux", machine_arch()
        try:
            images = sorted(await self.runtime.list_images(), key=lambda i: i.size, reverse=True)
        except CRIError:
            images = []
        for image in images[:MAX_IMAGES]:
            status.images.add(names=list(image.repo_digests) + list(image.repo_tags), sizeBytes=image.size)
        return status

    async def _runtime_status(self) -> str:
        try:
            if not self._runtime_version:
                v = await self.runtime.version()
                self._runtime_version = f"{v.runtime_name}://{v.runtime_version}"
            resp = await self.runtime.status()
        except CRIError as err:
            return f"container runtime is down: {err}"
        for cond in resp.conditions:
            if cond.type in ("RuntimeReady", "NetworkReady") and not cond.status:
                return f"container runtime {'network ' if cond.type == 'NetworkReady' else ''}not ready: " \
                       f"{cond.type}=false reason:{cond.reason} message:{cond.message}"
        return ""

    @staticmethod
    def _condition(status: core_pb2.NodeStatus, old: core_pb2.NodeStatus, type_: str, on: bool, reason: str,
                   message: str, now: str) -> None:
        value = "True" if on else "False"
        since = now
        for c in old.conditions:
            if c.type == type_ and c.status == value:
                since = c.lastTransitionTime or now
        status.conditions.add(type=type_, status=value, reason=reason, message=message, lastHeartbeatTime=now,
                              lastTransitionTime=since)

    async def update_status(self, *, force: bool = False) -> bool:
        """Write the node status if it changed (or is due); True if written."""
        if self.node is None:
            return False
        status = await self.build_status()
        due = self.clock.monotonic() - self._last_report >= self.config.node_status_report_frequency
        if not force and not due and _same(status, self.node.status):
            return False
        node = core_pb2.Node()
        node.CopyFrom(self.node)
        for attempt in range(2):
            node.status.CopyFrom(status)
            try:
                written = await self._nodes.update_status(node)
            except StatusError as err:
                if err.reason == "Conflict" and attempt == 0:
                    node = await self._nodes.get(self.config.node_name)
                    continue
                if err.reason == "NotFound":
                    log.warning("%s: the Node was deleted; registering again", self.config.node_name)
                    await self.register()
                    return False
                raise
            self._last_report = self.clock.monotonic()
            self.node_changed(written)
            return True
        return False

    async def run_status_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.update_status()
            except (StatusError, CRIError) as err:
                log.warning("%s: updating node status: %s", self.config.node_name, err)
            await self.clock.sleep(self.config.node_status_update_frequency)

    # ------------------------------------------------------------ lease

    async def renew_lease(self) -> None:
        c = self.config
        now = rfc3339_micro(self.clock.now())
        lease = self.lease
        if lease is None:
            try:
                lease = await self._leases.get(c.node_name)
            except StatusError as err:
                if err.reason != "NotFound":
                    raise
                new = coordination_pb2.Lease()
                new.metadata.name, new.metadata.namespace = c.node_name, LEASE_NAMESPACE
                if self.node is not None:
                    new.metadata.ownerReferences.add(apiVersion="v1", kind="Node", name=c.node_name,
                                                     uid=self.node.metadata.uid)
                new.spec.holderIdentity, new.spec.leaseDurationSeconds = c.node_name, c.node_lease_duration
                new.spec.renewTime = now
                self.lease = await self._leases.create(new)
                return
        updated = coordination_pb2.Lease()
        updated.CopyFrom(lease)
        updated.spec.holderIdentity, updated.spec.leaseDurationSeconds = c.node_name, c.node_lease_duration
        updated.spec.renewTime = now
        try:
            self.lease = await self._leases.update(updated)
        except StatusError as err:
            self.lease = None  # read it again next time
            if err.reason in ("Conflict", "NotFound"):
                await self.renew_lease()
                return
            raise

    async def run_lease_loop(self, stop: asyncio.Event) -> None:
        interval = self.config.node_lease_duration / 4
        while not stop.is_set():
            try:
                await self.renew_lease()
            except StatusError as err:
                log.warning("%s: renewing lease: %s", self.config.node_name, err)
                await self.clock.sleep(min(interval, 1.0))  # Kubernetes retries a failed renewal sooner
                continue
            await self.clock.sleep(interval)


def _resources(status: core_pb2.NodeStatus, c: KubeletConfig) -> None:
    for name, value in c.capacity().items():
        status.capacity[name].value = canonical_quantity(value)
    for name, value in c.allocatable().items():
        status.allocatable[name].value = canonical_quantity(value)


def _same(a: core_pb2.NodeStatus, b: core_pb2.NodeStatus) -> bool:
    """Equal but for the heartbeat times."""
    x, y = core_pb2.NodeStatus(), core_pb2.NodeStatus()
    x.CopyFrom(a)
    y.CopyFrom(b)
    for s in (x, y):
        for cond in s.conditions:
            cond.lastHeartbeatTime = ""
    return x == y
