"""`kubelab apply` end to end: create, configure, unchanged; the
last-applied annotation; removals reaching the object while others'
changes survive; directories, stdin and multi-document files; namespace
rules; dry runs; output formats; one failure not stopping the rest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.integration.cli_support import Kubelab

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: "nginx:1.27", resources: {requests: {cpu: "0.5"}}}
      - {name: log, image: busybox}
"""


@pytest.fixture
def kubelab(apiserver) -> Kubelab:  # type: ignore[no-untyped-def]
    return Kubelab(apiserver.target)


def get(kubelab: Kubelab, namespace: str, what: str) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(kubelab.ok("get", what, "-n", namespace, "-o", "yaml").stdout)


def test_create_then_unchanged_then_configured(kubelab: Kubelab, namespace: str) -> None:
    assert kubelab.ok("apply", "-f", "-", "-n", namespace, input=DEPLOY).stdout == "deployment.apps/web created\n"
    assert kubelab.ok("apply", "-f", "-", "-n", namespace, input=DEPLOY).stdout == \
        "deployment.apps/web unchanged\n"
    changed = DEPLOY.replace("nginx:1.27", "nginx:1.28")
    assert kubelab.ok("apply", "-f", "-", "-n", namespace, input=changed).stdout == \
        "deployment.apps/web configured\n"
    live = get(kubelab, namespace, "deploy/web")
    assert [c["image"] for c in live["spec"]["template"]["spec"]["containers"]] == ["nginx:1.28", "busybox"]
    assert live["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "500m"
    applied = json.loads(live["metadata"]["annotations"][LAST_APPLIED])
    assert applied["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert applied["metadata"] == {"labels": {"app": "web", "tier": "front"}, "name": "web", "namespace": namespace}


def test_removals_apply_and_others_changes_survive(kubelab: Kubelab, namespace: str) -> None:
    kubelab.ok("apply", "-f", "-", "-n", namespace, input=DEPLOY)
    kubelab.ok("label", "deploy", "web", "owner=ops", "-n", namespace)
    kubelab.ok("patch", "deploy", "web", "-n", namespace, "-p", '{"spec":{"minReadySeconds":7}}')
    trimmed = DEPLOY.replace(", tier: front", "").replace("      - {name: log, image: busybox}\n", "") \
        .replace("  replicas: 2\n", "")
    assert kubelab.ok("apply", "-f", "-", "-n", namespace, input=trimmed).stdout == \
        "deployment.apps/web configured\n"
    live = get(kubelab, namespace, "deploy/web")
    assert live["metadata"]["labels"] == {"app": "web", "owner": "ops"}
    assert [c["name"] for c in live["spec"]["template"]["spec"]["containers"]] == ["web"]
    assert "replicas" not in live["spec"] or live["spec"]["replicas"] != 2
    assert live["spec"]["minReadySeconds"] == 7


def test_directories_recursive_and_multi_document(kubelab: Kubelab, namespace: str, tmp_path: Path) -> None:
    (tmp_path / "nested").mkdir()
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\ndata: {a: b}\n"
                                      "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: two}\n")
    (tmp_path / "nested" / "sa.json").write_text('{"apiVersion": "v1", "kind": "ServiceAccount", '
                                                 '"metadata": {"name": "robot"}}')
    assert kubelab.ok("apply", "-f", str(tmp_path), "-n", namespace).stdout == \
        "configmap/one created\nconfigmap/two created\n"
    out = kubelab.ok("apply", "-f", str(tmp_path), "-R", "-n", namespace).stdout
    assert out == "configmap/one unchanged\nconfigmap/two unchanged\nserviceaccount/robot created\n"


def test_object_without_annotation_gets_a_warning_and_the_annotation(kubelab: Kubelab, namespace: str) -> None:
    kubelab.ok("create", "configmap", "plain", "--from-literal", "a=1", "-n", namespace)
    result = kubelab.ok("apply", "-f", "-", "-n", namespace,
                        input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\ndata: {a: '2'}\n")
    assert result.stdout == "configmap/plain configured\n"
    assert "is missing the kubectl.kubernetes.io/last-applied-configuration annotation" in result.stderr
    live = get(kubelab, namespace, "cm/plain")
    assert live["data"] == {"a": "2"} and LAST_APPLIED in live["metadata"]["annotations"]


def test_namespace_rules(kubelab: Kubelab, namespace: str) -> None:
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: kube-system}\n"
    result = kubelab.fails("apply", "-f", "-", "-n", namespace, input=doc)
    assert result.stderr == (f'error: the namespace from the provided object "kube-system" does not match the '
                             f'namespace "{namespace}". You must pass \'--namespace=kube-system\' to perform this '
                             f'operation.\n')
    own = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c, namespace: {namespace}}}\n"
    assert kubelab.ok("apply", "-f", "-", input=own).stdout == "configmap/c created\n"
    assert get(kubelab, namespace, "cm/c")["metadata"]["namespace"] == namespace


def test_dry_runs_store_nothing(kubelab: Kubelab, namespace: str) -> None:
    assert kubelab.ok("apply", "-f", "-", "-n", namespace, "--dry-run=client", input=DEPLOY).stdout == \
        "deployment.apps/web created (dry run)\n"
    out = kubelab.ok("apply", "-f", "-", "-n", namespace, "--dry-run=server", "-o", "yaml", input=DEPLOY).stdout
    assert yaml.safe_load(out)["metadata"]["uid"]  # the server filled it in, then stored nothing
    kubelab.fails("get", "deploy", "web", "-n", namespace)
    kubelab.ok("apply", "-f", "-", "-n", namespace, input=DEPLOY)
    changed = DEPLOY.replace("replicas: 2", "replicas: 5")
    assert kubelab.ok("apply", "-f", "-", "-n", namespace, "--dry-run=server", input=changed).stdout == \
        "deployment.apps/web configured (server dry run)\n"
    out = kubelab.ok("apply", "-f", "-", "-n", namespace, "--dry-run=client", "-o", "json", input=changed).stdout
    assert json.loads(out)["spec"]["replicas"] == 5
    assert get(kubelab, namespace, "deploy/web")["spec"]["replicas"] == 2


def test_output_formats(kubelab: Kubelab, namespace: str) -> None:
    assert kubelab.ok("apply", "-f", "-", "-n", namespace, "-o", "name", input=DEPLOY).stdout == \
        "deployment.apps/web\n"
    out = yaml.safe_load(kubelab.ok("apply", "-f", "-", "-n", namespace, "-o", "yaml", input=DEPLOY).stdout)
    assert out["kind"] == "Deployment" and out["metadata"]["name"] == "web"


def test_one_failure_does_not_stop_the_others(kubelab: Kubelab, namespace: str) -> None:
    docs = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: first}\n---\n"
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: broken}\ndata: {a: 1}\n---\n"
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: last}\n")
    result = kubelab.fails("apply", "-f", "-", "-n", namespace, input=docs)
    assert result.stdout == "configmap/first created\nconfigmap/last created\n"
    assert result.stderr == ('Error from server (BadRequest): error when creating "-": ConfigMap in version "v1" '
                             'cannot be handled as a ConfigMap: json: cannot unmarshal number 1 into Go struct field '
                             'ConfigMap.data of type string\n')
    kubelab.fails("get", "cm", "broken", "-n", namespace)


def test_apply_needs_files(kubelab: Kubelab) -> None:
    result = kubelab("apply")
    assert result.exit_code == 1
    assert "error: Missing option '-f' / '--filename'." in result.stderr
