"""Support for the CRI shim's integration tests (no tests here): a scratch
network namespace per test, a busybox image built from Debian's
busybox-static, and a real `python -m crishim` running inside the scratch
netns (through nsenter, so it keeps the host's mount namespace).

Everything made is removed in `Shim.cleanup()`, even after a failure:
runc containers (killed), overlay mounts, pod netns, cgroups, files.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc

from crishim import _oci
from crishim._images import ImageStore
from proto import cri_pb2, cri_pb2_grpc

BUSYBOX = "docker.io/library/busybox:test"
PAUSE = "registry.k8s.io/pause:3.10"
POD_CIDR = "10.250.7.0/24"


def require_tools() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("runc", "skopeo", "busybox", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    if not Path("/usr/lib/cni/bridge").exists():
        return "needs containernetworking-plugins"
    return None


@contextlib.contextmanager
def scratch_netns() -> Iterator[str]:
    name = f"kl-t-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def busybox_layers() -> list[bytes]:
    binary = Path(shutil.which("busybox") or "/bin/busybox").read_bytes()
    applets = subprocess.run(["busybox", "--list"], capture_output=True, text=True, check=True).stdout.split()
    files: dict[str, bytes | str | None] = {"bin": None, "etc": None, "tmp": None, "root": None,
                                            "bin/busybox": binary}
    for applet in applets:
        if applet != "busybox":
            files[f"bin/{applet}"] = "busybox"
    files["etc/passwd"] = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
    files["etc/group"] = b"root:x:0:\nnogroup:x:65534:\n"
    files["etc/removed-by-layer-2"] = b"gone\n"
    second: dict[str, bytes | str | None] = {"etc/.wh.removed-by-layer-2": b"", "etc/layer-2": b"two\n"}
    return [_oci.layer_tar(files), _oci.layer_tar(second, mode=0o644)]


def build_layout(path: Path) -> _oci.Layout:
    """An OCI layout holding busybox:test and a pause image made from the same layers."""
    layout = _oci.Layout(path)
    layers = busybox_layers()
    env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    _oci.build_image(layout, BUSYBOX, layers, {"Cmd": ["sh"], "Env": env})
    _oci.build_image(layout, PAUSE, layers[:1], {"Entrypoint": ["/bin/sleep", "2147483647"], "Env": env})
    return layout


class Shim:
    def __init__(self, netns: str, base: Path, *, import_images: bool = True, extra: tuple[str, ...] = ()) -> None:
        self.netns = netns
        self.base = base
        self.node = f"t-{secrets.token_hex(4)}"
        self.root = base / "root"
        self.state = base / "state"
        self.logs = base / "logs"
        self.socket = base / "crishim.sock"
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.channel: grpc.Channel | None = None
        if import_images:
            store = ImageStore(self.root / "images", None)
            store.start()
            layout = build_layout(base / "layout")
            store.import_layout(layout, BUSYBOX)
            store.import_layout(layout, PAUSE)

    def start(self) -> Shim:
        argv = ["nsenter", f"--net=/run/netns/{self.netns}", sys.executable, "-m", "crishim",
                "--listen", f"unix://{self.socket}", "--root", str(self.root), "--state-dir", str(self.state),
                "--node-name", self.node, "--pod-cidr", POD_CIDR, "--pod-infra-container-image", PAUSE,
                "--container-log-max-size", "4Ki", "--container-log-max-files", "3", "-v", "debug", *self.extra]
        out = open(self.base / "crishim.log", "ab")
        self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=str(Path(__file__).resolve().parents[2]), start_new_session=True)
        out.close()
        self.channel = grpc.insecure_channel(f"unix://{self.socket}")
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"crishim exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.runtime.Version(cri_pb2.VersionRequest(), timeout=1)
                return self
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"crishim not serving:\n{self.log_tail()}") from None
                time.sleep(0.1)

    def log_tail(self) -> str:
        path = self.base / "crishim.log"
        return path.read_text()[-3000:] if path.exists() else ""

    @property
    def runtime(self) -> cri_pb2_grpc.RuntimeServiceStub:
        assert self.channel is not None
        return cri_pb2_grpc.RuntimeServiceStub(self.channel)

    @property
    def images(self) -> cri_pb2_grpc.ImageServiceStub:
        assert self.channel is not None
        return cri_pb2_grpc.ImageServiceStub(self.channel)

    def kill(self) -> None:
        """SIGKILL the shim (not its containers)."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cleanup(self) -> None:
        self.stop()
        runc_root = self.state / "runc"
        if runc_root.exists():
            listed = subprocess.run(["runc", "--root", str(runc_root), "list", "--format", "json"],
                                    capture_output=True, text=True)
            for state in json.loads(listed.stdout or "null") or []:
                subprocess.run(["runc", "--root", str(runc_root), "kill", "--all", state["id"], "KILL"],
                               capture_output=True)
                for _ in range(100):
                    done = subprocess.run(["runc", "--root", str(runc_root), "delete", "--force", state["id"]],
                                          capture_output=True)
                    if done.returncode == 0:
                        break
                    time.sleep(0.05)
        for sandbox in (self.root / "sandboxes").glob("*/sandbox.json"):
            netns = json.loads(sandbox.read_text()).get("netns")
            if netns:
                subprocess.run(["ip", "netns", "delete", netns], capture_output=True)
        with open("/proc/self/mountinfo") as fh:
            mounts = [line.split()[4] for line in fh]
        for point in sorted((m for m in mounts if m.startswith(str(self.base))), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)
        for controller in Path("/sys/fs/cgroup").iterdir():
            top = controller / "kubelab" / self.node
            if top.is_dir():
                for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(str(p)), reverse=True):
                    with contextlib.suppress(OSError):
                        d.rmdir()
                with contextlib.suppress(OSError):
                    top.rmdir()
        shutil.rmtree(self.base, ignore_errors=True)


