"""iptables rule text, as pure functions (no root, no kernel needed).

The layout is kube-proxy's, so `iptables-save` reads the way Kubernetes'
documentation describes it:

nat table
  KUBE-SERVICES     one rule per service port with endpoints (cluster IP and
                    port -> KUBE-SVC-*), external IPs -> KUBE-EXT-*, and last
                    the jump to KUBE-NODEPORTS for node addresses
  KUBE-NODEPORTS    node port -> KUBE-EXT-*
  KUBE-EXT-*        marks for masquerade (the client is off-cluster), then
                    -> KUBE-SVC-*
  KUBE-SVC-*        masquerade mark for off-cluster sources (--cluster-cidr,
                    --masquerade-all), session affinity (`recent` match),
                    then one rule per endpoint chosen with the `statistic`
                    module: 1/n, 1/(n-1), ..., the last unconditional
  KUBE-SEP-*        hairpin mark (source is the endpoint itself), DNAT
  KUBE-MARK-MASQ    sets the 0x4000 mark
  KUBE-POSTROUTING  masquerades marked packets
filter table
  KUBE-SERVICES / KUBE-EXTERNAL-SERVICES  REJECT for service ports without
                    endpoints, so clients fail at once instead of timing out
  KUBE-FORWARD      accepts marked and established service traffic

Chains are returned as {chain: [rule lines]}; `restore_input` turns them
into one iptables-restore --noflush transaction that declares (and so
flushes) exactly the chains it writes and deletes the stale ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ._types import MASQ_MARK, Endpoint, Options, ServicePort, ServicePortName, endpoint_hash, port_proto_hash

KUBE_SERVICES = "KUBE-SERVICES"
KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES"
KUBE_NODEPORTS = "KUBE-NODEPORTS"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_FORWARD = "KUBE-FORWARD"
SERVICE_CHAIN_PREFIXES = ("KUBE-SVC-", "KUBE-SEP-", "KUBE-EXT-")

#: (table, builtin chain, rule spec) jumps into our chains, ensured on full syncs.
JUMPS: tuple[tuple[str, str, str], ...] = (
    ("nat", "PREROUTING", f'-m comment --comment "kubernetes service portals" -j {KUBE_SERVICES}'),
    ("nat", "OUTPUT", f'-m comment --comment "kubernetes service portals" -j {KUBE_SERVICES}'),
    ("nat", "POSTROUTING", f'-m comment --comment "kubernetes postrouting rules" -j {KUBE_POSTROUTING}'),
    ("filter", "INPUT", "-m conntrack --ctstate NEW -m comment --comment "
                        f'"kubernetes externally-visible service portals" -j {KUBE_EXTERNAL_SERVICES}'),
    ("filter", "FORWARD", f'-m comment --comment "kubernetes forwarding rules" -j {KUBE_FORWARD}'),
    ("filter", "FORWARD", f'-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" '
                          f"-j {KUBE_SERVICES}"),
    ("filter", "FORWARD", "-m conntrack --ctstate NEW -m comment --comment "
                          f'"kubernetes externally-visible service portals" -j {KUBE_EXTERNAL_SERVICES}'),
    ("filter", "OUTPUT", f'-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" '
                         f"-j {KUBE_SERVICES}"),
)


def service_chain(name: ServicePortName, protocol: str) -> str:
    return "KUBE-SVC-" + port_proto_hash(name, protocol)


def external_chain(name: ServicePortName, protocol: str) -> str:
    return "KUBE-EXT-" + port_proto_hash(name, protocol)


def endpoint_chain(name: ServicePortName, protocol: str, endpoint: Endpoint) -> str:
    return "KUBE-SEP-" + endpoint_hash(name, protocol, str(endpoint))


def _match(sp: ServicePort) -> str:
    return f"-m {sp.proto} -p {sp.proto}"


def _comment(text: str) -> str:
    return f'-m comment --comment "{text}"'


def has_external(sp: ServicePort) -> bool:
    return bool(sp.node_port or sp.external_ips)


def service_port_chains(sp: ServicePort, targets: Sequence[Endpoint], opts: Options) -> dict[str, list[str]]:
    """The nat chains of one service port with endpoints: KUBE-SVC-*,
    KUBE-EXT-* (node port or external IPs) and one KUBE-SEP-* per endpoint."""
    name = sp.name
    svc = service_chain(name, sp.proto)
    chains: dict[str, list[str]] = {}
    rules: list[str] = []
    dst = f"{_match(sp)} -d {sp.cluster_ip} --dport {sp.port}"
    if opts.masquerade_all:
        rules.append(f"-A {svc} {_comment(f'{name} cluster IP')} {dst} -j {KUBE_MARK_MASQ}")
    elif opts.cluster_cidr:
        rules.append(f"-A {svc} {_comment(f'{name} cluster IP')} {dst} ! -s {opts.cluster_cidr} -j {KUBE_MARK_MASQ}")
    sep_names = [endpoint_chain(name, sp.proto, ep) for ep in targets]
    if sp.affinity_seconds:
        for ep, sep in zip(targets, sep_names, strict=True):
            rules.append(f"-A {svc} {_comment(f'{name} -> {ep}')} -m recent --name {sep} --rcheck "
                         f"--seconds {sp.affinity_seconds} --reap -j {sep}")
    n = len(targets)
    for i, (ep, sep) in enumerate(zip(targets, sep_names, strict=True)):
        chance = f"-m statistic --mode random --probability {1.0 / (n - i):.10f} " if i < n - 1 else ""
        rules.append(f"-A {svc} {_comment(f'{name} -> {ep}')} {chance}-j {sep}")
    chains[svc] = rules
    if has_external(sp):
        ext = external_chain(name, sp.proto)
        chains[ext] = [
            f"-A {ext} {_comment(f'masquerade traffic for {name} external destinations')} -j {KUBE_MARK_MASQ}",
            f"-A {ext} -j {svc}",
        ]
    for ep, sep in zip(targets, sep_names, strict=True):
        affinity = f"-m recent --name {sep} --set " if sp.affinity_seconds else ""
        chains[sep] = [
            f"-A {sep} {_comment(str(name))} -s {ep.ip} -j {KUBE_MARK_MASQ}",
            f"-A {sep} {_comment(str(name))} {affinity}{_match(sp)} -j DNAT --to-destination {ep}",
        ]
    return chains


@dataclass
class TopLevel:
    """The chains rewritten on every sync (small per service port)."""

    nat: dict[str, list[str]]
    filter: dict[str, list[str]]


def top_level_chains(services: Iterable[tuple[ServicePort, bool]], opts: Options) -> TopLevel:
    """KUBE-SERVICES, KUBE-NODEPORTS and friends for (service port, has
    endpoints) pairs, in the order given."""
    nat_svc: list[str] = []
    nodeports: list[str] = []
    f_svc: list[str] = []
    f_ext: list[str] = []
    for sp, has_endpoints in services:
        name, m = sp.name, _match(sp)
        if has_endpoints:
            svc = service_chain(name, sp.proto)
            nat_svc.append(f"-A {KUBE_SERVICES} {_comment(f'{name} cluster IP')} {m} -d {sp.cluster_ip} "
                           f"--dport {sp.port} -j {svc}")
            ext = external_chain(name, sp.proto)
            for ip in sp.external_ips:
                nat_svc.append(f"-A {KUBE_SERVICES} {_comment(f'{name} external IP')} {m} -d {ip} "
                               f"--dport {sp.port} -j {ext}")
            if sp.node_port:
                nodeports.append(f"-A {KUBE_NODEPORTS} {_comment(str(name))} {m} --dport {sp.node_port} -j {ext}")
            continue
        why = _comment(f"{name} has no endpoints")
        # TCP gets a reset: a connect() from a pod then fails at once,
        # where an ICMP port-unreachable is only seen on the SYN's retry.
        reject = "REJECT --reject-with tcp-reset" if sp.protocol.upper() == "TCP" else "REJECT"
        f_svc.append(f"-A {KUBE_SERVICES} {why} {m} -d {sp.cluster_ip} --dport {sp.port} -j {reject}")
        for ip in sp.external_ips:
            f_ext.append(f"-A {KUBE_EXTERNAL_SERVICES} {why} {m} -d {ip} --dport {sp.port} -j {reject}")
        if sp.node_port:
            for dst in _node_destinations(opts):
                f_ext.append(f"-A {KUBE_EXTERNAL_SERVICES} {why} {dst} {m} --dport {sp.node_port} -j {reject}")
    last = _comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain")
    for dst in _node_destinations(opts):
        nat_svc.append(f"-A {KUBE_SERVICES} {last} {dst} -j {KUBE_NODEPORTS}")
    nat = {
        KUBE_SERVICES: nat_svc,
        KUBE_NODEPORTS: nodeports,
        KUBE_MARK_MASQ: [f"-A {KUBE_MARK_MASQ} -j MARK --or-mark {MASQ_MARK:#x}"],
        KUBE_POSTROUTING: [
            f"-A {KUBE_POSTROUTING} -m mark ! --mark {MASQ_MARK:#x}/{MASQ_MARK:#x} -j RETURN",
            f"-A {KUBE_POSTROUTING} -j MARK --xor-mark {MASQ_MARK:#x}",
            f"-A {KUBE_POSTROUTING} {_comment('kubernetes service traffic requiring SNAT')} "
            "-j MASQUERADE --random-fully",
        ],
    }
    filt = {
        KUBE_SERVICES: f_svc,
        KUBE_EXTERNAL_SERVICES: f_ext,
        KUBE_FORWARD: [
            f"-A {KUBE_FORWARD} {_comment('kubernetes forwarding rules')} -m mark --mark "
            f"{MASQ_MARK:#x}/{MASQ_MARK:#x} -j ACCEPT",
            f"-A {KUBE_FORWARD} {_comment('kubernetes forwarding conntrack rule')} -m conntrack "
            "--ctstate RELATED,ESTABLISHED -j ACCEPT",
        ],
    }
    return TopLevel(nat, filt)


def _node_destinations(opts: Options) -> list[str]:
    if not opts.nodeport_ips:
        return ["-m addrtype --dst-type LOCAL"]
    return [f"-d {ip}" for ip in opts.nodeport_ips]


def missing_jumps(saved: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """The JUMPS not found in `iptables-save` output per table."""
    out = []
    for table, chain, spec in JUMPS:
        target = spec.rsplit(" -j ", 1)[1]
        wanted = spec.split(" -j ")[0]
        lines = saved.get(table, "").splitlines()
        found = any(line.startswith(f"-A {chain} ") and line.endswith(f"-j {target}")
                    and _same_matches(line, wanted) for line in lines)
        if not found:
            out.append((table, chain, spec))
    return out


def _same_matches(line: str, wanted: str) -> bool:
    # iptables-save may reorder or unquote; compare the conntrack state part, which tells the jumps apart
    return ("--ctstate NEW" in line) == ("--ctstate NEW" in wanted)


def existing_chains(saved: str) -> set[str]:
    """Chain names declared in one table's iptables-save output."""
    return {line[1:].split(" ", 1)[0] for line in saved.splitlines() if line.startswith(":")}


def restore_input(nat: Mapping[str, Sequence[str]], filt: Mapping[str, Sequence[str]], *,
                  delete_nat: Iterable[str] = (), delete_filter: Iterable[str] = (),
                  jumps: Iterable[tuple[str, str, str]] = ()) -> str:
    """One iptables-restore --noflush transaction: declare (flush) and
    fill the given chains, insert missing jumps, delete stale chains."""
    out: list[str] = []
    jumps = list(jumps)
    for table, chains, deleted in (("filter", filt, list(delete_filter)), ("nat", nat, list(delete_nat))):
        out.append(f"*{table}")
        out.extend(f":{c} - [0:0]" for c in chains)
        out.extend(f":{c} - [0:0]" for c in deleted)
        for _t, chain, spec in (j for j in jumps if j[0] == table):
            out.append(f"-I {chain} 1 {spec}")
        for rules in chains.values():
            out.extend(rules)
        out.extend(f"-X {c}" for c in deleted)
        out.append("COMMIT")
    out.append("")
    return "\n".join(out)
