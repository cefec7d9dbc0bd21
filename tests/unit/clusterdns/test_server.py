"""The DNS wire on real loopback sockets: UDP and TCP answers, several
queries on one TCP connection, truncation to 512 bytes (or the EDNS size)
with TC and the full answer over TCP, FORMERR for a query that does not
parse, silence for datagrams that are no query, and forwarding to a real
upstream server (another DNSServer on loopback) - whole queries outside
the zone, and an ExternalName's target - with SERVFAIL when it is down."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import dns.asyncquery
import dns.flags
import dns.message
import dns.name
import dns.rcode
import pytest

from clusterdns import DNSServer, Forwarder, RecordIndex, Resolver, service_records, zone_records
from deploy.local import free_port

from ._objects import endpoint, endpoint_slice, service

ZONE = dns.name.from_text("cluster.local.")
UPSTREAM_ZONE = dns.name.from_text("upstream.test.")
GUARD = 10.0  # only against a hang; no test measures time


def make_index(zone: dns.name.Name, *services: tuple[object, list[object]]) -> RecordIndex:
    index = RecordIndex()
    index.set("zone", zone_records(zone))
    for svc, slices in services:
        index.set(f"service/{svc.metadata.namespace}/{svc.metadata.name}",  # type: ignore[attr-defined]
                  service_records(svc, slices, zone))  # type: ignore[arg-type]
    return index


BIG = service("big", clusterIP="None")
BIG_SLICE = endpoint_slice("big", [endpoint(f"10.244.3.{i}") for i in range(1, 61)])


@pytest.fixture
async def server() -> AsyncIterator[DNSServer]:
    index = make_index(ZONE, (service("web", clusterIP="10.96.0.20"), []), (BIG, [BIG_SLICE]),
                       (service("ext", type="ExternalName", externalName="web.default.svc.upstream.test"), []))
    srv = await DNSServer(Resolver(index, ZONE)).start("127.0.0.1", 0)
    yield srv
    await srv.stop()


@pytest.fixture
async def upstream() -> AsyncIterator[DNSServer]:
    index = make_index(UPSTREAM_ZONE, (service("web", clusterIP="10.96.7.7"), []))
    srv = await DNSServer(Resolver(index, UPSTREAM_ZONE)).start("127.0.0.1", 0)
    yield srv
    await srv.stop()


async def udp(port: int, qname: str, qtype: str = "A", **kw: object) -> dns.message.Message:
    query = dns.message.make_query(qname, qtype, **kw)  # type: ignore[arg-type]
    return await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=GUARD)


async def raw_udp(port: int, *datagrams: bytes) -> bytes:
    """Send datagrams from one socket; the first reply that comes back."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for data in datagrams:
            await loop.sock_sendto(sock, data, ("127.0.0.1", port))
        return await asyncio.wait_for(loop.sock_recv(sock, 65535), GUARD)


async def test_udp_and_tcp_answer_the_same(server: DNSServer) -> None:
    over_udp = await udp(server.port, "web.default.svc.cluster.local.")
    query = dns.message.make_query("web.default.svc.cluster.local.", "A")
    over_tcp = await dns.asyncquery.tcp(query, "127.0.0.1", port=server.port, timeout=GUARD)
    for response in (over_udp, over_tcp):
        assert response.rcode() == dns.rcode.NOERROR and response.flags & dns.flags.AA
        assert [r.to_text() for r in response.answer] == ["web.default.svc.cluster.local. 30 IN A 10.96.0.20"]


