"""`kubelab logs` and `exec` argument handling: which pod a workload's
logs come from, the default container, `--` and the refused old exec form,
reading and following a lab log file, and finding a lab component's log
from the lab's recorded state."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from api import from_dict
from deploy.lab import Component, LabState
from kubelab._cli import cli
from kubelab._exec import split_command
from kubelab._logs import component_log, default_container, follow_file, logging_order, tail_lines
from kubelab._session import CLIError
from proto import core_pb2


def pod(name: str, *, node: str = "n1", phase: str = "Running", ready: bool = True, restarts: int = 0,
        created: str = "2024-01-01T00:00:00Z", containers: tuple[str, ...] = ("app",),
        inits: tuple[str, ...] = (), annotations: dict[str, str] | None = None) -> core_pb2.Pod:
    return from_dict(core_pb2.Pod, {
        "metadata": {"name": name, "creationTimestamp": created, "annotations": annotations or {}},
        "spec": {"nodeName": node, "containers": [{"name": c, "image": "x"} for c in containers],
                 "initContainers": [{"name": c, "image": "x"} for c in inits]},
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                   "containerStatuses": [{"name": containers[0], "restartCount": restarts}]}})


def test_a_workloads_logs_come_from_its_best_pod() -> None:
    pods = [pod("pending", phase="Pending", ready=False), pod("unscheduled", node="", phase="Pending"),
            pod("unready", ready=False), pod("ready-new", created="2024-02-01T00:00:00Z"),
            pod("ready-old"), pod("restarted", restarts=3, created="2024-03-01T00:00:00Z")]
    ordered = [p.metadata.name for p in sorted(pods, key=logging_order)]
    assert ordered == ["restarted", "ready-old", "ready-new", "unready", "pending", "unscheduled"]


def test_default_container(capsys: pytest.CaptureFixture[str]) -> None:
    assert default_container(pod("one"), "") == "app"
    assert default_container(pod("two", containers=("web", "log")), "log") == "log"
    assert capsys.readouterr().err == ""
    assert default_container(pod("two", containers=("web", "log"), inits=("setup",)), "") == "web"
    assert capsys.readouterr().err == 'Defaulted container "web" out of: web, log, setup (init)\n'
    annotated = pod("two", containers=("web", "log"),
                    annotations={"kubectl.kubernetes.io/default-container": "log"})
    assert default_container(annotated, "") == "log"


def test_exec_takes_the_command_after_dashes() -> None:
    assert split_command(("web", "ls", "-l"), 2) == ("web", ["ls", "-l"])
    assert split_command(("deploy/web", "sh"), 1) == ("deploy/web", ["sh"])
    with pytest.raises(CLIError, match=r"Use exec \[POD\] -- \[COMMAND\] instead"):
        split_command(("web", "ls"), None)
    with pytest.raises(CLIError, match="you must specify at least one command"):
        split_command(("web",), 0)
    with pytest.raises(CLIError, match="expected exactly one POD"):
        split_command(("a", "b", "ls"), 1)


def test_exec_dashes_through_the_command_line() -> None:
    # The old form is refused before any server is asked (none listens there).
    result = CliRunner().invoke(cli, ["--server", "127.0.0.1:1", "exec", "web", "ls"])
    assert result.exit_code == 1 and "Use exec [POD] -- [COMMAND] instead" in result.output
    # Options after `--` belong to the command: this fails only on connecting.
    result = CliRunner().invoke(cli, ["--server", "127.0.0.1:1", "exec", "web", "-c", "app", "--", "ls", "-la"])
    assert result.exit_code == 1 and "The connection to the server 127.0.0.1:1 was refused" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["logs", "web", "--tail", "-2"], "--tail must be greater than or equal to -1"),
    (["logs", "web", "--since", "0s"], "--since must be greater than 0"),
    (["logs", "web", "--since", "5 minutes"], 'invalid argument "5 minutes" for "--since" flag'),
    (["logs", "web", "app", "-c", "app"], "only one of -c or an inline container name is allowed"),
    (["logs"], "expected POD or TYPE/NAME"),
])
def test_logs_flags_are_checked_first(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["--server", "127.0.0.1:1", *args])
    assert result.exit_code == 1 and message in result.output, result.output


def test_tail_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_bytes(b"".join(b"line %d\n" % i for i in range(20000)))
    data, end = tail_lines(log, 3)
    assert data == b"line 19997\nline 19998\nline 19999\n" and end == log.stat().st_size
    assert tail_lines(log, 0)[0] == b"" and tail_lines(log, -1)[0] == log.read_bytes()
    log.write_bytes(b"only\n")
    assert tail_lines(log, 10)[0] == b"only\n"


def test_follow_copies_appends_and_restarts_after_truncation(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_bytes(b"old\n")
    received = bytearray()
    appended = threading.Event()

    class Out:
        def write(self, data: bytes) -> None:
            received.extend(data)

        def flush(self) -> None:
            appended.set()

    done = threading.Event()
    follower = threading.Thread(target=follow_file, args=(log, log.stat().st_size, Out()),
                                kwargs={"interval": 0.01, "stop": done.is_set})
    follower.start()
    try:
        with open(log, "ab") as f:
            f.write(b"new 1\n")
        assert appended.wait(30)
        appended.clear()
        log.write_bytes(b"rotated\n")  # shorter than what was read: start again from the top
        assert appended.wait(30)
    finally:
        done.set()
        follower.join()
    assert bytes(received) == b"new 1\nrotated\n"


def lab_state(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    (state / "logs").mkdir(parents=True)
    (state / "nodes" / "kl-node-1" / "logs").mkdir(parents=True)
    LabState(str(state), "unix:///x.sock", [
        Component("apiserver", 1, ["x"], "", str(state / "logs" / "apiserver.log")),
        Component("kl-node-1", 2, ["y"], "", str(state / "logs" / "kl-node-1.log"))]).save()
    return state


def test_component_logs_are_found_from_the_labs_state(tmp_path: Path) -> None:
    state = lab_state(tmp_path)
    assert component_log("apiserver", "", state) == state / "logs" / "apiserver.log"
    assert component_log("kubelet", "kl-node-1", state) == state / "nodes" / "kl-node-1" / "logs" / "kubelet.log"
    assert component_log("join", "kl-node-1", state) == state / "logs" / "kl-node-1.log"
    with pytest.raises(CLIError, match=r'no control-plane component "kl-node-1"; choose one of: apiserver$'):
        component_log("kl-node-1", "", state)
    with pytest.raises(CLIError, match="kubelet runs on the nodes: add --node NODE"):
        component_log("kubelet", "", state)
    with pytest.raises(CLIError, match='"etcd" is not a node component'):
        component_log("etcd", "kl-node-1", state)
    with pytest.raises(CLIError, match=r'node "kl-node-7" is not part of the lab .*; its nodes are: kl-node-1'):
        component_log("kubelet", "kl-node-7", state)
    with pytest.raises(CLIError, match="no lab in"):
        component_log("apiserver", "", tmp_path / "elsewhere")
