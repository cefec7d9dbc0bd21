"""`kubelab get` end to end: kinds by any name, several kinds, TYPE/NAME,
-f, all, selectors, every printer, sorting, labels columns, the empty and
not-found messages, and watching."""

from __future__ import annotations

import json
import select
import subprocess
import time

import pytest
import yaml

from tests.integration.cli_support import SCRIPT, Kubelab

PODS = """
apiVersion: v1
kind: Pod
metadata: {name: web-1, labels: {app: web, tier: front}}
spec: {containers: [{name: nginx, image: "nginx:1.27"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, labels: {app: db}}
spec: {containers: [{name: pg, image: "postgres:16"}], restartPolicy: Never}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80}]}
"""


@pytest.fixture
def kubelab(apiserver) -> Kubelab:  # type: ignore[no-untyped-def]
    return Kubelab(apiserver.target)


@pytest.fixture
def objects(kubelab: Kubelab, namespace: str) -> str:
    kubelab.ok("-n", namespace, "apply", "-f", "-", input=PODS)
    return namespace


@pytest.mark.parametrize("typed", ["po", "pod", "pods", "pods.", "Pod"])
def test_kinds_by_any_name(kubelab: Kubelab, objects: str, typed: str) -> None:
    out = kubelab.ok("get", typed.rstrip("."), "-n", objects).stdout
    assert out.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["db-0", "web-1"]


def test_table_columns_are_aligned_by_three_spaces(kubelab: Kubelab, objects: str) -> None:
    lines = kubelab.ok("get", "pods", "-n", objects).stdout.splitlines()
    assert lines[0].startswith("NAME    READY   STATUS    RESTARTS   AGE")
    assert lines[1].startswith("db-0    0/1     Pending   0          ")
    for line in lines:
        assert line.index(line.split()[1]) == lines[0].index("READY")


def test_several_kinds_get_prefixed_names_and_separate_tables(kubelab: Kubelab, objects: str) -> None:
    out = kubelab.ok("get", "po,svc", "-n", objects).stdout
    pods, services = out.split("\n\n")
    assert [line.split()[0] for line in pods.splitlines()] == ["NAME", "pod/db-0", "pod/web-1"]
    assert services.splitlines()[0].split()[:3] == ["NAME", "TYPE", "CLUSTER-IP"]
    assert services.splitlines()[1].startswith("service/web ")


def test_type_slash_name_and_type_names(kubelab: Kubelab, objects: str) -> None:
    out = kubelab.ok("get", "po/web-1", "svc/web", "-n", objects).stdout
    assert "pod/web-1" in out and "service/web" in out and "db-0" not in out
    out = kubelab.ok("get", "pods", "web-1", "db-0", "-n", objects, "-o", "name").stdout
    assert out == "pod/web-1\npod/db-0\n"


def test_get_all(kubelab: Kubelab, objects: str) -> None:
    out = kubelab.ok("get", "all", "-n", objects).stdout
    assert "pod/web-1" in out and "service/web" in out


