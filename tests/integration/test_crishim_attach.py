"""The CRI shim's Attach against real runc containers: stdin through the
monitor's pipe with stdin_once closing it after the first session, a tty
with its size set by resize, several clients at once on a container whose
stdin stays open, the exit code at the end of the stream, a container with
a bundle path longer than an AF_UNIX path, and the refusals (stdin on a
container created without it, a container that is not running)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from proto import cri_pb2
from tests.support.crishim import (
    Attached,
    Shim,
    container_config,
    pod_sandbox,
    require_tools,
    run,
    scratch_netns,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.skipif(require_tools() is not None, reason=str(require_tools()))]


@pytest.fixture(scope="module")
def shim() -> Iterator[Shim]:
    with scratch_netns() as netns:
        # A long state directory: every bundle path is then longer than the
        # 107 bytes an AF_UNIX socket path may have (console and attach
        # sockets live in the bundle).
        top = Path(tempfile.mkdtemp(prefix="crishim-attach-"))
        running = Shim(netns, top / ("deep" * 8))
        try:
            yield running.start()
        finally:
            running.cleanup()
            shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def sandbox(shim: Shim, request: pytest.FixtureRequest) -> Iterator[tuple[str, cri_pb2.PodSandboxConfig]]:
    with pod_sandbox(shim, request.node.name) as made:
        yield made


def test_stdin_once_closes_the_containers_stdin_after_the_first_session(
        shim: Shim, sandbox: tuple[str, cri_pb2.PodSandboxConfig]) -> None:
    script = 'read a; echo "got $a"; if read b; then echo "more $b"; else echo eof >&2; fi; exit 4'
    cid = run(shim, sandbox, container_config("once", ["sh", "-c", script], stdin=True, stdin_once=True))
    session = Attached(shim, cid, stdin=True)
    try:
        session.send(b"hello\n")
        wait_for(lambda: b"got hello\n" in session.stdout, "the container's answer")
        session.close_stdin()
        wait_for(session.ended, "the stream to end with the container")
    finally:
        session.detach()
    assert (bytes(session.stdout), bytes(session.stderr), session.exit_codes, session.error) == \
        (b"got hello\n", b"eof\n", [4], None)
    logged = Path(shim.runtime.ContainerStatus(cri_pb2.ContainerStatusRequest(container_id=cid)).status.log_path)
    text = logged.read_text()
    assert " stdout F got hello" in text and " stderr F eof" in text


def test_a_tty_container_is_resized_and_keeps_its_terminal(
        shim: Shim, sandbox: tuple[str, cri_pb2.PodSandboxConfig]) -> None:
    cid = run(shim, sandbox, container_config("term", ["sh"], stdin=True, stdin_once=True, tty=True))
    session = Attached(shim, cid, stdin=True, tty=True)
    try:
        session.resize(93, 21)
        session.send(b"stty size; tty; exit 5\n")
        wait_for(session.ended, "the shell to exit")
    finally:
        session.detach()
    assert b"21 93" in session.stdout and b"/dev/pts/" in session.stdout
    assert session.stderr == b"" and session.exit_codes == [5]


def test_clients_share_the_output_and_stdin_stays_open_without_stdin_once(
        shim: Shim, sandbox: tuple[str, cri_pb2.PodSandboxConfig]) -> None:
    cid = run(shim, sandbox, container_config("echoer", ["sh", "-c", 'while read l; do echo "echo $l"; done; exit 9'],
                                              stdin=True))
    first, second, third = Attached(shim, cid, stdin=True), None, None
    try:
        first.send(b"a\n")
        wait_for(lambda: b"echo a\n" in first.stdout, "the first client's line")
        second = Attached(shim, cid, stdin=True)
        second.send(b"b\n")
        second.close_stdin()          # not stdin_once: the container's stdin stays open
        wait_for(lambda: b"echo b\n" in second.stdout and b"echo b\n" in first.stdout, "both to see the line")
        second.detach()
        third = Attached(shim, cid, stdin=True)
        third.send(b"c\n")
        wait_for(lambda: b"echo c\n" in first.stdout and b"echo c\n" in third.stdout, "the third client's line")
        shim.runtime.StopContainer(cri_pb2.StopContainerRequest(container_id=cid, timeout=1))  # sh is PID 1
        wait_for(lambda: first.ended() and third.ended(), "the streams to end")
    finally:
        for session in (first, second, third):
            if session is not None:
                session.detach()
    assert first.stdout == b"echo a\necho b\necho c\n" and b"echo a" not in second.stdout
    assert len(first.exit_codes) == 1 and first.exit_codes == third.exit_codes


def test_attach_refuses_what_cannot_work(shim: Shim, sandbox: tuple[str, cri_pb2.PodSandboxConfig]) -> None:
    cid = run(shim, sandbox, container_config("plain", ["sh", "-c", "while :; do echo tick; sleep 0.2; done"]))
    session = Attached(shim, cid, stdin=True)
    wait_for(session.ended, "the refusal")
    assert session.error is not None and session.error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "was not created with stdin" in str(session.error.details()) and '"plain"' in str(session.error.details())

    done = run(shim, sandbox, container_config("done", ["true"]))
    wait_for(lambda: shim.runtime.ContainerStatus(cri_pb2.ContainerStatusRequest(container_id=done)).status.state
             == cri_pb2.CONTAINER_EXITED, "the container to exit")
    late = Attached(shim, done)
    wait_for(late.ended, "the refusal")
    assert late.error is not None and late.error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not running" in str(late.error.details())

    # Output only, on a container without stdin: its output arrives.
    watcher = Attached(shim, cid)
    try:
        wait_for(lambda: watcher.stdout.count(b"tick\n") >= 2, "the container's output")
    finally:
        watcher.detach()
    assert set(bytes(watcher.stdout).splitlines()) == {b"tick"} and watcher.error is None
