"""kubectl's JSONPath templates: `-o jsonpath=...`, custom columns, --sort-by.

A template is text with actions in braces: `{.metadata.name}` prints a
value, `{"\\n"}` a literal, and `{range .items[*]}...{end}` repeats its body
once per value with `.` (or `@`) meaning the current item, while `$` stays
the whole document. An expression with several results prints them
separated by spaces; one with none prints nothing (kubectl's
allow-missing-keys, which `get` turns on). Maps and lists print as JSON.

The path expressions themselves are evaluated by jsonpath-ng (its `ext`
parser, which knows filters such as `[?(@.type=="Ready")]`); this module
owns only the template layer and the translation of kubectl's path spelling
into jsonpath-ng's: a leading `.` instead of `$.`, `\\.` to escape a dot
inside a key (`.metadata.labels.app\\.kubernetes\\.io/name`), and keys with
characters jsonpath-ng would read as syntax, which are quoted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ._session import CLIError


@dataclass
class _Text:
    text: str


@dataclass
class _Expr:
    expr: str


@dataclass
class _Range:
    expr: str
    body: list[_Text | _Expr | _Range] = field(default_factory=list)


_Node = _Text | _Expr | _Range


class Template:
    """A parsed template; `render` prints it, `values` lists what it selects."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.nodes = _parse(text)

    def render(self, data: Any) -> str:
        out: list[str] = []
        self._run(self.nodes, data, data, out, None)
        return "".join(out)

    def values(self, data: Any) -> list[Any]:
        """Every value the template's expressions select, in order (for
        jsonpath-as-json and custom columns)."""
        found: list[Any] = []
        self._run(self.nodes, data, data, None, found)
        return found

    def _run(self, nodes: list[_Node], root: Any, current: Any, out: list[str] | None,
             found: list[Any] | None) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                if out is not None:
                    out.append(node.text)
            elif isinstance(node, _Expr):
                values = evaluate(node.expr, root, current)
                if out is not None:
                    out.append(" ".join(text_of(v) for v in values))
                if found is not None:
                    found.extend(values)
            else:
                items = evaluate(node.expr, root, current)
                if len(items) == 1 and isinstance(items[0], list):
                    items = items[0]
                for item in items:
                    self._run(node.body, root, item, out, found)


def text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return str(value)


def relaxed(path: str) -> str:
    """kubectl's relaxed path for custom columns and --sort-by: `.a.b`,
    `a.b` and `{.a.b}` all mean `{.a.b}`."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        return path
    if not path.startswith((".", "$", "@", "[")):
        path = "." + path
    return "{" + path + "}"


# ---------------------------------------------------------------- parsing


def _parse(text: str) -> list[_Node]:
    root: list[_Node] = []
    stack: list[list[_Node]] = [root]
    i = 0
    while i < len(text):
        start = text.find("{", i)
        if start < 0:
            stack[-1].append(_Text(text[i:]))
            break
        if start > i:
            stack[-1].append(_Text(text[i:start]))
        end = _closing_brace(text, start)
        action = text[start + 1:end].strip()
        i = end + 1
        if action.startswith('"') or action.startswith("'"):
            stack[-1].append(_Text(_unquote(action, text)))
        elif action == "end":
            if len(stack) == 1:
                raise CLIError(f"error parsing jsonpath {text}, not in range, nothing to end")
            stack.pop()
        elif action.startswith("range ") or action == "range":
            node = _Range(action[5:].strip())
            stack[-1].append(node)
            stack.append(node.body)
        else:
            stack[-1].append(_Expr(action))
    if len(stack) > 1:
        raise CLIError(f"error parsing jsonpath {text}, unclosed range")
    return root


def _closing_brace(text: str, start: int) -> int:
    quote = ""
    depth = 0
    i = start + 1
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "{":
            depth += 1
        elif c == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    raise CLIError(f"error parsing jsonpath {text}, unclosed action")


def _unquote(literal: str, text: str) -> str:
    if len(literal) < 2 or literal[-1] != literal[0]:
        raise CLIError(f"error parsing jsonpath {text}, unterminated string {literal}")
    body = literal[1:-1]
    try:
        return body.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError:
        return body


# ---------------------------------------------------------------- evaluation


def evaluate(expr: str, root: Any, current: Any) -> list[Any]:
    """The values `expr` selects: `$...` from the root, anything else from
    the current item."""
    expr = expr.strip()
    if expr in ("", "@", "."):
        return [current]
    if expr == "$":
        return [root]
    base = root if expr.startswith("$") else current
    compiled = _compile(expr)
    return [match.value for match in compiled.find(base)]


@lru_cache(maxsize=256)
def _compile(expr: str) -> Any:
    from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
    from jsonpath_ng.ext import parse
    translated = translate(expr)
    try:
        return parse(translated)
    except (JsonPathLexerError, JsonPathParserError, Exception) as err:
        raise CLIError(f"error parsing jsonpath {{{expr}}}: {err}") from None


def translate(expr: str) -> str:
    """kubectl's path spelling as jsonpath-ng's: `.metadata.labels.a\\.b`
    becomes `$."metadata"."labels"."a.b"`."""
    s = expr.strip()
    if s[:1] in ("$", "@"):
        s = s[1:]
    out = ["$"]
    i = 0
    while i < len(s):
        c = s[i]
        if c == ".":
            if s[i + 1:i + 2] == ".":
                out.append("..")
                i += 2
            else:
                i += 1
                if s[i:i + 1] == "[":
                    continue
                out.append(".")
            name, i = _name(s, i)
            if name:
                out.append(_quote(name))
        elif c == "[":
            end = _closing_bracket(s, i, expr)
            out.append(s[i:end + 1])
            i = end + 1
        elif c.isspace():
            i += 1
        else:  # a path that starts with a bare key
            out.append(".")
            name, i = _name(s, i)
            out.append(_quote(name))
    return "".join(out)


def _name(s: str, i: int) -> tuple[str, int]:
    chars: list[str] = []
    while i < len(s) and s[i] not in ".[":
        if s[i] == "\\" and i + 1 < len(s):
            chars.append(s[i + 1])
            i += 2
            continue
        chars.append(s[i])
        i += 1
    return "".join(chars), i


def _quote(name: str) -> str:
    if name == "*":
        return name
    if '"' in name:
        return "'" + name + "'"
    return '"' + name + '"'


def _closing_bracket(s: str, start: int, expr: str) -> int:
    quote = ""
    depth = 0
    for i in range(start, len(s)):
        c = s[i]
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return i
    raise CLIError(f"error parsing jsonpath {{{expr}}}: unterminated array")
