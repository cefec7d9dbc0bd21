"""Answering queries from the index: the records the spec asks for, with
the AA flag and the right response codes (NXDOMAIN and NODATA with the SOA,
REFUSED outside the zones, NOTIMP, BADVERS, FORMERR), CNAME chasing inside
the zone, SRV targets in the additional section, and case preserved."""

from __future__ import annotations

from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from clusterdns import ClusterDNS, RecordIndex, Resolver, pod_records, service_records, zone_records

from ._objects import endpoint, endpoint_slice, manifest, pod, service, stored

ZONE = dns.name.from_text("cluster.local.")
WEB = service("web", clusterIP="10.96.0.20", clusterIPs=["10.96.0.20"],
              ports=[{"name": "http", "protocol": "TCP", "port": 80}])
HEADLESS_SLICE = endpoint_slice("nginx", [
    endpoint("10.244.1.10", hostname="web-0"), endpoint("10.244.2.11", hostname="web-1"),
    endpoint("10.244.1.12", ready=False, hostname="web-2")], ports=[{"name": "web", "protocol": "TCP", "port": 80}])


@pytest.fixture
def resolver(manifests_dir: Path) -> Resolver:
    index = RecordIndex()
    index.set("zone", zone_records(ZONE))
    nginx = stored(manifest(manifests_dir / "controllers" / "statefulset.yaml", "Service"))
    for svc, slices in [(WEB, []), (nginx, [HEADLESS_SLICE]),
                        (service("db", type="ExternalName", externalName="db.prod.example.com"), []),
                        (service("alias", type="ExternalName", externalName="web.default.svc.cluster.local"), []),
                        (service("loop", type="ExternalName", externalName="loop.default.svc.cluster.local"), []),
                        (service("gone", type="ExternalName", externalName="nope.default.svc.cluster.local"), [])]:
        index.set(f"service/default/{svc.metadata.name}", service_records(svc, slices, ZONE))
    index.set("pod/default/a", pod_records(pod("a", "10.244.1.5"), ZONE))
    return Resolver(index, ZONE, ttl=30)


def ask(resolver: Resolver, qname: str, qtype: str = "A", **kw: object) -> dns.message.Message:
    answer = resolver.answer(dns.message.make_query(qname, qtype, **kw))  # type: ignore[arg-type]
    assert answer is not None and answer.chase is None
    return answer.response


def lines(section: list[dns.rrset.RRset]) -> list[str]:
    return sorted(line for rrset in section for line in rrset.to_text().splitlines())


@pytest.mark.parametrize(("qname", "qtype", "want"), [
    ("web.default.svc.cluster.local.", "A", ["web.default.svc.cluster.local. 30 IN A 10.96.0.20"]),
    ("20.0.96.10.in-addr.arpa.", "PTR", ["20.0.96.10.in-addr.arpa. 30 IN PTR web.default.svc.cluster.local."]),
    ("nginx.default.svc.cluster.local.", "A", ["nginx.default.svc.cluster.local. 30 IN A 10.244.1.10",
                                               "nginx.default.svc.cluster.local. 30 IN A 10.244.2.11"]),
    ("web-0.nginx.default.svc.cluster.local.", "A", ["web-0.nginx.default.svc.cluster.local. 30 IN A 10.244.1.10"]),
    ("11.2.244.10.in-addr.arpa.", "PTR",
     ["11.2.244.10.in-addr.arpa. 30 IN PTR web-1.nginx.default.svc.cluster.local."]),
    ("db.default.svc.cluster.local.", "A", ["db.default.svc.cluster.local. 30 IN CNAME db.prod.example.com."]),
    ("db.default.svc.cluster.local.", "CNAME", ["db.default.svc.cluster.local. 30 IN CNAME db.prod.example.com."]),
    ("alias.default.svc.cluster.local.", "A", ["alias.default.svc.cluster.local. 30 IN CNAME "
                                               "web.default.svc.cluster.local.",
                                               "web.default.svc.cluster.local. 30 IN A 10.96.0.20"]),
    ("10-244-1-5.default.pod.cluster.local.", "A", ["10-244-1-5.default.pod.cluster.local. 30 IN A 10.244.1.5"]),
    ("dns-version.cluster.local.", "TXT", ['dns-version.cluster.local. 30 IN TXT "1.1.0"']),
    ("cluster.local.", "NS", ["cluster.local. 30 IN NS ns.dns.cluster.local."]),
])
def test_answers(resolver: Resolver, qname: str, qtype: str, want: list[str]) -> None:
    response = ask(resolver, qname, qtype)
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA and response.flags & dns.flags.QR
    assert not response.flags & dns.flags.RA  # no upstream: no recursion
    assert lines(response.answer) == want


