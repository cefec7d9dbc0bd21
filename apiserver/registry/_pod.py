"""Defaulting and validation of PodSpec, shared by Pods and every workload
template (Deployment, ReplicaSet, DaemonSet, StatefulSet, Job, ...).

The defaults are Kubernetes' (SetDefaults_PodSpec and friends): restartPolicy
Always, dnsPolicy ClusterFirst, a 30 s grace period, imagePullPolicy from the
image tag, TCP ports, probe timings, volume modes 0644. The validation covers
the rules users actually trip over, each reported at its field path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from api import (
    FieldError,
    Quantity,
    QuantityError,
    default_pull_policy,
    duplicate,
    forbidden_field,
    invalid,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_env_var_name,
    is_label_value,
    is_port_name,
    is_port_number,
    is_qualified_name,
    not_found_field,
    not_supported,
    required,
)
from proto import core_pb2

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
PROTOCOLS = ("TCP", "UDP", "SCTP")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TOLERATION_OPERATORS = ("Equal", "Exists")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
NODE_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
LABEL_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage", "storage", "pods")
DEFAULT_MODE = 0o644


# ---------------------------------------------------------------- defaults



def _default_probe(probe: core_pb2.Probe) -> None:
    probe.timeoutSeconds = probe.timeoutSeconds or 1
    probe.periodSeconds = probe.periodSeconds or 10
    probe.successThreshold = probe.successThreshold or 1
    probe.failureThreshold = probe.failureThreshold or 3
    if probe.HasField("httpGet"):
        probe.httpGet.path = probe.httpGet.path or "/"
        probe.httpGet.scheme = probe.httpGet.scheme or "HTTP"


def _default_container(c: core_pb2.Container, host_network: bool) -> None:
    c.terminationMessagePath = c.terminationMessagePath or "/dev/termination-log"
    c.terminationMessagePolicy = c.terminationMessagePolicy or "File"
    if not c.imagePullPolicy and c.image:
        c.imagePullPolicy = default_pull_policy(c.image)
    for p in c.ports:
        p.protocol = p.protocol or "TCP"
        if host_network and not p.hostPort:
            p.hostPort = p.containerPort
    for env in c.env:
        if env.valueFrom.HasField("fieldRef") and not env.valueFrom.fieldRef.apiVersion:
            env.valueFrom.fieldRef.apiVersion = "v1"
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        if c.HasField(name):
            _default_probe(getattr(c, name))
    for hook in ("postStart", "preStop"):
        if c.lifecycle.HasField(hook) and getattr(c.lifecycle, hook).HasField("httpGet"):
            get = getattr(c.lifecycle, hook).httpGet
            get.path = get.path or "/"
            get.scheme = get.scheme or "HTTP"


def _default_volume(v: core_pb2.Volume) -> None:
    for source in ("secret", "configMap", "downwardAPI", "projected"):
        if v.HasField(source) and not getattr(v, source).HasField("defaultMode"):
            getattr(v, source).defaultMode = DEFAULT_MODE
    if v.HasField("downwardAPI"):
        for item in v.downwardAPI.items:
            if item.HasField("fieldRef") and not item.fieldRef.apiVersion:
                item.fieldRef.apiVersion = "v1"
    if v.HasField("hostPath") and not v.hostPath.HasField("type"):
        v.hostPath.type = ""
    if v.HasField("iscsi"):
        v.iscsi.iscsiInterface = v.iscsi.iscsiInterface or "default"


def default_pod_spec(spec: core_pb2.PodSpec) -> None:
    spec.restartPolicy = spec.restartPolicy or "Always"
    spec.dnsPolicy = spec.dnsPolicy or "ClusterFirst"
    if not spec.HasField("terminationGracePeriodSeconds"):
        spec.terminationGracePeriodSeconds = 30
    spec.schedulerName = spec.schedulerName or "default-scheduler"
    spec.securityContext.SetInParent()
    if not spec.HasField("enableServiceLinks"):
        spec.enableServiceLinks = True
    for c in list(spec.initContainers) + list(spec.containers):
        _default_container(c, spec.hostNetwork)
    for v in spec.volumes:
        _default_volume(v)


def qos_class(spec: core_pb2.PodSpec) -> str:
    """Guaranteed, Burstable or BestEffort, as Kubernetes computes it from
    the containers' cpu and memory requests and limits."""
    requests: dict[str, Quantity] = {}
    limits: dict[str, Quantity] = {}
    guaranteed = True
    for c in list(spec.initContainers) + list(spec.containers):
        res = c.resources
        for name in ("cpu", "memory"):
            if name in res.requests:
                q = Quantity.parse(res.requests[name].value)
                if q.amount != 0:
                    requests[name] = requests.get(name, Quantity(0)) + q
            if name in res.limits:
                q = Quantity.parse(res.limits[name].value)
                if q.amount != 0:
                    limits[name] = limits.get(name, Quantity(0)) + q
        if not all(name in res.limits for name in ("cpu", "memory")):
            guaranteed = False
        for name in ("cpu", "memory"):
            if name in res.requests and name in res.limits and (
                    Quantity.parse(res.requests[name].value) != Quantity.parse(res.limits[name].value)):
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and set(limits) >= {"cpu", "memory"}:
        return "Guaranteed"
    return "Burstable"


