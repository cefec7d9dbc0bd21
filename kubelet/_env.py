"""A container's environment, worked out the way the kubelet does it.

`make_environment` is kubelet's makeEnvironmentVariables:

1. envFrom sources, in order (configMapRef / secretRef, with `prefix`);
   keys that are not valid variable names after the prefix are skipped and
   reported through `on_warning` (Kubernetes' InvalidEnvironmentVariableNames
   event), never an error;
2. env entries, in order: a `value` has its `$(VAR)` references expanded
   against what is defined so far plus the service variables (`$$` is a
   literal `$`, an unknown reference stays as written); a `valueFrom` is
   resolved (fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef);
   a later entry replaces an earlier one of the same name;
3. the service link variables (`<SVC>_SERVICE_HOST`, docker-links style
   `<SVC>_PORT_<port>_<PROTO>...`) of the pod's namespace when
   `enableServiceLinks` is not false, plus always the `kubernetes` service
   of the default namespace; a name already defined in steps 1-2 wins.

Kubernetes emits steps 1-2 from a Go map (no defined order); kubelab keeps
first-definition order, then the service variables sorted by service, so
the result is stable. Anything that makes the environment impossible (a
ConfigMap or Secret that is missing and not optional, a missing key, an
unsupported fieldPath) raises ContainerConfigError worded as the kubelet
words it; the kubelet shows it as the container's waiting reason
CreateContainerConfigError and retries later.

The downward API helpers here (`pod_field_value`, `container_resource_value`)
are shared with the downwardAPI and projected volumes.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from api import Quantity, QuantityError, StatusError, is_env_var_name
from proto import core_pb2

#: The services whose variables every pod gets, from the master services' namespace.
MASTER_SERVICE_NAMESPACE = "default"
MASTER_SERVICES = frozenset({"kubernetes"})

Warn = Callable[[str, str], None]  # (event reason, message)


class ContainerConfigError(Exception):
    """The container cannot be configured (CreateContainerConfigError)."""


class ObjectGetter(Protocol):
    """Reads one ConfigMap or Secret; raises api.StatusError (NotFound)."""

    async def get(self, namespace: str, name: str) -> Any: ...


class ClientGetter:
    """An ObjectGetter over a Clientset: a GET per read (always fresh)."""

    def __init__(self, clientset: Any, kind: Any) -> None:
        self._clientset = clientset
        self._kind = kind

    async def get(self, namespace: str, name: str) -> Any:
        return await self._clientset.resource(self._kind, namespace).get(name)


class ListerGetter:
    """An ObjectGetter over an informer's Lister: reads the local cache."""

    def __init__(self, lister: Any) -> None:
        self._lister = lister

    async def get(self, namespace: str, name: str) -> Any:
        return self._lister.get(namespace, name)


# ---------------------------------------------------------------- $(VAR) expansion

def expand(text: str, mapping: Callable[[str], str]) -> str:
    """Kubernetes' `$(VAR)` expansion: `$(NAME)` becomes mapping(NAME),
    `$$` becomes `$`, and any other `$` (including an unclosed `$(`) is kept."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = text.find(")", i + 2)
            if close < 0:
                out.append("$(")
                i += 2
            else:
                out.append(mapping(text[i + 2:close]))
                i = close + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


def mapping_for(*contexts: Mapping[str, str]) -> Callable[[str], str]:
    """A mapping for `expand` that looks `name` up in each context in turn
    and leaves an unknown reference as `$(name)`."""

    def lookup(name: str) -> str:
        for ctx in contexts:
            if name in ctx:
                return ctx[name]
        return f"$({name})"

    return lookup


# ---------------------------------------------------------------- downward API

_SUBSCRIPT = re.compile(r"^(metadata\.(?:labels|annotations))\['(.*)'\]$")
_POD_FIELDS = frozenset({
    "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid",
    "spec.nodeName", "spec.restartPolicy", "spec.serviceAccountName", "spec.schedulerName", "status.phase",
    "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
})


def go_quote(text: str) -> str:
    """Go's %q of a string: how the downward API quotes label values."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def format_map(values: Mapping[str, str]) -> str:
    """`key="value"` lines in key order (metadata.labels / annotations)."""
    return "\n".join(f"{k}={go_quote(values[k])}" for k in sorted(values))