async def test_one_tcp_connection_carries_several_queries(server: DNSServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        ids = []
        for name in ("web.default.svc.cluster.local.", "nosuch.default.svc.cluster.local."):
            query = dns.message.make_query(name, "A")
            ids.append(query.id)
            writer.write(query.to_wire(prepend_length=True))
        await writer.drain()
        replies = []
        for _ in ids:
            length = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), GUARD), "big")
            replies.append(dns.message.from_wire(await reader.readexactly(length)))
        assert [r.id for r in replies] == ids
        assert [r.rcode() for r in replies] == [dns.rcode.NOERROR, dns.rcode.NXDOMAIN]
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_large_answer_is_truncated_over_udp_and_whole_over_tcp(server: DNSServer) -> None:
    query = dns.message.make_query("big.default.svc.cluster.local.", "A", use_edns=False)
    wire = await raw_udp(server.port, query.to_wire())
    assert len(wire) <= 512
    short = dns.message.from_wire(wire)
    assert short.flags & dns.flags.TC and short.id == query.id
    whole = await dns.asyncquery.tcp(query, "127.0.0.1", port=server.port, timeout=GUARD)
    assert not whole.flags & dns.flags.TC and len(whole.answer[0]) == 60
    edns = await udp(server.port, "big.default.svc.cluster.local.", use_edns=0, payload=4096)
    assert not edns.flags & dns.flags.TC and len(edns.answer[0]) == 60
    small = await udp(server.port, "web.default.svc.cluster.local.", use_edns=False)
    assert not small.flags & dns.flags.TC


async def test_a_query_that_does_not_parse_gets_formerr(server: DNSServer) -> None:
    header = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)  # promises a question, has none
    reply = dns.message.from_wire(await raw_udp(server.port, header + b"\x03abc"))
    assert reply.id == 0x1234 and reply.rcode() == dns.rcode.FORMERR and reply.flags & dns.flags.QR


async def test_datagrams_that_are_no_query_get_no_answer(server: DNSServer) -> None:
    response = dns.message.make_response(dns.message.make_query("web.default.svc.cluster.local.", "A"))
    query = dns.message.make_query("web.default.svc.cluster.local.", "A")
    # A too-short datagram and a response come first; the first reply is the real query's.
    first = dns.message.from_wire(await raw_udp(server.port, b"\x00\x01\x02", response.to_wire(), query.to_wire()))
    assert first.id == query.id and first.rcode() == dns.rcode.NOERROR


async def test_forwarding_names_outside_the_zone_and_external_names(upstream: DNSServer) -> None:
    index = make_index(ZONE, (service("ext", type="ExternalName", externalName="web.default.svc.upstream.test"),
                              []))
    resolver = Resolver(index, ZONE, forwarder=Forwarder([("127.0.0.1", upstream.port)], timeout=GUARD))
    srv = await DNSServer(resolver).start("127.0.0.1", 0)
    try:
        outside = await udp(srv.port, "web.default.svc.upstream.test.")
        assert outside.rcode() == dns.rcode.NOERROR and outside.flags & dns.flags.RA
        assert [r.to_text() for r in outside.answer] == ["web.default.svc.upstream.test. 30 IN A 10.96.7.7"]
        gone = await udp(srv.port, "nosuch.default.svc.upstream.test.")
        assert gone.rcode() == dns.rcode.NXDOMAIN
        chased = await udp(srv.port, "ext.default.svc.cluster.local.")
        assert [r.to_text() for r in chased.answer] == [
            "ext.default.svc.cluster.local. 30 IN CNAME web.default.svc.upstream.test.",
            "web.default.svc.upstream.test. 30 IN A 10.96.7.7"]
        theirs = await udp(srv.port, "7.7.96.10.in-addr.arpa.", "PTR")  # not a cluster IP here: asked upstream
        assert [r.to_text() for r in theirs.answer] == [
            "7.7.96.10.in-addr.arpa. 30 IN PTR web.default.svc.upstream.test."]
        assert not theirs.flags & dns.flags.AA
    finally:
        await srv.stop()


async def test_an_upstream_that_is_down_gives_servfail() -> None:
    index = make_index(ZONE)
    dead = ("127.0.0.1", free_port())  # nothing listens there
    srv = await DNSServer(Resolver(index, ZONE, forwarder=Forwarder([dead], timeout=1.0))).start("127.0.0.1", 0)
    try:
        reply = await udp(srv.port, "example.com.")
        assert reply.rcode() == dns.rcode.SERVFAIL
        inside = await udp(srv.port, "nosuch.default.svc.cluster.local.")
        assert inside.rcode() == dns.rcode.NXDOMAIN  # the zone never depends on the upstream
    finally:
        await srv.stop()
