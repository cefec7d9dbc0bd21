"""Image names as the shim reports bad ones, hosts.toml mirrors, and
layer unpacking with OCI whiteouts turned into overlayfs ones."""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
from pathlib import Path

import pytest

from crishim import _hosts, _layers, _oci
from crishim._errors import InvalidArgument
from crishim._reference import parse


def test_a_bad_name_is_invalid_argument_saying_which_rule() -> None:
    # Normalisation itself is api.parse_image_reference's (tests/unit/api/test_imageref.py).
    assert str(parse("busybox")) == "docker.io/library/busybox:latest"
    with pytest.raises(InvalidArgument, match="Required value"):
        parse(" ")
    with pytest.raises(InvalidArgument, match="path component 'Busybox'"):
        parse("Busybox")


def test_hosts_toml_lists_mirrors_then_the_server(tmp_path: Path) -> None:
    (tmp_path / "docker.io").mkdir()
    (tmp_path / "docker.io" / "hosts.toml").write_text(
        'server = "https://registry-1.docker.io"\n'
        '[host."http://127.0.0.1:5000"]\n  capabilities = ["pull", "resolve"]\n  skip_verify = true\n'
        '[host."https://mirror.example:8443/v2"]\n  capabilities = ["pull"]\n')
    found = _hosts.endpoints(tmp_path, "docker.io")
    assert [(e.url, e.insecure, e.capabilities) for e in found] == [
        ("http://127.0.0.1:5000", True, ("pull", "resolve")),
        ("https://mirror.example:8443", False, ("pull",)),
        ("https://registry-1.docker.io", False, ("pull", "resolve", "push")),
    ]
    assert [e.url for e in _hosts.endpoints(tmp_path, "quay.io")] == ["https://quay.io"]
    assert [e.url for e in _hosts.endpoints(None, "docker.io")] == ["https://registry-1.docker.io"]


def test_default_hosts_apply_to_hosts_without_a_directory(tmp_path: Path) -> None:
    (tmp_path / "_default").mkdir()
    (tmp_path / "_default" / "hosts.toml").write_text('[host."http://10.0.0.1:5000"]\n')
    assert [e.url for e in _hosts.endpoints(tmp_path, "ghcr.io")] == ["http://10.0.0.1:5000", "https://ghcr.io"]


@pytest.mark.parametrize(("text", "rule"), [
    ('[host."ftp://x"]\n', "want http"),
    ('[host."https://x/prefix"]\n', "path other than /v2"),
    ('[host."https://x"]\nskip_verify = "yes"\n', "skip_verify"),
    ('server = [1]\n', "server"),
    ('server = "https://x\n', "hosts.toml"),
])
def test_bad_hosts_toml_names_file_and_key(tmp_path: Path, text: str, rule: str) -> None:
    (tmp_path / "r.io").mkdir()
    (tmp_path / "r.io" / "hosts.toml").write_text(text)
    with pytest.raises(InvalidArgument, match=rule):
        _hosts.endpoints(tmp_path, "r.io")


def _blob(tmp_path: Path, files: dict[str, bytes | str | None]) -> tuple[Path, str]:
    tar = _oci.layer_tar(files)
    blob = tmp_path / "blob"
    blob.write_bytes(gzip.compress(tar))
    return blob, "sha256:" + hashlib.sha256(tar).hexdigest()


@pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts are device nodes and trusted xattrs: needs root")
def test_unpack_turns_whiteouts_into_overlayfs_ones(tmp_path: Path) -> None:
    blob, diff_id = _blob(tmp_path, {"etc": None, "etc/.wh.gone": b"", "var": None, "var/.wh..wh..opq": b"",
                                     "var/kept": b"k", "bin": None, "bin/sh": "busybox"})
    target = tmp_path / "layer"
    _layers.unpack(blob, target, diff_id)
    gone = (target / "etc" / "gone").lstat()
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == os.makedev(0, 0)
    assert os.getxattr(target / "var", "trusted.overlay.opaque") == b"y"
    assert (target / "var" / "kept").read_bytes() == b"k"
    assert os.readlink(target / "bin" / "sh") == "busybox"
    assert not list(tmp_path.glob(".*unpacking"))


def test_unpack_refuses_a_layer_whose_content_does_not_match_its_diff_id(tmp_path: Path) -> None:
    blob, _ = _blob(tmp_path, {"a": b"1"})
    with pytest.raises(_layers.LayerError, match="does not match"):
        _layers.unpack(blob, tmp_path / "layer", "sha256:" + "0" * 64)
    assert not (tmp_path / "layer").exists()


@pytest.mark.parametrize("files", [
    {"../escape": b"x"},
    {"link": "/etc", "link/passwd": b"x"},
])
def test_unpack_refuses_paths_outside_the_layer(tmp_path: Path, files: dict[str, bytes | str | None]) -> None:
    blob, diff_id = _blob(tmp_path, files)
    with pytest.raises(_layers.LayerError):
        _layers.unpack(blob, tmp_path / "layer", diff_id)
    assert not (tmp_path / "layer").exists()
