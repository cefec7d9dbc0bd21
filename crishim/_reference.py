"""Image names, normalised as Docker and containerd do.

`busybox` is `docker.io/library/busybox:latest`; `registry.k8s.io/pause:3.10`
stays as it is; `name@sha256:...` pins a digest. The first path component is
a registry host when it has a dot or a port, or is `localhost`. A name that
breaks the rules raises InvalidArgument saying which rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._errors import InvalidArgument

DOCKER_HUB = "docker.io"
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_HOST = re.compile(r"^[a-zA-Z0-9.-]+(?::[0-9]+)?$|^\[[0-9a-fA-F:.]+\](?::[0-9]+)?$")


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str          # library/busybox
    tag: str = ""
    digest: str = ""

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag}"

    @property
    def tagged(self) -> str:
        """The repo tag this reference names ("" for a digest-only name)."""
        return f"{self.repository}:{self.tag}" if self.tag else ""


def is_image_id(text: str) -> bool:
    return bool(_DIGEST.match(text)) or bool(re.fullmatch(r"[a-f0-9]{64}", text))


def parse(name: str) -> Reference:
    """Normalise an image name; raises InvalidArgument naming the rule broken."""
    text = name.strip()
    if not text:
        raise InvalidArgument("image: Required value: an image name")
    rest, digest = text, ""
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidArgument(f"image {name!r}: Invalid value: digest must be sha256:<64 hex digits>")
    tag = ""
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.match(tag):
            raise InvalidArgument(f"image {name!r}: Invalid value: tag {tag!r} must match [A-Za-z0-9_][A-Za-z0-9_.-]*"
                                  " and be at most 128 characters")
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, remainder
        if not _HOST.match(domain):
            raise InvalidArgument(f"image {name!r}: Invalid value: registry host {domain!r}")
    else:
        domain, path = DOCKER_HUB, rest
    if domain == "index.docker.io":
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    for part in path.split("/"):
        if not _COMPONENT.match(part):
            raise InvalidArgument(f"image {name!r}: Invalid value: repository component {part!r} must be lowercase "
                                  "letters and digits separated by '.', '_', '__' or '-'")
    if not tag and not digest:
        tag = "latest"
    return Reference(domain, path, tag, digest)
