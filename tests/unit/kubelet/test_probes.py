"""Probes and hooks: startup, liveness and readiness scripted in the hollow
runtime (timings, thresholds, restarts, ready flags, events), postStart
hooks, and the real HTTP/TCP probe code against loopback servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from api import int_or_string
from kubelet._network import RealNetwork
from kubelet._prober import FAILURE, SUCCESS, Prober, http_request
from proto import core_pb2
from tests.unit.kubelet._harness import HollowNode, container, make_pod


def _probe(*, period: int = 10, initial: int = 0, failure: int = 3, success: int = 1, path: str = "/healthz",
           port: int | str = 8080) -> core_pb2.Probe:
    p = core_pb2.Probe(periodSeconds=period, initialDelaySeconds=initial, failureThreshold=failure,
                       successThreshold=success, timeoutSeconds=1)
    p.httpGet.path = path
    p.httpGet.port.CopyFrom(int_or_string(port))
    return p


async def test_readiness_drives_ready_flag_and_conditions() -> None:
    async with HollowNode() as node:
        c = container("web", readinessProbe=_probe(period=5, initial=10, success=2))
        c.ports.add(name="http", containerPort=8080)
        script = node.runtime.script("web")
        await node.create(make_pod("p", c))
        await node.advance(8)
        assert not node.container_status("p", "web").ready  # before initialDelaySeconds
        assert node.condition("p", "Ready").status == "False"
        assert node.condition("p", "Ready").reason == "ContainersNotReady"
        await node.advance(12)  # two successes in a row
        assert node.container_status("p", "web").ready
        assert node.condition("p", "Ready").status == "True"
        assert node.condition("p", "ContainersReady").status == "True"
        script.http_status["/healthz"] = 503
        await node.advance(16)  # three failures
        assert not node.container_status("p", "web").ready
        assert node.condition("p", "Ready").status == "False"
        assert node.container_status("p", "web").restartCount == 0  # readiness never restarts
        assert node.status("p").phase == "Running"


async def test_liveness_failure_kills_and_restarts() -> None:
    async with HollowNode() as node:
        probe = _probe(period=2, failure=3)
        probe.ClearField("httpGet")
        probe.tcpSocket.port.CopyFrom(int_or_string(6379))
        c = container("db", livenessProbe=probe)
        script = node.runtime.script("db")
        await node.create(make_pod("p", c))
        await node.advance(5)
        assert node.container_status("p", "db").restartCount == 0
        script.tcp_open = False
        await node.advance(10)
        cs = node.container_status("p", "db")
        assert cs.restartCount == 1
        killing = [e.message for e in node.events("Killing")]
        assert any("failed liveness probe, will be restarted" in m for m in killing)
        unhealthy = node.events("Unhealthy")
        assert unhealthy and "Liveness probe failed" in unhealthy[0].message
        script.tcp_open = True
        await node.advance(30)
        assert node.container_status("p", "db").restartCount == 1
        assert node.container_status("p", "db").state.HasField("running")


async def test_liveness_failure_with_never_leaves_container_terminated() -> None:
    async with HollowNode() as node:
        probe = _probe(period=1, failure=1)
        node.runtime.script("app").http_default = 500
        await node.create(make_pod("p", container("app", livenessProbe=probe), restart_policy="Never"))
        await node.advance(5)
        cs = node.container_status("p", "app")
        assert cs.restartCount == 0 and cs.state.HasField("terminated")
        assert node.status("p").phase == "Failed"


async def test_startup_probe_holds_liveness_and_readiness() -> None:
    async with HollowNode() as node:
        startup = _probe(period=1, failure=30, path="/started")
        liveness = _probe(period=1, failure=1, path="/alive")
        readiness = _probe(period=1, path="/ready")
        c = container("slow", startupProbe=startup, livenessProbe=liveness, readinessProbe=readiness)
        script = node.runtime.script("slow")
        script.http_status.update({"/started": 500, "/alive": 500})
        await node.create(make_pod("p", c))
        await node.advance(10)
        cs = node.container_status("p", "slow")
        assert not cs.started and not cs.ready and cs.restartCount == 0  # liveness not run yet
        script.http_status.update({"/started": 200, "/alive": 200})
        await node.advance(3)
        cs = node.container_status("p", "slow")
        assert cs.started and cs.ready


async def test_startup_probe_failure_restarts() -> None:
    async with HollowNode() as node:
        startup = _probe(period=1, failure=3)
        node.runtime.script("slow").http_default = 500
        await node.create(make_pod("p", container("slow", startupProbe=startup)))
        await node.advance(6)
        assert node.container_status("p", "slow").restartCount >= 1
        assert any("failed startup probe" in e.message for e in node.events("Killing"))


async def test_exec_probe_uses_exit_code() -> None:
    async with HollowNode() as node:
        probe = core_pb2.Probe(periodSeconds=1, failureThreshold=1, successThreshold=1, timeoutSeconds=1)
        probe.exec.command.extend(["cat", "/tmp/healthy"])
        script = node.runtime.script("app")
        script.exec_exit_codes[("cat", "/tmp/healthy")] = 1
        await node.create(make_pod("p", container("app", readinessProbe=probe)))
        await node.advance(4)
        assert not node.container_status("p", "app").ready
        script.exec_exit_codes[("cat", "/tmp/healthy")] = 0
        await node.advance(3)
        assert node.container_status("p", "app").ready


async def test_post_start_failure_kills_the_container() -> None:
    async with HollowNode() as node:
        c = container("app")
        c.lifecycle.postStart.exec.command.extend(["/hook"])
        script = node.runtime.script("app")
        script.exec_exit_codes[("/hook",)] = 1
        await node.create(make_pod("p", c))
        await node.advance(3)
        assert node.events("FailedPostStartHook")
        assert node.container_status("p", "app").restartCount >= 1
        script.exec_exit_codes[("/hook",)] = 0
        await node.advance(60)
        assert node.container_status("p", "app").state.HasField("running")


async def test_post_start_http_hook_by_port_name() -> None:
    async with HollowNode() as node:
        c = container("app")
        c.ports.add(name="admin", containerPort=9000)
        c.lifecycle.postStart.httpGet.path = "/start"
        c.lifecycle.postStart.httpGet.port.CopyFrom(int_or_string("admin"))
        node.runtime.script("app").http_status["/start"] = 200
        await node.create(make_pod("p", c))
        await node.advance(3)
        assert not node.events("FailedPostStartHook")
        assert node.container_status("p", "app").state.HasField("running")


# ---------------------------------------------------------------- the real network code


@pytest.fixture
async def http_server() -> AsyncIterator[tuple[int, list[bytes]]]:
    requests: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        requests.append(head)
        path = head.split(b" ")[1]
        code = {b"/ok": b"200 OK", b"/redirect": b"302 Found", b"/slow": None}.get(path, b"500 Oops")
        if code is None:
            await asyncio.sleep(5)
            code = b"200 OK"
        writer.write(b"HTTP/1.1 " + code + b"\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port, requests
    server.close()
    await server.wait_closed()


def _http_probe(path: str, port: int | str, *, host: str = "", headers: dict[str, str] | None = None,
                timeout: int = 1) -> core_pb2.Probe:
    p = core_pb2.Probe(timeoutSeconds=timeout)
    p.httpGet.path, p.httpGet.host, p.httpGet.scheme = path, host, "HTTP"
    p.httpGet.port.CopyFrom(int_or_string(port))
    for name, value in (headers or {}).items():
        p.httpGet.httpHeaders.add(name=name, value=value)
    return p


async def test_real_http_probe(http_server: tuple[int, list[bytes]]) -> None:
    port, requests = http_server
    prober = Prober(runtime=None, network=RealNetwork())  # type: ignore[arg-type]
    pod = make_pod("p")
    c = container("web")
    c.ports.add(name="http", containerPort=port)
    assert (await prober.probe(_http_probe("/ok", "http", headers={"X-Probe": "1"}), pod, c, "id", "127.0.0.1"))[0] \
        == SUCCESS
    assert b"X-Probe: 1" in requests[-1] and b"User-Agent: kube-probe/" in requests[-1]
    assert (await prober.probe(_http_probe("/redirect", port), pod, c, "id", "127.0.0.1"))[0] == SUCCESS
    result, message = await prober.probe(_http_probe("/bad", port), pod, c, "id", "127.0.0.1")
    assert result == FAILURE and "500" in message
    result, message = await prober.probe(_http_probe("/slow", port, host="127.0.0.1"), pod, c, "id", "10.9.9.9")
    assert result == FAILURE and "timed out" in message
    result, message = await prober.probe(_http_probe("/ok", "nope"), pod, c, "id", "127.0.0.1")
    assert result == FAILURE and "no port named 'nope'" in message


async def test_real_tcp_probe(http_server: tuple[int, list[bytes]]) -> None:
    port, _ = http_server
    prober = Prober(runtime=None, network=RealNetwork())  # type: ignore[arg-type]
    pod, c = make_pod("p"), container("db")
    p = core_pb2.Probe(timeoutSeconds=1)
    p.tcpSocket.port.CopyFrom(int_or_string(port))
    assert (await prober.probe(p, pod, c, "id", "127.0.0.1"))[0] == SUCCESS
    sock_server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    closed = sock_server.sockets[0].getsockname()[1]
    sock_server.close()
    await sock_server.wait_closed()
    p.tcpSocket.port.CopyFrom(int_or_string(closed))
    result, _ = await prober.probe(p, pod, c, "id", "127.0.0.1")
    assert result == FAILURE


def test_http_request_builds_url_from_host_scheme_path_port() -> None:
    c = container("web")
    c.ports.add(name="https", containerPort=8443)
    action = core_pb2.HTTPGetAction(path="status", scheme="HTTPS", host="::1")
    action.port.CopyFrom(int_or_string("https"))
    url, headers = http_request(action, c, "10.0.0.5")
    assert url == "https://[::1]:8443/status" and headers == []
