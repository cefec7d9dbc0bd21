"""`kubelab patch` (strategic, merge, JSON; status subresource; no-change
detection; dry runs) and `kubelab scale` (with its preconditions)."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.integration.cli_support import Kubelab

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1.27"}, {name: log, image: busybox}]}
"""


@pytest.fixture
def kubelab(apiserver) -> Kubelab:  # type: ignore[no-untyped-def]
    return Kubelab(apiserver.target)


@pytest.fixture
def deploy(kubelab: Kubelab, namespace: str) -> str:
    kubelab.ok("apply", "-f", "-", "-n", namespace, input=DEPLOY)
    return namespace


def live(kubelab: Kubelab, namespace: str) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(kubelab.ok("get", "deploy", "web", "-n", namespace, "-o", "yaml").stdout)


def images(kubelab: Kubelab, namespace: str) -> list[str]:
    return [c["image"] for c in live(kubelab, namespace)["spec"]["template"]["spec"]["containers"]]


def test_strategic_merge_patches_a_container_by_name(kubelab: Kubelab, deploy: str) -> None:
    patch = '{"spec":{"template":{"spec":{"containers":[{"name":"log","image":"busybox:1.36"}]}}}}'
    assert kubelab.ok("patch", "deploy", "web", "-p", patch, "-n", deploy).stdout == \
        "deployment.apps/web patched\n"
    assert images(kubelab, deploy) == ["nginx:1.27", "busybox:1.36"]
    assert kubelab.ok("patch", "deploy/web", "-p", patch, "-n", deploy).stdout == \
        "deployment.apps/web patched (no change)\n"


def test_merge_patch_replaces_lists(kubelab: Kubelab, deploy: str) -> None:
    patch = "spec: {template: {spec: {containers: [{name: only, image: alpine}]}}}"  # YAML is accepted too
    kubelab.ok("patch", "deploy", "web", "--type", "merge", "-p", patch, "-n", deploy)
    assert images(kubelab, deploy) == ["alpine"]


def test_json_patch(kubelab: Kubelab, deploy: str) -> None:
    ops = [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:1.28"},
           {"op": "add", "path": "/metadata/labels", "value": {"patched": "json"}}]
    kubelab.ok("patch", "deploy", "web", "--type=json", "-p", json.dumps(ops), "-n", deploy)
    assert images(kubelab, deploy)[0] == "nginx:1.28"
    assert live(kubelab, deploy)["metadata"]["labels"] == {"patched": "json"}
    result = kubelab.fails("patch", "deploy", "web", "--type=json", "-n", deploy,
                           "-p", '[{"op":"remove","path":"/spec/nothing"}]')
    assert result.stderr.startswith("Error from server (BadRequest):")


def test_status_subresource(kubelab: Kubelab, deploy: str) -> None:
    kubelab.ok("patch", "deploy", "web", "--subresource", "status", "--type", "merge", "-n", deploy,
               "-p", '{"status":{"replicas":2,"readyReplicas":1}}')
    assert live(kubelab, deploy)["status"]["readyReplicas"] == 1
    kubelab.ok("patch", "deploy", "web", "--type", "merge", "-n", deploy, "-p", '{"status":{"readyReplicas":2}}')
    assert live(kubelab, deploy)["status"]["readyReplicas"] == 1  # the main resource does not write status


def test_bad_patches(kubelab: Kubelab, deploy: str) -> None:
    result = kubelab.fails("patch", "deploy", "web", "-n", deploy, "-p", '{"spec":{"replicaz":3}}')
    assert 'unknown field "spec.replicaz"' in result.stderr
    assert "unable to parse" in kubelab.fails("patch", "deploy", "web", "-n", deploy, "-p", "{bad: [").stderr
    assert "must specify exactly one of --patch" in kubelab.fails("patch", "deploy", "web", "-n", deploy).stderr


def test_patch_dry_runs(kubelab: Kubelab, deploy: str) -> None:
    out = kubelab.ok("patch", "deploy", "web", "-n", deploy, "--dry-run=client", "-o", "json",
                     "-p", '{"spec":{"replicas":9}}').stdout
    assert json.loads(out)["spec"]["replicas"] == 9
    assert kubelab.ok("patch", "deploy", "web", "-n", deploy, "--dry-run=server",
                      "-p", '{"spec":{"replicas":9}}').stdout == "deployment.apps/web patched (server dry run)\n"
    assert live(kubelab, deploy)["spec"]["replicas"] == 2


def test_scale(kubelab: Kubelab, deploy: str) -> None:
    assert kubelab.ok("scale", "deploy/web", "--replicas=4", "-n", deploy).stdout == "deployment.apps/web scaled\n"
    assert live(kubelab, deploy)["spec"]["replicas"] == 4
    assert kubelab.fails("scale", "deployment", "web", "--replicas=1", "--current-replicas=2",
                         "-n", deploy).stderr == "error: Expected replicas to be 2, was 4\n"
    kubelab.ok("scale", "deploy", "web", "--replicas=1", "--current-replicas=4", "-n", deploy)
    version = live(kubelab, deploy)["metadata"]["resourceVersion"]
    kubelab.ok("label", "deploy", "web", "moved=on", "-n", deploy)
    result = kubelab.fails("scale", "deploy/web", "--replicas=3", "--resource-version", version, "-n", deploy)
    assert result.stderr.startswith(f"error: Expected resource version to be {version}, was ")
    assert live(kubelab, deploy)["spec"]["replicas"] == 1


def test_scale_other_workloads_and_refusals(kubelab: Kubelab, deploy: str) -> None:
    kubelab.ok("apply", "-f", "-", "-n", deploy, input=(
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  serviceName: db\n"
        "  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n"
        "    spec: {containers: [{name: c, image: postgres}]}\n"))
    assert kubelab.ok("scale", "sts", "db", "--replicas", "3", "-n", deploy).stdout == \
        "statefulset.apps/db scaled\n"
    assert kubelab.ok("get", "sts", "db", "-n", deploy, "-o", "jsonpath={.spec.replicas}").stdout == "3"
    assert "cannot be scaled" in kubelab.fails("scale", "cm/x", "--replicas=1", "-n", deploy).stderr
    assert "--replicas=COUNT flag is required" in kubelab.fails("scale", "deploy/web", "-n", deploy).stderr
