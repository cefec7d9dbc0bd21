"""The DNS configuration a pod sandbox gets (kubelet's dns.Configurer).

`sandbox_dns_config` turns the pod's dnsPolicy and dnsConfig into the CRI
DNSConfig the runtime writes as the sandbox's resolv.conf:

* ClusterFirst (the default): the cluster DNS servers only, the search
  path `<ns>.svc.<domain> svc.<domain> <domain>` followed by the host's
  search domains, and `options ndots:5`. A hostNetwork pod with
  ClusterFirst gets Default instead, unless its policy is
  ClusterFirstWithHostNet. With no cluster DNS configured the kubelet
  falls back to Default and warns (MissingClusterDNS).
* Default: the host's resolv.conf (nameservers, last search line, options).
  With no host resolv.conf (kubelet's `--resolv-conf=""`), 127.0.0.1 (or
  ::1 for an IPv6 node) and the search path ".", which disables lookups.
* None: nothing but the pod's dnsConfig.

The pod's dnsConfig is then merged in: nameservers and searches appended
without duplicates, options by name (the pod's value wins). Limits are
libc's - 3 nameservers, 32 search domains, 2048 characters of search line,
253 per domain - and going over them drops the extras with a
DNSConfigForming warning, never an error, as the kubelet does. A host
resolv.conf that cannot be read or parsed is a DNSConfigError: the sandbox
cannot be made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from proto import core_pb2, cri_pb2

log = logging.getLogger(__name__)

MAX_NAMESERVERS = 3
MAX_SEARCH_PATHS = 32
MAX_SEARCH_LINE_CHARS = 2048
MAX_DOMAIN_LENGTH = 253
MAX_RESOLV_CONF_LENGTH = 10 << 20
DEFAULT_OPTIONS = ("ndots:5",)

Warn = Callable[[str, str], None]  # (event reason, message)


class DNSConfigError(Exception):
    """The host resolv.conf cannot be used."""


def _warn(on_warning: Warn | None, reason: str, message: str) -> None:
    log.warning("%s: %s", reason, message)
    if on_warning is not None:
        on_warning(reason, message)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _merge_options(options: dict[str, str], new: Iterable[str]) -> None:
    """resolv.conf options by name: a later `ndots:2` replaces `ndots:5`."""
    for option in new:
        options[option.split(":", 1)[0]] = option


def parse_resolv_conf(text: str) -> tuple[list[str], list[str], list[str]]:
    """(nameservers, searches, options) of a resolv.conf: nameservers
    accumulate, the last search line wins (trailing dots dropped, "."
    ignored), options accumulate by name. Raises DNSConfigError."""
    nameservers: list[str] = []
    searches: list[str] = []
    options: dict[str, str] = {}
    errors: list[str] = []
    for line in text.split("\n"):
        fields = line.strip().split()
        if not fields or line.startswith(("#", ";")):
            continue
        if fields[0] == "nameserver":
            if len(fields) >= 2:
                nameservers.append(fields[1])
            else:
                errors.append("nameserver list is empty")
        elif fields[0] == "search":
            searches = [s.removesuffix(".") for s in fields[1:] if s != "."]
        elif fields[0] == "options":
            _merge_options(options, fields[1:])
    if errors:
        raise DNSConfigError(f"Encountered error while parsing resolv conf file. Error: {'; '.join(errors)}")
    return nameservers, searches, list(options.values())


def _host_config(path: Path | None) -> tuple[list[str], list[str], list[str]]:
    if path is None:
        return [], [], []
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_RESOLV_CONF_LENGTH + 1)
    except OSError as err:
        raise DNSConfigError(f"could not open resolv conf file {path}: {err.strerror}") from None
    if len(data) > MAX_RESOLV_CONF_LENGTH:
        raise DNSConfigError(f"resolv conf file {path} is larger than {MAX_RESOLV_CONF_LENGTH} bytes")
    return parse_resolv_conf(data.decode("utf-8", errors="replace"))


def pod_dns_type(pod: core_pb2.Pod) -> str:
    """"cluster", "host" or "none" for the pod's dnsPolicy."""
    policy = pod.spec.dnsPolicy or "ClusterFirst"
    if policy == "None":
        return "none"
    if policy == "ClusterFirstWithHostNet":
        return "cluster"
    if policy == "ClusterFirst":
        return "host" if pod.spec.hostNetwork else "cluster"
    if policy == "Default":
        return "host"
    log.error("pod %s/%s: invalid DNSPolicy=%s; falling back to ClusterFirst", pod.metadata.namespace,
              pod.metadata.name, policy)
    return "cluster"


