"""`kubelab logs`, `exec`, `top` and `run` against one real node: a
kubelet on the real CRI shim and runc in a scratch network namespace,
joined to the host by a veth pair of its own, so the session apiserver
(on the host) dials the kubelet API at the node's InternalIP:10250 through
its node proxy, while the CLI talks only to the apiserver - the same path
as in the lab. The kubelet reaches the apiserver through its unix socket.

Covered: logs (whole, --tail, --timestamps, --previous after a restart,
a workload's pod, follow ending when the container stops), exec (stdin,
separate stdout/stderr, the command's exit code as kubelab's, the default
container, refused forms), attach (stdin to a container that keeps it
open, output only, refusals), top pods/nodes with figures above zero (and
the HPA's KubeletMetricsSource on the same summaries), and run creating
the Pod kubectl would, which then runs on the node - or, attached (-i,
-it on a terminal, --rm), the container's own process talking to this
one, its exit code as kubelab's and the pod deleted afterwards.

Everything made (namespace, veth, containers, mounts, cgroups, files, Node
and Lease) is removed afterwards, whatever happens.
"""

from __future__ import annotations

import fcntl
import os
import pty
import random
import re
import secrets
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import Result

from api import Selector, StatusError, from_dict
from client import ClientConfig, Clientset, NodeProxyClient, SyncClientset
from controller_manager._metrics_source import KubeletMetricsSource
from deploy.local import APIServerProcess, ManagedProcess, health_serving, wait_until
from proto import apps_pb2, coordination_pb2, core_pb2
from tests.support.crishim import BUSYBOX, Shim, require_tools, scratch_netns

from .cli_support import REPO, SCRIPT, Kubelab, run_process

pytestmark = [pytest.mark.integration, pytest.mark.skipif(require_tools() is not None, reason=str(require_tools()))]

SLEEP = "trap 'exit 0' TERM; while true; do sleep 1; done"
COUNTER = ("n=$(cat /data/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/n; echo run $n; echo line-a; "
           "echo line-b; echo line-c; if [ $n -lt 2 ]; then exit 1; fi; " + SLEEP)
BUSY = "x=$(head -c 20000000 /dev/zero | tr '\\000' a); trap 'exit 0' TERM; while true; do :; done"
WAITER = "echo waiting; while [ ! -f /tmp/stop ]; do sleep 1; done; echo stopped"
ECHOER = 'echo started; while read l; do [ "$l" = quit ] && exit 0; echo "echo $l"; done; echo eof'
TICKER = "trap 'exit 0' TERM; while true; do echo tick; sleep 0.3; done"


@dataclass
class Node:
    name: str
    ip: str
    namespace: str
    target: str  # the apiserver, for the CLI
    cs: SyncClientset

    def pod(self, name: str) -> core_pb2.Pod:
        return self.cs.resource(core_pb2.Pod, self.namespace).get(name)

    def cli(self, *args: str) -> Result:
        return Kubelab(self.target)("-n", self.namespace, *args)


def container(name: str, script: str, **extra: object) -> dict[str, object]:
    return {"name": name, "image": BUSYBOX, "imagePullPolicy": "Never", "command": ["sh", "-c", script], **extra}


def pod(name: str, node: str, containers: list[dict[str, object]], **spec: object) -> core_pb2.Pod:
    return from_dict(core_pb2.Pod, {"metadata": {"name": name, "labels": {"app": name}},
                                    "spec": {"nodeName": node, "terminationGracePeriodSeconds": 2,
                                             "containers": containers, **spec}})


