"""Reading container logs the way `kubectl logs` asks for them.

The runtime writes each container's output to a CRI log file, one entry
per line: `<RFC 3339 nano time> <stdout|stderr> <P|F> <content>`, where P
marks a partial line (a long line split, or output without a newline yet)
and F the end of one. This module turns that back into the container's
output, with the options of the logs API:

* `tail_lines`: only the last N lines; `since_time`: only entries at or
  after it; `limit_bytes`: stop after that many bytes;
* `timestamps`: each line prefixed by its time, as kubectl prints it;
* `follow`: after what is there, keep reading new entries (polling the
  file, re-opening it if the runtime rotated it) until the container
  stops and everything it wrote has been sent, or the caller goes away.

A line that does not parse is passed on as it is, never dropped: the log
is the user's and a reader must not lose it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from api import parse_time


@dataclass(slots=True)
class LogEntry:
    timestamp: str
    stream: str
    full: bool
    content: bytes

    @property
    def seconds(self) -> float:
        try:
            return parse_time(self.timestamp[:26] + "Z" if len(self.timestamp) > 27 else self.timestamp)
        except ValueError:
            return 0.0


def parse_line(line: bytes) -> LogEntry:
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) == 4 and parts[1] in (b"stdout", b"stderr") and parts[2] in (b"P", b"F"):
        return LogEntry(parts[0].decode(errors="replace"), parts[1].decode(), parts[2] == b"F", parts[3])
    if len(parts) == 3 and parts[1] in (b"stdout", b"stderr") and parts[2] in (b"P", b"F"):
        return LogEntry(parts[0].decode(errors="replace"), parts[1].decode(), parts[2] == b"F", b"")
    return LogEntry("", "stdout", True, line.rstrip(b"\n"))


def _join(entries: list[LogEntry], timestamps: bool) -> list[bytes]:
    """Whole output lines from entries (partial ones joined)."""
    out: list[bytes] = []
    pending: list[bytes] = []
    first = ""
    for e in entries:
        if not pending:
            first = e.timestamp
        pending.append(e.content)
        if e.full:
            text = b"".join(pending) + b"\n"
            out.append((first.encode() + b" " + text) if timestamps and first else text)
            pending = []
    if pending:
        text = b"".join(pending)
        out.append((first.encode() + b" " + text) if timestamps and first else text)
    return out


@dataclass
class LogOptions:
    tail_lines: int = -1          # < 0: all
    since_time: float = 0.0       # seconds since the epoch; 0: from the start
    limit_bytes: int = 0          # 0: no limit
    timestamps: bool = False
    follow: bool = False
    poll: float = 0.2


def _read_entries(path: Path, since: float) -> tuple[list[LogEntry], int, int]:
    """Every entry of the file, the offset after its last whole line, and its inode."""
    try:
        with path.open("rb") as fh:
            data = fh.read()
            inode = os.fstat(fh.fileno()).st_ino
    except FileNotFoundError:
        return [], 0, 0
    end = data.rfind(b"\n") + 1
    entries = [parse_line(line) for line in data[:end].splitlines()]
    if since:
        entries = [e for e in entries if not e.timestamp or e.seconds >= since]
    return entries, end, inode


async def read_log(path: Path, options: LogOptions,
                   running: Callable[[], Awaitable[bool]]) -> AsyncIterator[bytes]:
    """Chunks of the container's output (whole lines); see the module docstring."""
    entries, offset, inode = _read_entries(path, options.since_time)
    lines = _join(entries, options.timestamps)
    if options.tail_lines >= 0:
        lines = lines[-options.tail_lines:] if options.tail_lines else []
    sent = 0
    for line in lines:
        if options.limit_bytes and sent + len(line) > options.limit_bytes:
            yield line[:options.limit_bytes - sent]
            return
        sent += len(line)
        yield line
    if not options.follow:
        return
    while True:
        alive = await running()
        chunk, offset, inode = _read_more(path, offset, inode)
        if chunk:
            for line in _join([parse_line(raw) for raw in chunk.splitlines()], options.timestamps):
                if options.limit_bytes and sent + len(line) > options.limit_bytes:
                    yield line[:options.limit_bytes - sent]
                    return
                sent += len(line)
                yield line
            continue
        if not alive:
            return
        await asyncio.sleep(options.poll)


def _read_more(path: Path, offset: int, inode: int) -> tuple[bytes, int, int]:
    """Whole lines written after `offset`; starts over on a new file (rotated)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return b"", offset, inode
    if st.st_ino != inode or st.st_size < offset:
        offset, inode = 0, st.st_ino
    if st.st_size == offset:
        return b"", offset, inode
    with path.open("rb") as fh:
        fh.seek(offset)
        data = fh.read()
    end = data.rfind(b"\n") + 1
    return data[:end], offset + end, inode
