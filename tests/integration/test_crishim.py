"""The CRI shim against real runc, CNI plugins and cgroups, in a scratch
network namespace: sandbox networking (IP from the pod CIDR, released on
teardown; localhost between a pod's containers; hostPort through portmap),
container lifecycle (exit codes and reasons, OOMKilled, stop with timeout
then SIGKILL), exec (sync, streaming, tty), stats, CRI-format logs with
rotation, and bad input."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from proto import cri_pb2
from tests.support.crishim import (
    POD_CIDR,
    Shim,
    container_config,
    pod_sandbox,
    require_tools,
    run,
    sandbox_config,
    scratch_netns,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.skipif(require_tools() is not None, reason=str(require_tools()))]
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) (F|P) (.*)$")


@pytest.fixture(scope="module")
def shim() -> Iterator[Shim]:
    with scratch_netns() as netns:
        running = Shim(netns, Path(tempfile.mkdtemp(prefix="crishim-test-")))
        try:
            yield running.start()
        finally:
            running.cleanup()


@pytest.fixture
def pod(shim: Shim, request: pytest.FixtureRequest) -> Iterator[tuple[str, cri_pb2.PodSandboxConfig]]:
    with pod_sandbox(shim, request.node.name) as made:
        yield made


def status(shim: Shim, cid: str) -> cri_pb2.ContainerStatus:
    return shim.runtime.ContainerStatus(cri_pb2.ContainerStatusRequest(container_id=cid)).status


def wait_exited(shim: Shim, cid: str) -> cri_pb2.ContainerStatus:
    wait_for(lambda: status(shim, cid).state == cri_pb2.CONTAINER_EXITED, f"container {cid[:12]} to exit")
    return status(shim, cid)


def exec_sync(shim: Shim, cid: str, *cmd: str, timeout: int = 0) -> cri_pb2.ExecSyncResponse:
    return shim.runtime.ExecSync(cri_pb2.ExecSyncRequest(container_id=cid, cmd=list(cmd), timeout=timeout))


def test_sandbox_gets_an_ip_from_the_pod_cidr_and_teardown_releases_it(shim: Shim) -> None:
    config = sandbox_config("ipam", shim.logs)
    sandbox_id = shim.runtime.RunPodSandbox(cri_pb2.RunPodSandboxRequest(config=config)).pod_sandbox_id
    try:
        st = shim.runtime.PodSandboxStatus(cri_pb2.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id)).status
        assert st.state == cri_pb2.SANDBOX_READY
        assert ipaddress.ip_address(st.network.ip) in ipaddress.ip_network(POD_CIDR)
        reserved = shim.root / "cni" / "networks" / "kubelab" / st.network.ip
        assert reserved.read_text().startswith(sandbox_id)
        netns = json.loads((shim.root / "sandboxes" / sandbox_id / "sandbox.json").read_text())["netns"]
        assert Path(f"/run/netns/{netns}").exists()
    finally:
        shim.runtime.StopPodSandbox(cri_pb2.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))
    assert not reserved.exists()
    assert not Path(f"/run/netns/{netns}").exists()
    listed = shim.runtime.ListPodSandbox(cri_pb2.ListPodSandboxRequest()).items
    assert [s.state for s in listed if s.id == sandbox_id] == [cri_pb2.SANDBOX_NOTREADY]
    shim.runtime.StopPodSandbox(cri_pb2.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))   # idempotent
    shim.runtime.RemovePodSandbox(cri_pb2.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))
    shim.runtime.RemovePodSandbox(cri_pb2.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))
    assert sandbox_id not in {s.id for s in shim.runtime.ListPodSandbox(cri_pb2.ListPodSandboxRequest()).items}


def test_containers_of_a_pod_share_localhost_and_volumes(shim: Shim, pod: tuple[str, cri_pb2.PodSandboxConfig]) -> None:
    shared = shim.base / "volumes" / pod[0][:12]
    mount = cri_pb2.Mount(container_path="/shared", host_path=str(shared))
    server = run(shim, pod, container_config("server", ["sh", "-c", "echo hi-from-server > /shared/index.html; "
                                                         "exec httpd -f -p 8080 -h /shared"], mounts=[mount]))
    client = run(shim, pod, container_config("client", ["sleep", "100000"], mounts=[mount]))
    wait_for(lambda: exec_sync(shim, client, "wget", "-qO-", "http://127.0.0.1:8080/").exit_code == 0,
             "the server container to listen")
    assert exec_sync(shim, client, "wget", "-qO-", "http://127.0.0.1:8080/").stdout == b"hi-from-server\n"
    assert exec_sync(shim, client, "cat", "/shared/index.html").stdout == b"hi-from-server\n"
    assert (shared / "index.html").read_text() == "hi-from-server\n"
    assert exec_sync(shim, client, "hostname").stdout.decode().strip() == pod[1].hostname
    assert status(shim, server).state == cri_pb2.CONTAINER_RUNNING


def test_exit_codes_reasons_and_times(shim: Shim, pod: tuple[str, cri_pb2.PodSandboxConfig]) -> None:
    done = wait_exited(shim, run(shim, pod, container_config("done", ["true"])))
    assert (done.exit_code, done.reason) == (0, "Completed")
    assert 0 < done.created_at <= done.started_at <= done.finished_at
    failed = wait_exited(shim, run(shim, pod, container_config(
        "failed", ["sh", "-c", "echo dying > /dev/termination-log; exit 3"],
        termination_message_path="/dev/termination-log")))
    assert (failed.exit_code, failed.reason, failed.message) == (3, "Error", "dying\n")
    listed = shim.runtime.ListContainers(cri_pb2.ListContainersRequest(filter=cri_pb2.ContainerFilter(
        pod_sandbox_id=pod[0], state=cri_pb2.ContainerStateValue(state=cri_pb2.CONTAINER_EXITED)))).containers
    assert {c.metadata.name for c in listed} == {"done", "failed"}


def test_a_container_over_its_memory_limit_is_oom_killed(shim: Shim,
                                                         pod: tuple[str, cri_pb2.PodSandboxConfig]) -> None:
    limits = cri_pb2.LinuxContainerConfig(resources=cri_pb2.LinuxContainerResources(
        memory_limit_in_bytes=32 * 1024 * 1024))
    cid = run(shim, pod, container_config("hog", ["dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"],
                                          linux=limits))
    st = wait_exited(shim, cid)
    assert (st.reason, st.exit_code) == ("OOMKilled", 137)
    assert st.resources.memory_limit_in_bytes == 32 * 1024 * 1024


def test_stop_sends_sigterm_then_sigkill_after_the_timeout(shim: Shim,
                                                          pod: tuple[str, cri_pb2.PodSandboxConfig]) -> None:
    polite = run(shim, pod, container_config("polite", ["sh", "-c", "trap 'exit 7' TERM; while :; do sleep 0.1; done"]))
    stubborn = run(shim, pod, container_config("stubborn", ["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"]))
    shim.runtime.StopContainer(cri_pb2.StopContainerRequest(container_id=polite, timeout=60))
    assert status(shim, polite).exit_code == 7
    shim.runtime.StopContainer(cri_pb2.StopContainerRequest(container_id=stubborn, timeout=1))
    st = status(shim, stubborn)
    assert (st.state, st.exit_code, st.reason) == (cri_pb2.CONTAINER_EXITED, 137, "Error")
    shim.runtime.StopContainer(cri_pb2.StopContainerRequest(container_id=stubborn, timeout=1))   # already stopped


def test_exec_sync_and_exec_streams(shim: Shim, pod: tuple[str, cri_pb2.PodSandboxConfig]) -> None:
    cid = run(shim, pod, container_config("box", ["sleep", "100000"], envs=[cri_pb2.KeyValue(key="GREETING",
                                                                                              value="hello")]))
    reply = exec_sync(shim, cid, "sh", "-c", "echo $GREETING; echo oops >&2; exit 5")
    assert (reply.stdout, reply.stderr, reply.exit_code) == (b"hello\n", b"oops\n", 5)
    with pytest.raises(grpc.RpcError) as err:
        exec_sync(shim, cid, "sleep", "1000", timeout=1)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    def piped() -> Iterator[cri_pb2.ExecRequest]:
        yield cri_pb2.ExecRequest(start=cri_pb2.ExecStart(container_id=cid, cmd=["sh", "-c", "cat; echo e >&2"],
                                                          stdin=True, stdout=True, stderr=True))
        yield cri_pb2.ExecRequest(stdin=b"line one\n")
        yield cri_pb2.ExecRequest(close_stdin=True)
    out, err_out, codes = b"", b"", []
    for response in shim.runtime.Exec(piped()):
        kind = response.WhichOneof("message")
        out += response.stdout if kind == "stdout" else b""
        err_out += response.stderr if kind == "stderr" else b""
        codes += [response.exit_code] if kind == "exit_code" else []
    assert (out, err_out, codes) == (b"line one\n", b"e\n", [0])

    def terminal() -> Iterator[cri_pb2.ExecRequest]:
        yield cri_pb2.ExecRequest(start=cri_pb2.ExecStart(container_id=cid, cmd=["sh"], tty=True, stdin=True,
                                                          stdout=True))
        yield cri_pb2.ExecRequest(resize=cri_pb2.TerminalSize(width=91, height=17))
        yield cri_pb2.ExecRequest(stdin=b"echo $((6*7)); stty size; exit 3\n")
    out, codes = b"", []
    for response in shim.runtime.Exec(terminal()):
        out += response.stdout
        codes += [response.exit_code] if response.WhichOneof("message") == "exit_code" else []
    assert b"42" in out and b"17 91" in out and codes == [3]


def test_stats_come_from_the_container_cgroup(shim: Shim, pod: tuple[str, cri_pb2.PodSandboxConfig]) -> None:
    cid = run(shim, pod, container_config("busy", ["sh", "-c", "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; "
                                                               "echo warm > /tmp/x; exec sleep 100000"]))
    wait_for(lambda: exec_sync(shim, cid, "cat", "/tmp/x").stdout == b"warm\n", "the loop to finish")
    first = shim.runtime.ContainerStats(cri_pb2.ContainerStatsRequest(container_id=cid)).stats
    assert first.cpu.usage_core_nano_seconds.value > 0
    assert first.memory.working_set_bytes.value > 0
    assert first.writable_layer.used_bytes.value > 0
    listed = shim.runtime.ListContainerStats(cri_pb2.ListContainerStatsRequest(
        filter=cri_pb2.ContainerStatsFilter(pod_sandbox_id=pod[0]))).stats
    assert [s.attributes.metadata.name for s in listed] == ["busy"]
    assert listed[0].cpu.HasField("usage_nano_cores")


def test_logs_are_in_the_cri_format_and_rotate_by_size(shim: Shim, pod: tuple[str, cri_pb2.PodSandboxConfig]) -> None:
    script = ("i=0; while [ $i -lt 300 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; "
              "i=$((i+1)); done; echo to-stderr >&2")
    log = Path(wait_exited(shim, run(shim, pod, container_config("chatty", ["sh", "-c", script]))).log_path)
    files = [log, log.with_name("0.log.1"), log.with_name("0.log.2")]
    assert all(f.exists() and 0 < f.stat().st_size <= 4096 for f in files)
    assert not log.with_name("0.log.3").exists()   # --container-log-max-files 3
    matches = [LINE.match(line) for f in reversed(files) for line in f.read_text().splitlines()]
    assert all(matches)
    parsed = [(m.group(1), m.group(2), m.group(3)) for m in matches if m]
    assert parsed[-2:] == [("stdout", "F", "line-299-" + "x" * 48), ("stderr", "F", "to-stderr")]
    numbers = [int(p[2].split("-")[1]) for p in parsed if p[0] == "stdout"]
    assert numbers == list(range(numbers[0], 300))   # the oldest lines rotated away, none lost in between

    long_line = "head -c 20000 /dev/zero | tr '\\0' y"
    log = Path(wait_exited(shim, run(shim, pod, container_config("long", ["sh", "-c", long_line]))).log_path)
    long_parsed = [(m.group(1), m.group(2), m.group(3)) for f in (log.with_name("0.log.1"), log)
                   for line in f.read_text().splitlines() if (m := LINE.match(line))]
    assert [(p[0], p[1]) for p in long_parsed] == [("stdout", "P"), ("stdout", "F")]
    assert "".join(p[2] for p in long_parsed) == "y" * 20000


def test_host_port_reaches_the_pod_through_portmap(shim: Shim) -> None:
    config = sandbox_config("hostport", shim.logs, port_mappings=[
        cri_pb2.PortMapping(protocol=cri_pb2.TCP, container_port=8080, host_port=18080)])
    sandbox_id = shim.runtime.RunPodSandbox(cri_pb2.RunPodSandboxRequest(config=config)).pod_sandbox_id
    pod = (sandbox_id, config)
    try:
        serve = "echo via-hostport > /tmp/i; exec httpd -f -p 8080 -h /tmp"
        run(shim, pod, container_config("web", ["sh", "-c", serve]))
        gateway = str(next(ipaddress.ip_network(POD_CIDR).hosts()))

        def fetch() -> subprocess.CompletedProcess[bytes]:
            fetch_url = f"import urllib.request as u; print(u.urlopen('http://{gateway}:18080/i', timeout=2).read())"
            return subprocess.run(["nsenter", f"--net=/run/netns/{shim.netns}", sys.executable, "-c", fetch_url],
                                  capture_output=True)
        wait_for(lambda: fetch().returncode == 0, "the hostPort to answer")
        assert fetch().stdout == b"b'via-hostport\\n'\n"
    finally:
        shim.runtime.StopPodSandbox(cri_pb2.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))
        shim.runtime.RemovePodSandbox(cri_pb2.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))
    rules = subprocess.run(["nsenter", f"--net=/run/netns/{shim.netns}", "iptables-save", "-t", "nat"],
                           capture_output=True, text=True).stdout
    assert "18080" not in rules


def test_bad_input_gets_a_clear_error(shim: Shim, pod: tuple[str, cri_pb2.PodSandboxConfig]) -> None:
    with pytest.raises(grpc.RpcError) as err:
        shim.runtime.CreateContainer(cri_pb2.CreateContainerRequest(pod_sandbox_id=pod[0], config=container_config(
            "bad", ["true"], mounts=[cri_pb2.Mount(container_path="relative", host_path="/tmp")])))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "mounts[0].containerPath" in str(err.value.details())
    with pytest.raises(grpc.RpcError) as err:
        shim.runtime.CreateContainer(cri_pb2.CreateContainerRequest(pod_sandbox_id="nope", config=container_config(
            "x", ["true"])))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    bad_image = container_config("x", ["true"])
    bad_image.image.image = "Not/A:Valid:Name"
    with pytest.raises(grpc.RpcError) as err:
        shim.runtime.CreateContainer(cri_pb2.CreateContainerRequest(pod_sandbox_id=pod[0], config=bad_image))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "path component 'A:Valid' must be lowercase" in str(err.value.details())
    cid = run(shim, pod, container_config("once", ["sleep", "1000"]))
    with pytest.raises(grpc.RpcError) as err:
        shim.runtime.StartContainer(cri_pb2.StartContainerRequest(container_id=cid))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as err:
        shim.runtime.UpdateRuntimeConfig(cri_pb2.UpdateRuntimeConfigRequest(runtime_config=cri_pb2.RuntimeConfig(
            network_config=cri_pb2.NetworkConfig(pod_cidr="10.1.2.0/33"))))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
