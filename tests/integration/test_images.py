"""deploy.images end to end with the real tools: build the OCI layout from
this machine's Debian packages (twice: the second build comes from the
cache and gives the same digests), run Debian's docker-registry on a free
loopback port, push under the public names, read them back through the
registry API and skopeo, then run the images with runc (unpacked by umoci)
in a scratch network namespace: nginx serves its welcome page, the test
server answers /, /echo, /healthz and exits with the code /exit asks for,
busybox runs a shell, pause reaps orphans and exits 0 on SIGTERM.

Needs root and busybox-static, nginx, docker-registry, skopeo, umoci, runc.
Everything it makes (layout, registry, bundles, containers, netns) lives
under a temporary directory or a kl-t-* name and is removed even on failure.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.images import Layout, LocalRegistry, build, plan_pushes, push, scan_manifests, write_mirrors
from deploy.images._layout import MEDIA_MANIFEST
from deploy.images._names import PushPlan
from deploy.local import free_port
from tests.conftest import MANIFESTS

TOOLS = ("busybox", "docker-registry", "skopeo", "umoci", "runc", "ip", "nginx")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="runs containers with runc and makes a network namespace: needs root"),
    pytest.mark.skipif(any(shutil.which(t) is None and not Path(f"/usr/sbin/{t}").exists() for t in TOOLS),
                       reason=f"needs {', '.join(TOOLS)}"),
]

# what a CRI runtime grants by default (containerd's and Docker's default set)
DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
                "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
                "CAP_KILL", "CAP_AUDIT_WRITE"]


@dataclass
class Built:
    layout: Path
    digests: dict[str, str]
    skipped: set[str]       # optional images whose Debian package is not installed here

    def need(self, image: str) -> None:
        if image in self.skipped:
            pytest.skip(f"image {image} was not built: its Debian package is not installed")


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """tmp_path, emptied after the test (layouts and registry data are megabytes)."""
    try:
        yield tmp_path
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    out = tmp_path_factory.mktemp("images") / "layout"
    try:
        result = build(out, install=False)
        yield Built(out, {r.name: r.manifest.digest for r in result.images}, {name for name, _ in result.skipped})
    finally:
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    reg = LocalRegistry(tmp_path_factory.mktemp("registry"), free_port())
    try:
        reg.start()
        yield reg
    finally:
        reg.stop()
        shutil.rmtree(reg.data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def pushed(built: Built, registry: LocalRegistry) -> PushPlan:
    plan = plan_pushes(scan_manifests([MANIFESTS]))
    done, absent = push(built.layout, plan, registry)
    assert {target.image for target, _ in absent} <= built.skipped
    assert {o.action for o in done} == {"pushed"}
    return plan


def test_second_build_comes_from_the_cache_with_the_same_digests(built: Built, scratch: Path) -> None:
    again = build(built.layout, install=False)
    assert again.layers_built == 0 and again.layers_cached > 0
    assert {r.name: r.manifest.digest for r in again.images} == built.digests
    fresh = build(scratch / "fresh", only={"busybox", "pause"}, install=False)
    assert fresh.layers_built == 2 and fresh.layers_cached == 0
    assert {r.name: r.manifest.digest for r in fresh.images} == {n: built.digests[n] for n in ("busybox", "pause")}
    assert set(Layout(scratch / "fresh").refs()) == {"busybox", "pause"}


def _get(url: str, accept: str = MEDIA_MANIFEST) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=10) as reply:
        return reply.status, dict(reply.headers), reply.read()


@pytest.mark.parametrize(("path", "tag", "image"), [
    ("library/busybox", "1.28", "busybox"), ("library/nginx", "1.14.2", "nginx"), ("pause", "3.10", "pause"),
    ("e2e-test-images/agnhost", "2.40", "agnhost"),
])
def test_public_names_resolve_through_the_registry(built: Built, registry: LocalRegistry, pushed: PushPlan,
                                                   path: str, tag: str, image: str) -> None:
    status, headers, body = _get(f"{registry.url}/v2/{path}/manifests/{tag}")
    assert status == 200 and headers["Docker-Content-Digest"] == built.digests[image]
    manifest = json.loads(body)
    _, _, config = _get(f"{registry.url}/v2/{path}/blobs/{manifest['config']['digest']}", "*/*")
    expected = json.loads((built.layout / "blobs" / "sha256" / manifest["config"]["digest"][7:]).read_bytes())
    assert json.loads(config)["config"] == expected["config"]
    out = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{registry.host}/{path}:{tag}"],
                         capture_output=True, text=True, check=True).stdout
    inspected = json.loads(out)
    assert inspected["Digest"] == built.digests[image]
    assert inspected["Layers"] == [layer["digest"] for layer in manifest["layers"]]


def test_every_mapped_manifest_image_is_served_and_a_second_push_copies_nothing(
        built: Built, registry: LocalRegistry, pushed: PushPlan) -> None:
    for target in pushed.targets:
        if target.image in built.skipped:
            continue
        ref = target.reference
        _, headers, _ = _get(f"{registry.url}/v2/{ref.mirror_path}/manifests/{ref.tag}")
        assert headers["Docker-Content-Digest"] == built.digests[target.image], str(ref)
    done, absent = push(built.layout, pushed, registry)
    assert {t.image for t, _ in absent} <= built.skipped and {o.action for o in done} == {"up to date"}
    # the documented gap: no local image stands in for fluentd
    assert {use.text for use, _ in pushed.unmapped} == {"k8s.gcr.io/fluentd-elasticsearch:1.20",
                                                        "quay.io/fluentd_elasticsearch/fluentd:v5.0.1"}


def test_mirror_config_points_public_hosts_at_the_registry(registry: LocalRegistry, scratch: Path) -> None:
    write_mirrors(scratch, registry.url)
    data = tomllib.loads((scratch / "docker.io" / "hosts.toml").read_text())
    assert data == {"server": "https://registry-1.docker.io",
                    "host": {registry.url: {"capabilities": ["pull", "resolve"], "skip_verify": True}}}
    pause = tomllib.loads((scratch / "registry.k8s.io" / "hosts.toml").read_text())
    # what a pull of registry.k8s.io/pause:3.10 through that mirror asks for
    status, _, _ = _get(f"{next(iter(pause['host']))}/v2/pause/manifests/3.10")
    assert status == 200


def test_up_twice_then_down(scratch: Path) -> None:
    port = free_port()
    flags = ["--out", str(scratch / "images"), "--data", str(scratch / "registry"), "--port", str(port),
             "--config-path", str(scratch / "certs.d"), "--only", "busybox", "--only", "pause"]
    run = [sys.executable, "-m", "deploy.images"]
    try:
        first = subprocess.run([*run, "up", *flags], capture_output=True, text=True, check=False)
        assert first.returncode == 0, first.stderr
        assert "2 layers written, 0 from cache" in first.stdout
        # agnhost, nginx ... were not built (--only): reported, not silently skipped
        assert "cannot push registry.k8s.io/e2e-test-images/agnhost:2.40" in first.stderr
        second = subprocess.run([*run, "up", *flags], capture_output=True, text=True, check=False)
        assert second.returncode == 0, second.stderr
        assert "0 layers written, 2 from cache" in second.stdout and "\n0 pushed, " in second.stdout
        assert "unchanged" in second.stdout and "written " not in second.stdout
        assert f"[host.\"http://127.0.0.1:{port}\"]" in (scratch / "certs.d/docker.io/hosts.toml").read_text()
        status = subprocess.run([*run, "registry", "status", "--port", str(port), "--data", str(scratch / "registry")],
                                capture_output=True, text=True, check=False)
        assert status.returncode == 0 and f"serving http://127.0.0.1:{port}" in status.stdout
    finally:
        down = subprocess.run([*run, "down", "--port", str(port), "--data", str(scratch / "registry")],
                              capture_output=True, text=True, check=False)
    assert down.stdout.strip() == "registry stopped"
    status = subprocess.run([*run, "registry", "status", "--data", str(scratch / "registry")],
                            capture_output=True, text=True, check=False)
    assert status.returncode == 3 and "not started" in status.stdout


# --- running the images -------------------------------------------------------
@pytest.fixture
def netns() -> Iterator[str]:
    name = f"kl-t-img-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


class Containers:
    """Bundles unpacked by umoci and run by runc under a private --root; close() removes them all."""

    def __init__(self, layout: Path, workdir: Path, netns: str) -> None:
        self.layout, self.workdir, self.netns = layout, workdir, netns
        self.root = workdir / "runc"
        self.ids: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []

    def runc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["runc", "--root", str(self.root), *args], capture_output=True, text=True, check=check)

    def bundle(self, image: str, args: list[str] | None, env: tuple[str, ...] = (),
               hostname: str = "kl-test") -> tuple[str, Path]:
        cid = f"kl-t-img-{image}-{secrets.token_hex(3)}"
        bundle = self.workdir / cid
        subprocess.run(["umoci", "unpack", "--image", f"{self.layout}:{image}", str(bundle)], check=True,
                       capture_output=True)
        config = json.loads((bundle / "config.json").read_text())
        process = config["process"]
        process["terminal"] = False
        if args is not None:
            process["args"] = args
        process["env"] += list(env)
        process["capabilities"] = {k: DEFAULT_CAPS for k in ("bounding", "effective", "permitted")}
        config["hostname"] = hostname
        config["linux"]["namespaces"] = [
            {"type": "network", "path": f"/var/run/netns/{self.netns}"} if ns["type"] == "network" else ns
            for ns in config["linux"]["namespaces"]]
        (bundle / "config.json").write_text(json.dumps(config))
        self.ids.append(cid)
        return cid, bundle

    def start(self, image: str, args: list[str] | None = None, env: tuple[str, ...] = (),
              hostname: str = "kl-test") -> tuple[str, subprocess.Popen[bytes], Path]:
        """runc run in the foreground: the Popen's exit code is the container's."""
        cid, bundle = self.bundle(image, args, env, hostname)
        log = self.workdir / f"{cid}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(["runc", "--root", str(self.root), "run", "--bundle", str(bundle), cid],
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        wait_for(lambda: self.runc("state", cid, check=False).returncode == 0
                 and json.loads(self.runc("state", cid).stdout)["status"] == "running", f"{cid} running", proc)
        return cid, proc, log

    def close(self) -> None:
        for cid in self.ids:
            self.runc("delete", "-f", cid, check=False)
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for cid in self.ids:
            shutil.rmtree(self.workdir / cid, ignore_errors=True)
            log = self.workdir / f"{cid}.log"
            if log.exists():    # shown by pytest when the test failed
                print(f"--- {cid} output ---\n{log.read_text(errors='replace')[-3000:]}")
                log.unlink()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def containers(built: Built, scratch: Path, netns: str) -> Iterator[Containers]:
    c = Containers(built.layout, scratch, netns)
    try:
        yield c
    finally:
        c.close()


def wait_for(check: object, what: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the container exited with {proc.returncode}")
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not reached within {timeout}s")


def http_get(netns: str, url: str) -> tuple[int, str]:
    """GET from inside the namespace with the host's busybox wget; (status, body), status 0 = no answer."""
    proc = subprocess.run(["ip", "netns", "exec", netns, "timeout", "5", "busybox", "wget", "-S", "-q", "-O-", url],
                          capture_output=True, text=True, check=False)
    status = 0
    for line in proc.stderr.splitlines():
        if line.strip().startswith("HTTP/1."):
            status = int(line.split()[1])
        elif "server returned error: HTTP/1." in line:
            status = int(line.split("HTTP/1.")[1].split()[1])
    return status, proc.stdout


