"""Strategies for the core group's workload-facing kinds: Namespace, Node,
Pod, Service (with ClusterIP and NodePort reservation), Endpoints.
The config and storage kinds of the core group are in core_config.py."""

from __future__ import annotations

import ipaddress
from typing import Any

from api import (
    FieldError,
    Kind,
    forbidden_field,
    format_labels,
    human_duration,
    invalid,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    is_port_name,
    is_port_number,
    is_qualified_name,
    is_valid_ip,
    not_supported,
    parse_time,
    required,
    value_of,
)

from .._allocators import NodePortAllocator, ServiceIPAllocator
from ._pod import PROTOCOLS, TAINT_EFFECTS, default_pod_spec, qos_class, validate_pod_spec
from ._strategy import AGE, NAME, Column, Reservation, Strategy

# ---------------------------------------------------------------- Namespace


class NamespaceStrategy(Strategy):
    selectable_fields = ("status.phase",)
    subresources = ("finalize",)
    columns = (NAME, Column("Status", lambda o, now: o.status.phase or "Active"), AGE)

    def validate_name(self, name: str) -> list[str]:
        return is_dns1123_label(name)

    def prepare_for_create(self, obj: Any, now: float) -> None:
        super().prepare_for_create(obj, now)
        obj.status.phase = "Active"
        if not obj.spec.finalizers:
            obj.spec.finalizers.append("kubernetes")

    def default(self, obj: Any) -> None:
        obj.metadata.labels["kubernetes.io/metadata.name"] = obj.metadata.name

    def prepare_for_update(self, obj: Any, old: Any) -> None:
        super().prepare_for_update(obj, old)
        # spec.finalizers change only through the namespace controller's
        # finalize step, never through a plain update.
        obj.spec.CopyFrom(old.spec)
        obj.metadata.generation = old.metadata.generation

    def prepare_for_subresource_update(self, subresource: str, obj: Any, old: Any) -> None:
        # finalize: the namespace controller, done emptying the namespace,
        # removes its spec.finalizers; nothing else changes.
        finalizers = list(obj.spec.finalizers)
        obj.CopyFrom(old)
        del obj.spec.finalizers[:]
        obj.spec.finalizers.extend(finalizers)

    def validate_subresource_update(self, subresource: str, obj: Any, old: Any) -> list[FieldError]:
        return [invalid(f"spec.finalizers[{i}]", f, m) for i, f in enumerate(obj.spec.finalizers)
                for m in is_qualified_name(f)]

    def mark_deleting(self, obj: Any) -> None:
        obj.status.phase = "Terminating"

    def blocks_deletion(self, obj: Any) -> bool:
        return bool(obj.spec.finalizers)

    def fields(self, obj: Any) -> dict[str, str]:
        return {"status.phase": obj.status.phase}


# ---------------------------------------------------------------- Node


def _node_status(node: Any, now: float) -> str:
    ready = next((c for c in node.status.conditions if c.type == "Ready"), None)
    # As kubectl prints it: any Ready condition but True (False or Unknown,
    # the node controller's mark for a node that stopped reporting) is NotReady.
    state = "Unknown" if ready is None else "Ready" if ready.status == "True" else "NotReady"
    if node.spec.unschedulable:
        state += ",SchedulingDisabled"
    return state


def _node_roles(node: Any, now: float) -> str:
    roles = sorted(k.split("/", 1)[1] for k in node.metadata.labels
                   if k.startswith("node-role.kubernetes.io/") and "/" in k)
    if node.metadata.labels.get("kubernetes.io/role"):
        roles.append(node.metadata.labels["kubernetes.io/role"])
    return ",".join(r for r in roles if r) or "<none>"


def _node_address(kind: str) -> Any:
    def cell(node: Any, now: float) -> str:
        return next((a.address for a in node.status.addresses if a.type == kind), "<none>")
    return cell


