"""Output in kubectl's shapes: aligned tables, YAML, JSON, names, templates.

Tables are aligned the way Go's text/tabwriter aligns kubectl's output,
because that is what makes columns line up the way users expect: a cell
ends at a tab, each column is as wide as its widest cell plus the padding
(at least `minwidth`), a line's last cell is not part of any column, and
a line with fewer cells ends the block of lines that share a column. `get`
uses kubectl's printer settings (minimum width 6, padding 3, remembering
widths across flushes so watch rows stay aligned); `describe` uses its
own (padding 2).

Objects print as their manifests (api.encode_manifest): YAML with sorted
keys, JSON indented by four spaces, both as kubectl prints them; several
objects become one `kind: List`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from ._session import CLIError

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from api import Kind

OUTPUT_FORMATS = ("custom-columns", "custom-columns-file", "json", "jsonpath", "jsonpath-as-json", "jsonpath-file",
                  "name", "wide", "yaml")


class TabWriter:
    """Go's text/tabwriter with space padding (and the RememberWidths
    extension kubectl's printers use)."""

    def __init__(self, minwidth: int = 0, padding: int = 2, remember_widths: bool = False) -> None:
        self.minwidth = minwidth
        self.padding = padding
        self.remember = remember_widths
        self._max_widths: list[int] = []

    def format(self, text: str) -> str:
        """Align `text`: lines of tab-terminated cells."""
        lines = text.split("\n")
        trailing_newline = lines and lines[-1] == ""
        if trailing_newline:
            lines.pop()
        cells = [line.split("\t") for line in lines]
        out: list[str] = []
        self._block(cells, [], 0, len(cells), out)
        return "\n".join(out) + ("\n" if trailing_newline else "")

    def _block(self, lines: list[list[str]], widths: list[int], line0: int, line1: int, out: list[str]) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            self._write(lines, widths, line0, this, out)
            line0 = this
            width = self.minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + self.padding)
                this += 1
            if self.remember:
                if column < len(self._max_widths):
                    width = max(width, self._max_widths[column])
                    self._max_widths[column] = width
                else:
                    self._max_widths.append(width)
            widths.append(width)
            self._block(lines, widths, line0, this, out)
            widths.pop()
            line0 = this
        self._write(lines, widths, line0, line1, out)

    @staticmethod
    def _write(lines: list[list[str]], widths: list[int], line0: int, line1: int, out: list[str]) -> None:
        for cells in lines[line0:line1]:
            out.append("".join(c.ljust(widths[j]) if j < len(widths) else c for j, c in enumerate(cells)))


def table_writer() -> TabWriter:
    """kubectl's `get` printer settings."""
    return TabWriter(minwidth=6, padding=3, remember_widths=True)


def format_table(headers: Sequence[str] | None, rows: Iterable[Sequence[str]], writer: TabWriter | None = None) -> str:
    text = "".join("\t".join(_cell(c) for c in row) + "\n" for row in ([headers] if headers else []) + list(rows))
    return (writer or table_writer()).format(text)


def _cell(value: str) -> str:
    # A tab or newline inside a cell would break the table's shape.
    return value.replace("\t", " ").replace("\n", "\\n")


# ---------------------------------------------------------------- names


def kind_name(kind: Kind) -> str:
    """"pod", "deployment.apps": how kubectl names a kind in its messages."""
    return f"{kind.kind.lower()}.{kind.group}" if kind.group else kind.kind.lower()


def object_name(kind: Kind, name: str) -> str:
    """"pod/nginx", "deployment.apps/web" (the `-o name` form)."""
    return f"{kind_name(kind)}/{name}"


# ---------------------------------------------------------------- documents


@dataclass(frozen=True)
class OutputFormat:
    """A parsed -o value: `name` is the printer, `arg` its template or file."""

    name: str = ""
    arg: str = ""

    @property
    def is_table(self) -> bool:
        return self.name in ("", "wide", "custom-columns", "custom-columns-file")

    @property
    def is_document(self) -> bool:
        return self.name in ("yaml", "json", "jsonpath", "jsonpath-as-json", "jsonpath-file")


