"""The nftables backend: one `nft -f` transaction per sync, proportional to
what changed.

The backend remembers what its last successful sync left in the table:
every chain's rules, every map element, every affinity set. A partial
sync recomputes only the changed service ports, rewrites just the chains
whose rules differ, adds and deletes just the map elements that differ,
and deletes chains and sets nothing needs any more (emptied first, after
the elements and rules that pointed at them are gone, so the kernel
accepts the deletion within the same transaction). A one-endpoint change
at 10,000 services is a handful of commands.

A full sync (the first, the periodic one, and the one after a failure)
lists the table's chains and sets (`nft -j list chains|sets|maps`),
rewrites every chain and refills every map from scratch, and deletes
whatever it finds that no service port needs. Affinity sets are never
flushed, so ClientIP stickiness survives resyncs.

Each transaction is atomic: if `nft -f` fails nothing of it is applied,
the record stays as it was, and the caller asks for a full sync.
"""

from __future__ import annotations

import json
import logging

from ._nftables_rules import (
    BASE_CHAINS,
    FAMILY,
    MAPS,
    NODEPORT_IPS,
    SET_DEFS,
    TABLE,
    Options,
    ServiceObjects,
    T,
    add_affinity_set,
    add_endpoints_map,
    add_table,
    declare_chain,
    element,
    fill_chain,
    fixed_chains,
    service_objects,
)
from ._runner import CommandError, CommandRunner
from ._types import ProxySnapshot, ServicePortName, SyncResult

log = logging.getLogger(__name__)


class NftablesProxier:
    mode = "nftables"

    def __init__(self, runner: CommandRunner, options: Options) -> None:
        self.runner = runner
        self.options = options
        self._objects: dict[ServicePortName, ServiceObjects] = {}
        self._nodeport_ips: set[str] = set()
        self.last_input = ""

    # ------------------------------------------------------------ generation (pure)

    def generate(self, snapshot: ProxySnapshot, changed: set[ServicePortName] | None,
                 existing: tuple[set[str], set[str]] | None = None,
                 ) -> tuple[str, dict[ServicePortName, ServiceObjects]]:
        """The `nft -f` input for a sync (changed None: full, with the
        chains and sets `existing` lists) and the new record."""
        full = changed is None
        record = dict(self._objects)
        names = set(snapshot.services) | set(self._objects) if changed is None else changed
        new_chains: list[str] = []
        fill: list[str] = []
        dels: list[str] = []
        adds: list[str] = []
        stale_chains: set[str] = set()
        stale_sets: set[str] = set()
        stale_maps: set[str] = set()
        for name in sorted(names):
            old = ServiceObjects() if full else record.get(name, ServiceObjects())
            before = record.pop(name, ServiceObjects())
            sp = snapshot.services.get(name)
            new = service_objects(sp, snapshot.targets(name), self.options) if sp is not None else ServiceObjects()
            if new.chains or new.elements:
                record[name] = new
            for s in sorted(new.sets - old.sets):
                new_chains.append(add_affinity_set(s))
            for m, entries in new.maps.items():
                if old.maps.get(m) != entries:
                    if m not in old.maps:
                        new_chains.append(add_endpoints_map(m))
                    fill += [f"flush map {T} {m}", element("add", m, ", ".join(entries), None)]
            for chain, rules in new.chains.items():
                if old.chains.get(chain) != rules:
                    new_chains += declare_chain(chain)
                    fill += fill_chain(chain, rules)
            for (m, key), value in old.elements.items():
                if new.elements.get((m, key)) != value:
                    dels.append(element("delete", m, key))
            for (m, key), value in new.elements.items():
                if old.elements.get((m, key)) != value:
                    adds.append(element("add", m, key, value))
            stale_chains |= before.chains.keys() - new.chains.keys()
            stale_sets |= before.sets - new.sets
            stale_maps |= before.maps.keys() - new.maps.keys()
        wanted_ips = set(self.options.nodeport_ips)
        out: list[str] = []
        if full:
            out += add_table()
            for chain, rules in fixed_chains(self.options).items():
                out += declare_chain(chain)
                fill += fill_chain(chain, rules)
            out += [f"flush map {T} {m}" for m in MAPS] + [f"flush set {T} {s}" for s in SET_DEFS]
            out += [element("add", NODEPORT_IPS, ip) for ip in sorted(wanted_ips)]
            dels = []
            if existing is not None:
                chains, sets = existing
                active_chains = {c for o in record.values() for c in o.chains}
                active_sets = {s for o in record.values() for s in (*o.sets, *o.maps)}
                stale_chains |= {c for c in chains if c not in active_chains and c not in fixed_chains(self.options)}
                stale_sets |= {s for s in sets if s not in active_sets and s not in MAPS and s not in SET_DEFS
                               and not s.startswith("endpoints-")}
                stale_maps |= {s for s in sets if s not in active_sets and s.startswith("endpoints-")}
        else:
            out += [element("delete", NODEPORT_IPS, ip) for ip in sorted(self._nodeport_ips - wanted_ips)]
            out += [element("add", NODEPORT_IPS, ip) for ip in sorted(wanted_ips - self._nodeport_ips)]
        live_chains = {c for o in record.values() for c in o.chains}
        live_sets = {s for o in record.values() for s in o.sets}
        live_maps = {m for o in record.values() for m in o.maps}
        stale_chains -= live_chains
        stale_sets -= live_sets
        stale_maps -= live_maps
        out += new_chains + fill + dels + adds
        # Deletions in reference order: flushing a service chain drops its
        # `vmap @endpoints-...` rule, which frees the endpoints map; the map
        # goes before the endpoint chains its elements `goto` (the kernel
        # refuses to delete a chain a map element still names: EBUSY).
        out += [f"flush chain {T} {c}" for c in sorted(stale_chains)]
        out += [f"delete map {T} {m}" for m in sorted(stale_maps)]
        out += [f"delete chain {T} {c}" for c in sorted(stale_chains)]
        out += [f"delete set {T} {s}" for s in sorted(stale_sets)]
        return ("\n".join(out) + "\n" if out else ""), record

    # ------------------------------------------------------------ applying

    def _list(self, what: str) -> set[str]:
        try:
            raw = self.runner.run(["nft", "-j", "list", what, FAMILY])
        except CommandError:
            return set()
        kind = what[:-1]  # chains -> chain
        return {o[kind]["name"] for o in json.loads(raw).get("nftables", [])
                if kind in o and o[kind].get("table") == TABLE}

    def sync(self, snapshot: ProxySnapshot, changed: set[ServicePortName] | None) -> SyncResult:
        existing = None
        if changed is None:
            existing = (self._list("chains"), self._list("sets") | self._list("maps"))
        text, record = self.generate(snapshot, changed, existing)
        if text.strip():
            self.runner.run(["nft", "-f", "-"], stdin=text)
        self._objects = record
        self._nodeport_ips = set(self.options.nodeport_ips)
        self.last_input = text
        rules = sum(len(r) for r in fixed_chains(self.options).values())
        rules += sum(len(r) for o in record.values() for r in o.chains.values())
        return SyncResult(full=changed is None, written_lines=text.count("\n"), rules={
            "rules": rules, "chains": len(BASE_CHAINS) + sum(len(o.chains) for o in record.values()),
            "map_elements": sum(len(o.elements) for o in record.values())})

    def cleanup(self) -> None:
        self.runner.run(["nft", "-f", "-"], stdin=f"add table {T}\ndelete table {T}\n")
        self._objects = {}
        self._nodeport_ips = set()
