"""Int-or-string fields: `targetPort: 8080` or `targetPort: http`,
`maxSurge: 1` or `maxSurge: 25%`."""

from __future__ import annotations

import math

from proto import meta_pb2


def int_or_string(value: int | str) -> meta_pb2.IntOrString:
    if isinstance(value, int):
        return meta_pb2.IntOrString(intVal=value)
    return meta_pb2.IntOrString(strVal=value)


def value_of(ios: meta_pb2.IntOrString) -> int | str | None:
    """The plain value, or None when the field is unset."""
    kind = ios.WhichOneof("kind")
    if kind == "intVal":
        return ios.intVal
    if kind == "strVal":
        return ios.strVal
    return None


def scaled_value(ios: meta_pb2.IntOrString, total: int, round_up: bool) -> int:
    """An absolute number, or a percentage of `total` rounded up or down
    (Kubernetes rounds maxSurge up and maxUnavailable down)."""
    value = value_of(ios)
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    if not value.endswith("%") or not value[:-1].isdigit():
        raise ValueError(f"invalid value for IntOrString: invalid type: string is not a percentage: {value!r}")
    scaled = int(value[:-1]) * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)
