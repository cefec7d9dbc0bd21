"""The /etc/hosts the kubelet writes for a pod (kubelet-managed hosts file).

For a pod on the pod network the file is generated: a header, the
localhost and IPv6 lines, then one line per pod IP naming the pod's
hostname - `<ip>\\t<hostname>.<subdomain>.<ns>.svc.<domain>\\t<hostname>`
when spec.subdomain is set, `<ip>\\t<hostname>` otherwise - and finally the
spec.hostAliases entries under their own comment. A hostNetwork pod gets
the node's own hosts file behind a "(host network)" header, plus its
hostAliases.

The hostname is spec.hostname or the pod name, cut to 63 characters (with
trailing '-' and '.' dropped) as the kubelet does; an invalid hostname or
subdomain is a ValueError naming the field, since the sandbox cannot be
made with it. Whether the kubelet mounts the file at all (not when a
container mounts its own /etc/hosts, not before the sandbox has an IP) is
the caller's decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from api import is_dns1123_label
from proto import core_pb2

MANAGED_HEADER = "# Kubernetes-managed hosts file.\n"
MANAGED_HEADER_HOST_NETWORK = "# Kubernetes-managed hosts file (host network).\n"
HOSTNAME_MAX_LENGTH = 63
DEFAULT_CLUSTER_DOMAIN = "cluster.local"


def pod_hostname_and_domain(pod: core_pb2.Pod, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN) -> tuple[str, str]:
    """(hostname, domain) of a pod: domain is `<subdomain>.<ns>.svc.<domain>`
    or "" without a subdomain. Raises ValueError for an invalid name."""
    hostname = pod.metadata.name
    if pod.spec.hostname:
        errs = is_dns1123_label(pod.spec.hostname)
        if errs:
            raise ValueError(f'pod Hostname "{pod.spec.hostname}" is not a valid DNS label: {";".join(errs)}')
        hostname = pod.spec.hostname
    if len(hostname) > HOSTNAME_MAX_LENGTH:
        hostname = hostname[:HOSTNAME_MAX_LENGTH].rstrip("-.")
        if not hostname:
            raise ValueError(f'hostname for pod "{pod.metadata.name}" was invalid: the truncated hostname is empty')
    domain = ""
    if pod.spec.subdomain:
        errs = is_dns1123_label(pod.spec.subdomain)
        if errs:
            raise ValueError(f'pod Subdomain "{pod.spec.subdomain}" is not a valid DNS label: {";".join(errs)}')
        domain = f"{pod.spec.subdomain}.{pod.metadata.namespace}.svc.{cluster_domain}"
    return hostname, domain


def _host_aliases(aliases: Sequence[core_pb2.HostAlias]) -> str:
    if not aliases:
        return ""
    lines = [f"{a.ip}\t{chr(9).join(a.hostnames)}\n" for a in aliases]
    return "\n# Entries added by HostAliases.\n" + "".join(lines)


def etc_hosts(pod: core_pb2.Pod, pod_ip: str, *, host_network: bool = False,
              cluster_domain: str = DEFAULT_CLUSTER_DOMAIN, pod_ips: Sequence[str] = (),
              node_hosts_file: Path = Path("/etc/hosts")) -> str:
    """The pod's /etc/hosts content (see the module docstring). `pod_ips`
    adds the other IPs of a dual-stack pod after `pod_ip`; `node_hosts_file`
    is read for a hostNetwork pod."""
    if host_network:
        return MANAGED_HEADER_HOST_NETWORK + node_hosts_file.read_text() + _host_aliases(pod.spec.hostAliases)
    hostname, domain = pod_hostname_and_domain(pod, cluster_domain)
    ips = list(dict.fromkeys(ip for ip in (pod_ip, *pod_ips) if ip))
    lines = [
        MANAGED_HEADER,
        "127.0.0.1\tlocalhost\n",
        "::1\tlocalhost ip6-localhost ip6-loopback\n",
        "fe00::0\tip6-localnet\n",
        "fe00::0\tip6-mcastprefix\n",
        "fe00::1\tip6-allnodes\n",
        "fe00::2\tip6-allrouters\n",
    ]
    for ip in ips:
        lines.append(f"{ip}\t{hostname}.{domain}\t{hostname}\n" if domain else f"{ip}\t{hostname}\n")
    return "".join(lines) + _host_aliases(pod.spec.hostAliases)
