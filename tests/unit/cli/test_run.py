"""`kubelab run`: the Pod built from the flags is the one kubectl builds
(stdin, stdinOnce and tty for an attached one), bad flag combinations are
refused naming the rule before anything is sent to a server, and a
completed pod's phase and exit code become kubectl run's exit status."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from api import to_dict
from kubelab._cli import cli
from kubelab._run import build_pod, exit_code, parse_env, parse_pairs
from kubelab._session import CLIError


def test_defaults_are_kubectls() -> None:
    pod = build_pod("nginx", "nginx:1.27", namespace="web")
    assert to_dict(pod) == {
        "metadata": {"name": "nginx", "namespace": "web", "labels": {"run": "nginx"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}], "restartPolicy": "Always"}}


def test_flags_fill_the_container() -> None:
    pod = build_pod("once", "busybox", args=["sh", "-c", "echo $A"], restart="Never", env=["A=1", "B=x=y"],
                    port=8080, labels=["app=web,tier=front"], annotations=["note=hi"], pull_policy="IfNotPresent")
    [c] = pod.spec.containers
    assert list(c.args) == ["sh", "-c", "echo $A"] and not c.command
    assert [(e.name, e.value) for e in c.env] == [("A", "1"), ("B", "x=y")]
    assert [p.containerPort for p in c.ports] == [8080] and c.imagePullPolicy == "IfNotPresent"
    assert dict(pod.metadata.labels) == {"app": "web", "tier": "front"}  # --labels replaces run=NAME
    assert dict(pod.metadata.annotations) == {"note": "hi"} and pod.spec.restartPolicy == "Never"


def test_command_flag_makes_the_arguments_the_command() -> None:
    [c] = build_pod("s", "busybox", args=["sleep", "3600"], command=True).spec.containers
    assert list(c.command) == ["sleep", "3600"] and not c.args
    with pytest.raises(CLIError, match="--command needs the command"):
        build_pod("s", "busybox", command=True)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"restart": "Sometimes"}, "invalid restart policy: Sometimes"),
    ({"pull_policy": "Maybe"}, "invalid image pull policy: Maybe"),
    ({"port": 70000}, "--port: Invalid value: 70000: must be between 1 and 65535"),
    ({"env": ["1BAD=x"]}, "invalid env: 1BAD=x"),
    ({"env": ["NOVALUE"]}, "invalid env: NOVALUE"),
    ({"labels": ["app"]}, "invalid label spec: app"),
])
def test_bad_flags_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(CLIError, match=message):
        build_pod("x", "busybox", **kwargs)  # type: ignore[arg-type]


def test_pairs_and_env_parsing() -> None:
    assert parse_pairs(["a=1,b=2", "c="], "label") == {"a": "1", "b": "2", "c": ""}
    assert parse_env(["DNS_DOMAIN=cluster", "x.y-z=1"]) == [("DNS_DOMAIN", "cluster"), ("x.y-z", "1")]


def test_attached_pods_keep_stdin_open_once_and_get_a_tty() -> None:
    [c] = build_pod("shell", "busybox", stdin=True, stdin_once=True, tty=True).spec.containers
    assert (c.stdin, c.stdinOnce, c.tty) == (True, True, True)
    [c] = build_pod("shell", "busybox", stdin=True).spec.containers    # --leave-stdin-open
    assert (c.stdin, c.stdinOnce, c.tty) == (True, False, False)
    assert "stdin" not in to_dict(build_pod("web", "nginx"))["spec"]["containers"][0]


@pytest.mark.parametrize(("args", "message"), [
    (["-t"], "-i/--stdin is required for containers with -t/--tty=true"),
    (["--rm"], "--rm should only be used for attached containers"),
    (["-i", "--rm", "--no-attach"], "--rm should only be used for attached containers"),
    (["-i", "--dry-run=client"], "--dry-run=[server|client] can't be used with attached containers options"),
    ([], 'required flag(s) "image" not set'),
])
def test_bad_combinations_fail_before_any_server_is_asked(args: list[str], message: str) -> None:
    image = ["--image", "busybox"] if args else []
    # No server listens there: failing first proves nothing was sent.
    result = CliRunner().invoke(cli, ["--server", "127.0.0.1:1", "run", "shell", *image, *args, "--", "sh"])
    assert result.exit_code == 1 and message in result.output, result.output


def _completed(phase: str, code: int | None = None, reason: str = "", message: str = "") -> object:
    from proto import core_pb2
    pod = core_pb2.Pod()
    pod.metadata.name, pod.metadata.namespace, pod.status.phase = "once", "default", phase
    if code is not None:
        status = pod.status.containerStatuses.add(name="once")
        status.state.terminated.exitCode, status.state.terminated.reason = code, reason
        status.state.terminated.message = message
    return pod


def test_the_exit_code_is_the_containers(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(_completed("Succeeded", 0)) == 0
    assert exit_code(_completed("Failed", 3, "Error")) == 3
    assert capsys.readouterr().err == "pod default/once terminated (Error)\n"
    assert exit_code(_completed("Failed", 137, "OOMKilled", "killed")) == 137
    assert capsys.readouterr().err == "pod default/once terminated (OOMKilled)\nkilled\n"
    with pytest.raises(CLIError, match="pod default/once failed with unknown exit code"):
        exit_code(_completed("Failed"))
    with pytest.raises(CLIError, match="pod default/once left in phase Running"):
        exit_code(_completed("Running"))


def test_client_dry_run_prints_the_pod() -> None:
    result = CliRunner().invoke(cli, ["--server", "127.0.0.1:1", "-n", "demo", "run", "web", "--image=nginx",
                                      "--port=80", "--dry-run=client", "-o", "yaml"])
    assert result.exit_code == 0, result.output
    assert result.output == ("apiVersion: v1\nkind: Pod\nmetadata:\n  labels:\n    run: web\n  name: web\n"
                             "  namespace: demo\nspec:\n  containers:\n  - image: nginx\n    name: web\n"
                             "    ports:\n    - containerPort: 80\n  restartPolicy: Always\n")
    named = CliRunner().invoke(cli, ["--server", "127.0.0.1:1", "run", "web", "--image=nginx", "--dry-run"])
    assert named.output == "pod/web created (dry run)\n"
