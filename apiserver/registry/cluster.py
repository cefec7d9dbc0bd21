"""Strategies for the kinds that coordinate the cluster rather than run
workloads: Lease (coordination.k8s.io), EndpointSlice (discovery.k8s.io),
PriorityClass (scheduling.k8s.io), StorageClass (storage.k8s.io) and
PodDisruptionBudget (policy). The HorizontalPodAutoscaler is in
autoscaling.py.

Each is read by a component that acts on it without asking again: leader
election trusts a Lease's duration, proxies program rules from every
EndpointSlice address, the scheduler compares PriorityClass values, the
volume binder follows a StorageClass, eviction obeys a PodDisruptionBudget.
So the rules below reject values those readers could not act on, and freeze
what they must be able to rely on (a slice's address type, a class's value
or provisioner).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from api import (
    FieldError,
    duplicate,
    forbidden_field,
    invalid,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    is_port_number,
    is_qualified_name,
    not_supported,
    required,
    too_long,
    too_many,
    value_of,
)

from ._checks import (
    immutable,
    nonnegative,
    not_more_than_100_percent,
    optional_immutable,
    validate_int_or_percent,
)
from ._columns import bool_cell, list_with_more
from ._pod import PROTOCOLS, validate_label_selector
from ._strategy import AGE, NAME, Column, Strategy

# ---------------------------------------------------------------- Lease


class LeaseStrategy(Strategy):
    allow_create_on_update = True  # leader election creates its lease by updating it
    columns = (NAME, Column("Holder", lambda o, now: o.spec.holderIdentity), AGE)

    def validate(self, obj: Any) -> list[FieldError]:
        spec = obj.spec
        errs: list[FieldError] = []
        if spec.HasField("leaseDurationSeconds") and spec.leaseDurationSeconds <= 0:
            errs.append(invalid("spec.leaseDurationSeconds", spec.leaseDurationSeconds, "must be greater than 0"))
        if spec.HasField("leaseTransitions"):
            errs += nonnegative(spec.leaseTransitions, "spec.leaseTransitions")
        if spec.HasField("strategy") and spec.strategy != "OldestEmulationVersion":
            errs.append(not_supported("spec.strategy", spec.strategy, ["OldestEmulationVersion"]))
        if spec.HasField("preferredHolder") and spec.preferredHolder and not spec.strategy:
            errs.append(forbidden_field("spec.preferredHolder", "may only be specified if `strategy` is defined"))
        return errs


# ---------------------------------------------------------------- EndpointSlice

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
_MAX_ENDPOINTS = 1000
_MAX_ADDRESSES = 100
_MAX_PORTS = 20000
_MAX_TOPOLOGY_LABELS = 16


def _special_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Addresses a proxy must never forward to."""
    if ip.is_unspecified:
        return "may not be unspecified (0.0.0.0, ::)"
    if ip.is_loopback:
        return "may not be in the loopback range (127.0.0.0/8, ::1/128)"
    if ip.is_link_local:
        return "may not be in the link-local range (169.254.0.0/16, fe80::/10)"
    if ip in ipaddress.ip_network("224.0.0.0/24") or ip in ipaddress.ip_network("ff02::/16"):
        return "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"
    return None


def _validate_address(address: str, kind: str, path: str) -> list[FieldError]:
    if kind in ("IPv4", "IPv6"):
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            ip = None
        if ip is None or ip.version != int(kind[-1]):
            return [invalid(path, address, f"must be a valid {kind} address")]
        special = _special_ip(ip)
        return [invalid(path, address, special)] if special else []
    if kind == "FQDN":
        name = address[:-1] if address.endswith(".") else address
        if not name:
            return [required(path)]
        errs = is_dns1123_subdomain(name)
        if errs:
            return [invalid(path, name, ",".join(errs))]
        if "." not in name:
            return [invalid(path, name, "should be a domain with at least two segments separated by dots")]
    return []


def _slice_ports(eps: Any, now: float) -> str:
    ports = [str(p.port) if p.HasField("port") else (p.name if p.HasField("name") else "*") for p in eps.ports]
    return list_with_more(ports)


