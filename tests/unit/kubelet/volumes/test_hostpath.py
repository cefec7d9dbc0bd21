"""kubelet/volumes/_hostpath.py: every hostPath type against real files -
a directory, a regular file, a unix socket, /dev/null (a character
device) and a block device when the machine has one - with the kubelet's
wording on a mismatch, and the ...OrCreate types making what is missing."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelet.volumes._base import VolumeError
from kubelet.volumes._hostpath import check_host_path


def _block_device() -> str | None:
    for entry in sorted(Path("/dev").iterdir()):
        try:
            if stat.S_ISBLK(entry.stat().st_mode):
                return str(entry)
        except OSError:
            continue
    return None


@pytest.fixture
def things(tmp_path: Path) -> Iterator[dict[str, str]]:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    try:
        yield {"Directory": str(tmp_path / "dir"), "File": str(tmp_path / "file"), "Socket": str(tmp_path / "sock"),
               "CharDevice": "/dev/null", "missing": str(tmp_path / "missing")}
    finally:
        sock.close()


WORDING = {"Directory": "is not a directory", "File": "is not a file", "Socket": "is not a socket file",
           "CharDevice": "is not a character device", "BlockDevice": "is not a block device"}


@pytest.mark.parametrize("path_type", ["Directory", "File", "Socket", "CharDevice"])
def test_types_match_only_their_kind(things: dict[str, str], path_type: str) -> None:
    check_host_path(things[path_type], path_type)
    check_host_path(things[path_type], "")  # "" checks nothing
    for other, path in things.items():
        if other == path_type:
            continue
        with pytest.raises(VolumeError) as err:
            check_host_path(path, path_type)
        assert str(err.value) == f"hostPath type check failed: {path} {WORDING[path_type]}"


def test_block_device(things: dict[str, str]) -> None:
    device = _block_device()
    if device is None:
        pytest.skip("no block device under /dev")
    check_host_path(device, "BlockDevice")
    with pytest.raises(VolumeError, match="is not a block device"):
        check_host_path(things["CharDevice"], "BlockDevice")


def test_directory_or_create(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    check_host_path(str(target), "DirectoryOrCreate")
    assert target.is_dir()
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    check_host_path(str(target), "DirectoryOrCreate")  # existing: fine
    (tmp_path / "f").write_text("x")
    with pytest.raises(VolumeError, match="is not a directory"):
        check_host_path(str(tmp_path / "f"), "DirectoryOrCreate")


def test_file_or_create(tmp_path: Path) -> None:
    target = tmp_path / "new.log"
    check_host_path(str(target), "FileOrCreate")
    assert target.is_file() and target.stat().st_size == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    with pytest.raises(VolumeError, match=r"could not create file .*No such file or directory"):
        check_host_path(str(tmp_path / "no-parent" / "f"), "FileOrCreate")
    with pytest.raises(VolumeError, match="is not a file"):
        check_host_path(str(tmp_path), "FileOrCreate")


def test_unknown_type(tmp_path: Path) -> None:
    with pytest.raises(VolumeError, match="Dir is an invalid volume type"):
        check_host_path(str(tmp_path), "Dir")
    assert os.path.isdir(tmp_path)