def parse_output(text: str, allowed: Sequence[str] = OUTPUT_FORMATS) -> OutputFormat:
    text = text or ""
    if not text:
        return OutputFormat()
    name, _, arg = text.partition("=")
    if name not in allowed:
        raise CLIError(f'unable to match a printer suitable for the output format "{text}", allowed formats are: '
                       f'{",".join(sorted(allowed))}')
    if name in ("jsonpath", "jsonpath-as-json", "custom-columns") and not arg:
        raise CLIError(f"{name} template format specified but no template given")
    if name in ("jsonpath-file", "custom-columns-file"):
        if not arg:
            raise CLIError(f"{name} specified but no file given")
        try:
            with open(arg, encoding="utf-8") as f:
                arg = f.read()
        except OSError as err:
            raise CLIError(f"error reading template {arg}: {err.strerror}") from None
        name = name.removesuffix("-file")
        if name == "jsonpath":
            arg = arg.rstrip("\n")
    return OutputFormat(name, arg)


def manifest(obj: Message) -> dict[str, Any]:
    from api import encode_manifest
    return encode_manifest(obj)


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=4, sort_keys=True, ensure_ascii=False) + "\n"


class _Emitter(yaml.emitter.Emitter):
    """Quote the way Go's YAML does: double quotes where quoting is needed."""

    def choose_scalar_style(self) -> str:
        style = super().choose_scalar_style()
        return '"' if style == "'" else style


class _Dumper(_Emitter, yaml.serializer.Serializer, yaml.representer.SafeRepresenter, yaml.resolver.Resolver):
    def __init__(self, stream: Any, **kwargs: Any) -> None:
        _Emitter.__init__(self, stream, allow_unicode=True, width=kwargs.get("width"))
        yaml.serializer.Serializer.__init__(self)
        yaml.representer.SafeRepresenter.__init__(self, default_flow_style=False, sort_keys=True)
        yaml.resolver.Resolver.__init__(self)


def _represent_str(dumper: yaml.representer.SafeRepresenter, value: str) -> yaml.Node:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(data: Any) -> str:
    """YAML as kubectl prints it: keys sorted, block style, double quotes
    where a value needs quoting, `|` blocks for multi-line text, no folding."""
    return yaml.dump(data, Dumper=_Dumper, width=float("inf"))


def render_documents(fmt: OutputFormat, docs: list[dict[str, Any]], single: bool) -> str:
    """yaml/json/jsonpath output of `docs`: the one object when the user
    named exactly one, otherwise a List."""
    data = docs[0] if single and len(docs) == 1 else as_list(docs)
    if fmt.name == "yaml":
        return dump_yaml(data)
    if fmt.name == "json":
        return dump_json(data)
    from ._jsonpath import Template
    template = Template(fmt.arg)
    if fmt.name == "jsonpath-as-json":
        return dump_json(template.values(data))
    return template.render(data)


# ---------------------------------------------------------------- custom columns


@dataclass(frozen=True)
class CustomColumn:
    header: str
    path: str


def parse_custom_columns(spec: str) -> list[CustomColumn]:
    """`NAME:.metadata.name,IMAGE:.spec.containers[*].image` (or the file
    form: a header line and a line of paths, separated by whitespace)."""
    text = spec.strip()
    if "\n" in text:
        head, _, paths = text.partition("\n")
        names, exprs = head.split(), paths.split()
        if len(names) != len(exprs):
            raise CLIError(f"expected {len(names)} column paths, found {len(exprs)}")
        return [CustomColumn(n, e) for n, e in zip(names, exprs, strict=True)]
    columns = []
    for part in text.split(","):
        header, sep, path = part.partition(":")
        if not sep or not header or not path:
            raise CLIError(f'unexpected custom-columns spec: {part}, expected <header>:<json-path-expr>')
        columns.append(CustomColumn(header, path))
    return columns


def custom_column_rows(columns: list[CustomColumn], docs: list[dict[str, Any]]) -> list[list[str]]:
    from ._jsonpath import Template, relaxed
    templates = [Template(relaxed(c.path)) for c in columns]
    rows = []
    for doc in docs:
        row = []
        for template in templates:
            values = template.values(doc)
            row.append(",".join(_text(v) for v in values) if values else "<none>")
        rows.append(row)
    return rows


def _text(value: Any) -> str:
    from ._jsonpath import text_of
    return text_of(value)