class EndpointSliceStrategy(Strategy):
    columns = (
        NAME,
        Column("AddressType", lambda o, now: o.addressType),
        Column("Ports", _slice_ports),
        Column("Endpoints", lambda o, now: list_with_more([a for e in o.endpoints for a in e.addresses])),
        AGE,
    )

    def default(self, obj: Any) -> None:
        for port in obj.ports:
            if not port.HasField("name"):
                port.name = ""
            if not port.HasField("protocol"):
                port.protocol = "TCP"

    def validate(self, obj: Any) -> list[FieldError]:
        kind = obj.addressType
        errs: list[FieldError] = []
        if not kind:
            errs.append(required("addressType"))
        elif kind not in ADDRESS_TYPES:
            errs.append(not_supported("addressType", kind, ADDRESS_TYPES))
        if len(obj.endpoints) > _MAX_ENDPOINTS:
            errs.append(too_many("endpoints", len(obj.endpoints), _MAX_ENDPOINTS))
        else:
            for i, endpoint in enumerate(obj.endpoints):
                errs += self._validate_endpoint(endpoint, kind, f"endpoints[{i}]")
        if len(obj.ports) > _MAX_PORTS:
            return [*errs, too_many("ports", len(obj.ports), _MAX_PORTS)]
        names: set[str] = set()
        for i, port in enumerate(obj.ports):
            pp = f"ports[{i}]"
            if port.name:
                errs += [invalid(f"{pp}.name", port.name, m) for m in is_dns1123_label(port.name)]
            if port.name in names:
                errs.append(duplicate(f"{pp}.name", port.name))
            names.add(port.name)
            if not port.HasField("protocol"):
                errs.append(required(f"{pp}.protocol"))
            elif port.protocol not in PROTOCOLS:
                errs.append(not_supported(f"{pp}.protocol", port.protocol, PROTOCOLS))
            if port.HasField("port"):
                errs += [invalid(f"{pp}.port", port.port, m) for m in is_port_number(port.port)]
            if port.HasField("appProtocol"):
                errs += [invalid(f"{pp}.appProtocol", port.appProtocol, m) for m in is_qualified_name(port.appProtocol)]
        return errs

    @staticmethod
    def _validate_endpoint(endpoint: Any, kind: str, path: str) -> list[FieldError]:
        errs: list[FieldError] = []
        if not endpoint.addresses:
            errs.append(required(f"{path}.addresses", "must contain at least 1 address"))
        elif len(endpoint.addresses) > _MAX_ADDRESSES:
            errs.append(too_many(f"{path}.addresses", len(endpoint.addresses), _MAX_ADDRESSES))
        for j, address in enumerate(endpoint.addresses):
            errs += _validate_address(address, kind, f"{path}.addresses[{j}]")
        if endpoint.HasField("nodeName"):
            errs += [invalid(f"{path}.nodeName", endpoint.nodeName, m) for m in is_dns1123_subdomain(endpoint.nodeName)]
        if endpoint.HasField("hostname"):
            errs += [invalid(f"{path}.hostname", endpoint.hostname, m) for m in is_dns1123_label(endpoint.hostname)]
        topology = endpoint.deprecatedTopology
        if len(topology) > _MAX_TOPOLOGY_LABELS:
            errs.append(too_many(f"{path}.deprecatedTopology", len(topology), _MAX_TOPOLOGY_LABELS))
        for key, value in topology.items():
            errs += [invalid(f"{path}.deprecatedTopology", key, m) for m in is_qualified_name(key)]
            errs += [invalid(f"{path}.deprecatedTopology", value, m) for m in is_label_value(value)]
        return errs

    def validate_update(self, obj: Any, old: Any) -> list[FieldError]:
        return self.validate(obj) + immutable(obj.addressType, old.addressType, "addressType")


# ---------------------------------------------------------------- PriorityClass

HIGHEST_USER_PRIORITY = 1_000_000_000
SYSTEM_PRIORITY_CLASSES = {"system-node-critical": 2_000_001_000, "system-cluster-critical": 2_000_000_000}
PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")


