"""The Endpoints controller: every Service with a selector gets an
Endpoints object of the same name listing the pods behind it.

Keys are Service keys (`namespace/name`). A Service change, a change to any
pod its selector matches (before or after the change), and the deletion of
its Endpoints all enqueue the Service. `sync` reads the Service and the
matching pods from the caches and writes the Endpoints only when what it
computed differs from what is stored:

* a pod with an IP that is not finished (Succeeded/Failed) is listed: a
  Ready one under `addresses`, another under `notReadyAddresses`, unless
  the Service sets `publishNotReadyAddresses`, which lists every such pod
  as ready, terminating ones included;
* a terminating pod is left out (EndpointSlices keep it, marked
  terminating);
* a named `targetPort` is resolved per pod from its container ports (two
  pods may serve "http" on different numbers); a pod without the port is
  left out of that port's subset;
* addresses that serve the same set of ports share a subset, so the object
  is the same whatever order pods arrived in;
* past 1000 addresses the list is truncated and annotated, as Kubernetes
  does, since an Endpoints object has to fit in one etcd value.

A Service without a selector is left alone: its Endpoints are written by
hand (that is how a Service points outside the cluster). When a Service is
gone its Endpoints go too; at start every Endpoints object is checked once,
which removes those whose Service was deleted while the controller was not
running.

The pod helpers here (`serves_endpoints`, `find_port`, `endpoint_hostname`,
`watch_pods_of_services`) are shared with the EndpointSlice controller, which
follows the same rules.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from api import StatusError, selector_from_map, value_of
from client import Informer, Lister, split_key
from proto import core_pb2

from ._controller import Controller, ControllerContext
from ._podutil import is_pod_ready, unwrap

log = logging.getLogger(__name__)

#: An Endpoints object holds at most this many addresses (Kubernetes' maxCapacity).
MAX_CAPACITY = 1000
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
HEADLESS_LABEL = "service.kubernetes.io/headless"
#: Endpoints used as a leader-election lock by old components: never ours.
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"

Pod = core_pb2.Pod
Service = core_pb2.Service


# ------------------------------------------------------------------ pod helpers (shared with endpointslice)


def serves_endpoints(pod: Pod, include_terminating: bool) -> bool:
    """Whether a pod belongs in a Service's endpoints at all (Kubernetes'
    ShouldPodBeInEndpoints): it has an IP, it has not finished, and it is
    not terminating unless terminating pods are wanted."""
    if not pod.status.podIP:
        return False
    if pod.status.phase in ("Succeeded", "Failed"):
        return False
    return include_terminating or not pod.metadata.deletionTimestamp


def find_port(pod: Pod, port: core_pb2.ServicePort) -> int | None:
    """The container port a Service port's targetPort means on this pod;
    None when a named port is not declared by the pod."""
    target = value_of(port.targetPort)
    if target is None or target == 0 or target == "":
        return port.port
    if isinstance(target, int):
        return target
    protocol = port.protocol or "TCP"
    sidecars = [c for c in pod.spec.initContainers if c.HasField("restartPolicy") and c.restartPolicy == "Always"]
    for container in [*pod.spec.containers, *sidecars]:
        for cp in container.ports:
            if cp.name == target and (cp.protocol or "TCP") == protocol:
                return cp.containerPort
    return None


def endpoint_hostname(pod: Pod, svc: Service) -> str:
    """A pod's DNS hostname under this Service (a StatefulSet's `web-0`
    under its headless governing Service)."""
    if pod.spec.hostname and pod.spec.subdomain == svc.metadata.name and \
            pod.metadata.namespace == svc.metadata.namespace:
        return pod.spec.hostname
    return ""


def pod_reference(pod: Pod) -> core_pb2.ObjectReference:
    return core_pb2.ObjectReference(kind="Pod", namespace=pod.metadata.namespace, name=pod.metadata.name,
                                    uid=pod.metadata.uid)


def is_headless(svc: Service) -> bool:
    return svc.spec.clusterIP == "None"


def services_for_pod(services: list[Service], pod: Pod) -> list[Service]:
    """The Services (with selectors) in the pod's namespace that select it."""
    labels = dict(pod.metadata.labels)
    return [s for s in services if s.spec.selector and selector_from_map(s.spec.selector).matches(labels)]


def watch_pods_of_services(pods: Informer[Pod], services: Lister[Service], enqueue: Callable[[Service], None]) -> None:
    """Enqueue every Service selecting a pod when the pod comes, changes
    (selected by its old labels too) or goes."""
    def changed(pod: Pod) -> None:
        for svc in services_for_pod(services.list(pod.metadata.namespace), pod):
            enqueue(svc)

    def updated(old: Pod, new: Pod) -> None:
        changed(new)
        if old.metadata.labels != new.metadata.labels:
            changed(old)

    pods.add_event_handler(on_add=changed, on_update=updated, on_delete=lambda pod: changed(unwrap(pod)))


# ------------------------------------------------------------------ subsets


def _port_key(port: core_pb2.EndpointPort) -> tuple[str, int, str, str]:
    return port.name, port.port, port.protocol, port.appProtocol


