"""`kubelab logs --component` on a lab started by `kubelab up` (control
plane only, `--nodes 0`, with ports and a namespace prefix of its own so a
lab the developer runs is never touched): the recorded log files are read
with --tail and followed with -f until Ctrl-C, and a component the lab
does not run, a node it does not have, and flags that only apply to pods
are refused with messages naming the choices. `kubelab down` removes the
lab afterwards, whatever happens."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local import free_port

from .cli_support import REPO

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    tmp = tmp_path_factory.mktemp("lab-logs")
    env = {**os.environ, "KUBELAB_STATE_DIR": str(tmp / "state"), "KUBELAB_CONFIG": str(tmp / "config")}
    try:
        kubelab(env, "up", "--port", str(free_port()), "--etcd-port", str(free_port()), "--prefix",
                f"kl-t{uuid.uuid4().hex[:5]}", "--nodes", "0")
        yield env
    finally:
        subprocess.run([sys.executable, "-m", "kubelab", "down"], env=env, capture_output=True, timeout=120)


def kubelab(env: dict[str, str], *args: str, check: bool = True,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "kubelab", *args], env=env, capture_output=True, text=True,
                         timeout=180, cwd=REPO, input=input)
    if check and out.returncode != 0:
        raise AssertionError(f"kubelab {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out


def recorded_log(env: dict[str, str], component: str) -> Path:
    state = json.loads((Path(env["KUBELAB_STATE_DIR"]) / "lab.json").read_text())
    return Path(next(c["log"] for c in state["components"] if c["name"] == component))


def test_component_logs_with_tail(lab: dict[str, str]) -> None:
    for component in ("apiserver", "etcd", "scheduler", "controller-manager", "clusterdns"):
        path = recorded_log(lab, component)
        lines = path.read_text().splitlines(keepends=True)
        assert lines, f"{component} has written nothing to {path}"
        tail = kubelab(lab, "logs", "--component", component, "--tail", "3").stdout
        # Components keep logging: the lines were the last ones when read,
        # three of them unless the file had fewer.
        assert len(tail.splitlines()) == min(3, len(lines)) or len(lines) < 3 <= len(path.read_text().splitlines())
        assert tail and tail in path.read_text(), component
    whole = kubelab(lab, "logs", "--component", "scheduler").stdout
    assert whole.startswith(recorded_log(lab, "scheduler").read_text().splitlines(keepends=True)[0])


def test_component_logs_follow_until_interrupted(lab: dict[str, str]) -> None:
    follow = subprocess.Popen([sys.executable, "-m", "kubelab", "logs", "--component", "controller-manager", "-f",
                               "--tail", "1"], env=lab, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=REPO)
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in follow.stdout or ():
            lines.put(line)
        lines.put("")  # the end of output

    threading.Thread(target=read, daemon=True).start()
    try:
        first = lines.get(timeout=60)  # the timeouts only stop a hung test
        assert first in recorded_log(lab, "controller-manager").read_text()
        # A new namespace makes the controller-manager log its token Secret.
        namespace = f"t-{uuid.uuid4().hex[:8]}"
        kubelab(lab, "create", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}}}\n")
        while f"{namespace}/default-token-" not in (line := lines.get(timeout=60)):
            assert line
        assert follow.poll() is None  # still following
        follow.send_signal(signal.SIGINT)
        follow.wait(timeout=30)
    finally:
        follow.kill()
        follow.wait()
    assert follow.returncode == 130


def test_component_logs_refuse_what_the_lab_does_not_have(lab: dict[str, str]) -> None:
    unknown = kubelab(lab, "logs", "--component", "nope", check=False)
    assert unknown.returncode == 1
    assert 'the lab has no control-plane component "nope"; choose one of: etcd, apiserver' in unknown.stderr
    kubelet = kubelab(lab, "logs", "--component", "kubelet", check=False)
    assert "kubelet runs on the nodes: add --node NODE" in kubelet.stderr
    node = kubelab(lab, "logs", "--node", "kl-node-9", "--component", "kubelet", check=False)
    assert node.returncode == 1 and 'node "kl-node-9" is not part of the lab' in node.stderr
    assert "(none: the lab runs no nodes)" in node.stderr
    mixed = kubelab(lab, "logs", "--component", "apiserver", "--previous", check=False)
    assert mixed.returncode == 1 and "--previous cannot be used with --component" in mixed.stderr
    with_pod = kubelab(lab, "logs", "web", "--component", "apiserver", check=False)
    assert with_pod.returncode == 1 and "it takes no pod" in with_pod.stderr
