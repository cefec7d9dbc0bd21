"""kubectl's describers for workloads, services, nodes and namespaces.

Deployment, ReplicaSet, Service, Node and Namespace (Pods are in
_describe_pod.py), each with the
sections and field order of `kubectl describe` (k8s.io/kubectl's
describe.go), so what a user learned to read there reads the same here.
Related objects a section needs (a Deployment's ReplicaSets, a Service's
Endpoints, a Node's pods, a Namespace's quotas) are fetched from the API;
the events are added by _describe.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._describe import LAST_APPLIED, Writer, age, controlled_by, multiline, timestamp
from ._describe_pod import pod_template, quantities

if TYPE_CHECKING:
    from client import Clientset


def _selector_text(selector: Any) -> str:
    from api import selector_from_message
    text = str(selector_from_message(selector))
    return text or "<none>"


def _conditions(w: Writer, conditions: Any) -> None:
    if not conditions:
        return
    w.write(0, "Conditions:")
    w.write(1, "Type\tStatus\tReason")
    w.write(1, "----\t------\t------")
    for c in conditions:
        w.write(1, f"{c.type} \t{c.status}\t{c.reason}")


# ---------------------------------------------------------------- workloads


async def describe_deployment(cs: Clientset, d: Any, w: Writer) -> None:
    from api import value_of
    from proto import apps_pb2
    meta, spec, status = d.metadata, d.spec, d.status
    w.write(0, f"Name:\t{meta.name}")
    w.write(0, f"Namespace:\t{meta.namespace}")
    w.write(0, f"CreationTimestamp:\t{timestamp(meta.creationTimestamp)}")
    multiline(w, "Labels", meta.labels)
    multiline(w, "Annotations", meta.annotations, ": ", skip=(LAST_APPLIED,))
    w.write(0, f"Selector:\t{_selector_text(spec.selector)}")
    desired = spec.replicas if spec.HasField("replicas") else 1
    w.write(0, f"Replicas:\t{desired} desired | {status.updatedReplicas} updated | {status.replicas} total | "
               f"{status.availableReplicas} available | {status.unavailableReplicas} unavailable")
    strategy = spec.strategy.type or "RollingUpdate"
    w.write(0, f"StrategyType:\t{strategy}")
    w.write(0, f"MinReadySeconds:\t{spec.minReadySeconds}")
    if strategy == "RollingUpdate":
        ru = spec.strategy.rollingUpdate
        unavailable = value_of(ru.maxUnavailable) if ru.HasField("maxUnavailable") else "25%"
        surge = value_of(ru.maxSurge) if ru.HasField("maxSurge") else "25%"
        w.write(0, f"RollingUpdateStrategy:\t{unavailable} max unavailable, {surge} max surge")
    pod_template(w, spec.template)
    _conditions(w, status.conditions)
    owned = [rs for rs in (await cs.resource(apps_pb2.ReplicaSet, meta.namespace).list_all()).items
             if any(ref.uid == meta.uid for ref in rs.metadata.ownerReferences)]

    def revision(rs: Any) -> int:
        text = rs.metadata.annotations.get("deployment.kubernetes.io/revision", "0")
        return int(text) if text.isdigit() else 0
    owned.sort(key=revision)
    newest = owned[-1] if owned else None
    old = [rs for rs in owned[:-1] if rs.spec.replicas or rs.status.replicas]

    def shown(rs: Any) -> str:
        return f"{rs.metadata.name} ({rs.status.replicas}/{rs.spec.replicas} replicas created)"
    w.write(0, f"OldReplicaSets:\t{', '.join(shown(rs) for rs in old) or '<none>'}")
    w.write(0, f"NewReplicaSet:\t{shown(newest) if newest is not None else '<none>'}")


async def describe_replicaset(cs: Clientset, rs: Any, w: Writer) -> None:
    from proto import core_pb2
    meta, spec, status = rs.metadata, rs.spec, rs.status
    w.write(0, f"Name:\t{meta.name}")
    w.write(0, f"Namespace:\t{meta.namespace}")
    w.write(0, f"Selector:\t{_selector_text(spec.selector)}")
    multiline(w, "Labels", meta.labels)
    multiline(w, "Annotations", meta.annotations, ": ", skip=(LAST_APPLIED,))
    controlled_by(w, rs)
    desired = spec.replicas if spec.HasField("replicas") else 1
    w.write(0, f"Replicas:\t{status.replicas} current / {desired} desired")
    selector = _selector_text(spec.selector)
    pods = [] if selector == "<none>" else \
        (await cs.resource(core_pb2.Pod, meta.namespace).list_all(label_selector=selector)).items
    pods = [p for p in pods if not p.metadata.ownerReferences
            or any(ref.uid == meta.uid for ref in p.metadata.ownerReferences)]
    phases = [p.status.phase or "Pending" for p in pods]
    w.write(0, f"Pods Status:\t{phases.count('Running')} Running / {phases.count('Pending')} Waiting / "
               f"{phases.count('Succeeded')} Succeeded / {phases.count('Failed')} Failed")
    pod_template(w, spec.template)
    _conditions(w, status.conditions)


# ---------------------------------------------------------------- services


async def describe_service(cs: Clientset, svc: Any, w: Writer) -> None:
    from api import StatusError, format_labels, value_of
    from proto import core_pb2
    spec = svc.spec
    w.write(0, f"Selector:\t{format_labels(spec.selector)}")
    w.write(0, f"Type:\t{spec.type}")
    if spec.HasField("ipFamilyPolicy"):
        w.write(0, f"IP Family Policy:\t{spec.ipFamilyPolicy}")
    if spec.ipFamilies:
        w.write(0, f"IP Families:\t{','.join(spec.ipFamilies)}")
    w.write(0, f"IP:\t{spec.clusterIP}")
    if spec.clusterIPs:
        w.write(0, f"IPs:\t{','.join(spec.clusterIPs)}")
    if spec.externalIPs:
        w.write(0, f"External IPs:\t{','.join(spec.externalIPs)}")
    if spec.type == "ExternalName":
        w.write(0, f"External Name:\t{spec.externalName}")
    ingress = [i.ip or i.hostname for i in svc.status.loadBalancer.ingress]
    if ingress:
        w.write(0, f"LoadBalancer Ingress:\t{', '.join(ingress)}")
    try:
        endpoints = await cs.resource(core_pb2.Endpoints, svc.metadata.namespace).get(svc.metadata.name)
    except StatusError:
        endpoints = None
    for port in spec.ports:
        name = port.name or "<unset>"
        w.write(0, f"Port:\t{name}\t{port.port}/{port.protocol}")
        target = value_of(port.targetPort)
        w.write(0, f"TargetPort:\t{target}/{port.protocol}" if target is not None else "TargetPort:\t<none>")
        if port.nodePort:
            w.write(0, f"NodePort:\t{name}\t{port.nodePort}/{port.protocol}")
        addresses = []
        if endpoints is not None:
            for subset in endpoints.subsets:
                for ep_port in subset.ports:
                    if ep_port.name == port.name:
                        addresses += [f"{a.ip}:{ep_port.port}" for a in subset.addresses]
        w.write(0, f"Endpoints:\t{','.join(addresses)}")
    w.write(0, f"Session Affinity:\t{spec.sessionAffinity or 'None'}")
    if spec.type in ("NodePort", "LoadBalancer"):
        w.write(0, f"External Traffic Policy:\t{spec.externalTrafficPolicy}")
    if spec.HasField("internalTrafficPolicy"):
        w.write(0, f"Internal Traffic Policy:\t{spec.internalTrafficPolicy}")


# ---------------------------------------------------------------- nodes and namespaces


async def describe_node(cs: Clientset, node: Any, w: Writer) -> None:
    from api import Quantity
    from proto import core_pb2
    meta, spec, status = node.metadata, node.spec, node.status
    w.write(0, f"Name:\t{meta.name}")
    roles = sorted(k.split("/", 1)[1] for k in meta.labels if k.startswith("node-role.kubernetes.io/"))
    w.write(0, f"Roles:\t{','.join(r for r in roles if r) or '<none>'}")
    multiline(w, "Labels", meta.labels)
    multiline(w, "Annotations", meta.annotations, ": ", skip=(LAST_APPLIED,))
    w.write(0, f"CreationTimestamp:\t{timestamp(meta.creationTimestamp)}")
    taints = [t.key + (f"={t.value}" if t.value else "") + f":{t.effect}" for t in spec.taints]
    for i, taint in enumerate(taints or ["<none>"]):
        w.write(0, ("Taints:\t" if i == 0 else "\t") + taint)
    w.write(0, f"Unschedulable:\t{str(spec.unschedulable).lower()}")
    if status.conditions:
        w.write(0, "Conditions:")
        w.write(1, "Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage")
        w.write(1, "----\t------\t-----------------\t------------------\t------\t-------")
        for c in status.conditions:
            w.write(1, f"{c.type} \t{c.status} \t{timestamp(c.lastHeartbeatTime)} \t"
                       f"{timestamp(c.lastTransitionTime)} \t{c.reason} \t{c.message}")
    w.write(0, "Addresses:")
    for a in status.addresses:
        w.write(1, f"{a.type}:\t{a.address}")
    quantities(w, 0, "Capacity", status.capacity)
    quantities(w, 0, "Allocatable", status.allocatable)
    info = status.nodeInfo
    w.write(0, "System Info:")
    for label, value in (("Machine ID", info.machineID), ("System UUID", info.systemUUID), ("Boot ID", info.bootID),
                         ("Kernel Version", info.kernelVersion), ("OS Image", info.osImage),
                         ("Operating System", info.operatingSystem), ("Architecture", info.architecture),
                         ("Container Runtime Version", info.containerRuntimeVersion),
                         ("Kubelet Version", info.kubeletVersion), ("Kube-Proxy Version", info.kubeProxyVersion)):
        w.write(1, f"{label}:\t{value}")
    if spec.podCIDR:
        w.write(0, f"PodCIDR:\t{spec.podCIDR}")
    if spec.podCIDRs:
        w.write(0, f"PodCIDRs:\t{','.join(spec.podCIDRs)}")
    pods = [p for p in (await cs.resource(core_pb2.Pod).list_all(field_selector=f"spec.nodeName={meta.name}")).items
            if p.status.phase not in ("Succeeded", "Failed")]
    w.write(0, f"Non-terminated Pods:\t({len(pods)} in total)")
    w.write(1, "Namespace\tName\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge")
    w.write(1, "---------\t----\t------------\t----------\t---------------\t-------------\t---")
    allocatable = status.allocatable
    totals: dict[str, Quantity] = {}

    def share(resource: str, kind: str, values: dict[str, Quantity]) -> str:
        amount = values.get(resource, Quantity(0))
        totals[f"{kind}/{resource}"] = totals.get(f"{kind}/{resource}", Quantity(0)) + amount
        whole = allocatable[resource].value if resource in allocatable else ""
        percent = int(amount.milli_value() * 100 / Quantity.parse(whole).milli_value()) \
            if whole and Quantity.parse(whole).milli_value() else 0
        return f"{amount} ({percent}%)"
    for p in pods:
        requests: dict[str, Quantity] = {}
        limits: dict[str, Quantity] = {}
        for c in p.spec.containers:
            for name, q in c.resources.requests.items():
                requests[name] = requests.get(name, Quantity(0)) + Quantity.parse(q.value)
            for name, q in c.resources.limits.items():
                limits[name] = limits.get(name, Quantity(0)) + Quantity.parse(q.value)
        w.write(1, f"{p.metadata.namespace}\t{p.metadata.name}\t{share('cpu', 'req', requests)}\t"
                   f"{share('cpu', 'lim', limits)}\t{share('memory', 'req', requests)}\t"
                   f"{share('memory', 'lim', limits)}\t{age(p.metadata.creationTimestamp)}")
    w.write(0, "Allocated resources:")
    w.write(1, "(Total limits may be over 100 percent, i.e., overcommitted.)")
    w.write(1, "Resource\tRequests\tLimits")
    w.write(1, "--------\t--------\t------")
    for resource in ("cpu", "memory"):
        w.write(1, f"{resource}\t{share(resource, 'sum', {resource: totals.get(f'req/{resource}', Quantity(0))})}\t"
                   f"{share(resource, 'sum', {resource: totals.get(f'lim/{resource}', Quantity(0))})}")


async def describe_namespace(cs: Clientset, ns: Any, w: Writer) -> None:
    from proto import core_pb2
    meta = ns.metadata
    w.write(0, f"Name:\t{meta.name}")
    multiline(w, "Labels", meta.labels)
    multiline(w, "Annotations", meta.annotations, ": ", skip=(LAST_APPLIED,))
    w.write(0, f"Status:\t{ns.status.phase or 'Active'}")
    quotas = (await cs.resource(core_pb2.ResourceQuota, meta.name).list_all()).items
    w.write(0, "")
    if not quotas:
        w.write(0, "No resource quota.")
    for quota in quotas:
        w.write(0, "Resource Quotas")
        w.write(1, f"Name:\t{quota.metadata.name}")
        w.write(1, "Resource\tUsed\tHard")
        w.write(1, "--------\t---\t---")
        for name in sorted(quota.spec.hard):
            used = quota.status.used[name].value if name in quota.status.used else "0"
            w.write(1, f"{name}\t{used}\t{quota.spec.hard[name].value}")
    ranges = (await cs.resource(core_pb2.LimitRange, meta.name).list_all()).items
    w.write(0, "")
    if not ranges:
        w.write(0, "No LimitRange resource.")
    for lr in ranges:
        w.flush()
        w.write(0, "Resource Limits")
        w.write(1, "Type\tResource\tMin\tMax\tDefault Request\tDefault Limit\tMax Limit/Request Ratio")
        w.write(1, "----\t--------\t---\t---\t---------------\t-------------\t-----------------------")
        for item in lr.spec.limits:
            names = sorted(set(item.max) | set(item.min) | set(item.default) | set(item.defaultRequest)
                           | set(item.maxLimitRequestRatio))
            for name in names:
                cells = [m[name].value if name in m else "-" for m in (item.min, item.max, item.defaultRequest,
                                                                       item.default, item.maxLimitRequestRatio)]
                w.write(1, "\t".join([item.type, name, *cells]))
