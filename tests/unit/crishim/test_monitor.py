"""The monitor's CRI log writer: line format, partial lines, size rotation;
and the oom_kill counter it reads at exit."""

from __future__ import annotations

from pathlib import Path

from crishim._monitor import MAX_LINE, LogWriter, oom_kills, rfc3339nano


def _clock() -> int:
    return 1_700_000_000_123_456_789


def test_lines_are_in_the_cri_format(tmp_path: Path) -> None:
    log = LogWriter(tmp_path / "0.log", 0, 5, clock=_clock)
    log.write("stdout", b"one\ntw")
    log.write("stderr", b"err\n")
    log.write("stdout", b"o\n")
    log.write("stdout", b"no newline at the end")
    log.close()
    assert (tmp_path / "0.log").read_text().splitlines() == [
        "2023-11-14T22:13:20.123456789Z stdout F one",
        "2023-11-14T22:13:20.123456789Z stderr F err",
        "2023-11-14T22:13:20.123456789Z stdout F two",
        "2023-11-14T22:13:20.123456789Z stdout F no newline at the end",
    ]


def test_a_long_line_is_cut_into_partial_lines(tmp_path: Path) -> None:
    log = LogWriter(tmp_path / "0.log", 0, 5, clock=_clock)
    log.write("stdout", b"x" * (MAX_LINE * 2 + 10) + b"\n")
    log.close()
    tags = [(line.split(" ")[2], len(line.split(" ", 3)[3])) for line in (tmp_path / "0.log").read_text().splitlines()]
    assert tags == [("P", MAX_LINE), ("P", MAX_LINE), ("F", 10)]


def test_rotation_keeps_max_files_newest_first(tmp_path: Path) -> None:
    log = LogWriter(tmp_path / "0.log", 200, 3, clock=_clock)
    for i in range(20):
        log.write("stdout", f"line {i:02d}\n".encode())
    log.close()
    files = [tmp_path / "0.log", tmp_path / "0.log.1", tmp_path / "0.log.2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.log", "0.log.1", "0.log.2"]
    assert all(p.stat().st_size <= 200 for p in files)
    numbers = [int(line.rsplit(" ", 1)[1]) for p in reversed(files) for line in p.read_text().splitlines()]
    assert numbers == list(range(numbers[0], 20))


def test_reopening_appends_and_counts_the_existing_size(tmp_path: Path) -> None:
    (tmp_path / "0.log").write_text("x" * 150 + "\n")
    log = LogWriter(tmp_path / "0.log", 200, 2, clock=_clock)
    log.write("stdout", b"this line does not fit in the first file\n")
    log.close()
    assert (tmp_path / "0.log.1").read_text() == "x" * 150 + "\n"


def test_rfc3339nano_and_oom_counter(tmp_path: Path) -> None:
    assert rfc3339nano(5) == "1970-01-01T00:00:00.000000005Z"
    control = tmp_path / "memory.oom_control"
    control.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert oom_kills(str(control)) == 2
    assert oom_kills(str(tmp_path / "missing")) == 0