def test_srv_answers_name_each_endpoint_and_carry_its_address(resolver: Resolver) -> None:
    response = ask(resolver, "_web._tcp.nginx.default.svc.cluster.local.", "SRV")
    assert lines(response.answer) == [
        "_web._tcp.nginx.default.svc.cluster.local. 30 IN SRV 0 100 80 web-0.nginx.default.svc.cluster.local.",
        "_web._tcp.nginx.default.svc.cluster.local. 30 IN SRV 0 100 80 web-1.nginx.default.svc.cluster.local."]
    assert lines(response.additional) == ["web-0.nginx.default.svc.cluster.local. 30 IN A 10.244.1.10",
                                          "web-1.nginx.default.svc.cluster.local. 30 IN A 10.244.2.11"]
    response = ask(resolver, "_http._tcp.web.default.svc.cluster.local.", "SRV")
    assert lines(response.answer) == [
        "_http._tcp.web.default.svc.cluster.local. 30 IN SRV 0 100 80 web.default.svc.cluster.local."]
    assert lines(response.additional) == ["web.default.svc.cluster.local. 30 IN A 10.96.0.20"]


@pytest.mark.parametrize("qname", [
    "nosuch.default.svc.cluster.local.",
    "web.default.svc.cluster.local.default.svc.cluster.local.",  # a search-path expansion
    "web-2.nginx.default.svc.cluster.local.",  # not ready
    "_https._tcp.web.default.svc.cluster.local.",
    "10-244-9-9.default.pod.cluster.local.",  # no pod has that IP
    "99.0.96.10.in-addr.arpa.",  # no service has that IP
    "gone.default.svc.cluster.local.",  # a CNAME to a name that does not exist
])
def test_unknown_names_are_nxdomain_with_the_soa(resolver: Resolver, qname: str) -> None:
    response = ask(resolver, qname)
    assert response.rcode() == dns.rcode.NXDOMAIN and response.flags & dns.flags.AA
    soa = [rrset for rrset in response.authority if rrset.rdtype == dns.rdatatype.SOA]
    assert len(soa) == 1 and soa[0].ttl == 30
    apex = "in-addr.arpa." if qname.endswith("in-addr.arpa.") else "cluster.local."
    assert soa[0].to_text().startswith(f"{apex} 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. ")


@pytest.mark.parametrize(("qname", "qtype"), [
    ("web.default.svc.cluster.local.", "AAAA"),  # an IPv4 service
    ("default.svc.cluster.local.", "A"),  # a name above others (empty non-terminal)
    ("svc.cluster.local.", "A"),
    ("web.default.svc.cluster.local.", "MX"),
])
def test_names_without_that_type_are_nodata_with_the_soa(resolver: Resolver, qname: str, qtype: str) -> None:
    response = ask(resolver, qname, qtype)
    assert response.rcode() == dns.rcode.NOERROR and response.answer == []
    assert [r.rdtype for r in response.authority] == [dns.rdatatype.SOA]


def test_the_question_keeps_its_case(resolver: Resolver) -> None:
    response = ask(resolver, "WEB.Default.svc.Cluster.Local.")
    assert lines(response.answer) == ["WEB.Default.svc.Cluster.Local. 30 IN A 10.96.0.20"]
    assert response.question[0].name.to_text() == "WEB.Default.svc.Cluster.Local."


def test_a_cname_loop_ends(resolver: Resolver) -> None:
    response = ask(resolver, "loop.default.svc.cluster.local.")
    assert response.rcode() == dns.rcode.NOERROR
    assert {r.rdtype for r in response.answer} == {dns.rdatatype.CNAME}


def test_soa_serial_moves_with_the_zone(resolver: Resolver) -> None:
    def serial() -> int:
        (rrset,) = ask(resolver, "cluster.local.", "SOA").answer
        return int(rrset[0].serial)
    before = serial()
    resolver.index.remove("service/default/web")
    assert serial() == before + 1


def test_outside_the_zone_is_refused_without_an_upstream(resolver: Resolver) -> None:
    response = ask(resolver, "example.com.")
    assert response.rcode() == dns.rcode.REFUSED and not response.flags & dns.flags.AA
    assert response.answer == []


def test_protocol_errors(resolver: Resolver) -> None:
    update = dns.message.make_query("web.default.svc.cluster.local.", "A")
    update.set_opcode(dns.opcode.UPDATE)
    assert ask_message(resolver, update).rcode() == dns.rcode.NOTIMP
    chaos = dns.message.make_query("version.bind.", "TXT", rdclass=dns.rdataclass.CH)
    assert ask_message(resolver, chaos).rcode() == dns.rcode.REFUSED
    transfer = dns.message.make_query("cluster.local.", "AXFR")
    assert ask_message(resolver, transfer).rcode() == dns.rcode.REFUSED
    edns1 = dns.message.make_query("web.default.svc.cluster.local.", "A", use_edns=1)
    assert ask_message(resolver, edns1).rcode() == dns.rcode.BADVERS
    empty = dns.message.make_query("web.default.svc.cluster.local.", "A")
    empty.question = []
    assert ask_message(resolver, empty).rcode() == dns.rcode.FORMERR


def test_edns_is_echoed_with_our_payload(resolver: Resolver) -> None:
    response = ask(resolver, "web.default.svc.cluster.local.", use_edns=0, payload=4096)
    assert response.edns == 0 and response.payload == 1232


def ask_message(resolver: Resolver, query: dns.message.Message) -> dns.message.Message:
    answer = resolver.answer(query)
    assert answer is not None
    return answer.response


def test_cluster_dns_is_importable_as_the_public_surface() -> None:
    assert ClusterDNS.__name__ == "ClusterDNS"
