"""Cluster DNS: `<svc>.<ns>.svc.cluster.local` and friends, from watches.

kubelab's kube-dns/CoreDNS. One process (`python -m clusterdns`) watches
Services, EndpointSlices and Pods through the shared client library, keeps
the records they imply in an in-memory index updated per event, and serves
them over UDP and TCP, authoritative for the cluster zone and for the PTR
names of cluster IPs and endpoints, following Kubernetes' DNS-based service
discovery specification. The lab runs it behind the `kube-dns` Service
(10.96.0.10 in kube-system) that the kubelet writes into pods' resolv.conf.

Built on dnspython rather than dnslib: it is typed (the type checker sees
every record class), parses and renders EDNS and truncation itself
(`to_wire(max_size, prefer_truncation=True)` cuts at an RRset boundary and
sets TC), compares names case-insensitively as the spec requires, and its
asyncio client does the upstream forwarding and the tests' and benchmark's
queries, so one library covers the server, the forwarder and the clients.

Public surface:

* `service_records`, `pod_records`, `Record` - the objects-to-records rules;
* `RecordIndex` - the zone in memory, per owner;
* `Resolver` - one query in, one response out (with `Forwarder` upstream);
* `DNSServer` - the UDP and TCP listeners;
* `ClusterDNS` - the informers that keep the index current.
"""

from ._app import ClusterDNS
from ._forward import Forwarder, ForwardError, parse_upstream
from ._index import RecordIndex
from ._records import Record, pod_name, pod_records, service_name, service_records
from ._resolver import DEFAULT_TTL, DEFAULT_ZONE, SCHEMA_VERSION, Answer, Resolver, zone_records
from ._server import DNSServer

__all__ = [
    "DEFAULT_TTL", "DEFAULT_ZONE", "SCHEMA_VERSION", "Answer", "ClusterDNS", "DNSServer", "ForwardError", "Forwarder",
    "Record", "RecordIndex", "Resolver", "parse_upstream", "pod_name", "pod_records", "service_name",
    "service_records", "zone_records",
]
