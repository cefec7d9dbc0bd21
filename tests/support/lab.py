"""A lab with real nodes for integration tests, and the ways a test looks
inside it while `kubelab logs` and `kubelab exec` do not exist yet.

* `NodeLab.start()` is deploy.lab.up with a prefix and a state directory of
  the test's own (so a lab the developer runs is never touched) and
  `stop()` is deploy.lab.down, safe to call twice and after a failed
  start (`up` removes what it made when it fails half way).
* `kubelab(...)` runs the real CLI as a process with KUBELAB_CONFIG naming
  the lab's config, as a user would; `clientset` is the client library, for
  polling without a process per poll.
* `container_log(...)` reads a container's log file where the kubelet had
  the runtime write it (`pod-logs/<ns>_<pod>_<uid>/<container>/<n>.log`,
  CRI format) and returns the text, partial lines joined.
* `in_node(...)` runs a command in a node's network namespace (nsenter
  --net, so the host's mount namespace is kept), `fetch(...)` sends one
  HTTP GET from there: lab traffic never crosses the root namespace.
* `crictl_exec(...)` and `sandboxes(...)` ask a node's CRI shim directly,
  on its socket, what `crictl exec` and `crictl pods` ask.

Tests poll with `tests.support.wait.wait_for`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from client import ClientConfig, SyncClientset
from proto import core_pb2, cri_pb2, cri_pb2_grpc

REPO = Path(__file__).resolve().parents[2]



def read_cri_log(path: Path) -> str:
    """The text of a CRI-format log file (`<time> <stream> <P|F> <text>`
    per line): full lines end with a newline, partial ones (P) do not."""
    out: list[str] = []
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split(" ", 3)
        if len(parts) < 3:
            continue
        text = parts[3] if len(parts) == 4 else ""
        out.append(text if parts[2] == "P" else text + "\n")
    return "".join(out)


@dataclass
class NodeLab:
    state_dir: Path
    prefix: str
    nodes: int = 2
    node_names: list[str] = field(default_factory=list)
    _clientset: SyncClientset | None = None

    def __post_init__(self) -> None:
        from deploy._topology import Topology

        topology = Topology(prefix=self.prefix, nodes=self.nodes)
        self.node_names = [m.name for m in topology.machines[1:]]
        self._addresses = {m.name: m.address for m in topology.machines}

    @property
    def config_path(self) -> Path:
        return self.state_dir.parent / "config"

    @property
    def server(self) -> str:
        return f"unix://{self.state_dir / 'run' / 'apiserver.sock'}"

    def address(self, node: str) -> str:
        """The node's address on the lab network (10.200.0.1x)."""
        return self._addresses[node]

    def node_dir(self, node: str) -> Path:
        return self.state_dir / "nodes" / node

    def manifests_dir(self, node: str) -> Path:
        """The node's static pod directory (the kubelet's --pod-manifest-path)."""
        return self.node_dir(node) / "manifests"

    # ------------------------------------------------------------ life

    def start(self) -> None:
        from deploy.lab import up

        up(self.state_dir, nodes=self.nodes, prefix=self.prefix, config_path=self.config_path)

    def stop(self) -> None:
        from deploy.lab import down

        if self._clientset is not None:
            self._clientset.close()
            self._clientset = None
        down(self.state_dir, config_path=self.config_path)

    # ------------------------------------------------------------ the API

    @property
    def clientset(self) -> SyncClientset:
        if self._clientset is None:
            self._clientset = SyncClientset(ClientConfig(server=self.server))
        return self._clientset

    def kubelab(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBELAB_CONFIG": str(self.config_path)}
        out = subprocess.run([sys.executable, "-m", "kubelab", *args], input=input, capture_output=True, text=True,
                             timeout=timeout, cwd=REPO, env=env)
        if check and out.returncode != 0:
            raise AssertionError(f"kubelab {' '.join(args)} failed ({out.returncode}):\n{out.stdout}{out.stderr}")
        return out

    def pod(self, namespace: str, name: str) -> core_pb2.Pod:
        return self.clientset.resource(core_pb2.Pod, namespace).get(name)

    def pod_exists(self, namespace: str, name: str) -> bool:
        names = [p.metadata.name for p in self.clientset.resource(core_pb2.Pod, namespace).list().items]
        return name in names

    def events(self, namespace: str, name: str) -> list[core_pb2.Event]:
        """The events about the object `name` in `namespace`, oldest first."""
        items = self.clientset.resource(core_pb2.Event, namespace).list().items
        found = [e for e in items if e.involvedObject.name == name]
        return sorted(found, key=lambda e: (e.lastTimestamp or e.firstTimestamp, e.metadata.name))

    def reasons(self, namespace: str, name: str) -> dict[str, list[str]]:
        """Event reason -> the messages of the events with that reason."""
        out: dict[str, list[str]] = {}
        for e in self.events(namespace, name):
            out.setdefault(e.reason, []).append(e.message)
        return out

    # ------------------------------------------------------------ containers

    def pod_logs_dir(self, pod: core_pb2.Pod) -> Path:
        """Where the node keeps the pod's container logs."""
        meta = pod.metadata
        return self.node_dir(pod.spec.nodeName) / "pod-logs" / f"{meta.namespace}_{meta.name}_{meta.uid}"

    def container_log(self, pod: core_pb2.Pod, container: str, restart: int | None = None) -> str:
        """The log of one run of a container (the latest when `restart` is
        None) from the node's pod-logs directory."""
        meta = pod.metadata
        directory = self.pod_logs_dir(pod) / container
        if restart is None:
            runs = sorted(directory.glob("*.log"), key=lambda p: int(p.stem))
            if not runs:
                raise FileNotFoundError(f"no log of container {container} of pod {meta.name} in {directory}")
            return read_cri_log(runs[-1])
        return read_cri_log(directory / f"{restart}.log")

    def _shim(self, node: str) -> str:
        return f"unix://{self.node_dir(node) / 'run' / 'crishim.sock'}"

    def crictl_exec(self, pod: core_pb2.Pod, cmd: list[str], container: str = "") -> cri_pb2.ExecSyncResponse:
        """Run `cmd` in a running container of the pod through its node's
        CRI shim (what `crictl exec` does)."""
        statuses = [s for s in pod.status.containerStatuses if not container or s.name == container]
        if not statuses or not statuses[0].containerID:
            raise AssertionError(f"pod {pod.metadata.name} has no container {container or ''} started yet")
        container_id = statuses[0].containerID.split("://", 1)[1]
        with grpc.insecure_channel(self._shim(pod.spec.nodeName)) as channel:
            return cri_pb2_grpc.RuntimeServiceStub(channel).ExecSync(
                cri_pb2.ExecSyncRequest(container_id=container_id, cmd=cmd, timeout=10), timeout=30)

    def sandboxes(self, node: str, pod_name: str) -> list[cri_pb2.PodSandbox]:
        """The node's sandboxes of pods named `pod_name` (what `crictl pods
        --name` lists)."""
        with grpc.insecure_channel(self._shim(node)) as channel:
            listed = cri_pb2_grpc.RuntimeServiceStub(channel).ListPodSandbox(cri_pb2.ListPodSandboxRequest(),
                                                                             timeout=30)
        return [b for b in listed.items if b.metadata.name == pod_name]

    # ------------------------------------------------------------ the network

    def in_node(self, node: str, *argv: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["nsenter", f"--net=/run/netns/{node}", "--", *argv], capture_output=True, text=True,
                              timeout=timeout + 5)

    def fetch(self, node: str, url: str, timeout: int = 5) -> tuple[bool, str]:
        """One HTTP GET from `node`'s namespace: (succeeded, body or error)."""
        out = self.in_node(node, "timeout", str(timeout), "busybox", "wget", "-qO-", url, timeout=timeout)
        if out.returncode == 0:
            return True, out.stdout
        return False, f"exit {out.returncode}: {out.stderr.strip() or 'no answer'}"
