"""Starting etcd and the apiserver as local processes, and knowing when
they are ready. `kubelab up`, the integration tests and the benchmarks all
start them this way, so there is one place that knows the flags."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import grpc

from proto import api_pb2, api_pb2_grpc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: object, timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None,
               log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} exited with code {proc.returncode}:\n{tail}")
        try:
            if check():  # type: ignore[operator]
                return
        except Exception as err:  # not ready yet
            last = err
        time.sleep(0.1)
    tail = log.read_text()[-2000:] if log and log.exists() else ""
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s ({last}):\n{tail}")


def apiserver_ready(target: str, ca_file: Path | None = None) -> bool:
    """Whether the apiserver answers. Over TLS, a server that demands client
    certificates refuses the handshake; that still proves it is up."""
    if ca_file is not None:
        creds = grpc.ssl_channel_credentials(root_certificates=ca_file.read_bytes())
        channel = grpc.secure_channel(target, creds)
    else:
        channel = grpc.insecure_channel(target)
    with channel:
        try:
            api_pb2_grpc.DiscoveryStub(channel).Version(api_pb2.DiscoveryRequest(), timeout=1)
        except grpc.RpcError as err:
            if ca_file is None or err.code() != grpc.StatusCode.UNAVAILABLE or "handshake" not in str(err.details()):
                raise
    return True


class ManagedProcess:
    """A child process with its log file; stop() is SIGTERM, then SIGKILL."""

    def __init__(self, argv: Sequence[str], log: Path, *, detach: bool = False,
                 env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        out = open(log, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=detach, env=env)
        out.close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def etcd_binary() -> str:
    found = shutil.which("etcd")
    if not found:
        raise FileNotFoundError("etcd is not installed: run `make setup` (it installs Debian's etcd-server)")
    return found


class EtcdProcess(ManagedProcess):
    def __init__(self, data_dir: Path, *, client_port: int = 0, peer_port: int = 0, log: Path | None = None,
                 detach: bool = False, name: str = "kubelab") -> None:
        self.client_port = client_port or free_port()
        self.peer_port = peer_port or free_port()
        self.url = f"http://127.0.0.1:{self.client_port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        peer = f"http://127.0.0.1:{self.peer_port}"
        argv = [etcd_binary(), "--name", name, "--data-dir", str(data_dir),
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"{name}={peer}",
                "--quota-backend-bytes", str(8 * 1024 ** 3)]
        super().__init__(argv, log or data_dir.parent / "etcd.log", detach=detach)

    def wait_ready(self, timeout: float = 30.0) -> EtcdProcess:
        def healthy() -> bool:
            with socket.create_connection(("127.0.0.1", self.client_port), timeout=1):
                return True
        wait_until(healthy, timeout, "etcd", self.proc, self.log)
        return self


class APIServerProcess(ManagedProcess):
    def __init__(self, etcd_url: str, *, port: int = 0, unix_socket: Path | None = None, log: Path,
                 extra: Sequence[str] = (), detach: bool = False, metrics_port: int = 0,
                 bind_address: str = "127.0.0.1", ca_file: Path | None = None) -> None:
        self.ca_file = ca_file
        self.port = port or free_port()
        self.metrics_port = metrics_port or free_port()
        self.target = f"127.0.0.1:{self.port}" if bind_address in ("127.0.0.1", "0.0.0.0") \
            else f"{bind_address}:{self.port}"
        argv = [sys.executable, "-m", "apiserver", "--etcd-servers", etcd_url, "--bind-address", bind_address,
                "--port", str(self.port), "--metrics-bind-address", f"127.0.0.1:{self.metrics_port}", *extra]
        if unix_socket is not None:
            argv += ["--unix-socket", str(unix_socket)]
        super().__init__(argv, log, detach=detach)

    def wait_ready(self, timeout: float = 30.0) -> APIServerProcess:
        wait_until(lambda: apiserver_ready(self.target, self.ca_file), timeout, "apiserver", self.proc, self.log)
        return self


def health_serving(target: str) -> bool:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


class ComponentProcess(ManagedProcess):
    """A component that talks to the apiserver (`python -m scheduler`,
    `python -m controller_manager`, ...), ready once its health service
    answers SERVING."""

    def __init__(self, module: str, server: str, *, log: Path, extra: Sequence[str] = (),
                 detach: bool = False) -> None:
        self.module = module
        self.health_port = free_port()
        self.metrics_port = free_port()
        argv = [sys.executable, "-m", module, "--server", server,
                "--health-bind-address", f"127.0.0.1:{self.health_port}",
                "--metrics-bind-address", f"127.0.0.1:{self.metrics_port}", *extra]
        super().__init__(argv, log, detach=detach)

    def wait_ready(self, timeout: float = 30.0) -> ComponentProcess:
        wait_until(lambda: health_serving(f"127.0.0.1:{self.health_port}"), timeout, self.module, self.proc,
                   self.log)
        return self
