"""Where the apiserver is and how to talk to it, like a kubeconfig.

The file (default `~/.kubelab/config`, or $KUBELAB_CONFIG) has kubeconfig's
shape, so the habit carries over:

    apiVersion: v1
    kind: Config
    current-context: lab
    clusters:
    - name: lab
      cluster: {server: "127.0.0.1:6443", certificate-authority: /path/ca.crt}
    users:
    - name: admin
      user: {token: "..."}           # or client-certificate / client-key
    contexts:
    - name: lab
      context: {cluster: lab, user: admin, namespace: default}

`server` is HOST:PORT or unix:///path/to/socket. Anything given on the
command line (`--server`, `--token`) wins over the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

DEFAULT_SERVER = "127.0.0.1:6443"


def default_config_path() -> Path:
    return Path(os.environ.get("KUBELAB_CONFIG", str(Path.home() / ".kubelab" / "config")))


@dataclass(frozen=True)
class ClientConfig:
    server: str = DEFAULT_SERVER
    token: str = ""
    certificate_authority: str = ""
    client_certificate: str = ""
    client_key: str = ""
    tls_server_name: str = ""
    namespace: str = "default"
    context: str = ""

    @property
    def secure(self) -> bool:
        return bool(self.certificate_authority)

    def with_overrides(self, **changes: Any) -> ClientConfig:
        return replace(self, **{k: v for k, v in changes.items() if v})


class ConfigError(ValueError):
    pass


def _named(entries: Any, name: str, what: str, path: Path) -> dict[str, Any]:
    for entry in entries or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return dict(entry.get(what) or {})
    raise ConfigError(f"{path}: no {what} named {name!r}")


def load_config(path: str | Path | None = None, context: str = "") -> ClientConfig:
    """The settings in the config file, or the defaults when there is none."""
    file = Path(path) if path else default_config_path()
    if not file.exists():
        if path:
            raise ConfigError(f"{file}: no such config file")
        return ClientConfig()
    try:
        doc = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{file}: not valid YAML: {err}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{file}: expected a kubeconfig-style mapping")
    name = context or doc.get("current-context") or ""
    if not name:
        raise ConfigError(f"{file}: no current-context is set")
    ctx = _named(doc.get("contexts"), name, "context", file)
    cluster = _named(doc.get("clusters"), ctx.get("cluster", ""), "cluster", file)
    user = _named(doc.get("users"), ctx["user"], "user", file) if ctx.get("user") else {}
    return ClientConfig(
        server=str(cluster.get("server") or DEFAULT_SERVER),
        token=str(user.get("token") or ""),
        certificate_authority=str(cluster.get("certificate-authority") or ""),
        client_certificate=str(user.get("client-certificate") or ""),
        client_key=str(user.get("client-key") or ""),
        tls_server_name=str(cluster.get("tls-server-name") or ""),
        namespace=str(ctx.get("namespace") or "default"),
        context=name,
    )


def write_config(server: str, path: str | Path | None = None, *, token: str = "", namespace: str = "default",
                 name: str = "kubelab") -> Path:
    """Write a one-context config (what `kubelab up` leaves behind)."""
    file = Path(path) if path else default_config_path()
    file.parent.mkdir(parents=True, exist_ok=True)
    user: dict[str, Any] = {"token": token} if token else {}
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [{"name": name, "cluster": {"server": server}}],
        "users": [{"name": "admin", "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "admin", "namespace": namespace}}],
    }
    file.write_text(yaml.safe_dump(doc, sort_keys=False))
    return file
