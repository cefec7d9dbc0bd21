"""kubelet/volumes/_atomic_writer.py: the `..data` layout (timestamped
payload directory, user-visible symlinks through `..data`), an update that
swaps every file at once while an open reader keeps the old version, no
write when nothing changed, keys that come and go, nested paths, modes and
fsGroup ownership, leftovers of an interrupted write, and path rules."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from api import FakeClock
from kubelet.volumes import AtomicWriter, FileProjection


def payload(**files: bytes) -> dict[str, FileProjection]:
    return {name.replace("__", "/"): FileProjection(data, 0o644) for name, data in files.items()}


@pytest.fixture
def writer(tmp_path: Path) -> AtomicWriter:
    target = tmp_path / "vol"
    target.mkdir()
    return AtomicWriter(target, FakeClock(start=1_700_000_000.0))


def test_layout(writer: AtomicWriter) -> None:
    assert writer.write(payload(a=b"1", conf__b=b"2"))
    vol = writer.target_dir
    data = os.readlink(vol / "..data")
    assert data.startswith("..2023_11_14_22_13_20.")
    assert sorted(os.listdir(vol)) == sorted(["..data", data, "a", "conf"])
    assert os.readlink(vol / "a") == "..data/a"
    assert os.readlink(vol / "conf") == "..data/conf"
    assert (vol / "a").read_bytes() == b"1"
    assert (vol / "conf" / "b").read_bytes() == b"2"
    assert stat.S_IMODE(os.stat(vol / "a").st_mode) == 0o644


def test_update_is_one_swap_and_open_readers_keep_the_old_version(writer: AtomicWriter) -> None:
    vol = writer.target_dir
    writer.write(payload(a=b"old-a", b=b"old-b"))
    first = os.readlink(vol / "..data")
    with open(vol / "a", "rb") as reader:
        assert writer.write(payload(a=b"new-a", c=b"new-c"))
        assert reader.read() == b"old-a"  # the old version stays readable through an open file
    second = os.readlink(vol / "..data")
    assert second != first
    assert not (vol / first).exists()  # the old payload directory is gone
    assert (vol / "a").read_bytes() == b"new-a"
    assert (vol / "c").read_bytes() == b"new-c"
    assert not os.path.lexists(vol / "b")  # a removed key's link is removed


def test_no_write_when_nothing_changed(writer: AtomicWriter) -> None:
    writer.write(payload(a=b"1"))
    before = os.readlink(writer.target_dir / "..data")
    assert not writer.write(payload(a=b"1"))
    assert os.readlink(writer.target_dir / "..data") == before
    # a mode change alone is a change
    assert writer.write({"a": FileProjection(b"1", 0o400)})
    assert stat.S_IMODE(os.stat(writer.target_dir / "a").st_mode) == 0o400


def test_group_ownership(writer: AtomicWriter) -> None:
    writer.write({"key": FileProjection(b"x", 0o600)}, group=2345)
    st = os.stat(writer.target_dir / "key")
    assert st.st_gid == 2345
    assert stat.S_IMODE(st.st_mode) == 0o640  # group read added


def test_leftovers_of_an_interrupted_write_are_cleared(writer: AtomicWriter) -> None:
    vol = writer.target_dir
    writer.write(payload(a=b"1"))
    (vol / "..2020_01_01_00_00_00.123").mkdir()  # a payload written but never swapped in
    os.symlink("..2020_01_01_00_00_00.123", vol / "..data_tmp")
    assert not writer.write(payload(a=b"1"))  # cleared even by a write that changes nothing
    assert sorted(n for n in os.listdir(vol) if n.startswith("..")) == sorted(["..data", os.readlink(vol / "..data")])


@pytest.mark.parametrize(("path", "error"), [
    ("/etc/passwd", "must be relative path"),
    ("a/../../b", "must not contain '..'"),
    ("..hidden", "must not start with '..'"),
    ("", "must not be empty"),
    ("x" * 256, "each path element must be less than or equal to 255"),
])
def test_invalid_paths(writer: AtomicWriter, path: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        writer.write({path: FileProjection(b"x", 0o644)})
    assert not os.path.lexists(writer.target_dir / "..data")  # nothing written
