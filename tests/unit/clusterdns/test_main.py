"""`python -m clusterdns` flags: defaults the lab relies on, and bad values
refused with an error naming the flag."""

from __future__ import annotations

import dns.name
import pytest

from clusterdns import parse_upstream
from clusterdns.__main__ import build_parser, check


def test_defaults() -> None:
    parser = build_parser()
    args = parser.parse_args([])
    zone, upstreams = check(args, parser)
    assert (args.port, args.ttl, args.bind_address) == (53, 30, "0.0.0.0")
    assert zone == dns.name.from_text("cluster.local.") and upstreams == []


def test_upstreams_repeat_or_comma_separate() -> None:
    parser = build_parser()
    args = parser.parse_args(["--upstream", "127.0.0.53", "--upstream", "127.0.0.1:5353,[::1]:53"])
    assert check(args, parser)[1] == [("127.0.0.53", 53), ("127.0.0.1", 5353), ("::1", 53)]


@pytest.mark.parametrize(("argv", "message"), [
    (["--upstream", "dns.example.com"], "--upstream 'dns.example.com': 'dns.example.com' is not an IP address"),
    (["--upstream", "127.0.0.1:x"], "--upstream '127.0.0.1:x': port 'x' is not a number"),
    (["--upstream", "127.0.0.1:70000"], "port 70000 is out of range 1-65535"),
    (["--cluster-domain", "a..b"], "--cluster-domain 'a..b': not a domain name"),
    (["--cluster-domain", "."], "--cluster-domain must not be empty or the root"),
    (["--port", "65536"], "--port 65536: must be between 0 and 65535"),
    (["--ttl", "-1"], "--ttl -1: must be 0 or more"),
])
def test_bad_flags_are_refused_naming_the_flag(argv: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    with pytest.raises(SystemExit) as exit_:
        check(parser.parse_args(argv), parser)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_parse_upstream_bare_ipv6() -> None:
    assert parse_upstream("fd00::53") == ("fd00::53", 53)
