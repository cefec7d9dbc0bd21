"""The DNS wire: UDP and TCP on one port, on the component's event loop.

UDP is an asyncio DatagramProtocol. A query the index can answer is parsed,
answered and sent inside `datagram_received`, with no task and no await, so
the common case costs one parse and one render; only a query that goes
upstream becomes a task (at most MAX_IN_FLIGHT at once; beyond that the
query is dropped and the client retries, as with any busy server). TCP is
an asyncio stream server speaking RFC 7766 framing (a two-byte length per
message), many queries per connection, closed after IDLE_TIMEOUT of quiet.

A UDP answer is cut to 512 bytes, or to the size the client's EDNS OPT
record offers, with the TC flag set when records had to go; the client
then asks again over TCP, where the limit is 65535. A datagram that does
not parse gets FORMERR when its header is readable and nothing otherwise;
a datagram that is itself a response is dropped, so two servers pointed at
each other cannot ping-pong. Neither kind of failure stops the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from . import _metrics as metrics
from ._resolver import Resolver

log = logging.getLogger(__name__)

UDP_DEFAULT_SIZE = 512
TCP_MAX_SIZE = 65535
IDLE_TIMEOUT = 10.0
MAX_IN_FLIGHT = 1024
_HEADER = struct.Struct("!HHHHHH")


class DNSServer:
    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._in_flight: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> DNSServer:
        """Listen on UDP and TCP HOST:PORT (PORT 0: one free number for both)."""
        loop = asyncio.get_running_loop()
        for _attempt in range(20):
            transport, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self), local_addr=(host, port))
            bound = transport.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_connection, host, bound, reuse_address=True)
            except OSError:
                transport.close()
                if port:
                    raise
                continue  # the free UDP number is taken for TCP: pick another
            self._udp = transport
            self.port = bound
            log.info("serving DNS on %s:%d (udp and tcp)", host, bound)
            return self
        raise OSError(f"no port free for both UDP and TCP on {host}")

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for writer in list(self._connections):
            writer.close()
        for task in list(self._in_flight):
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self._tcp is not None:
            await self._tcp.wait_closed()

    # ------------------------------------------------------------ UDP

    def on_datagram(self, data: bytes, addr: Any, transport: asyncio.DatagramTransport) -> None:
        start = time.perf_counter()
        query, reply = parse(data)
        if query is None:
            if reply is not None:
                transport.sendto(reply, addr)
            return
        observe_query(query, "udp")
        answer = self.resolver.answer(query)
        if answer is not None and answer.chase is None:
            transport.sendto(self.render(query, answer.response, "udp", start), addr)
            return
        if len(self._in_flight) >= MAX_IN_FLIGHT:
            log.warning("%d queries in flight upstream; dropping one", len(self._in_flight))
            return
        task = asyncio.create_task(self._answer_later(query, addr, transport, start))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _answer_later(self, query: dns.message.Message, addr: Any, transport: asyncio.DatagramTransport,
                            start: float) -> None:
        response = await self.resolver.resolve(query)
        if not transport.is_closing():
            transport.sendto(self.render(query, response, "udp", start), addr)

    # ------------------------------------------------------------ TCP

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while True:
                try:
                    header = await asyncio.wait_for(reader.readexactly(2), IDLE_TIMEOUT)
                    data = await asyncio.wait_for(reader.readexactly(int.from_bytes(header, "big")), IDLE_TIMEOUT)
                except (asyncio.IncompleteReadError, TimeoutError):
                    return
                start = time.perf_counter()
                query, reply = parse(data)
                if query is not None:
                    observe_query(query, "tcp")
                    reply = self.render(query, await self.resolver.resolve(query), "tcp", start)
                if reply is None:
                    return  # not a query: nothing sensible to say on this stream
                writer.write(len(reply).to_bytes(2, "big") + reply)
                await writer.drain()
        except (ConnectionError, OSError) as err:
            log.debug("tcp connection: %s", err)
        finally:
            self._connections.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    # ------------------------------------------------------------ both

    def render(self, query: dns.message.Message, response: dns.message.Message, proto: str, start: float) -> bytes:
        if proto == "tcp":
            limit = TCP_MAX_SIZE
        else:
            limit = max(UDP_DEFAULT_SIZE, query.payload) if query.edns >= 0 else UDP_DEFAULT_SIZE
        wire = response.to_wire(max_size=limit, prefer_truncation=True)
        if wire[2] & 0x02:
            metrics.TRUNCATED.inc()
        metrics.RESPONSES.labels(dns.rcode.to_text(response.rcode())).inc()
        metrics.DURATION.labels(proto).observe(time.perf_counter() - start)
        return wire


def parse(data: bytes) -> tuple[dns.message.Message | None, bytes | None]:
    """The query in a datagram, or else the reply to send (FORMERR) or
    nothing (unreadable header, or a response rather than a query)."""
    if len(data) < _HEADER.size or data[2] & 0x80:
        return None, None
    try:
        query = dns.message.from_wire(data)
    except (dns.exception.DNSException, ValueError, IndexError, struct.error):
        ident, flags = struct.unpack_from("!HH", data)
        reply_flags = dns.flags.QR | (flags & 0x7900) | dns.rcode.FORMERR  # keep opcode and RD
        return None, _HEADER.pack(ident, reply_flags, 0, 0, 0, 0)
    return query, None


# Query types counted by name; the rest as "other", so a scan of odd types
# cannot blow up the metric's label set.
COUNTED_TYPES = frozenset(dns.rdatatype.from_text(t) for t in
                          ("A", "AAAA", "SRV", "PTR", "CNAME", "TXT", "SOA", "NS", "MX", "ANY", "HTTPS", "SVCB"))


def observe_query(query: dns.message.Message, proto: str) -> None:
    rdtype = query.question[0].rdtype if query.question else None
    qtype = dns.rdatatype.to_text(rdtype) if rdtype in COUNTED_TYPES else "other"
    metrics.REQUESTS.labels(proto, qtype).inc()


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        assert self.transport is not None
        try:
            self.server.on_datagram(data, addr, self.transport)
        except Exception:
            log.exception("answering a datagram from %s failed", addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp: %s", exc)