# ---------------------------------------------------------------- validation

def _names(errs: Iterable[str], path: str, value: Any) -> list[FieldError]:
    return [invalid(path, value, e) for e in errs]


def _quantity(q: Any, path: str) -> list[FieldError]:
    try:
        value = Quantity.parse(q.value)
    except QuantityError as err:
        return [invalid(path, q.value, str(err))]
    if value.amount < 0:
        return [invalid(path, q.value, "must be greater than or equal to 0")]
    return []


def validate_resource_name(name: str, path: str) -> list[FieldError]:
    if name in STANDARD_RESOURCES or name.startswith(("hugepages-", "requests.", "limits.")):
        return []
    errs = is_qualified_name(name)
    if errs:
        return _names(errs, path, name)
    if "/" not in name:
        return [invalid(path, name, "must be a standard resource type or fully qualified")]
    return []


def validate_resources(res: core_pb2.ResourceRequirements, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for kind in ("limits", "requests"):
        for name, q in getattr(res, kind).items():
            errs += validate_resource_name(name, f"{path}.{kind}[{name}]")
            errs += _quantity(q, f"{path}.{kind}[{name}]")
    for name, q in res.requests.items():
        if name in res.limits:
            try:
                if Quantity.parse(q.value) > Quantity.parse(res.limits[name].value):
                    errs.append(invalid(f"{path}.requests", q.value,
                                        f"must be less than or equal to {name} limit of {res.limits[name].value}"))
            except QuantityError:
                pass
    return errs


def _validate_port_ref(port: Any, path: str, names: set[str]) -> list[FieldError]:
    kind = port.WhichOneof("kind")
    if kind is None:
        return [required(path)]
    if kind == "intVal":
        return _names(is_port_number(port.intVal), path, port.intVal)
    errs = _names(is_port_name(port.strVal), path, port.strVal)
    return errs


def _validate_handler(handler: Any, path: str, fields: Sequence[str]) -> list[FieldError]:
    set_fields = [f for f in fields if handler.HasField(f)]
    if not set_fields:
        return [required(path, "must specify a handler type")]
    if len(set_fields) > 1:
        return [forbidden_field(f"{path}.{set_fields[1]}", "may not specify more than 1 handler type")]
    errs: list[FieldError] = []
    which = set_fields[0]
    if which == "exec" and not handler.exec.command:
        errs.append(required(f"{path}.exec.command"))
    if which == "httpGet":
        errs += _validate_port_ref(handler.httpGet.port, f"{path}.httpGet.port", set())
        if handler.httpGet.scheme not in ("HTTP", "HTTPS"):
            errs.append(not_supported(f"{path}.httpGet.scheme", handler.httpGet.scheme, ["HTTP", "HTTPS"]))
    if which == "tcpSocket":
        errs += _validate_port_ref(handler.tcpSocket.port, f"{path}.tcpSocket.port", set())
    if which == "grpc":
        errs += _names(is_port_number(handler.grpc.port), f"{path}.grpc.port", handler.grpc.port)
    return errs


def _validate_probe(probe: core_pb2.Probe, path: str, liveness_like: bool) -> list[FieldError]:
    errs = _validate_handler(probe, path, ("exec", "httpGet", "tcpSocket", "grpc"))
    for name in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        value = getattr(probe, name)
        if value < 0:
            errs.append(invalid(f"{path}.{name}", value, "must be greater than or equal to 0"))
    if liveness_like and probe.successThreshold not in (0, 1):
        errs.append(invalid(f"{path}.successThreshold", probe.successThreshold, "must be 1"))
    return errs


def _validate_env(c: core_pb2.Container, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, env in enumerate(c.env):
        p = f"{path}.env[{i}]"
        if not env.name:
            errs.append(required(f"{p}.name"))
        else:
            errs += _names(is_env_var_name(env.name), f"{p}.name", env.name)
        if env.HasField("valueFrom"):
            sources = [f for f in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef", "fileKeyRef")
                       if env.valueFrom.HasField(f)]
            if not sources:
                errs.append(invalid(f"{p}.valueFrom", "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                                          "`configMapKeyRef` or `secretKeyRef`"))
            elif len(sources) > 1:
                errs.append(invalid(f"{p}.valueFrom", "", "may not have more than one field specified at a time"))
            if env.value:
                errs.append(invalid(f"{p}.valueFrom", "", "may not be specified when `value` is not empty"))
            for ref in ("configMapKeyRef", "secretKeyRef"):
                if env.valueFrom.HasField(ref) and not getattr(env.valueFrom, ref).key:
                    errs.append(required(f"{p}.valueFrom.{ref}.key"))
            if env.valueFrom.HasField("fieldRef") and not env.valueFrom.fieldRef.fieldPath:
                errs.append(required(f"{p}.valueFrom.fieldRef.fieldPath"))
    for i, src in enumerate(c.envFrom):
        if src.HasField("configMapRef") == src.HasField("secretRef"):
            errs.append(invalid(f"{path}.envFrom[{i}]", "", "must specify one of: `configMapRef` or `secretRef`"))
    return errs


def _validate_container(c: core_pb2.Container, path: str, volumes: set[str], init: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    if not c.name:
        errs.append(required(f"{path}.name"))
    else:
        errs += _names(is_dns1123_label(c.name), f"{path}.name", c.name)
    if not c.image:
        errs.append(required(f"{path}.image"))
    if c.imagePullPolicy and c.imagePullPolicy not in PULL_POLICIES:
        errs.append(not_supported(f"{path}.imagePullPolicy", c.imagePullPolicy, PULL_POLICIES))
    if c.terminationMessagePolicy and c.terminationMessagePolicy not in ("File", "FallbackToLogsOnError"):
        errs.append(not_supported(f"{path}.terminationMessagePolicy", c.terminationMessagePolicy,
                                  ["File", "FallbackToLogsOnError"]))
    port_names: set[str] = set()
    for i, p in enumerate(c.ports):
        pp = f"{path}.ports[{i}]"
        errs += _names(is_port_number(p.containerPort), f"{pp}.containerPort", p.containerPort)
        if p.hostPort:
            errs += _names(is_port_number(p.hostPort), f"{pp}.hostPort", p.hostPort)
        if p.protocol and p.protocol not in PROTOCOLS:
            errs.append(not_supported(f"{pp}.protocol", p.protocol, PROTOCOLS))
        if p.name:
            errs += _names(is_port_name(p.name), f"{pp}.name", p.name)
            if p.name in port_names:
                errs.append(duplicate(f"{pp}.name", p.name))
            port_names.add(p.name)
    errs += _validate_env(c, path)
    errs += validate_resources(c.resources, f"{path}.resources")
    mount_paths: set[str] = set()
    for i, m in enumerate(c.volumeMounts):
        mp = f"{path}.volumeMounts[{i}]"
        if not m.name:
            errs.append(required(f"{mp}.name"))
        elif m.name not in volumes:
            errs.append(not_found_field(f"{mp}.name", m.name))
        if not m.mountPath:
            errs.append(required(f"{mp}.mountPath"))
        elif m.mountPath in mount_paths:
            errs.append(invalid(f"{mp}.mountPath", m.mountPath, "must be unique"))
        mount_paths.add(m.mountPath)
        if m.subPath.startswith("/") or ".." in m.subPath.split("/"):
            errs.append(invalid(f"{mp}.subPath", m.subPath, "must be a relative path without '..'"))
    probes = (("livenessProbe", True), ("readinessProbe", False), ("startupProbe", True))
    for name, liveness_like in probes:
        if c.HasField(name):
            if init and c.restartPolicy != "Always":
                errs.append(forbidden_field(f"{path}.{name}", "may not be set for init containers without "
                                                              "restartPolicy=Always"))
            errs += _validate_probe(getattr(c, name), f"{path}.{name}", liveness_like)
    for hook in ("postStart", "preStop"):
        if c.lifecycle.HasField(hook):
            errs += _validate_handler(getattr(c.lifecycle, hook), f"{path}.lifecycle.{hook}",
                                      ("exec", "httpGet", "tcpSocket", "sleep"))
    if c.HasField("restartPolicy"):
        if not init:
            errs.append(forbidden_field(f"{path}.restartPolicy", "may not be set for non-init containers"))
        elif c.restartPolicy != "Always":
            errs.append(not_supported(f"{path}.restartPolicy", c.restartPolicy, ["Always"]))
    return errs


_VOLUME_SOURCES = ("hostPath", "emptyDir", "secret", "configMap", "persistentVolumeClaim", "downwardAPI",
                   "projected", "nfs", "iscsi", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "csi",
                   "ephemeral", "image")


def _validate_volume(v: core_pb2.Volume, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not v.name:
        errs.append(required(f"{path}.name"))
    else:
        errs += _names(is_dns1123_label(v.name), f"{path}.name", v.name)
    sources = [s for s in _VOLUME_SOURCES if v.HasField(s)]
    if not sources:
        errs.append(required(path, "must specify a volume type"))
    elif len(sources) > 1:
        errs.append(forbidden_field(f"{path}.{sources[1]}", "may not specify more than 1 volume type"))
    if v.HasField("hostPath"):
        if not v.hostPath.path:
            errs.append(required(f"{path}.hostPath.path"))
        types = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice")
        if v.hostPath.type not in types:
            errs.append(not_supported(f"{path}.hostPath.type", v.hostPath.type, types))
    if v.HasField("emptyDir") and v.emptyDir.medium not in ("", "Memory", "HugePages"):
        errs.append(not_supported(f"{path}.emptyDir.medium", v.emptyDir.medium, ["", "Memory", "HugePages"]))
    if v.HasField("emptyDir") and v.emptyDir.HasField("sizeLimit"):
        errs += _quantity(v.emptyDir.sizeLimit, f"{path}.emptyDir.sizeLimit")
    if v.HasField("configMap") and not v.configMap.name:
        errs.append(required(f"{path}.configMap.name"))
    if v.HasField("secret") and not v.secret.secretName:
        errs.append(required(f"{path}.secret.secretName"))
    if v.HasField("persistentVolumeClaim") and not v.persistentVolumeClaim.claimName:
        errs.append(required(f"{path}.persistentVolumeClaim.claimName"))
    for source in ("secret", "configMap", "downwardAPI", "projected"):
        if v.HasField(source):
            mode = getattr(v, source).defaultMode
            if getattr(v, source).HasField("defaultMode") and not 0 <= mode <= 0o777:
                errs.append(invalid(f"{path}.{source}.defaultMode", mode,
                                    "must be a number between 0 and 0777 (octal), both inclusive"))
    if v.HasField("downwardAPI"):
        for i, item in enumerate(v.downwardAPI.items):
            if not item.path:
                errs.append(required(f"{path}.downwardAPI.items[{i}].path"))
            if item.HasField("fieldRef") == item.HasField("resourceFieldRef"):
                errs.append(invalid(f"{path}.downwardAPI.items[{i}]", "",
                                    "must specify one of: `fieldRef` or `resourceFieldRef`"))
    return errs


def _validate_tolerations(tolerations: Sequence[core_pb2.Toleration], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, t in enumerate(tolerations):
        tp = f"{path}[{i}]"
        if t.key:
            errs += _names(is_qualified_name(t.key), f"{tp}.key", t.key)
        if t.operator and t.operator not in TOLERATION_OPERATORS:
            errs.append(not_supported(f"{tp}.operator", t.operator, TOLERATION_OPERATORS))
        if not t.key and t.operator != "Exists":
            errs.append(invalid(f"{tp}.operator", t.operator,
                                "operator must be Exists when `key` is empty, which means \"match all values and "
                                "all keys\""))
        if t.operator == "Exists" and t.value:
            errs.append(invalid(f"{tp}.operator", t.value,
                                "value must be empty when `operator` is 'Exists'"))
        if t.effect and t.effect not in TAINT_EFFECTS:
            errs.append(not_supported(f"{tp}.effect", t.effect, TAINT_EFFECTS))
        if t.HasField("tolerationSeconds") and t.effect != "NoExecute":
            errs.append(invalid(f"{tp}.effect", t.effect,
                                "effect must be 'NoExecute' when `tolerationSeconds` is set"))
    return errs


def validate_node_selector_term(term: core_pb2.NodeSelectorTerm, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, req in enumerate(term.matchExpressions):
        rp = f"{path}.matchExpressions[{i}]"
        errs += _names(is_qualified_name(req.key), f"{rp}.key", req.key)
        if req.operator not in NODE_SELECTOR_OPERATORS:
            errs.append(not_supported(f"{rp}.operator", req.operator, NODE_SELECTOR_OPERATORS))
        elif req.operator in ("In", "NotIn") and not req.values:
            errs.append(required(f"{rp}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif req.operator in ("Exists", "DoesNotExist") and req.values:
            errs.append(forbidden_field(f"{rp}.values", "may not be specified when `operator` is 'Exists' or "
                                                        "'DoesNotExist'"))
        elif req.operator in ("Gt", "Lt") and (len(req.values) != 1 or not req.values[0].lstrip("-").isdigit()):
            errs.append(required(f"{rp}.values", "must be specified single value when `operator` is 'Lt' or 'Gt'"))
    return errs


def validate_label_selector(sel: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for key, value in sel.matchLabels.items():
        errs += _names(is_qualified_name(key), f"{path}.matchLabels", key)
        errs += _names(is_label_value(value), f"{path}.matchLabels", value)
    for i, expr in enumerate(sel.matchExpressions):
        ep = f"{path}.matchExpressions[{i}]"
        errs += _names(is_qualified_name(expr.key), f"{ep}.key", expr.key)
        if expr.operator not in LABEL_SELECTOR_OPERATORS:
            errs.append(not_supported(f"{ep}.operator", expr.operator, LABEL_SELECTOR_OPERATORS))
        elif expr.operator in ("In", "NotIn") and not expr.values:
            errs.append(required(f"{ep}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif expr.operator in ("Exists", "DoesNotExist") and expr.values:
            errs.append(forbidden_field(f"{ep}.values",
                                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
    return errs


def _validate_affinity(aff: core_pb2.Affinity, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    node = aff.nodeAffinity
    required_terms = node.requiredDuringSchedulingIgnoredDuringExecution
    if node.HasField("requiredDuringSchedulingIgnoredDuringExecution") and not required_terms.nodeSelectorTerms:
        errs.append(required(f"{path}.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
                             "must have at least one node selector term"))
    for i, term in enumerate(required_terms.nodeSelectorTerms):
        errs += validate_node_selector_term(
            term, f"{path}.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[{i}]")
    for i, pref in enumerate(node.preferredDuringSchedulingIgnoredDuringExecution):
        pp = f"{path}.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
        if not 1 <= pref.weight <= 100:
            errs.append(invalid(f"{pp}.weight", pref.weight, "must be in the range 1-100"))
        errs += validate_node_selector_term(pref.preference, f"{pp}.preference")
    for kind in ("podAffinity", "podAntiAffinity"):
        group = getattr(aff, kind)
        for i, term in enumerate(group.requiredDuringSchedulingIgnoredDuringExecution):
            tp = f"{path}.{kind}.requiredDuringSchedulingIgnoredDuringExecution[{i}]"
            if not term.topologyKey:
                errs.append(required(f"{tp}.topologyKey", "can not be empty"))
            errs += validate_label_selector(term.labelSelector, f"{tp}.labelSelector")
        for i, weighted in enumerate(group.preferredDuringSchedulingIgnoredDuringExecution):
            wp = f"{path}.{kind}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            if not 1 <= weighted.weight <= 100:
                errs.append(invalid(f"{wp}.weight", weighted.weight, "must be in the range 1-100"))
            if not weighted.podAffinityTerm.topologyKey:
                errs.append(required(f"{wp}.podAffinityTerm.topologyKey", "can not be empty"))
    return errs


def validate_pod_spec(spec: core_pb2.PodSpec, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    volumes: set[str] = set()
    for i, v in enumerate(spec.volumes):
        errs += _validate_volume(v, f"{path}.volumes[{i}]")
        if v.name in volumes:
            errs.append(duplicate(f"{path}.volumes[{i}].name", v.name))
        volumes.add(v.name)
    if not spec.containers:
        errs.append(required(f"{path}.containers"))
    names: set[str] = set()
    for field, init in (("initContainers", True), ("containers", False)):
        for i, c in enumerate(getattr(spec, field)):
            cp = f"{path}.{field}[{i}]"
            errs += _validate_container(c, cp, volumes, init)
            if c.name and c.name in names:
                errs.append(duplicate(f"{cp}.name", c.name))
            names.add(c.name)
    if spec.restartPolicy not in RESTART_POLICIES:
        errs.append(not_supported(f"{path}.restartPolicy", spec.restartPolicy, RESTART_POLICIES))
    if spec.dnsPolicy not in DNS_POLICIES:
        errs.append(not_supported(f"{path}.dnsPolicy", spec.dnsPolicy, DNS_POLICIES))
    if spec.dnsPolicy == "None" and not spec.dnsConfig.nameservers:
        errs.append(required(f"{path}.dnsConfig.nameservers",
                             "must provide at least one DNS nameserver when `dnsPolicy` is None"))
    if spec.terminationGracePeriodSeconds < 0:
        errs.append(invalid(f"{path}.terminationGracePeriodSeconds", spec.terminationGracePeriodSeconds,
                            "must be greater than or equal to 0"))
    if spec.HasField("activeDeadlineSeconds") and spec.activeDeadlineSeconds <= 0:
        errs.append(invalid(f"{path}.activeDeadlineSeconds", spec.activeDeadlineSeconds,
                            "must be between 1 and 2147483647, inclusive"))
    for key, value in spec.nodeSelector.items():
        errs += _names(is_qualified_name(key), f"{path}.nodeSelector", key)
        errs += _names(is_label_value(value), f"{path}.nodeSelector", value)
    if spec.nodeName:
        errs += _names(is_dns1123_subdomain(spec.nodeName), f"{path}.nodeName", spec.nodeName)
    for field in ("hostname", "subdomain"):
        value = getattr(spec, field)
        if value:
            errs += _names(is_dns1123_label(value), f"{path}.{field}", value)
    if spec.serviceAccountName:
        errs += _names(is_dns1123_subdomain(spec.serviceAccountName), f"{path}.serviceAccountName",
                       spec.serviceAccountName)
    errs += _validate_tolerations(spec.tolerations, f"{path}.tolerations")
    if spec.HasField("affinity"):
        errs += _validate_affinity(spec.affinity, f"{path}.affinity")
    for i, tsc in enumerate(spec.topologySpreadConstraints):
        tp = f"{path}.topologySpreadConstraints[{i}]"
        if tsc.maxSkew <= 0:
            errs.append(invalid(f"{tp}.maxSkew", tsc.maxSkew, "must be greater than zero"))
        if not tsc.topologyKey:
            errs.append(required(f"{tp}.topologyKey", "can not be empty"))
        if tsc.whenUnsatisfiable not in ("DoNotSchedule", "ScheduleAnyway"):
            errs.append(not_supported(f"{tp}.whenUnsatisfiable", tsc.whenUnsatisfiable,
                                      ["DoNotSchedule", "ScheduleAnyway"]))
    if spec.HasField("preemptionPolicy") and spec.preemptionPolicy not in ("PreemptLowerPriority", "Never"):
        errs.append(not_supported(f"{path}.preemptionPolicy", spec.preemptionPolicy,
                                  ["Never", "PreemptLowerPriority"]))
    for i, alias in enumerate(spec.hostAliases):
        errs += [invalid(f"{path}.hostAliases[{i}].ip", alias.ip, m) for m in _ip_errors(alias.ip)]
    return errs


def _ip_errors(ip: str) -> list[str]:
    from api import is_valid_ip

    return is_valid_ip(ip)


def validate_pod_template(template: core_pb2.PodTemplateSpec, path: str) -> list[FieldError]:
    """A workload's pod template: labels, then the pod spec. Which restart
    policies a workload accepts is the workload's rule (see _workload.py)."""
    errs: list[FieldError] = []
    for key, value in template.metadata.labels.items():
        errs += _names(is_qualified_name(key), f"{path}.metadata.labels", key)
        errs += _names(is_label_value(value), f"{path}.metadata.labels", value)
    errs += validate_pod_spec(template.spec, f"{path}.spec")
    return errs
