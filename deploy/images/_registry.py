"""The local registry (Debian's docker-registry, the CNCF distribution
server) and pushing the layout's images into it under their public names.

`start` writes a config (filesystem storage under the data dir, HTTP on
127.0.0.1:PORT only) and runs the server detached, its pid, command line and
port recorded in registry.json. A recorded pid is only signalled while
/proc still shows the recorded command line, so a reused pid is never
touched; a dead server's record is cleared by the next start. `start` on a
running server is a no-op, and a port held by something else is an error
saying so.

`push` copies each layout image with skopeo to
127.0.0.1:PORT/<path without the registry host>:<tag>. It first asks the
registry (HEAD /v2/<path>/manifests/<tag>) whether the tag already points at
the manifest digest the layout has; the build is reproducible, so a second
`push` of unchanged images copies nothing. Every request goes to loopback.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ._layout import MEDIA_INDEX, MEDIA_MANIFEST, Layout
from ._names import PushPlan, PushTarget

_ACCEPT = ", ".join([MEDIA_MANIFEST, MEDIA_INDEX, "application/vnd.docker.distribution.manifest.v2+json",
                     "application/vnd.docker.distribution.manifest.list.v2+json"])

CONFIG = """version: 0.1
log:
  level: {level}
  formatter: text
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: {address}:{port}
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
"""


class RegistryError(RuntimeError):
    """The local registry could not be started, reached or pushed to."""


def registry_binary() -> str:
    for candidate in ("/usr/bin/docker-registry", "/usr/bin/registry"):
        if os.access(candidate, os.X_OK):
            return candidate
    raise RegistryError("docker-registry is not installed: apt-get install -y docker-registry")


def manifest_digest(base_url: str, path: str, tag: str, timeout: float = 5.0) -> str | None:
    """The digest the registry has for path:tag, or None when it has no such tag."""
    if not base_url.startswith(("http://", "https://")):
        raise RegistryError(f"registry URL {base_url!r}: must start with http:// or https://")
    request = urllib.request.Request(f"{base_url}/v2/{path}/manifests/{tag}",  # noqa: S310 - scheme checked
                                     method="HEAD", headers={"Accept": _ACCEPT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310 - loopback URL we built
            return reply.headers.get("Docker-Content-Digest")
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        raise RegistryError(f"registry {base_url}: HEAD /v2/{path}/manifests/{tag}: HTTP {err.code}") from err


def api_ready(base_url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/v2/", timeout=timeout) as reply:  # noqa: S310 - loopback
            return bool(reply.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@dataclass
class RegistryStatus:
    running: bool
    pid: int
    port: int
    url: str
    detail: str


class LocalRegistry:
    def __init__(self, data_dir: Path, port: int = 5000, *, log_level: str = "warn",
                 address: str = "127.0.0.1") -> None:
        if not 0 < port < 65536:
            raise RegistryError(f"registry port {port}: must be between 1 and 65535")
        self.data_dir = data_dir
        self.port = port
        self.address = address  # where it listens; 0.0.0.0 inside the lab's control-plane namespace
        self.log_level = log_level
        self.record = data_dir / "registry.json"
        self.config = data_dir / "config.yml"
        self.log = data_dir / "registry.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _recorded(self) -> dict[str, object] | None:
        try:
            data: dict[str, object] = json.loads(self.record.read_text())
            return data
        except (OSError, ValueError):
            return None

    def _alive(self, rec: dict[str, object]) -> bool:
        try:
            cmdline = Path(f"/proc/{rec['pid']}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return [c.decode() for c in cmdline if c] == rec.get("argv")

    def status(self) -> RegistryStatus:
        rec = self._recorded()
        if rec is None:
            return RegistryStatus(False, 0, self.port, self.url, f"not started (no {self.record})")
        pid, port = int(rec["pid"]), int(rec["port"])  # type: ignore[call-overload]
        url = f"http://127.0.0.1:{port}"
        if not self._alive(rec):
            return RegistryStatus(False, pid, port, url, f"recorded pid {pid} is gone (see {self.log})")
        if not api_ready(url):
            return RegistryStatus(False, pid, port, url, f"pid {pid} runs but {url}/v2/ does not answer")
        return RegistryStatus(True, pid, port, url, f"serving {url} (pid {pid}, data {self.data_dir})")

    def start(self, timeout: float = 30.0) -> RegistryStatus:
        rec = self._recorded()
        if rec is not None and self._alive(rec):
            if int(rec["port"]) != self.port:  # type: ignore[call-overload]
                raise RegistryError(f"the registry in {self.data_dir} already runs on port {rec['port']}, "
                                    f"not {self.port}: stop it first")
            return self._wait(int(rec["pid"]), timeout)  # type: ignore[call-overload]
        self.record.unlink(missing_ok=True)
        if not _port_free(self.port):
            raise RegistryError(f"port 127.0.0.1:{self.port} is in use by another program: choose --port")
        argv = self.command()
        with open(self.log, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.record.write_text(json.dumps({"pid": proc.pid, "argv": argv, "port": self.port}))
        return self._wait(proc.pid, timeout, proc)

    def command(self) -> list[str]:
        """Write the registry's config; the command line that serves it (for
        a caller that runs the process itself, e.g. in a namespace)."""
        storage = self.data_dir / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        self.config.write_text(CONFIG.format(level=self.log_level, storage=storage.resolve(), port=self.port,
                                             address=self.address))
        return [registry_binary(), "serve", str(self.config.resolve())]

    def _wait(self, pid: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> RegistryStatus:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                self.record.unlink(missing_ok=True)
                tail = self.log.read_text(errors="replace")[-1500:]
                raise RegistryError(f"docker-registry exited with code {proc.returncode}:\n{tail}")
            if api_ready(self.url):
                return self.status()
            time.sleep(0.05)
        raise RegistryError(f"docker-registry (pid {pid}) did not answer on {self.url}/v2/ within {timeout:.0f}s; "
                            f"see {self.log}")

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the recorded server; whether there was one to stop."""
        rec = self._recorded()
        if rec is None:
            return False
        pid = int(rec["pid"])  # type: ignore[call-overload]
        was_running = self._alive(rec)
        if was_running:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self._alive(rec) and time.monotonic() < deadline:
                _reap(pid)
                time.sleep(0.05)
            if self._alive(rec):
                os.kill(pid, signal.SIGKILL)
                while self._alive(rec):
                    _reap(pid)
                    time.sleep(0.05)
        self.record.unlink(missing_ok=True)
        return was_running


