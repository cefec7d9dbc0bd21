"""The local lab: a cluster of network namespaces on this host.

`kubelab up` builds the lab's network (deploy/_topology.py: a switch
namespace, a control-plane namespace and one namespace per node) and starts
the control plane inside `<prefix>-cp`: etcd, the apiserver, the
controller-manager, the scheduler and the pod network agent. So every
packet the lab sends stays inside namespaces it made and the host's own
interfaces and netfilter rules are never touched. The host's CLI reaches
the apiserver through its unix socket in the state directory (a socket is a
file: no route is needed), and every component answers the gRPC health
service on a unix socket there too, which is how `up` knows it is ready.

State (data, logs, pid records, sockets) lives under one directory
(/var/lib/kubelab as root, ~/.kubelab/lab otherwise); `kubelab status`
reads it back; `kubelab down` stops every process, removes the namespaces
(which removes every link, route and rule in them) and the directory. An
`up` after a crash finds the recorded processes dead, stops what is left,
destroys the namespaces and starts afresh.

Every process is recorded with its command line, and a pid is only ever
signalled while /proc still shows that command line, so a pid reused by an
unrelated process is never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from client import default_config_path, write_config

from ._topology import Topology, TopologyError
from .local import apiserver_ready, etcd_binary, health_serving

DEFAULT_PREFIX = "kl"


def default_state_dir() -> Path:
    env = os.environ.get("KUBELAB_STATE_DIR")
    if env:
        return Path(env)
    return Path("/var/lib/kubelab") if os.geteuid() == 0 else Path.home() / ".kubelab" / "lab"


@dataclass
class Component:
    name: str
    pid: int
    argv: list[str]       # the command line /proc shows for it
    endpoint: str
    log: str
    namespace: str = ""   # the network namespace it runs in


@dataclass
class LabState:
    state_dir: str
    server: str
    components: list[Component] = field(default_factory=list)
    started: float = 0.0
    prefix: str = DEFAULT_PREFIX
    nodes: int = 0
    proxy_mode: str = "iptables"

    @classmethod
    def load(cls, state_dir: Path) -> LabState | None:
        path = state_dir / "lab.json"
        if not path.exists():
            return None
        raw = json.loads(path.read_text())
        return cls(raw["state_dir"], raw["server"], [Component(**c) for c in raw["components"]], raw["started"],
                   raw.get("prefix", DEFAULT_PREFIX), raw.get("nodes", 0), raw.get("proxy_mode", "iptables"))

    def save(self) -> None:
        (Path(self.state_dir) / "lab.json").write_text(json.dumps(asdict(self), indent=2))


def alive(component: Component) -> bool:
    """Whether the recorded process still runs, and is still ours."""
    try:
        raw = Path(f"/proc/{component.pid}/cmdline").read_bytes()
    except OSError:
        return False
    # NUL-terminated arguments; an empty argument ("--metrics-bind-address", "") is an empty field.
    return [c.decode() for c in raw.split(b"\0")[:-1]] == component.argv


class LabError(RuntimeError):
    pass


Progress = Callable[[str, str], None]  # (component, message)


class Launcher:
    """Starts the lab's processes in their namespaces and records them."""

    def __init__(self, state: LabState, say: Progress) -> None:
        self.state = state
        self.say = say
        self.dir = Path(state.state_dir)
        self.logs = self.dir / "logs"
        self.sockets = self.dir / "run"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, namespace: str, argv: Sequence[str], endpoint: str) -> Component:
        """Run `argv` inside `namespace`, detached from the terminal.
        `nsenter --net` enters only the network namespace (`ip netns exec`
        would also give the process a mount namespace of its own, hiding the
        mounts a node's shim and kubelet make from their next run) and then
        becomes the command, so the recorded pid and command line are the
        component's own."""
        log = self.logs / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{namespace}", "--", *argv], stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        component = Component(name, proc.pid, list(argv), endpoint, str(log), namespace)
        deadline = time.monotonic() + 10
        while not alive(component) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # until nsenter has become the command
        self.state.components.append(component)
        self.state.save()
        return component

    def health(self, name: str) -> str:
        return f"unix://{self.sockets / f'{name}.health.sock'}"

    def wait(self, component: Component, ready: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            ok = False
            with contextlib.suppress(Exception):  # not answering yet
                ok = ready()
            if ok:
                return
            if not alive(component):
                tail = Path(component.log).read_text(errors="replace").splitlines()[-15:]
                raise LabError(f"{component.name} exited while starting; its log ({component.log}) ends:\n"
                               + "\n".join(tail))
            if time.monotonic() > deadline:
                raise LabError(f"{component.name} was not ready after {timeout:.0f}s; see {component.log}")
            time.sleep(0.2)

    def component(self, name: str, module: str, namespace: str, server: str, *extra: str,
                  timeout: float = 60.0) -> Component:
        """A component that talks to the apiserver and answers health on a
        unix socket."""
        health = self.health(name)
        self.say(name, "starting")
        argv = [sys.executable, "-m", module, "--server", server, "--health-bind-address", health,
                "--metrics-bind-address", "", *extra]
        component = self.start(name, namespace, argv, health)
        self.wait(component, lambda: health_serving(health), timeout)
        self.say(name, "ready")
        return component


def up(state_dir: Path, *, api_port: int = 6443, etcd_port: int = 2379, nodes: int = 0,
       prefix: str = DEFAULT_PREFIX, proxy_mode: str = "iptables", progress: Progress | None = None,
       config_path: Path | None = None, controller_manager_args: Sequence[str] = ()) -> LabState:
    """Bring the lab up; `controller_manager_args` are extra flags for the
    controller-manager (tests shorten --node-monitor-grace-period with it)."""
    say = progress or (lambda _c, _m: None)
    existing = LabState.load(state_dir)
    if existing is not None:
        if existing.components and all(alive(c) for c in existing.components):
            say("lab", f"already running (state in {state_dir})")
            return existing
        say("lab", "cleaning up after a previous run that did not shut down")
        _teardown(existing, say)
    try:
        topology = Topology(prefix=prefix, nodes=nodes)
    except TopologyError as err:
        raise LabError(str(err)) from None
    leftovers = topology.namespaces()
    if leftovers:
        say("lab", f"removing namespaces a previous run left: {', '.join(leftovers)}")
        topology.destroy()
    state_dir.mkdir(parents=True, exist_ok=True)
    socket_path = state_dir / "run" / "apiserver.sock"
    state = LabState(str(state_dir), f"unix://{socket_path}", started=time.time(), prefix=prefix, nodes=nodes,
                     proxy_mode=proxy_mode)
    state.save()
    launch = Launcher(state, say)
    try:
        say("network", f"creating {topology.control_plane} and {nodes} node namespace(s) on {topology.subnet}")
        topology.create()
        cp = topology.machine(topology.control_plane)
        _control_plane(launch, topology, cp.name, cp.address, api_port, etcd_port, socket_path, say,
                       controller_manager_args)
    except Exception:
        _teardown(state, say)
        raise
    path = write_config(state.server, config_path)
    say("config", f"wrote {path} (server {state.server})")
    return state


def _control_plane(launch: Launcher, topology: Topology, cp: str, address: str, api_port: int, etcd_port: int,
                   socket_path: Path, say: Progress, controller_manager_args: Sequence[str] = ()) -> None:
    data = Path(launch.state.state_dir) / "etcd"
    client_urls = f"http://127.0.0.1:{etcd_port},http://{address}:{etcd_port}"
    peer = f"http://127.0.0.1:{etcd_port + 1}"
    say("etcd", "starting")
    etcd = launch.start("etcd", cp, [
        etcd_binary(), "--name", "kubelab", "--data-dir", str(data), "--listen-client-urls", client_urls,
        "--advertise-client-urls", f"http://{address}:{etcd_port}", "--listen-peer-urls", peer,
        "--initial-advertise-peer-urls", peer, "--initial-cluster", f"kubelab={peer}",
        "--quota-backend-bytes", str(8 * 1024 ** 3)], f"http://{address}:{etcd_port}")
    launch.wait(etcd, lambda: _etcd_healthy(cp, etcd_port))
    say("etcd", f"ready at http://{address}:{etcd_port} (in namespace {cp})")

    say("apiserver", "starting")
    apiserver = launch.start("apiserver", cp, [
        sys.executable, "-m", "apiserver", "--etcd-servers", f"http://127.0.0.1:{etcd_port}",
        "--bind-address", address, "--port", str(api_port), "--unix-socket", str(socket_path),
        "--metrics-bind-address", "", "--etcd-compaction-interval", "300"], f"{address}:{api_port}")
    launch.wait(apiserver, lambda: apiserver_ready(f"unix://{socket_path}"))
    say("apiserver", f"ready at {address}:{api_port} and unix://{socket_path}")

    server = f"unix://{socket_path}"
    launch.component("controller-manager", "controller_manager", cp, server, *controller_manager_args)
    launch.component("scheduler", "scheduler", cp, server)
    launch.component("clusterdns", "clusterdns", cp, server, "--bind-address", address, "--port", "53")
    kube_dns(server, address)
    say("clusterdns", f"serving at {address}:53 behind Service kube-system/kube-dns ({KUBE_DNS_IP})")
    if topology.nodes:
        launch.component("podnetwork", "podnetwork", cp, server, "--node-name", cp)
        certs = _images(launch, cp, address, say)
        _nodes(launch, topology, f"{address}:{api_port}", server, certs, say)


REGISTRY_PORT = 5000
NODE_READY_TIMEOUT = 120.0


def _images(launch: Launcher, cp: str, address: str, say: Progress) -> Path:
    """Build the local images (cached), serve them from Debian's registry in
    the control plane, push them under the public names, and write the
    mirror config the nodes' shims read: the registry config directory."""
    from deploy.images import LocalRegistry
    from deploy.images.__main__ import cache_dir

    cache = cache_dir()
    say("images", "building from Debian packages (cached after the first time)")
    _run([sys.executable, "-m", "deploy.images", "build", "--out", str(cache / "images")], "building images")
    registry = LocalRegistry(cache / "registry", REGISTRY_PORT, address="0.0.0.0")
    url = f"http://{address}:{REGISTRY_PORT}"
    component = launch.start("registry", cp, registry.command(), url)
    launch.wait(component, lambda: _run(["nsenter", f"--net=/run/netns/{cp}", "busybox", "wget", "-q", "-O",
                                         "/dev/null", f"http://127.0.0.1:{REGISTRY_PORT}/v2/"], "", check=False))
    _run(["nsenter", f"--net=/run/netns/{cp}", sys.executable, "-m", "deploy.images", "push", "--out",
          str(cache / "images"), "--port", str(REGISTRY_PORT), "--data", str(cache / "registry")], "pushing images")
    certs = Path(launch.state.state_dir) / "certs.d"
    _run([sys.executable, "-m", "deploy.images", "mirrors", "--config-path", str(certs), "--registry", url,
          "--offline"], "writing the mirror config")
    say("registry", f"serving the lab's images at {url}")
    return certs


def _run(argv: Sequence[str], what: str, *, check: bool = True) -> bool:
    out = subprocess.run(list(argv), capture_output=True, text=True)
    if out.returncode != 0 and check:
        raise LabError(f"{what} failed: {(out.stderr or out.stdout).strip()[-2000:]}")
    return out.returncode == 0


def _nodes(launch: Launcher, topology: Topology, api_address: str, server: str, certs: Path,
           say: Progress) -> None:
    """Every node namespace runs `kubelab join`, as a VM would; the lab waits
    for each Node to report Ready."""
    nodes = Path(launch.state.state_dir) / "nodes"
    for machine in topology.machines[1:]:
        say(machine.name, f"joining at {machine.address}")
        launch.start(machine.name, machine.name, [
            sys.executable, "-m", "kubelab", "join", "--server", api_address, "--name", machine.name,
            "--node-ip", machine.address, "--state-dir", str(nodes / machine.name),
            "--registry-config-path", str(certs), "--proxy-mode", launch.state.proxy_mode], machine.address)
    from client import ClientConfig, SyncClientset
    from proto import core_pb2

    deadline = time.monotonic() + NODE_READY_TIMEOUT
    waiting = {m.name for m in topology.machines[1:]}
    cs = SyncClientset(ClientConfig(server=server))
    try:
        while waiting:
            for name in sorted(waiting):
                component = next(c for c in launch.state.components if c.name == name)
                if not alive(component):
                    tail = Path(component.log).read_text(errors="replace").splitlines()[-15:]
                    raise LabError(f"node {name} stopped while joining; its log ({component.log}) ends:\n"
                                   + "\n".join(tail))
            waiting -= {n.metadata.name for n in cs.resource(core_pb2.Node).list().items
                        if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)}
            if waiting and time.monotonic() > deadline:
                raise LabError(f"nodes not Ready after {NODE_READY_TIMEOUT:.0f}s: {', '.join(sorted(waiting))}; "
                               f"see {nodes}/<node>/logs")
            time.sleep(0.5)
    finally:
        cs.close()
    say("nodes", f"{topology.nodes} Ready")


