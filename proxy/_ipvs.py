"""The IPVS backend: the kernel's own load balancer instead of NAT chains.

As kube-proxy's ipvs mode:

* one virtual server per cluster IP and port, external IP and port, and
  node address and NodePort, with the ready endpoints as real servers
  (masquerading forward method, weight 1); the scheduler is `rr` unless
  `--ipvs-scheduler` says otherwise; ClientIP session affinity is the
  virtual server's persistence timeout;
* every cluster IP is bound to a dummy interface, kube-ipvs0, so the node
  accepts packets for it and IPVS can take them at LOCAL_IN;
* masquerading is ipset + iptables: KUBE-CLUSTER-IP (service IP,port)
  marks off-cluster clients, KUBE-LOOP-BACK (endpoint,port,endpoint)
  masquerades hairpin traffic, KUBE-NODE-PORT-{TCP,UDP} mark NodePorts.

A service port without usable endpoints gets no virtual server: its IP
stays bound to kube-ipvs0, so the node's own stack answers with a reset
(connection refused at once, not a timeout).

The kernel here has no ip_vs module, so `check_available()` refuses the
mode with a clear message; everything above is generated as data by pure
functions (`desired_state`) and unit-tested without root. The applier
diffs that data against what the kernel reports (pyroute2's IPVS and
IPRoute) and is exercised where ip_vs exists.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

from ._iptables_rules import (
    KUBE_MARK_MASQ,
    KUBE_POSTROUTING,
    Options,
    missing_jumps,
    restore_input,
    top_level_chains,
)
from ._runner import CommandRunner
from ._types import MASQ_MARK, ProxySnapshot, ServicePortName, SyncResult

DUMMY = "kube-ipvs0"
CLUSTER_IP_SET = "KUBE-CLUSTER-IP"
LOOP_BACK_SET = "KUBE-LOOP-BACK"
NODE_PORT_SETS = {"tcp": "KUBE-NODE-PORT-TCP", "udp": "KUBE-NODE-PORT-UDP", "sctp": "KUBE-NODE-PORT-SCTP"}
IPSET_TYPES = {CLUSTER_IP_SET: "hash:ip,port", LOOP_BACK_SET: "hash:ip,port,ip",
               **{s: "bitmap:port range 0-65535" for s in NODE_PORT_SETS.values()}}
SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "dh", "sed", "nq", "mh")
IP_VS_SVC_F_PERSISTENT = 0x1


class IPVSUnavailable(RuntimeError):
    pass


def check_available(proc_path: str = "/proc/net/ip_vs") -> None:
    """Raise IPVSUnavailable unless the kernel has IPVS (loading ip_vs
    first, as kube-proxy does)."""
    if os.path.exists(proc_path):
        return
    try:
        done = subprocess.run(["modprobe", "ip_vs"], capture_output=True, text=True, check=False)
        detail = (done.stderr or done.stdout).strip() or f"modprobe exited with {done.returncode}"
    except FileNotFoundError:
        detail = "modprobe is not installed"
    if os.path.exists(proc_path):
        return
    raise IPVSUnavailable(
        f"ipvs proxy mode needs the ip_vs kernel module, which this kernel does not have ({proc_path} is missing; "
        f"modprobe ip_vs: {detail}); use --proxy-mode iptables or nftables")


@dataclass(frozen=True, order=True)
class RealServer:
    ip: str
    port: int
    weight: int = 1


@dataclass(frozen=True, order=True)
class VirtualServer:
    ip: str
    port: int
    protocol: str  # tcp, udp, sctp
    scheduler: str = "rr"
    persistent_seconds: int = 0
    real_servers: tuple[RealServer, ...] = ()


@dataclass
class IPVSState:
    virtual_servers: dict[tuple[str, int, str], VirtualServer] = field(default_factory=dict)
    bound_addresses: set[str] = field(default_factory=set)  # on kube-ipvs0
    ipsets: dict[str, set[str]] = field(default_factory=dict)


def desired_state(snapshot: ProxySnapshot, scheduler: str, node_ips: tuple[str, ...]) -> IPVSState:
    """Virtual servers, dummy-interface addresses and ipset entries for a
    snapshot (pure)."""
    state = IPVSState(ipsets={name: set() for name in IPSET_TYPES})
    for name in sorted(snapshot.services):
        sp = snapshot.services[name]
        proto = sp.proto
        state.bound_addresses.add(sp.cluster_ip)
        state.bound_addresses.update(sp.external_ips)
        state.ipsets[CLUSTER_IP_SET].add(f"{sp.cluster_ip},{proto}:{sp.port}")
        targets = snapshot.targets(name)
        for ep in targets:
            state.ipsets[LOOP_BACK_SET].add(f"{ep.ip},{proto}:{ep.port},{ep.ip}")
        if sp.node_port:
            state.ipsets[NODE_PORT_SETS[proto]].add(str(sp.node_port))
        if not targets:
            continue
        reals = tuple(sorted(RealServer(ep.ip, ep.port) for ep in targets))
        addresses = [(sp.cluster_ip, sp.port)] + [(ip, sp.port) for ip in sp.external_ips]
        addresses += [(ip, sp.node_port) for ip in node_ips] if sp.node_port else []
        for ip, port in addresses:
            state.virtual_servers[(ip, port, proto)] = VirtualServer(ip, port, proto, scheduler, sp.affinity_seconds,
                                                                    reals)
    return state


def masquerade_rules(opts: Options, jumps: Sequence[tuple[str, str, str]] = ()) -> str:
    """The iptables-restore input for ipvs mode's masquerading."""
    top = top_level_chains((), opts)
    match = (f'-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" '
             f"-m set --match-set {CLUSTER_IP_SET} dst,dst")
    svc = []
    if opts.masquerade_all:
        svc.append(f"{match} -j {KUBE_MARK_MASQ}")
    elif opts.cluster_cidr:
        svc.append(f"{match} ! -s {opts.cluster_cidr} -j {KUBE_MARK_MASQ}")
    svc.append("-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT")
    svc.append(f"-A KUBE-SERVICES -m set --match-set {CLUSTER_IP_SET} dst,dst -j ACCEPT")
    node_port = [f"-A KUBE-NODE-PORT -p {p} -m set --match-set {s} dst -j {KUBE_MARK_MASQ}"
                 for p, s in NODE_PORT_SETS.items()]
    post = [f"-A {KUBE_POSTROUTING} -m comment --comment \"Kubernetes endpoints dst ip:port, source ip for "
            f"solving hairpin purpose\" -m set --match-set {LOOP_BACK_SET} dst,dst,src -j MASQUERADE",
            *top.nat[KUBE_POSTROUTING]]
    nat = {"KUBE-SERVICES": svc, "KUBE-NODE-PORT": node_port, KUBE_MARK_MASQ: top.nat[KUBE_MARK_MASQ],
           KUBE_POSTROUTING: post}
    filt = {"KUBE-FORWARD": top.filter["KUBE-FORWARD"], "KUBE-SERVICES": [], "KUBE-EXTERNAL-SERVICES": []}
    return restore_input(nat, filt, jumps=jumps)


