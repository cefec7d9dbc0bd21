"""The change tracker: Services and EndpointSlices in, service ports and
their endpoints out, with the set of service ports that changed since the
last sync (kube-proxy's ServiceChangeTracker and EndpointsChangeTracker
in one).

Informer handlers call `service_changed` / `slice_changed`; both are
cheap (one object's worth of work) and never touch the kernel. A sync
takes `snapshot()`: a frozen copy of the whole state plus the changed
names, which resets the change set. A sync that fails puts its names
back with `requeue()`, so nothing is lost when iptables-restore fails.

What is left out, as Kubernetes leaves it out: ExternalName Services and
headless Services (clusterIP None) have no rules; slices without a
`kubernetes.io/service-name` label belong to no Service. Only IPv4 is
programmed (the tables this proxy writes are IPv4 ones); IPv6 cluster IPs
and IPv6 or FQDN slices are skipped.

For network programming latency, each change remembers when it was
triggered: the slice's `endpoints.kubernetes.io/last-change-trigger-time`
annotation when the endpoint controller set one, else the moment the
proxy saw the change.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

from api import Clock, RealClock, parse_time
from proto import core_pb2, discovery_pb2

from ._types import DEFAULT_AFFINITY_SECONDS, Endpoint, ProxySnapshot, ServicePort, ServicePortName

log = logging.getLogger(__name__)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"


def _ipv4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


def service_ports(svc: core_pb2.Service) -> dict[ServicePortName, ServicePort]:
    """The service ports a Service asks the proxy to program (none for
    ExternalName and headless Services)."""
    spec = svc.spec
    if spec.type == "ExternalName":
        return {}
    ips = [ip for ip in (list(spec.clusterIPs) or [spec.clusterIP]) if _ipv4(ip)]
    if not ips:  # headless ("None"), not yet allocated, or IPv6 only
        return {}
    affinity = 0
    if spec.sessionAffinity == "ClientIP":
        cfg = spec.sessionAffinityConfig.clientIP
        affinity = cfg.timeoutSeconds if cfg.HasField("timeoutSeconds") else DEFAULT_AFFINITY_SECONDS
    node_ports = spec.type in ("NodePort", "LoadBalancer")
    out: dict[ServicePortName, ServicePort] = {}
    for p in spec.ports:
        protocol = p.protocol or "TCP"
        name = ServicePortName(svc.metadata.namespace, svc.metadata.name, p.name, protocol)
        out[name] = ServicePort(name, ips[0], p.port, protocol, p.nodePort if node_ports else 0, affinity,
                                tuple(ip for ip in spec.externalIPs if _ipv4(ip)))
    return out


@dataclass(frozen=True)
class SliceInfo:
    service: str  # namespace/name
    endpoints: dict[ServicePortName, tuple[Endpoint, ...]]
    trigger_time: float | None


def slice_info(es: discovery_pb2.EndpointSlice) -> SliceInfo | None:
    """The endpoints one slice contributes, per service port; None for a
    slice of no Service or of an address type the proxy skips."""
    svc = es.metadata.labels.get(SERVICE_NAME_LABEL, "")
    if not svc or es.addressType != "IPv4":
        return None
    endpoints: list[Endpoint] = []
    for ep in es.endpoints:
        if not ep.addresses:
            continue
        cond = ep.conditions
        ready = cond.ready if cond.HasField("ready") else True
        serving = cond.serving if cond.HasField("serving") else ready
        terminating = cond.terminating if cond.HasField("terminating") else False
        node = ep.nodeName if ep.HasField("nodeName") else ""
        endpoints.append(Endpoint(ep.addresses[0], 0, ready, serving, terminating, node))
    ns = es.metadata.namespace
    by_port: dict[ServicePortName, tuple[Endpoint, ...]] = {}
    for port in es.ports:
        if not port.HasField("port"):
            continue
        name = ServicePortName(ns, svc, port.name if port.HasField("name") else "",
                               port.protocol if port.HasField("protocol") else "TCP")
        by_port[name] = tuple(Endpoint(e.ip, port.port, e.ready, e.serving, e.terminating, e.node_name)
                              for e in endpoints)
    trigger = es.metadata.annotations.get(TRIGGER_TIME_ANNOTATION)
    when: float | None = None
    if trigger:
        try:
            when = parse_time(trigger)
        except ValueError:
            log.warning("EndpointSlice %s/%s: unparsable %s %r", ns, es.metadata.name, TRIGGER_TIME_ANNOTATION,
                        trigger)
    return SliceInfo(f"{ns}/{svc}", by_port, when)


class ChangeTracker:
    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or RealClock()
        self._by_service: dict[str, dict[ServicePortName, ServicePort]] = {}
        self._slices: dict[str, dict[str, SliceInfo]] = {}  # service -> slice name -> info
        self._slice_owner: dict[str, str] = {}  # slice namespace/name -> service namespace/name
        self._endpoint_names: dict[str, set[ServicePortName]] = {}  # service -> its names in `endpoints`
        self.services: dict[ServicePortName, ServicePort] = {}
        self.endpoints: dict[ServicePortName, tuple[Endpoint, ...]] = {}
        self._changed: set[ServicePortName] = set()
        self._trigger_times: list[float] = []
        self.service_changes = 0
        self.endpoint_changes = 0

    # ------------------------------------------------------------ informer side

    def service_changed(self, key: str, svc: core_pb2.Service | None) -> None:
        """`key` is namespace/name; `svc` None means deleted."""
        new = service_ports(svc) if svc is not None else {}
        old = self._by_service.pop(key, {})
        if new:
            self._by_service[key] = new
        for name in old.keys() | new.keys():
            if old.get(name) != new.get(name):
                self._changed.add(name)
                self.service_changes += 1
                if name in new:
                    self.services[name] = new[name]
                else:
                    self.services.pop(name, None)

    def slice_changed(self, namespace: str, name: str, es: discovery_pb2.EndpointSlice | None) -> None:
        """A slice added, updated (es given) or deleted (es None)."""
        info = slice_info(es) if es is not None else None
        key = f"{namespace}/{name}"
        touched: set[str] = set()
        before = self._slice_owner.pop(key, None)
        if before is not None:  # drop the old contribution (the slice may even have moved to another Service)
            slices = self._slices[before]
            del slices[name]
            if not slices:
                del self._slices[before]
            touched.add(before)
        if info is not None:
            self._slices.setdefault(info.service, {})[name] = info
            self._slice_owner[key] = info.service
            touched.add(info.service)
        for svc in touched:
            self._merge(svc, info.trigger_time if info is not None else None)

    def _merge(self, svc: str, trigger: float | None) -> None:
        merged: dict[ServicePortName, dict[tuple[str, int], Endpoint]] = {}
        for info in self._slices.get(svc, {}).values():
            for port_name, eps in info.endpoints.items():
                slot = merged.setdefault(port_name, {})
                for ep in eps:
                    slot.setdefault((ep.ip, ep.port), ep)
        new = {n: tuple(sorted(eps.values(), key=lambda e: (ipaddress.ip_address(e.ip), e.port)))
               for n, eps in merged.items() if eps}
        old = self._endpoint_names.pop(svc, set())
        if new:
            self._endpoint_names[svc] = set(new)
        changed = False
        for n in old | new.keys():
            if self.endpoints.get(n) != new.get(n):
                changed = True
                self._changed.add(n)
                self.endpoint_changes += 1
                if n in new:
                    self.endpoints[n] = new[n]
                else:
                    del self.endpoints[n]
        if changed:
            self._trigger_times.append(trigger if trigger is not None else self._clock.now())

    # ------------------------------------------------------------ sync side

    def pending(self) -> bool:
        return bool(self._changed)

    def snapshot(self) -> tuple[ProxySnapshot, set[ServicePortName], list[float]]:
        """The state to program now, what changed since the last
        snapshot, and when those changes were triggered."""
        changed, self._changed = self._changed, set()
        triggers, self._trigger_times = self._trigger_times, []
        return ProxySnapshot(dict(self.services), dict(self.endpoints)), changed, triggers

    def requeue(self, changed: set[ServicePortName], triggers: list[float]) -> None:
        """Give back what a failed sync took, so the next one does it."""
        self._changed |= changed
        self._trigger_times = triggers + self._trigger_times
