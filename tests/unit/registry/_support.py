"""Helpers the registry tests share: build a kind's strategy, and run an
object through what the generic store does on create and on update
(prepare, default, validate), without etcd or a server."""

from __future__ import annotations

import copy
from typing import Any

from api import SCHEME, decode_manifest, encode_manifest, json_merge_patch
from apiserver._allocators import NodePortAllocator, ServiceIPAllocator
from apiserver.registry import Strategy, build_strategies
from apiserver.registry._strategy import carry_system_fields

NOW = 1_700_000_000.0

STRATEGIES = build_strategies(ServiceIPAllocator(None, "10.96.0.0/12"), NodePortAllocator(None))  # type: ignore[arg-type]


def strategy_for(kind: str, api_version: str) -> Strategy:
    return STRATEGIES[SCHEME.by_gvk(api_version, kind).group_resource]


def decode(manifest: dict[str, Any], namespace: str = "default") -> Any:
    obj: Any = decode_manifest(manifest)
    if SCHEME.for_message(obj).namespaced and not obj.metadata.namespace:
        obj.metadata.namespace = namespace
    return obj


def created(manifest: dict[str, Any], now: float = NOW) -> Any:
    """The object as the store would store it on create (before validation)."""
    obj = decode(manifest)
    strategy = STRATEGIES[SCHEME.for_message(obj).group_resource]
    strategy.prepare_for_create(obj, now)
    strategy.default(obj)
    return obj


def create_errors(manifest: dict[str, Any]) -> list[str]:
    obj = created(manifest)
    return [str(e) for e in STRATEGIES[SCHEME.for_message(obj).group_resource].validate(obj)]


def updated(old: Any, change: dict[str, Any] | None = None, edit: Any = None) -> Any:
    """`old` with a JSON-merge-style `change` applied and/or `edit(obj)` run,
    prepared and defaulted the way the store does on update."""
    doc = encode_manifest(old)
    if change is not None:
        doc = json_merge_patch(doc, change)
    new = decode(copy.deepcopy(doc))
    if edit is not None:
        edit(new)
    strategy = STRATEGIES[SCHEME.for_message(new).group_resource]
    carry_system_fields(new, old)
    strategy.prepare_for_update(new, old)
    strategy.default(new)
    return new


def update_errors(old: Any, change: dict[str, Any] | None = None, edit: Any = None) -> list[str]:
    new = updated(old, change, edit)
    return [str(e) for e in STRATEGIES[SCHEME.for_message(new).group_resource].validate_update(new, old)]


def status_errors(old: Any, status: dict[str, Any]) -> list[str]:
    """Errors of a /status update that sets `status` on `old`."""
    doc = encode_manifest(old)
    doc["status"] = status
    new = decode(doc)
    strategy = STRATEGIES[SCHEME.for_message(new).group_resource]
    strategy.prepare_for_status_update(new, old)
    return [str(e) for e in strategy.validate_status_update(new, old)]


def row(obj: Any, now: float = NOW + 90) -> dict[str, str]:
    """The printed row as header -> cell, wide columns included."""
    strategy = STRATEGIES[SCHEME.for_message(obj).group_resource]
    return {c.name: cell for c, cell in zip(strategy.columns, strategy.rows(obj, now), strict=True)}


def headers(obj_kind: str, api_version: str, wide: bool = False) -> list[str]:
    strategy = strategy_for(obj_kind, api_version)
    return [c.name.upper() for c in strategy.columns if wide or c.priority == 0]
