"""_checks.py: the field rules shared across kinds — non-negative and
positive numbers, immutability, int-or-percent values, quantities, path
segment names, and `overlay` (copying the fields an update may change)."""

from __future__ import annotations

import pytest

from api import int_or_string
from apiserver.registry._checks import (
    immutable,
    int_or_percent_value,
    is_path_segment_name,
    nonnegative,
    not_more_than_100_percent,
    optional_immutable,
    overlay,
    positive,
    positive_quantity,
    validate_int_or_percent,
)
from proto import apps_pb2, meta_pb2


def strs(errors: list) -> list[str]:
    return [str(e) for e in errors]


def test_numbers() -> None:
    assert nonnegative(0, "spec.x") == []
    assert strs(nonnegative(-1, "spec.x")) == ["spec.x: Invalid value: -1: must be greater than or equal to 0"]
    assert positive(1, "spec.x") == []
    assert strs(positive(0, "spec.x")) == ["spec.x: Invalid value: 0: must be greater than 0"]


def test_immutable_compares_messages_by_content() -> None:
    a = meta_pb2.LabelSelector(matchLabels={"app": "a"})
    assert immutable(a, meta_pb2.LabelSelector(matchLabels={"app": "a"}), "spec.selector") == []
    assert strs(immutable(a, meta_pb2.LabelSelector(), "spec.selector")) == [
        'spec.selector: Invalid value: {"matchLabels": {"app": "a"}}: field is immutable']
    assert strs(immutable("b", "a", "type")) == ['type: Invalid value: "b": field is immutable']


def test_optional_immutable_sees_presence() -> None:
    old, new = apps_pb2.DeploymentSpec(), apps_pb2.DeploymentSpec(replicas=0)
    assert strs(optional_immutable(new, old, "replicas", "spec.replicas")) == [
        "spec.replicas: Invalid value: 0: field is immutable"]
    assert strs(optional_immutable(old, new, "replicas", "spec.replicas")) == [
        "spec.replicas: Invalid value: null: field is immutable"]
    assert optional_immutable(new, apps_pb2.DeploymentSpec(replicas=0), "replicas", "spec.replicas") == []


@pytest.mark.parametrize(("value", "number", "errors"), [
    (3, 3, []),
    ("25%", 25, []),
    ("0%", 0, []),
    (-1, -1, ["x: Invalid value: -1: must be greater than or equal to 0"]),
    ("25", 0, ['x: Invalid value: "25": a valid percent string must be a numeric string followed by an ending '
               "'%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"]),
    ("-5%", 0, ['x: Invalid value: "-5%": a valid percent string must be a numeric string followed by an ending '
                "'%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"]),
])
def test_int_or_percent(value: int | str, number: int, errors: list[str]) -> None:
    ios = int_or_string(value)
    assert int_or_percent_value(ios) == number
    assert strs(validate_int_or_percent(ios, "x")) == errors


def test_percent_cap() -> None:
    assert not_more_than_100_percent(int_or_string("100%"), "x") == []
    assert not_more_than_100_percent(int_or_string(150), "x") == []  # an int is not a percentage
    assert strs(not_more_than_100_percent(int_or_string("101%"), "x")) == [
        'x: Invalid value: "101%": must not be greater than 100%']
    assert validate_int_or_percent(meta_pb2.IntOrString(), "x") == []  # unset


def test_positive_quantity() -> None:
    assert positive_quantity(meta_pb2.Quantity(value="1Gi"), "q") == []
    assert strs(positive_quantity(meta_pb2.Quantity(value="0"), "q")) == ['q: Invalid value: "0": must be greater '
                                                                          "than zero"]
    assert strs(positive_quantity(meta_pb2.Quantity(value="1Mm"), "q")) == [
        "q: Invalid value: \"1Mm\": unable to parse quantity's suffix"]


def test_path_segment_names() -> None:
    assert is_path_segment_name("system:node") == []
    assert is_path_segment_name("..") == ["may not be '..'"]
    assert is_path_segment_name("a/b%c") == ["may not contain '/'", "may not contain '%'"]


def test_overlay_copies_presence_too() -> None:
    source = apps_pb2.StatefulSetSpec(replicas=3, minReadySeconds=2)
    target = apps_pb2.StatefulSetSpec(revisionHistoryLimit=5, serviceName="svc")
    overlay(target, source, ("replicas", "minReadySeconds", "revisionHistoryLimit", "template"))
    assert target.replicas == 3 and target.minReadySeconds == 2
    assert not target.HasField("revisionHistoryLimit") and not target.HasField("template")
    assert target.serviceName == "svc"
