"""Image references as Kubernetes spells them, normalised the way the
container runtime does before it pulls.

A pod's `image: busybox:1.28` means `docker.io/library/busybox:1.28`: the
first path component is a registry host only when it looks like one (has a
dot or a port, or is `localhost`), Docker Hub's official images live under
`library/`, and a missing tag is `latest`. The local registry stores every
image under its path without the host (`library/busybox:1.28`,
`pause:3.10`), which is where a containerd-style mirror asks for it.

Parsing never guesses: a reference that breaks the grammar is refused with
an error that names the reference and the rule it breaks. One parser serves
the apiserver's defaulting, the kubelet, the CRI shim and the image builder,
so they all agree on what a name means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_DOMAIN = "docker.io"
OFFICIAL_NAMESPACE = "library"
DEFAULT_TAG = "latest"
# Docker Hub answers to several names; they all mean docker.io.
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")
_DOMAIN = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                     r"(?::[0-9]+)?$|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$")


class InvalidReference(ValueError):
    """An image reference that does not follow the reference grammar."""


@dataclass(frozen=True, order=True)
class ImageReference:
    domain: str
    path: str
    tag: str = DEFAULT_TAG
    digest: str = ""

    @property
    def repository(self) -> str:
        """Host and path: `docker.io/library/busybox`."""
        return f"{self.domain}/{self.path}"

    @property
    def mirror_path(self) -> str:
        """Where a mirror serves it: the path without the registry host."""
        return self.path

    def __str__(self) -> str:
        tail = f":{self.tag}" if self.tag else ""
        if self.digest:
            tail += f"@{self.digest}"
        return self.repository + tail

    @property
    def tagged(self) -> str:
        """The repo tag it names (`docker.io/library/busybox:1.28`); "" when only a digest pins it."""
        return f"{self.repository}:{self.tag}" if self.tag else ""

    @property
    def pinned(self) -> str:
        """The repo digest it names (`docker.io/library/busybox@sha256:...`); "" without a digest."""
        return f"{self.repository}@{self.digest}" if self.digest else ""

    def familiar(self) -> str:
        """The short form people write (`busybox:1.28`, `registry.k8s.io/pause:3.10`)."""
        name = self.repository
        if self.domain == DEFAULT_DOMAIN:
            name = self.path.removeprefix(OFFICIAL_NAMESPACE + "/")
        return f"{name}:{self.tag}" + (f"@{self.digest}" if self.digest else "")

    def with_tag(self, tag: str) -> ImageReference:
        return parse_image_reference(f"{self.repository}:{tag}")


def _looks_like_domain(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost" or component != component.lower()


def parse_image_reference(text: str) -> ImageReference:
    """Normalise `text` like the runtime does; raise InvalidReference naming the rule it breaks."""
    if not isinstance(text, str) or not text:
        raise InvalidReference(f"image reference {text!r}: must be a non-empty string")
    if text != text.strip() or any(c.isspace() for c in text):
        raise InvalidReference(f"image reference {text!r}: must not contain whitespace")
    name, _, digest = text.partition("@")
    if digest and not _DIGEST.match(digest):
        raise InvalidReference(f"image reference {text!r}: digest {digest!r} must be algorithm:hex (sha256:...)")
    tag = ""
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
        if not _TAG.match(tag):
            raise InvalidReference(f"image reference {text!r}: tag {tag!r} must match {_TAG.pattern}")
    first, sep, rest = name.partition("/")
    if sep and _looks_like_domain(first):
        domain, path = first, rest
        if not _DOMAIN.match(domain):
            raise InvalidReference(f"image reference {text!r}: registry host {domain!r} is not a valid host[:port]")
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain in _DOCKER_HUB_ALIASES:
        domain = DEFAULT_DOMAIN
    if not path:
        raise InvalidReference(f"image reference {text!r}: repository path must not be empty")
    for component in path.split("/"):
        if not _COMPONENT.match(component):
            raise InvalidReference(f"image reference {text!r}: path component {component!r} must be lowercase "
                                   "letters and digits separated by '.', '_', '__' or '-'")
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"{OFFICIAL_NAMESPACE}/{path}"
    if len(domain) + 1 + len(path) > 255:
        raise InvalidReference(f"image reference {text!r}: repository name must be at most 255 characters")
    return ImageReference(domain, path, tag or (DEFAULT_TAG if not digest else ""), digest)


_IMAGE_ID = re.compile(r"^(?:sha256:)?[a-f0-9]{64}$")


def is_image_id(text: str) -> bool:
    """Whether `text` is an image ID (the config's digest, with or without `sha256:`), not a name."""
    return bool(_IMAGE_ID.match(text))


def default_pull_policy(image: str) -> str:
    """Kubernetes' default imagePullPolicy: Always for `:latest` or no tag,
    IfNotPresent for another tag or a digest. Textual, so it also answers
    for a name validation will refuse."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "Always"
    return "Always" if last.rsplit(":", 1)[1] == DEFAULT_TAG else "IfNotPresent"
