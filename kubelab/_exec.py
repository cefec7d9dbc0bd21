"""`kubelab exec`: run a command in a running container.

As `kubectl exec` does, through the apiserver (pods/exec) to the kubelet
and the runtime: `-i` sends this process's stdin to the command (EOF
closes the command's stdin), `-t` gives it a terminal - this terminal is
put in raw mode for the duration, so keys such as Ctrl-C reach the command,
and its size follows this window's (SIGWINCH). Without a terminal on stdin
`-t` is dropped with kubectl's warning. The command's exit code becomes
kubelab's, with kubectl's "command terminated with exit code N" on stderr.

The command comes after `--` (`kubelab exec web -- ls /`); the old form
without `--` is refused as kubectl refuses it. If the stream breaks before
the command's exit code arrives, that is an error (exit 1): the command's
fate is unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from ._logs import default_container, select_pod
from ._session import CLIError, Session, echo, global_options

if TYPE_CHECKING:
    from client import Clientset, ExecSession

TTY_WARNING = "Unable to use a TTY - input is not a terminal or the right kind of file"


class DashCommand(click.Command):
    """A command that remembers how many arguments followed `--`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["kubelab.after_dash"] = len(args) - args.index("--") - 1 if "--" in args else None
        return super().parse_args(ctx, args)


def split_command(args: tuple[str, ...], after_dash: int | None) -> tuple[str, list[str]]:
    """(target, command) from `POD -- CMD ARGS...`."""
    if not args:
        raise click.UsageError("expected 'exec (POD | TYPE/NAME) -- COMMAND [args...]': POD or TYPE/NAME is a "
                               "required argument for the exec command")
    if after_dash is None:
        if len(args) > 1:
            raise CLIError(f"exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead: "
                           f"kubelab exec {args[0]} -- {' '.join(args[1:])}")
        raise CLIError("you must specify at least one command for the container")
    before = args[:len(args) - after_dash]
    if len(before) != 1:
        raise CLIError(f"expected exactly one POD or TYPE/NAME before --, got {len(before)}: {' '.join(before)}")
    command = list(args[len(before):])
    if not command:
        raise CLIError("you must specify at least one command for the container")
    return before[0], command


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """The terminal in raw mode, restored however the block ends."""
    import termios
    import tty
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSANOW)  # not TCSAFLUSH: keys typed ahead still reach the command
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _read_stdin(source: int | BinaryIO, loop: asyncio.AbstractEventLoop,
                queue: asyncio.Queue[bytes | None]) -> None:
    """In a daemon thread (a blocked read must not keep kubelab alive once
    the command has ended): stdin to the queue, None at EOF. A file
    descriptor is read with os.read, not through sys.stdin's buffer, whose
    lock a blocked read would hold while the interpreter shuts down."""
    read: Callable[[int], bytes] = (functools.partial(os.read, source) if isinstance(source, int)
                                    else getattr(source, "read1", source.read))
    try:
        while True:
            data = read(65536)
            loop.call_soon_threadsafe(queue.put_nowait, data or None)
            if not data:
                return
    except (OSError, ValueError, RuntimeError):  # stdin closed, or the loop is gone
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(queue.put_nowait, None)


async def stream_exec(session: ExecSession, *, stdin: int | BinaryIO | None, stdout: BinaryIO, stderr: BinaryIO,
                      tty_fd: int | None = None) -> int | None:
    """Copy stdin to the command and its output back; the exit code (None
    if the stream ended without one)."""
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    if tty_fd is not None:
        def resized() -> None:
            size = os.get_terminal_size(tty_fd)
            tasks.append(asyncio.create_task(session.resize(size.columns, size.lines)))
        # The first size goes before any input, so the command never reads
        # keys on a terminal of the wrong size.
        size = os.get_terminal_size(tty_fd)
        await session.resize(size.columns, size.lines)
        loop.add_signal_handler(signal.SIGWINCH, resized)
    if stdin is not None:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        threading.Thread(target=_read_stdin, args=(stdin, loop, queue), daemon=True,
                         name="kubelab-exec-stdin").start()

        async def pump() -> None:
            while (data := await queue.get()) is not None:
                await session.send(data)
            await session.close_stdin()
        tasks.append(asyncio.create_task(pump()))
    try:
        async for stream, data in session.output():
            out = stdout if stream == "stdout" else stderr
            out.write(data)
            out.flush()
    finally:
        if tty_fd is not None:
            loop.remove_signal_handler(signal.SIGWINCH)
        for task in tasks:
            task.cancel()
    return session.exit_code


@click.command("exec", cls=DashCommand)
@click.argument("args", nargs=-1)
@click.option("-c", "--container", default="", help="The container (default: the only or first one).")
@click.option("-i", "--stdin", "use_stdin", is_flag=True, help="Pass stdin to the command.")
@click.option("-t", "--tty", is_flag=True, help="Stdin is a TTY: run the command on a terminal.")
@click.option("-q", "--quiet", is_flag=True, help="Print only what the command prints.")
@global_options
def exec_command(args: tuple[str, ...], container: str, use_stdin: bool, tty: bool, quiet: bool) -> int:
    """Execute a command in a container.

    \b
      kubelab exec web -- date                      # in the only (or first) container of pod web
      kubelab exec web -c sidecar -- cat /etc/hosts
      kubelab exec -i web -- sh -c 'cat > /tmp/x' < x
      kubelab exec -it deploy/web -- sh            # an interactive shell in one of web's pods
    """
    target, command = split_command(args, click.get_current_context().meta.get("kubelab.after_dash"))
    fd = _fileno(sys.stdin)
    stdin_source: int | BinaryIO | None = None
    if use_stdin:
        stdin_source = fd if fd is not None else sys.stdin.buffer
    tty_fd: int | None = None
    if tty:
        if use_stdin and fd is not None and os.isatty(fd):
            tty_fd = fd
        elif not quiet:
            echo(TTY_WARNING, err=True)
    session = Session.current()

    async def work(cs: Clientset) -> int | None:
        from client import NodeProxyClient
        pod = await select_pod(cs, target, session.namespace)
        if pod.status.phase in ("Succeeded", "Failed"):
            raise CLIError(f"cannot exec into a container in a completed pod; current phase is {pod.status.phase}")
        name = default_container(pod, container)
        exec_session = NodeProxyClient(cs).exec(pod.metadata.namespace, pod.metadata.name, command, name,
                                                stdin=use_stdin, tty=tty_fd is not None)
        async with exec_session:
            return await stream_exec(exec_session, stdin=stdin_source, stdout=sys.stdout.buffer,
                                     stderr=sys.stderr.buffer, tty_fd=tty_fd)

    with raw_terminal(tty_fd) if tty_fd is not None else contextlib.nullcontext():
        code = session.run(work, bounded=False)
    if code is None:
        raise CLIError("the exec stream ended before the command's exit code arrived")
    if code != 0 and not quiet:
        echo(f"command terminated with exit code {code}", err=True)
    return code


def _fileno(stream: Any) -> int | None:
    try:
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None
