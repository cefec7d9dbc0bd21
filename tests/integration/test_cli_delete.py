"""`kubelab delete`: by name, TYPE/NAME, file, selector and --all; the
not-found rules; --force; cascade policies; dry runs; and waiting until
objects are really gone (with a finalizer holding one back)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.integration.cli_support import Kubelab, run_process

CMS = "".join(f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {n}, labels: {{set: {s}}}}}\n"
              for n, s in (("a", "one"), ("b", "one"), ("c", "two")))


@pytest.fixture
def kubelab(apiserver) -> Kubelab:  # type: ignore[no-untyped-def]
    return Kubelab(apiserver.target)


@pytest.fixture
def cms(kubelab: Kubelab, namespace: str) -> str:
    kubelab.ok("apply", "-f", "-", "-n", namespace, input=CMS)
    return namespace


def names(kubelab: Kubelab, namespace: str, kind: str = "cm") -> list[str]:
    return kubelab.ok("get", kind, "-n", namespace, "-o", "jsonpath={.items[*].metadata.name}").stdout.split()


def test_by_name_and_type_slash_name(kubelab: Kubelab, cms: str) -> None:
    assert kubelab.ok("delete", "cm", "a", "b", "-n", cms).stdout == 'configmap "a" deleted\nconfigmap "b" deleted\n'
    assert kubelab.ok("delete", "configmap/c", "-n", cms).stdout == 'configmap "c" deleted\n'
    assert names(kubelab, cms) == []


def test_by_selector_and_all(kubelab: Kubelab, cms: str) -> None:
    assert kubelab.ok("delete", "cm", "-l", "set=one", "-n", cms).stdout == \
        'configmap "a" deleted\nconfigmap "b" deleted\n'
    assert names(kubelab, cms) == ["c"]
    assert kubelab.ok("delete", "cm", "-l", "set=none", "-n", cms).stderr == "No resources found\n"
    assert kubelab.ok("delete", "cm", "--all", "-n", cms, "-o", "name").stdout == "configmap/c\n"


def test_by_file(kubelab: Kubelab, cms: str, tmp_path: Path) -> None:
    file = tmp_path / "cms.yaml"
    file.write_text(CMS)
    out = kubelab.ok("delete", "-f", str(file), "-n", cms).stdout
    assert out == 'configmap "a" deleted\nconfigmap "b" deleted\nconfigmap "c" deleted\n'


def test_not_found(kubelab: Kubelab, cms: str) -> None:
    result = kubelab.fails("delete", "cm", "ghost", "a", "-n", cms)
    assert result.stdout == 'configmap "a" deleted\n'
    assert result.stderr == 'Error from server (NotFound): configmaps "ghost" not found\n'
    assert kubelab.ok("delete", "cm", "ghost", "-n", cms, "--ignore-not-found").output == ""


def test_argument_errors(kubelab: Kubelab, cms: str) -> None:
    assert kubelab.fails("delete", "cm", "-n", cms).stderr == \
        "error: resource(s) were provided, but no name was specified\n"
    assert "You must provide one or more resources" in kubelab.fails("delete").stderr
    assert "invalid cascade value (sideways)" in kubelab.fails("delete", "cm", "a", "--cascade=sideways").stderr


def test_dry_runs_keep_the_object(kubelab: Kubelab, cms: str) -> None:
    assert kubelab.ok("delete", "cm", "a", "-n", cms, "--dry-run=server").stdout == \
        'configmap "a" deleted (server dry run)\n'
    assert kubelab.ok("delete", "cm", "a", "-n", cms, "--dry-run=client").stdout == 'configmap "a" deleted (dry run)\n'
    assert names(kubelab, cms) == ["a", "b", "c"]


def test_force_prints_kubectls_warning(kubelab: Kubelab, namespace: str) -> None:
    kubelab.ok("apply", "-f", "-", "-n", namespace,
               input="apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: x}]}\n")
    result = kubelab.ok("delete", "pod", "p", "-n", namespace, "--force", "--grace-period=0")
    assert result.stdout == 'pod "p" force deleted\n'
    assert result.stderr == ("Warning: Immediate deletion does not wait for confirmation that the running resource "
                             "has been terminated. The resource may continue to run on the cluster indefinitely.\n")


@pytest.mark.parametrize(("cascade", "finalizer"), [("orphan", "orphan"), ("false", "orphan"),
                                                    ("foreground", "foregroundDeletion")])
def test_cascade_policies_reach_the_server(kubelab: Kubelab, cms: str, cascade: str, finalizer: str) -> None:
    kubelab.ok("delete", "cm", "a", "-n", cms, f"--cascade={cascade}", "--wait=false")
    live = yaml.safe_load(kubelab.ok("get", "cm", "a", "-n", cms, "-o", "yaml").stdout)
    assert finalizer in live["metadata"]["finalizers"]
    assert live["metadata"]["deletionTimestamp"]


def test_wait_until_gone(kubelab: Kubelab, cms: str) -> None:
    kubelab.ok("patch", "cm", "a", "-n", cms, "--type=merge", "-p",
               '{"metadata":{"finalizers":["example.com/hold"]}}')
    start = time.monotonic()
    result = kubelab.fails("delete", "cm", "a", "-n", cms, "--timeout=1s")
    assert time.monotonic() - start < 10
    assert result.stdout == 'configmap "a" deleted\n'
    assert result.stderr == "error: timed out waiting for the condition on configmaps/a\n"

    def release() -> None:  # another user, a second later (a process: CliRunner swaps sys.stdout)
        time.sleep(1.0)
        done = run_process(kubelab.target, "patch", "cm", "a", "-n", cms, "--type=json", "-p",
                           '[{"op":"remove","path":"/metadata/finalizers"}]')
        assert done.returncode == 0, done.stderr
    thread = threading.Thread(target=release)
    thread.start()
    start = time.monotonic()
    kubelab.ok("delete", "cm", "a", "-n", cms, "--timeout=20s")
    thread.join()
    assert 0.8 < time.monotonic() - start < 15
    kubelab.fails("get", "cm", "a", "-n", cms)
