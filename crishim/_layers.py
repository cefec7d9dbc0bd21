"""Unpacking one image layer into its own directory, once, as an overlayfs
lower layer.

OCI whiteouts become overlayfs whiteouts: `.wh.name` a 0/0 character device
`name`, `.wh..wh..opq` the `trusted.overlay.opaque=y` attribute on its
directory. The uncompressed stream is hashed while it is unpacked and must
equal the image config's diff_id. A layer that names a path outside itself,
or writes through one of its own symlinks, is refused. Unpacking goes to a
temporary directory renamed into place, so a crash leaves no half layer.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import tarfile
from pathlib import Path
from typing import IO

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


class LayerError(Exception):
    pass


class _Hashing:
    """A read-only stream that hashes what passes through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.sha.update(data)
        return data


def _open(blob: Path) -> IO[bytes]:
    with open(blob, "rb") as fh:
        magic = fh.read(4)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(blob, "rb")  # type: ignore[return-value]
    if magic == b"\x28\xb5\x2f\xfd":
        raise LayerError(f"{blob.name}: zstd-compressed layers are not supported")
    return open(blob, "rb")


def _clean(name: str, layer: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise LayerError(f"layer {layer}: {name!r} points outside the layer")
    return "/".join(parts)


def _check_parents(root: Path, rel: str, layer: str) -> None:
    path = root
    for part in rel.split("/")[:-1]:
        path = path / part
        if path.is_symlink():
            raise LayerError(f"layer {layer}: {rel!r} writes through the symlink {part!r}")


def unpack(blob: Path, target: Path, diff_id: str) -> None:
    if target.exists():
        return
    tmp = target.with_name(f".{target.name}.unpacking")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    layer = diff_id[7:19]
    stream = _Hashing(_open(blob))
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                rel = _clean(member.name, layer)
                if not rel:
                    continue
                _check_parents(tmp, rel, layer)
                parent, _, base = rel.rpartition("/")
                where = tmp / parent if parent else tmp
                if base == OPAQUE:
                    where.mkdir(parents=True, exist_ok=True)
                    os.setxattr(where, "trusted.overlay.opaque", b"y")
                    continue
                if base.startswith(WHITEOUT):
                    where.mkdir(parents=True, exist_ok=True)
                    os.mknod(where / base[len(WHITEOUT):], stat.S_IFCHR | 0o000, os.makedev(0, 0))
                    continue
                member.name = rel
                if member.islnk():
                    member.linkname = _clean(member.linkname, layer)
                    _check_parents(tmp, member.linkname, layer)
                tar.extract(member, tmp, set_attrs=True, numeric_owner=True, filter="fully_trusted")
        while stream.read(1 << 20):  # the tar's trailing padding is part of the diff_id
            pass
    except (tarfile.TarError, OSError, EOFError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise LayerError(f"layer {layer}: {err}") from err
    except LayerError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    got = "sha256:" + stream.sha.hexdigest()
    if got != diff_id:
        shutil.rmtree(tmp, ignore_errors=True)
        raise LayerError(f"layer {layer}: content digest {got} does not match the image config's diff_id {diff_id}")
    os.rename(tmp, target)
