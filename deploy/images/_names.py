"""Which public image names the local registry answers to, and which local
image stands behind each.

The table is data: a public repository (normalised, tag-free) maps to one of
the images this package builds. Every tag a manifest asks for is pushed, so
`nginx:1.14.2` and `nginx:1.16.1` both serve Debian's nginx; the tags in
ALWAYS_PUSHED are pushed whatever the manifests say (the sandbox image, the
plain names people type). A name the table does not know is reported, never
skipped in silence, and so is a reference pinned by digest (a locally built
image cannot have the publisher's digest).

Two public names that would land on the same registry path with different
images are refused: the mirror could only serve one of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from api import ImageReference, InvalidReference, parse_image_reference

# public repository -> the local image (a ref in the OCI layout) that stands in for it
REPOSITORIES: dict[str, str] = {
    "docker.io/library/busybox": "busybox",
    "registry.k8s.io/busybox": "busybox",
    "k8s.gcr.io/busybox": "busybox",
    "gcr.io/google-containers/busybox": "busybox",
    "docker.io/library/nginx": "nginx",
    "registry.k8s.io/nginx-slim": "nginx",
    "k8s.gcr.io/nginx-slim": "nginx",
    "registry.k8s.io/pause": "pause",
    "k8s.gcr.io/pause": "pause",
    "docker.io/kubelab/testserver": "testserver",
    "registry.k8s.io/e2e-test-images/agnhost": "agnhost",
    "k8s.gcr.io/e2e-test-images/agnhost": "agnhost",
    "gcr.io/google-samples/hello-go-gke": "hello",
    "docker.io/library/perl": "perl",
    "docker.io/library/redis": "redis",
}

# pushed even when no manifest names them
ALWAYS_PUSHED: tuple[str, ...] = (
    "busybox", "busybox:1.28", "busybox:1.36", "nginx", "nginx:1.14.2", "nginx:1.16.1",
    "registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.9", "kubelab/testserver:1.0",
    "registry.k8s.io/e2e-test-images/agnhost:2.40",
)


@dataclass(frozen=True, order=True)
class PushTarget:
    reference: ImageReference
    image: str          # the ref in the OCI layout


@dataclass
class ImageUse:
    text: str
    where: str          # file and object that uses it


@dataclass
class PushPlan:
    targets: list[PushTarget] = field(default_factory=list)
    unmapped: list[tuple[ImageUse, str]] = field(default_factory=list)   # (use, why)

    def images(self) -> set[str]:
        return {t.image for t in self.targets}


def local_image_for(ref: ImageReference) -> str | None:
    return REPOSITORIES.get(ref.repository)


def _walk_images(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}" if path else str(key)
            if key == "image" and not isinstance(value, dict | list):
                yield child, value
            else:
                yield from _walk_images(value, child)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk_images(value, f"{path}[{i}]")


def scan_manifests(roots: Iterable[Path]) -> list[ImageUse]:
    """Every `image:` in the YAML files under `roots`, with where it was found."""
    uses: list[ImageUse] = []
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml"))
        for file in files:
            try:
                documents = list(yaml.safe_load_all(file.read_text()))
            except yaml.YAMLError as err:
                raise ValueError(f"{file}: not valid YAML: {err}") from err
            for n, doc in enumerate(documents):
                kind = doc.get("kind", "?") if isinstance(doc, dict) else "?"
                name = doc.get("metadata", {}).get("name", "?") if isinstance(doc, dict) else "?"
                for field_path, value in _walk_images(doc, ""):
                    uses.append(ImageUse(str(value), f"{file} (document {n}, {kind} {name!r}, {field_path})"))
    return uses


def plan_pushes(uses: Iterable[ImageUse], always: Iterable[str] = ALWAYS_PUSHED) -> PushPlan:
    """Map every use to a local image; collect what cannot be mapped with the reason."""
    plan = PushPlan()
    chosen: dict[str, PushTarget] = {}     # mirror path:tag -> target
    all_uses = [ImageUse(text, "kubelab default") for text in always] + list(uses)
    for use in all_uses:
        try:
            ref = parse_image_reference(use.text)
        except InvalidReference as err:
            plan.unmapped.append((use, str(err)))
            continue
        if ref.digest:
            plan.unmapped.append((use, "pinned by digest: a locally built image cannot have the publisher's digest"))
            continue
        image = local_image_for(ref)
        if image is None:
            plan.unmapped.append((use, f"no local image stands in for {ref.repository} "
                                       "(add it to deploy/images/_names.py REPOSITORIES)"))
            continue
        key = f"{ref.mirror_path}:{ref.tag}"
        target = PushTarget(ref, image)
        previous = chosen.get(key)
        if previous is not None and previous.image != image:
            raise ValueError(f"image {ref} and {previous.reference} both land on mirror path {key!r} "
                             f"but map to different local images ({image} vs {previous.image})")
        chosen.setdefault(key, target)
    plan.targets = sorted(chosen.values())
    return plan