def ipset_restore_input(sets: dict[str, set[str]]) -> str:
    """`ipset restore -exist` input that makes each set hold exactly
    `sets[name]`, swapped in atomically through a temporary set."""
    out = []
    for name, entries in sets.items():
        tmp = f"{name}-TMP"[:31]
        out.append(f"create {name} {IPSET_TYPES[name]}")
        out.append(f"create {tmp} {IPSET_TYPES[name]}")
        out.append(f"flush {tmp}")
        out += [f"add {tmp} {e}" for e in sorted(entries)]
        out.append(f"swap {tmp} {name}")
        out.append(f"destroy {tmp}")
    return "\n".join(out) + "\n"


class IpvsProxier:
    mode = "ipvs"

    def __init__(self, runner: CommandRunner, options: Options, scheduler: str = "rr") -> None:
        if scheduler not in SCHEDULERS:
            raise ValueError(f"--ipvs-scheduler: unknown scheduler {scheduler!r}; known: {', '.join(SCHEDULERS)}")
        self.runner = runner
        self.options = options
        self.scheduler = scheduler
        self.current = IPVSState()

    def sync(self, snapshot: ProxySnapshot, changed: set[ServicePortName] | None) -> SyncResult:
        from pyroute2 import IPVS, IPRoute, IPVSDest, IPVSService

        want = desired_state(snapshot, self.scheduler, self.options.nodeport_ips)
        with IPRoute() as ipr:
            links = ipr.link_lookup(ifname=DUMMY)
            if not links:
                ipr.link("add", ifname=DUMMY, kind="dummy")
                links = ipr.link_lookup(ifname=DUMMY)
            index = links[0]
            have = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=index, family=2)}
            for ip in want.bound_addresses - have:
                ipr.addr("add", index=index, address=ip, prefixlen=32)
            for ip in have - want.bound_addresses:
                ipr.addr("del", index=index, address=ip, prefixlen=32)
        with IPVS() as ipvs:
            for key in self.current.virtual_servers.keys() - want.virtual_servers.keys():
                ipvs.service("del", service=_service(IPVSService, self.current.virtual_servers[key]))
            for key, vs in want.virtual_servers.items():
                old = self.current.virtual_servers.get(key)
                if old == vs:
                    continue
                svc = _service(IPVSService, vs)
                ipvs.service("add" if old is None else "set", service=svc)
                old_reals = set(old.real_servers) if old else set()
                for rs in old_reals - set(vs.real_servers):
                    ipvs.dest("del", service=svc, dest=IPVSDest(addr=rs.ip, port=rs.port))
                for rs in set(vs.real_servers) - old_reals:
                    ipvs.dest("add", service=svc, dest=IPVSDest(addr=rs.ip, port=rs.port, weight=rs.weight))
        self.runner.run(["ipset", "restore", "-exist"], stdin=ipset_restore_input(want.ipsets))
        jumps: list[tuple[str, str, str]] = []
        if changed is None:
            jumps = missing_jumps({t: self.runner.run(["iptables-save", "-t", t]) for t in ("nat", "filter")})
        self.runner.run(["iptables-restore", "-w", "5", "--noflush"], stdin=masquerade_rules(self.options, jumps))
        self.current = want
        return SyncResult(full=changed is None, rules={
            "virtual_servers": len(want.virtual_servers),
            "real_servers": sum(len(v.real_servers) for v in want.virtual_servers.values())})

    def cleanup(self) -> None:
        from pyroute2 import IPRoute
        with IPRoute() as ipr:
            for index in ipr.link_lookup(ifname=DUMMY):
                ipr.link("del", index=index)
        self.current = IPVSState()


def _service(cls: type, vs: VirtualServer) -> object:
    proto = {"tcp": 6, "udp": 17, "sctp": 132}[vs.protocol]
    kwargs: dict[str, object] = {"addr": vs.ip, "port": vs.port, "protocol": proto, "sched_name": vs.scheduler,
                                 "af": 2 if ipaddress.ip_address(vs.ip).version == 4 else 10}
    if vs.persistent_seconds:
        kwargs["flags"] = {"flags": IP_VS_SVC_F_PERSISTENT, "mask": 0xFFFF}
        kwargs["timeout"] = vs.persistent_seconds
    return cls(**kwargs)


__all__ = ["MASQ_MARK", "IPVSUnavailable", "IpvsProxier", "check_available", "desired_state"]