def pod_field_value(pod: core_pb2.Pod, field_ref: core_pb2.ObjectFieldSelector, *, host_ips: Sequence[str] = (),
                    pod_ips: Sequence[str] = ()) -> str:
    """The value of a pod fieldRef (env or downwardAPI volume).

    Raises ValueError worded as Kubernetes words it for an unsupported path."""
    version = field_ref.apiVersion or "v1"
    path = field_ref.fieldPath
    if version != "v1":
        raise ValueError(f"unsupported pod version: {version}")
    sub = _SUBSCRIPT.match(path)
    if sub is None and "[" in path:
        raise ValueError(f"field label does not support subscript: {path}")
    if sub is None and path not in _POD_FIELDS and path != "spec.host":
        raise ValueError(f"field label not supported: {path}")
    meta, spec = pod.metadata, pod.spec
    if sub is not None:
        values = meta.labels if sub.group(1) == "metadata.labels" else meta.annotations
        return values.get(sub.group(2), "")
    simple: dict[str, Callable[[], str]] = {
        "metadata.name": lambda: meta.name,
        "metadata.namespace": lambda: meta.namespace,
        "metadata.uid": lambda: meta.uid,
        "metadata.labels": lambda: format_map(meta.labels),
        "metadata.annotations": lambda: format_map(meta.annotations),
        "spec.nodeName": lambda: spec.nodeName,
        "spec.host": lambda: spec.nodeName,
        "spec.serviceAccountName": lambda: spec.serviceAccountName,
        "status.hostIP": lambda: host_ips[0] if host_ips else "",
        "status.hostIPs": lambda: ",".join(host_ips),
        "status.podIP": lambda: pod_ips[0] if pod_ips else "",
        "status.podIPs": lambda: ",".join(pod_ips),
    }
    if path not in simple:  # accepted by the API, but no value the kubelet hands out
        raise ValueError(f"unsupported fieldPath: {path}")
    return simple[path]()


def host_allocatable() -> dict[str, Quantity]:
    """This host's capacity (cpu count, MemTotal, root disk size): the
    default for unset limits when the caller gives no node allocatable."""
    memory = 0
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    memory = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    return {"cpu": Quantity(os.cpu_count() or 1), "memory": Quantity(memory),
            "ephemeral-storage": Quantity(shutil.disk_usage("/").total)}


def _quantities(values: Mapping[str, Any]) -> dict[str, Quantity]:
    out: dict[str, Quantity] = {}
    for name, value in values.items():
        text = value if isinstance(value, (str, Quantity)) else value.value
        out[name] = text if isinstance(text, Quantity) else Quantity.parse(text)
    return out


def find_container(pod: core_pb2.Pod, name: str) -> core_pb2.Container:
    for c in list(pod.spec.containers) + list(pod.spec.initContainers):
        if c.name == name:
            return c
    raise ValueError(f"container {name} not found")


def container_resource_value(selector: core_pb2.ResourceFieldSelector, container: core_pb2.Container,
                             node_allocatable: Mapping[str, Any] | None = None) -> str:
    """A resourceFieldRef's value: the container's limit or request divided
    by the divisor, rounded up; an unset limit is the node's allocatable.

    Raises ValueError for an unsupported resource."""
    try:
        divisor = Quantity.parse(selector.divisor.value) if selector.divisor.value else Quantity(1)
    except QuantityError as err:
        raise ValueError(f"resourceFieldRef {selector.resource}: divisor {selector.divisor.value!r}: {err}") from None
    if divisor.amount == 0:
        divisor = Quantity(1)
    kind, _, resource = selector.resource.partition(".")
    if kind not in ("limits", "requests") or resource not in ("cpu", "memory", "ephemeral-storage"):
        raise ValueError(f"unsupported container resource : {selector.resource}")
    source = container.resources.limits if kind == "limits" else container.resources.requests
    if resource in source:
        amount = Quantity.parse(source[resource].value)
    elif kind == "limits":
        allocatable = _quantities(node_allocatable) if node_allocatable is not None else host_allocatable()
        amount = allocatable.get(resource, Quantity(0))
    else:
        amount = Quantity(0)
    if resource == "cpu":
        return str(math.ceil(amount.milli_value() / divisor.milli_value()))
    return str(math.ceil(amount.value() / divisor.value()))