def cluster_searches(namespace: str, cluster_domain: str, host_searches: Sequence[str]) -> list[str]:
    if not cluster_domain:
        return list(host_searches)
    return _unique([f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain,
                    *host_searches])


def _fit_searches(searches: list[str], on_warning: Warn | None) -> list[str]:
    exceeded = len(searches) > MAX_SEARCH_PATHS
    kept = [s for s in searches[:MAX_SEARCH_PATHS] if len(s) <= MAX_DOMAIN_LENGTH]
    exceeded = exceeded or len(kept) < len(searches[:MAX_SEARCH_PATHS])
    while kept and len(" ".join(kept)) > MAX_SEARCH_LINE_CHARS:
        kept.pop()
        exceeded = True
    if exceeded:
        _warn(on_warning, "DNSConfigForming", "Search Line limits were exceeded, some search paths have been "
                                              f"omitted, the applied search line is: {' '.join(kept)}")
    return kept


def _fit_nameservers(servers: list[str], on_warning: Warn | None) -> list[str]:
    if len(servers) <= MAX_NAMESERVERS:
        return servers
    kept = servers[:MAX_NAMESERVERS]
    _warn(on_warning, "DNSConfigForming", "Nameserver limits were exceeded, some nameservers have been omitted, "
                                          f"the applied nameserver line is: {' '.join(kept)}")
    return kept


def sandbox_dns_config(pod: core_pb2.Pod, *, cluster_dns: list[str], cluster_domain: str,
                       host_resolv_conf: Path | None, node_ips: Sequence[str] = (),
                       on_warning: Warn | None = None) -> cri_pb2.DNSConfig:
    """The sandbox's DNSConfig (see the module docstring).

    `host_resolv_conf` None is kubelet's `--resolv-conf=""`; `node_ips`
    only choose 127.0.0.1 or ::1 then. `on_warning(reason, message)`
    receives the DNSConfigForming / MissingClusterDNS warnings the kubelet
    records as events on the pod."""
    servers, searches, options = _host_config(host_resolv_conf)
    dns_type = pod_dns_type(pod)
    if dns_type == "cluster" and not cluster_dns:
        _warn(on_warning, "MissingClusterDNS",
              f'pod: "{pod.metadata.name}_{pod.metadata.namespace}({pod.metadata.uid})". kubelet does not have '
              'ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. Falling back to '
              '"Default" policy.')
        dns_type = "host"
    if dns_type == "none":
        servers, searches, options = [], [], []
    elif dns_type == "cluster":
        servers = list(cluster_dns)
        searches = cluster_searches(pod.metadata.namespace, cluster_domain, searches)
        options = list(DEFAULT_OPTIONS)
    elif host_resolv_conf is None:  # --resolv-conf="": local nameserver, lookups disabled
        servers = _unique("::1" if ":" in ip else "127.0.0.1" for ip in node_ips) or ["127.0.0.1"]
        searches = ["."]
    if pod.spec.HasField("dnsConfig"):
        extra = pod.spec.dnsConfig
        servers = _unique([*servers, *extra.nameservers])
        searches = _unique([*searches, *extra.searches])
        merged: dict[str, str] = {}
        _merge_options(merged, options)
        for opt in extra.options:
            merged[opt.name] = f"{opt.name}:{opt.value}" if opt.HasField("value") and opt.value else opt.name
        options = list(merged.values())
    return cri_pb2.DNSConfig(servers=_fit_nameservers(servers, on_warning),
                             searches=_fit_searches(searches, on_warning), options=options)


def format_resolv_conf(config: cri_pb2.DNSConfig) -> str:
    """The resolv.conf text for a DNSConfig (what a runtime writes)."""
    lines = []
    if config.searches:
        lines.append("search " + " ".join(config.searches))
    lines += [f"nameserver {server}" for server in config.servers]
    if config.options:
        lines.append("options " + " ".join(config.options))
    return "".join(f"{line}\n" for line in lines)
