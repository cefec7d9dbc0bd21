"""The lab's network: one network namespace per machine, wired to one switch.

A real cluster's machines sit on a network; the lab makes that network out
of namespaces on this host, so every packet the lab sends stays inside
namespaces the lab created and the host's own interfaces, routes and
netfilter rules are never touched:

* `<prefix>-lab` holds the switch: a Linux bridge `br0`, and one end of a
  veth pair per machine. Nothing else lives there, so its FORWARD chain is
  the kernel's default ACCEPT whatever dockerd does to the host's.
* `<prefix>-cp` is the control-plane machine (etcd, apiserver, scheduler,
  controller-manager, DNS, the image registry) and `<prefix>-node-<i>` the
  nodes (shim, kubelet, proxy). Each sees its end of the veth pair as
  `eth0` with an address on the lab subnet (10.200.0.0/24 by default: .2
  for the control plane, .11 upwards for the nodes), `lo` up and IPv4
  forwarding on, because nodes route pod traffic. A node's default route
  points at the control plane, as a machine's points at its router: a
  packet to a Service's virtual IP needs some route before the proxy's
  rules rewrite it, and the control plane forwards nothing out of the lab
  (it has no default route itself).

`create()` is idempotent and `destroy()` removes every namespace with the
lab's prefix, including ones a crashed run left behind (deleting a
namespace deletes the veth ends and bridge in it). Processes started in a
namespace keep it alive only as long as they run, so the lab stops its
processes before it destroys the network.
"""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass, field

from pyroute2 import IPRoute, netns

DEFAULT_SUBNET = "10.200.0.0/24"
CONTROL_PLANE_HOST = 2
FIRST_NODE_HOST = 11
BRIDGE = "br0"
IFNAME = "eth0"


class TopologyError(RuntimeError):
    pass


@dataclass(frozen=True)
class Machine:
    """One namespace on the lab network."""

    name: str        # the namespace, e.g. kl-node-1
    address: str     # its eth0 address on the lab subnet
    port: str        # its veth end on the switch (at most 15 characters)


@dataclass
class Topology:
    prefix: str = "kl"
    nodes: int = 1
    subnet: str = DEFAULT_SUBNET
    machines: list[Machine] = field(init=False)

    def __post_init__(self) -> None:
        if not 0 <= self.nodes <= 200:
            raise TopologyError(f"nodes: must be between 0 and 200, not {self.nodes}")
        net = ipaddress.ip_network(self.subnet)
        if net.num_addresses < FIRST_NODE_HOST + self.nodes + 1:
            raise TopologyError(f"subnet {self.subnet} is too small for {self.nodes} nodes")
        hosts = [CONTROL_PLANE_HOST] + [FIRST_NODE_HOST + i for i in range(self.nodes)]
        names = [self.control_plane] + [self.node(i + 1) for i in range(self.nodes)]
        self.machines = [
            Machine(name, str(net.network_address + host), f"{self.prefix}-p{host}"[:15])
            for name, host in zip(names, hosts, strict=True)]

    # ------------------------------------------------------------ names

    @property
    def switch(self) -> str:
        return f"{self.prefix}-lab"

    @property
    def control_plane(self) -> str:
        return f"{self.prefix}-cp"

    def node(self, i: int) -> str:
        return f"{self.prefix}-node-{i}"

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen

    def machine(self, name: str) -> Machine:
        for m in self.machines:
            if m.name == name:
                return m
        raise KeyError(name)

    def namespaces(self) -> list[str]:
        """The lab's namespaces that exist now (a crashed run's included)."""
        mine = {self.switch, self.control_plane}
        return sorted(n for n in netns.listnetns()
                      if n in mine or n.startswith(f"{self.prefix}-node-"))

    # ------------------------------------------------------------ lifecycle

    def create(self) -> None:
        existing = set(netns.listnetns())
        if self.switch not in existing:
            netns.create(self.switch)
        with IPRoute(netns=self.switch) as switch:
            _up(switch, "lo")
            if not switch.link_lookup(ifname=BRIDGE):
                switch.link("add", ifname=BRIDGE, kind="bridge")
            bridge = switch.link_lookup(ifname=BRIDGE)[0]
            switch.link("set", index=bridge, state="up")
            for m in self.machines:
                if m.name not in existing:
                    netns.create(m.name)
                if not switch.link_lookup(ifname=m.port):
                    switch.link("add", ifname=m.port, kind="veth", peer={"ifname": IFNAME, "net_ns_fd": m.name})
                port = switch.link_lookup(ifname=m.port)[0]
                switch.link("set", index=port, master=bridge, state="up")
                self._configure(m)

    def _configure(self, m: Machine) -> None:
        with IPRoute(netns=m.name) as ns:
            _up(ns, "lo")
            eth0 = ns.link_lookup(ifname=IFNAME)[0]
            have = {a.get("address") for a in ns.get_addr(index=eth0)}
            if m.address not in have:
                ns.addr("add", index=eth0, address=m.address, prefixlen=self.prefixlen)
            ns.link("set", index=eth0, state="up")
            router = self.machines[0]
            if m is not router and not [r for r in ns.get_default_routes(family=2)]:
                ns.route("add", dst="0.0.0.0/0", gateway=router.address, oif=eth0)
        sysctl(m.name, "net.ipv4.ip_forward", "1")

    def destroy(self) -> list[str]:
        """Remove every namespace of the lab; the names removed."""
        removed = self.namespaces()
        for name in removed:
            netns.remove(name)
        return removed


def _up(ipr: IPRoute, ifname: str) -> None:
    ipr.link("set", index=ipr.link_lookup(ifname=ifname)[0], state="up")


def sysctl(namespace: str, key: str, value: str) -> None:
    """Set a per-namespace sysctl (the net.* ones are per namespace)."""
    path = "/proc/sys/" + key.replace(".", "/")
    out = subprocess.run(["ip", "netns", "exec", namespace, "sh", "-c", f"echo {value} > {path}"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise TopologyError(f"setting {key}={value} in {namespace}: {out.stderr.strip()}")
