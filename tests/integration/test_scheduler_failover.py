"""Two scheduler replicas on a real apiserver: they elect a leader on a
Lease, only the leader binds, and when the leader dies without releasing
the Lease the standby takes over within the lease duration and binds the
pods created since. Also the process's command line: `--help`, and a bad
configuration file refused with the place of the mistake."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from client import Clientset
from deploy.local import APIServerProcess, ComponentProcess
from proto import coordination_pb2, core_pb2
from tests.support.wait import eventually

from .test_scheduler import cs, make_node, make_pod  # noqa: F401  (the cs fixture)

LEASE_FLAGS = ("--leader-elect-lease-duration", "2", "--leader-elect-renew-deadline", "1.5",
               "--leader-elect-retry-period", "0.3")


def leading(proc: ComponentProcess) -> bool:
    """Whether the replica reports the "leader" health service as SERVING."""
    with grpc.insecure_channel(f"127.0.0.1:{proc.health_port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="leader"),
                                                              timeout=1)
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture
async def namespace(cs: Clientset) -> AsyncIterator[str]:  # noqa: F811
    name = f"t-{uuid.uuid4().hex[:8]}"
    await cs.resource(core_pb2.Namespace).create(core_pb2.Namespace(metadata={"name": name}))
    yield name


async def test_leader_fail_over(cluster: APIServerProcess, cs: Clientset, namespace: str,  # noqa: F811
                                tmp_path: Path) -> None:
    lease = f"sched-{namespace}"
    flags = ("--leader-elect-resource-name", lease, *LEASE_FLAGS)
    replicas = []
    node_name = f"{namespace}-n"
    pods = cs.resource(core_pb2.Pod, namespace)
    try:
        for i in range(2):
            replicas.append(ComponentProcess("scheduler", cluster.target, log=tmp_path / f"replica-{i}.log",
                                             extra=flags))
        for proc in replicas:
            proc.wait_ready()
        await eventually(lambda: _async(any(leading(p) for p in replicas)), "a leader", 10)
        leaders = [p for p in replicas if leading(p)]
        assert len(leaders) == 1
        leader, standby = leaders[0], next(p for p in replicas if p is not leaders[0])
        holder = (await cs.resource(coordination_pb2.Lease, "kube-system").get(lease)).spec.holderIdentity
        assert holder

        await cs.resource(core_pb2.Node).create(make_node(node_name))
        await pods.create(make_pod("before", namespace=namespace))

        async def bound(name: str) -> bool:
            return bool((await pods.get(name)).spec.nodeName)
        await eventually(lambda: bound("before"), "the leader to bind", 15)
        assert "scheduling pods for profiles" in leader.log.read_text()
        assert "scheduling pods for profiles" not in standby.log.read_text()  # the standby never schedules

        leader.kill()  # no release: the standby must wait out the lease
        killed_at = time.monotonic()
        await pods.create(make_pod("after", namespace=namespace))
        await eventually(lambda: _async(leading(standby)), "the standby to take over", 10)
        took = time.monotonic() - killed_at
        await eventually(lambda: bound("after"), "the new leader to bind", 15)
        assert took <= 2.0 + 1.5  # the lease duration, plus a retry period and process latency
        new_holder = (await cs.resource(coordination_pb2.Lease, "kube-system").get(lease)).spec.holderIdentity
        assert new_holder and new_holder != holder
    finally:
        for proc in replicas:
            proc.stop()
        try:
            await cs.resource(core_pb2.Node).delete(node_name)
        except Exception:
            pass


async def _async(value: bool) -> bool:
    return value


def test_help_and_a_bad_configuration(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "scheduler", "--help"], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    for flag in ("--config", "--leader-elect", "--health-bind-address", "--metrics-bind-address", "--server"):
        assert flag in out
    assert "127.0.0.1:10260" in out and "127.0.0.1:10259" in out
    bad = tmp_path / "config.yaml"
    bad.write_text("profiles:\n- schedulerName: x\n  plugins:\n    filter:\n      enabled: [{name: Nope}]\n")
    result = subprocess.run([sys.executable, "-m", "scheduler", "--config", str(bad), "--server", "127.0.0.1:1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert 'profiles[0].plugins.filter.enabled[0].name: Invalid value: plugin "Nope" does not exist' in result.stderr
