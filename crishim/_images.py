"""The node's image store (ImageService): pull with skopeo into the node's
OCI layout, unpack each layer once, answer list/status/remove.

Why skopeo: it is Debian's, maintained with podman and CRI-O, speaks the OCI
distribution protocol (token auth, manifest lists, schema conversion) and
writes OCI layouts; no Python OCI client is as complete and as well kept.
The shim resolves the tag itself first (`skopeo inspect --raw`) so the
image's repo digest is the registry's, then copies that exact digest into
a scratch layout and moves the blobs into the node's layout under a lock:
two pulls never write index.json at once, and a failed pull leaves nothing.
Mirrors come from the hosts.toml files (_hosts.py), tried in order.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _hosts, _layers, _oci
from ._errors import InvalidArgument, NotFound, RuntimeFailure, Unavailable
from ._reference import Reference, is_image_id, parse

log = logging.getLogger(__name__)


@dataclass
class Image:
    id: str                                   # the config's digest
    manifest: str
    repo_tags: list[str] = field(default_factory=list)
    repo_digests: list[str] = field(default_factory=list)
    size: int = 0
    config: dict[str, Any] = field(default_factory=dict)   # the image config's "config" section
    diff_ids: list[str] = field(default_factory=list)

    @property
    def image_ref(self) -> str:
        return self.repo_digests[0] if self.repo_digests else self.id


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    registry_token: str = ""


class ImageStore:
    def __init__(self, root: Path, registry_config: Path | None, skopeo: str = "skopeo") -> None:
        self.root = root
        self.layout = _oci.Layout(root / "oci")
        self.layers = root / "layers"
        self.registry_config = registry_config
        self.skopeo = skopeo
        self._lock = asyncio.Lock()
        self._images: dict[str, Image] = {}

    def start(self) -> None:
        self.layout.init()
        self.layers.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.root / "tmp", ignore_errors=True)
        for stale in self.layers.glob(".*.unpacking"):
            shutil.rmtree(stale, ignore_errors=True)
        self._reload()

    def _reload(self) -> None:
        images: dict[str, Image] = {}
        for entry in self.layout.manifests():
            notes = entry.get("annotations", {})
            try:
                manifest = self.layout.read_json(entry["digest"])
                config_digest = manifest["config"]["digest"]
                config = self.layout.read_json(config_digest)
            except (OSError, KeyError, ValueError) as err:
                log.warning("index.json entry %s unreadable, ignored: %s", notes.get(_oci.REF_NAME), err)
                continue
            image = images.get(config_digest)
            if image is None:
                image = images[config_digest] = Image(
                    config_digest, entry["digest"], size=sum(int(layer["size"]) for layer in manifest["layers"]),
                    config=config.get("config") or {}, diff_ids=list(config.get("rootfs", {}).get("diff_ids", [])))
            if notes.get(_oci.REF_NAME) and notes[_oci.REF_NAME] not in image.repo_tags:
                image.repo_tags.append(notes[_oci.REF_NAME])
            if notes.get(_oci.REPO_DIGEST) and notes[_oci.REPO_DIGEST] not in image.repo_digests:
                image.repo_digests.append(notes[_oci.REPO_DIGEST])
        self._images = images

    # ------------------------------------------------------------ lookups

    def list_images(self) -> list[Image]:
        return sorted(self._images.values(), key=lambda i: i.id)

    def find(self, name: str) -> Image | None:
        """An image by id, repo tag (normalised), or repo digest."""
        if is_image_id(name):
            return self._images.get(name if name.startswith("sha256:") else f"sha256:{name}")
        ref = parse(name)
        for image in self._images.values():
            if (ref.digest and ref.pinned in image.repo_digests) or (not ref.digest and ref.tagged in image.repo_tags):
                return image
        return None

    def get(self, name: str) -> Image:
        image = self.find(name)
        if image is None:
            raise NotFound(f'image "{name}" not found on this node: pull it first')
        return image

    def layer_dirs(self, image: Image) -> list[Path]:
        """The image's unpacked layers, top first (overlayfs lowerdir order)."""
        return [self.layers / d.split(":", 1)[1] for d in reversed(image.diff_ids)]

    # ------------------------------------------------------------ pull

    async def pull(self, name: str, creds: Credentials = Credentials()) -> Image:
        ref = parse(name)
        failures: list[str] = []
        not_found = 0
        endpoints = _hosts.endpoints(self.registry_config, ref.domain)
        for ep in endpoints:
            if not ref.digest and "resolve" not in ep.capabilities:
                continue
            if "pull" not in ep.capabilities:
                continue
            try:
                return await self._pull_from(ep, ref, creds)
            except _PullError as err:
                failures.append(f"{ep.url}: {err}")
                not_found += err.not_found
        detail = "; ".join(failures) or "no host in hosts.toml may pull or resolve it"
        if failures and not_found == len(failures):
            raise NotFound(f'image "{ref}" not found: {detail}')
        raise Unavailable(f'pulling image "{ref}" failed: {detail}')

    def _flags(self, ep: _hosts.Endpoint, creds: Credentials, prefix: str) -> list[str]:
        flags = [f"--{prefix}tls-verify={'false' if ep.insecure else 'true'}"]
        if creds.username:
            flags.append(f"--{prefix}creds={creds.username}:{creds.password}")
        elif creds.registry_token:
            flags.append(f"--{prefix}registry-token={creds.registry_token}")
        return flags

    async def _pull_from(self, ep: _hosts.Endpoint, ref: Reference, creds: Credentials) -> Image:
        source = f"docker://{ep.netloc}/{ref.path}"
        digest = ref.digest
        if not digest:
            raw = await self._skopeo("inspect", "--raw", *self._flags(ep, creds, ""), f"{source}:{ref.tag}")
            digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        scratch = self.root / "tmp" / secrets.token_hex(8)
        scratch.parent.mkdir(parents=True, exist_ok=True)
        try:
            await self._skopeo("copy", "--insecure-policy", "--remove-signatures", "-q",
                               *self._flags(ep, creds, "src-"), f"{source}@{digest}", f"oci:{scratch}:pull")
            async with self._lock:
                image = await asyncio.to_thread(self._import, _oci.Layout(scratch), ref,
                                                f"{ref.repository}@{digest}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        log.info("pulled %s from %s as %s", ref, ep.url, image.id)
        return image

    async def _skopeo(self, *args: str) -> bytes:
        try:
            proc = await asyncio.create_subprocess_exec(self.skopeo, *args, stdin=asyncio.subprocess.DEVNULL,
                                                        stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.PIPE)
        except FileNotFoundError as err:
            raise RuntimeFailure(f"skopeo is not installed ({self.skopeo}): apt-get install skopeo") from err
        out, stderr = await proc.communicate()
        if proc.returncode != 0:
            text = stderr.decode(errors="replace").strip().splitlines()
            message = text[-1] if text else f"skopeo exited with {proc.returncode}"
            lowered = message.lower()
            raise _PullError(message, not_found=("manifest unknown" in lowered or "not found" in lowered))
        return out

    def import_layout(self, source: _oci.Layout, ref_name: str) -> Image:
        """Import the image `ref_name` names in another OCI layout (no
        registry), before the shim serves: it takes no lock."""
        ref = parse(ref_name)
        for entry in source.manifests():
            if entry.get("annotations", {}).get(_oci.REF_NAME) in (ref_name, ref.tagged, ref.tag):
                return self._import(source, ref, "", entry)
        raise NotFound(f'image "{ref_name}" not found in the layout {source.path}')

    def _import(self, source: _oci.Layout, ref: Reference, repo_digest: str,
                entry: dict[str, Any] | None = None) -> Image:
        entry = entry or source.manifests()[0]
        if entry.get("mediaType") == _oci.INDEX:
            raise InvalidArgument(f'image "{ref}": an image index needs a platform choice; copy one platform')
        manifest = source.read_json(entry["digest"])
        config = source.read_json(manifest["config"]["digest"])
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        if len(diff_ids) != len(manifest["layers"]):
            raise RuntimeFailure(f'image "{ref}": {len(manifest["layers"])} layers but {len(diff_ids)} diff_ids')
        digests = [entry["digest"], manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]
        for digest in digests:
            target = self.layout.blob(digest)
            if not target.exists():
                shutil.copyfile(source.blob(digest), target.with_name(target.name + ".part"))
                os.replace(target.with_name(target.name + ".part"), target)
        for layer, diff_id in zip(manifest["layers"], diff_ids, strict=True):
            try:
                _layers.unpack(self.layout.blob(layer["digest"]), self.layers / diff_id.split(":", 1)[1], diff_id)
            except _layers.LayerError as err:
                raise RuntimeFailure(f'image "{ref}": {err}') from err
        name = ref.tagged or f"{ref.repository}@{ref.digest}"
        self.layout.set_ref(name, entry, repo_digest or "")
        self._reload()
        return self._images[manifest["config"]["digest"]]

    # ------------------------------------------------------------ remove, usage

    async def remove(self, name: str, layers_in_use: set[str]) -> None:
        """Remove an image (all its tags); a missing image is not an error.
        Layers and blobs nothing else uses go too, unless a container's
        rootfs still stacks them."""
        async with self._lock:
            image = self.find(name)
            if image is None:
                return
            kept = [m for m in self.layout.manifests()
                    if m.get("annotations", {}).get(_oci.REF_NAME) not in image.repo_tags]
            self.layout.write_index(kept)
            self._reload()
            await asyncio.to_thread(self._collect, layers_in_use)

    def _collect(self, layers_in_use: set[str]) -> None:
        wanted_blobs: set[str] = set()
        wanted_layers = set(layers_in_use)
        for image in self._images.values():
            manifest = self.layout.read_json(image.manifest)
            wanted_blobs |= {image.manifest, image.id, *(layer["digest"] for layer in manifest["layers"])}
            wanted_layers |= {d.split(":", 1)[1] for d in image.diff_ids}
        for blob in (self.layout.path / "blobs" / "sha256").iterdir():
            if f"sha256:{blob.name}" not in wanted_blobs:
                blob.unlink(missing_ok=True)
        for layer in self.layers.iterdir():
            if layer.name not in wanted_layers:
                shutil.rmtree(layer, ignore_errors=True)


class _PullError(Exception):
    def __init__(self, message: str, *, not_found: bool = False) -> None:
        super().__init__(message)
        self.not_found = not_found

