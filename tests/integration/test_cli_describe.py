"""`kubelab describe`: kubectl's layout for pods, deployments, replica sets,
services, nodes, namespaces, config maps and (generically) everything else,
with the object's own events at the end and nobody else's."""

from __future__ import annotations

import time

import pytest

from api import rfc3339
from tests.integration.cli_support import Kubelab

POD = """
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web, tier: front}, annotations: {team: blue}}
spec:
  nodeSelector: {disktype: ssd}
  containers:
  - name: nginx
    image: nginx:1.27
    command: [nginx, -g, "daemon off;"]
    ports: [{containerPort: 80}]
    env: [{name: MODE, value: fast}]
    resources: {limits: {cpu: 500m, memory: 128Mi}}
    livenessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 3}
    volumeMounts: [{name: cache, mountPath: /cache, readOnly: true}]
  volumes:
  - {name: cache, emptyDir: {}}
  - {name: cfg, configMap: {name: web-config}}
"""


def event(namespace: str, name: str, kind: str, obj: str, reason: str, message: str, typ: str = "Normal",
          count: int = 1) -> str:
    now = rfc3339(time.time())
    return (f"---\napiVersion: v1\nkind: Event\nmetadata: {{name: {name}}}\n"
            f"involvedObject: {{kind: {kind}, name: {obj}, namespace: {namespace}}}\nreason: {reason}\n"
            f"message: {message}\n"
            f"type: {typ}\ncount: {count}\nsource: {{component: default-scheduler}}\n"
            f'firstTimestamp: "{now}"\nlastTimestamp: "{now}"\n')


def field(lines: list[str], key: str, value: str) -> bool:
    """A `key` line (with its indentation) whose value, after the tabwriter's
    padding, is `value`."""
    return any(line.startswith(key) and line[len(key):].strip() == value and
               (line[len(key):].startswith(" ") or not value) for line in lines)


@pytest.fixture
def kubelab(apiserver) -> Kubelab:  # type: ignore[no-untyped-def]
    return Kubelab(apiserver.target)


def test_describe_pod(kubelab: Kubelab, namespace: str) -> None:
    kubelab.ok("apply", "-f", "-", "-n", namespace, input=POD)
    events = (event(namespace, "e1", "Pod", "web", "FailedScheduling", "0/3 nodes are available", "Warning", 4)
              + event(namespace, "e2", "Service", "web", "Other", "not about the pod")
              + event(namespace, "e3", "Pod", "other", "Other", "not about this pod"))
    kubelab.ok("apply", "-f", "-", "-n", namespace, input=events)
    out = kubelab.ok("describe", "pod", "web", "-n", namespace).stdout
    lines = out.splitlines()
    assert lines[0] == "Name:             web"
    assert lines[1] == f"Namespace:        {namespace}"
    assert "Labels:           app=web" in lines and "                  tier=front" in lines
    assert "Annotations:      team: blue" in lines
    assert "last-applied-configuration" not in out
    for key, value in (("Status:", "Pending"), ("  nginx:", ""), ("    Image:", "nginx:1.27"),
                       ("    Port:", "80/TCP"), ("    Host Port:", "0/TCP"), ("      cpu:", "500m"),
                       ("      memory:", "128Mi"), ("    Liveness:", "http-get http://:8080/healthz delay=0s "
                                                                   "timeout=1s period=3s #success=1 #failure=3"),
                       ("      MODE:", "fast"), ("    Type:", "EmptyDir (a temporary directory that shares a "
                                                               "pod's lifetime)"),
                       ("    Type:", "ConfigMap (a volume populated by a ConfigMap)"), ("    Name:", "web-config"),
                       ("QoS Class:", "Guaranteed"), ("Node-Selectors:", "disktype=ssd")):
        assert field(lines, key, value), f"{key} {value!r} not in:\n{out}"
    for line in ("Containers:", "    Command:", "      nginx", "      daemon off;", "    Limits:", "    Requests:",
                 "    Environment:", "    Mounts:", "      /cache from cache (ro)", "Volumes:"):
        assert line in lines, f"{line!r} not in:\n{out}"
    assert any(line.startswith("Tolerations:") and "node.kubernetes.io/not-ready:NoExecute op=Exists for 300s"
               in line for line in lines)
    events_at = lines.index("Events:")
    assert lines[events_at + 1].split() == ["Type", "Reason", "Age", "From", "Message"]
    row = lines[events_at + 3]
    assert row.split()[:2] == ["Warning", "FailedScheduling"] and "(x4 over" in row
    assert row.endswith("default-scheduler  0/3 nodes are available")
    assert len(lines) == events_at + 4  # the Service's and the other pod's events are not shown


