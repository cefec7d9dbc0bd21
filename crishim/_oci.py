"""The node's images as one OCI image layout (oci-layout, index.json,
blobs/sha256/...), readable by skopeo and umoci too.

index.json has one entry per repo tag (annotation
`org.opencontainers.image.ref.name` = `docker.io/library/busybox:1.28`) and
the registry's manifest digest as `io.kubelab.image.repo-digest`. Every write
is a whole new file renamed into place, so a crash leaves the old index or
the new one, never half of either. `build_image` makes a layout from plain
tar layers (tests and local images use it; pulls go through skopeo).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
REPO_DIGEST = "io.kubelab.image.repo-digest"


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Layout:
    def __init__(self, path: Path) -> None:
        self.path = path

    def init(self) -> Layout:
        (self.path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        if not (self.path / "oci-layout").exists():
            write_atomic(self.path / "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        if not (self.path / "index.json").exists():
            self.write_index([])
        return self

    def blob(self, digest: str) -> Path:
        algo, _, hexd = digest.partition(":")
        return self.path / "blobs" / algo / hexd

    def read_json(self, digest: str) -> dict[str, Any]:
        data = json.loads(self.blob(digest).read_bytes())
        if not isinstance(data, dict):
            raise ValueError(f"blob {digest} is not a JSON object")
        return data

    def put_blob(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        target = self.blob(digest)
        if not target.exists():
            write_atomic(target, data)
        return digest

    def manifests(self) -> list[dict[str, Any]]:
        index = json.loads((self.path / "index.json").read_text())
        return list(index.get("manifests", []))

    def write_index(self, manifests: Iterable[dict[str, Any]]) -> None:
        index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": list(manifests)}
        write_atomic(self.path / "index.json", json.dumps(index, indent=1).encode())

    def set_ref(self, ref_name: str, descriptor: dict[str, Any], repo_digest: str = "") -> None:
        """Point the tag `ref_name` at a manifest (replacing what it named)."""
        entry = {k: descriptor[k] for k in ("mediaType", "digest", "size")}
        entry["annotations"] = {REF_NAME: ref_name}
        if repo_digest:
            entry["annotations"][REPO_DIGEST] = repo_digest
        kept = [m for m in self.manifests() if m.get("annotations", {}).get(REF_NAME) != ref_name]
        self.write_index([*kept, entry])


def layer_tar(files: dict[str, bytes | str | None], *, mode: int = 0o755) -> bytes:
    """A layer from a {path: content} map: bytes is a file, str a symlink
    target, None a directory; `.wh.` names are whiteouts as in any layer."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(content, str):
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, content, 0o777
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), mode
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def build_image(layout: Layout, ref_name: str, layers: list[bytes], config: dict[str, Any]) -> str:
    """Write an image (uncompressed tar layers, the image config's `config`
    section) into the layout under `ref_name`; returns the manifest digest."""
    layout.init()
    descriptors, diff_ids = [], []
    for tar in layers:
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
        blob = gzip.compress(tar, mtime=0)
        descriptors.append({"mediaType": LAYER_GZIP, "digest": layout.put_blob(blob), "size": len(blob)})
    image_config = {"architecture": "amd64", "os": "linux", "config": config,
                    "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    config_blob = json.dumps(image_config).encode()
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST,
                "config": {"mediaType": CONFIG, "digest": layout.put_blob(config_blob), "size": len(config_blob)},
                "layers": descriptors}
    manifest_blob = json.dumps(manifest).encode()
    descriptor = {"mediaType": MANIFEST, "digest": layout.put_blob(manifest_blob), "size": len(manifest_blob)}
    layout.set_ref(ref_name, descriptor)
    return str(descriptor["digest"])