def _system_class_error(pc: Any) -> str | None:
    name = pc.metadata.name
    if name not in SYSTEM_PRIORITY_CLASSES:
        return f"{name} is not a known system priority class"
    if pc.value != SYSTEM_PRIORITY_CLASSES[name]:
        return f"value of {name} PriorityClass must be {SYSTEM_PRIORITY_CLASSES[name]}"
    if pc.globalDefault:
        return f"globalDefault of {name} PriorityClass must be false"
    return None


class PriorityClassStrategy(Strategy):
    columns = (
        NAME,
        Column("Value", lambda o, now: str(o.value), type="integer"),
        Column("Global-Default", lambda o, now: bool_cell(o.globalDefault), type="boolean"),
        AGE,
        Column("PreemptionPolicy", lambda o, now: o.preemptionPolicy),
    )

    def default(self, obj: Any) -> None:
        if not obj.HasField("preemptionPolicy"):
            obj.preemptionPolicy = "PreemptLowerPriority"

    def validate(self, obj: Any) -> list[FieldError]:
        errs: list[FieldError] = []
        if obj.metadata.name.startswith("system-"):
            problem = _system_class_error(obj)
            if problem:
                errs.append(forbidden_field("metadata.name", "priority class names with 'system-' prefix are "
                                                             f"reserved for system use only. error: {problem}"))
        elif obj.value > HIGHEST_USER_PRIORITY:
            errs.append(forbidden_field("value", f"maximum allowed value of a user defined priority is "
                                                 f"{HIGHEST_USER_PRIORITY}"))
        if obj.HasField("preemptionPolicy") and obj.preemptionPolicy not in PREEMPTION_POLICIES:
            errs.append(not_supported("preemptionPolicy", obj.preemptionPolicy, PREEMPTION_POLICIES))
        return errs

    def validate_update(self, obj: Any, old: Any) -> list[FieldError]:
        errs = self.validate(obj)
        if obj.value != old.value:
            errs.append(forbidden_field("value", "may not be changed in an update."))
        return errs + optional_immutable(obj, old, "preemptionPolicy", "preemptionPolicy")


# ---------------------------------------------------------------- StorageClass

DEFAULT_CLASS_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                             "storageclass.beta.kubernetes.io/is-default-class")
SC_RECLAIM_POLICIES = ("Delete", "Retain")
BINDING_MODES = ("Immediate", "WaitForFirstConsumer")
_MAX_PARAMETERS = 512
_MAX_PARAMETERS_SIZE = 256 * 1024


def is_default_class(sc: Any) -> bool:
    return any(sc.metadata.annotations.get(a) == "true" for a in DEFAULT_CLASS_ANNOTATIONS)


def _validate_topologies(terms: Any) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: list[dict[str, frozenset[str]]] = []
    for i, term in enumerate(terms):
        tp = f"allowedTopologies[{i}]"
        found: dict[str, frozenset[str]] = {}
        for j, req in enumerate(term.matchLabelExpressions):
            rp = f"{tp}.matchLabelExpressions[{j}]"
            errs += [invalid(f"{rp}.key", req.key, m) for m in is_qualified_name(req.key)]
            if not req.values:
                errs.append(required(f"{rp}.values", "must specify as least one value"))
            for k, value in enumerate(req.values):
                errs += [invalid(f"{rp}.values[{k}]", value, m) for m in is_label_value(value)]
            if req.key in found:
                errs.append(duplicate(f"{rp}.key", req.key))
            found[req.key] = frozenset(req.values)
        if found in seen:
            errs.append(duplicate(f"{tp}.matchLabelExpressions", ""))
        seen.append(found)
    return errs


