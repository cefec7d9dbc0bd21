"""The lab as the e2e tests see it: a running `kubelab up` and ways in.

* `Lab.start()` brings up a lab of its own (a fresh prefix, a state
  directory under the session's tmp, three nodes, one proxy mode) with
  deploy.lab.up, which `kubelab up` runs; `Lab.stop()` is deploy.lab.down,
  safe to call twice. `up` removes what it made itself when it fails half
  way, so a failed start leaves nothing to stop.
* `kubelab(...)` runs the real CLI as a process against the lab's
  apiserver socket, as a user would; `clientset` is the client library,
  for polling without a process per poll.
* `fetch(node, url)` sends one HTTP request from inside a node's network
  namespace (busybox wget under `timeout`, through nsenter), the only way
  the host reaches pod and Service addresses: lab traffic never crosses the
  root namespace.
* `node_component_pid(node, component)` finds one of a node's processes
  (the node-death flow stops its kubelet).

The tests poll with `tests.support.wait.wait_for`, the suite's one blocking
polling loop.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from client import ClientConfig, SyncClientset
from proto import core_pb2
from tests.support.wait import wait_for

REPO = Path(__file__).resolve().parents[2]
NODES = 3

#: Lines the suite prints at the end of the run (pytest's terminal summary):
#: lab start-up times, request distributions.
FIGURES: list[str] = []


class LabStartError(RuntimeError):
    pass



@dataclass
class Lab:
    state_dir: Path
    proxy_mode: str
    prefix: str = field(default_factory=lambda: f"kl-e2e{secrets.token_hex(2)}")
    nodes: list[str] = field(default_factory=list)
    server: str = ""
    controller_manager_args: tuple[str, ...] = ()
    up_seconds: float = 0.0
    _clientset: SyncClientset | None = None

    def __post_init__(self) -> None:
        self.nodes = [f"{self.prefix}-node-{i + 1}" for i in range(NODES)]
        self.server = f"unix://{self.state_dir / 'run' / 'apiserver.sock'}"

    @property
    def control_plane(self) -> str:
        return f"{self.prefix}-cp"

    @property
    def namespaces(self) -> list[str]:
        return [f"{self.prefix}-lab", self.control_plane, *self.nodes]

    # ------------------------------------------------------------ life

    def start(self) -> None:
        from deploy.lab import LabError, up

        began = time.monotonic()
        try:
            up(self.state_dir, nodes=NODES, prefix=self.prefix, proxy_mode=self.proxy_mode,
               config_path=self.state_dir.parent / "config",
               controller_manager_args=self.controller_manager_args)
        except LabError as err:
            raise LabStartError(f"the {self.proxy_mode} lab did not come up: {err}") from None
        self.up_seconds = time.monotonic() - began

    def stop(self) -> None:
        from deploy.lab import down

        if self._clientset is not None:
            self._clientset.close()
            self._clientset = None
        down(self.state_dir, config_path=self.state_dir.parent / "config")

    # ------------------------------------------------------------ the API

    @property
    def clientset(self) -> SyncClientset:
        if self._clientset is None:
            self._clientset = SyncClientset(ClientConfig(server=self.server))
        return self._clientset

    def kubelab(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBELAB_CONFIG": str(self.state_dir.parent / "config")}
        out = subprocess.run([sys.executable, "-m", "kubelab", "--server", self.server, *args], input=input,
                             capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)
        if check and out.returncode != 0:
            raise AssertionError(f"kubelab {' '.join(args)} failed ({out.returncode}):\n{out.stdout}{out.stderr}")
        return out

    def apply(self, namespace: str, *objects: dict[str, Any]) -> None:
        self.kubelab("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects))

    def pods(self, namespace: str, selector: str = "") -> list[core_pb2.Pod]:
        return list(self.clientset.resource(core_pb2.Pod, namespace).list(label_selector=selector).items)

    def running_pods(self, namespace: str, selector: str, count: int, timeout: float = 90.0) -> list[core_pb2.Pod]:
        """Wait until exactly `count` pods match, every one Running and Ready
        and not being deleted; they are returned sorted by name."""
        def ready() -> list[core_pb2.Pod]:
            pods = [p for p in self.pods(namespace, selector) if not p.metadata.deletionTimestamp]
            if len(pods) == count and all(is_ready(p) for p in pods):
                return sorted(pods, key=lambda p: p.metadata.name)
            if len(pods) != count:
                raise AssertionError(f"{len(pods)} pods match {selector!r}, not {count}")
            raise AssertionError("not Ready: " + ", ".join(f"{p.metadata.name} ({p.status.phase})"
                                                        for p in pods if not is_ready(p)))
        return wait_for(ready, f"{count} Ready pods matching {selector!r} in {namespace}", timeout)

    # ------------------------------------------------------------ the network

    def in_node(self, node: str, *argv: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["nsenter", f"--net=/run/netns/{node}", "--", *argv], capture_output=True,
                              text=True, timeout=timeout + 5)

    def fetch(self, node: str, url: str, timeout: float = 10.0) -> tuple[bool, str]:
        """One HTTP GET from `node`'s namespace: (succeeded, body or error)."""
        out = self.in_node(node, "timeout", str(int(timeout)), "busybox", "wget", "-qO-", url, timeout=timeout)
        if out.returncode == 0:
            return True, out.stdout
        return False, f"exit {out.returncode}: {out.stderr.strip() or 'no answer'}"

    # ------------------------------------------------------------ processes

    def node_component_pid(self, node: str, component: str) -> int:
        """The pid of one of a node's components (`kubelab join` runs them
        with the node's state directory in their command line)."""
        node_dir = str(self.state_dir / "nodes" / node)
        for pid, argv in _processes():
            if len(argv) > 2 and argv[1:3] == ["-m", component] and any(node_dir in a for a in argv):
                return pid
        raise LookupError(f"no {component} process for node {node}")

    def summary(self) -> dict[str, object]:
        return {"prefix": self.prefix, "proxy_mode": self.proxy_mode, "state_dir": str(self.state_dir),
                "up_seconds": round(self.up_seconds, 1)}

    def __repr__(self) -> str:
        return f"Lab({json.dumps(self.summary())})"


def _processes() -> Iterator[tuple[int, list[str]]]:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            raw = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        yield int(proc.name), [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]]


def is_ready(pod: core_pb2.Pod) -> bool:
    return pod.status.phase == "Running" and any(
        c.type == "Ready" and c.status == "True" for c in pod.status.conditions)
