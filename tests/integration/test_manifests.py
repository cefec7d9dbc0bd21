"""Every manifest in the shared Kubernetes examples, through the CLI.

Each file is applied with `kubelab apply -f FILE` and read back with
`kubelab get -f FILE -o yaml`: what comes back must hold everything the
file says (after the codec's normalisation, so "0.5" CPU is "500m"), plus
whatever the server defaults. A second apply must then say "unchanged":
the three-way patch must not mistake the server's defaults for changes.

The table below names every file, whether it should apply, and why. The
two that should not fail with the error Kubernetes gives for them, and
nothing of theirs is stored.

Namespaces: manifests without one go into the test's own fresh namespace
(so the three `nginx-deployment`s and two `nginx` pods never meet); the
ones naming `default` or `kube-system` are applied there and deleted
afterwards, as are cluster-scoped objects. pods/qos/qos-pod.yaml names
`qos-example`, which the documentation's tutorial creates first; this
test creates it first too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from api import decode_manifest, encode_manifest, load_documents
from tests.integration.cli_support import Kubelab


@dataclass(frozen=True)
class Case:
    path: str
    applies: bool
    why: str
    error: str = ""  # for a file that must fail: the error Kubernetes would give
    namespace: str = ""  # the namespace the file itself names, if any

    def __str__(self) -> str:
        return self.path


CASES = [
    Case("access/simple-clusterrole.yaml", True,
         "cluster-scoped ClusterRole in flow-style YAML with comments inside the braces"),
    Case("access/simple-role.yaml", True, "Role in flow-style YAML; names namespace default", namespace="default"),
    Case("access/simple-rolebinding-with-role.yaml", True,
         "RoleBinding to a User; names namespace default; a roleRef need not exist yet", namespace="default"),
    Case("admin/dns/busybox.yaml", True, "Pod with a command; names namespace default", namespace="default"),
    Case("admin/resource/cpu-defaults.yaml", True,
         "LimitRange with bare numbers as quantities (1 and 0.5, which is 500m)"),
    Case("admin/resource/quota-mem-cpu.yaml", True, "ResourceQuota whose keys contain dots (requests.cpu)"),
    Case("admin/sched/pod1.yaml", True, "Pod for the default scheduler"),
    Case("admin/sched/pod3.yaml", True, "Pod naming a second scheduler (schedulerName only; none needs to run)"),
    Case("application/deployment-update.yaml", True, "Deployment selecting app.kubernetes.io/name"),
    Case("application/deployment.yaml", True, "Deployment; comments after values"),
    Case("application/guestbook/redis-leader-deployment.yaml", True,
         "Deployment with resource requests; a leading comment line"),
    Case("application/job/cronjob.yaml", False,
         "batch/v1beta1 CronJob was removed in Kubernetes 1.25; only batch/v1 is served",
         error='no matches for kind "CronJob" in version "batch/v1beta1"'),
    Case("application/nginx-app.yaml", True, "two flow-style documents: a LoadBalancer Service and a Deployment"),
    Case("controllers/daemonset.yaml", True, "DaemonSet with hostPath volumes; names namespace kube-system",
         namespace="kube-system"),
    Case("controllers/fluentd-daemonset.yaml", True,
         "the same DaemonSet name as daemonset.yaml with another selector and tolerations with operator Exists; "
         "names namespace kube-system", namespace="kube-system"),
    Case("controllers/frontend.yaml", True, "ReplicaSet whose labels differ from its selector"),
    Case("controllers/job.yaml", True, "Job with an inline command list and two trailing blank lines"),
    Case("controllers/nginx-deployment.yaml", True, "Deployment, the controllers page's version"),
    Case("controllers/statefulset.yaml", True,
         "two documents: a headless Service (clusterIP None) and a StatefulSet with volumeClaimTemplates"),
    Case("pods/config/example-redis-config.yaml", True,
         "ConfigMap whose value is a multi-line double-quoted scalar with backslash continuations"),
    Case("pods/init-containers.yaml", True, "Pod with an init container sharing an emptyDir"),
    Case("pods/inject/dapi-volume.yaml", True, "Pod with labels, annotations and a downwardAPI volume"),
    Case("pods/lifecycle-events.yaml", True, "Pod with postStart and preStop exec hooks"),
    Case("pods/pod-configmap-volume.yaml", True, "Pod mounting a ConfigMap that does not exist yet"),
    Case("pods/pod-nginx.yaml", True, "Pod with a nodeSelector"),
    Case("pods/pod-with-node-affinity.yaml", False,
         "as stored, requiredDuringSchedulingIgnoredDuringExecution is a list of preference/weight items "
         "where a NodeSelector object (nodeSelectorTerms) belongs",
         error="Pod in version \"v1\" cannot be handled as a Pod: json: cannot unmarshal array into Go struct field "
               "NodeAffinity.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution of type "
               "v1.NodeSelector"),
    Case("pods/pod-with-toleration.yaml", True, "Pod with a toleration (operator Exists)"),
    Case("pods/probe/exec-liveness.yaml", True, "Pod with an exec liveness probe"),
    Case("pods/probe/http-liveness.yaml", True, "Pod with an httpGet liveness probe and a custom header"),
    Case("pods/qos/qos-pod.yaml", True,
         "Guaranteed-QoS pod; names namespace qos-example, created first as in the docs' tutorial",
         namespace="qos-example"),
    Case("pods/simple-pod.yaml", True, "the smallest Pod"),
    Case("pods/storage/pv-claim.yaml", True, "PersistentVolumeClaim with a storageClassName"),
    Case("pods/storage/pv-volume.yaml", True, "cluster-scoped PersistentVolume with a hostPath"),
    Case("service/access/backend-deployment.yaml", True,
         "Deployment in a document ending with the `...` marker and no trailing newline"),
    Case("service/networking/dual-stack-default-svc.yaml", True, "Service without type: defaults to ClusterIP"),
    Case("service/networking/nginx-svc.yaml", True, "Service with an explicit protocol"),
    Case("service/networking/run-my-nginx.yaml", True, "Deployment in flow style"),
]


@pytest.fixture
def kubelab(apiserver) -> Kubelab:  # type: ignore[no-untyped-def]
    return Kubelab(apiserver.target)


def test_the_table_names_every_file(manifests_dir: Path) -> None:
    on_disk = sorted(str(p.relative_to(manifests_dir)) for p in manifests_dir.rglob("*.yaml"))
    assert len(on_disk) == 37
    assert sorted(c.path for c in CASES) == on_disk


def assert_contains(expected: Any, actual: Any, where: str = "") -> None:
    """`actual` holds everything in `expected`: objects key by key, lists
    item by item, in order. The server may add keys, and may append list
    items (admission appends the not-ready/unreachable tolerations)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} is missing from what the server returned"
            assert_contains(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) >= len(expected), f"{where}: {expected!r} != {actual!r}"
        for i, (want, have) in enumerate(zip(expected, actual[:len(expected)], strict=True)):
            assert_contains(want, have, f"{where}[{i}]")
    else:
        assert expected == actual, f"{where}: {expected!r} != {actual!r}"


