"""What goes into each image, and the build that writes them all into one
OCI layout.

Every image starts from one shared base layer: Debian's busybox-static with
its applet symlinks at the paths `busybox --list-full` gives (as
`busybox --install -s` would lay them out), the host's merged-/usr symlinks
(/bin -> usr/bin ...), and /etc/passwd and /etc/group. Because the base
layer is byte-identical everywhere, the registry stores it once and every
image has a shell for `kubectl exec` and lifecycle hooks.

On top of it: pause (/pause), nginx (Debian's binary with what ldd names),
the test server (also as agnhost and hello-go-gke with their own entrypoint
and port), perl and redis (Debian's packages). An image that needs a
package that is not installed gets it through apt-get when running as root;
if that fails, a required image stops the build with the package's name,
an optional one (perl, redis) is left out with a warning, and the names that
needed it are then reported as unmapped by `push`.

Known wart inherited from Debian 12: its busybox-static is built without
wget's -T (timeout) option and segfaults when given it; use `timeout N wget`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _scripts
from ._layout import Layer, Layout, ManifestRecord
from ._rootfs import BuildError, Rootfs

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_ARCH = {"amd64": "amd64", "arm64": "arm64", "armhf": "arm", "i386": "386", "ppc64el": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64"}


# --- layers ---------------------------------------------------------------
def base_layer() -> Rootfs:
    fs = Rootfs()
    for top in ("bin", "sbin", "lib", "lib64"):
        if os.path.islink(f"/{top}"):
            fs.symlink(f"/{top}", os.readlink(f"/{top}"))
            fs.mkdir("/" + os.path.normpath(f"/{os.readlink(f'/{top}')}").lstrip("/"))
    busybox = shutil.which("busybox")
    if busybox is None:
        raise BuildError("busybox is not installed: apt-get install -y busybox-static")
    fs.copy_host_path(busybox)
    if fs.resolve("/bin/busybox") != fs.resolve(busybox):
        fs.symlink("/bin/busybox", busybox)
    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if not fs.resolve_parent("/" + applet).endswith("/busybox"):
            fs.symlink("/" + applet, "/bin/busybox")
    for path, mode in (("/etc", 0o755), ("/root", 0o700), ("/tmp", 0o1777), ("/var/tmp", 0o1777), ("/home", 0o755),
                       ("/proc", 0o555), ("/sys", 0o555), ("/dev", 0o755), ("/run", 0o755), ("/usr/local/bin", 0o755),
                       ("/var/log", 0o755), ("/var/www", 0o755)):
        fs.mkdir(path, mode)
    fs.symlink("/var/run", "../run")
    fs.write("/etc/passwd", _scripts.USER_DATABASE)
    fs.write("/etc/group", _scripts.GROUP_DATABASE)
    fs.write("/etc/nsswitch.conf", _scripts.NSSWITCH)
    return fs


def pause_layer() -> Rootfs:
    fs = Rootfs()
    fs.write("/pause", _scripts.PAUSE, 0o755)
    return fs


def nginx_layer() -> Rootfs:
    fs = Rootfs()
    fs.copy_binary("/usr/sbin/nginx")
    fs.copy_host_path("/etc/nginx/mime.types")
    fs.write("/etc/nginx/nginx.conf", _scripts.NGINX_CONF)
    fs.write("/etc/nginx/conf.d/default.conf", _scripts.NGINX_DEFAULT_SERVER)
    fs.write("/usr/share/nginx/html/index.html", _scripts.NGINX_INDEX)
    fs.write("/usr/share/nginx/html/50x.html", _scripts.NGINX_50X)
    fs.mkdir("/var/log/nginx")
    fs.symlink("/var/log/nginx/access.log", "/dev/stdout")
    fs.symlink("/var/log/nginx/error.log", "/dev/stderr")
    fs.mkdir("/var/lib/nginx")
    fs.mkdir("/var/cache/nginx")
    return fs


def testserver_layer() -> Rootfs:
    fs = Rootfs()
    fs.write("/testserver", _scripts.TESTSERVER, 0o755)
    fs.write("/usr/lib/testserver/handle", _scripts.HANDLER, 0o755)
    fs.write("/pause", _scripts.PAUSE, 0o755)
    fs.symlink("/agnhost", "testserver")
    return fs


def perl_layer() -> Rootfs:
    fs = Rootfs()
    for package in ("perl-base", "perl", *_installed_matching("perl-modules-*", "libperl5*")):
        fs.copy_package(package)
    return fs


def redis_layer() -> Rootfs:
    fs = Rootfs()
    fs.copy_binary("/usr/bin/redis-server")
    fs.copy_binary("/usr/bin/redis-cli")
    fs.mkdir("/data", 0o755)
    return fs


# --- images -----------------------------------------------------------------
@dataclass(frozen=True)
class ImageRecipe:
    name: str
    layers: tuple[str, ...]
    config: dict[str, Any]
    packages: tuple[str, ...] = ()        # Debian packages it is built from
    version_of: str = ""                  # the package whose version the image carries
    optional: bool = False


LAYERS: dict[str, tuple[Callable[[], Rootfs], str]] = {
    "base": (base_layer, "busybox-static with applet links, /etc/passwd, /etc/group"),
    "pause": (pause_layer, "/pause: sleep until SIGTERM/SIGINT, exit 0, reap children"),
    "nginx": (nginx_layer, "Debian nginx, its shared libraries, Docker Hub's config layout"),
    "testserver": (testserver_layer, "agnhost-like test server on busybox nc and sh"),
    "perl": (perl_layer, "Debian perl with its core modules"),
    "redis": (redis_layer, "Debian redis-server and redis-cli"),
}

_TESTSERVER_CONFIG = {"Env": [PATH_ENV], "Entrypoint": ["/testserver"], "Cmd": ["netexec"],
                      "ExposedPorts": {"8080/tcp": {}}}

RECIPES: tuple[ImageRecipe, ...] = (
    ImageRecipe("busybox", ("base",), {"Env": [PATH_ENV], "Cmd": ["sh"]}, ("busybox-static",), "busybox-static"),
    ImageRecipe("pause", ("base", "pause"), {"Env": [PATH_ENV], "Entrypoint": ["/pause"]},
                ("busybox-static",), "busybox-static"),
    ImageRecipe("nginx", ("base", "nginx"),
                {"Env": [PATH_ENV], "Cmd": ["nginx", "-g", "daemon off;"], "ExposedPorts": {"80/tcp": {}},
                 "StopSignal": "SIGQUIT"}, ("busybox-static", "nginx"), "nginx"),
    ImageRecipe("testserver", ("base", "testserver"), _TESTSERVER_CONFIG, ("busybox-static",), "busybox-static"),
    ImageRecipe("agnhost", ("base", "testserver"),
                {**_TESTSERVER_CONFIG, "Entrypoint": ["/agnhost"], "Cmd": ["pause"]},
                ("busybox-static",), "busybox-static"),
    ImageRecipe("hello", ("base", "testserver"),
                {**_TESTSERVER_CONFIG, "Cmd": ["hello"], "ExposedPorts": {"80/tcp": {}}},
                ("busybox-static",), "busybox-static"),
    ImageRecipe("perl", ("base", "perl"), {"Env": [PATH_ENV], "Cmd": ["perl", "-de0"]},
                ("busybox-static", "perl"), "perl", optional=True),
    ImageRecipe("redis", ("base", "redis"),
                {"Env": [PATH_ENV], "Cmd": ["redis-server", "--protected-mode", "no"], "WorkingDir": "/data",
                 "ExposedPorts": {"6379/tcp": {}}}, ("busybox-static", "redis-server"), "redis-server",
                optional=True),
)


@dataclass
class BuildResult:
    images: list[ManifestRecord] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (image, why)
    layers_built: int = 0
    layers_cached: int = 0


def build(out: Path, *, only: set[str] | None = None, install: bool = True,
          warn: Callable[[str], None] = print) -> BuildResult:
    """Build every recipe (or those in `only`) into the OCI layout at `out`."""
    recipes = [r for r in RECIPES if only is None or r.name in only]
    unknown = (only or set()) - {r.name for r in RECIPES}
    if unknown:
        raise BuildError(f"unknown image(s) {sorted(unknown)}: known are {[r.name for r in RECIPES]}")
    missing = sorted({p for r in recipes for p in r.packages if not package_version(p)})
    if missing and install:
        ensure_packages(missing, warn)
    layout = Layout(out)
    arch = _ARCH.get(_dpkg_arch(), _dpkg_arch())
    result = BuildResult()
    built: dict[str, Layer] = {}
    for recipe in recipes:
        absent = [p for p in recipe.packages if not package_version(p)]
        try:
            if absent:
                raise BuildError(f"Debian package(s) {absent} not installed: apt-get install -y {' '.join(absent)}")
            layers = []
            for name in recipe.layers:
                if name not in built:
                    make, comment = LAYERS[name]
                    built[name] = layout.layer(make(), f"kubelab deploy.images: {comment}")
                layers.append(built[name])
        except BuildError as err:
            if not recipe.optional:
                raise BuildError(f"image {recipe.name}: {err}") from err
            warn(f"warning: image {recipe.name} left out: {err}")
            result.skipped.append((recipe.name, str(err)))
            continue
        version = package_version(recipe.version_of)
        annotations = {"org.opencontainers.image.version": version,
                       "org.opencontainers.image.description": f"kubelab {recipe.name} from Debian {recipe.version_of}"}
        result.images.append(layout.image(recipe.name, layers, recipe.config, arch, annotations))
    keep = {r.name for r in result.images}
    previous = [r for r in _records_kept(layout) if r.name not in keep] if only is not None else []
    layout.commit(result.images + previous)
    result.layers_built, result.layers_cached = layout.layers_built, layout.layers_cached
    return result


def _records_kept(layout: Layout) -> list[ManifestRecord]:
    """Images a partial build (`--only`) did not touch stay in the index, with their blobs."""
    records = []
    for name, desc in layout.refs().items():
        manifest = json.loads(layout.blob_path(desc.digest).read_text())
        for d in [manifest["config"], *manifest["layers"]]:
            layout.written.add(d["digest"])
        layout.written.add(desc.digest)
        records.append(ManifestRecord(name, desc, {}))
    return records


def package_version(package: str) -> str:
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Status}\t${Version}", package],
                          capture_output=True, text=True, check=False)
    status, _, version = proc.stdout.partition("\t")
    return version if proc.returncode == 0 and status.endswith(" installed") else ""


def _installed_matching(*patterns: str) -> list[str]:
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Status}\n", *patterns],
                          capture_output=True, text=True, check=False)
    return sorted(line.split("\t")[0] for line in proc.stdout.splitlines() if line.endswith(" installed"))


def _dpkg_arch() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()


def ensure_packages(packages: list[str], warn: Callable[[str], None]) -> None:
    """apt-get install what is missing (root only); failures are left to the recipes to judge."""
    if os.geteuid() != 0:
        warn(f"warning: Debian package(s) {packages} missing and not root: cannot apt-get install them")
        return
    warn(f"installing Debian package(s): {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    proc = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *packages],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        warn(f"warning: apt-get install {' '.join(packages)} failed:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
