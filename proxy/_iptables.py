"""The iptables backend: one `iptables-restore --noflush` per sync.

A full sync reads `iptables-save` for the nat and filter tables, writes
every chain this proxy owns, inserts the jumps from the built-in chains
if they are missing, and deletes any KUBE-SVC/SEP/EXT chain the kernel
has that no service port needs (left by a crash or an older run).

A partial sync writes the top-level chains (KUBE-SERVICES and the like,
one rule per service port) and only the chains of the service ports that
changed; it deletes chains those service ports no longer need from its own
record of what the last sync wrote, so it never reads the kernel. This is
kube-proxy's MinimizeIPTablesRestore: at 10,000 services a one-endpoint
change rewrites a few chains, not 60,000.

Each restore is atomic: if it fails, nothing of it is applied and the
record is left as it was; the caller then asks for a full sync.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ._iptables_rules import (
    KUBE_SERVICES,
    SERVICE_CHAIN_PREFIXES,
    Options,
    existing_chains,
    missing_jumps,
    restore_input,
    service_port_chains,
    top_level_chains,
)
from ._runner import CommandRunner
from ._types import ProxySnapshot, ServicePortName, SyncResult

log = logging.getLogger(__name__)


class IptablesProxier:
    mode = "iptables"

    def __init__(self, runner: CommandRunner, options: Options) -> None:
        self.runner = runner
        self.options = options
        #: service port -> {chain: rule count} as the kernel has them after the last sync
        self._chains: dict[ServicePortName, dict[str, int]] = {}
        self.last_input = ""

    def generate(self, snapshot: ProxySnapshot, changed: set[ServicePortName] | None,
                 existing_nat: set[str] | None = None, jumps: Sequence[tuple[str, str, str]] = (),
                 ) -> tuple[str, dict[ServicePortName, dict[str, int]], dict[str, int]]:
        """The restore input for a sync (changed None: full), the new
        per-service-port chain record, and the top-level rule count per
        table.
        Pure: reads only its arguments and the record."""
        ordered = sorted(snapshot.services.values(), key=lambda sp: sp.name)
        top = top_level_chains(((sp, bool(snapshot.targets(sp.name))) for sp in ordered), self.options)
        nat: dict[str, list[str]] = dict(top.nat)
        record = dict(self._chains)
        stale: set[str] = set()
        names = set(snapshot.services) | set(self._chains) if changed is None else changed
        for name in names:
            old = record.pop(name, {})
            sp = snapshot.services.get(name)
            targets = snapshot.targets(name) if sp is not None else ()
            if sp is not None and targets:
                chains = service_port_chains(sp, targets, self.options)
                nat.update(chains)
                record[name] = {c: len(r) for c, r in chains.items()}
            stale |= old.keys() - record.get(name, {}).keys()
        if existing_nat is not None:
            active = {c for chains in record.values() for c in chains}
            stale |= {c for c in existing_nat if c.startswith(SERVICE_CHAIN_PREFIXES) and c not in active}
        top_rules = {"nat": sum(len(r) for r in top.nat.values()),
                     "filter": sum(len(r) for r in top.filter.values())}
        text = restore_input(nat, top.filter, delete_nat=sorted(stale - nat.keys()),
                             jumps=jumps)
        return text, record, top_rules

    def sync(self, snapshot: ProxySnapshot, changed: set[ServicePortName] | None) -> SyncResult:
        existing: set[str] | None = None
        jumps: list[tuple[str, str, str]] = []
        if changed is None:
            saved = {t: self.runner.run(["iptables-save", "-t", t]) for t in ("nat", "filter")}
            existing = existing_chains(saved["nat"])
            jumps = missing_jumps(saved)
        text, record, top_rules = self.generate(snapshot, changed, existing, jumps)
        self.runner.run(["iptables-restore", "-w", "5", "--noflush"], stdin=text)
        self._chains = record
        self.last_input = text
        nat_rules = sum(n for chains in record.values() for n in chains.values())
        return SyncResult(full=changed is None, rules={"nat": nat_rules + top_rules["nat"],
                                                       "filter": top_rules["filter"]},
                          written_lines=text.count("\n"))

    def cleanup(self) -> None:
        """Remove every chain and jump this proxy made (`--cleanup`)."""
        saved = {t: self.runner.run(["iptables-save", "-t", t]) for t in ("nat", "filter")}
        lines: list[str] = []
        for table in ("filter", "nat"):
            ours = [c for c in existing_chains(saved[table]) if c.startswith("KUBE-")]
            lines.append(f"*{table}")
            for line in saved[table].splitlines():
                if line.startswith("-A ") and any(line.endswith(f"-j {c}") for c in ours) \
                        and line.split(" ", 2)[1] not in ours:
                    lines.append("-D" + line[2:])
            lines.extend(f":{c} - [0:0]" for c in ours)
            lines.extend(f"-X {c}" for c in ours)
            lines.append("COMMIT")
        self.runner.run(["iptables-restore", "-w", "5", "--noflush"], stdin="\n".join(lines) + "\n")
        self._chains = {}


__all__ = ["KUBE_SERVICES", "IptablesProxier"]
