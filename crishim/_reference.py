"""Image names for the shim: api.parse_image_reference (the one parser the
apiserver, kubelet and image builder share), with a bad name reported as
the CRI's INVALID_ARGUMENT."""

from __future__ import annotations

from api import ImageReference, InvalidReference, is_image_id, parse_image_reference

from ._errors import InvalidArgument

Reference = ImageReference

__all__ = ["Reference", "is_image_id", "parse"]


def parse(name: str) -> ImageReference:
    """Normalise an image name; raises InvalidArgument naming the rule broken."""
    if not name.strip():
        raise InvalidArgument("image: Required value: an image name")
    try:
        return parse_image_reference(name.strip())
    except InvalidReference as err:
        raise InvalidArgument(str(err)) from None
