"""Root filesystems and OCI layouts (deploy/images/_rootfs.py, _layout.py),
on a fake host tree in a temporary directory: symlinks on the way are kept,
layers are byte-for-byte reproducible, the cache skips unchanged layers and
notices changed ones, and unreferenced blobs go."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from deploy.images import BuildError, Layout
from deploy.images._rootfs import Rootfs


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A merged-/usr tree like Debian 12's: /lib64 -> usr/lib64 -> the loader behind another symlink."""
    root = tmp_path / "host"
    (root / "usr/lib/x86_64-linux-gnu").mkdir(parents=True)
    (root / "usr/lib64").mkdir(parents=True)
    (root / "usr/sbin").mkdir(parents=True)
    os.symlink("usr/lib", root / "lib")
    os.symlink("usr/lib64", root / "lib64")
    (root / "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2").write_bytes(b"\x7fELF loader")
    os.symlink("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", root / "usr/lib64/ld-linux-x86-64.so.2")
    (root / "usr/lib/x86_64-linux-gnu/libz.so.1.2.13").write_bytes(b"zlib")
    os.symlink("libz.so.1.2.13", root / "usr/lib/x86_64-linux-gnu/libz.so.1")
    (root / "usr/sbin/daemon").write_bytes(b"#!/bin/sh\n")
    (root / "usr/sbin/daemon").chmod(0o755)
    return root


def test_copying_a_path_keeps_every_symlink_on_the_way(host: Path) -> None:
    fs = Rootfs(str(host))
    assert fs.copy_host_path("/lib64/ld-linux-x86-64.so.2") == "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    assert fs.copy_host_path("/lib/x86_64-linux-gnu/libz.so.1") == "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13"
    links = {p: e.target for p, e in fs.entries.items() if e.kind == "symlink"}
    assert links == {"/lib64": "usr/lib64", "/lib": "usr/lib",
                     "/usr/lib64/ld-linux-x86-64.so.2": "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                     "/usr/lib/x86_64-linux-gnu/libz.so.1": "libz.so.1.2.13"}
    assert fs.entries["/usr/lib/x86_64-linux-gnu"].kind == "dir"
    assert fs.resolve("/lib64/ld-linux-x86-64.so.2") == "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"


def test_missing_host_paths_and_dir_conflicts_are_errors_naming_the_path(host: Path) -> None:
    fs = Rootfs(str(host))
    with pytest.raises(BuildError, match=r"/usr/sbin/nginx: not found on this machine"):
        fs.copy_host_path("/usr/sbin/nginx")
    fs.mkdir("/etc/nginx")
    with pytest.raises(BuildError, match=r"/etc/nginx: already a dir in this image, cannot also be a file"):
        fs.write("/etc/nginx", "x")


def _layer_members(layout: Path, digest: str) -> list[tarfile.TarInfo]:
    data = gzip.decompress((layout / "blobs/sha256" / digest.removeprefix("sha256:")).read_bytes())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


def _rootfs(host: Path) -> Rootfs:
    fs = Rootfs(str(host))
    fs.copy_host_path("/lib64/ld-linux-x86-64.so.2")
    fs.copy_host_path("/usr/sbin/daemon")
    fs.write("/etc/app.conf", "listen 80;\n")
    fs.symlink("/var/log/app.log", "/dev/stdout")
    return fs


def test_layers_are_reproducible_sorted_and_owned_by_root(host: Path, tmp_path: Path) -> None:
    one, two = Layout(tmp_path / "one"), Layout(tmp_path / "two")
    a, b = one.layer(_rootfs(host), "test"), two.layer(_rootfs(host), "test")
    assert a == b and a.blob.digest.startswith("sha256:")
    blob = (tmp_path / "one/blobs/sha256" / a.blob.digest[7:]).read_bytes()
    assert a.blob.size == len(blob) and a.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest()
    members = _layer_members(tmp_path / "one", a.blob.digest)
    names = [m.name for m in members]
    assert names == sorted(names) and "usr/sbin/daemon" in names and "etc/app.conf" in names
    assert {(m.uid, m.gid, m.mtime, m.uname) for m in members} == {(0, 0, 0, "")}
    daemon = next(m for m in members if m.name == "usr/sbin/daemon")
    assert daemon.mode == 0o755 and daemon.size == len(b"#!/bin/sh\n")


def test_the_cache_skips_unchanged_layers_and_rebuilds_changed_ones(host: Path, tmp_path: Path) -> None:
    layout = Layout(tmp_path / "l")
    first = layout.layer(_rootfs(host), "test")
    record = layout.image("app", [first], {"Cmd": ["daemon"]}, "amd64")
    layout.commit([record])
    again = Layout(tmp_path / "l")
    assert again.layer(_rootfs(host), "test") == first and (again.layers_built, again.layers_cached) == (0, 1)
    (host / "usr/sbin/daemon").write_bytes(b"#!/bin/sh\nexec true\n")
    changed = again.layer(_rootfs(host), "test")
    assert changed.blob.digest != first.blob.digest and again.layers_built == 1


def test_commit_writes_the_index_and_drops_unreferenced_blobs(host: Path, tmp_path: Path) -> None:
    layout = Layout(tmp_path / "l")
    layer = layout.layer(_rootfs(host), "test")
    record = layout.image("app", [layer], {"Cmd": ["daemon"], "ExposedPorts": {"80/tcp": {}}}, "amd64",
                          {"org.opencontainers.image.version": "1.0"})
    (layout.blobs / ("0" * 64)).write_bytes(b"stale")
    layout.commit([record])
    index = json.loads((tmp_path / "l/index.json").read_text())
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == ["app"]
    assert layout.refs()["app"].digest == record.manifest.digest
    manifest = json.loads(layout.blob_path(record.manifest.digest).read_text())
    config = json.loads(layout.blob_path(manifest["config"]["digest"]).read_text())
    assert config["rootfs"]["diff_ids"] == [layer.diff_id] and config["config"]["Cmd"] == ["daemon"]
    assert manifest["annotations"] == {"org.opencontainers.image.version": "1.0"}
    assert sorted(p.name for p in layout.blobs.iterdir()) == sorted(
        d[7:] for d in (record.manifest.digest, manifest["config"]["digest"], layer.blob.digest))
    assert json.loads((tmp_path / "l/oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