def eventually(check: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    """Poll until check() holds; the timeout only stops a hung test."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except StatusError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def node(apiserver: APIServerProcess, apiserver_socket: str) -> Iterator[Node]:
    name = f"kl-{uuid.uuid4().hex[:6]}"
    subnet = f"10.251.{random.randrange(256)}.{4 * random.randrange(64)}".rsplit(".", 1)
    host_ip, node_ip = f"{subnet[0]}.{int(subnet[1]) + 1}", f"{subnet[0]}.{int(subnet[1]) + 2}"
    link = f"klv{secrets.token_hex(4)}"
    cs = SyncClientset(ClientConfig(server=apiserver.target))
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    with scratch_netns() as netns:
        base = Path(tempfile.mkdtemp(prefix="cli-node-"))
        kubelet: ManagedProcess | None = None
        shim: Shim | None = None
        try:
            # The node's uplink: the host end answers the apiserver's side.
            subprocess.run(["ip", "link", "add", link, "type", "veth", "peer", "name", "kl-uplink", "netns", netns],
                           check=True)
            subprocess.run(["ip", "addr", "add", f"{host_ip}/30", "dev", link], check=True)
            subprocess.run(["ip", "link", "set", link, "up"], check=True)
            subprocess.run(["ip", "-n", netns, "addr", "add", f"{node_ip}/30", "dev", "kl-uplink"], check=True)
            subprocess.run(["ip", "-n", netns, "link", "set", "kl-uplink", "up"], check=True)
            shim = Shim(netns, base).start()
            health = f"unix://{base}/kubelet-health.sock"
            kubelet = ManagedProcess([
                "nsenter", f"--net=/run/netns/{netns}", sys.executable, "-m", "kubelet", "--server", apiserver_socket,
                "--hostname-override", name, "--node-ip", node_ip, "--address", node_ip, "--port", "10250",
                "--container-runtime-endpoint", f"unix://{shim.socket}", "--root-dir", str(base / "kubelet"),
                "--pod-logs-dir", str(base / "pod-logs"), "--resolv-conf", "", "--health-bind-address", health,
                "--metrics-bind-address", "", "--node-status-update-frequency", "2", "-v", "debug"],
                base / "kubelet.log")
            wait_until(lambda: health_serving(health), 60, "kubelet", kubelet.proc, base / "kubelet.log")
            cs.resource(core_pb2.Namespace).create(core_pb2.Namespace(metadata={"name": namespace}))
            pods = cs.resource(core_pb2.Pod, namespace)
            pods.create(pod("counter", name, [container("counter", COUNTER, volumeMounts=[
                {"name": "data", "mountPath": "/data"}])], volumes=[{"name": "data", "emptyDir": {}}]))
            pods.create(pod("waiter", name, [container("waiter", WAITER)], restartPolicy="Never"))
            pods.create(pod("busy", name, [container("busy", BUSY, resources={
                "limits": {"cpu": "100m", "memory": "128Mi"}})]))
            pods.create(pod("shell", name, [container("main", SLEEP), container("side", SLEEP)]))
            pods.create(pod("echoer", name, [container("echoer", ECHOER, stdin=True)]))
            pods.create(pod("ticker", name, [container("ticker", TICKER)]))
            pods.create(pod("done", name, [container("done", "true")], restartPolicy="Never"))
            yield Node(name, node_ip, namespace, apiserver.target, cs)
        finally:
            _teardown(cs, namespace, name, kubelet)
            if shim is not None:
                shim.cleanup()
            subprocess.run(["ip", "link", "delete", link], capture_output=True)
            cs.close()
            import shutil
            shutil.rmtree(base, ignore_errors=True)


def _teardown(cs: SyncClientset, namespace: str, node: str, kubelet: ManagedProcess | None) -> None:
    pods = cs.resource(core_pb2.Pod, namespace)
    try:
        for p in pods.list().items:
            pods.delete(p.metadata.name)
        if kubelet is not None and kubelet.proc.poll() is None:  # let the kubelet stop them gracefully
            deadline = time.monotonic() + 30
            while pods.list().items and time.monotonic() < deadline:
                time.sleep(0.3)
    except StatusError:
        pass
    if kubelet is not None:
        kubelet.stop(30)
    for client, key in ((cs.resource(core_pb2.Node), node),
                        (cs.resource(coordination_pb2.Lease, "kube-node-lease"), node),
                        (cs.resource(core_pb2.Namespace), namespace)):
        try:
            client.delete(key)
        except StatusError:
            pass


def running(p: core_pb2.Pod) -> bool:
    return p.status.phase == "Running" and all(c.state.HasField("running") for c in p.status.containerStatuses) \
        and bool(p.status.containerStatuses)


# ---------------------------------------------------------------- logs


def test_logs_tail_timestamps_previous_and_a_workloads_pod(node: Node) -> None:
    def restarted() -> bool:
        p = node.pod("counter")
        return running(p) and p.status.containerStatuses[0].restartCount >= 1
    eventually(restarted, "counter restarted once and running")
    current = "run 2\nline-a\nline-b\nline-c\n"
    eventually(lambda: node.cli("logs", "counter").output == current, "the second run's log")
    assert node.cli("logs", "counter", "--tail", "2").stdout == "line-b\nline-c\n"
    assert node.cli("logs", "pod/counter", "--previous").stdout == "run 1\nline-a\nline-b\nline-c\n"
    stamped = node.cli("logs", "counter", "--timestamps", "--tail", "1").stdout
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d) line-c\n", stamped), stamped
    assert node.cli("logs", "counter", "--limit-bytes", "3").stdout == "run"
    # A Deployment's pod (no controller runs here: only its selector matters).
    node.cs.resource(apps_pb2.Deployment, node.namespace).create(from_dict(apps_pb2.Deployment, {
        "metadata": {"name": "counters"}, "spec": {"selector": {"matchLabels": {"app": "counter"}}, "template": {
            "metadata": {"labels": {"app": "counter"}}, "spec": {"containers": [{"name": "c", "image": BUSYBOX}]}}}}))
    assert node.cli("logs", "deployment/counters").stdout == current
    wrong = node.cli("logs", "counter", "-c", "nope")
    assert wrong.exit_code == 1
    assert "Error from server (BadRequest): container nope is not valid for pod counter" in wrong.output
    missing = node.cli("logs", "no-such-pod")
    assert missing.exit_code == 1 and 'pods "no-such-pod" not found' in missing.output


def test_logs_follow_ends_when_the_container_stops(node: Node) -> None:
    eventually(lambda: running(node.pod("waiter")), "pod waiter running")
    follow = subprocess.Popen([str(SCRIPT), "--server", node.target, "-n", node.namespace, "logs", "-f", "waiter"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert follow.stdout is not None
        assert follow.stdout.readline() == "waiting\n"
        assert follow.poll() is None  # still following a running container
        node.cli("exec", "waiter", "--", "touch", "/tmp/stop")
        rest, err = follow.communicate(timeout=60)  # the timeout only stops a hung test
    finally:
        follow.kill()
        follow.wait()
    assert follow.returncode == 0, err
    assert rest == "stopped\n"


# ---------------------------------------------------------------- exec


def test_exec_passes_stdin_and_returns_the_exit_code(node: Node) -> None:
    eventually(lambda: running(node.pod("shell")), "pod shell running")
    done = run_process(node.target, "-n", node.namespace, "exec", "-i", "shell", "--", "sh", "-c",
                       "cat; echo to-stderr >&2; exit 3", input="hello\nworld\n")
    assert done.returncode == 3, done.stderr
    assert done.stdout == "hello\nworld\n"
    assert 'Defaulted container "main" out of: main, side' in done.stderr
    assert "to-stderr" in done.stderr and "command terminated with exit code 3" in done.stderr

    side = node.cli("exec", "shell", "-c", "side", "--", "sh", "-c", "echo out; echo err >&2; hostname")
    assert side.exit_code == 0 and side.stdout == "out\nshell\n" and side.stderr == "err\n"
    without_stdin = node.cli("exec", "shell", "-c", "main", "--", "sh", "-c", "cat; echo after-eof")
    assert without_stdin.stdout == "after-eof\n"  # no -i: the command's stdin is empty
    no_tty = node.cli("exec", "-t", "shell", "-c", "main", "--", "true")
    assert no_tty.exit_code == 0
    assert "Unable to use a TTY - input is not a terminal or the right kind of file" in no_tty.stderr

    old_form = node.cli("exec", "shell", "ls")
    assert old_form.exit_code == 1 and "Use exec [POD] -- [COMMAND] instead" in old_form.output
    missing = node.cli("exec", "shell", "-c", "main", "--", "/no/such/binary")
    assert missing.exit_code != 0


def _set_size(fd: int, rows: int, columns: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def _read_until(master: int, wanted: str, seen: bytearray, poke: bytes = b"") -> None:
    """Read the terminal until `wanted` shows, writing `poke` again each
    time it stays quiet."""
    deadline = time.monotonic() + 60  # only stops a hung test
    while wanted.encode() not in seen:
        assert time.monotonic() < deadline, f"no {wanted!r} in {bytes(seen)!r}"
        if select.select([master], [], [], 0.5)[0]:
            seen.extend(os.read(master, 4096))
        elif poke:
            os.write(master, poke)


def test_exec_on_a_terminal_follows_its_size(node: Node) -> None:
    # The size kubelab sends right after the start is not checked here: the
    # shim can lose a resize that arrives while `runc exec -t` starts up.
    # Once the command runs, every change of this terminal's size reaches it.
    eventually(lambda: running(node.pod("shell")), "pod shell running")
    master, slave = pty.openpty()
    _set_size(slave, 33, 101)
    script = 'echo ready; while read line; do [ "$line" = quit ] && exit 7; stty size; done'
    shell = subprocess.Popen([str(SCRIPT), "--server", node.target, "-n", node.namespace, "exec", "-it", "shell",
                              "-c", "main", "--", "sh", "-c", script], stdin=slave, stdout=slave, stderr=slave,
                             cwd=REPO)
    os.close(slave)
    seen = bytearray()
    try:
        _read_until(master, "ready\r\n", seen)  # a terminal: \n became \r\n in the container's pty
        _set_size(master, 40, 120)
        shell.send_signal(signal.SIGWINCH)  # what the kernel sends the terminal's foreground process
        _read_until(master, "40 120", seen, poke=b"again\n")
        os.write(master, b"quit\n")
        assert shell.wait(timeout=60) == 7  # the timeout only stops a hung test
    finally:
        shell.kill()
        shell.wait()
        os.close(master)


# ---------------------------------------------------------------- top


def _cells(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()]


def test_top_pods_and_nodes_report_usage(node: Node) -> None:
    eventually(lambda: running(node.pod("busy")), "pod busy running")

    def busy_row() -> list[str]:
        rows = _cells(node.cli("top", "pod", "busy").stdout)
        assert rows[0] == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
        return rows[1]
    # CPU is a rate between two of the runtime's samples: the first can read 0m.
    eventually(lambda: int(busy_row()[1].removesuffix("m")) > 0, "busy's CPU above 0m")
    name, cpu, memory = busy_row()
    assert name == "busy" and cpu.endswith("m") and memory.endswith("Mi")
    assert int(memory.removesuffix("Mi")) >= 10  # it holds a 20 MB string

    every = _cells(node.cli("top", "pods", "--containers").stdout)
    assert every[0] == ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert ["shell", "side"] in [row[:2] for row in every] and ["busy", "busy"] in [row[:2] for row in every]
    everywhere = _cells(node.cli("top", "pods", "-A").stdout)
    assert everywhere[0] == ["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert [node.namespace, "busy"] in [row[:2] for row in everywhere]

    def node_row() -> list[str]:
        rows = _cells(node.cli("top", "node", node.name).stdout)
        assert rows[0] == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
        return rows[1]
    eventually(lambda: int(node_row()[1].removesuffix("m")) > 0, "the node's CPU above 0m")
    row = node_row()
    assert row[0] == node.name and int(row[3].removesuffix("Mi")) >= 10
    assert row[2].endswith("%") and row[4].endswith("%")


async def test_the_hpa_metrics_source_reads_the_same_summaries(node: Node, client: Clientset) -> None:
    eventually(lambda: running(node.pod("busy")), "pod busy running")
    pods = (await client.resource(core_pb2.Pod, node.namespace).list()).items

    class Listed:  # the controller passes its informer's lister; these are the same objects
        def list(self, namespace: str | None = None, selector: Selector | None = None) -> list[core_pb2.Pod]:
            return [p for p in pods if p.metadata.namespace == namespace
                    and (selector is None or selector.matches(p.metadata.labels))]

    source = KubeletMetricsSource(NodeProxyClient(client), Listed())
    selector = Selector.everything()
    memory = await source.pod_usage(node.namespace, selector, "memory")
    assert memory["busy"].value >= 10 * 1024 * 1024 * 1000  # working set in bytes x 1000
    deadline = time.monotonic() + 60
    while (cpu := await source.pod_usage(node.namespace, selector, "cpu"))["busy"].value == 0:
        assert time.monotonic() < deadline, "busy's CPU stayed at 0"
    assert cpu["busy"].timestamp > 0


# ---------------------------------------------------------------- run


def test_run_creates_the_pod_kubectl_would_and_it_runs(node: Node) -> None:
    created = node.cli("run", "hello", f"--image={BUSYBOX}", "--image-pull-policy", "Never", "--restart", "Never",
                       "--env", "GREETING=hi", "--port", "8080", "--", "sh", "-c", "echo $GREETING from $HOSTNAME")
    assert created.exit_code == 0 and created.stdout == "pod/hello created\n"
    p = node.pod("hello")
    assert dict(p.metadata.labels) == {"run": "hello"}
    [c] = p.spec.containers
    assert (c.name, c.image, list(c.command), list(c.args)) == (
        "hello", BUSYBOX, [], ["sh", "-c", "echo $GREETING from $HOSTNAME"])
    assert [(e.name, e.value) for e in c.env] == [("GREETING", "hi")]
    assert [port.containerPort for port in c.ports] == [8080] and p.spec.restartPolicy == "Never"
    node.cs.run(node.cs.clientset.resource(core_pb2.Pod, node.namespace).bind("hello", node.name))  # the scheduler's
    eventually(lambda: node.pod("hello").status.phase == "Succeeded", "pod hello Succeeded")
    assert node.cli("logs", "hello").stdout == "hi from hello\n"


def bind_when_created(node: Node, name: str) -> threading.Thread:
    """Bind pod `name` to the node once it exists, as the scheduler would
    (none runs here), from a thread: `run -i` waits for its pod to run."""
    def bind() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                node.cs.run(node.cs.clientset.resource(core_pb2.Pod, node.namespace).bind(name, node.name))
                return
            except StatusError:
                time.sleep(0.1)
    thread = threading.Thread(target=bind, daemon=True)
    thread.start()
    return thread


def gone(node: Node, name: str) -> bool:
    try:
        node.pod(name)
    except StatusError as err:
        return err.reason == "NotFound"
    return False


def test_run_attached_passes_stdin_returns_the_exit_code_and_removes_the_pod(node: Node) -> None:
    bind_when_created(node, "once")
    done = run_process(node.target, "-n", node.namespace, "run", "once", f"--image={BUSYBOX}",
                       "--image-pull-policy", "Never", "--restart", "Never", "-i", "--rm", "--",
                       "sh", "-c", 'read a; echo "got $a"; if read b; then echo "more $b"; fi; echo oops >&2; exit 3',
                       input="hello\n", timeout=120)
    # The container's stdin ended with ours (stdinOnce): its second read saw EOF.
    assert done.returncode == 3, done.stderr
    assert done.stdout == 'got hello\npod "once" deleted\n'
    assert "oops\n" in done.stderr and f"pod {node.namespace}/once terminated (Error)" in done.stderr
    eventually(lambda: gone(node, "once"), "pod once deleted")


def test_run_it_gives_the_container_this_terminal(node: Node) -> None:
    bind_when_created(node, "term")
    master, slave = pty.openpty()
    _set_size(slave, 33, 101)
    shell = subprocess.Popen([str(SCRIPT), "--server", node.target, "-n", node.namespace, "run", "term",
                              f"--image={BUSYBOX}", "--image-pull-policy", "Never", "--restart", "Never", "-it",
                              "--rm", "--", "sh"], stdin=slave, stdout=slave, stderr=slave, cwd=REPO)
    os.close(slave)
    seen = bytearray()
    try:
        _read_until(master, "If you don't see a command prompt, try pressing enter.", seen)
        # The size goes before any input: the container's terminal has it at once.
        os.write(master, b"stty size; tty; exit 4\n")
        _read_until(master, f"pod {node.namespace}/term terminated (Error)", seen)  # after the pod's deletion
        assert shell.wait(timeout=60) == 4  # the timeout only stops a hung test
    finally:
        shell.kill()
        shell.wait()
        os.close(master)
    assert b"33 101" in seen and b"/dev/pts/0" in seen and b'pod "term" deleted' in seen
    eventually(lambda: gone(node, "term"), "pod term deleted")


def test_attach_reaches_the_containers_own_process(node: Node) -> None:
    eventually(lambda: running(node.pod("echoer")), "pod echoer running")
    talked = run_process(node.target, "-n", node.namespace, "attach", "-i", "echoer", input="one\ntwo\nquit\n")
    # Not stdinOnce: our EOF leaves its stdin open; "quit" ends the process and the session.
    assert talked.returncode == 0, talked.stderr
    assert talked.stdout == "echo one\necho two\n"
    eventually(lambda: running(node.pod("echoer")) and node.pod("echoer").status.containerStatuses[0].restartCount == 1,
               "echoer restarted")

    eventually(lambda: running(node.pod("ticker")), "pod ticker running")
    watching = subprocess.Popen([str(SCRIPT), "--server", node.target, "-n", node.namespace, "attach", "ticker"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert watching.stdout is not None
        assert [watching.stdout.readline(), watching.stdout.readline()] == ["tick\n", "tick\n"]
    finally:
        watching.kill()
        watching.wait()

    wrong = node.cli("attach", "ticker", "-c", "nope")
    assert wrong.exit_code == 1 and "error: container nope is not valid for pod ticker" in wrong.output, wrong.output
    no_stdin = node.cli("attach", "-i", "shell", "-c", "main")
    assert no_stdin.exit_code == 1
    assert 'container "main" in pod "shell" does not keep stdin open' in no_stdin.output
    eventually(lambda: node.pod("done").status.phase == "Succeeded", "pod done Succeeded")
    completed = node.cli("attach", "done")
    assert completed.exit_code == 1
    assert "cannot attach a container in a completed pod; current phase is Succeeded" in completed.output
