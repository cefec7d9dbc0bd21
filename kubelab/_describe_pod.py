"""Describing pods and pod templates, kubectl's way.

A Pod's description and the "Pod Template" section of every workload share
the same pieces - containers (image, ports, command, state, resources,
probes, environment, mounts), volumes and tolerations - so they live here
together; _describers.py uses them for Deployments and ReplicaSets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._describe import LAST_APPLIED, Writer, age, controlled_by, multiline, timestamp

if TYPE_CHECKING:
    from client import Clientset


def quantities(w: Writer, level: int, title: str, values: Any) -> None:
    if not values:
        return
    w.write(level, f"{title}:")
    for key in sorted(values):
        w.write(level + 1, f"{key}:\t{values[key].value}")


# ---------------------------------------------------------------- pods


def _probe(probe: Any) -> str:
    from api import value_of
    if probe.HasField("httpGet"):
        get = probe.httpGet
        scheme = (get.scheme or "HTTP").lower()
        action = f"http-get {scheme}://{get.host}:{value_of(get.port)}{get.path}"
    elif probe.HasField("tcpSocket"):
        action = f"tcp-socket {probe.tcpSocket.host}:{value_of(probe.tcpSocket.port)}"
    elif probe.HasField("grpc"):
        action = f"grpc <pod>:{probe.grpc.port} {probe.grpc.service}".rstrip()
    elif probe.HasField("exec"):
        action = "exec [" + " ".join(probe.exec.command) + "]"
    else:
        action = "unknown"
    return (f"{action} delay={probe.initialDelaySeconds}s timeout={probe.timeoutSeconds or 1}s "
            f"period={probe.periodSeconds or 10}s #success={probe.successThreshold or 1} "
            f"#failure={probe.failureThreshold or 3}")


def _state(w: Writer, title: str, state: Any) -> None:
    if state.HasField("running"):
        w.write(2, f"{title}:\tRunning")
        w.write(3, f"Started:\t{timestamp(state.running.startedAt)}")
    elif state.HasField("waiting"):
        w.write(2, f"{title}:\tWaiting")
        if state.waiting.reason:
            w.write(3, f"Reason:\t{state.waiting.reason}")
    elif state.HasField("terminated"):
        t = state.terminated
        w.write(2, f"{title}:\tTerminated")
        if t.reason:
            w.write(3, f"Reason:\t{t.reason}")
        if t.message:
            w.write(3, f"Message:\t{t.message}")
        w.write(3, f"Exit Code:\t{t.exitCode}")
        if t.signal:
            w.write(3, f"Signal:\t{t.signal}")
        w.write(3, f"Started:\t{timestamp(t.startedAt)}")
        w.write(3, f"Finished:\t{timestamp(t.finishedAt)}")
    elif title == "State":
        w.write(2, f"{title}:\tWaiting")


def _env_value(env: Any) -> str:
    src = env.valueFrom
    if src.HasField("fieldRef"):
        return f"({src.fieldRef.apiVersion or 'v1'}:{src.fieldRef.fieldPath})"
    if src.HasField("resourceFieldRef"):
        return f"{src.resourceFieldRef.resource} ({src.resourceFieldRef.containerName})"
    if src.HasField("configMapKeyRef"):
        ref = src.configMapKeyRef
        return f"<set to the key '{ref.key}' of config map '{ref.name}'>\tOptional: {str(ref.optional).lower()}"
    if src.HasField("secretKeyRef"):
        ref = src.secretKeyRef
        return f"<set to the key '{ref.key}' in secret '{ref.name}'>\tOptional: {str(ref.optional).lower()}"
    return env.value


def _containers(w: Writer, containers: Any, statuses: Any, level: int = 1) -> None:
    by_name = {s.name: s for s in statuses}
    for c in containers:
        status = by_name.get(c.name)
        w.write(level, f"{c.name}:")
        inner = level + 1
        if status is not None and status.containerID:
            w.write(inner, f"Container ID:\t{status.containerID}")
        w.write(inner, f"Image:\t{c.image}")
        if status is not None:
            w.write(inner, f"Image ID:\t{status.imageID}")
        ports = [f"{p.containerPort}/{p.protocol or 'TCP'}" + (f" ({p.name})" if p.name else "") for p in c.ports]
        host_ports = [f"{p.hostPort}/{p.protocol or 'TCP'}" for p in c.ports]
        w.write(inner, ("Ports:\t" if len(ports) > 1 else "Port:\t") + (", ".join(ports) or "<none>"))
        w.write(inner, ("Host Ports:\t" if len(ports) > 1 else "Host Port:\t") + (", ".join(host_ports) or "<none>"))
        for title, values in (("Command", c.command), ("Args", c.args)):
            if values:
                w.write(inner, f"{title}:")
                for value in values:
                    for line in value.split("\n"):
                        w.write(inner + 1, line)
        if status is not None:
            _state(w, "State", status.state)
            _state(w, "Last State", status.lastState)
            w.write(inner, f"Ready:\t{'True' if status.ready else 'False'}")
            w.write(inner, f"Restart Count:\t{status.restartCount}")
        quantities(w, inner, "Limits", c.resources.limits)
        quantities(w, inner, "Requests", c.resources.requests)
        for title, probe in (("Liveness", "livenessProbe"), ("Readiness", "readinessProbe"),
                             ("Startup", "startupProbe")):
            if c.HasField(probe):
                w.write(inner, f"{title}:\t{_probe(getattr(c, probe))}")
        if c.envFrom:
            w.write(inner, "Environment Variables from:")
            for src in c.envFrom:
                if src.HasField("configMapRef"):
                    w.write(inner + 1, f"{src.configMapRef.name}\tConfigMap\tOptional: "
                                       f"{str(src.configMapRef.optional).lower()}")
                elif src.HasField("secretRef"):
                    w.write(inner + 1, f"{src.secretRef.name}\tSecret\tOptional: "
                                       f"{str(src.secretRef.optional).lower()}")
        if not c.env:
            w.write(inner, "Environment:\t<none>")
        else:
            w.write(inner, "Environment:")
            for env in c.env:
                w.write(inner + 1, f"{env.name}:\t{_env_value(env)}")
        if not c.volumeMounts:
            w.write(inner, "Mounts:\t<none>")
        else:
            w.write(inner, "Mounts:")
            for m in sorted(c.volumeMounts, key=lambda m: m.mountPath):
                flags = ["ro" if m.readOnly else "rw"]
                if m.subPath:
                    flags.append(f'path="{m.subPath}"')
                w.write(inner + 1, f"{m.mountPath} from {m.name} ({','.join(flags)})")


def _volumes(w: Writer, volumes: Any, level: int = 0) -> None:
    if not volumes:
        w.write(level, "Volumes:\t<none>")
        return
    w.write(level, "Volumes:")
    for v in volumes:
        w.write(level + 1, f"{v.name}:")
        inner = level + 2
        source = next((f.name for f, _ in v.ListFields() if f.name != "name"), "")
        if source == "emptyDir":
            w.write(inner, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)")
            w.write(inner, f"Medium:\t{v.emptyDir.medium}")
            w.write(inner, f"SizeLimit:\t{v.emptyDir.sizeLimit.value or '<unset>'}")
        elif source == "hostPath":
            w.write(inner, "Type:\tHostPath (bare host directory volume)")
            w.write(inner, f"Path:\t{v.hostPath.path}")
            w.write(inner, f"HostPathType:\t{v.hostPath.type}")
        elif source == "configMap":
            w.write(inner, "Type:\tConfigMap (a volume populated by a ConfigMap)")
            w.write(inner, f"Name:\t{v.configMap.name}")
            w.write(inner, f"Optional:\t{str(v.configMap.optional).lower()}")
        elif source == "secret":
            w.write(inner, "Type:\tSecret (a volume populated by a Secret)")
            w.write(inner, f"SecretName:\t{v.secret.secretName}")
            w.write(inner, f"Optional:\t{str(v.secret.optional).lower()}")
        elif source == "persistentVolumeClaim":
            w.write(inner, "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same "
                           "namespace)")
            w.write(inner, f"ClaimName:\t{v.persistentVolumeClaim.claimName}")
            w.write(inner, f"ReadOnly:\t{str(v.persistentVolumeClaim.readOnly).lower()}")
        elif source == "downwardAPI":
            w.write(inner, "Type:\tDownwardAPI (a volume populated by information about the pod)")
            w.write(inner, "Items:")
            for item in v.downwardAPI.items:
                what = item.fieldRef.fieldPath or item.resourceFieldRef.resource
                w.write(inner + 1, f"{what} -> {item.path}")
        elif source == "projected":
            w.write(inner, "Type:\tProjected (a volume that contains injected data from multiple sources)")
        else:
            w.write(inner, f"Type:\t{source[:1].upper() + source[1:] if source else '<unknown>'}")


def _tolerations(w: Writer, tolerations: Any, level: int = 0) -> None:
    if not tolerations:
        w.write(level, "Tolerations:\t<none>")
        return
    for i, t in enumerate(tolerations):
        text = t.key + (f"={t.value}" if t.value else "") + (f":{t.effect}" if t.effect else "")
        if t.operator == "Exists" and not t.value:
            text += " op=Exists" if (t.key or t.effect) else "op=Exists"
        if t.HasField("tolerationSeconds"):
            text += f" for {t.tolerationSeconds}s"
        w.write(level, ("Tolerations:\t" if i == 0 else "\t") + text)


async def describe_pod(cs: Clientset, pod: Any, w: Writer) -> None:
    meta, spec, status = pod.metadata, pod.spec, pod.status
    w.write(0, f"Name:\t{meta.name}")
    w.write(0, f"Namespace:\t{meta.namespace}")
    if spec.HasField("priority"):
        w.write(0, f"Priority:\t{spec.priority}")
    if spec.priorityClassName:
        w.write(0, f"Priority Class Name:\t{spec.priorityClassName}")
    if spec.HasField("runtimeClassName"):
        w.write(0, f"Runtime Class Name:\t{spec.runtimeClassName}")
    w.write(0, f"Service Account:\t{spec.serviceAccountName}")
    node = f"{spec.nodeName}/{status.hostIP}" if spec.nodeName and status.hostIP else spec.nodeName or "<none>"
    w.write(0, f"Node:\t{node}")
    if status.startTime:
        w.write(0, f"Start Time:\t{timestamp(status.startTime)}")
    multiline(w, "Labels", meta.labels)
    multiline(w, "Annotations", meta.annotations, ": ", skip=(LAST_APPLIED,))
    if meta.deletionTimestamp:
        w.write(0, f"Status:\tTerminating (lasts {age(meta.deletionTimestamp)})")
        w.write(0, f"Termination Grace Period:\t{meta.deletionGracePeriodSeconds}s")
    else:
        w.write(0, f"Status:\t{status.phase}")
    if status.reason:
        w.write(0, f"Reason:\t{status.reason}")
    if status.message:
        w.write(0, f"Message:\t{status.message}")
    w.write(0, f"IP:\t{status.podIP}")
    if not status.podIPs:
        w.write(0, "IPs:\t<none>")
    else:
        w.write(0, "IPs:")
        for ip in status.podIPs:
            w.write(1, f"IP:\t{ip.ip}")
    controlled_by(w, pod)
    if status.nominatedNodeName:
        w.write(0, f"NominatedNodeName:\t{status.nominatedNodeName}")
    if spec.initContainers:
        w.write(0, "Init Containers:")
        _containers(w, spec.initContainers, status.initContainerStatuses)
    w.write(0, "Containers:")
    _containers(w, spec.containers, status.containerStatuses)
    if spec.readinessGates:
        w.write(0, "Readiness Gates:")
        w.write(1, "Type\tStatus")
        for gate in spec.readinessGates:
            cond = next((c.status for c in status.conditions if c.type == gate.conditionType), "<none>")
            w.write(1, f"{gate.conditionType} \t{cond} ")
    if status.conditions:
        w.write(0, "Conditions:")
        w.write(1, "Type\tStatus")
        for c in status.conditions:
            w.write(1, f"{c.type} \t{c.status} ")
    _volumes(w, spec.volumes)
    if status.qosClass:
        w.write(0, f"QoS Class:\t{status.qosClass}")
    multiline(w, "Node-Selectors", spec.nodeSelector)
    _tolerations(w, spec.tolerations)


def pod_template(w: Writer, template: Any) -> None:
    w.write(0, "Pod Template:")
    multiline(w, "Labels", template.metadata.labels, level=1)
    if template.metadata.annotations:
        multiline(w, "Annotations", template.metadata.annotations, ": ", level=1)
    if template.spec.serviceAccountName:
        w.write(1, f"Service Account:\t{template.spec.serviceAccountName}")
    if template.spec.initContainers:
        w.write(1, "Init Containers:")
        _containers(w, template.spec.initContainers, [], level=2)
    w.write(1, "Containers:")
    _containers(w, template.spec.containers, [], level=2)
    _volumes(w, template.spec.volumes, level=1)
    multiline(w, "Node-Selectors", template.spec.nodeSelector, level=1)
    _tolerations(w, template.spec.tolerations, level=1)
