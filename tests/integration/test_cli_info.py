"""`version`, `api-resources`, `cluster-info`, the global flags and config
file, and the command line as a real process: `python -m kubelab`, exit
codes, stderr, a server that is not there, start-up time."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from deploy.local import free_port
from kubelab._cli import cli
from tests.integration.cli_support import Kubelab, run_process


@pytest.fixture
def kubelab(apiserver) -> Kubelab:  # type: ignore[no-untyped-def]
    return Kubelab(apiserver.target)


def test_version(kubelab: Kubelab) -> None:
    lines = kubelab.ok("version").stdout.splitlines()
    assert lines[0].startswith("Client Version: v1.")
    assert lines[1] == "Server Version: v1.31.0+kubelab.0.1.0"
    assert kubelab.ok("version", "--client").stdout == lines[0] + "\n"
    data = json.loads(kubelab.ok("version", "-o", "json").stdout)
    assert data["serverVersion"]["major"] == "1" and data["serverVersion"]["minor"] == "31"
    assert set(data["clientVersion"]) >= {"major", "minor", "gitVersion", "platform"}
    assert yaml.safe_load(kubelab.ok("version", "-o", "yaml").stdout) == data


def test_api_resources(kubelab: Kubelab) -> None:
    lines = kubelab.ok("api-resources").stdout.splitlines()
    assert lines[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert any(line.split() == ["pods", "po", "v1", "true", "Pod"] for line in lines)
    assert any(line.split() == ["deployments", "deploy", "apps/v1", "true", "Deployment"] for line in lines)
    cluster = kubelab.ok("api-resources", "--namespaced=false", "-o", "name").stdout.split()
    assert "nodes" in cluster and "namespaces" in cluster and "pods" not in cluster
    assert "clusterroles.rbac.authorization.k8s.io" in cluster
    apps = kubelab.ok("api-resources", "--api-group", "apps", "-o", "name").stdout.split()
    assert apps == sorted(apps) and "deployments.apps" in apps and all(a.endswith(".apps") for a in apps)
    wide = kubelab.ok("api-resources", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-2:] == ["VERBS", "CATEGORIES"]
    assert any(line.split()[0] == "pods" and line.split()[-1] == "all" for line in wide)


def test_cluster_info(kubelab: Kubelab) -> None:
    out = kubelab.ok("cluster-info").stdout
    assert out.splitlines()[0] == f"Kubernetes control plane is running at {kubelab.target}"


def test_config_file_context_and_flags(kubelab: Kubelab, namespace: str, tmp_path: Path) -> None:
    kubelab.ok("create", "configmap", "here", "-n", namespace)
    config = tmp_path / "config"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": kubelab.target}},
                     {"name": "nowhere", "cluster": {"server": f"127.0.0.1:{free_port()}"}}],
        "users": [{"name": "admin", "user": {}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "admin", "namespace": namespace}},
                     {"name": "off", "context": {"cluster": "nowhere", "user": "admin"}}],
    }))
    runner = CliRunner()
    result = runner.invoke(cli, ["get", "cm", "-o", "name"], env={"KUBELAB_CONFIG": str(config)})
    assert result.exit_code == 0 and result.stdout == "configmap/here\n"  # the context's namespace
    result = runner.invoke(cli, ["--kubeconfig", str(config), "get", "cm", "-n", "default", "here"])
    assert result.exit_code == 1  # -n wins over the context
    result = runner.invoke(cli, ["--kubeconfig", str(config), "--context", "off", "version"])
    assert result.exit_code == 1 and "was refused - did you specify the right host or port?" in result.stderr
    result = runner.invoke(cli, ["--kubeconfig", str(tmp_path / "missing"), "version"])
    assert result.exit_code == 1 and "no such config file" in result.stderr


# ---------------------------------------------------------------- as a real process


def test_python_dash_m_kubelab(kubelab: Kubelab) -> None:
    done = run_process(kubelab.target, "version", module=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].startswith("Server Version: ")


def test_exit_codes_and_stderr(kubelab: Kubelab, namespace: str) -> None:
    done = run_process(kubelab.target, "get", "pod", "ghost", "-n", namespace)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", 'Error from server (NotFound): pods "ghost" '
                                                                  'not found\n')
    done = run_process(kubelab.target, "frobnicate")
    assert done.returncode == 1
    assert done.stderr == "error: No such command 'frobnicate'.\nSee 'kubelab --help' for usage.\n"
    done = run_process(kubelab.target, "get", "pods", "--bogus")
    assert done.returncode == 1
    assert done.stderr == "error: No such option '--bogus'.\nSee 'kubelab get --help' for usage.\n"
    done = run_process(kubelab.target, "--help")
    assert done.returncode == 0 and "apply" in done.stdout and "describe" in done.stdout


def test_a_server_that_is_not_there_fails_fast() -> None:
    target = f"127.0.0.1:{free_port()}"
    start = time.monotonic()
    done = run_process(target, "get", "pods")
    assert done.returncode == 1
    assert done.stderr == (f"The connection to the server {target} was refused - did you specify the right host "
                           "or port?\n")
    assert time.monotonic() - start < 5
    done = run_process(target, "version")
    assert done.returncode == 1 and done.stdout.startswith("Client Version: ")


def test_version_starts_quickly(kubelab: Kubelab) -> None:
    run_process(kubelab.target, "version")  # warm the file cache
    timings = []
    for _ in range(3):
        start = time.monotonic()
        done = run_process(kubelab.target, "version")
        timings.append(time.monotonic() - start)
        assert done.returncode == 0
    assert min(timings) < 1.5, f"kubelab version took {min(timings):.2f}s"
