"""containerd-style registry hosts configuration pointing public registries
at a mirror.

One directory per public registry host, each with a hosts.toml that names
the upstream `server` and, before it, the mirror to try first; a
`_default` directory covers every other host. The CRI shim (crishim/_hosts.py)
reads exactly this format:

    server = "https://registry-1.docker.io"
    [host."http://127.0.0.1:5000"]
      capabilities = ["pull", "resolve"]
      skip_verify = true

A user with a real registry edits these files and nothing else. So that an
edit survives the next `up`, each file carries a managed-by line: files
without it (or with it removed) are left alone unless --force is given.
Files are replaced atomically (write, then rename), so a reader never sees
half a file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ._names import REPOSITORIES

MANAGED_BY = "# managed-by: kubelab deploy.images mirrors (delete this line to keep your own edits)"
UPSTREAMS: dict[str, str] = {
    "docker.io": "https://registry-1.docker.io",
    "registry.k8s.io": "https://registry.k8s.io",
    "k8s.gcr.io": "https://k8s.gcr.io",
    "gcr.io": "https://gcr.io",
    "quay.io": "https://quay.io",
    "ghcr.io": "https://ghcr.io",
    "mcr.microsoft.com": "https://mcr.microsoft.com",
    "public.ecr.aws": "https://public.ecr.aws",
}
DEFAULT_HOST = "_default"
_HOST = re.compile(r"^[A-Za-z0-9.-]+(?::[0-9]+)?$")


class InvalidMirror(ValueError):
    """A mirror URL or registry host that cannot go into hosts.toml."""


def validate_mirror(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidMirror(f"mirror {url!r}: must be http://host[:port] or https://host[:port]")
    if parts.path.rstrip("/") not in ("", "/v2") or parts.query or parts.fragment:
        raise InvalidMirror(f"mirror {url!r}: must not have a path, query or fragment (the repository path is kept)")
    return f"{parts.scheme}://{parts.netloc}"


def hosts_toml(host: str, mirror: str, *, skip_verify: bool = True, offline: bool = False) -> str:
    """The hosts.toml for one public registry host. Offline, the mirror is
    the `server` itself and nothing else is tried: a name the mirror does
    not have fails at once instead of reaching for the internet (the lab)."""
    if host != DEFAULT_HOST and not _HOST.match(host):
        raise InvalidMirror(f"registry host {host!r}: must be a host name with an optional :port")
    mirror = validate_mirror(mirror)
    if offline:
        return "\n".join([MANAGED_BY, f"server = {json.dumps(mirror)}",
                          f"skip_verify = {'true' if skip_verify else 'false'}", ""])
    lines = [MANAGED_BY]
    if host != DEFAULT_HOST:
        lines.append(f"server = {json.dumps(UPSTREAMS.get(host, f'https://{host}'))}")
    lines += ["", f"[host.{json.dumps(mirror)}]", '  capabilities = ["pull", "resolve"]',
              f"  skip_verify = {'true' if skip_verify else 'false'}", ""]
    return "\n".join(lines)


def mirrored_hosts(extra: Iterable[str] = ()) -> list[str]:
    """Every upstream we know plus every registry host the name table mentions."""
    hosts = set(UPSTREAMS) | {repo.split("/", 1)[0] for repo in REPOSITORIES} | set(extra)
    return [*sorted(hosts), DEFAULT_HOST]


@dataclass
class MirrorFile:
    path: Path
    action: str      # "written", "unchanged", "kept (edited by hand)"


def write_mirrors(config_path: Path, mirror: str, *, hosts: Iterable[str] | None = None,
                  force: bool = False, offline: bool = False) -> list[MirrorFile]:
    results = []
    for host in hosts if hosts is not None else mirrored_hosts():
        text = hosts_toml(host, mirror, offline=offline)
        path = config_path / host / "hosts.toml"
        try:
            current: str | None = path.read_text()
        except FileNotFoundError:
            current = None
        if current == text:
            results.append(MirrorFile(path, "unchanged"))
            continue
        if current is not None and MANAGED_BY not in current and not force:
            results.append(MirrorFile(path, "kept (edited by hand; --force replaces it)"))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name("hosts.toml.tmp")
        tmp.write_text(text)
        tmp.replace(path)
        results.append(MirrorFile(path, "written"))
    return results
