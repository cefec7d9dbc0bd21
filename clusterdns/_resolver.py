"""Answering one DNS query from the index, as an authoritative server for
the cluster zone and the reverse zones.

* A name in the cluster zone (`cluster.local` by default) is answered from
  the index with the AA flag: its records; a CNAME (an ExternalName
  Service) followed by the target's records when the target is in the
  zone too, or asked of the upstream when one is configured; NOERROR with
  no answer and the SOA in authority when the name exists without records
  of that type; NXDOMAIN with the SOA when the name does not exist.
* A PTR name (`in-addr.arpa`, `ip6.arpa`) the index knows is answered the
  same way; one it does not know goes upstream when there is one (a pod's
  reverse lookup of an outside address), NXDOMAIN otherwise.
* Anything else goes upstream when `--upstream` is set; without one the
  answer is REFUSED, so a lab never leaks a query off the machine.

SRV answers carry the A/AAAA records of their targets in the additional
section, as the spec allows, which saves the client a round trip.

Under failure: an upstream that does not answer gives SERVFAIL for a
forwarded query; for a CNAME chase the CNAME is still returned, and the
client's own resolver can follow it. Malformed queries never get here
(`_server.py` answers FORMERR); a query for another class, and a zone
transfer, is REFUSED; an opcode other than QUERY is NOTIMP; EDNS versions
above 0 are BADVERS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.NS import NS
from dns.rdtypes.ANY.SOA import SOA
from dns.rdtypes.ANY.TXT import TXT

from ._forward import Forwarder, ForwardError
from ._index import RecordIndex
from ._records import IN, Record

log = logging.getLogger(__name__)

DEFAULT_ZONE = "cluster.local"
DEFAULT_TTL = 30
# The schema version the spec asks `dns-version.<zone>` to carry.
SCHEMA_VERSION = "1.1.0"
# What we tell EDNS clients we can take; 1232 avoids IP fragmentation (DNS flag day 2020).
OUR_PAYLOAD = 1232
REVERSE_ZONES = (dns.name.from_text("in-addr.arpa."), dns.name.from_text("ip6.arpa."))
MAX_CNAME_CHAIN = 8
ADDRESS_TYPES = (dns.rdatatype.A, dns.rdatatype.AAAA)


def zone_records(zone: dns.name.Name) -> list[Record]:
    """The zone's own records: its name server and the schema version."""
    return [Record(zone, NS(IN, dns.rdatatype.NS, name_server(zone))),
            Record(dns.name.Name((b"dns-version", *zone.labels)),
                   TXT(IN, dns.rdatatype.TXT, [SCHEMA_VERSION.encode()]))]


def name_server(zone: dns.name.Name) -> dns.name.Name:
    return dns.name.Name((b"ns", b"dns", *zone.labels))


@dataclass
class Answer:
    """What the index could say: the response, and an out-of-zone CNAME
    target whose records only the upstream knows (None: nothing to ask)."""

    response: dns.message.Message
    chase: dns.name.Name | None = None


