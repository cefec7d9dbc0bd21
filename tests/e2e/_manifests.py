"""The workloads the flows apply, as manifests a user would write.

The backend is the lab's test server (deploy/images: GET / answers the
pod's hostname, /healthz is 500 while /tmp/unready exists) with an HTTP
readiness probe every second, so a pod is in a Service's endpoints exactly
while its probe passes. `kubelab/testserver:1.0` and
`registry.k8s.io/e2e-test-images/agnhost:2.40` are the same server under
two names (the latter with agnhost's entrypoint), which gives a rolling
update a real image change; both take `netexec --http-port=8080`.
"""

from __future__ import annotations

from typing import Any

TESTSERVER = "kubelab/testserver:1.0"
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.40"
PORT = 8080

Manifest = dict[str, Any]


def backend_pod_spec(image: str = TESTSERVER, *, pre_stop_seconds: int = 0, grace: int = 5,
                     tolerate_node_loss_seconds: int | None = None) -> Manifest:
    container: Manifest = {
        "name": "web", "image": image, "args": ["netexec", f"--http-port={PORT}"],
        "ports": [{"containerPort": PORT, "name": "http"}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1,
                           "failureThreshold": 1},
    }
    if pre_stop_seconds:
        # Keep serving while every node's proxy drops the endpoint: the
        # pod gets SIGTERM only after the hook, as Kubernetes' docs advise.
        container["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", str(pre_stop_seconds)]}}}
    spec: Manifest = {"terminationGracePeriodSeconds": grace, "containers": [container]}
    if tolerate_node_loss_seconds is not None:
        spec["tolerations"] = [
            {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": tolerate_node_loss_seconds}
            for key in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")]
    return spec


def deployment(name: str, replicas: int = 3, *, spread: str = "DoNotSchedule", **pod: Any) -> Manifest:
    """`replicas` test servers, one per node while nodes suffice
    (`spread`: DoNotSchedule insists, ScheduleAnyway prefers)."""
    labels = {"app": name}
    spec = backend_pod_spec(**pod)
    spec["topologySpreadConstraints"] = [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                          "whenUnsatisfiable": spread, "labelSelector": {"matchLabels": labels}}]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": spec}}}


def service(name: str, *, type: str = "ClusterIP", headless: bool = False, port: int = 80) -> Manifest:
    spec: Manifest = {"selector": {"app": name},
                      "ports": [{"name": "http", "port": PORT if headless else port, "targetPort": "http"}]}
    if headless:
        spec["clusterIP"] = "None"
    else:
        spec["type"] = type
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def statefulset(name: str, replicas: int = 3) -> Manifest:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"serviceName": name, "replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": backend_pod_spec()}}}
