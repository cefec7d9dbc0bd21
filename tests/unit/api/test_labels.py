"""Label selectors: kubectl's string syntax, the structured form, matching,
and errors for malformed selectors."""

import pytest

from api import SelectorError, parse_selector, selector_from_map, selector_from_message
from proto import meta_pb2

LABELS = {"app": "web", "tier": "frontend", "env": "prod", "version": "7"}


@pytest.mark.parametrize(("selector", "matches"), [
    ("", True),
    ("app=web", True), ("app==web", True), ("app=db", False), ("app!=db", True), ("app!=web", False),
    ("missing!=x", True), ("env in (prod,staging)", True), ("env in (dev)", False),
    ("env notin (dev, test)", True), ("env notin (prod)", False), ("app", True), ("missing", False),
    ("!missing", True), ("!app", False), ("app=web,tier=frontend", True), ("app=web,tier=backend", False),
    ("version>5", True), ("version<5", False), ("app=web, env in (prod), !canary", True),
])
def test_matching(selector: str, matches: bool) -> None:
    assert parse_selector(selector).matches(LABELS) is matches


@pytest.mark.parametrize("bad", ["app=", "=web", "app in prod", "env in (prod", "a,,b", "app=web,", "bad key=x",
                                 "a=b=c"])
def test_malformed_selectors_are_errors(bad: str) -> None:
    if bad == "app=":
        assert parse_selector(bad).matches({"app": ""})  # an empty value is a valid value
        return
    with pytest.raises(SelectorError):
        parse_selector(bad)


def test_round_trip_to_text() -> None:
    text = "app=web,env in (prod,staging),release,!canary"
    assert str(parse_selector(text)) == text


def test_structured_selectors() -> None:
    sel = meta_pb2.LabelSelector(matchLabels={"app": "web"})
    sel.matchExpressions.add(key="env", operator="In", values=["prod"])
    sel.matchExpressions.add(key="canary", operator="DoesNotExist")
    assert selector_from_message(sel).matches(LABELS)
    assert not selector_from_message(sel).matches({**LABELS, "canary": "1"})
    assert selector_from_message(meta_pb2.LabelSelector()).matches({})  # {} selects everything
    assert not selector_from_message(None).matches(LABELS)  # unset selects nothing
    assert selector_from_map({"app": "web"}).matches(LABELS)
    bad = meta_pb2.LabelSelector()
    bad.matchExpressions.add(key="x", operator="Like")
    with pytest.raises(SelectorError, match="not a valid label selector operator"):
        selector_from_message(bad)
