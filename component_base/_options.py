"""Flags and a config file for every component.

Each component declares its flags with argparse; `--config FILE` reads a
YAML mapping whose keys are the flag names (with dashes or underscores),
and flags given on the command line win over the file, like Kubernetes'
--config files for the kubelet and scheduler.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import yaml


def add_common_flags(parser: argparse.ArgumentParser, *, metrics_default: str) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML file of flag values; command-line flags win")
    parser.add_argument("--log-format", default="text", choices=["text", "json"], help="log line format")
    parser.add_argument("-v", "--log-level", default="info",
                        choices=["debug", "info", "warning", "error"], help="log level")
    parser.add_argument("--metrics-bind-address", default=metrics_default, metavar="HOST:PORT",
                        help="where /metrics is served for Prometheus; empty disables it")


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    pre, _ = parser.parse_known_args(argv)
    if getattr(pre, "config", None):
        with open(pre.config) as fh:
            values = yaml.safe_load(fh) or {}
        if not isinstance(values, dict):
            parser.error(f"{pre.config}: expected a mapping of flag names to values")
        known = {a.dest for a in parser._actions}
        defaults = {}
        for key, value in values.items():
            dest = str(key).replace("-", "_")
            if dest not in known:
                parser.error(f"{pre.config}: unknown setting {key!r}")
            defaults[dest] = value
        parser.set_defaults(**defaults)
    return parser.parse_args(argv)


def boolean(text: str) -> bool:
    """An argparse type for Kubernetes-style boolean flags (--flag=false)."""
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def split_host_port(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit(f"invalid {what} {text!r}: want HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)
