"""The EndpointSlice controller: the pods behind every Service with a
selector, as EndpointSlices of at most 100 endpoints each (what the proxy
and DNS read).

Keys are Service keys. Service changes, changes of pods the Service
selects, and changes of slices this controller manages (label
`endpointslice.kubernetes.io/managed-by`) enqueue the Service. Per address
family of the Service (IPv4 and/or IPv6) and per distinct set of resolved
ports (named targetPorts can resolve differently per pod), `sync` packs the
endpoints into slices:

* an endpoint stays in the slice that already holds it, so a pod becoming
  ready rewrites one slice, not all of them;
* new endpoints fill slices with room first, then new slices are created
  (named `<service>-<random>`, owned by the Service, so they go with it);
* a slice left empty is deleted, except that a Service with no endpoints
  keeps one empty placeholder slice, as Kubernetes does.

Endpoint conditions follow Kubernetes: `serving` is the pod's readiness,
`terminating` is its deletionTimestamp, `ready` is serving and not
terminating; `publishNotReadyAddresses` makes every endpoint ready and
serving. Unlike Endpoints, terminating pods are kept (marked terminating)
so that proxies can drain them.

Slices are created with generated names, so a cache that has not yet seen
this controller's last writes would make it create duplicates. The
controller therefore remembers the resourceVersion of every slice it wrote
(and the slices it deleted) per Service, and a sync that finds the cache
behind raises and is retried with backoff - Kubernetes' slice tracker.

Services without a selector are left alone (their slices, if any, are
written by hand; Kubernetes' separate mirroring controller is not
implemented). When a Service is gone, the slices it owned are deleted.
"""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Iterable
from typing import Any

from api import StatusError, new_error, selector_from_map
from client import split_key
from proto import core_pb2, discovery_pb2, meta_pb2

from ._controller import Controller, ControllerContext
from ._podutil import is_pod_ready, unwrap
from .endpoints import (
    HEADLESS_LABEL,
    endpoint_hostname,
    find_port,
    is_headless,
    pod_reference,
    serves_endpoints,
    watch_pods_of_services,
)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
DEFAULT_MAX_ENDPOINTS = 100

Pod = core_pb2.Pod
Service = core_pb2.Service
EndpointSlice = discovery_pb2.EndpointSlice
PortKey = tuple[tuple[str, str, int, str], ...]


def stale_cache(message: str) -> StatusError:
    """The slice cache has not caught up with this controller's own writes:
    a Conflict between what it sees and what it wrote, retried with backoff."""
    return new_error("Conflict", message)


def _port_key(ports: Iterable[discovery_pb2.EndpointPort]) -> PortKey:
    return tuple(sorted((p.name, p.protocol, p.port, p.appProtocol) for p in ports))


def _endpoint_id(ep: discovery_pb2.Endpoint) -> tuple[str, str]:
    return (ep.addresses[0] if ep.addresses else ""), ep.targetRef.uid


def _pod_ips(pod: Pod, family: str) -> list[str]:
    ips = [p.ip for p in pod.status.podIPs] or ([pod.status.podIP] if pod.status.podIP else [])
    version = 6 if family == "IPv6" else 4
    out = []
    for ip in ips:
        try:
            if ipaddress.ip_address(ip).version == version:
                out.append(ip)
        except ValueError:
            continue
    return out


def _owner_reference(svc: Service) -> meta_pb2.OwnerReference:
    return meta_pb2.OwnerReference(apiVersion="v1", kind="Service", name=svc.metadata.name, uid=svc.metadata.uid,
                                   controller=True, blockOwnerDeletion=True)