def test_busybox_runs_a_shell(containers: Containers) -> None:
    cid, bundle = containers.bundle("busybox", ["sh", "-c", "echo hi; readlink /bin/sh; id -un"])
    proc = subprocess.run(["runc", "--root", str(containers.root), "run", "--bundle", str(bundle), cid],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    assert (proc.returncode, proc.stdout.split()) == (0, ["hi", "/bin/busybox", "root"]), proc.stderr


def test_perl_computes_pi_as_the_docs_job_asks(built: Built, containers: Containers) -> None:
    built.need("perl")
    cid, bundle = containers.bundle("perl", ["perl", "-Mbignum=bpi", "-wle", "print bpi(30)"])
    proc = subprocess.run(["runc", "--root", str(containers.root), "run", "--bundle", str(bundle), cid],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    assert (proc.returncode, proc.stdout.strip()) == (0, "3.14159265358979323846264338328"), proc.stderr


def test_redis_answers_ping_and_keeps_a_key(built: Built, containers: Containers) -> None:
    built.need("redis")
    cid, proc, _ = containers.start("redis")
    wait_for(lambda: containers.runc("exec", cid, "redis-cli", "ping", check=False).stdout.strip() == "PONG",
             "redis answering", proc)
    assert containers.runc("exec", cid, "redis-cli", "set", "greeting", "hi").stdout.strip() == "OK"
    assert containers.runc("exec", cid, "redis-cli", "get", "greeting").stdout.strip() == "hi"


def test_nginx_serves_its_welcome_page_and_quits_on_its_stop_signal(containers: Containers) -> None:
    cid, proc, log = containers.start("nginx")
    wait_for(lambda: http_get(containers.netns, "http://127.0.0.1/")[0] == 200, "nginx answering", proc)
    status, body = http_get(containers.netns, "http://127.0.0.1/")
    assert status == 200 and "<title>Welcome to nginx!</title>" in body
    assert http_get(containers.netns, "http://127.0.0.1/missing")[0] == 404
    workers = containers.runc("exec", cid, "ps", "-o", "user,args").stdout
    assert any(line.split()[0] == "nginx" and "worker process" in line for line in workers.splitlines()), workers
    containers.runc("kill", cid, "QUIT")
    assert proc.wait(30) == 0
    assert '"GET / HTTP/1.1" 200' in log.read_text()     # the access log is the container's stdout


def test_testserver_answers_hostname_echo_healthz_and_exits_with_the_code_asked(containers: Containers) -> None:
    cid, proc, _ = containers.start("testserver", env=("PORT=9090",), hostname="kl-testserver")
    base = "http://127.0.0.1:9090"
    wait_for(lambda: http_get(containers.netns, base + "/healthz")[0] == 200, "test server answering", proc)
    assert http_get(containers.netns, base + "/") == (200, "kl-testserver")
    assert http_get(containers.netns, base + "/echo?msg=hello%20kube+lab") == (200, "hello kube lab")
    assert http_get(containers.netns, base + "/nope")[0] == 404
    containers.runc("exec", cid, "touch", "/tmp/unready")
    assert http_get(containers.netns, base + "/healthz")[0] == 500
    assert http_get(containers.netns, base + "/exit?code=300")[0] == 400
    assert http_get(containers.netns, base + "/exit?code=7") == (200, "exiting with code 7")
    assert proc.wait(30) == 7


def test_agnhost_liveness_serves_healthz_on_8080(containers: Containers) -> None:
    _, proc, _ = containers.start("agnhost", ["/agnhost", "liveness"])
    wait_for(lambda: http_get(containers.netns, "http://127.0.0.1:8080/healthz")[0] != 0, "agnhost answering", proc)
    assert http_get(containers.netns, "http://127.0.0.1:8080/healthz") == (200, "ok")


def test_pause_reaps_orphans_and_exits_zero_on_sigterm(containers: Containers) -> None:
    cid, proc, _ = containers.start("pause")
    # the exec'd shell exits at once; its `sleep 2` is orphaned onto PID 1 (pause), which must reap it
    subprocess.run(["runc", "--root", str(containers.root), "exec", "-d", cid, "sh", "-c", "sleep 2 & exit 0"],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

    def processes() -> list[list[str]]:
        ps = containers.runc("exec", cid, "ps", "-o", "ppid,stat,args").stdout.splitlines()[1:]
        return [line.split(None, 2) for line in ps]
    wait_for(lambda: any(p[0] == "1" and p[2] == "sleep 2" for p in processes()), "sleep 2 orphaned onto pause", proc)
    wait_for(lambda: not any(p[1].startswith("Z") or p[2] == "sleep 2" for p in processes()),
             "the orphan reaped", proc)
    containers.runc("kill", cid, "TERM")
    assert proc.wait(30) == 0
