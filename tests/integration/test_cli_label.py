"""`kubelab label` and `kubelab annotate`: set, overwrite, remove, list;
by name, TYPE/NAME, selector and --all; the --overwrite and
--resource-version preconditions; invalid keys and values."""

from __future__ import annotations

import pytest
import yaml

from tests.integration.cli_support import Kubelab

CMS = "".join(f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {n}, labels: {{set: {s}}}}}\n"
              for n, s in (("a", "one"), ("b", "one"), ("c", "two")))


@pytest.fixture
def kubelab(apiserver) -> Kubelab:  # type: ignore[no-untyped-def]
    return Kubelab(apiserver.target)


@pytest.fixture
def cms(kubelab: Kubelab, namespace: str) -> str:
    kubelab.ok("apply", "-f", "-", "-n", namespace, input=CMS)
    return namespace


def meta(kubelab: Kubelab, namespace: str, name: str) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(kubelab.ok("get", "cm", name, "-n", namespace, "-o", "yaml").stdout)["metadata"]


def test_label_set_overwrite_and_remove(kubelab: Kubelab, cms: str) -> None:
    assert kubelab.ok("label", "cm", "a", "env=test", "-n", cms).stdout == "configmap/a labeled\n"
    result = kubelab.fails("label", "cm", "a", "env=prod", "-n", cms)
    assert result.stderr == "error: 'env' already has a value (test), and --overwrite is false\n"
    assert meta(kubelab, cms, "a")["labels"]["env"] == "test"
    assert kubelab.ok("label", "cm/a", "env=prod", "--overwrite", "-n", cms).stdout == "configmap/a labeled\n"
    assert meta(kubelab, cms, "a")["labels"] == {"set": "one", "env": "prod"}
    assert kubelab.ok("label", "cm/a", "env-", "-n", cms).stdout == "configmap/a unlabeled\n"
    result = kubelab.ok("label", "cm/a", "env-", "-n", cms)
    assert result.stdout == "configmap/a not labeled\n"
    assert result.stderr == 'Warning: label "env" not found.\n'
    assert kubelab.ok("label", "cm", "a", "--list", "-n", cms).stdout == "set=one\n"


def test_label_by_selector_and_all(kubelab: Kubelab, cms: str) -> None:
    assert kubelab.ok("label", "cm", "-l", "set=one", "picked=yes", "-n", cms).stdout == \
        "configmap/a labeled\nconfigmap/b labeled\n"
    assert "picked" not in meta(kubelab, cms, "c")["labels"]
    out = kubelab.ok("label", "cm", "--all", "set=three", "--overwrite", "-n", cms, "-o", "name").stdout
    assert out == "configmap/a\nconfigmap/b\nconfigmap/c\n"
    assert {meta(kubelab, cms, n)["labels"]["set"] for n in "abc"} == {"three"}


def test_label_resource_version_precondition(kubelab: Kubelab, cms: str) -> None:
    version = meta(kubelab, cms, "a")["resourceVersion"]
    kubelab.ok("label", "cm", "a", "first=1", "--resource-version", version, "-n", cms)
    result = kubelab.fails("label", "cm", "a", "second=2", "--resource-version", version, "-n", cms)
    assert result.stderr.startswith("Error from server (Conflict): Operation cannot be fulfilled on configmaps \"a\"")
    assert "second" not in meta(kubelab, cms, "a")["labels"]


def test_invalid_labels_are_refused_before_sending(kubelab: Kubelab, cms: str) -> None:
    assert 'invalid label spec: "env=not valid"' in kubelab.fails("label", "cm", "a", "env=not valid",
                                                                  "-n", cms).stderr
    assert 'invalid label spec: "a/b/c=x"' in kubelab.fails("label", "cm", "a", "a/b/c=x", "-n", cms).stderr
    assert "at least one label update is required" in kubelab.fails("label", "cm", "a", "-n", cms).stderr
    assert kubelab.fails("label", "cm", "ghost", "x=y", "-n", cms).stderr == \
        'Error from server (NotFound): configmaps "ghost" not found\n'


def test_annotate(kubelab: Kubelab, cms: str) -> None:
    note = "free text: with spaces, = signs and a URL http://example.com/?a=b"
    assert kubelab.ok("annotate", "cm", "a", f"note={note}", "example.com/owner=ops", "-n", cms).stdout == \
        "configmap/a annotated\n"
    annotations = meta(kubelab, cms, "a")["annotations"]
    assert annotations["note"] == note and annotations["example.com/owner"] == "ops"
    assert kubelab.fails("annotate", "cm", "a", "note=other", "-n", cms).stderr.startswith(
        "error: 'note' already has a value")
    kubelab.ok("annotate", "cm", "a", "note-", "example.com/owner-", "-n", cms)
    assert "note" not in meta(kubelab, cms, "a").get("annotations", {})