def test_describe_without_events_and_by_prefix_and_selector(kubelab: Kubelab, namespace: str) -> None:
    kubelab.ok("apply", "-f", "-", "-n", namespace, input=POD)
    out = kubelab.ok("describe", "pods", "we", "-n", namespace).stdout
    assert out.startswith("Name:             web\n")
    assert out.splitlines()[-1].startswith("Events:") and out.splitlines()[-1].endswith("<none>")
    assert kubelab.ok("describe", "po", "-l", "tier=front", "-n", namespace).stdout == out
    result = kubelab.fails("describe", "pod", "nothing", "-n", namespace)
    assert result.stderr == 'Error from server (NotFound): pods "nothing" not found\n'


def test_describe_deployment_and_replicaset(kubelab: Kubelab, namespace: str) -> None:
    kubelab.ok("create", "deployment", "web", "--image=nginx", "--replicas=2", "-n", namespace)
    out = kubelab.ok("describe", "deploy/web", "-n", namespace).stdout
    lines = out.splitlines()
    for key, value in (("Name:", "web"), ("Selector:", "app=web"),
                       ("Replicas:", "2 desired | 0 updated | 0 total | 0 available | 0 unavailable"),
                       ("StrategyType:", "RollingUpdate"), ("  Labels:", "app=web"), ("NewReplicaSet:", "<none>"),
                       ("RollingUpdateStrategy:", "25% max unavailable, 25% max surge")):
        assert field(lines, key, value), f"{key} {value!r} not in:\n{out}"
    assert "Pod Template:" in lines
    kubelab.ok("apply", "-f", "-", "-n", namespace, input=(
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: rs}\nspec:\n  replicas: 3\n"
        "  selector: {matchLabels: {app: rs}}\n  template:\n    metadata: {labels: {app: rs}}\n"
        "    spec: {containers: [{name: c, image: busybox}]}\n"))
    out = kubelab.ok("describe", "rs", "rs", "-n", namespace).stdout
    assert field(out.splitlines(), "Replicas:", "0 current / 3 desired")
    assert field(out.splitlines(), "Pods Status:", "0 Running / 0 Waiting / 0 Succeeded / 0 Failed")


def test_describe_service_namespace_and_node(kubelab: Kubelab, namespace: str) -> None:
    out = kubelab.ok("describe", "svc", "kubernetes", "-n", "default").stdout
    for key, value in (("Type:", "ClusterIP"), ("IP:", "10.96.0.1"), ("Port:", "https  443/TCP"),
                       ("Session Affinity:", "None")):
        assert field(out.splitlines(), key, value), f"{key} {value!r} not in:\n{out}"
    assert any(line.startswith("Endpoints:") and ":" in line.split()[-1] for line in out.splitlines())
    out = kubelab.ok("describe", "ns", namespace).stdout
    assert field(out.splitlines(), "Name:", namespace) and field(out.splitlines(), "Status:", "Active")
    assert "No resource quota." in out
    node = (f"apiVersion: v1\nkind: Node\nmetadata: {{name: {namespace}-node}}\n"
            "status: {capacity: {cpu: '2'}, allocatable: {cpu: '2'},\n"
            "         addresses: [{type: InternalIP, address: 10.1.2.3}]}\n")
    kubelab.ok("apply", "-f", "-", input=node)
    try:
        out = kubelab.ok("describe", "node", f"{namespace}-node").stdout
        assert "Addresses:\n  InternalIP:  10.1.2.3\n" in out
        assert "Non-terminated Pods:" in out and "Allocated resources:" in out
    finally:
        kubelab.ok("delete", "node", f"{namespace}-node")


def test_describe_configmap_and_generic_kinds(kubelab: Kubelab, namespace: str) -> None:
    kubelab.ok("create", "configmap", "cfg", "--from-literal", "mode=fast", "-n", namespace)
    out = kubelab.ok("describe", "cm", "cfg", "-n", namespace).stdout
    assert "\nData\n====\nmode:\n----\nfast\n" in out
    kubelab.ok("apply", "-f", "-", "-n", namespace, input=(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: reader}\n"
        "rules: [{apiGroups: [''], resources: [pods], verbs: [get, list]}]\n"))
    out = kubelab.ok("describe", "role", "reader", "-n", namespace).stdout
    lines = out.splitlines()
    assert lines[:2] == ["Name:         reader", f"Namespace:    {namespace}"]
    assert field(lines, "API Version:", "rbac.authorization.k8s.io/v1") and field(lines, "Kind:", "Role")
    for expected in ("Metadata:", "Rules:", "  Resources:", "    pods", "  Verbs:", "    get", "    list"):
        assert expected in lines, f"{expected!r} not in:\n{out}"
    assert any(line.startswith("  UID:") for line in lines)
    assert lines[-1] == "Events:  <none>"
