"""Label selectors: the string form `kubelab get -l` takes
(`app=web,tier!=db,env in (prod,staging),release,!canary`) and the
structured form objects carry (`matchLabels` + `matchExpressions`).

Both compile to the same `Selector`, a list of requirements that must all
hold. An empty selector matches everything; `Selector.nothing()` (what a nil
selector means for workloads) matches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from proto import meta_pb2

from ._validation import is_label_value, is_qualified_name

_OPERATORS = ("in", "notin", "=", "==", "!=", "exists", "!", "gt", "lt")


class SelectorError(ValueError):
    """A selector that does not parse or breaks the label syntax rules."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # one of _OPERATORS, "!" meaning "does not exist"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in ("=", "==", "in"):
            return self.key in labels and labels[self.key] in self.values
        if op in ("!=", "notin"):
            return self.key not in labels or labels[self.key] not in self.values
        if op == "exists":
            return self.key in labels
        if op == "!":
            return self.key not in labels
        if op in ("gt", "lt"):
            if self.key not in labels:
                return False
            try:
                have, want = int(labels[self.key]), int(self.values[0])
            except ValueError:
                return False
            return have > want if op == "gt" else have < want
        return False

    def __str__(self) -> str:
        op = self.operator
        if op == "exists":
            return self.key
        if op == "!":
            return "!" + self.key
        if op in ("in", "notin"):
            return f"{self.key} {op} ({','.join(self.values)})"
        if op in ("gt", "lt"):
            return f"{self.key}{'>' if op == 'gt' else '<'}{self.values[0]}"
        return f"{self.key}{op}{self.values[0]}"


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()
    match_nothing: bool = False

    @classmethod
    def everything(cls) -> Selector:
        return cls()

    @classmethod
    def nothing(cls) -> Selector:
        return cls(match_nothing=True)

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.match_nothing:
            return False
        return all(r.matches(labels) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements and not self.match_nothing

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


# ------------------------------------------------------------------ parsing

_TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|<|>|[^\s!=(),<>]+)")


def _tokens(text: str) -> list[str]:
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise SelectorError(f"unable to parse requirement: found '{text[pos:]}'")
        out.append(m.group(1))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _check_key(key: str) -> None:
    errs = is_qualified_name(key)
    if errs:
        raise SelectorError(f"unable to parse requirement: <nil>: Invalid value: {key!r}: {'; '.join(errs)}")


def _check_value(value: str) -> None:
    errs = is_label_value(value)
    if errs:
        raise SelectorError(f"unable to parse requirement: <nil>: Invalid value: {value!r}: {'; '.join(errs)}")


def parse_selector(text: str) -> Selector:
    """Parse kubectl's `-l` syntax; raise SelectorError naming the problem."""
    tokens = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def expect_value(at: int) -> str:
        if at >= len(tokens) or tokens[at] in ("(", ")", ",", "=", "==", "!=", "!"):
            found = tokens[at] if at < len(tokens) else "end of string"
            raise SelectorError(f"found '{found}', expected: identifier")
        return tokens[at]

    while i < len(tokens):
        tok = tokens[i]
        if tok == "!":
            key = expect_value(i + 1)
            _check_key(key)
            reqs.append(Requirement(key, "!"))
            i += 2
        else:
            key = tok
            if key in ("(", ")", ",", "=", "==", "!="):
                raise SelectorError(f"found '{key}', expected: !, identifier, or 'end of string'")
            _check_key(key)
            nxt = tokens[i + 1] if i + 1 < len(tokens) else ","
            if nxt == ",":
                reqs.append(Requirement(key, "exists"))
                i += 1
            elif nxt in ("=", "==", "!="):
                value = tokens[i + 2] if i + 2 < len(tokens) and tokens[i + 2] not in (",",) else ""
                if value in ("(", ")", "=", "==", "!=", "!"):
                    raise SelectorError(f"found '{value}', expected: identifier")
                _check_value(value)
                reqs.append(Requirement(key, nxt, (value,)))
                i += 3 if value else 2
            elif nxt in ("<", ">"):
                value = expect_value(i + 2)
                if not value.lstrip("-").isdigit():
                    raise SelectorError("unable to parse requirement: for 'Gt', 'Lt' operators, the value must be "
                                        f"an integer: {value!r}")
                reqs.append(Requirement(key, "gt" if nxt == ">" else "lt", (value,)))
                i += 3
            elif nxt in ("in", "notin"):
                if i + 2 >= len(tokens) or tokens[i + 2] != "(":
                    found = tokens[i + 2] if i + 2 < len(tokens) else "end of string"
                    raise SelectorError(f"found '{found}', expected: '('")
                j, values = i + 3, []
                while j < len(tokens) and tokens[j] != ")":
                    if tokens[j] != ",":
                        _check_value(tokens[j])
                        values.append(tokens[j])
                    j += 1
                if j >= len(tokens):
                    raise SelectorError("found 'end of string', expected: ')'")
                reqs.append(Requirement(key, nxt, tuple(values)))
                i = j + 1
            else:
                raise SelectorError(f"found '{nxt}', expected: in, notin, =, ==, !=, gt, lt")
        if i < len(tokens):
            if tokens[i] != ",":
                raise SelectorError(f"found '{tokens[i]}', expected: ',' or 'end of string'")
            i += 1
            if i == len(tokens):
                raise SelectorError("found 'end of string', expected: identifier")
    return Selector(tuple(reqs))


def selector_from_message(sel: meta_pb2.LabelSelector | None) -> Selector:
    """A LabelSelector field as a Selector. An unset field matches nothing;
    an empty one (`selector: {}`) matches everything, as in Kubernetes."""
    if sel is None:
        return Selector.nothing()
    reqs = [Requirement(k, "=", (v,)) for k, v in sorted(sel.matchLabels.items())]
    for expr in sel.matchExpressions:
        op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}.get(expr.operator)
        if op is None:
            raise SelectorError(f"{expr.operator!r} is not a valid label selector operator")
        reqs.append(Requirement(expr.key, op, tuple(expr.values)))
    return Selector(tuple(reqs))


def selector_from_map(labels: Mapping[str, str]) -> Selector:
    """The equality selector a ReplicationController or Service uses."""
    return Selector(tuple(Requirement(k, "=", (v,)) for k, v in sorted(labels.items())))


def format_labels(labels: Mapping[str, str]) -> str:
    """`app=web,tier=db`, or `<none>` as kubectl prints an empty set."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"