def _kind_name(doc: dict[str, Any]) -> str:
    group = doc["apiVersion"].rpartition("/")[0]
    return f"{doc['kind'].lower()}.{group}" if group else doc["kind"].lower()


@pytest.mark.parametrize("case", CASES, ids=str)
def test_manifest(case: Case, kubelab: Kubelab, namespace: str, manifests_dir: Path) -> None:
    path = manifests_dir / case.path
    ns = case.namespace or namespace
    docs = load_documents(path.read_text(), str(path))
    if case.namespace == "qos-example":  # the tutorial's first step
        kubelab("create", "namespace", "qos-example")
    if not case.applies:
        result = kubelab.fails("apply", "-f", str(path), "-n", ns)
        assert case.error in result.stderr
        assert result.stdout == ""
        kind = docs[0]["kind"].lower() + "s"
        assert kubelab.fails("get", kind, docs[0]["metadata"]["name"], "-n", ns).stderr.startswith(
            "Error from server (NotFound)") or kind == "cronjobs"
        assert kubelab.ok("get", "cronjobs,pods", "-n", ns).stderr.startswith("No resources found")
        return
    try:
        result = kubelab.ok("apply", "-f", str(path), "-n", ns)
        assert result.stdout.splitlines() == [f"{_kind_name(d)}/{d['metadata']['name']} created" for d in docs]
        returned = yaml.safe_load(kubelab.ok("get", "-f", str(path), "-n", ns, "-o", "yaml").stdout)
        items = [returned] if len(docs) == 1 else returned["items"]
        assert len(items) == len(docs)
        for doc, live in zip(docs, items, strict=True):
            assert_contains(encode_manifest(decode_manifest(doc)), live, doc["kind"])
            assert live["metadata"]["uid"] and live["metadata"]["resourceVersion"]
        again = kubelab.ok("apply", "-f", str(path), "-n", ns)
        assert again.stdout.splitlines() == [f"{_kind_name(d)}/{d['metadata']['name']} unchanged" for d in docs]
    finally:
        kubelab("delete", "-f", str(path), "-n", ns, "--ignore-not-found", "--timeout=60s")
