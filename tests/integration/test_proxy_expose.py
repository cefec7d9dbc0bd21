"""`kubelab expose` (deployment, replica set and pod; --port, --target-port,
--type NodePort, --name; the port found from the pod template; the errors
kubectl gives) and `kubelab get svc,ep,endpointslices` with kubectl's
columns."""

from __future__ import annotations

import pytest
import yaml

from tests.integration.cli_support import Kubelab

pytestmark = pytest.mark.integration

WORKLOADS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {tier: front}}
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1.27", ports: [{containerPort: 8080}]}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: expr}
spec:
  replicas: 0
  selector: {matchExpressions: [{key: app, operator: In, values: [expr]}]}
  template:
    metadata: {labels: {app: expr}}
    spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db, labels: {app: db, role: primary}}
spec: {containers: [{name: db, image: postgres, ports: [{containerPort: 5432, protocol: TCP}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: noport}
spec:
  replicas: 0
  selector: {matchLabels: {app: noport}}
  template:
    metadata: {labels: {app: noport}}
    spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Pod
metadata: {name: bare}
spec: {containers: [{name: c, image: busybox}]}
"""


@pytest.fixture
def kubelab(apiserver) -> Kubelab:  # type: ignore[no-untyped-def]
    return Kubelab(apiserver.target)


@pytest.fixture
def objects(kubelab: Kubelab, namespace: str) -> str:
    kubelab.ok("apply", "-f", "-", "-n", namespace, input=WORKLOADS)
    return namespace


def service(kubelab: Kubelab, ns: str, name: str) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(kubelab.ok("get", "svc", name, "-n", ns, "-o", "yaml").stdout)


def test_expose_a_deployment(kubelab: Kubelab, objects: str) -> None:
    out = kubelab.ok("expose", "deployment", "web", "--port", "80", "--target-port", "8080", "-n", objects).stdout
    assert out.strip() == "service/web exposed"
    svc = service(kubelab, objects, "web")
    assert svc["spec"]["selector"] == {"app": "web"} and svc["metadata"]["labels"] == {"tier": "front"}
    assert svc["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 8080}]
    assert svc["spec"]["type"] == "ClusterIP" and svc["spec"]["clusterIP"]
    kubelab.fails("expose", "deployment", "web", "--port", "80", "-n", objects)  # AlreadyExists


def test_expose_a_pod_as_node_port_with_its_container_port(kubelab: Kubelab, objects: str) -> None:
    kubelab.ok("expose", "pod/db", "--type", "NodePort", "--name", "db-external", "-n", objects)
    svc = service(kubelab, objects, "db-external")
    assert svc["spec"]["selector"] == {"app": "db", "role": "primary"}
    (port,) = svc["spec"]["ports"]
    assert port["port"] == 5432 and port["targetPort"] == 5432 and 30000 <= port["nodePort"] <= 32767


def test_expose_refuses_what_kubectl_refuses(kubelab: Kubelab, objects: str) -> None:
    out = kubelab.fails("expose", "replicaset", "expr", "--port", "80", "-n", objects).output
    assert "replicasets.apps/expr's spec.selector" in out and "matchLabels" in out
    assert "pods/bare has no labels" in kubelab.fails("expose", "pod", "bare", "--port", "80", "-n", objects).output
    out = kubelab.fails("expose", "deployment", "nope", "--port", "80", "-n", objects).output
    assert "NotFound" in out
    out = kubelab.fails("expose", "configmap", "x", "--port", "80", "-n", objects).output
    assert "cannot expose a ConfigMap" in out
    out = kubelab.fails("expose", "deployment", "noport", "-n", objects).output
    assert "couldn't find port via --port flag or introspection: deployments.apps/noport" in out
    out = kubelab.fails("expose", "deployment", "noport", "--port", "70000", "-n", objects).output
    assert "--port: Invalid value: 70000: must be between 1 and 65535, inclusive" in out
    dry = kubelab.ok("expose", "deploy", "web", "--port", "81", "--dry-run=client", "-o", "yaml", "-n", objects)
    assert yaml.safe_load(dry.stdout)["spec"]["ports"][0]["port"] == 81
    kubelab.fails("get", "svc", "web", "-n", objects)  # a client dry run stores nothing


def test_get_services_endpoints_and_slices_with_kubectls_columns(kubelab: Kubelab, objects: str) -> None:
    kubelab.ok("expose", "deployment", "web", "--port", "80", "--target-port", "8080", "-n", objects)
    kubelab.ok("apply", "-n", objects, "-f", "-", input="""
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.244.1.2], conditions: {ready: true}}]
ports: [{name: "", port: 8080, protocol: TCP}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: web}
subsets: [{addresses: [{ip: 10.244.1.2}], ports: [{port: 8080}]}]
""")
    out = kubelab.ok("get", "svc,ep,endpointslices", "-n", objects).stdout
    lines = [line.split() for line in out.splitlines() if line.strip()]
    headers = [line for line in lines if line[0] == "NAME"]
    assert headers == [["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
                       ["NAME", "ENDPOINTS", "AGE"],
                       ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]]
    rows = {line[0]: line for line in lines if line[0] != "NAME"}
    assert rows["service/web"][1:5] == ["ClusterIP", rows["service/web"][2], "<none>", "80/TCP"]
    assert rows["endpoints/web"][1] == "10.244.1.2:8080"
    assert rows["endpointslice.discovery.k8s.io/web-abc"][1:4] == ["IPv4", "8080", "10.244.1.2"]
