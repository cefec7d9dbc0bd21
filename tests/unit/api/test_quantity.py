"""Quantities: parsing every notation, Kubernetes' canonical forms, ordering
and the error for text that is not a quantity."""

import pytest

from api import Quantity, QuantityError, canonical_quantity


@pytest.mark.parametrize(("text", "canonical"), [
    ("250m", "250m"), ("0.5", "500m"), (0.5, "500m"), (1, "1"), ("1", "1"), ("2000", "2k"), ("1500", "1500"),
    ("64Mi", "64Mi"), ("1Gi", "1Gi"), ("1024Mi", "1Gi"), ("1.5Gi", "1536Mi"), ("1536Mi", "1536Mi"),
    ("512", "512"), ("0.5Gi", "512Mi"), ("1e3", "1e3"), ("1E6", "1e6"), ("100m", "100m"), ("0.1", "100m"),
    ("500u", "500u"), ("1.1n", "2n"), ("-1", "-1"), ("0", "0"), ("0Mi", "0"), ("1k", "1k"), ("1000k", "1M"),
    ("3Ti", "3Ti"),
])
def test_canonical_form(text: str | float, canonical: str) -> None:
    assert canonical_quantity(text) == canonical


@pytest.mark.parametrize("text", ["", "abc", "1Gb", "1.2.3", "--1", "1 Gi", "Mi", True])
def test_rejects_what_is_not_a_quantity(text: str) -> None:
    with pytest.raises(QuantityError, match=r"quantities must match the regular expression|unable to parse"):
        Quantity.parse(text)


def test_values_round_up() -> None:
    assert Quantity.parse("250m").milli_value() == 250
    assert Quantity.parse("250m").value() == 1
    assert Quantity.parse("1Gi").value() == 1024 ** 3
    assert Quantity.parse("1.5").milli_value() == 1500


def test_ordering_across_notations() -> None:
    assert Quantity.parse("1Gi") > Quantity.parse("1G")
    assert Quantity.parse("1000m") == Quantity.parse("1")
    assert Quantity.parse("64Mi") + Quantity.parse("64Mi") == Quantity.parse("128Mi")
    assert sorted([Quantity.parse("2"), Quantity.parse("500m")]) == [Quantity.parse("0.5"), Quantity.parse("2")]
