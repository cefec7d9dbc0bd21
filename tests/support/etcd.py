"""A real etcd for the integration tests: a container where a Docker engine
runs (testcontainers), a local process otherwise.

No registry is reachable here, so the container image is built locally from
Debian's etcd binary with `docker import`. The container shares the host's
network namespace and listens on a free loopback port, so the tests need no
port publishing; a Docker engine this suite starts itself runs without
iptables rules or a bridge, leaving the host's netfilter state alone.
testcontainers' reaper (Ryuk) needs an image pull and is disabled; the
fixture removes its container itself.

KUBELAB_TEST_ETCD=container|process|auto chooses (auto: container when a
Docker engine is running or can be started here, else process).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deploy.local import EtcdProcess, free_port

IMAGE_REPO = "kubelab-test/etcd"


def docker_running() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0


@contextmanager
def docker_engine() -> Iterator[bool]:
    """Yield True with a Docker engine running, starting one if this machine
    has dockerd and none runs; stop it again afterwards."""
    if docker_running():
        yield True
        return
    dockerd = shutil.which("dockerd")
    if not dockerd or os.geteuid() != 0:
        yield False
        return
    log = open(Path(tempfile.gettempdir()) / "kubelab-test-dockerd.log", "ab")
    proc = subprocess.Popen([dockerd, "--iptables=false", "--ip-masq=false", "--bridge=none"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not docker_running():
            if proc.poll() is not None or time.monotonic() > deadline:
                yield False
                return
            time.sleep(0.5)
        yield True
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _libraries(binary: str) -> list[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        for token in parts:
            if token.startswith("/"):
                libs.append(token)
    return libs


def ensure_image() -> str:
    """The image's name; built from this machine's etcd and the libraries it
    links, and named by their digest so a new etcd build gets a new image."""
    etcd = shutil.which("etcd")
    assert etcd, "etcd is not installed (make setup installs etcd-server)"
    files = [etcd, *_libraries(etcd)]
    digest = hashlib.sha256()
    for path in files:
        digest.update(Path(path).resolve().read_bytes())
    image = f"{IMAGE_REPO}:{digest.hexdigest()[:12]}"
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0:
        return image
    with tempfile.TemporaryDirectory() as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        with tarfile.open(tarball, "w", dereference=True) as tar:
            for path in files:
                tar.add(path, arcname=path.lstrip("/"))
            info = tarfile.TarInfo("tmp")
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777
            tar.addfile(info)
        subprocess.run(["docker", "import", "-c", f'ENTRYPOINT ["{etcd}"]', str(tarball), image], check=True,
                       capture_output=True)
    return image


@contextmanager
def etcd_container() -> Iterator[str]:
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    from testcontainers.core.container import DockerContainer

    image = ensure_image()
    client_port, peer_port = free_port(), free_port()
    url = f"http://127.0.0.1:{client_port}"
    container = (DockerContainer(image)
                 .with_kwargs(network_mode="host")
                 .with_command(f"--data-dir /tmp/etcd --listen-client-urls {url} --advertise-client-urls {url} "
                               f"--listen-peer-urls http://127.0.0.1:{peer_port} "
                               f"--initial-advertise-peer-urls http://127.0.0.1:{peer_port} "
                               f"--initial-cluster default=http://127.0.0.1:{peer_port}"))
    container.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            logs = container.get_logs()
            if b"ready to serve client requests" in logs[0] + logs[1]:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"etcd container not ready: {logs}")
            time.sleep(0.2)
        yield url
    finally:
        container.stop()


@contextmanager
def etcd_process(workdir: Path) -> Iterator[str]:
    proc = EtcdProcess(workdir / "etcd-data", log=workdir / "etcd.log").wait_ready()
    try:
        yield proc.url
    finally:
        proc.stop()


@contextmanager
def real_etcd(workdir: Path) -> Iterator[tuple[str, str]]:
    """(URL, "container" or "process")."""
    mode = os.environ.get("KUBELAB_TEST_ETCD", "auto")
    if mode not in ("auto", "container", "process"):
        raise ValueError(f"KUBELAB_TEST_ETCD={mode!r}: choose auto, container or process")
    if mode == "process":
        with etcd_process(workdir) as url:
            yield url, "process"
        return
    already_running = docker_running()
    with docker_engine() as have_docker:
        if have_docker:
            with etcd_container() as url:
                yield url, "container" if already_running else "container (Docker engine started by the suite)"
            return
        if mode == "container":
            raise RuntimeError("KUBELAB_TEST_ETCD=container but no Docker engine runs or can be started here")
        with etcd_process(workdir) as url:
            yield url, "process"
