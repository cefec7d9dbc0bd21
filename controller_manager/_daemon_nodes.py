"""Which nodes a DaemonSet's pod belongs on, and how the pod gets there.

A node is eligible when the pod template's nodeSelector and required node
affinity match it and every NoSchedule/NoExecute taint it carries is
tolerated. Daemon pods get Kubernetes' automatic tolerations first (they
exist to run everywhere, including on nodes in trouble): not-ready and
unreachable (NoExecute, no time limit), disk, memory and pid pressure and
unschedulable (NoSchedule), and network-unavailable for host-network pods.
A NoSchedule taint added after the pod started does not evict it: that is
the difference between "should run" and "should continue running".

The pod itself is pinned to its node through required node affinity on the
node's name (`matchFields: metadata.name In [node]`) and left to the
scheduler to bind, as Kubernetes does since daemon pods stopped bypassing
the scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass

from proto import core_pb2

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
PID_PRESSURE = "node.kubernetes.io/pid-pressure"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"


def add_daemon_tolerations(spec: core_pb2.PodSpec) -> None:
    """The tolerations every daemon pod gets, unless it has them already."""
    wanted = [(NOT_READY, "NoExecute"), (UNREACHABLE, "NoExecute"), (DISK_PRESSURE, "NoSchedule"),
              (MEMORY_PRESSURE, "NoSchedule"), (PID_PRESSURE, "NoSchedule"), (UNSCHEDULABLE, "NoSchedule")]
    if spec.hostNetwork:
        wanted.append((NETWORK_UNAVAILABLE, "NoSchedule"))
    for key, effect in wanted:
        if not any(t.key == key and t.effect == effect and t.operator == "Exists" for t in spec.tolerations):
            spec.tolerations.add(key=key, operator="Exists", effect=effect)


def tolerates(toleration: core_pb2.Toleration, taint: core_pb2.Taint) -> bool:
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.operator == "Exists":
        return not toleration.key or toleration.key == taint.key
    return toleration.key == taint.key and toleration.value == taint.value


def _requirement_matches(req: core_pb2.NodeSelectorRequirement, values: dict[str, str]) -> bool:
    op, key = req.operator, req.key
    if op == "In":
        return key in values and values[key] in req.values
    if op == "NotIn":
        return key not in values or values[key] not in req.values
    if op == "Exists":
        return key in values
    if op == "DoesNotExist":
        return key not in values
    if op in ("Gt", "Lt") and key in values and len(req.values) == 1:
        try:
            have, want = int(values[key]), int(req.values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def _term_matches(term: core_pb2.NodeSelectorTerm, node: core_pb2.Node) -> bool:
    if not term.matchExpressions and not term.matchFields:
        return False  # an empty term matches nothing
    labels = dict(node.metadata.labels)
    fields = {"metadata.name": node.metadata.name}
    return all(_requirement_matches(r, labels) for r in term.matchExpressions) and \
        all(_requirement_matches(r, fields) for r in term.matchFields)


def node_matches(spec: core_pb2.PodSpec, node: core_pb2.Node) -> bool:
    """nodeSelector and required node affinity."""
    labels = node.metadata.labels
    if any(labels.get(k) != v for k, v in spec.nodeSelector.items()):
        return False
    affinity = spec.affinity.nodeAffinity
    if affinity.HasField("requiredDuringSchedulingIgnoredDuringExecution"):
        terms = affinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms
        if not any(_term_matches(t, node) for t in terms):
            return False
    return True


@dataclass(frozen=True)
class Fit:
    should_run: bool
    should_continue_running: bool


def node_fit(spec: core_pb2.PodSpec, node: core_pb2.Node) -> Fit:
    """Whether a daemon pod with this spec (automatic tolerations included)
    should run on `node`, and whether one already there may stay."""
    if spec.nodeName and spec.nodeName != node.metadata.name:
        return Fit(False, False)
    if not node_matches(spec, node):
        return Fit(False, False)
    taints = list(node.spec.taints)
    if node.spec.unschedulable and not any(t.key == UNSCHEDULABLE for t in taints):
        taints.append(core_pb2.Taint(key=UNSCHEDULABLE, effect="NoSchedule"))
    untolerated = [t for t in taints if t.effect in ("NoSchedule", "NoExecute")
                   and not any(tolerates(tol, t) for tol in spec.tolerations)]
    return Fit(not untolerated, not any(t.effect == "NoExecute" for t in untolerated))


def pin_to_node(spec: core_pb2.PodSpec, node_name: str) -> None:
    """Require the node by name: replaces the required node affinity terms
    (the controller already checked the node against them)."""
    required = spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution
    del required.nodeSelectorTerms[:]
    term = required.nodeSelectorTerms.add()
    term.matchFields.add(key="metadata.name", operator="In", values=[node_name])


def target_node(pod: core_pb2.Pod) -> str:
    """The node a daemon pod runs on, or is pinned to before it is bound."""
    if pod.spec.nodeName:
        return pod.spec.nodeName
    required = pod.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution
    for term in required.nodeSelectorTerms:
        for field in term.matchFields:
            if field.key == "metadata.name" and field.operator == "In" and len(field.values) == 1:
                return str(field.values[0])
    return ""