def desired_subsets(svc: Service, pods: list[Pod]) -> list[core_pb2.EndpointSubset]:
    """The Endpoints subsets for `svc` given the pods its selector matches,
    in a canonical order (so equal inputs give equal objects)."""
    publish = svc.spec.publishNotReadyAddresses
    # address identity -> (address, ready, ports)
    entries: dict[tuple[str, str], tuple[core_pb2.EndpointAddress, bool, list[core_pb2.EndpointPort]]] = {}
    for pod in pods:
        if not serves_endpoints(pod, include_terminating=publish):
            continue
        address = core_pb2.EndpointAddress(ip=pod.status.podIP, targetRef=pod_reference(pod))
        if pod.spec.nodeName:
            address.nodeName = pod.spec.nodeName
        hostname = endpoint_hostname(pod, svc)
        if hostname:
            address.hostname = hostname
        ready = publish or is_pod_ready(pod)
        ports: list[core_pb2.EndpointPort] = []
        for sp in svc.spec.ports:
            number = find_port(pod, sp)
            if number is None:
                log.debug("pod %s/%s has no port %s for service %s", pod.metadata.namespace, pod.metadata.name,
                          value_of(sp.targetPort), svc.metadata.name)
                continue
            ep = core_pb2.EndpointPort(name=sp.name, port=number, protocol=sp.protocol or "TCP")
            if sp.HasField("appProtocol"):
                ep.appProtocol = sp.appProtocol
            ports.append(ep)
        if not ports and not (not svc.spec.ports and is_headless(svc)):
            continue  # serves none of the Service's ports
        entries[(pod.status.podIP, pod.metadata.uid)] = (address, ready, ports)

    groups: dict[tuple[tuple[str, int, str, str], ...], core_pb2.EndpointSubset] = {}
    for (_ip, _uid), (address, ready, ports) in sorted(entries.items()):
        ports = sorted(ports, key=_port_key)
        key = tuple(_port_key(p) for p in ports)
        subset = groups.get(key)
        if subset is None:
            subset = groups[key] = core_pb2.EndpointSubset(ports=ports)
        (subset.addresses if ready else subset.notReadyAddresses).append(address)
    return [groups[k] for k in sorted(groups)]


def truncate(subsets: list[core_pb2.EndpointSubset], capacity: int = MAX_CAPACITY) -> bool:
    """Cut the subsets down to `capacity` addresses in all, each subset in
    proportion to its size, ready addresses kept first. True if cut."""
    total = sum(len(s.addresses) + len(s.notReadyAddresses) for s in subsets)
    if total <= capacity:
        return False
    budget = capacity
    for i, subset in enumerate(subsets):
        size = len(subset.addresses) + len(subset.notReadyAddresses)
        keep = budget if i == len(subsets) - 1 else min(budget, size * capacity // total)
        budget -= keep
        ready = min(keep, len(subset.addresses))
        del subset.addresses[ready:]
        del subset.notReadyAddresses[keep - ready:]
    return True


# ------------------------------------------------------------------ the controller


class EndpointsController(Controller):
    name = "endpoint"
    default_workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        services = ctx.informers.informer_for(Service)
        pods = ctx.informers.informer_for(Pod)
        endpoints = ctx.informers.informer_for(core_pb2.Endpoints)
        self.services = services.lister()
        self.pods = pods.lister()
        self.endpoints = endpoints.lister()
        services.add_event_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new),
                                   on_delete=self.enqueue)
        watch_pods_of_services(pods, self.services, self.enqueue)
        endpoints.add_event_handler(on_delete=self.enqueue)

    async def run(self, workers: int) -> None:
        # Endpoints whose Service went away while nobody was watching.
        for ep in self.endpoints.list():
            if LEADER_ANNOTATION not in ep.metadata.annotations:
                self.enqueue(ep)
        await super().run(workers)

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        try:
            svc = self.services.get(namespace, name)
        except StatusError as err:
            if err.reason != "NotFound":
                raise
            await self._delete_endpoints(namespace, name)
            return
        if not svc.spec.selector or svc.metadata.deletionTimestamp:
            return  # hand-made Endpoints, or going away
        pods = self.pods.list(namespace, selector_from_map(svc.spec.selector))
        subsets = desired_subsets(svc, pods)
        truncated = truncate(subsets)
        labels = dict(svc.metadata.labels)
        if is_headless(svc):
            labels[HEADLESS_LABEL] = ""
        else:
            labels.pop(HEADLESS_LABEL, None)

        try:
            current: core_pb2.Endpoints | None = self.endpoints.get(namespace, name)
        except StatusError as err:
            if err.reason != "NotFound":
                raise
            current = None
        if current is not None and list(current.subsets) == subsets and dict(current.metadata.labels) == labels \
                and (OVER_CAPACITY in current.metadata.annotations) == truncated:
            return
        new = core_pb2.Endpoints()
        if current is not None:
            new.CopyFrom(current)
        else:
            new.metadata.name, new.metadata.namespace = name, namespace
        del new.subsets[:]
        new.subsets.extend(subsets)
        new.metadata.labels.clear()
        new.metadata.labels.update(labels)
        if truncated:
            new.metadata.annotations[OVER_CAPACITY] = "truncated"
        else:
            new.metadata.annotations.pop(OVER_CAPACITY, None)
        client = self.clientset.resource(core_pb2.Endpoints, namespace)
        try:
            if current is None:
                await client.create(new)
            else:
                await client.update(new)
        except StatusError as err:
            if err.reason == "Forbidden" and current is None:
                return  # the namespace is terminating: nothing may be created in it
            raise
        if truncated:
            self.recorder.event(svc, "Warning", "EndpointsOverCapacity",
                                f"Endpoints for this Service are truncated to {MAX_CAPACITY} addresses")

    async def _delete_endpoints(self, namespace: str, name: str) -> None:
        try:
            ep = self.endpoints.get(namespace, name)
        except StatusError as err:
            if err.reason == "NotFound":
                return
            raise
        if LEADER_ANNOTATION in ep.metadata.annotations:
            return
        try:
            await self.clientset.resource(core_pb2.Endpoints, namespace).delete(name, uid=ep.metadata.uid)
        except StatusError as err:
            if err.reason not in ("NotFound", "Conflict"):
                raise
