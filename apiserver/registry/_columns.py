"""Printer cells several kinds share, written the way kubectl writes them.

Every workload kind shows the same wide columns (CONTAINERS, IMAGES,
SELECTOR) for its pod template, and many kinds print times as ages, optional
booleans as True/False/<unset> and long lists as "a,b,c + 2 more...". Keeping
them here means `kubelab get deploy -o wide` and `kubelab get rs -o wide`
cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from api import Requirement, human_duration, parse_time

from ._strategy import Column

_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def since(timestamp: str, now: float) -> str:
    """An RFC 3339 time as an age ("5m"), or <unknown> when unset."""
    if not timestamp:
        return "<unknown>"
    try:
        return human_duration(now - parse_time(timestamp))
    except ValueError:
        return "<unknown>"


def bool_cell(value: bool) -> str:
    """A plain Go bool in a table: true / false."""
    return "true" if value else "false"


def optional_bool(holder: Any, field: str) -> str:
    """An optional bool as kubectl's printBoolPtr writes it."""
    if not holder.HasField(field):
        return "<unset>"
    return "True" if getattr(holder, field) else "False"


def list_with_more(items: Sequence[str], limit: int = 3, empty: str = "<unset>") -> str:
    """`a,b,c + 2 more...` for long lists, as kubectl shortens them."""
    shown = ",".join(items[:limit])
    if len(items) > limit:
        return f"{shown} + {len(items) - limit} more..."
    return shown or empty


def format_label_selector(selector: Any) -> str:
    """A LabelSelector in kubectl's words: `app=web,tier in (a,b)`; an unset
    or empty selector prints as <none>."""
    if selector is None:
        return "<none>"
    reqs = [Requirement(k, "=", (v,)) for k, v in selector.matchLabels.items()]
    for expr in selector.matchExpressions:
        op = _OPERATORS.get(expr.operator, expr.operator)
        reqs.append(Requirement(expr.key, op, tuple(sorted(expr.values))))
    reqs.sort(key=lambda r: r.key)
    return ",".join(str(r) for r in reqs) or "<none>"


def controller_of(obj: Any) -> str:
    """The owning controller as `kind.group/name` (ControllerRevision's
    CONTROLLER column), or <none>."""
    for ref in obj.metadata.ownerReferences:
        if ref.controller:
            group = ref.apiVersion.rpartition("/")[0]
            kind = f"{ref.kind}.{group}" if group else ref.kind
            return f"{kind.lower()}/{ref.name}"
    return "<none>"


# ------------------------------------------------------------ pod templates

def template_columns(template_of: Callable[[Any], Any], selector_of: Callable[[Any], Any] | None
                     ) -> tuple[Column, ...]:
    """The wide columns of a workload: its template's container names and
    images, and (unless `selector_of` is None) its selector."""
    columns = [
        Column("Containers", lambda o, now: ",".join(c.name for c in template_of(o).spec.containers), 1),
        Column("Images", lambda o, now: ",".join(c.image for c in template_of(o).spec.containers), 1),
    ]
    if selector_of is not None:
        columns.append(Column("Selector", lambda o, now: format_label_selector(selector_of(o)), 1))
    return tuple(columns)


def spec_selector(obj: Any) -> Any:
    """spec.selector, or None when it is unset (prints <none>)."""
    return obj.spec.selector if obj.spec.HasField("selector") else None