def test_all_namespaces_adds_a_namespace_column(kubelab: Kubelab, objects: str) -> None:
    lines = kubelab.ok("get", "pods", "-A").stdout.splitlines()
    assert lines[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert any(line.split()[:2] == [objects, "web-1"] for line in lines)


def test_selectors(kubelab: Kubelab, objects: str) -> None:
    assert kubelab.ok("get", "po", "-n", objects, "-l", "app=web", "-o", "name").stdout == "pod/web-1\n"
    assert kubelab.ok("get", "po", "-n", objects, "-l", "app in (web,db),tier!=front",
                      "-o", "name").stdout == "pod/db-0\n"
    assert kubelab.ok("get", "po", "-n", objects, "--field-selector", "metadata.name=db-0",
                      "-o", "name").stdout == "pod/db-0\n"
    assert kubelab.ok("get", "po", "-n", objects, "--field-selector", "spec.restartPolicy=Never",
                      "-o", "name").stdout == "pod/db-0\n"


def test_wide_adds_the_priority_one_columns(kubelab: Kubelab, objects: str) -> None:
    header = kubelab.ok("get", "po", "-n", objects, "-o", "wide").stdout.splitlines()[0]
    assert "IP" in header.split() and "NODE" in header.split() and "NOMINATED NODE" in header
    assert "NODE" not in kubelab.ok("get", "po", "-n", objects).stdout.splitlines()[0].split()


def test_labels_columns_and_no_headers(kubelab: Kubelab, objects: str) -> None:
    lines = kubelab.ok("get", "po", "-n", objects, "--show-labels", "-L", "tier").stdout.splitlines()
    assert lines[0].split()[-2:] == ["TIER", "LABELS"]
    assert lines[2].split()[-2:] == ["front", "app=web,tier=front"]
    out = kubelab.ok("get", "po", "-n", objects, "--no-headers").stdout
    assert out.splitlines()[0].split()[0] == "db-0"


def test_yaml_of_one_named_object_and_of_a_list(kubelab: Kubelab, objects: str) -> None:
    one = yaml.safe_load(kubelab.ok("get", "po", "web-1", "-n", objects, "-o", "yaml").stdout)
    assert one["kind"] == "Pod" and one["metadata"]["name"] == "web-1"
    assert one["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"  # defaulted by the server
    listed = yaml.safe_load(kubelab.ok("get", "po", "-l", "app=web", "-n", objects, "-o", "yaml").stdout)
    assert listed["kind"] == "List" and listed["apiVersion"] == "v1"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["web-1"]


def test_json_is_indented_by_four(kubelab: Kubelab, objects: str) -> None:
    out = kubelab.ok("get", "svc/web", "-n", objects, "-o", "json").stdout
    assert out.startswith('{\n    "apiVersion": "v1",\n    "kind": "Service",')
    assert json.loads(out)["spec"]["ports"][0]["targetPort"] == 80


def test_jsonpath_templates(kubelab: Kubelab, objects: str) -> None:
    out = kubelab.ok("get", "po", "-n", objects, "-o",
                     'jsonpath={range .items[*]}{.metadata.name}{"\\t"}{.spec.containers[0].image}{"\\n"}{end}').stdout
    assert out == "db-0\tpostgres:16\nweb-1\tnginx:1.27\n"
    assert kubelab.ok("get", "po", "web-1", "-n", objects, "-o",
                      "jsonpath={.metadata.labels.tier}").stdout == "front"
    out = kubelab.ok("get", "po", "-n", objects, "-o", "jsonpath-as-json={.items[*].metadata.name}").stdout
    assert json.loads(out) == ["db-0", "web-1"]


def test_custom_columns_and_sort_by(kubelab: Kubelab, objects: str) -> None:
    out = kubelab.ok("get", "po", "-n", objects, "-o",
                     "custom-columns=NAME:.metadata.name,IMAGE:.spec.containers[*].image,NODE:.spec.nodeName",
                     "--sort-by", ".spec.containers[0].image").stdout
    assert out.splitlines() == ["NAME    IMAGE         NODE", "web-1   nginx:1.27    <none>",
                                "db-0    postgres:16   <none>"]


def test_get_from_a_file(kubelab: Kubelab, objects: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    file = tmp_path / "pods.yaml"
    file.write_text(PODS)
    out = kubelab.ok("get", "-f", str(file), "-n", objects).stdout
    assert "pod/web-1" in out and "pod/db-0" in out and "service/web" in out


def test_empty_results_and_missing_objects(kubelab: Kubelab, namespace: str) -> None:
    result = kubelab.ok("get", "deploy", "-n", namespace)
    assert result.stdout == ""
    assert result.stderr == f"No resources found in {namespace} namespace.\n"
    result = kubelab.fails("get", "po", "ghost", "-n", namespace)
    assert result.stderr == 'Error from server (NotFound): pods "ghost" not found\n'
    assert kubelab.ok("get", "po", "ghost", "-n", namespace, "--ignore-not-found").output == ""
    result = kubelab.fails("get", "widgets")
    assert result.stderr == 'error: the server doesn\'t have a resource type "widgets"\n'
    listed = json.loads(kubelab.ok("get", "cm", "-n", namespace, "-o", "json").stdout)
    assert listed["items"] == []


def test_watch_prints_a_row_per_event(kubelab: Kubelab, objects: str) -> None:
    proc = subprocess.Popen([str(SCRIPT), "--server", kubelab.target, "-n", objects, "get", "pods", "-w",
                             "--output-watch-events", "--request-timeout", "6s"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    header = proc.stdout.readline()
    assert header.split()[:2] == ["EVENT", "NAME"]
    assert proc.stdout.readline().split()[:2] == ["ADDED", "db-0"]
    assert proc.stdout.readline().split()[:2] == ["ADDED", "web-1"]
    kubelab.ok("-n", objects, "label", "pod", "db-0", "watched=yes")
    kubelab.ok("-n", objects, "delete", "pod", "web-1")
    start = time.monotonic()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert time.monotonic() - start < 10
    rows = [line.split()[:2] for line in out.splitlines()]
    assert rows == [["MODIFIED", "db-0"], ["DELETED", "web-1"]]


def test_watch_only_of_one_object(kubelab: Kubelab, objects: str) -> None:
    proc = subprocess.Popen([str(SCRIPT), "--server", kubelab.target, "-n", objects, "get", "pod", "db-0",
                             "--watch-only", "-o", "name", "--request-timeout", "20s"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    # --watch-only prints nothing until an event, so keep changing both pods
    # until the watcher (once it has started) reports one.
    for attempt in range(40):
        kubelab.ok("-n", objects, "label", "pod", "web-1", f"ignored={attempt}", "--overwrite")
        kubelab.ok("-n", objects, "label", "pod", "db-0", f"seen={attempt}", "--overwrite")
        if select.select([proc.stdout], [], [], 0.5)[0]:
            break
    line = proc.stdout.readline()
    proc.terminate()
    rest, _ = proc.communicate(timeout=30)
    assert line == "pod/db-0\n"
    assert set(rest.splitlines()) <= {"pod/db-0"}
