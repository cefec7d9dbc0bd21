"""The in-memory zone: every record, filed by name, owned by one object.

Records come in per owner (`service/<ns>/<name>`, `pod/<ns>/<name>`, or a
fixed owner for the zone's own records). `set(owner, records)` replaces
what that owner had, so an informer event costs work in proportion to the
one object that changed, never a rebuild of the zone. Two owners may give
the same record (two pods briefly holding one IP, one IP in two headless
Services): each copy is counted, and the record stays until the last owner
drops it.

Besides the records, the index counts every name's ancestors, so a name
that has no records of its own but lies above one that does (`svc.<zone>`,
`<ns>.svc.<zone>`, `_tcp.<svc>...`) exists - NOERROR with no data - while a
name below nothing is NXDOMAIN (RFC 8020's empty non-terminals).

Lookups hash dnspython Names, whose hash and equality ignore case, so
`WEB.Default.svc.cluster.local` finds `web.default.svc.cluster.local` as the
spec wants. The SOA serial moves with every change, so a secondary (or a
person running dig) can see that the zone changed. Everything runs on the
event loop; nothing here awaits, so a lookup never sees half an update.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import dns.name
import dns.rdata
import dns.rdatatype

from ._records import Record

RecordSet = dict[dns.rdatatype.RdataType, dict[dns.rdata.Rdata, int]]


class RecordIndex:
    def __init__(self) -> None:
        self._owned: dict[str, frozenset[Record]] = {}
        self._records: dict[dns.name.Name, RecordSet] = {}
        self._nodes: Counter[dns.name.Name] = Counter()
        self.serial = 1

    # ------------------------------------------------------------ writes

    def set(self, owner: str, records: Iterable[Record]) -> bool:
        """Make `records` the owner's records; whether anything changed."""
        new = frozenset(records)
        old = self._owned.get(owner, frozenset())
        if new == old:
            return False
        for record in old - new:
            self._drop(record)
        for record in new - old:
            self._add(record)
        if new:
            self._owned[owner] = new
        else:
            self._owned.pop(owner, None)
        self.serial = self.serial % 0xFFFFFFFF + 1
        return True

    def remove(self, owner: str) -> bool:
        return self.set(owner, ())

    # ------------------------------------------------------------ reads

    def lookup(self, name: dns.name.Name) -> RecordSet | None:
        """The name's records by type: None if the name does not exist,
        empty if it exists only as an ancestor of names that do."""
        records = self._records.get(name)
        if records is not None:
            return records
        return {} if name in self._nodes else None

    def exists(self, name: dns.name.Name) -> bool:
        return name in self._nodes

    def owned(self, owner: str) -> frozenset[Record]:
        return self._owned.get(owner, frozenset())

    def owners(self) -> list[str]:
        return sorted(self._owned)

    def __len__(self) -> int:
        """How many distinct records are served."""
        return sum(len(rdatas) for by_type in self._records.values() for rdatas in by_type.values())

    # ------------------------------------------------------------ internals

    def _add(self, record: Record) -> None:
        by_type = self._records.setdefault(record.name, {})
        rdatas = by_type.setdefault(record.rdtype, {})
        rdatas[record.rdata] = rdatas.get(record.rdata, 0) + 1
        for node in _self_and_ancestors(record.name):
            self._nodes[node] += 1

    def _drop(self, record: Record) -> None:
        by_type = self._records[record.name]
        rdatas = by_type[record.rdtype]
        rdatas[record.rdata] -= 1
        if not rdatas[record.rdata]:
            del rdatas[record.rdata]
            if not rdatas:
                del by_type[record.rdtype]
                if not by_type:
                    del self._records[record.name]
        for node in _self_and_ancestors(record.name):
            self._nodes[node] -= 1
            if not self._nodes[node]:
                del self._nodes[node]


def _self_and_ancestors(name: dns.name.Name) -> Iterable[dns.name.Name]:
    while True:
        yield name
        if name == dns.name.root or len(name) <= 1:
            return
        name = name.parent()