# ---------------------------------------------------------------- services

def _env_name(name: str) -> str:
    return name.replace("-", "_").upper()


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def service_environment(services: Iterable[core_pb2.Service]) -> list[tuple[str, str]]:
    """envvars.FromServices: the variables of each service that has a
    cluster IP (headless and ExternalName services give none)."""
    out: list[tuple[str, str]] = []
    for svc in services:
        ip = svc.spec.clusterIP
        if ip in ("", "None") or not svc.spec.ports:
            continue
        prefix = _env_name(svc.metadata.name)
        out.append((f"{prefix}_SERVICE_HOST", ip))
        out.append((f"{prefix}_SERVICE_PORT", str(svc.spec.ports[0].port)))
        for port in svc.spec.ports:
            if port.name:
                out.append((f"{prefix}_SERVICE_PORT_{_env_name(port.name)}", str(port.port)))
        for i, port in enumerate(svc.spec.ports):
            proto = port.protocol or "TCP"
            url = f"{proto.lower()}://{_join_host_port(ip, port.port)}"
            if i == 0:
                out.append((f"{prefix}_PORT", url))
            port_prefix = f"{prefix}_PORT_{port.port}_{proto.upper()}"
            out += [(port_prefix, url), (f"{port_prefix}_PROTO", proto.lower()),
                    (f"{port_prefix}_PORT", str(port.port)), (f"{port_prefix}_ADDR", ip)]
    return out


def service_env_map(services: Iterable[core_pb2.Service], namespace: str, enable_service_links: bool) -> dict[str, str]:
    """The kubelet's getServiceEnvVarMap: the pod namespace's services (when
    service links are on) projected onto the master services."""
    chosen: dict[str, core_pb2.Service] = {}
    for svc in services:
        if svc.spec.clusterIP in ("", "None"):
            continue
        name = svc.metadata.name
        if svc.metadata.namespace == MASTER_SERVICE_NAMESPACE and name in MASTER_SERVICES:
            chosen.setdefault(name, svc)
        elif svc.metadata.namespace == namespace and enable_service_links:
            chosen[name] = svc
    return dict(service_environment(chosen[name] for name in sorted(chosen)))


# ---------------------------------------------------------------- the environment

def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


class _Sources:
    """ConfigMaps and Secrets read once per environment, as the kubelet caches them."""

    def __init__(self, namespace: str, config_maps: ObjectGetter, secrets: ObjectGetter) -> None:
        self.namespace = namespace
        self._getters = {"configmap": config_maps, "secret": secrets}
        self._seen: dict[tuple[str, str], Any] = {}

    async def get(self, kind: str, name: str, optional: bool) -> Any | None:
        """The object, None when it is missing and optional."""
        if (kind, name) in self._seen:
            return self._seen[(kind, name)]
        try:
            obj = await self._getters[kind].get(self.namespace, name)
        except StatusError as err:
            if err.reason != "NotFound":
                raise ContainerConfigError(f"couldn't get {kind} {self.namespace}/{name}: {err}") from None
            if optional:
                return None
            raise ContainerConfigError(f'{kind} "{name}" not found') from None
        self._seen[(kind, name)] = obj
        return obj