def desired_endpoints(svc: Service, pods: list[Pod]) -> dict[tuple[str, PortKey], dict[tuple[str, str], Any]]:
    """(addressType, ports) -> endpoint id -> (Endpoint, ports) for the
    Service's pods."""
    publish = svc.spec.publishNotReadyAddresses
    families = list(svc.spec.ipFamilies) or ["IPv4"]
    out: dict[tuple[str, PortKey], dict[tuple[str, str], Any]] = {}
    for pod in pods:
        if not serves_endpoints(pod, include_terminating=True):
            continue
        ports: list[discovery_pb2.EndpointPort] = []
        for sp in svc.spec.ports:
            number = find_port(pod, sp)
            if number is None:
                continue
            port = discovery_pb2.EndpointPort(name=sp.name, protocol=sp.protocol or "TCP", port=number)
            if sp.HasField("appProtocol"):
                port.appProtocol = sp.appProtocol
            ports.append(port)
        if svc.spec.ports and not ports:
            continue
        ports.sort(key=lambda p: (p.name, p.protocol, p.port))
        terminating = bool(pod.metadata.deletionTimestamp)
        serving = publish or is_pod_ready(pod)
        ready = publish or (serving and not terminating)
        hostname = endpoint_hostname(pod, svc)
        for family in families:
            for ip in _pod_ips(pod, family)[:1]:
                ep = discovery_pb2.Endpoint(addresses=[ip], targetRef=pod_reference(pod))
                ep.conditions.ready = ready
                ep.conditions.serving = serving
                ep.conditions.terminating = terminating
                if pod.spec.nodeName:
                    ep.nodeName = pod.spec.nodeName
                if hostname:
                    ep.hostname = hostname
                group = out.setdefault((family, _port_key(ports)), {})
                group[_endpoint_id(ep)] = (ep, ports)
    return out


