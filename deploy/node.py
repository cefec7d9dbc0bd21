"""A node's components, started and kept running: what `kubelab join` does.

`kubeadm join` configures a machine's kubelet and leaves it to systemd;
kubelab's join is the whole of that in one foreground process, so the same
command serves a lab node namespace, a VM and a container: it starts the
node's components in the current network namespace, in order, each ready
(its gRPC health service answers SERVING on a unix socket) before the next,
and then supervises them the way systemd's Restart=always would: a
component that exits is started again after a backoff (1 s doubling to
30 s, reset once it has run a minute), and SIGTERM or SIGINT stops them all
in reverse order.

The components of a node (see `node_components`):

1. crishim - the CRI shim (runc + CNI) on a unix socket;
2. kubelet - registers the Node, runs its pods through the shim;
3. proxy - Services to netfilter rules (when the proxy mode is not "none");
4. podnetwork - routes to the other nodes' pod CIDRs, masquerade.

`--hollow N` replaces them all with one kubelet process running N hollow
nodes (an in-memory runtime: no containers, no network), for scale tests.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .local import health_serving

log = logging.getLogger("kubelab.join")

RESTART_BACKOFF = 1.0
RESTART_BACKOFF_MAX = 30.0
HEALTHY_RUN = 60.0


@dataclass
class NodeConfig:
    name: str
    server: str
    state_dir: Path
    node_ip: str = ""
    proxy_mode: str = "iptables"
    cluster_cidr: str = "10.244.0.0/16"
    registry_config_path: str = ""
    hollow: int = 0
    extra: dict[str, list[str]] = field(default_factory=dict)  # per component: more flags

    def socket(self, component: str) -> Path:
        return self.state_dir / "run" / f"{component}.sock"

    def health(self, component: str) -> str:
        return f"unix://{self.state_dir / 'run' / f'{component}.health.sock'}"


@dataclass
class ChildSpec:
    name: str
    argv: list[str]
    health: str          # unix:///... the component's health service
    ready_timeout: float = 60.0
    dirs: list[Path] = field(default_factory=list)  # made before it starts (it reads them, never creates them)


def node_components(cfg: NodeConfig) -> list[ChildSpec]:
    python = sys.executable
    common = ["--server", cfg.server]
    if cfg.hollow:
        return [ChildSpec("kubelet", [python, "-m", "kubelet", *common, "--hollow", str(cfg.hollow),
                                      "--node-name", cfg.name, "--health-bind-address", cfg.health("kubelet"),
                                      "--metrics-bind-address", "", *cfg.extra.get("kubelet", [])],
                          cfg.health("kubelet"), ready_timeout=300.0)]
    shim_socket = f"unix://{cfg.socket('crishim')}"
    specs = [
        # The shim serves gRPC health on its CRI socket.
        ChildSpec("crishim", [python, "-m", "crishim", "--listen", shim_socket, "--node-name", cfg.name,
                              "--root", str(cfg.state_dir / "crishim"),
                              "--state-dir", f"/run/kubelab-node/{cfg.name}/crishim",
                              *(["--registry-config-path", cfg.registry_config_path]
                                if cfg.registry_config_path else []),
                              "--metrics-bind-address", "", *cfg.extra.get("crishim", [])], shim_socket),
        ChildSpec("kubelet", [python, "-m", "kubelet", *common, "--node-name", cfg.name,
                              "--container-runtime-endpoint", shim_socket,
                              "--root-dir", str(cfg.state_dir / "kubelet"),
                              "--pod-logs-dir", str(cfg.state_dir / "pod-logs"),
                              "--pod-manifest-path", str(cfg.state_dir / "manifests"),
                              *(["--node-ip", cfg.node_ip] if cfg.node_ip else []),
                              "--health-bind-address", cfg.health("kubelet"), "--metrics-bind-address", "",
                              *cfg.extra.get("kubelet", [])], cfg.health("kubelet"),
                  dirs=[cfg.state_dir / "manifests"]),
    ]
    if cfg.proxy_mode != "none":
        specs.append(ChildSpec("proxy", [python, "-m", "proxy", *common, "--hostname-override", cfg.name,
                                         "--proxy-mode", cfg.proxy_mode, "--cluster-cidr", cfg.cluster_cidr,
                                         "--health-bind-address", cfg.health("proxy"),
                                         "--metrics-bind-address", "", *cfg.extra.get("proxy", [])],
                               cfg.health("proxy")))
    specs.append(ChildSpec("podnetwork", [python, "-m", "podnetwork", *common, "--node-name", cfg.name,
                                          "--cluster-cidr", cfg.cluster_cidr, "--masquerade", "true",
                                          "--health-bind-address", cfg.health("podnetwork"),
                                          *cfg.extra.get("podnetwork", [])], cfg.health("podnetwork")))
    return specs


class JoinError(RuntimeError):
    pass


@dataclass
class _Child:
    spec: ChildSpec
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    backoff: float = RESTART_BACKOFF
    restart_at: float = 0.0
    restarts: int = 0


class Supervisor:
    """Start children in order, restart any that exit, stop them on request."""

    def __init__(self, specs: list[ChildSpec], log_dir: Path, *,
                 say: Callable[[str, str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.children = [_Child(spec) for spec in specs]
        self.log_dir = log_dir
        self.say = say or (lambda name, message: log.info("%s: %s", name, message))
        self._clock = clock
        self._stopping = False

    def _spawn(self, child: _Child) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for directory in child.spec.dirs:
            directory.mkdir(parents=True, exist_ok=True)
        health = child.spec.health.removeprefix("unix://")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(health)  # a stale socket from a previous run would answer nothing
        Path(health).parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{child.spec.name}.log", "ab") as out:
            child.proc = subprocess.Popen(child.spec.argv, stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        child.started = self._clock()

    def _wait_ready(self, child: _Child) -> None:
        deadline = self._clock() + child.spec.ready_timeout
        while True:
            assert child.proc is not None
            ok = False
            with contextlib.suppress(Exception):  # not answering yet
                ok = health_serving(child.spec.health)
            if ok:
                return
            if child.proc.poll() is not None:
                tail = (self.log_dir / f"{child.spec.name}.log").read_text(errors="replace").splitlines()[-15:]
                raise JoinError(f"{child.spec.name} exited with code {child.proc.returncode} while starting; "
                                f"its log ends:\n" + "\n".join(tail))
            if self._clock() > deadline:
                raise JoinError(f"{child.spec.name} was not ready after {child.spec.ready_timeout:.0f}s")
            time.sleep(0.1)

    def start(self) -> None:
        """Start every child in order, each ready before the next; on a
        failure stop what was started and raise."""
        try:
            for child in self.children:
                self.say(child.spec.name, "starting")
                self._spawn(child)
                self._wait_ready(child)
                self.say(child.spec.name, f"ready (pid {child.proc.pid if child.proc else '?'})")
        except BaseException:
            self.stop()
            raise

    def poll(self) -> None:
        """One supervision step: restart children that exited, after their backoff."""
        now = self._clock()
        for child in self.children:
            proc = child.proc
            if proc is not None and proc.poll() is None:
                if now - child.started > HEALTHY_RUN:
                    child.backoff = RESTART_BACKOFF
                continue
            if proc is not None:  # it just exited: schedule the restart
                self.say(child.spec.name, f"exited with code {proc.returncode}; restarting in {child.backoff:.0f}s")
                child.proc = None
                child.restart_at = now + child.backoff
                child.backoff = min(child.backoff * 2, RESTART_BACKOFF_MAX)
            elif now >= child.restart_at and not self._stopping:
                child.restarts += 1
                self._spawn(child)
                self.say(child.spec.name, f"restarted (pid {child.proc.pid if child.proc else '?'})")

    def run(self, stop: Callable[[], bool], interval: float = 0.5) -> None:
        while not stop():
            self.poll()
            time.sleep(interval)
        self.stop()

    def stop(self, grace: float = 15.0) -> None:
        self._stopping = True
        for child in reversed(self.children):
            proc = child.proc
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            self.say(child.spec.name, "stopped")


def runc_root(name: str) -> Path:
    return Path(f"/run/kubelab-node/{name}/crishim/runc")


def cleanup_node(name: str, state_dir: Path) -> list[str]:
    """Remove what a node's runtime made outside its processes, after they
    stopped (`kubeadm reset`'s job): its containers (which outlive the shim
    on purpose), the pods' network namespaces, every mount under its state
    directory and its cgroups. What was removed, for the caller to report."""
    done: list[str] = []
    killed = kill_processes_naming(state_dir)
    if killed:
        done.append(f"{killed} leftover processes")
    root = runc_root(name)
    if root.exists():
        ids = subprocess.run(["runc", "--root", str(root), "list", "-q"], capture_output=True, text=True).stdout.split()
        for cid in ids:
            subprocess.run(["runc", "--root", str(root), "kill", "--all", cid, "KILL"], capture_output=True)
            subprocess.run(["runc", "--root", str(root), "delete", "-f", cid], capture_output=True)
        if ids:
            done.append(f"{len(ids)} containers")
        shutil.rmtree(root.parent.parent, ignore_errors=True)
    sandboxes = state_dir / "crishim" / "sandboxes"
    pod_namespaces = [f"klpod-{d.name[:16]}" for d in sandboxes.iterdir()] if sandboxes.is_dir() else []
    for netns in pod_namespaces:
        if Path(f"/run/netns/{netns}").exists():
            subprocess.run(["ip", "netns", "delete", netns], capture_output=True)
    if pod_namespaces:
        done.append(f"{len(pod_namespaces)} pod network namespaces")
    unmounted = unmount_below(state_dir)
    if unmounted:
        done.append(f"{unmounted} mounts")
    cgroups = 0
    for controller in Path("/sys/fs/cgroup").iterdir():
        top = controller / "kubelab" / name
        if top.is_dir():
            for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):
                    d.rmdir()
            with contextlib.suppress(OSError):
                top.rmdir()
                cgroups += 1
            with contextlib.suppress(OSError):  # the shared parent, once no node uses it
                top.parent.rmdir()
    if cgroups:
        done.append(f"cgroups in {cgroups} controllers")
    return done


def kill_processes_naming(path: Path) -> int:
    """SIGKILL every process whose command line names `path` (a node's
    components and container monitors all do): what is left of a node whose
    supervisor was killed without stopping its children."""
    needle = str(path.resolve()).encode()
    killed = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if needle in (proc / "cmdline").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)
                killed += 1
        except (OSError, ProcessLookupError):
            continue
    return killed


def unmount_below(path: Path) -> int:
    """Unmount everything mounted at or below `path`, deepest first; how many."""
    base = str(path.resolve())
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == base or point.startswith(base + "/"):
            points.append(point)
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
    return len(points)
