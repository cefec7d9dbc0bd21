"""The hosts.toml writer (deploy/images/_mirrors.py): containerd's format,
one directory per public registry, hand edits kept, and read back by the
CRI shim's own reader."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from deploy.images import hosts_toml, write_mirrors
from deploy.images._mirrors import MANAGED_BY, InvalidMirror, mirrored_hosts


def test_docker_hub_file_is_containerds_format() -> None:
    text = hosts_toml("docker.io", "http://127.0.0.1:5000")
    assert text.splitlines()[0] == MANAGED_BY
    assert "\n".join(text.splitlines()[1:]) == (
        'server = "https://registry-1.docker.io"\n'
        "\n"
        '[host."http://127.0.0.1:5000"]\n'
        '  capabilities = ["pull", "resolve"]\n'
        "  skip_verify = true")
    assert tomllib.loads(text) == {"server": "https://registry-1.docker.io", "host": {
        "http://127.0.0.1:5000": {"capabilities": ["pull", "resolve"], "skip_verify": True}}}


def test_other_hosts_use_their_own_name_as_server_and_default_has_none() -> None:
    assert tomllib.loads(hosts_toml("registry.k8s.io", "http://r:5000"))["server"] == "https://registry.k8s.io"
    assert tomllib.loads(hosts_toml("example.com:8443", "http://r:5000"))["server"] == "https://example.com:8443"
    assert "server" not in tomllib.loads(hosts_toml("_default", "https://mirror.example"))


def test_every_host_the_name_table_uses_gets_a_directory(tmp_path: Path) -> None:
    results = write_mirrors(tmp_path, "http://127.0.0.1:5000")
    dirs = {p.name for p in tmp_path.iterdir()}
    assert dirs == set(mirrored_hosts())
    assert {"docker.io", "registry.k8s.io", "k8s.gcr.io", "gcr.io", "quay.io", "ghcr.io", "_default"} <= dirs
    assert {r.action for r in results} == {"written"}
    assert {r.action for r in write_mirrors(tmp_path, "http://127.0.0.1:5000")} == {"unchanged"}


def test_hand_edited_files_are_kept_unless_forced(tmp_path: Path) -> None:
    write_mirrors(tmp_path, "http://127.0.0.1:5000", hosts=["docker.io", "quay.io"])
    mine = 'server = "https://registry-1.docker.io"\n[host."https://registry.corp.example"]\n'
    (tmp_path / "docker.io" / "hosts.toml").write_text(mine)
    results = {r.path.parent.name: r.action for r in write_mirrors(tmp_path, "http://127.0.0.1:6000",
                                                                   hosts=["docker.io", "quay.io"])}
    assert results["docker.io"].startswith("kept") and results["quay.io"] == "written"
    assert (tmp_path / "docker.io" / "hosts.toml").read_text() == mine
    write_mirrors(tmp_path, "http://127.0.0.1:6000", hosts=["docker.io"], force=True)
    assert "http://127.0.0.1:6000" in (tmp_path / "docker.io" / "hosts.toml").read_text()
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize(("mirror", "rule"), [
    ("127.0.0.1:5000", "must be http://host[:port]"), ("ftp://x", "must be http://host[:port]"),
    ("http://r:5000/some/path", "must not have a path"),
])
def test_bad_mirrors_are_refused(mirror: str, rule: str) -> None:
    with pytest.raises(InvalidMirror, match=re.escape(rule)):
        hosts_toml("docker.io", mirror)


def test_bad_host_is_refused() -> None:
    with pytest.raises(InvalidMirror, match="registry host 'a/b'"):
        hosts_toml("a/b", "http://r")


def test_the_cri_shim_reads_the_mirror_first(tmp_path: Path) -> None:
    from crishim import _hosts as hosts
    write_mirrors(tmp_path, "http://127.0.0.1:5000")
    for domain in ("docker.io", "registry.k8s.io", "some.other.registry"):
        endpoints = hosts.endpoints(tmp_path, domain)
        assert endpoints[0].url == "http://127.0.0.1:5000" and endpoints[0].insecure
    assert hosts.endpoints(tmp_path, "docker.io")[-1].url == "https://registry-1.docker.io"


def test_offline_the_mirror_is_the_only_server(tmp_path: Path) -> None:
    from crishim import _hosts as hosts

    write_mirrors(tmp_path, "http://10.200.0.2:5000", offline=True)
    for domain in ("docker.io", "registry.k8s.io", "some.other.registry"):
        endpoints = hosts.endpoints(tmp_path, domain)
        assert [(e.url, e.insecure) for e in endpoints] == [("http://10.200.0.2:5000", True)]
    assert tomllib.loads(hosts_toml("docker.io", "http://10.200.0.2:5000", offline=True)) == {
        "server": "http://10.200.0.2:5000", "skip_verify": True}
