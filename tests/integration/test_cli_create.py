"""`kubelab create`: from files (AlreadyExists on a second create) and the
generators - namespace, configmap, secret generic, deployment,
serviceaccount - with their --dry-run=client -o yaml output."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest
import yaml

from tests.integration.cli_support import Kubelab

POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: nginx}\nspec: {containers: [{name: nginx, image: nginx}]}\n"


@pytest.fixture
def kubelab(apiserver) -> Kubelab:  # type: ignore[no-untyped-def]
    return Kubelab(apiserver.target)


def test_create_from_a_file_and_already_exists(kubelab: Kubelab, namespace: str, tmp_path: Path) -> None:
    file = tmp_path / "file.yaml"
    file.write_text(POD)
    assert kubelab.ok("create", "-f", str(file), "-n", namespace).stdout == "pod/nginx created\n"
    result = kubelab.fails("create", "-f", str(file), "-n", namespace)
    assert result.stderr == f'Error from server (AlreadyExists): error when creating "{file}": pods "nginx" ' \
                            f'already exists\n'


def test_save_config_prepares_for_apply(kubelab: Kubelab, namespace: str) -> None:
    kubelab.ok("create", "-f", "-", "--save-config", "-n", namespace, input=POD)
    result = kubelab.ok("apply", "-f", "-", "-n", namespace, input=POD)
    assert result.stdout == "pod/nginx unchanged\n"
    assert result.stderr == ""


def test_create_namespace(kubelab: Kubelab) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    out = kubelab.ok("create", "namespace", name, "--dry-run=client", "-o", "yaml").stdout
    assert yaml.safe_load(out) == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    kubelab.fails("get", "ns", name)
    assert kubelab.ok("create", "namespace", name).stdout == f"namespace/{name} created\n"
    assert kubelab.ok("get", "ns", name, "-o", "jsonpath={.status.phase}").stdout == "Active"
    kubelab.ok("delete", "ns", name, "--wait=false")


def test_create_configmap_from_literals_files_and_directories(kubelab: Kubelab, namespace: str,
                                                             tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.conf").write_text("alpha\n")
    (tmp_path / "dir" / "b.bin").write_bytes(b"\xff\x00\x01")
    (tmp_path / "game.properties").write_text("lives=3\n")
    out = kubelab.ok("create", "configmap", "cfg", "-n", namespace, "--from-literal", "mode=fast",
                     "--from-literal", "url=http://x/?a=b", "--from-file", str(tmp_path / "game.properties"),
                     "--from-file", f"renamed={tmp_path / 'game.properties'}", "--from-file", str(tmp_path / "dir"))
    assert out.stdout == "configmap/cfg created\n"
    cm = yaml.safe_load(kubelab.ok("get", "cm", "cfg", "-n", namespace, "-o", "yaml").stdout)
    assert cm["data"] == {"mode": "fast", "url": "http://x/?a=b", "game.properties": "lives=3\n",
                          "renamed": "lives=3\n", "a.conf": "alpha\n"}
    assert base64.b64decode(cm["binaryData"]["b.bin"]) == b"\xff\x00\x01"
    result = kubelab.fails("create", "configmap", "dup", "-n", namespace, "--from-literal", "a=1",
                           "--from-literal", "a=2")
    assert 'cannot add key "a", another key by that name already exists' in result.stderr


def test_create_secret_generic(kubelab: Kubelab, namespace: str) -> None:
    out = kubelab.ok("create", "secret", "generic", "creds", "-n", namespace, "--from-literal", "user=admin",
                     "--type", "example.com/basic", "--dry-run=client", "-o", "yaml").stdout
    secret = yaml.safe_load(out)
    assert secret["type"] == "example.com/basic"
    assert base64.b64decode(secret["data"]["user"]) == b"admin"
    assert secret["metadata"] == {"name": "creds", "namespace": namespace}
    kubelab.ok("create", "secret", "generic", "creds", "-n", namespace, "--from-literal", "user=admin")
    stored = yaml.safe_load(kubelab.ok("get", "secret", "creds", "-n", namespace, "-o", "yaml").stdout)
    assert stored["type"] == "Opaque" and base64.b64decode(stored["data"]["user"]) == b"admin"


def test_create_deployment_builds_what_kubectl_builds(kubelab: Kubelab, namespace: str) -> None:
    out = kubelab.ok("create", "deployment", "web", "--image=registry.k8s.io/nginx-slim:0.24", "--replicas", "3",
                     "--port", "8080", "--dry-run=client", "-o", "yaml").stdout
    assert yaml.safe_load(out) == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "nginx-slim",
                                                       "image": "registry.k8s.io/nginx-slim:0.24",
                                                       "ports": [{"containerPort": 8080}]}]}}},
    }
    assert kubelab.ok("create", "deployment", "web", "--image", "nginx", "-n", namespace).stdout == \
        "deployment.apps/web created\n"
    live = yaml.safe_load(kubelab.ok("get", "deploy", "web", "-n", namespace, "-o", "yaml").stdout)
    assert live["spec"]["replicas"] == 1
    assert live["spec"]["template"]["spec"]["containers"][0]["name"] == "nginx"


def test_create_serviceaccount(kubelab: Kubelab, namespace: str) -> None:
    assert kubelab.ok("create", "serviceaccount", "robot", "-n", namespace, "-o", "name").stdout == \
        "serviceaccount/robot\n"


def test_create_needs_files_or_a_generator(kubelab: Kubelab) -> None:
    assert "must specify one of -f" in kubelab.fails("create").stderr
