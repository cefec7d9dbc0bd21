"""Field selectors: `--field-selector spec.nodeName=node-1,status.phase!=Running`.

Only the fields a kind declares can be selected on (every kind has
metadata.name and metadata.namespace; pods add spec.nodeName, status.phase
and a few more), as in Kubernetes; anything else is a clear error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class FieldSelectorError(ValueError):
    pass


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str  # "=" or "!="
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        have = fields.get(self.field, "")
        return have == self.value if self.operator == "=" else have != self.value

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{self.value}"


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements

    def value_for(self, field: str) -> str | None:
        """The value an `=` requirement pins `field` to, if any."""
        for r in self.requirements:
            if r.field == field and r.operator == "=":
                return r.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, current, escaped = [], [], False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    out, escaped = [], False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise FieldSelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        else:
            out.append(ch)
    return "".join(out)


def parse_field_selector(text: str) -> FieldSelector:
    reqs = []
    for part in _split_unescaped(text.strip(), ","):
        if not part.strip():
            continue
        for op, norm in (("!=", "!="), ("==", "="), ("=", "=")):
            idx = part.find(op)
            if idx > 0:
                field, value = part[:idx].strip(), part[idx + len(op):].strip()
                reqs.append(FieldRequirement(field, norm, _unescape(value)))
                break
        else:
            raise FieldSelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
    return FieldSelector(tuple(reqs))
