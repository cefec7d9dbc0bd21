"""Registry hosts configuration, read like containerd's `certs.d` directory.

`<registry-config-path>/<host>/hosts.toml` lists, in order, the mirrors to try
for images named under `<host>` (`_default/hosts.toml` applies to hosts
without a directory), then the `server` itself:

    server = "https://registry-1.docker.io"
    [host."http://127.0.0.1:5000"]
      capabilities = ["pull", "resolve"]
      skip_verify = true

A mirror keeps the repository path: docker.io/library/busybox:1.28 through
the mirror above is http://127.0.0.1:5000/v2/library/busybox/manifests/1.28.
Plain http and `skip_verify` both mean "don't verify TLS" to skopeo, which then
falls back to http. A malformed file is an error naming the file and key,
raised at pull time so a fixed file applies without restarting the shim.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ._errors import InvalidArgument

DEFAULT_SERVERS = {"docker.io": "https://registry-1.docker.io"}


@dataclass(frozen=True)
class Endpoint:
    url: str                 # scheme://host[:port]
    capabilities: tuple[str, ...] = ("pull", "resolve")
    skip_verify: bool = False

    @property
    def netloc(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def insecure(self) -> bool:
        return self.skip_verify or self.url.startswith("http://")


def _endpoint(url: str, table: dict[str, object], where: str) -> Endpoint:
    parts = urlsplit(url if "://" in url else f"https://{url}")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgument(f"{where}: Invalid value: {url!r}: want http(s)://host[:port]")
    if parts.path.rstrip("/") not in ("", "/v2"):
        raise InvalidArgument(f"{where}: Invalid value: {url!r}: a path other than /v2 is not supported")
    caps = table.get("capabilities", ["pull", "resolve", "push"])
    if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
        raise InvalidArgument(f"{where}.capabilities: Invalid value: want a list of strings")
    skip = table.get("skip_verify", False)
    if not isinstance(skip, bool):
        raise InvalidArgument(f"{where}.skip_verify: Invalid value: want true or false")
    return Endpoint(f"{parts.scheme}://{parts.netloc}", tuple(caps), skip)


def endpoints(config_path: Path | None, domain: str) -> list[Endpoint]:
    """Where to pull images named under `domain` from, in the order to try."""
    default = Endpoint(DEFAULT_SERVERS.get(domain, f"https://{domain}"))
    if config_path is None:
        return [default]
    for name in (domain, "_default"):
        path = config_path / name / "hosts.toml"
        if path.is_file():
            break
    else:
        return [default]
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise InvalidArgument(f"{path}: {err}") from err
    found: list[Endpoint] = []
    hosts = data.get("host", {})
    if not isinstance(hosts, dict):
        raise InvalidArgument(f"{path}: host: Invalid value: want tables [host.\"URL\"]")
    for url, table in hosts.items():
        if not isinstance(table, dict):
            raise InvalidArgument(f"{path}: host.{url!r}: Invalid value: want a table")
        found.append(_endpoint(url, table, f"{path}: host.{url!r}"))
    server = data.get("server")
    if server is not None:
        if not isinstance(server, str):
            raise InvalidArgument(f"{path}: server: Invalid value: want a URL string")
        found.append(_endpoint(server, {"skip_verify": data.get("skip_verify", False)}, f"{path}: server"))
    else:
        found.append(default)
    return found
