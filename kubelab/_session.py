"""What every command shares: the global flags, the connection, and errors.

kubectl accepts its global flags anywhere on the line (`kubectl get po -n
kube-system` as well as `kubectl -n kube-system get po`), so the same flags
are attached to the group and to every command, and whichever was given
last wins. `Session` turns them into a client configuration once, opens one
gRPC channel per invocation, and runs the command's coroutine under
`asyncio.run` (the clientset is async).

Errors come in two kinds, as in kubectl: the server's refusals
(`api.StatusError`, printed as `Error from server (Reason): ...`, or `The
Kind "name" is invalid: ...` for validation failures) and the client's own
(`CLIError`, printed as `error: ...`). Commands that work through several
objects keep going after a failure, as kubectl does, and report every
failure at the end through `Session.fail`; the exit code is then 1.

A server that is not there fails at once with kubectl's "connection ...
refused" message instead of after the clientset's retries: the channel is
asked to connect first, and a connection that fails is reported as such.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from api import Kind, StatusError
    from client import ClientConfig, Clientset, ResourceClient

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_CONNECT_TIMEOUT = 20.0


class CLIError(Exception):
    """A failure the client itself detected; printed as `error: <message>`."""


@dataclass
class Settings:
    """The global flags as given (None: not given)."""

    server: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    token: str | None = None
    namespace: str | None = None
    request_timeout: str | None = None


def _store(attr: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None:
            setattr(ctx.ensure_object(Settings), attr, value)
        else:
            ctx.ensure_object(Settings)
    return callback


def global_options(f: F) -> F:
    """Attach kubectl's global flags to a command or group."""
    options = [
        click.option("-s", "--server", callback=_store("server"), expose_value=False,
                     help="The address of the apiserver: HOST:PORT or unix:///path."),
        click.option("--kubeconfig", callback=_store("kubeconfig"), expose_value=False,
                     help="Path to the config file (default $KUBELAB_CONFIG or ~/.kubelab/config)."),
        click.option("--context", callback=_store("context"), expose_value=False,
                     help="The config context to use."),
        click.option("--token", callback=_store("token"), expose_value=False,
                     help="Bearer token for authentication to the apiserver."),
        click.option("-n", "--namespace", callback=_store("namespace"), expose_value=False,
                     help="The namespace scope for this request."),
        click.option("--request-timeout", callback=_store("request_timeout"), expose_value=False,
                     help="How long to wait for the server (e.g. 1s, 2m, 3h; 0: no limit)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def parse_duration(text: str, flag: str = "--timeout") -> float:
    """Go's duration syntax ("1m30s", "500ms"), or a bare number of seconds."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise CLIError(f'invalid argument "{text}" for "{flag}" flag: time: invalid duration "{text}"')
    return sum(float(n) * units[u] for n, u in parts)


@dataclass
class Session:
    """One invocation's view of the cluster: configuration and failures."""

    settings: Settings
    failures: list[str] = field(default_factory=list)

    @classmethod
    def current(cls) -> Session:
        ctx = click.get_current_context()
        root = ctx.find_root()
        session = root.meta.get("kubelab.session")
        if session is None:
            session = cls(ctx.ensure_object(Settings))
            root.meta["kubelab.session"] = session
        return session  # type: ignore[no-any-return]

    # ------------------------------------------------------------ configuration

    @cached_property
    def config(self) -> ClientConfig:
        from client import ConfigError, load_config
        try:
            config = load_config(self.settings.kubeconfig, self.settings.context or "")
        except ConfigError as err:
            raise CLIError(str(err)) from None
        return config.with_overrides(server=self.settings.server, token=self.settings.token)

    @property
    def namespace(self) -> str:
        """-n, else the context's namespace, else "default"."""
        return self.settings.namespace or self.config.namespace or "default"

    @property
    def namespace_explicit(self) -> bool:
        """Whether -n was given: only then must a manifest's namespace agree."""
        return self.settings.namespace is not None

    @property
    def request_timeout(self) -> float | None:
        raw = self.settings.request_timeout
        if raw is None:
            return None
        seconds = parse_duration(raw, "--request-timeout")
        return seconds or None

    # ------------------------------------------------------------ running

    def run(self, work: Callable[[Clientset], Awaitable[T]], *, bounded: bool = True) -> T:
        """Run `work` with a connected clientset. `bounded`: apply
        --request-timeout to the whole of it (watches bound themselves)."""
        from client import Clientset
        config = self.config
        timeout = self.request_timeout if bounded else None

        async def main() -> T:
            cs = Clientset.connect(config)
            try:
                await _connect(cs, config.server, self.request_timeout or _CONNECT_TIMEOUT)
                if timeout:
                    async with asyncio.timeout(timeout):
                        return await work(cs)
                return await work(cs)
            finally:
                await cs.close()
        try:
            return asyncio.run(main())
        except TimeoutError:
            if timeout is None:
                raise
            raise CLIError(f"the server {config.server} did not answer within {self.settings.request_timeout} "
                           "(--request-timeout)") from None

    # ------------------------------------------------------------ failures

    def fail(self, err: BaseException, context: str = "") -> None:
        """Record one failed item; reported when the command ends."""
        self.failures.append(format_error(err, context, self.config.server if "config" in self.__dict__ else ""))

    def report(self) -> int:
        for text in self.failures:
            click.echo(text, err=True)
        code = 1 if self.failures else 0
        self.failures.clear()
        return code


async def _connect(cs: Clientset, server: str, timeout: float) -> None:
    import grpc
    channel = cs.channel
    try:
        async with asyncio.timeout(timeout):
            state = channel.get_state(try_to_connect=True)
            while state != grpc.ChannelConnectivity.READY:
                if state in (grpc.ChannelConnectivity.TRANSIENT_FAILURE, grpc.ChannelConnectivity.SHUTDOWN):
                    raise CLIError(refused(server))
                await channel.wait_for_state_change(state)
                state = channel.get_state(try_to_connect=True)
    except TimeoutError:
        raise CLIError(f"Unable to connect to the server {server}: no connection within {timeout:g}s") from None


def resource(cs: Clientset, kind: Kind, namespace: str = "") -> ResourceClient[Any]:
    """The clientset's client for a kind chosen at run time."""
    return cs.resource(kind, namespace)


def descriptor(kind: Kind) -> Any:
    """The kind's message descriptor, for the strategic merge helpers."""
    return kind.message.DESCRIPTOR


def refused(server: str) -> str:
    return f"The connection to the server {server} was refused - did you specify the right host or port?"


def format_error(err: BaseException, context: str = "", server: str = "") -> str:
    """kubectl's rendering of one failure."""
    from api import StatusError
    if isinstance(err, CLIError):
        text = str(err)
        return text if text.startswith(("The connection", "Unable to connect")) else f"error: {text}"
    if isinstance(err, StatusError):
        return _format_status(err, context, server)
    return f"error: {context}{err}"


def _format_status(err: StatusError, context: str, server: str) -> str:
    status = err.status
    details = status.details
    if err.reason == "Invalid" and (details.kind or details.name):
        head = f'The {details.kind} "{details.name}" is invalid'
        causes = [f"{c.field}: {c.message}" if c.field else c.message for c in details.causes]
        causes = list(dict.fromkeys(causes))
        if not causes:
            return f"{head}: {err.message}"
        if len(causes) == 1:
            return f"{head}: {causes[0]}"
        return f"{head}: \n" + "\n".join(f"* {c}" for c in causes)
    if err.reason == "Unauthorized":
        return f"error: You must be logged in to the server ({err.message})"
    if err.reason == "ServiceUnavailable" and "failed to connect" in err.message and server:
        return refused(server)
    if err.reason:
        return f"Error from server ({err.reason}): {context}{err.message}"
    return f"Error from server: {context}{err.message}"


def when(verb: str, source: str) -> str:
    """kubectl's prefix for a failure tied to a file: `error when creating "x.yaml": `."""
    return f'error when {verb} "{source}": ' if source else ""


def is_status(err: BaseException, *reasons: str) -> bool:
    from api import StatusError
    return isinstance(err, StatusError) and (not reasons or err.reason in reasons)


def echo(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    click.echo(text, err=err, nl=nl)


def warn(text: str) -> None:
    click.echo(f"Warning: {text}", err=True)

