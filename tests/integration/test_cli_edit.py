"""`kubelab edit`: editing through $KUBE_EDITOR; cancelling when nothing
changed; invalid input reopened with its errors and, if left unfixed,
kept in a file the command names; a concurrent change is a Conflict."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.integration.cli_support import SCRIPT, Kubelab

EDITOR = textwrap.dedent('''
    """A scripted editor: replaces OLD with NEW in the file it is given (or,
    with a third argument, the Nth version of NEW per call), logs each call,
    and can change the object on the server first (to race the edit)."""
    import os, subprocess, sys
    path = sys.argv[-1]
    log = os.environ["EDIT_LOG"]
    calls = open(log).read().count("call") if os.path.exists(log) else 0
    text = open(path).read()
    with open(log, "a") as f:
        f.write("call\\n" + text + "\\n")
    replacements = os.environ["EDIT_REPLACE"].split("||")
    old, new = replacements[min(calls, len(replacements) - 1)].split("=>")
    if os.environ.get("EDIT_RACE"):
        subprocess.run(os.environ["EDIT_RACE"].split(), check=True, capture_output=True)
    open(path, "w").write(text.replace(old, new))
''')


@pytest.fixture
def kubelab(apiserver) -> Kubelab:  # type: ignore[no-untyped-def]
    return Kubelab(apiserver.target)


@pytest.fixture
def editor(tmp_path: Path) -> dict[str, str]:
    script = tmp_path / "editor.py"
    script.write_text(EDITOR)
    return {"KUBE_EDITOR": f"{sys.executable} {script}", "EDIT_LOG": str(tmp_path / "calls.log")}


@pytest.fixture
def cm(kubelab: Kubelab, namespace: str) -> str:
    kubelab.ok("create", "configmap", "cfg", "--from-literal", "mode=slow", "-n", namespace)
    return namespace


def data(kubelab: Kubelab, namespace: str) -> dict[str, str]:
    return yaml.safe_load(kubelab.ok("get", "cm", "cfg", "-n", namespace, "-o", "yaml").stdout)["data"]


def stored_copy(stderr: str) -> Path:
    match = re.search(r'A copy of your changes has been stored to "([^"]+)"', stderr)
    assert match, stderr
    return Path(match.group(1))


def test_edit_changes_the_object(kubelab: Kubelab, cm: str, editor: dict[str, str]) -> None:
    result = kubelab.ok("edit", "cm", "cfg", "-n", cm, env={**editor, "EDIT_REPLACE": "mode: slow=>mode: fast"})
    assert result.stdout == "configmap/cfg edited\n"
    assert data(kubelab, cm) == {"mode": "fast"}
    first_call = Path(editor["EDIT_LOG"]).read_text()
    assert "# Please edit the object below. Lines beginning with a '#' will be ignored," in first_call
    assert "resourceVersion:" in first_call


def test_no_change_cancels(kubelab: Kubelab, cm: str, editor: dict[str, str]) -> None:
    result = kubelab.ok("edit", "configmap/cfg", "-n", cm, env={**editor, "EDIT_REPLACE": "nothing=>matches"})
    assert result.stdout == "Edit cancelled, no changes made.\n"


def test_invalid_input_is_reopened_then_kept(kubelab: Kubelab, cm: str, editor: dict[str, str]) -> None:
    result = kubelab.fails("edit", "cm", "cfg", "-n", cm, env={**editor, "EDIT_REPLACE": "data:=>dato:"})
    calls = Path(editor["EDIT_LOG"]).read_text().split("call\n")[1:]
    assert len(calls) == 2
    assert '# configmaps "cfg" was not valid:' in calls[1]
    assert 'strict decoding error: unknown field "dato"' in calls[1]
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Error from server (BadRequest): ConfigMap in version \"v1\" cannot be handled")
    assert lines[-1] == "error: Edit cancelled, no valid changes were saved."
    copy = stored_copy(result.stderr)
    assert "dato:" in copy.read_text()
    copy.unlink()
    assert data(kubelab, cm) == {"mode": "slow"}


def test_invalid_input_fixed_on_the_second_try(kubelab: Kubelab, cm: str, editor: dict[str, str]) -> None:
    # First save: YAML that does not parse. Reopened with the error, the
    # user fixes it (and so makes a valid change).
    env = {**editor, "EDIT_REPLACE": "mode: slow=>mode: x: y||mode: x: y=>mode: quick"}
    result = kubelab.ok("edit", "cm", "cfg", "-n", cm, env=env)
    assert result.stdout == "configmap/cfg edited\n"
    calls = Path(editor["EDIT_LOG"]).read_text().split("call\n")[1:]
    assert len(calls) == 2
    assert "# error: error parsing" in calls[1] and "mapping values are not allowed here" in calls[1]
    assert data(kubelab, cm) == {"mode": "quick"}


def test_a_concurrent_change_is_a_conflict(kubelab: Kubelab, cm: str, editor: dict[str, str]) -> None:
    race = f"{SCRIPT} --server {kubelab.target} -n {cm} label cm cfg touched=yes"
    result = kubelab.fails("edit", "cm", "cfg", "-n", cm,
                           env={**editor, "EDIT_REPLACE": "mode: slow=>mode: fast", "EDIT_RACE": race})
    assert result.stderr.splitlines()[-1] == ('Error from server (Conflict): Operation cannot be fulfilled on '
                                              'configmaps "cfg": the object has been modified; please apply your '
                                              'changes to the latest version and try again')
    stored_copy(result.stderr).unlink()
    assert data(kubelab, cm) == {"mode": "slow"}


def test_edit_needs_a_name(kubelab: Kubelab) -> None:
    assert "edit needs the name of the object" in kubelab.fails("edit", "cm").stderr