async def make_environment(pod: core_pb2.Pod, container: core_pb2.Container, *, secrets: ObjectGetter,
                           config_maps: ObjectGetter, services: list[core_pb2.Service], node_name: str,
                           host_ip: str, pod_ip: str, node_allocatable: Mapping[str, Any] | None = None,
                           on_warning: Warn | None = None) -> list[tuple[str, str]]:
    """The container's environment as (name, value) pairs; see the module
    docstring. `node_allocatable` (name -> Quantity or quantity text) stands
    in for unset limits in resourceFieldRef; None means this host's capacity.
    `on_warning(reason, message)` receives what Kubernetes reports as events."""
    namespace = pod.metadata.namespace
    links = pod.spec.enableServiceLinks if pod.spec.HasField("enableServiceLinks") else True
    service_env = service_env_map(services, namespace, links)
    sources = _Sources(namespace, config_maps, secrets)
    env: dict[str, str] = {}

    for env_from in container.envFrom:
        ref: core_pb2.ConfigMapEnvSource | core_pb2.SecretEnvSource
        if env_from.HasField("configMapRef"):
            kind, ref = "configmap", env_from.configMapRef
        elif env_from.HasField("secretRef"):
            kind, ref = "secret", env_from.secretRef
        else:
            continue
        obj = await sources.get(kind, ref.name, ref.optional)
        if obj is None:
            continue
        invalid: list[str] = []
        for key, value in sorted(obj.data.items()):
            name = env_from.prefix + key
            if is_env_var_name(name):
                invalid.append(name)
                continue
            env[name] = _decode(value)
        if invalid and on_warning is not None:
            label = "configMap" if kind == "configmap" else "secret"
            on_warning("InvalidEnvironmentVariableNames",
                       f"Keys [{', '.join(sorted(invalid))}] from the EnvFrom {label} {namespace}/{ref.name} were "
                       "skipped since they are considered invalid environment variable names.")

    host_ips = _ip_list(host_ip, [h.ip for h in pod.status.hostIPs] or [pod.status.hostIP])
    pod_ips = _ip_list(pod_ip, [p.ip for p in pod.status.podIPs] or [pod.status.podIP])
    if not pod.spec.nodeName and node_name:
        pod = _with_node_name(pod, node_name)
    for var in container.env:
        if var.value or not var.HasField("valueFrom"):
            env[var.name] = expand(var.value, mapping_for(env, service_env)) if var.value else ""
            continue
        value = await _value_from(pod, container, var, sources, host_ips, pod_ips, node_allocatable)
        if value is not None:
            env[var.name] = value

    result = list(env.items())
    result += [(k, v) for k, v in service_env.items() if k not in env]
    return result


def _ip_list(first: str, others: Iterable[str]) -> list[str]:
    out = [first] if first else []
    out += [ip for ip in others if ip and ip not in out]
    return out


def _with_node_name(pod: core_pb2.Pod, node_name: str) -> core_pb2.Pod:
    copy = core_pb2.Pod()
    copy.CopyFrom(pod)
    copy.spec.nodeName = node_name
    return copy


async def _value_from(pod: core_pb2.Pod, container: core_pb2.Container, var: core_pb2.EnvVar, sources: _Sources,
                      host_ips: list[str], pod_ips: list[str], allocatable: Mapping[str, Any] | None) -> str | None:
    """One valueFrom; None when an optional source or key is missing."""
    src = var.valueFrom
    try:
        if src.HasField("fieldRef"):
            return pod_field_value(pod, src.fieldRef, host_ips=host_ips, pod_ips=pod_ips)
        if src.HasField("resourceFieldRef"):
            ref = src.resourceFieldRef
            target = find_container(pod, ref.containerName) if ref.containerName else container
            return container_resource_value(ref, target, allocatable)
    except ValueError as err:
        raise ContainerConfigError(f"env {var.name}: {err}") from None
    key_ref: core_pb2.ConfigMapKeySelector | core_pb2.SecretKeySelector
    if src.HasField("configMapKeyRef"):
        kind, label, key_ref = "configmap", "ConfigMap", src.configMapKeyRef
    elif src.HasField("secretKeyRef"):
        kind, label, key_ref = "secret", "Secret", src.secretKeyRef
    else:
        raise ContainerConfigError(f"env {var.name}: valueFrom has no source kubelab supports (fileKeyRef is not "
                                   "supported)")
    obj = await sources.get(kind, key_ref.name, key_ref.optional)
    if obj is None:
        return None
    if key_ref.key not in obj.data:
        if key_ref.optional:
            return None
        raise ContainerConfigError(f"couldn't find key {key_ref.key} in {label} {sources.namespace}/{key_ref.name}")
    return _decode(obj.data[key_ref.key])
