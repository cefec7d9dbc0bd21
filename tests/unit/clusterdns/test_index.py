"""The in-memory zone: per-owner replacement, shared records counted per
owner, empty non-terminals, case-insensitive names and the SOA serial."""

from __future__ import annotations

import dns.name
import dns.rdatatype

from clusterdns import RecordIndex, service_records

from ._objects import endpoint, endpoint_slice, service

ZONE = dns.name.from_text("cluster.local.")


def name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def addresses(index: RecordIndex, text: str) -> list[str]:
    node = index.lookup(name(text)) or {}
    return sorted(str(r) for r in node.get(dns.rdatatype.A, {}))


def test_set_replaces_only_what_the_owner_changed() -> None:
    index = RecordIndex()
    web = service("web", clusterIP="10.96.0.20", clusterIPs=["10.96.0.20"])
    assert index.set("service/default/web", service_records(web, [], ZONE))
    serial = index.serial
    assert not index.set("service/default/web", service_records(web, [], ZONE))  # a resync: no change
    assert index.serial == serial
    moved = service("web", clusterIP="10.96.0.21", clusterIPs=["10.96.0.21"])
    assert index.set("service/default/web", service_records(moved, [], ZONE))
    assert index.serial == serial + 1
    assert addresses(index, "web.default.svc.cluster.local.") == ["10.96.0.21"]
    assert index.lookup(name("20.0.96.10.in-addr.arpa.")) is None
    assert index.remove("service/default/web")
    assert index.lookup(name("web.default.svc.cluster.local.")) is None
    assert len(index) == 0 and index.owners() == []


def test_a_record_two_owners_share_stays_until_both_drop_it() -> None:
    index = RecordIndex()
    one = service("a", clusterIP="None")
    two = service("b", clusterIP="None")
    slice_a = endpoint_slice("a", [endpoint("10.244.0.5")])
    slice_b = endpoint_slice("b", [endpoint("10.244.0.5")])
    index.set("service/default/a", service_records(one, [slice_a], ZONE))
    index.set("service/default/b", service_records(two, [slice_b], ZONE))
    ptr = name("5.0.244.10.in-addr.arpa.")
    node = index.lookup(ptr)
    assert node is not None and len(node[dns.rdatatype.PTR]) == 2
    index.remove("service/default/a")
    node = index.lookup(ptr)
    assert node is not None and [str(r) for r in node[dns.rdatatype.PTR]] == ["10-244-0-5.b.default.svc.cluster.local."]
    index.remove("service/default/b")
    assert index.lookup(ptr) is None


def test_ancestors_exist_without_records_until_their_last_descendant_goes() -> None:
    index = RecordIndex()
    web = service("web", clusterIP="10.96.0.20", clusterIPs=["10.96.0.20"], ports=[{"name": "http", "port": 80,
                                                                                    "protocol": "TCP"}])
    index.set("service/default/web", service_records(web, [], ZONE))
    for ent in ("default.svc.cluster.local.", "svc.cluster.local.", "_tcp.web.default.svc.cluster.local."):
        assert index.lookup(name(ent)) == {}, ent
    assert index.lookup(name("other.svc.cluster.local.")) is None
    assert index.lookup(name("x.web.default.svc.cluster.local.")) is None
    index.remove("service/default/web")
    assert index.lookup(name("default.svc.cluster.local.")) is None


def test_lookups_ignore_case() -> None:
    index = RecordIndex()
    index.set("service/default/web", service_records(service("web", clusterIP="10.96.0.20"), [], ZONE))
    assert addresses(index, "WEB.Default.SVC.cluster.LOCAL.") == ["10.96.0.20"]
