"""A real etcd and a real apiserver process for the integration tests.

One etcd (container or process, see tests/support/etcd.py) and one
apiserver serve the whole session; every test works in namespaces of its
own, so tests do not see each other's objects. Tests that restart or
reconfigure an apiserver start their own against the same etcd, as a
second apiserver replica would.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from api import StatusError
from client import ClientConfig, Clientset
from deploy.local import APIServerProcess, ComponentProcess, EtcdProcess
from proto import core_pb2
from tests.support.etcd import real_etcd


@dataclass(frozen=True)
class Etcd:
    url: str
    mode: str  # "container" or "process"


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kubelab")


_ETCD_MODES: list[str] = []


@pytest.fixture(scope="session")
def etcd(workdir: Path) -> Iterator[Etcd]:
    with real_etcd(workdir) as (url, mode):
        _ETCD_MODES.append(mode)
        yield Etcd(url, mode)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _ETCD_MODES:
        terminalreporter.write_line(f"integration tests ran against a real etcd: {_ETCD_MODES[0]}")


def start_apiserver(etcd: Etcd, workdir: Path, *extra: str, name: str = "",
                    ca_file: Path | None = None) -> APIServerProcess:
    name = name or f"apiserver-{uuid.uuid4().hex[:6]}"
    return APIServerProcess(etcd.url, log=workdir / f"{name}.log", extra=extra, ca_file=ca_file).wait_ready()


def start_component(module: str, apiserver: APIServerProcess, workdir: Path, *extra: str) -> ComponentProcess:
    """Another component (`scheduler`, `controller_manager`, ...) against
    `apiserver`; the caller stops it."""
    log = workdir / f"{module}-{uuid.uuid4().hex[:6]}.log"
    return ComponentProcess(module, apiserver.target, log=log, extra=extra).wait_ready()


@pytest.fixture(scope="session")
def apiserver(etcd: Etcd, workdir: Path) -> Iterator[APIServerProcess]:
    proc = start_apiserver(etcd, workdir, "--watch-bookmark-interval", "1",
                           "--unix-socket", str(workdir / "apiserver.sock"), name="apiserver")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def apiserver_socket(apiserver: APIServerProcess, workdir: Path) -> str:
    """The session apiserver's unix socket as a --server value: reachable
    from processes in any network namespace (a socket is a file)."""
    return f"unix://{workdir / 'apiserver.sock'}"


@pytest.fixture
def client_config(apiserver: APIServerProcess) -> ClientConfig:
    return ClientConfig(server=apiserver.target)


@pytest.fixture
async def client(client_config: ClientConfig) -> AsyncIterator[Clientset]:
    cs = Clientset.connect(client_config)
    yield cs
    await cs.close()


@pytest.fixture
async def namespace(client: Clientset) -> AsyncIterator[str]:
    """A fresh namespace for one test, deleted after it."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    await client.resource(core_pb2.Namespace).create(core_pb2.Namespace(metadata={"name": name}))
    yield name
    try:
        await client.resource(core_pb2.Namespace).delete(name)
    except StatusError:
        pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[APIServerProcess]:
    """A private etcd and apiserver for one module, for tests that need a
    cluster nobody else writes to (a scheduler binding every pending pod,
    hollow nodes running every scheduled one)."""
    work = tmp_path_factory.mktemp("private-cluster")
    etcd = EtcdProcess(work / "etcd-data", log=work / "etcd.log")
    api: APIServerProcess | None = None
    try:
        etcd.wait_ready()
        api = APIServerProcess(etcd.url, log=work / "apiserver.log",
                               extra=["--watch-bookmark-interval", "1"]).wait_ready()
        yield api
    finally:
        if api is not None:
            api.stop()
        etcd.stop()
        shutil.rmtree(work / "etcd-data", ignore_errors=True)
