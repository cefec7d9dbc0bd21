"""Field selectors: equality, inequality, escapes and errors."""

import pytest

from api import FieldSelectorError, parse_field_selector

FIELDS = {"metadata.name": "web-0", "spec.nodeName": "node-1", "status.phase": "Running"}


@pytest.mark.parametrize(("selector", "matches"), [
    ("spec.nodeName=node-1", True), ("spec.nodeName==node-1", True), ("spec.nodeName!=node-1", False),
    ("spec.nodeName=node-1,status.phase!=Pending", True), ("spec.nodeName=", False),
    ("metadata.name=web-0,status.phase=Failed", False),
])
def test_matching(selector: str, matches: bool) -> None:
    assert parse_field_selector(selector).matches(FIELDS) is matches


def test_escaped_values() -> None:
    sel = parse_field_selector(r"metadata.name=a\,b")
    assert sel.matches({"metadata.name": "a,b"})
    assert sel.value_for("metadata.name") == "a,b"


def test_errors() -> None:
    with pytest.raises(FieldSelectorError, match="can't understand"):
        parse_field_selector("justaname")
    with pytest.raises(FieldSelectorError, match="invalid escape"):
        parse_field_selector(r"metadata.name=a\x")
