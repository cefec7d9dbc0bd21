"""The kubelet API (proto/kubelet.proto) over a real gRPC unix socket, on a
hollow node: container logs (tail, timestamps, previous, limit, follow),
exec proxied to the runtime, the stats summary, and its errors; and the
CRI log file parser."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from kubelet._logs import LogOptions, parse_line, read_log
from kubelet._server import KubeletServer
from proto import kubelet_pb2, kubelet_pb2_grpc
from tests.support.wait import eventually
from tests.unit.kubelet._harness import HollowNode, container, make_pod


def test_parse_line_and_partial_lines(tmp_path: Path) -> None:
    e = parse_line(b"2024-01-02T03:04:05.123456789Z stderr F hello world\n")
    assert (e.stream, e.full, e.content) == ("stderr", True, b"hello world")
    assert parse_line(b"garbage").content == b"garbage"
    log = tmp_path / "0.log"
    log.write_bytes(b"2024-01-02T03:04:05.1Z stdout P abc\n2024-01-02T03:04:05.2Z stdout F def\n"
                    b"2024-01-02T03:04:06.0Z stdout F second\n")

    async def collect(**kw: object) -> bytes:
        async def running() -> bool:
            return False
        return b"".join([c async for c in read_log(log, LogOptions(**kw), running)])  # type: ignore[arg-type]

    assert asyncio.run(collect()) == b"abcdef\nsecond\n"
    assert asyncio.run(collect(tail_lines=1)) == b"second\n"
    assert asyncio.run(collect(timestamps=True, tail_lines=1)) == b"2024-01-02T03:04:06.0Z second\n"
    assert asyncio.run(collect(limit_bytes=5)) == b"abcde"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[HollowNode, kubelet_pb2_grpc.KubeletStub]]:
    async with HollowNode(hollow=False, root_dir=tmp_path / "root", pod_logs_dir=tmp_path / "logs") as node:
        assert node.agent is not None
        server = await KubeletServer(node.agent.kubelet, node.agent.eviction.stats).start(
            f"unix://{tmp_path}/kubelet.sock")
        channel = grpc.aio.insecure_channel(f"unix://{tmp_path}/kubelet.sock")
        try:
            yield node, kubelet_pb2_grpc.KubeletStub(channel)
        finally:
            await channel.close(None)
            await server.stop(0)


async def test_logs_current_and_previous(served: tuple[HollowNode, kubelet_pb2_grpc.KubeletStub]) -> None:
    node, stub = served
    script = node.runtime.script("app")
    script.logs = ["one", "two", "three"]
    script.run_seconds, script.exit_code = 1, 1
    await node.create(make_pod("p", container("app")))
    await node.advance(0.5)
    script.logs = ["after restart"]  # what the next instance writes
    await node.advance(1)  # the first exits at 1 s and is restarted
    script.run_seconds = None
    await node.advance(2)
    assert node.container_status("p", "app").restartCount == 1

    async def logs(**kw: object) -> bytes:
        req = kubelet_pb2.ContainerLogsRequest(namespace="ns", pod="p", **kw)  # type: ignore[arg-type]
        return b"".join([c.data async for c in stub.ContainerLogs(req)])

    assert await logs() == b"after restart\n"
    assert await logs(previous=True) == b"one\ntwo\nthree\n"
    assert await logs(previous=True, tail_lines=2, has_tail_lines=True) == b"two\nthree\n"
    stamped = await logs(timestamps=True)
    assert stamped.endswith(b"Z after restart\n") and stamped.startswith(b"20")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await logs(container="nope")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "nope" in (err.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ContainerLogs(kubelet_pb2.ContainerLogsRequest(namespace="ns", pod="ghost")).read()
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "ghost" in (err.value.details() or "")


async def test_follow_ends_when_the_container_stops(
        served: tuple[HollowNode, kubelet_pb2_grpc.KubeletStub]) -> None:
    node, stub = served
    node.runtime.script("app").logs = ["hello"]
    await node.create(make_pod("p", container("app"), restart_policy="Never"))
    await node.advance(1)
    call = stub.ContainerLogs(kubelet_pb2.ContainerLogsRequest(namespace="ns", pod="p", follow=True))
    first = await call.read()
    assert first.data == b"hello\n"
    cid = node.runtime.running("p")[0].id
    node.runtime.kill(cid, 0)
    end = await call.read()
    assert end is grpc.aio.EOF  # type: ignore[attr-defined]  # the stream ends once the container stopped
    assert await call.code() == grpc.StatusCode.OK


async def test_exec_is_proxied_to_the_runtime(served: tuple[HollowNode, kubelet_pb2_grpc.KubeletStub]) -> None:
    node, stub = served
    script = node.runtime.script("app")
    script.exec_exit_codes[("ls", "/")] = 3
    script.exec_output = b"bin\netc\n"
    await node.create(make_pod("p", container("app")))
    await node.advance(1)

    async def requests() -> AsyncIterator[kubelet_pb2.ExecRequest]:
        yield kubelet_pb2.ExecRequest(start=kubelet_pb2.ExecTarget(namespace="ns", pod="p", command=["ls", "/"],
                                                                    stdout=True))
        yield kubelet_pb2.ExecRequest(close_stdin=True)

    responses = [r async for r in stub.Exec(requests())]
    assert responses[0].stdout == b"bin\netc\n"
    assert responses[-1].WhichOneof("message") == "exit_code" and responses[-1].exit_code == 3


async def test_attach_is_proxied_to_the_runtime_and_checks_the_spec(
        served: tuple[HollowNode, kubelet_pb2_grpc.KubeletStub]) -> None:
    node, stub = served
    await node.create(make_pod("p", container("app", stdin=True), container("plain")))
    await node.advance(1)

    def attach(name: str, stdin: bool) -> AsyncIterator[kubelet_pb2.AttachRequest]:
        async def requests() -> AsyncIterator[kubelet_pb2.AttachRequest]:
            yield kubelet_pb2.AttachRequest(start=kubelet_pb2.AttachTarget(namespace="ns", pod="p", container=name,
                                                                            stdin=stdin, stdout=True))
            yield kubelet_pb2.AttachRequest(stdin=b"dropped by a hollow process\n")
        return requests()

    app = next(c.id for c in node.runtime.running("p") if c.metadata.name == "app")
    call = asyncio.ensure_future(_collect(stub.Attach(attach("app", True))))
    await eventually(lambda: app in node.runtime.attached, "the runtime's attach to begin", interval=0.01)
    node.runtime.kill(app, 7)   # the hollow process ends: so does the stream
    await node.advance(1)
    responses = await call
    assert [(r.WhichOneof("message"), r.exit_code) for r in responses] == [("exit_code", 7)]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        [r async for r in stub.Attach(attach("plain", True))]
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.details() == ('container "plain" in pod "p" does not keep stdin open (its spec has no stdin: '
                                   "true): cannot attach to its stdin")


async def _collect(call: Any) -> list[Any]:
    return [r async for r in call]


async def test_summary_groups_container_stats_by_pod(
        served: tuple[HollowNode, kubelet_pb2_grpc.KubeletStub]) -> None:
    node, stub = served
    node.runtime.script("a").memory_bytes = 10 * 1024 * 1024
    node.runtime.script("b").memory_bytes = 20 * 1024 * 1024
    await node.create(make_pod("p", container("a"), container("b")))
    await node.advance(1)
    summary = await stub.GetSummary(kubelet_pb2.SummaryRequest())
    assert summary.node.node_name == "node-1"
    (pod,) = summary.pods
    assert pod.pod_ref.name == "p" and {c.name for c in pod.containers} == {"a", "b"}
    assert pod.memory.working_set_bytes == 30 * 1024 * 1024
    assert summary.node.memory.working_set_bytes == 30 * 1024 * 1024
    assert summary.node.fs.capacity_bytes > 0