class NodeStrategy(Strategy):
    selectable_fields = ("spec.unschedulable",)
    reset_status_on_create = False  # the kubelet registers with its status
    columns = (
        NAME, Column("Status", _node_status), Column("Roles", _node_roles), AGE,
        Column("Version", lambda o, now: o.status.nodeInfo.kubeletVersion or "<none>"),
        Column("Internal-IP", _node_address("InternalIP"), 1),
        Column("External-IP", _node_address("ExternalIP"), 1),
        Column("OS-Image", lambda o, now: o.status.nodeInfo.osImage or "<unknown>", 1),
        Column("Kernel-Version", lambda o, now: o.status.nodeInfo.kernelVersion or "<unknown>", 1),
        Column("Container-Runtime", lambda o, now: o.status.nodeInfo.containerRuntimeVersion or "<unknown>", 1),
    )

    def validate(self, obj: Any) -> list[FieldError]:
        errs: list[FieldError] = []
        seen: set[tuple[str, str]] = set()
        for i, taint in enumerate(obj.spec.taints):
            path = f"spec.taints[{i}]"
            for msg in is_qualified_name(taint.key):
                errs.append(invalid(f"{path}.key", taint.key, msg))
            if taint.value:
                for msg in is_label_value(taint.value):
                    errs.append(invalid(f"{path}.value", taint.value, msg))
            if taint.effect not in TAINT_EFFECTS:
                errs.append(not_supported(f"{path}.effect", taint.effect, TAINT_EFFECTS))
            if (taint.key, taint.effect) in seen:
                errs.append(invalid("spec.taints", f"{taint.key}:{taint.effect}",
                                    "taints must be unique by key and effect pair"))
            seen.add((taint.key, taint.effect))
        for i, cidr in enumerate(list(obj.spec.podCIDRs) or ([obj.spec.podCIDR] if obj.spec.podCIDR else [])):
            try:
                ipaddress.ip_network(cidr)
            except ValueError:
                errs.append(invalid(f"spec.podCIDRs[{i}]", cidr, "must be a valid CIDR"))
        return errs

    def validate_update(self, obj: Any, old: Any) -> list[FieldError]:
        errs = self.validate(obj)
        if old.spec.podCIDR and obj.spec.podCIDR != old.spec.podCIDR:
            errs.append(forbidden_field("spec.podCIDR", "node updates may not change podCIDR except from \"\" "
                                                        "to valid"))
        return errs

    def fields(self, obj: Any) -> dict[str, str]:
        return {"spec.unschedulable": "true" if obj.spec.unschedulable else "false"}


# ---------------------------------------------------------------- Pod


def pod_phase_reason(pod: Any) -> tuple[str, int, int, int]:
    """kubectl's STATUS, ready count, container count and restarts."""
    status = pod.status
    reason = status.reason or status.phase or "Pending"
    restarts = 0
    ready = 0
    total = len(pod.spec.containers)
    initializing = False
    for i, cs in enumerate(status.initContainerStatuses):
        restarts += cs.restartCount
        term, wait = cs.state.terminated, cs.state.waiting
        if cs.state.HasField("terminated") and term.exitCode == 0:
            continue
        if cs.state.HasField("terminated"):
            code = f"Signal:{term.signal}" if term.signal else f"ExitCode:{term.exitCode}"
            reason = "Init:" + (term.reason or code)
        elif cs.state.HasField("waiting") and wait.reason and wait.reason != "PodInitializing":
            reason = "Init:" + wait.reason
        else:
            reason = f"Init:{i}/{len(pod.spec.initContainers)}"
        initializing = True
        break
    if not initializing:
        restarts = 0
        running = False
        for cs in reversed(status.containerStatuses):
            restarts += cs.restartCount
            term, wait = cs.state.terminated, cs.state.waiting
            if cs.state.HasField("waiting") and wait.reason:
                reason = wait.reason
            elif cs.state.HasField("terminated") and term.reason:
                reason = term.reason
            elif cs.state.HasField("terminated"):
                reason = f"Signal:{term.signal}" if term.signal else f"ExitCode:{term.exitCode}"
            elif cs.state.HasField("running") and cs.ready:
                running = True
                ready += 1
            elif cs.state.HasField("running"):
                running = True
        if reason == "Completed" and running:
            ready_cond = next((c for c in status.conditions if c.type == "Ready"), None)
            reason = "Running" if ready_cond is not None and ready_cond.status == "True" else "NotReady"
    if pod.metadata.deletionTimestamp:
        reason = "Unknown" if status.reason == "NodeLost" else "Terminating"
    return reason, ready, total, restarts


