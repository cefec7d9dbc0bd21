"""Writing OCI image layouts with nothing but tarfile, gzip, hashlib and json.

An OCI layout is a directory with `oci-layout`, `index.json` and
content-addressed blobs: per layer a gzipped tar, per image a config and a
manifest. Writing them directly (rather than driving umoci) keeps the build
byte-for-byte reproducible: entries are sorted, owned by 0:0 unless the
recipe says otherwise, stamped with one fixed time (SOURCE_DATE_EPOCH,
default 0), and gzip carries no name or time. The same inputs therefore
give the same digests on every machine, which is also what makes pushing
idempotent (the registry already has that digest).

Layers are cached by a key over their inputs (each host file's path, size,
mtime and inode, or the content written). A rebuild with unchanged inputs
writes nothing. Blobs are written to a temporary name and renamed once
complete, and index.json is replaced atomically, so an interrupted build
leaves the previous layout intact; blobs nothing refers to are removed at
the end of a successful build.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ._rootfs import Rootfs

FORMAT_VERSION = "kubelab-images/1"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"


def source_date_epoch() -> int:
    return int(os.environ.get("SOURCE_DATE_EPOCH", "0"))


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int

    def as_json(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class Layer:
    blob: Descriptor
    diff_id: str
    comment: str


@dataclass
class ManifestRecord:
    name: str
    manifest: Descriptor
    config: dict[str, Any]
    layers: list[Layer] = field(default_factory=list)


class _Hashing:
    """A write-only stream that hashes and counts what passes through it."""

    def __init__(self, sink: BinaryIO | gzip.GzipFile) -> None:
        self.sink = sink
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sink.write(data)
        self.sha.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.sink.flush()

    def close(self) -> None:
        pass


class Layout:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        self._cache_file = root / "layer-cache.json"
        try:
            self.cache: dict[str, dict[str, Any]] = json.loads(self._cache_file.read_text())
        except (OSError, ValueError):
            self.cache = {}
        self.written: set[str] = set()     # digests this build refers to
        self.layers_built = 0
        self.layers_cached = 0

    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest.removeprefix("sha256:")

    def _put_blob(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.blob_path(digest)
        if not path.exists():
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        self.written.add(digest)
        return digest

    def layer(self, rootfs: Rootfs, comment: str) -> Layer:
        key = hashlib.sha256(f"{FORMAT_VERSION}\0{source_date_epoch()}\0{rootfs.digest_input()}".encode()).hexdigest()
        cached = self.cache.get(key)
        if cached and self.blob_path(cached["digest"]).exists():
            self.layers_cached += 1
            self.written.add(cached["digest"])
            return Layer(Descriptor(MEDIA_LAYER, cached["digest"], cached["size"]), cached["diff_id"], comment)
        fd, tmp_name = tempfile.mkstemp(prefix=".layer-", dir=self.blobs)
        try:
            with os.fdopen(fd, "wb") as out:
                compressed = _Hashing(out)
                with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=6) as gz:  # type: ignore[arg-type]
                    plain = _Hashing(gz)
                    with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                        _write_entries(tar, rootfs)
            digest = "sha256:" + compressed.sha.hexdigest()
            os.replace(tmp_name, self.blob_path(digest))
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        self.layers_built += 1
        self.written.add(digest)
        diff_id = "sha256:" + plain.sha.hexdigest()
        self.cache[key] = {"digest": digest, "size": compressed.size, "diff_id": diff_id}
        return Layer(Descriptor(MEDIA_LAYER, digest, compressed.size), diff_id, comment)

    def image(self, name: str, layers: list[Layer], config: dict[str, Any], architecture: str,
              annotations: dict[str, str] | None = None) -> ManifestRecord:
        created = _rfc3339(source_date_epoch())
        image_config = {
            "created": created, "architecture": architecture, "os": "linux", "config": config,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
            "history": [{"created": created, "created_by": layer.comment} for layer in layers],
        }
        config_bytes = _canonical(image_config)
        config_desc = Descriptor(MEDIA_CONFIG, self._put_blob(config_bytes), len(config_bytes))
        manifest: dict[str, Any] = {
            "schemaVersion": 2, "mediaType": MEDIA_MANIFEST, "config": config_desc.as_json(),
            "layers": [layer.blob.as_json() for layer in layers],
        }
        if annotations:
            manifest["annotations"] = annotations
        manifest_bytes = _canonical(manifest)
        desc = Descriptor(MEDIA_MANIFEST, self._put_blob(manifest_bytes), len(manifest_bytes))
        return ManifestRecord(name, desc, image_config, layers)

    def commit(self, records: Iterable[ManifestRecord]) -> None:
        """Point index.json at these images, save the cache, drop unreferenced blobs."""
        index = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [
            {**r.manifest.as_json(), "annotations": {REF_ANNOTATION: r.name}} for r in records]}
        tmp = self.root / "index.json.tmp"
        tmp.write_bytes(_canonical(index))
        tmp.replace(self.root / "index.json")
        live = {k: v for k, v in self.cache.items() if v["digest"] in self.written}
        self._cache_file.write_text(json.dumps(live, indent=1, sort_keys=True))
        for blob in self.blobs.iterdir():
            if "sha256:" + blob.name not in self.written:
                blob.unlink()

    def refs(self) -> dict[str, Descriptor]:
        """The images index.json names, by ref."""
        try:
            index = json.loads((self.root / "index.json").read_text())
        except OSError:
            return {}
        return {m["annotations"][REF_ANNOTATION]: Descriptor(m["mediaType"], m["digest"], m["size"])
                for m in index.get("manifests", []) if REF_ANNOTATION in m.get("annotations", {})}


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _rfc3339(epoch: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_entries(tar: tarfile.TarFile, rootfs: Rootfs) -> None:
    mtime = source_date_epoch()
    for path in sorted(rootfs.entries):
        entry = rootfs.entries[path]
        info = tarfile.TarInfo(path.lstrip("/"))
        info.mtime, info.mode, info.uid, info.gid = mtime, entry.mode, entry.uid, entry.gid
        info.uname = info.gname = ""
        if entry.kind == "dir":
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        elif entry.kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, entry.target
            tar.addfile(info)
        elif entry.content is not None:
            info.size = len(entry.content)
            tar.addfile(info, io.BytesIO(entry.content))
        else:
            with open(entry.source, "rb") as f:
                info.size = os.fstat(f.fileno()).st_size
                tar.addfile(info, f)
