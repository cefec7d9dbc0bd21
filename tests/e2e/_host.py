"""What the host looks like, before `kubelab up` and after `kubelab down`.

A snapshot records what a lab could leave behind on the host: network
namespaces, the root namespace's links and routes, its iptables and
nftables rules, mounts, processes naming the lab's state directory, and
cgroups under /sys/fs/cgroup/*/kubelab. `leftovers(before, after, names)`
splits every difference into the lab's and others'.

Other tests and other labs may run on the same host at the same time (a
developer's machine, a shared runner), and they change the same tables:
another test's veth appears in the root namespace, dockerd rewrites its
chains. So a difference counts as the lab's when it carries the lab's
marks: its prefix, its state directory, its nodes' names, the
`klpod-<id>` namespaces of its pods' sandboxes (recorded while it ran),
or, in the root namespace (where the lab itself never writes: everything
it makes lives in its namespaces), what its components would write there
if one ever ran in the wrong namespace: KUBE- chains, the kube-proxy
nftables table, cni0, addresses in the lab's subnet, pod or Service
ranges. Everything else is reported as others' changes, for the record,
and fails nothing.

Packet and byte counters are stripped from rule dumps; they change with
every packet.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

_COUNTERS = [
    (re.compile(r"\[\d+:\d+\]"), "[0:0]"),                      # iptables-save chain counters
    (re.compile(r"counter packets \d+ bytes \d+"), "counter"),  # nft
]


def _lines(argv: list[str]) -> list[str]:
    out = subprocess.run(argv, capture_output=True, text=True)
    return out.stdout.splitlines() if out.returncode == 0 else [f"<{argv[0]} failed: {out.stderr.strip()}>"]


def _rules(argv: list[str]) -> list[str]:
    lines = []
    for line in _lines(argv):
        if line.startswith("#"):  # iptables-save's "Generated on <date>"
            continue
        for pattern, replacement in _COUNTERS:
            line = pattern.sub(replacement, line)
        lines.append(line)
    return lines


@dataclass
class Snapshot:
    netns: set[str] = field(default_factory=set)
    links: set[str] = field(default_factory=set)
    routes: set[str] = field(default_factory=set)
    iptables: list[str] = field(default_factory=list)
    nftables: list[str] = field(default_factory=list)
    mounts: set[str] = field(default_factory=set)
    processes: set[str] = field(default_factory=set)
    cgroups: set[str] = field(default_factory=set)

    @classmethod
    def take(cls, state_dir: Path) -> Snapshot:
        return cls(
            netns={line.split()[0] for line in _lines(["ip", "netns", "list"]) if line.strip()},
            # name, kind and flags; not counters, not the link index
            links={re.sub(r"^\d+: ", "", line).split("\\")[0] for line in _lines(["ip", "-o", "link", "show"])},
            routes=set(_lines(["ip", "route", "show", "table", "all"])),
            iptables=_rules(["iptables-save"]),
            nftables=_rules(["nft", "list", "ruleset"]),
            mounts={" ".join(line.split()[3:5]) for line in Path("/proc/self/mountinfo").read_text().splitlines()},
            processes=_processes_naming(str(state_dir)),
            cgroups={str(p) for p in Path("/sys/fs/cgroup").glob("*/kubelab/*") if p.is_dir()},
        )


def _processes_naming(needle: str) -> set[str]:
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline:
            found.add(f"{proc.name}: {cmdline.strip()}")
    return found


@dataclass(frozen=True)
class LabNames:
    """What names the lab's own things."""

    prefix: str
    state_dir: str
    nodes: tuple[str, ...]
    pod_netns: frozenset[str]   # klpod-<sandbox id> of every sandbox its shims made

    def mine(self, text: str) -> bool:
        return (self.prefix + "-" in text or self.state_dir in text
                or any(f"/run/kubelab-node/{n}" in text for n in self.nodes)
                or any(ns in text for ns in self.pod_netns))


def pod_netns_names(state_dir: Path) -> frozenset[str]:
    """The pod network namespaces of every sandbox the lab's shims hold
    (the shim names them klpod-<first 16 characters of the sandbox id>)."""
    return frozenset(f"klpod-{d.name[:16]}" for d in state_dir.glob("nodes/*/crishim/sandboxes/*"))


# What the lab's proxies, pod network and topology would write if they ever
# wrote into the root namespace by mistake.
_LAB_MARKERS = re.compile(r"KUBE-|kube-proxy|kubelab|\b10\.(200\.0|244|96)\.|\bcni0\b")


def leftovers(before: Snapshot, after: Snapshot, names: LabNames) -> tuple[list[str], list[str]]:
    """(the lab's, others') changes between `before` and `after`: the
    lab's are what it left behind; others' are what something else on the
    host (dockerd, other tests) changed meanwhile, for the record."""
    mine: list[str] = []
    others: list[str] = []
    for kind, was, now in (("network namespace", before.netns, after.netns), ("mount", before.mounts, after.mounts),
                           ("process", before.processes, after.processes),
                           ("cgroup", before.cgroups, after.cgroups)):
        for item in sorted(now - was):
            (mine if names.mine(item) else others).append(f"{kind} added: {item}")
    # The root namespace: the lab adds nothing there and removes nothing.
    for kind, was, now in (("link", before.links, after.links), ("route", before.routes, after.routes),
                           ("iptables rule", set(before.iptables), set(after.iptables)),
                           ("nftables rule", set(before.nftables), set(after.nftables))):
        for change, items in (("added to", now - was), ("removed from", was - now)):
            for item in sorted(items):
                ours = names.mine(item) or _LAB_MARKERS.search(item)
                (mine if ours else others).append(f"{kind} {change} the root namespace: {item}")
    return mine, others


def summary(changes: list[str], shown: int = 5) -> str:
    """A few changes and how many more: others' changes can be hundreds
    (another lab's mounts and namespaces)."""
    more = f"; and {len(changes) - shown} more" if len(changes) > shown else ""
    return "; ".join(changes[:shown]) + more