def _pod_restarts(pod: Any, now: float) -> str:
    restarts = pod_phase_reason(pod)[3]
    last = ""
    for cs in pod.status.containerStatuses:
        finished = cs.lastState.terminated.finishedAt
        if finished and (not last or finished > last):
            last = finished
    if restarts and last:
        return f"{restarts} ({human_duration(now - parse_time(last))} ago)"
    return str(restarts)


def _readiness_gates(pod: Any, now: float) -> str:
    gates = pod.spec.readinessGates
    if not gates:
        return "<none>"
    passed = sum(1 for g in gates for c in pod.status.conditions if c.type == g.conditionType and c.status == "True")
    return f"{passed}/{len(gates)}"


class PodStrategy(Strategy):
    subresources = ("binding",)
    selectable_fields = ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                         "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName")
    columns = (
        NAME,
        Column("Ready", lambda o, now: "{1}/{2}".format(*pod_phase_reason(o))),
        Column("Status", lambda o, now: pod_phase_reason(o)[0]),
        Column("Restarts", _pod_restarts, type="string"),
        AGE,
        Column("IP", lambda o, now: o.status.podIP or "<none>", 1),
        Column("Node", lambda o, now: o.spec.nodeName or "<none>", 1),
        Column("Nominated Node", lambda o, now: o.status.nominatedNodeName or "<none>", 1),
        Column("Readiness Gates", _readiness_gates, 1),
    )

    def prepare_for_create(self, obj: Any, now: float) -> None:
        super().prepare_for_create(obj, now)
        obj.status.phase = "Pending"

    def default(self, obj: Any) -> None:
        default_pod_spec(obj.spec)
        # A container that states only limits requests as much (SetDefaults_Pod).
        for c in list(obj.spec.initContainers) + list(obj.spec.containers):
            for name, limit in c.resources.limits.items():
                if name not in c.resources.requests:
                    c.resources.requests[name].CopyFrom(limit)
        if not obj.status.qosClass:
            obj.status.qosClass = qos_class(obj.spec)

    def validate(self, obj: Any) -> list[FieldError]:
        return validate_pod_spec(obj.spec, "spec")

    def validate_update(self, obj: Any, old: Any) -> list[FieldError]:
        errs = self.validate(obj)
        allowed = type(old.spec)()
        allowed.CopyFrom(old.spec)
        # What a pod update may change: images, activeDeadlineSeconds,
        # added tolerations, removed scheduling gates.
        for field in ("containers", "initContainers"):
            for mine, theirs in zip(getattr(allowed, field), getattr(obj.spec, field), strict=False):
                mine.image = theirs.image
        if obj.spec.HasField("activeDeadlineSeconds"):
            allowed.activeDeadlineSeconds = obj.spec.activeDeadlineSeconds
        old_tolerations = [t.SerializeToString(deterministic=True) for t in old.spec.tolerations]
        new_tolerations = [t.SerializeToString(deterministic=True) for t in obj.spec.tolerations]
        if all(t in new_tolerations for t in old_tolerations):
            del allowed.tolerations[:]
            allowed.tolerations.extend(obj.spec.tolerations)
        if len(obj.spec.schedulingGates) <= len(old.spec.schedulingGates):
            del allowed.schedulingGates[:]
            allowed.schedulingGates.extend(obj.spec.schedulingGates)
        if allowed.SerializeToString(deterministic=True) != obj.spec.SerializeToString(deterministic=True):
            errs.append(forbidden_field(
                "spec", "pod updates may not change fields other than `spec.containers[*].image`,"
                        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                        "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                        "(allow it to be set to 1 if it was previously negative)"))
        return errs

    def validate_status_update(self, obj: Any, old: Any) -> list[FieldError]:
        errs: list[FieldError] = []
        phases = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
        if obj.status.phase and obj.status.phase not in phases:
            errs.append(not_supported("status.phase", obj.status.phase, phases))
        if old.status.phase in ("Succeeded", "Failed") and obj.status.phase != old.status.phase:
            errs.append(forbidden_field("status.phase", f"may not be changed from {old.status.phase} once the pod "
                                                        "has terminated"))
        for field in ("podIP", "hostIP"):
            value = getattr(obj.status, field)
            if value:
                errs += [invalid(f"status.{field}", value, m) for m in is_valid_ip(value)]
        return errs

    def prepare_for_subresource_update(self, subresource: str, obj: Any, old: Any) -> None:
        # binding: the handler (apiserver/_binding.py) built the new pod
        # from the stored one, changing only nodeName, the PodScheduled
        # condition and annotations; keep it that way whatever it was sent.
        node, annotations = obj.spec.nodeName, dict(obj.metadata.annotations)
        scheduled = [c for c in obj.status.conditions if c.type == "PodScheduled"]
        obj.CopyFrom(old)
        obj.spec.nodeName = node
        obj.metadata.annotations.update(annotations)
        kept = [c for c in obj.status.conditions if c.type != "PodScheduled"] + scheduled
        del obj.status.conditions[:]
        obj.status.conditions.extend(kept)

    def validate_subresource_update(self, subresource: str, obj: Any, old: Any) -> list[FieldError]:
        if not obj.spec.nodeName:
            return [required("target.name")]
        return [invalid("target.name", obj.spec.nodeName, m) for m in is_dns1123_subdomain(obj.spec.nodeName)]

    def graceful_delete_seconds(self, obj: Any, requested: int | None) -> int:
        # An unscheduled or finished pod has no kubelet to wait for.
        if not obj.spec.nodeName or obj.status.phase in ("Succeeded", "Failed"):
            return 0
        if requested is not None:
            return requested
        return int(obj.spec.terminationGracePeriodSeconds) if obj.spec.HasField("terminationGracePeriodSeconds") else 30

    def fields(self, obj: Any) -> dict[str, str]:
        spec, status = obj.spec, obj.status
        return {"spec.nodeName": spec.nodeName, "spec.restartPolicy": spec.restartPolicy,
                "spec.schedulerName": spec.schedulerName, "spec.serviceAccountName": spec.serviceAccountName,
                "spec.hostNetwork": "true" if spec.hostNetwork else "false", "status.phase": status.phase,
                "status.podIP": status.podIP, "status.nominatedNodeName": status.nominatedNodeName}


# ---------------------------------------------------------------- Service

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")


def _service_ports(svc: Any, now: float) -> str:
    parts = []
    for p in svc.spec.ports:
        text = f"{p.port}:{p.nodePort}" if p.nodePort else str(p.port)
        parts.append(f"{text}/{p.protocol or 'TCP'}")
    return ",".join(parts) or "<none>"


def _external_ip(svc: Any, now: float) -> str:
    spec = svc.spec
    if spec.type == "ExternalName":
        return spec.externalName
    ingress = [i.ip or i.hostname for i in svc.status.loadBalancer.ingress]
    ips = list(spec.externalIPs) + ingress
    if ips:
        return ",".join(ips)
    return "<pending>" if spec.type == "LoadBalancer" else "<none>"


class ServiceStrategy(Strategy):
    reserves_side_keys = True
    columns = (
        NAME, Column("Type", lambda o, now: o.spec.type),
        Column("Cluster-IP", lambda o, now: o.spec.clusterIP or "<none>"),
        Column("External-IP", _external_ip), Column("Port(s)", _service_ports), AGE,
        Column("Selector", lambda o, now: format_labels(o.spec.selector), 1),
    )

    def __init__(self, kind: Kind, ips: ServiceIPAllocator, ports: NodePortAllocator) -> None:
        super().__init__(kind)
        self.ips = ips
        self.ports = ports

    def validate_name(self, name: str) -> list[str]:
        return is_dns1035_label(name)

    def default(self, obj: Any) -> None:
        spec = obj.spec
        spec.type = spec.type or "ClusterIP"
        if spec.type != "ExternalName":
            spec.sessionAffinity = spec.sessionAffinity or "None"
            if not spec.HasField("internalTrafficPolicy"):
                spec.internalTrafficPolicy = "Cluster"
            if spec.type in ("NodePort", "LoadBalancer") and not spec.externalTrafficPolicy:
                spec.externalTrafficPolicy = "Cluster"
            if spec.type == "LoadBalancer" and not spec.HasField("allocateLoadBalancerNodePorts"):
                spec.allocateLoadBalancerNodePorts = True
        if spec.sessionAffinity == "ClientIP" and not spec.sessionAffinityConfig.clientIP.HasField("timeoutSeconds"):
            spec.sessionAffinityConfig.clientIP.timeoutSeconds = 10800
        for p in spec.ports:
            p.protocol = p.protocol or "TCP"
            if p.targetPort.WhichOneof("kind") is None:
                p.targetPort.intVal = p.port
        if spec.clusterIP and not spec.clusterIPs:
            spec.clusterIPs.append(spec.clusterIP)
        if spec.type != "ExternalName" and spec.clusterIP != "None":
            if not spec.ipFamilies:
                spec.ipFamilies.append("IPv4")
            if not spec.HasField("ipFamilyPolicy"):
                spec.ipFamilyPolicy = "SingleStack"
        elif spec.clusterIP == "None" and not spec.HasField("ipFamilyPolicy"):
            spec.ipFamilyPolicy = "SingleStack"
            if not spec.ipFamilies:
                spec.ipFamilies.append("IPv4")

    def prepare_for_update(self, obj: Any, old: Any) -> None:
        super().prepare_for_update(obj, old)
        # Allocated values survive an update that leaves them out.
        if not obj.spec.clusterIP and old.spec.clusterIP and obj.spec.type != "ExternalName":
            obj.spec.clusterIP = old.spec.clusterIP
            del obj.spec.clusterIPs[:]
            obj.spec.clusterIPs.extend(old.spec.clusterIPs)
        if obj.spec.type in ("NodePort", "LoadBalancer"):
            previous = {(p.port, p.protocol): p.nodePort for p in old.spec.ports if p.nodePort}
            for p in obj.spec.ports:
                if not p.nodePort and (p.port, p.protocol or "TCP") in previous:
                    p.nodePort = previous[(p.port, p.protocol or "TCP")]

    def validate(self, obj: Any) -> list[FieldError]:
        spec = obj.spec
        errs: list[FieldError] = []
        if spec.type not in SERVICE_TYPES:
            errs.append(not_supported("spec.type", spec.type, SERVICE_TYPES))
        if spec.type == "ExternalName":
            if not spec.externalName:
                errs.append(required("spec.externalName"))
            else:
                errs += [invalid("spec.externalName", spec.externalName, m)
                         for m in is_dns1123_subdomain(spec.externalName.rstrip("."))]
        elif not spec.ports and spec.clusterIP != "None":
            errs.append(required("spec.ports"))
        if spec.sessionAffinity and spec.sessionAffinity not in ("None", "ClientIP"):
            errs.append(not_supported("spec.sessionAffinity", spec.sessionAffinity, ["ClientIP", "None"]))
        if spec.sessionAffinityConfig.clientIP.HasField("timeoutSeconds"):
            timeout = spec.sessionAffinityConfig.clientIP.timeoutSeconds
            if not 0 < timeout <= 86400:
                errs.append(invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", timeout,
                                    "must be greater than 0 and less than 86400"))
        names: set[str] = set()
        seen: set[tuple[int, str]] = set()
        for i, p in enumerate(spec.ports):
            path = f"spec.ports[{i}]"
            if len(spec.ports) > 1 and not p.name:
                errs.append(required(f"{path}.name"))
            if p.name:
                errs += [invalid(f"{path}.name", p.name, m) for m in is_dns1123_label(p.name)]
                if p.name in names:
                    errs.append(FieldError("FieldValueDuplicate", f"{path}.name", p.name))
                names.add(p.name)
            errs += [invalid(f"{path}.port", p.port, m) for m in is_port_number(p.port)]
            if p.protocol not in PROTOCOLS:
                errs.append(not_supported(f"{path}.protocol", p.protocol, PROTOCOLS))
            if (p.port, p.protocol) in seen:
                errs.append(FieldError("FieldValueDuplicate", f"{path}", f"{p.port}/{p.protocol}"))
            seen.add((p.port, p.protocol))
            target = value_of(p.targetPort)
            if isinstance(target, int):
                errs += [invalid(f"{path}.targetPort", target, m) for m in is_port_number(target)]
            elif isinstance(target, str):
                errs += [invalid(f"{path}.targetPort", target, m) for m in is_port_name(target)]
            if p.nodePort:
                if spec.type not in ("NodePort", "LoadBalancer"):
                    errs.append(forbidden_field(f"{path}.nodePort",
                                                "may not be used when `type` is 'ClusterIP'"))
                elif not self.ports.contains(str(p.nodePort)):
                    errs.append(invalid(f"{path}.nodePort", p.nodePort,
                                        f"provided port is not in the valid range. The range of valid ports is "
                                        f"{self.ports.low}-{self.ports.high}"))
        ip = spec.clusterIP
        if ip and ip != "None":
            if is_valid_ip(ip):
                errs.append(invalid("spec.clusterIPs", list(spec.clusterIPs) or [ip],
                                    f"{ip} is not a valid IP address"))
            elif not self.ips.contains(ip):
                errs.append(invalid("spec.clusterIPs", list(spec.clusterIPs) or [ip],
                                    f"failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. "
                                    f"The range of valid IPs is {self.ips.network}"))
        if ip == "None" and spec.type not in ("ClusterIP",):
            errs.append(invalid("spec.clusterIPs[0]", ip, "may not be set to 'None' for "
                                                          f"{spec.type} services"))
        for key, value in spec.selector.items():
            errs += [invalid("spec.selector", key, m) for m in is_qualified_name(key)]
            errs += [invalid("spec.selector", value, m) for m in is_label_value(value)]
        if spec.externalTrafficPolicy and spec.externalTrafficPolicy not in ("Cluster", "Local"):
            errs.append(not_supported("spec.externalTrafficPolicy", spec.externalTrafficPolicy, ["Cluster", "Local"]))
        for i, eip in enumerate(spec.externalIPs):
            errs += [invalid(f"spec.externalIPs[{i}]", eip, m) for m in is_valid_ip(eip)]
        return errs

    def validate_update(self, obj: Any, old: Any) -> list[FieldError]:
        errs = self.validate(obj)
        was, now = old.spec.clusterIP, obj.spec.clusterIP
        if was and was != now and "ExternalName" not in (old.spec.type, obj.spec.type):
            errs.append(invalid("spec.clusterIPs[0]", list(obj.spec.clusterIPs) or [now],
                                "may not change once set"))
        return errs

    # ClusterIPs and node ports are reserved in the same transaction as the
    # Service itself (see _allocators.py).

    def _wants_ip(self, svc: Any) -> bool:
        return svc.spec.type != "ExternalName" and svc.spec.clusterIP != "None"

    def _keys(self, svc: Any) -> set[str]:
        keys = set()
        if self._wants_ip(svc) and svc.spec.clusterIP:
            keys.add(self.ips.key(svc.spec.clusterIP))
        if svc.spec.type in ("NodePort", "LoadBalancer"):
            keys.update(self.ports.key(str(p.nodePort)) for p in svc.spec.ports if p.nodePort)
        return keys

    async def reserve(self, obj: Any, old: Any | None, dry_run: bool) -> Reservation:
        spec = obj.spec
        res = Reservation()
        owner = f"{obj.metadata.namespace}/{obj.metadata.name}".encode()
        held = self._keys(old) if old is not None else set()
        if self._wants_ip(obj):
            if not spec.clusterIP:
                spec.clusterIP = await self.ips.pick()
                del spec.clusterIPs[:]
                spec.clusterIPs.append(spec.clusterIP)
            elif self.ips.key(spec.clusterIP) not in held:
                res.explain[self.ips.key(spec.clusterIP)] = invalid(
                    "spec.clusterIPs", list(spec.clusterIPs),
                    f"failed to allocate IP {spec.clusterIP}: provided IP is already allocated")
        else:
            del spec.clusterIPs[:]
            if spec.type == "ExternalName":
                spec.clusterIP = ""
        if spec.type in ("NodePort", "LoadBalancer"):
            for i, p in enumerate(spec.ports):
                if not p.nodePort:
                    p.nodePort = int(await self.ports.pick())
                elif self.ports.key(str(p.nodePort)) not in held:
                    res.explain[self.ports.key(str(p.nodePort))] = invalid(
                        f"spec.ports[{i}].nodePort", p.nodePort, "provided port is already allocated")
        else:
            for p in spec.ports:
                p.nodePort = 0
        wanted = self._keys(obj)
        res.creates = {k: owner for k in sorted(wanted - held)}
        res.deletes = sorted(held - wanted)
        return res

    def release(self, obj: Any) -> list[str]:
        return sorted(self._keys(obj))

    def taken(self, key: str) -> None:
        allocator = self.ips if key.startswith(self.ips.key("")) else self.ports
        allocator.taken(key)


# ---------------------------------------------------------------- Endpoints


def _endpoints_cell(ep: Any, now: float) -> str:
    pairs = [f"{a.ip}:{p.port}" for s in ep.subsets for a in s.addresses for p in s.ports] or \
            [a.ip for s in ep.subsets for a in s.addresses]
    if not pairs:
        return "<none>"
    shown = ",".join(pairs[:3])
    return shown + (f" + {len(pairs) - 3} more..." if len(pairs) > 3 else "")


class EndpointsStrategy(Strategy):
    allow_create_on_update = True
    columns = (NAME, Column("Endpoints", _endpoints_cell), AGE)

    def default(self, obj: Any) -> None:
        for subset in obj.subsets:
            for p in subset.ports:
                p.protocol = p.protocol or "TCP"

    def validate(self, obj: Any) -> list[FieldError]:
        errs: list[FieldError] = []
        for i, subset in enumerate(obj.subsets):
            for field in ("addresses", "notReadyAddresses"):
                for j, addr in enumerate(getattr(subset, field)):
                    errs += [invalid(f"subsets[{i}].{field}[{j}].ip", addr.ip, m) for m in is_valid_ip(addr.ip)]
            for j, p in enumerate(subset.ports):
                errs += [invalid(f"subsets[{i}].ports[{j}].port", p.port, m) for m in is_port_number(p.port)]
                if p.protocol not in PROTOCOLS:
                    errs.append(not_supported(f"subsets[{i}].ports[{j}].protocol", p.protocol, PROTOCOLS))
        return errs

