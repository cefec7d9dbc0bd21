"""_cron.py: which CronJob schedules parse, and the messages Kubernetes'
cron parser gives for those that do not."""

from __future__ import annotations

import pytest

from apiserver.registry._cron import CronError, check_schedule


@pytest.mark.parametrize("schedule", [
    "* * * * *", "*/5 * * * *", "0 0 1 1 *", "0 9-17 * * 1-5", "0 0 * * MON,wed,Fri", "0 0 1 jan-MAR *",
    "5/15 * * * *", "0 0 ? * *", "0,30 * * * *", "1-59/2 * * * *", "  0 0 * * 0  ", "@yearly", "@annually",
    "@monthly", "@weekly", "@daily", "@midnight", "@hourly", "@every 1h30m", "@every 90s", "TZ=UTC 0 0 * * *",
])
def test_valid_schedules(schedule: str) -> None:
    check_schedule(schedule)


@pytest.mark.parametrize(("schedule", "message"), [
    ("", "empty spec string"),
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("* * * * * *", "expected exactly 5 fields, found 6: [* * * * * *]"),
    ("60 * * * *", "end of range (60) above maximum (59): 60"),
    ("* 24 * * *", "end of range (24) above maximum (23): 24"),
    ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("* * * 13 *", "end of range (13) above maximum (12): 13"),
    ("* * * * 7", "end of range (7) above maximum (6): 7"),
    ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
    ("*/2/3 * * * *", "too many slashes: */2/3"),
    ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
    ("* * * * funday", 'failed to parse int from funday: strconv.Atoi: parsing "funday": invalid syntax'),
    ("@fortnightly", "unrecognized descriptor: @fortnightly"),
    ("@every soon", 'failed to parse duration @every soon: time: invalid duration "soon"'),
])
def test_invalid_schedules(schedule: str, message: str) -> None:
    with pytest.raises(CronError) as err:
        check_schedule(schedule)
    assert str(err.value) == message