class Attached:
    """One Attach call driven from the test: requests through a queue,
    responses collected by a thread."""

    def __init__(self, shim: Shim, cid: str, *, stdin: bool = False, tty: bool = False) -> None:
        self.requests: queue.Queue[cri_pb2.AttachRequest | None] = queue.Queue()
        self.requests.put(cri_pb2.AttachRequest(start=cri_pb2.AttachStart(
            container_id=cid, stdin=stdin, tty=tty, stdout=True, stderr=True)))
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.exit_codes: list[int] = []
        self.error: grpc.RpcError | None = None
        self.call = shim.runtime.Attach(iter(self.requests.get, None))
        self.thread = threading.Thread(target=self._collect, daemon=True)
        self.thread.start()

    def _collect(self) -> None:
        try:
            for response in self.call:
                kind = response.WhichOneof("message")
                if kind == "stdout":
                    self.stdout += response.stdout
                elif kind == "stderr":
                    self.stderr += response.stderr
                else:
                    self.exit_codes.append(response.exit_code)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:   # a detach
                self.error = err

    def send(self, data: bytes) -> None:
        self.requests.put(cri_pb2.AttachRequest(stdin=data))

    def resize(self, width: int, height: int) -> None:
        self.requests.put(cri_pb2.AttachRequest(resize=cri_pb2.TerminalSize(width=width, height=height)))

    def close_stdin(self) -> None:
        self.requests.put(cri_pb2.AttachRequest(close_stdin=True))

    def detach(self) -> None:
        self.call.cancel()
        self.requests.put(None)
        self.thread.join(10)

    def ended(self) -> bool:
        return not self.thread.is_alive()


def sandbox_config(name: str, log_dir: Path, **kwargs: object) -> cri_pb2.PodSandboxConfig:
    config = cri_pb2.PodSandboxConfig(
        metadata=cri_pb2.PodSandboxMetadata(name=name, namespace="default", uid=secrets.token_hex(8)),
        hostname=name, log_directory=str(log_dir / name),
        dns_config=cri_pb2.DNSConfig(servers=["10.96.0.10"], searches=["default.svc.cluster.local"],
                                     options=["ndots:5"]), **kwargs)  # type: ignore[arg-type]
    return config


@contextlib.contextmanager
def pod_sandbox(shim: Shim, test_name: str) -> Iterator[tuple[str, cri_pb2.PodSandboxConfig]]:
    """A sandbox named after the test, stopped and removed afterwards: (id, config)."""
    config = sandbox_config(test_name.replace("_", "-")[:40].strip("-").lower(), shim.logs)
    sandbox_id = shim.runtime.RunPodSandbox(cri_pb2.RunPodSandboxRequest(config=config)).pod_sandbox_id
    try:
        yield sandbox_id, config
    finally:
        shim.runtime.StopPodSandbox(cri_pb2.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))
        shim.runtime.RemovePodSandbox(cri_pb2.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))


def run(shim: Shim, pod: tuple[str, cri_pb2.PodSandboxConfig], config: cri_pb2.ContainerConfig) -> str:
    """Create and start a container in the sandbox; its id."""
    sandbox_id, sandbox = pod
    cid = shim.runtime.CreateContainer(cri_pb2.CreateContainerRequest(
        pod_sandbox_id=sandbox_id, config=config, sandbox_config=sandbox)).container_id
    shim.runtime.StartContainer(cri_pb2.StartContainerRequest(container_id=cid))
    return cid


def container_config(name: str, command: list[str], **kwargs: object) -> cri_pb2.ContainerConfig:
    return cri_pb2.ContainerConfig(metadata=cri_pb2.ContainerMetadata(name=name),
                                   image=cri_pb2.ImageSpec(image=BUSYBOX), command=command,
                                   log_path=f"{name}/0.log", **kwargs)  # type: ignore[arg-type]


def wait_for(check: object, what: str, timeout: float = 60) -> None:
    """Poll until check() is truthy; the timeout only stops a hung test, nothing is asserted about time."""
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.05)