class StorageClassStrategy(Strategy):
    columns = (
        Column("Name", lambda o, now: o.metadata.name + (" (default)" if is_default_class(o) else "")),
        Column("Provisioner", lambda o, now: o.provisioner),
        Column("ReclaimPolicy", lambda o, now: o.reclaimPolicy if o.HasField("reclaimPolicy") else "Delete"),
        Column("VolumeBindingMode", lambda o, now: o.volumeBindingMode if o.HasField("volumeBindingMode")
               else "Immediate"),
        Column("AllowVolumeExpansion", lambda o, now: bool_cell(o.allowVolumeExpansion), type="boolean"),
        AGE,
    )

    def default(self, obj: Any) -> None:
        if not obj.HasField("reclaimPolicy"):
            obj.reclaimPolicy = "Delete"
        if not obj.HasField("volumeBindingMode"):
            obj.volumeBindingMode = "Immediate"

    def validate(self, obj: Any) -> list[FieldError]:
        errs: list[FieldError] = []
        if not obj.provisioner:
            errs.append(required("provisioner"))
        else:
            errs += [invalid("provisioner", obj.provisioner, m) for m in is_qualified_name(obj.provisioner.lower())]
        if len(obj.parameters) > _MAX_PARAMETERS:
            errs.append(FieldError("FieldValueTooLong", "parameters", None,
                                   f"may not have more than {_MAX_PARAMETERS} parameters"))
        elif sum(len(k) + len(v) for k, v in obj.parameters.items()) > _MAX_PARAMETERS_SIZE:
            errs.append(too_long("parameters", _MAX_PARAMETERS_SIZE))
        for key in obj.parameters:
            if not key:
                errs.append(invalid("parameters", key, "field can not be empty."))
        if obj.reclaimPolicy and obj.reclaimPolicy not in SC_RECLAIM_POLICIES:
            errs.append(not_supported("reclaimPolicy", obj.reclaimPolicy, SC_RECLAIM_POLICIES))
        if not obj.HasField("volumeBindingMode"):
            errs.append(required("volumeBindingMode"))
        elif obj.volumeBindingMode not in BINDING_MODES:
            errs.append(not_supported("volumeBindingMode", obj.volumeBindingMode, BINDING_MODES))
        return errs + _validate_topologies(obj.allowedTopologies)

    def validate_update(self, obj: Any, old: Any) -> list[FieldError]:
        errs = self.validate(obj)
        if dict(obj.parameters) != dict(old.parameters):
            errs.append(forbidden_field("parameters", "updates to parameters are forbidden."))
        if obj.provisioner != old.provisioner:
            errs.append(forbidden_field("provisioner", "updates to provisioner are forbidden."))
        if obj.reclaimPolicy != old.reclaimPolicy:
            errs.append(forbidden_field("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
        return errs + optional_immutable(obj, old, "volumeBindingMode", "volumeBindingMode")


# ---------------------------------------------------------------- PodDisruptionBudget

EVICTION_POLICIES = ("AlwaysAllow", "IfHealthyBudget")


def _budget(ios: Any) -> str:
    value = value_of(ios)
    return "N/A" if value is None else str(value)


class PodDisruptionBudgetStrategy(Strategy):
    columns = (
        NAME,
        Column("Min Available", lambda o, now: _budget(o.spec.minAvailable)),
        Column("Max Unavailable", lambda o, now: _budget(o.spec.maxUnavailable)),
        Column("Allowed Disruptions", lambda o, now: str(o.status.disruptionsAllowed), type="integer"),
        AGE,
    )

    def validate(self, obj: Any) -> list[FieldError]:
        spec = obj.spec
        errs: list[FieldError] = []
        both = {f: value_of(getattr(spec, f)) for f in ("minAvailable", "maxUnavailable")}
        if None not in both.values():
            errs.append(invalid("spec", both, "minAvailable and maxUnavailable cannot be both set"))
        for field in ("minAvailable", "maxUnavailable"):
            errs += validate_int_or_percent(getattr(spec, field), f"spec.{field}")
            errs += not_more_than_100_percent(getattr(spec, field), f"spec.{field}")
        if spec.HasField("selector"):
            errs += validate_label_selector(spec.selector, "spec.selector")
        if spec.HasField("unhealthyPodEvictionPolicy") and spec.unhealthyPodEvictionPolicy not in EVICTION_POLICIES:
            errs.append(not_supported("spec.unhealthyPodEvictionPolicy", spec.unhealthyPodEvictionPolicy,
                                      EVICTION_POLICIES))
        return errs

    def validate_status_update(self, obj: Any, old: Any) -> list[FieldError]:
        status = obj.status
        errs: list[FieldError] = []
        for field in ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods", "observedGeneration"):
            errs += nonnegative(getattr(status, field), f"status.{field}")
        return errs