KUBE_DNS_IP = "10.96.0.10"


def kube_dns(server: str, address: str) -> None:
    """The `kube-dns` Service at 10.96.0.10 in kube-system, as kubeadm's
    DNS addon makes it, in front of the DNS process on the control plane:
    a Service without a selector, so its EndpointSlice is made here, by
    hand (the EndpointSlice controller leaves such Services alone)."""
    from api import StatusError, from_dict
    from client import ClientConfig, SyncClientset
    from proto import core_pb2, discovery_pb2

    ports = [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]
    labels = {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}
    service = from_dict(core_pb2.Service, {
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
        "spec": {"clusterIP": KUBE_DNS_IP,
                 "ports": [{"name": n, "port": p, "targetPort": p, "protocol": proto} for n, p, proto in ports]}})
    slice_ = from_dict(discovery_pb2.EndpointSlice, {
        "metadata": {"name": "kube-dns-control-plane", "namespace": "kube-system",
                     "labels": {"kubernetes.io/service-name": "kube-dns",
                                "endpointslice.kubernetes.io/managed-by": "kubelab-lab"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True, "serving": True}}],
        "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]})
    cs = SyncClientset(ClientConfig(server=server))
    try:
        for obj in (service, slice_):
            client = cs.resource(type(obj), "kube-system")
            try:
                client.create(obj)
            except StatusError as err:
                if err.reason != "AlreadyExists":  # kept from an earlier run of the same etcd: fine
                    raise
    finally:
        cs.close()


def _etcd_healthy(namespace: str, port: int) -> bool:
    out = subprocess.run(["ip", "netns", "exec", namespace, "etcdctl", "--endpoints", f"http://127.0.0.1:{port}",
                          "--dial-timeout", "1s", "endpoint", "health"],
                         capture_output=True, text=True, env={**os.environ, "ETCDCTL_API": "3"})
    return out.returncode == 0


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


def _teardown(state: LabState, say: Progress) -> None:
    """Stop the processes, clear what the nodes' runtimes left (containers,
    pod namespaces, mounts, cgroups), then remove the namespaces and the
    state directory."""
    _stop_all(state, say)
    from .node import cleanup_node

    nodes = Path(state.state_dir) / "nodes"
    for node in sorted(nodes.iterdir()) if nodes.is_dir() else []:
        removed = cleanup_node(node.name, node)
        if removed:
            say(node.name, "removed " + ", ".join(removed))
    removed = Topology(prefix=state.prefix, nodes=max(state.nodes, 0)).destroy()
    if removed:
        say("network", f"removed namespaces {', '.join(removed)}")
    shutil.rmtree(state.state_dir, ignore_errors=True)


def down(state_dir: Path, *, progress: Progress | None = None, config_path: Path | None = None) -> bool:
    """Stop the lab and remove everything it made; False if none was up."""
    say = progress or (lambda _c, _m: None)
    state = LabState.load(state_dir)
    if state is None:
        return False
    _teardown(state, say)
    config = config_path or default_config_path()
    if config.exists() and state.server in config.read_text():
        config.unlink()
        say("config", f"removed {config}")
    return True


def status(state_dir: Path) -> LabState | None:
    return LabState.load(state_dir)
