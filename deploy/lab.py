"""The local lab: the control plane as background processes on this host.

`kubelab up` starts etcd, the apiserver, the controller-manager and the
scheduler detached from the terminal, with
their data, logs, pid files and socket under one state directory
(/var/lib/kubelab as root, ~/.kubelab/lab otherwise), and points the CLI's
config at them. `kubelab status` reads that directory back; `kubelab down`
stops what it started and removes the directory. An `up` after a crash
finds the dead processes in the recorded state, clears the leftovers and
starts afresh. The multi-node lab (node namespaces, kubelets, proxies) grows
from here.

Every process is recorded with its command line, and a pid is only ever
signalled while /proc still shows that command line, so a pid reused by an
unrelated process is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from client import default_config_path, write_config

from .local import APIServerProcess, ComponentProcess, EtcdProcess


def default_state_dir() -> Path:
    env = os.environ.get("KUBELAB_STATE_DIR")
    if env:
        return Path(env)
    return Path("/var/lib/kubelab") if os.geteuid() == 0 else Path.home() / ".kubelab" / "lab"


@dataclass
class Component:
    name: str
    pid: int
    argv: list[str]
    endpoint: str
    log: str


@dataclass
class LabState:
    state_dir: str
    server: str
    components: list[Component] = field(default_factory=list)
    started: float = 0.0

    @classmethod
    def load(cls, state_dir: Path) -> LabState | None:
        path = state_dir / "lab.json"
        if not path.exists():
            return None
        raw = json.loads(path.read_text())
        return cls(raw["state_dir"], raw["server"], [Component(**c) for c in raw["components"]], raw["started"])

    def save(self) -> None:
        (Path(self.state_dir) / "lab.json").write_text(json.dumps(asdict(self), indent=2))


def alive(component: Component) -> bool:
    """Whether the recorded process still runs, and is still ours."""
    try:
        cmdline = Path(f"/proc/{component.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return [c.decode() for c in cmdline if c] == component.argv


def port_free(port: int) -> bool:
    """Whether a server could listen on the port now (connections of a
    previous run lingering in TIME_WAIT do not count, as for any server)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class LabError(RuntimeError):
    pass


Progress = Callable[[str, str], None]  # (component, message)


def up(state_dir: Path, *, api_port: int = 6443, etcd_port: int = 2379, progress: Progress | None = None,
       config_path: Path | None = None) -> LabState:
    say = progress or (lambda _c, _m: None)
    existing = LabState.load(state_dir)
    if existing is not None:
        if existing.components and all(alive(c) for c in existing.components):
            say("lab", f"already running (state in {state_dir})")
            return existing
        say("lab", "cleaning up after a previous run that did not shut down")
        _stop_all(existing, say)
        shutil.rmtree(state_dir, ignore_errors=True)
    for port, flag in ((api_port, "--port"), (etcd_port, "--etcd-port")):
        if not port_free(port):
            raise LabError(f"port {port} on 127.0.0.1 is in use; choose another with {flag}")
    state_dir.mkdir(parents=True, exist_ok=True)
    logs = state_dir / "logs"
    state = LabState(str(state_dir), f"127.0.0.1:{api_port}", started=time.time())
    try:
        say("etcd", "starting")
        etcd = EtcdProcess(state_dir / "etcd", client_port=etcd_port, peer_port=_free_near(etcd_port + 1),
                           log=logs / "etcd.log", detach=True)
        state.components.append(Component("etcd", etcd.pid, etcd.argv, etcd.url, str(etcd.log)))
        state.save()
        etcd.wait_ready()
        say("etcd", f"ready at {etcd.url}")
        say("apiserver", "starting")
        apiserver = APIServerProcess(etcd.url, port=api_port, unix_socket=state_dir / "apiserver.sock",
                                     log=logs / "apiserver.log", detach=True,
                                     extra=["--etcd-compaction-interval", "300"])
        state.components.append(Component("apiserver", apiserver.pid, apiserver.argv, apiserver.target,
                                          str(apiserver.log)))
        state.save()
        apiserver.wait_ready()
        say("apiserver", f"ready at {apiserver.target}")
        for module, name in (("controller_manager", "controller-manager"), ("scheduler", "scheduler")):
            say(name, "starting")
            component = ComponentProcess(module, apiserver.target, log=logs / f"{name}.log", detach=True)
            health = f"127.0.0.1:{component.health_port}"
            state.components.append(Component(name, component.pid, component.argv, health, str(component.log)))
            state.save()
            component.wait_ready()
            say(name, f"ready (health {health}, metrics 127.0.0.1:{component.metrics_port})")
    except Exception:
        _stop_all(state, say)
        raise
    path = write_config(state.server, config_path)
    say("config", f"wrote {path} (server {state.server})")
    return state


def _free_near(port: int) -> int:
    for candidate in range(port, port + 100):
        if port_free(candidate):
            return candidate
    raise LabError(f"no free port near {port}")


def _stop_all(state: LabState, say: Progress) -> None:
    for component in reversed(state.components):
        if not alive(component):
            continue
        os.kill(component.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while alive(component) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(component):
            os.kill(component.pid, signal.SIGKILL)
        say(component.name, "stopped")


def down(state_dir: Path, *, progress: Progress | None = None, config_path: Path | None = None) -> bool:
    """Stop the lab and remove everything it made; False if none was up."""
    say = progress or (lambda _c, _m: None)
    state = LabState.load(state_dir)
    if state is None:
        return False
    _stop_all(state, say)
    shutil.rmtree(state_dir, ignore_errors=True)
    config = config_path or default_config_path()
    if config.exists() and state.server in config.read_text():
        config.unlink()
        say("config", f"removed {config}")
    return True


def status(state_dir: Path) -> LabState | None:
    return LabState.load(state_dir)
