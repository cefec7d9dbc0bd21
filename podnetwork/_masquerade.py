"""Masquerade for pod traffic that leaves the cluster CIDR (ip-masq-agent's
rule): pod-to-pod traffic keeps its source address everywhere; a packet
from a pod to anything outside the cluster CIDR leaves with the node's
address, so the far end can answer without knowing the pod network.

One chain of our own in the nat table, rewritten whole with one
`iptables-restore --noflush` (which leaves every other chain alone), and
one jump to it from POSTROUTING, added once.
"""

from __future__ import annotations

import subprocess

CHAIN = "KUBELAB-PODNET-MASQ"


class MasqueradeError(RuntimeError):
    pass


def rules(cluster_cidr: str) -> str:
    return "\n".join([
        "*nat",
        f":{CHAIN} - [0:0]",
        f"-A {CHAIN} -d {cluster_cidr} -m comment --comment \"pod to pod: no NAT\" -j RETURN",
        f"-A {CHAIN} -m comment --comment \"leaving the cluster CIDR\" -j MASQUERADE",
        "COMMIT",
        "",
    ])


def jump(cluster_cidr: str) -> list[str]:
    return ["POSTROUTING", "-s", cluster_cidr, "-m", "comment", "--comment", "kubelab pod network", "-j", CHAIN]


def ensure(cluster_cidr: str) -> None:
    restore = subprocess.run(["iptables-restore", "--noflush"], input=rules(cluster_cidr), capture_output=True,
                             text=True)
    if restore.returncode != 0:
        raise MasqueradeError(f"iptables-restore: {restore.stderr.strip()}")
    check = subprocess.run(["iptables", "-t", "nat", "-C", *jump(cluster_cidr)], capture_output=True, text=True)
    if check.returncode != 0:
        add = subprocess.run(["iptables", "-t", "nat", "-A", *jump(cluster_cidr)], capture_output=True, text=True)
        if add.returncode != 0:
            raise MasqueradeError(f"iptables -t nat -A POSTROUTING: {add.stderr.strip()}")