class EndpointSliceController(Controller):
    name = "endpointslice"
    event_source = "endpoint-slice-controller"
    default_workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.max_endpoints = int(getattr(ctx.options, "max_endpoints_per_slice", DEFAULT_MAX_ENDPOINTS))
        services = ctx.informers.informer_for(Service)
        pods = ctx.informers.informer_for(Pod)
        slices = ctx.informers.informer_for(EndpointSlice)
        self.services = services.lister()
        self.pods = pods.lister()
        self.slices = slices.lister()
        #: service key -> slice name -> resourceVersion written (None: deleted)
        self._expected: dict[str, dict[str, int | None]] = {}
        services.add_event_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new),
                                   on_delete=self.enqueue)
        watch_pods_of_services(pods, self.services, self.enqueue)
        slices.add_event_handler(on_add=self._slice_changed, on_update=lambda _old, new: self._slice_changed(new),
                                 on_delete=self._slice_deleted)

    @classmethod
    def add_flags(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--max-endpoints-per-slice", type=int, default=DEFAULT_MAX_ENDPOINTS, metavar="N",
                            help="the most endpoints an EndpointSlice holds (default %(default)s)")

    # ------------------------------------------------------------ handlers

    @staticmethod
    def _service_key(es: EndpointSlice) -> str | None:
        labels = es.metadata.labels
        if labels.get(MANAGED_BY_LABEL) != MANAGED_BY or not labels.get(SERVICE_NAME_LABEL):
            return None
        return f"{es.metadata.namespace}/{labels[SERVICE_NAME_LABEL]}"

    def _slice_changed(self, es: EndpointSlice) -> None:
        key = self._service_key(es)
        if key is not None:
            self.queue.add(key)

    def _slice_deleted(self, obj: Any) -> None:
        es = unwrap(obj)
        key = self._service_key(es)
        if key is not None:
            expected = self._expected.get(key)
            if expected is not None:
                expected.pop(es.metadata.name, None)  # gone for good, whoever deleted it
            self.queue.add(key)

    # ------------------------------------------------------------ sync

    def _managed_slices(self, namespace: str, service: str) -> list[EndpointSlice]:
        sel = selector_from_map({SERVICE_NAME_LABEL: service, MANAGED_BY_LABEL: MANAGED_BY})
        return self.slices.list(namespace, sel)

    def _check_fresh(self, key: str, namespace: str) -> None:
        expected = self._expected.get(key)
        if not expected:
            return
        for name, rv in list(expected.items()):
            try:
                cached: EndpointSlice | None = self.slices.get(namespace, name)
            except StatusError:
                cached = None
            if rv is None:
                if cached is not None:
                    raise stale_cache(f"endpoint slice cache still holds deleted slice {namespace}/{name}")
            elif cached is None or int(cached.metadata.resourceVersion or 0) < rv:
                raise stale_cache(f"endpoint slice cache has not seen slice {namespace}/{name} at {rv} yet")
        del self._expected[key]

    def _expect(self, key: str, name: str, rv: int | None) -> None:
        self._expected.setdefault(key, {})[name] = rv

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        self._check_fresh(key, namespace)
        try:
            svc = self.services.get(namespace, name)
        except StatusError as err:
            if err.reason != "NotFound":
                raise
            for es in self._managed_slices(namespace, name):
                await self._delete(key, es)
            return
        if not svc.spec.selector or svc.metadata.deletionTimestamp:
            return
        pods = self.pods.list(namespace, selector_from_map(svc.spec.selector))
        desired = desired_endpoints(svc, pods)
        existing: dict[tuple[str, PortKey], list[EndpointSlice]] = {}
        for es in self._managed_slices(namespace, name):
            existing.setdefault((es.addressType, _port_key(es.ports)), []).append(es)

        plans: list[tuple[EndpointSlice | None, tuple[str, PortKey], list[Any], list[Any]]] = []
        for group, wanted in sorted(desired.items()):
            remaining = dict(wanted)
            kept: list[tuple[EndpointSlice, list[Any]]] = []
            for es in sorted(existing.pop(group, []), key=lambda s: s.metadata.name):
                eps = [remaining.pop(_endpoint_id(ep)) for ep in es.endpoints if _endpoint_id(ep) in remaining]
                kept.append((es, eps))
            leftovers = [remaining[k] for k in sorted(remaining)]
            for es, eps in sorted(kept, key=lambda p: -len(p[1])):  # fill the fullest first
                if len(eps) > self.max_endpoints:  # the limit was lowered: the excess moves on
                    leftovers = eps[self.max_endpoints:] + leftovers
                    del eps[self.max_endpoints:]
                room = self.max_endpoints - len(eps)
                eps.extend(leftovers[:room])
                leftovers = leftovers[room:]
                ports = eps[0][1] if eps else []
                plans.append((es, group, [e for e, _ in eps], ports))
            while leftovers:
                chunk, leftovers = leftovers[:self.max_endpoints], leftovers[self.max_endpoints:]
                plans.append((None, group, [e for e, _ in chunk], chunk[0][1]))

        to_write = [p for p in plans if p[2]]
        to_delete: list[EndpointSlice] = [es for slices in existing.values() for es in slices]
        to_delete += [p[0] for p in plans if not p[2] and p[0] is not None]
        if not to_write:
            # No endpoints at all: keep one empty placeholder slice.
            family = (list(svc.spec.ipFamilies) or ["IPv4"])[0]
            keep: EndpointSlice | None = next((es for es in to_delete if es.addressType == family), None)
            to_delete = [es for es in to_delete if es is not keep]
            to_write = [(keep, (family, ()), [], [])]
        for current, (family, _ports), eps, ports in to_write:
            await self._write(key, svc, current, family, eps, ports)
        for gone in to_delete:
            await self._delete(key, gone)

    def _labels(self, svc: Service) -> dict[str, str]:
        labels = {k: v for k, v in svc.metadata.labels.items() if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL)}
        labels[SERVICE_NAME_LABEL] = svc.metadata.name
        labels[MANAGED_BY_LABEL] = MANAGED_BY
        if is_headless(svc):
            labels[HEADLESS_LABEL] = ""
        return labels

    async def _write(self, key: str, svc: Service, current: EndpointSlice | None, family: str,
                     endpoints: list[discovery_pb2.Endpoint], ports: list[discovery_pb2.EndpointPort]) -> None:
        endpoints = sorted(endpoints, key=_endpoint_id)
        labels = self._labels(svc)
        owner = _owner_reference(svc)
        if current is not None and list(current.endpoints) == endpoints and list(current.ports) == list(ports) \
                and dict(current.metadata.labels) == labels and list(current.metadata.ownerReferences) == [owner]:
            return
        new = EndpointSlice()
        if current is not None:
            new.CopyFrom(current)
        else:
            new.metadata.generateName = f"{svc.metadata.name[:56]}-"
            new.metadata.namespace = svc.metadata.namespace
            new.addressType = family
        del new.endpoints[:]
        new.endpoints.extend(endpoints)
        del new.ports[:]
        new.ports.extend(ports)
        new.metadata.labels.clear()
        new.metadata.labels.update(labels)
        del new.metadata.ownerReferences[:]
        new.metadata.ownerReferences.append(owner)
        client = self.clientset.resource(EndpointSlice, svc.metadata.namespace)
        try:
            written = await (client.update(new) if current is not None else client.create(new))
        except StatusError as err:
            if err.reason == "Forbidden" and current is None:
                return  # the namespace is terminating
            raise
        self._expect(key, written.metadata.name, int(written.metadata.resourceVersion or 0))

    async def _delete(self, key: str, es: EndpointSlice) -> None:
        try:
            await self.clientset.resource(EndpointSlice, es.metadata.namespace).delete(es.metadata.name,
                                                                                      uid=es.metadata.uid)
        except StatusError as err:
            if err.reason not in ("NotFound", "Conflict"):
                raise
        self._expect(key, es.metadata.name, None)
