"""Structured logs: one line per record, as text or JSON (`--log-format`).

JSON lines carry the time, level, component, logger and message, plus any
`extra={...}` fields the call passed, so a log pipeline can filter on them.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JSONFormatter(logging.Formatter):
    def __init__(self, component: str) -> None:
        super().__init__()
        self._component = component

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "component": self._component,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(component: str, level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JSONFormatter(component))
    elif fmt == "text":
        handler.setFormatter(logging.Formatter(
            f"%(asctime)s %(levelname).1s {component} %(name)s] %(message)s", "%Y-%m-%dT%H:%M:%S"))
    else:
        raise ValueError(f"unknown log format {fmt!r}: choose text or json")
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # gRPC's own chatter is rarely what a reader of these logs wants.
    logging.getLogger("grpc").setLevel(max(logging.WARNING, root.level))
