"""Pod networking: a network namespace per sandbox, wired by the CNI plugins.

There is no maintained Python CNI library, so this is a small invoker of the
plugin binaries by the CNI protocol: CNI_COMMAND/CNI_CONTAINERID/CNI_NETNS/
CNI_IFNAME/CNI_PATH/CNI_ARGS in the environment, the network config on
stdin, the result (or a CNI error object) on stdout. A conflist runs its
plugins in order for ADD, each getting the previous result as prevResult,
and in reverse for DEL; plugins that declare the `portMappings` capability
get the sandbox's hostPorts as runtimeConfig. The ADD result is kept with
the sandbox so DEL can pass it back after a shim restart.

The built-in network is loopback + bridge (`cni0`, the pod's gateway) with
host-local IPAM on the node's pod CIDR (its state under --root, so nodes
sharing a host don't share allocations) + portmap. DEL is idempotent, as the
CNI spec requires: tearing a sandbox down twice, or after its netns is gone,
still releases the IP.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import RuntimeFailure

log = logging.getLogger(__name__)

CNI_VERSION = "1.0.0"
NETWORK_NAME = "kubelab"
LOOPBACK = {"cniVersion": CNI_VERSION, "name": "cni-loopback", "type": "loopback"}


def builtin_conflist(pod_cidr: str, ipam_dir: Path, bridge: str = "cni0", ip_masq: bool = False) -> dict[str, Any]:
    return {
        "cniVersion": CNI_VERSION,
        "name": NETWORK_NAME,
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": ip_masq, "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": pod_cidr}]], "routes": [{"dst": "0.0.0.0/0"}],
                      "dataDir": str(ipam_dir)}},
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        ],
    }


def load_conflist(conf_dir: Path, pod_cidr: str) -> dict[str, Any] | None:
    """The first *.conflist or *.conf in conf_dir (sorted, as the kubelet and
    containerd choose), with `{{.PodCIDR}}` replaced by the node's pod CIDR."""
    for path in sorted(conf_dir.glob("*.conf*")):
        if path.suffix not in (".conf", ".conflist", ".json"):
            continue
        text = path.read_text().replace("{{.PodCIDR}}", pod_cidr)
        try:
            conf = json.loads(text)
        except json.JSONDecodeError as err:
            raise RuntimeFailure(f"CNI config {path}: {err}") from err
        if "plugins" not in conf:   # a single-plugin .conf
            conf = {"cniVersion": conf.get("cniVersion", CNI_VERSION), "name": conf.get("name", NETWORK_NAME),
                    "plugins": [conf]}
        return dict(conf)
    return None


@dataclass(frozen=True)
class PodNetwork:
    """Who the plugins are wiring: CNI_ARGS carries the pod's identity as the kubelet's dockershim did."""
    sandbox_id: str
    netns: str
    namespace: str
    name: str
    uid: str
    port_mappings: tuple[dict[str, Any], ...] = ()

    @property
    def args(self) -> str:
        return (f"IgnoreUnknown=1;K8S_POD_NAMESPACE={self.namespace};K8S_POD_NAME={self.name};"
                f"K8S_POD_INFRA_CONTAINER_ID={self.sandbox_id};K8S_POD_UID={self.uid}")


class CNI:
    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir

    async def _invoke(self, command: str, conf: dict[str, Any], pod: PodNetwork, ifname: str) -> dict[str, Any]:
        plugin = self.bin_dir / str(conf["type"])
        if not plugin.exists():
            raise RuntimeFailure(f"CNI plugin {conf['type']!r} not found in {self.bin_dir} "
                                 "(install containernetworking-plugins or set --cni-bin-dir)")
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "CNI_COMMAND": command,
               "CNI_CONTAINERID": pod.sandbox_id, "CNI_NETNS": pod.netns, "CNI_IFNAME": ifname,
               "CNI_PATH": str(self.bin_dir), "CNI_ARGS": pod.args}
        proc = await asyncio.create_subprocess_exec(str(plugin), stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE, env=env)
        out, err = await proc.communicate(json.dumps(conf).encode())
        if proc.returncode != 0:
            try:
                failure = json.loads(out)
                message = f"{failure.get('msg', '')} {failure.get('details', '')}".strip()
            except (json.JSONDecodeError, AttributeError):
                message = (out or err).decode(errors="replace").strip()
            raise RuntimeFailure(f"CNI plugin {conf['type']} {command} for sandbox {pod.sandbox_id[:12]} failed: "
                                 f"{message}")
        if command != "ADD":
            return {}
        result = json.loads(out)
        return dict(result)

    def _plugin_conf(self, conflist: dict[str, Any], plugin: dict[str, Any], pod: PodNetwork,
                     prev: dict[str, Any] | None) -> dict[str, Any]:
        conf = dict(plugin)
        conf["name"] = conflist["name"]
        conf["cniVersion"] = conflist.get("cniVersion", CNI_VERSION)
        if prev is not None:
            conf["prevResult"] = prev
        caps = plugin.get("capabilities", {})
        if caps.get("portMappings"):
            conf["runtimeConfig"] = {"portMappings": list(pod.port_mappings)}
        return conf

    async def add(self, conflist: dict[str, Any], pod: PodNetwork) -> dict[str, Any]:
        """Wire the pod's netns (lo and eth0); returns the chain's result."""
        await self._invoke("ADD", LOOPBACK, pod, "lo")
        prev: dict[str, Any] | None = None
        for plugin in conflist["plugins"]:
            prev = await self._invoke("ADD", self._plugin_conf(conflist, plugin, pod, prev), pod, "eth0")
        return prev or {}

    async def delete(self, conflist: dict[str, Any], pod: PodNetwork, result: dict[str, Any] | None) -> None:
        """Undo `add`, in reverse; every plugin runs even if one fails, then the first failure is raised."""
        failures: list[RuntimeFailure] = []
        for plugin in reversed(conflist["plugins"]):
            try:
                await self._invoke("DEL", self._plugin_conf(conflist, plugin, pod, result), pod, "eth0")
            except RuntimeFailure as err:
                failures.append(err)
        if failures:
            raise failures[0]


def pod_ip(result: dict[str, Any]) -> tuple[str, list[str]]:
    """The pod's first IP and any others, from a CNI result (1.0 or 0.4)."""
    ips = [str(entry["address"]).split("/")[0] for entry in result.get("ips", [])]
    return (ips[0] if ips else ""), ips[1:]


async def run(*argv: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace").strip()


async def create_netns(name: str) -> str:
    """A named netns (/run/netns/<name>, so `ip netns exec` reaches it for debugging)."""
    code, out = await run("ip", "netns", "add", name)
    if code != 0 and "File exists" not in out:
        raise RuntimeFailure(f"creating network namespace {name}: {out}")
    await run("ip", "-n", name, "link", "set", "lo", "up")
    return f"/run/netns/{name}"


def _exists(path: str) -> bool:
    return Path(path).exists()


async def delete_netns(name: str) -> None:
    if not _exists(f"/run/netns/{name}"):
        return
    code, out = await run("ip", "netns", "delete", name)
    if code != 0 and "No such file" not in out:
        raise RuntimeFailure(f"deleting network namespace {name}: {out}")
