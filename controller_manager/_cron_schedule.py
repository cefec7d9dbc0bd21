"""When a CronJob's schedule fires, through croniter (the apiserver already
checked the syntax: apiserver/registry/_cron.py).

A schedule is five cron fields or an `@hourly`-style macro, evaluated in a
time zone: spec.timeZone, or a `TZ=`/`CRON_TZ=` prefix kept by old objects,
or else the controller-manager's own local zone, as Kubernetes does. robfig
cron's `@every <duration>` (which Kubernetes accepts and croniter does not)
is a fixed interval. Times go in and out as epoch seconds; the zone only
decides which instants match.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Protocol

from croniter import croniter

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)")


class ScheduleError(ValueError):
    """A schedule or time zone this controller cannot evaluate."""


class Schedule(Protocol):
    def next(self, after: float) -> float:
        """The first firing strictly after `after`."""
        ...

    def latest(self, at: float) -> float | None:
        """The last firing at or before `at` (None if there is none)."""
        ...


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    zone: tzinfo

    def next(self, after: float) -> float:
        start = datetime.fromtimestamp(after, tz=self.zone)
        return float(croniter(self.expression, start).get_next(float))

    def latest(self, at: float) -> float | None:
        # get_prev is strictly before its start: start just after `at`.
        start = datetime.fromtimestamp(int(at) + 1, tz=self.zone)
        prev = float(croniter(self.expression, start).get_prev(float))
        return prev if prev <= at else None


@dataclass(frozen=True)
class EverySchedule:
    """robfig cron's `@every <duration>`: fires every `seconds` after the
    time it is measured from (whole seconds, at least one)."""

    seconds: float
    origin: float

    def next(self, after: float) -> float:
        return float(int(after)) + self.seconds

    def latest(self, at: float) -> float | None:
        if at < self.origin + self.seconds:
            return None
        steps = int((at - self.origin) // self.seconds)
        return float(int(self.origin)) + steps * self.seconds


def _duration(text: str) -> float:
    pos, total = 0, 0.0
    while pos < len(text):
        m = _PART.match(text, pos)
        if not m:
            raise ScheduleError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not text:
        raise ScheduleError('time: invalid duration ""')
    return max(1.0, float(int(total)))


def local_zone() -> tzinfo:
    """The controller-manager's own zone: $TZ, else /etc/localtime, else UTC."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with open("/etc/localtime", "rb") as f:
            return zoneinfo.ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError):
        return UTC


def zone_named(name: str) -> tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name}") from None


def parse(schedule: str, time_zone: str | None, origin: float) -> Schedule:
    """The schedule of a CronJob. `time_zone` is spec.timeZone (None when
    unset); `origin` anchors `@every` (the last schedule time or the
    CronJob's creation)."""
    text = schedule.strip()
    zone: tzinfo | None = zone_named(time_zone) if time_zone is not None else None
    for prefix in ("TZ=", "CRON_TZ="):
        if text.startswith(prefix):
            name, _, text = text[len(prefix):].partition(" ")
            zone = zone_named(name)
            text = text.strip()
    if zone is None:
        zone = local_zone()
    if text.startswith("@every"):
        return EverySchedule(_duration(text[len("@every"):].strip()), origin)
    expression = text.replace("?", "*")
    if expression == "@midnight":
        expression = "@daily"
    if not croniter.is_valid(expression):
        raise ScheduleError(f"unparseable schedule: {schedule!r}")
    return CronSchedule(expression, zone)
