"""Small field checks every API group uses, each returning FieldErrors in
Kubernetes' words.

Kubernetes repeats a handful of rules across its validation packages:
"must be greater than or equal to 0", "field is immutable", an int-or-percent
that must be a non-negative integer or a "NN%" string, a quantity that must
be positive, names that must be usable as one URL path segment. They live
here once so that every kind says them the same way.
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from api import FieldError, Quantity, QuantityError, invalid, to_dict, value_of

_PERCENT = re.compile(r"^[0-9]+%$")
_PERCENT_TEXT = ("a valid percent string must be a numeric string followed by an ending '%' "
                 "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")


def nonnegative(value: int, path: str) -> list[FieldError]:
    return [invalid(path, value, "must be greater than or equal to 0")] if value < 0 else []


def positive(value: int, path: str, detail: str = "must be greater than 0") -> list[FieldError]:
    return [invalid(path, value, detail)] if value <= 0 else []


def shown(value: Any) -> Any:
    """A value as an error message shows it: messages as their manifest
    form, everything else as it is."""
    if isinstance(value, Message):
        if value.DESCRIPTOR.full_name == "google.protobuf.Struct":
            return json_format.MessageToDict(value)
        return to_dict(value)
    return value


def same(a: Any, b: Any) -> bool:
    if isinstance(a, Message) and isinstance(b, Message):
        return a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)
    return bool(a == b)


def immutable(new: Any, old: Any, path: str) -> list[FieldError]:
    """Kubernetes' ValidateImmutableField: the new value, "field is immutable"."""
    return [] if same(new, old) else [invalid(path, shown(new), "field is immutable")]


def optional_immutable(new: Any, old: Any, field: str, path: str) -> list[FieldError]:
    """An `optional` field may not be set, unset or changed."""
    if new.HasField(field) != old.HasField(field) or getattr(new, field) != getattr(old, field):
        value = getattr(new, field) if new.HasField(field) else None
        return [invalid(path, shown(value), "field is immutable")]
    return []


def overlay(target: Message, source: Message, names: tuple[str, ...]) -> None:
    """Copy the named fields from `source` into `target`, presence included
    (how an update rule says "these fields may change, nothing else")."""
    for name in names:
        target.ClearField(name)
        try:
            present = source.HasField(name)
        except ValueError:  # a plain scalar or a repeated field: no presence
            present = True
        if not present:
            continue
        value = getattr(source, name)
        if isinstance(value, Message):
            getattr(target, name).CopyFrom(value)
        elif hasattr(value, "extend"):
            getattr(target, name).extend(value)
        else:
            setattr(target, name, value)


# ------------------------------------------------------------ int-or-percent

def percent_of(ios: Any) -> int | None:
    """The number in a valid "NN%" value, None for an int or a bad string."""
    value = value_of(ios)
    if isinstance(value, str) and _PERCENT.match(value):
        return int(value[:-1])
    return None


def int_or_percent_value(ios: Any) -> int:
    """The number an int-or-percent holds (25 for both 25 and "25%")."""
    percent = percent_of(ios)
    if percent is not None:
        return percent
    value = value_of(ios)
    return value if isinstance(value, int) else 0


def validate_int_or_percent(ios: Any, path: str) -> list[FieldError]:
    """A non-negative integer or a percentage string (maxSurge, minAvailable)."""
    value = value_of(ios)
    if isinstance(value, str):
        return [] if _PERCENT.match(value) else [invalid(path, value, _PERCENT_TEXT)]
    if isinstance(value, int):
        return nonnegative(value, path)
    return []


def not_more_than_100_percent(ios: Any, path: str) -> list[FieldError]:
    percent = percent_of(ios)
    if percent is not None and percent > 100:
        return [invalid(path, value_of(ios), "must not be greater than 100%")]
    return []


# ------------------------------------------------------------ quantities

def quantity(q: Any, path: str) -> tuple[Quantity | None, list[FieldError]]:
    """Parse a Quantity field; a text that is not one is an error at `path`."""
    try:
        return Quantity.parse(q.value), []
    except QuantityError as err:
        return None, [invalid(path, q.value, str(err))]


def nonnegative_quantity(q: Any, path: str) -> list[FieldError]:
    value, errs = quantity(q, path)
    if value is not None and value.amount < 0:
        errs.append(invalid(path, q.value, "must be greater than or equal to 0"))
    return errs


def positive_quantity(q: Any, path: str) -> list[FieldError]:
    value, errs = quantity(q, path)
    if value is not None and value.amount <= 0:
        errs.append(invalid(path, q.value, "must be greater than zero"))
    return errs


# ------------------------------------------------------------ names

def is_path_segment_name(name: str) -> list[str]:
    """Names that must fit in one URL path segment (RBAC objects, HPA
    references): not "." or "..", no "/" or "%"."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]
