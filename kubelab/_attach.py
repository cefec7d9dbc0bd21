"""`kubelab attach`: attach to the process already running in a container.

As `kubectl attach` does, through the apiserver (pods/attach) to the
kubelet and the runtime: the container's output from now on (what it wrote
before is in `kubelab logs`), with `-i` this process's stdin to the
container's (which needs `stdin: true` in its spec; with `stdinOnce` the
container's stdin closes when this session ends), with `-t` this terminal
in raw mode for a container with a tty. A container without a tty gets
kubectl's "Unable to use a TTY - container X did not allocate one". The
pod is waited for until it runs (--pod-running-timeout); a completed pod
is refused.

`kubelab run -i/-t/--attach` attaches the same way (see kubelab/_run.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from ._exec import TTY_WARNING, _fileno, raw_terminal, stream_exec
from ._logs import default_container, select_pod
from ._session import CLIError, Session, echo, global_options, parse_duration

if TYPE_CHECKING:
    from client import Clientset
    from proto import core_pb2

PROMPT_HINT = "If you don't see a command prompt, try pressing enter."
COMPLETED = ("Succeeded", "Failed")


@dataclass
class Terminal:
    """How this process's streams meet the container's: the stdin to send
    (None: none) and the terminal to put in raw mode (None: none)."""

    stdin: int | BinaryIO | None
    tty_fd: int | None

    @classmethod
    def choose(cls, use_stdin: bool, tty: bool, container_tty: bool, container: str, quiet: bool) -> Terminal:
        fd = _fileno(sys.stdin)
        stdin = (fd if fd is not None else sys.stdin.buffer) if use_stdin else None
        tty_fd = None
        if tty:
            if not container_tty:
                if not quiet:
                    echo(f"error: Unable to use a TTY - container {container} did not allocate one", err=True)
            elif use_stdin and fd is not None and os.isatty(fd):
                tty_fd = fd
            elif not quiet:
                echo(TTY_WARNING, err=True)
        return cls(stdin, tty_fd)

    @contextlib.contextmanager
    def session(self, quiet: bool) -> Iterator[None]:
        """For the attached session: kubectl's hint (the prompt may have
        been printed before the attach), then the terminal in raw mode."""
        if self.tty_fd is None:
            yield
            return
        if not quiet:
            echo(PROMPT_HINT, err=True)
        with raw_terminal(self.tty_fd):
            yield


def container_spec(pod: core_pb2.Pod, name: str) -> Any:
    for c in [*pod.spec.containers, *pod.spec.initContainers]:
        if c.name == name:
            return c
    raise CLIError(f"container {name} is not valid for pod {pod.metadata.name}")


async def wait_for_pod(cs: Clientset, pod: core_pb2.Pod, done: Any, timeout: float) -> core_pb2.Pod:
    """The pod once `done(pod)` holds, following it with a watch; CLIError
    after `timeout` seconds or if it is deleted."""
    from proto import core_pb2
    pods = cs.resource(core_pb2.Pod, pod.metadata.namespace)
    name = pod.metadata.name

    async def follow() -> core_pb2.Pod:
        current = pod
        while not done(current):
            rv = current.metadata.resourceVersion
            async for event in pods.watch(resource_version=rv, field_selector=f"metadata.name={name}"):
                if event.type == "DELETED":
                    raise CLIError(f'pod "{name}" was deleted while waiting for it')
                if event.type in ("ADDED", "MODIFIED"):
                    current = event.object
                    if done(current):
                        return current
            current = await pods.get(name)   # the server ended the watch: read again, go on
        return current

    try:
        return await asyncio.wait_for(follow(), timeout)
    except TimeoutError:
        raise CLIError(f"timed out waiting for the condition on pods/{name}") from None


def running(pod: core_pb2.Pod) -> bool:
    return pod.status.phase in ("Running", *COMPLETED)


async def attach_session(cs: Clientset, pod: core_pb2.Pod, container: str, terminal: Terminal) -> int | None:
    """Attach and stream until the container ends or the input does (with
    stdin_once); the exit code if the container ended meanwhile."""
    from client import NodeProxyClient
    session = NodeProxyClient(cs).attach(pod.metadata.namespace, pod.metadata.name, container,
                                         stdin=terminal.stdin is not None, tty=terminal.tty_fd is not None)
    async with session:
        return await stream_exec(session, stdin=terminal.stdin, stdout=sys.stdout.buffer, stderr=sys.stderr.buffer,
                                 tty_fd=terminal.tty_fd)


def reattach_message(pod: core_pb2.Pod, container: str, terminal: Terminal, quiet: bool) -> str:
    """kubectl's hint after an interactive session on a pod that restarts its containers."""
    if quiet or terminal.stdin is None or terminal.tty_fd is None or pod.spec.restartPolicy != "Always":
        return ""
    return (f"Session ended, resume using 'kubelab attach {pod.metadata.name} -c {container} -i -t' command when "
            "the pod is running")


@click.command("attach")
@click.argument("target")
@click.option("-c", "--container", default="", help="The container (default: the only or first one).")
@click.option("-i", "--stdin", "use_stdin", is_flag=True, help="Pass stdin to the container.")
@click.option("-t", "--tty", is_flag=True, help="Stdin is a TTY.")
@click.option("-q", "--quiet", is_flag=True, help="Only print output from the remote session.")
@click.option("--pod-running-timeout", default="1m0s", show_default=True,
              help="How long to wait until the pod is running.")
@global_options
def attach(target: str, container: str, use_stdin: bool, tty: bool, quiet: bool, pod_running_timeout: str) -> None:
    """Attach to a process that is already running inside an existing container.

    \b
      kubelab attach mypod                      # its output, from now on
      kubelab attach mypod -c ruby-container
      kubelab attach mypod -c ruby-container -i -t   # a raw terminal to the container's shell
      kubelab attach deploy/web                 # one of web's pods
    """
    session = Session.current()
    timeout = parse_duration(pod_running_timeout, "--pod-running-timeout")

    async def work(cs: Clientset) -> None:
        pod = await select_pod(cs, target, session.namespace)
        pod = await wait_for_pod(cs, pod, running, timeout)
        if pod.status.phase in COMPLETED:
            raise CLIError(f"cannot attach a container in a completed pod; current phase is {pod.status.phase}")
        name = default_container(pod, container)
        terminal = Terminal.choose(use_stdin, tty, bool(container_spec(pod, name).tty), name, quiet)
        with terminal.session(quiet):
            await attach_session(cs, pod, name, terminal)
        if message := reattach_message(pod, name, terminal, quiet):
            echo(message)

    session.run(work, bounded=False)
