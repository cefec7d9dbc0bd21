"""From Kubernetes objects to DNS records, as the DNS specification says.

Pure functions: one Service (with its EndpointSlices) or one Pod in, the
records it owns out. The index (`_index.py`) stores them per owner, so an
event for one Service rebuilds that Service's records and nothing else.

What a Service owns (https://github.com/kubernetes/dns, docs/specification.md):

* ClusterIP (and NodePort, LoadBalancer): `<svc>.<ns>.svc.<zone>` A/AAAA
  per cluster IP; `_<port>._<proto>.<svc>...` SRV per named port, aimed at
  the Service's name; a PTR per cluster IP back to the Service's name.
* Headless (clusterIP None): per *ready* endpoint, `<svc>...` A/AAAA,
  `<hostname>.<svc>...` A/AAAA (the endpoint's hostname, which the
  endpoint-slice controller sets for a pod whose subdomain names the
  Service - a StatefulSet's `web-0`; otherwise the IP with dashes),
  `_<port>._<proto>.<svc>...` SRV per named slice port aimed at that
  hostname, and a PTR from the endpoint's IP to that hostname. No ready
  endpoints: no records, so the name is NXDOMAIN as the spec says.
* ExternalName: a CNAME to `spec.externalName`.

An endpoint is ready when its slice says ready (unset counts as ready, as
the EndpointSlice API defines it), or when the Service publishes
not-ready addresses (`publishNotReadyAddresses`, or the older
`service.alpha.kubernetes.io/tolerate-unready-endpoints` annotation).

A Pod owns `<a-b-c-d>.<ns>.pod.<zone>` A/AAAA for each of its IPs (CoreDNS
calls this "pods verified": only an IP a pod in that namespace has).

Bad data in an object (an address that is no IP, an ExternalName that is
no domain name) is skipped with a warning naming the object and field; the
rest of the object's records are still served.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.reversename
from dns.rdtypes.ANY.CNAME import CNAME
from dns.rdtypes.ANY.PTR import PTR
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA
from dns.rdtypes.IN.SRV import SRV

from proto import core_pb2, discovery_pb2

log = logging.getLogger(__name__)

IN = dns.rdataclass.IN
HEADLESS = "None"
EXTERNAL_NAME = "ExternalName"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
TOLERATE_UNREADY = "service.alpha.kubernetes.io/tolerate-unready-endpoints"
SRV_PRIORITY = 0
SRV_WEIGHT = 100


@dataclass(frozen=True)
class Record:
    """One resource record without its TTL (the server's flag sets it)."""

    name: dns.name.Name
    rdata: dns.rdata.Rdata

    @property
    def rdtype(self) -> dns.rdatatype.RdataType:
        return self.rdata.rdtype

    def __str__(self) -> str:
        return f"{self.name} {dns.rdatatype.to_text(self.rdtype)} {self.rdata}"


def service_name(name: str, namespace: str, zone: dns.name.Name) -> dns.name.Name:
    """`<svc>.<ns>.svc.<zone>`."""
    return dns.name.Name((name.encode(), namespace.encode(), b"svc", *zone.labels))


def pod_name(ip: str, namespace: str, zone: dns.name.Name) -> dns.name.Name:
    """`<a-b-c-d>.<ns>.pod.<zone>`."""
    return dns.name.Name((dashed(ip).encode(), namespace.encode(), b"pod", *zone.labels))


def dashed(ip: str) -> str:
    """An IP as one DNS label: dots (or colons) become dashes."""
    return ip.replace(".", "-").replace(":", "-")


def address_record(name: dns.name.Name, ip: str) -> Record:
    addr = ipaddress.ip_address(ip)
    if addr.version == 4:
        return Record(name, A(IN, dns.rdatatype.A, str(addr)))
    return Record(name, AAAA(IN, dns.rdatatype.AAAA, str(addr)))


def ptr_record(ip: str, target: dns.name.Name) -> Record:
    return Record(dns.reversename.from_address(ip), PTR(IN, dns.rdatatype.PTR, target))


def srv_record(port_name: str, protocol: str, port: int, owner: dns.name.Name, target: dns.name.Name) -> Record:
    name = dns.name.Name((f"_{port_name}".encode(), f"_{(protocol or 'TCP').lower()}".encode(), *owner.labels))
    return Record(name, SRV(IN, dns.rdatatype.SRV, SRV_PRIORITY, SRV_WEIGHT, port, target))


def is_headless(svc: core_pb2.Service) -> bool:
    return svc.spec.clusterIP == HEADLESS


def publishes_not_ready(svc: core_pb2.Service) -> bool:
    return svc.spec.publishNotReadyAddresses or \
        svc.metadata.annotations.get(TOLERATE_UNREADY, "").lower() == "true"


def service_records(svc: core_pb2.Service, slices: Iterable[discovery_pb2.EndpointSlice],
                    zone: dns.name.Name) -> list[Record]:
    """Every record the Service owns, given the EndpointSlices labelled
    with its name."""
    meta = svc.metadata
    owner = service_name(meta.name, meta.namespace, zone)
    if svc.spec.type == EXTERNAL_NAME:
        return external_name_records(svc, owner)
    if is_headless(svc):
        return headless_records(svc, slices, owner)
    records: list[Record] = []
    ips = list(svc.spec.clusterIPs) or ([svc.spec.clusterIP] if svc.spec.clusterIP else [])
    for i, ip in enumerate(ips):
        try:
            records.append(address_record(owner, ip))
        except ValueError:
            warn(svc, f"spec.clusterIPs[{i}]", ip, "is not an IP address")
            continue
        records.append(ptr_record(ip, owner))
    if not records:  # no cluster IP yet: nothing to aim SRV records at
        return []
    for port in svc.spec.ports:
        if port.name:
            records.append(srv_record(port.name, port.protocol, port.port, owner, owner))
    return records


def external_name_records(svc: core_pb2.Service, owner: dns.name.Name) -> list[Record]:
    target = svc.spec.externalName.strip()
    try:
        name = dns.name.from_text(target)
    except dns.exception.DNSException as err:
        warn(svc, "spec.externalName", target, f"is not a domain name ({err})")
        return []
    if not target or name == dns.name.root:
        warn(svc, "spec.externalName", target, "is empty")
        return []
    return [Record(owner, CNAME(IN, dns.rdatatype.CNAME, name))]


def headless_records(svc: core_pb2.Service, slices: Iterable[discovery_pb2.EndpointSlice],
                     owner: dns.name.Name) -> list[Record]:
    tolerate = publishes_not_ready(svc)
    records: list[Record] = []
    for es in slices:
        if es.addressType not in ("IPv4", "IPv6"):
            continue  # FQDN slices name no addresses to answer with
        named_ports = [p for p in es.ports if p.name and p.HasField("port")]
        for i, ep in enumerate(es.endpoints):
            if not tolerate and ep.conditions.HasField("ready") and not ep.conditions.ready:
                continue
            for j, ip in enumerate(ep.addresses):
                try:
                    address = address_record(owner, ip)
                except ValueError:
                    warn(es, f"endpoints[{i}].addresses[{j}]", ip, f"is not an {es.addressType} address")
                    continue
                host = dns.name.Name(((ep.hostname or dashed(ip)).encode(), *owner.labels))
                records += [address, address_record(host, ip), ptr_record(ip, host)]
                records += [srv_record(p.name, p.protocol, p.port, owner, host) for p in named_ports]
    return records


def pod_records(pod: core_pb2.Pod, zone: dns.name.Name) -> list[Record]:
    """`<a-b-c-d>.<ns>.pod.<zone>` for each of the pod's IPs."""
    if pod.status.phase in ("Succeeded", "Failed"):
        return []  # a finished pod's IP has gone back to the pool
    ips = [p.ip for p in pod.status.podIPs] or ([pod.status.podIP] if pod.status.podIP else [])
    records = []
    for i, ip in enumerate(ips):
        try:
            records.append(address_record(pod_name(ip, pod.metadata.namespace, zone), ip))
        except ValueError:
            warn(pod, f"status.podIPs[{i}].ip", ip, "is not an IP address")
    return records


def warn(obj: object, field: str, value: str, rule: str) -> None:
    kind = type(obj).__name__
    meta = obj.metadata  # type: ignore[attr-defined]
    log.warning('%s "%s/%s": %s: %r %s; no record for it', kind, meta.namespace, meta.name, field, value, rule)
