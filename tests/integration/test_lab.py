"""`kubelab up`, `status` and `down` as a user runs them: the control plane
starts with the demo applied, survives a second `up`, recovers from a crash
that left dead processes behind, and `down` leaves nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pyroute2 import netns

from deploy.local import free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[dict[str, str], list[str]]]:
    env = {**os.environ, "KUBELAB_STATE_DIR": str(tmp_path / "state"), "KUBELAB_CONFIG": str(tmp_path / "config")}
    # A prefix of its own, so a lab the developer runs is never touched.
    ports = ["--port", str(free_port()), "--etcd-port", str(free_port()), "--prefix", f"kl-t{uuid.uuid4().hex[:5]}",
             "--nodes", "0"]
    yield env, ports
    subprocess.run([sys.executable, "-m", "kubelab", "down"], env=env, capture_output=True, timeout=60)


def kubelab(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "kubelab", *args], env=env, capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    if check and out.returncode != 0:
        raise AssertionError(f"kubelab {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def pids(env: dict[str, str]) -> list[int]:
    state = json.loads((Path(env["KUBELAB_STATE_DIR"]) / "lab.json").read_text())
    return [c["pid"] for c in state["components"]]


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


def test_up_status_and_down(lab: tuple[dict[str, str], list[str]]) -> None:
    env, ports = lab
    started = kubelab(env, "up", *ports, "--apply", "deploy/demo/")
    assert "deployment.apps/hello created" in started.stdout and "Try next:" in started.stdout
    assert "hello" in kubelab(env, "get", "deploy", "-n", "demo").stdout
    status = kubelab(env, "status").stdout
    for component in ("etcd", "apiserver", "controller-manager", "scheduler", "clusterdns"):
        assert component in status
    prefix = ports[ports.index("--prefix") + 1]
    assert {f"{prefix}-cp", f"{prefix}-lab"} <= set(netns.listnetns())  # the control plane's namespace
    # Cluster DNS answers inside the lab, behind the kube-dns Service.
    assert "10.96.0.10" in kubelab(env, "get", "svc", "kube-dns", "-n", "kube-system").stdout
    lookup = subprocess.run(["ip", "netns", "exec", f"{prefix}-cp", "busybox", "nslookup",
                             "kube-dns.kube-system.svc.cluster.local", "10.200.0.2"],
                            capture_output=True, text=True, timeout=30)
    assert "10.96.0.10" in lookup.stdout, lookup.stdout + lookup.stderr
    assert status.count("Running") == 5
    # The controllers make the Deployment's pods; with no node, the
    # scheduler leaves them Pending and says why.
    wait_for(lambda: "no nodes available to schedule pods" in kubelab(env, "describe", "pods", "-n", "demo").stdout,
             "the demo's pods to be created and found unschedulable")
    pods = kubelab(env, "get", "pods", "-n", "demo", "-o", "name").stdout.split()
    assert len(pods) == 3 and all(p.startswith("pod/hello-") for p in pods)
    again = kubelab(env, "up", *ports)
    assert "already running" in again.stdout
    before = pids(env)
    kubelab(env, "down")
    time.sleep(0.2)
    assert not any(running(p) for p in before)
    assert not Path(env["KUBELAB_STATE_DIR"]).exists() and not Path(env["KUBELAB_CONFIG"]).exists()
    prefix = ports[ports.index("--prefix") + 1]
    assert not [n for n in netns.listnetns() if n.startswith(prefix + "-")]
    assert kubelab(env, "status", check=False).returncode == 1


def test_up_after_a_crash_cleans_up_and_starts_afresh(lab: tuple[dict[str, str], list[str]]) -> None:
    env, ports = lab
    kubelab(env, "up", *ports)
    for pid in pids(env):
        os.kill(pid, 9)
    time.sleep(0.3)
    recovered = kubelab(env, "up", *ports)
    assert "cleaning up after a previous run" in recovered.stdout
    assert "default" in kubelab(env, "get", "ns").stdout