class Resolver:
    def __init__(self, index: RecordIndex, zone: dns.name.Name, *, ttl: int = DEFAULT_TTL,
                 forwarder: Forwarder | None = None) -> None:
        self.index = index
        self.zone = zone
        self.ttl = ttl
        self.forwarder = forwarder
        self._soas: dict[tuple[dns.name.Name, int], dns.rrset.RRset] = {}

    async def resolve(self, query: dns.message.Message) -> dns.message.Message:
        """The response to `query`: from the index, the upstream, or both."""
        answer = self.answer(query)
        if answer is None:
            return await self._forward(query)
        if answer.chase is not None:
            await self._chase(answer, query.question[0].rdtype)
        return answer.response

    def answer(self, query: dns.message.Message) -> Answer | None:
        """The response from the index alone, or None when the whole query
        belongs upstream. Synchronous, so the UDP path needs no task."""
        response = dns.message.make_response(query, recursion_available=self.forwarder is not None,
                                             our_payload=OUR_PAYLOAD)
        if query.edns > 0:
            response.set_rcode(dns.rcode.BADVERS)
            return Answer(response)
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
            return Answer(response)
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return Answer(response)
        question = query.question[0]
        qname, qtype = question.name, question.rdtype
        if question.rdclass not in (dns.rdataclass.IN, dns.rdataclass.ANY) or \
                qtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):  # no zone transfers
            response.set_rcode(dns.rcode.REFUSED)
            return Answer(response)
        apex = self._apex(qname)
        if apex is None:
            if self.forwarder is not None:
                return None
            response.set_rcode(dns.rcode.REFUSED)
            return Answer(response)
        node = self.index.lookup(qname)
        if node is None and apex != self.zone and qname != apex:
            if self.forwarder is not None:
                return None  # a reverse name the cluster does not own
        response.flags |= dns.flags.AA
        if qname == apex and qtype in (dns.rdatatype.SOA, dns.rdatatype.ANY):
            response.answer.append(self._soa(apex))
            if qtype == dns.rdatatype.SOA:
                return Answer(response)
            node = node or {}
        if node is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(self._soa(apex))
            return Answer(response)
        return self._from_node(response, qname, qtype, node, apex)

    # ------------------------------------------------------------ internals

    def _from_node(self, response: dns.message.Message, qname: dns.name.Name, qtype: dns.rdatatype.RdataType,
                   node: dict[dns.rdatatype.RdataType, dict[dns.rdata.Rdata, int]],
                   apex: dns.name.Name) -> Answer:
        if qtype == dns.rdatatype.ANY:
            for rdtype, rdatas in node.items():
                response.answer.append(self._rrset(qname, rdtype, rdatas))
            return Answer(response)
        name = qname
        for _ in range(MAX_CNAME_CHAIN):
            cname = node.get(dns.rdatatype.CNAME)
            if cname is None or qtype == dns.rdatatype.CNAME:
                break
            response.answer.append(self._rrset(name, dns.rdatatype.CNAME, cname))
            name = next(iter(cname)).target  # type: ignore[attr-defined]
            if not name.is_subdomain(self.zone):
                return Answer(response, chase=name if self.forwarder is not None else None)
            found = self.index.lookup(name)
            if found is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
                response.authority.append(self._soa(apex))
                return Answer(response)
            node = found
        found_rdatas = node.get(qtype)
        if found_rdatas:
            response.answer.append(self._rrset(name, qtype, found_rdatas))
            if qtype == dns.rdatatype.SRV:
                self._add_targets(response, found_rdatas)
        else:
            response.authority.append(self._soa(apex))
        return Answer(response)

    def _add_targets(self, response: dns.message.Message, srvs: dict[dns.rdata.Rdata, int]) -> None:
        seen = set()
        for srv in srvs:
            target = srv.target  # type: ignore[attr-defined]
            if target in seen:
                continue
            seen.add(target)
            node = self.index.lookup(target) or {}
            for rdtype in ADDRESS_TYPES:
                if node.get(rdtype):
                    response.additional.append(self._rrset(target, rdtype, node[rdtype]))

    def _apex(self, qname: dns.name.Name) -> dns.name.Name | None:
        """The zone this server is authoritative for that holds `qname`."""
        if qname.is_subdomain(self.zone):
            return self.zone
        for zone in REVERSE_ZONES:
            if qname.is_subdomain(zone):
                return zone
        return None

    def _rrset(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType,
               rdatas: dict[dns.rdata.Rdata, int]) -> dns.rrset.RRset:
        rrset = dns.rrset.RRset(name, dns.rdataclass.IN, rdtype)
        rrset.update_ttl(self.ttl)
        for rdata in rdatas:
            rrset.add(rdata)
        return rrset

    def _soa(self, apex: dns.name.Name) -> dns.rrset.RRset:
        # Every negative answer carries one; built once per zone change.
        key = (apex, self.index.serial)
        cached = self._soas.get(key)
        if cached is None:
            if len(self._soas) > 8:
                self._soas.clear()
            cached = self._soas[key] = self._build_soa(apex)
        return cached

    def _build_soa(self, apex: dns.name.Name) -> dns.rrset.RRset:
        soa = SOA(IN, dns.rdatatype.SOA, name_server(self.zone), dns.name.Name((b"hostmaster", *self.zone.labels)),
                  self.index.serial, 7200, 1800, 86400, self.ttl)
        return self._rrset(apex, dns.rdatatype.SOA, {soa: 1})

    async def _forward(self, query: dns.message.Message) -> dns.message.Message:
        assert self.forwarder is not None
        try:
            reply = await self.forwarder.forward(query)
        except ForwardError as err:
            log.debug("forwarding %s: %s", query.question[0] if query.question else "?", err)
            response = dns.message.make_response(query, recursion_available=True, our_payload=OUR_PAYLOAD)
            response.set_rcode(dns.rcode.SERVFAIL)
            return response
        reply.id = query.id
        # Relayed, not ours: this server offers recursion but holds no authority for the name.
        reply.flags = (reply.flags | dns.flags.RA) & ~dns.flags.AA
        return reply

    async def _chase(self, answer: Answer, qtype: dns.rdatatype.RdataType) -> None:
        assert self.forwarder is not None and answer.chase is not None
        try:
            reply = await self.forwarder.forward(dns.message.make_query(answer.chase, qtype))
        except ForwardError as err:
            log.debug("following CNAME to %s: %s", answer.chase, err)
            return
        answer.response.answer.extend(reply.answer)
