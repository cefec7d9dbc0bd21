"""The node supervisor behind `kubelab join` (deploy/node.py): children
start in order, each ready before the next; one that dies is restarted
after a backoff; one that cannot start stops the join with its log; stop()
ends them all. The children here are small processes that serve the same
gRPC health service a component serves, so the supervision is tested
without touching any network."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from deploy.node import ChildSpec, JoinError, NodeConfig, Supervisor, node_components

CHILD = """
import asyncio, sys
from component_base import HealthServer, SERVING
async def main():
    server = await HealthServer().start(sys.argv[1])
    await server.set("", SERVING)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def child(tmp_path: Path, name: str, *, broken: bool = False) -> ChildSpec:
    health = f"unix://{tmp_path / 'run' / f'{name}.health.sock'}"
    code = "import sys; print('cannot start: no runtime'); sys.exit(3)" if broken else CHILD
    return ChildSpec(name, [sys.executable, "-c", code, health], health, ready_timeout=30)


class Clock:
    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


def test_children_start_in_order_and_a_dead_one_is_restarted_after_a_backoff(tmp_path: Path) -> None:
    said: list[tuple[str, str]] = []
    clock = Clock()
    sup = Supervisor([child(tmp_path, "first"), child(tmp_path, "second")], tmp_path / "logs",
                     say=lambda n, m: said.append((n, m)), clock=clock)
    sup.start()
    try:
        assert [n for n, m in said if m.startswith("ready")] == ["first", "second"]
        first = sup.children[0].proc
        assert first is not None
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        sup.poll()  # noticed: restart scheduled in 1 s
        assert sup.children[0].proc is None and ("first", "exited with code -9; restarting in 1s") in said
        sup.poll()
        assert sup.children[0].proc is None  # not before the backoff
        clock.now += 1.0
        sup.poll()
        restarted = sup.children[0].proc
        assert restarted is not None and restarted.pid != first.pid and sup.children[0].restarts == 1
        assert sup.children[0].backoff == 2.0  # the next crash waits longer
    finally:
        sup.stop()
    assert all(c.proc is None or c.proc.poll() is not None for c in sup.children)


def test_a_child_that_cannot_start_stops_the_join(tmp_path: Path) -> None:
    sup = Supervisor([child(tmp_path, "ok"), child(tmp_path, "broken", broken=True)], tmp_path / "logs",
                     say=lambda n, m: None)
    with pytest.raises(JoinError, match="broken exited with code 3 while starting") as err:
        sup.start()
    assert "cannot start: no runtime" in str(err.value)
    ok = sup.children[0].proc
    assert ok is not None and ok.poll() is not None  # the started one was stopped


def test_a_node_runs_shim_kubelet_proxy_and_pod_network(tmp_path: Path) -> None:
    cfg = NodeConfig("kl-node-1", "unix:///run/api.sock", tmp_path, node_ip="10.200.0.11",
                     registry_config_path="/etc/kubelab/certs.d")
    specs = node_components(cfg)
    assert [s.name for s in specs] == ["crishim", "kubelet", "proxy", "podnetwork"]
    kubelet = specs[1].argv
    assert kubelet[kubelet.index("--container-runtime-endpoint") + 1] == f"unix://{tmp_path}/run/crishim.sock"
    assert kubelet[kubelet.index("--node-ip") + 1] == "10.200.0.11"
    assert [s.name for s in node_components(NodeConfig("n", "s", tmp_path, proxy_mode="none"))] == \
        ["crishim", "kubelet", "podnetwork"]
    hollow = node_components(NodeConfig("hollow", "s", tmp_path, hollow=100))
    assert [s.name for s in hollow] == ["kubelet"] and "--hollow" in hollow[0].argv
