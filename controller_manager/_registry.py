"""Which controllers exist: name -> "module:Class".

`--controllers` picks from this table as kube-controller-manager does:
`*` means every controller that is on by default, `name` turns one on,
`-name` turns one off. Each controller lives in its own module and is
imported only when enabled (or when its flags are listed by --help).
"""

from __future__ import annotations

import importlib

from ._controller import Controller

CONTROLLERS: dict[str, str] = {
    "serviceaccount": "controller_manager.serviceaccount:ServiceAccountController",
}

#: Controllers that `*` does not include.
OFF_BY_DEFAULT: set[str] = set()


def load(name: str) -> type[Controller]:
    module, _, attr = CONTROLLERS[name].partition(":")
    cls: type[Controller] = getattr(importlib.import_module(module), attr)
    return cls


def enabled(spec: str) -> list[str]:
    """The controllers a `--controllers` value turns on, in table order."""
    items = [s.strip() for s in spec.split(",") if s.strip()]
    for item in items:
        name = item[1:] if item.startswith("-") else item
        if name != "*" and name not in CONTROLLERS:
            raise ValueError(f"unknown controller {name!r}: known are {', '.join(sorted(CONTROLLERS))}")
    wanted: set[str] = set()
    for item in items:
        if item == "*":
            wanted |= set(CONTROLLERS) - OFF_BY_DEFAULT
        elif not item.startswith("-"):
            wanted.add(item)
    wanted -= {item[1:] for item in items if item.startswith("-")}
    return [name for name in CONTROLLERS if name in wanted]
