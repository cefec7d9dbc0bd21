"""kubelet/_etchosts.py: the kubelet-managed /etc/hosts - localhost lines,
the pod's IPs with hostname (and FQDN with a subdomain), hostAliases, the
63-character hostname cut, invalid hostnames, and the hostNetwork file
built from the node's own hosts file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api import from_dict
from kubelet._etchosts import etc_hosts, pod_hostname_and_domain
from proto import core_pb2

LOCAL = ("# Kubernetes-managed hosts file.\n"
         "127.0.0.1\tlocalhost\n"
         "::1\tlocalhost ip6-localhost ip6-loopback\n"
         "fe00::0\tip6-localnet\n"
         "fe00::0\tip6-mcastprefix\n"
         "fe00::1\tip6-allnodes\n"
         "fe00::2\tip6-allrouters\n")
ALIASES = [{"ip": "10.1.2.3", "hostnames": ["foo.remote", "bar.remote"]}, {"ip": "127.0.0.1", "hostnames": ["db"]}]
ALIAS_LINES = "\n# Entries added by HostAliases.\n10.1.2.3\tfoo.remote\tbar.remote\n127.0.0.1\tdb\n"


def pod(name: str = "web-0", **spec: Any) -> core_pb2.Pod:
    return from_dict(core_pb2.Pod, {"metadata": {"name": name, "namespace": "shop"},
                                    "spec": {"containers": [{"name": "c"}], **spec}})


@pytest.mark.parametrize(("p", "kw", "want"), [
    (pod(), {}, LOCAL + "10.244.1.7\tweb-0\n"),
    (pod(hostname="db"), {}, LOCAL + "10.244.1.7\tdb\n"),
    (pod(hostname="db", subdomain="backend"), {},
     LOCAL + "10.244.1.7\tdb.backend.shop.svc.cluster.local\tdb\n"),
    (pod(subdomain="backend"), {"cluster_domain": "lab.internal"},
     LOCAL + "10.244.1.7\tweb-0.backend.shop.svc.lab.internal\tweb-0\n"),
    (pod(), {"pod_ips": ["10.244.1.7", "fd00::7"]}, LOCAL + "10.244.1.7\tweb-0\nfd00::7\tweb-0\n"),
    (pod(hostAliases=ALIASES), {}, LOCAL + "10.244.1.7\tweb-0\n" + ALIAS_LINES),
    (pod("a" * 62 + "-b"), {}, LOCAL + f"10.244.1.7\t{'a' * 62}\n"),  # cut to 63, trailing '-' dropped
])
def test_pod_network(p: core_pb2.Pod, kw: dict[str, Any], want: str) -> None:
    assert etc_hosts(p, "10.244.1.7", **kw) == want


def test_host_network(tmp_path: Path) -> None:
    node_hosts = tmp_path / "hosts"
    node_hosts.write_text("127.0.0.1 localhost\n192.168.1.10 node-a\n")
    got = etc_hosts(pod(hostAliases=ALIASES), "192.168.1.10", host_network=True, node_hosts_file=node_hosts)
    assert got == ("# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n192.168.1.10 node-a\n"
                   + ALIAS_LINES)


@pytest.mark.parametrize(("spec", "error"), [
    ({"hostname": "Bad_Name"}, 'pod Hostname "Bad_Name" is not a valid DNS label'),
    ({"subdomain": "no.dots"}, 'pod Subdomain "no.dots" is not a valid DNS label'),
])
def test_invalid_names(spec: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        pod_hostname_and_domain(pod(**spec))