def _reap(pid: int) -> None:
    """Collect the exit status when the server is our own child (start and stop in one process)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class PushOutcome:
    target: PushTarget
    destination: str
    action: str     # "pushed", "up to date"


def push(layout_dir: Path, plan: PushPlan, registry: LocalRegistry,
         progress: object = None) -> tuple[list[PushOutcome], list[tuple[PushTarget, str]]]:
    """Copy every target of the plan; returns what was done and the targets the layout lacks."""
    if not api_ready(registry.url):
        raise RegistryError(f"no registry answers on {registry.url}: run `python -m deploy.images registry start`")
    refs = Layout(layout_dir).refs()
    done: list[PushOutcome] = []
    absent: list[tuple[PushTarget, str]] = []
    for target in plan.targets:
        ref = target.reference
        dest = f"{registry.host}/{ref.mirror_path}:{ref.tag}"
        desc = refs.get(target.image)
        if desc is None:
            absent.append((target, f"image {target.image!r} is not in the layout {layout_dir} (was it built?)"))
            continue
        if manifest_digest(registry.url, ref.mirror_path, ref.tag) == desc.digest:
            done.append(PushOutcome(target, dest, "up to date"))
            continue
        argv = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--preserve-digests",
                f"oci:{layout_dir.resolve()}:{target.image}", f"docker://{dest}"]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RegistryError(f"pushing {ref} ({target.image}) to {dest} failed: {proc.stderr.strip()}")
        done.append(PushOutcome(target, dest, "pushed"))
        if callable(progress):
            progress(done[-1])
    return done, absent
