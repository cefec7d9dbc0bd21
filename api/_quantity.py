"""Kubernetes quantities: "250m", "64Mi", "1Gi", "0.5", "1e3".

A quantity is an exact decimal number with one of three notations, and the
notation survives a round trip the way Kubernetes keeps it: a binary suffix
(Ki, Mi, Gi, ...) stays binary when the value is a whole number of at least
1024, a decimal suffix (m, k, M, ...) stays decimal, and an exponent stays an
exponent. The canonical form uses the largest suffix that keeps the number
whole, so "0.5" becomes "500m", "2000" becomes "2k" and "1536Mi" stays
"1536Mi". Values are rounded up to nano units, as Kubernetes does.
"""

from __future__ import annotations

import decimal
import functools
import re
from decimal import Decimal
from enum import Enum

_CONTEXT = decimal.Context(prec=60, rounding=decimal.ROUND_CEILING)

_PATTERN = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_REGEX_TEXT = "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_BY_EXP = {v: k for k, v in _DECIMAL.items()}
_BINARY_BY_EXP = {v: k for k, v in _BINARY.items()}
_NANO = Decimal("1e-9")


class Format(Enum):
    BINARY_SI = "BinarySI"
    DECIMAL_SI = "DecimalSI"
    DECIMAL_EXPONENT = "DecimalExponent"


class QuantityError(ValueError):
    """The text is not a quantity; the message is the one Kubernetes gives."""


@functools.total_ordering
class Quantity:
    """An exact amount plus the notation it was written in."""

    __slots__ = ("amount", "format")

    def __init__(self, amount: Decimal | int, fmt: Format = Format.DECIMAL_SI) -> None:
        amount = Decimal(amount)
        # Anything finer than a nano unit rounds up, away from zero.
        if amount != 0 and amount.as_tuple().exponent < -9:  # type: ignore[operator]
            rounding = decimal.ROUND_CEILING if amount > 0 else decimal.ROUND_FLOOR
            amount = amount.quantize(_NANO, rounding=rounding, context=_CONTEXT)
        self.amount: Decimal = amount
        self.format: Format = fmt

    @classmethod
    def parse(cls, text: str | int | float) -> Quantity:
        """Parse a manifest value: a string, or a bare YAML/JSON number."""
        if isinstance(text, bool):
            raise QuantityError("quantities must match the regular expression " + _REGEX_TEXT)
        if isinstance(text, (int, float)):
            text = repr(text) if isinstance(text, float) else str(text)
        text = text.strip()
        match = _PATTERN.match(text)
        if not match or text in ("", "+", "-", "."):
            raise QuantityError("quantities must match the regular expression " + _REGEX_TEXT)
        number, suffix = match.group(1), match.group(2)
        try:
            value = Decimal(number)
        except decimal.InvalidOperation:
            raise QuantityError("quantities must match the regular expression " + _REGEX_TEXT) from None
        if suffix in _BINARY:
            return cls(_CONTEXT.multiply(value, Decimal(1024) ** _BINARY[suffix]), Format.BINARY_SI)
        if suffix in _DECIMAL:
            return cls(_CONTEXT.multiply(value, Decimal(10) ** _DECIMAL[suffix]), Format.DECIMAL_SI)
        if suffix[:1] in ("e", "E") and re.fullmatch(r"[eE][-+]?[0-9]+", suffix):
            return cls(_CONTEXT.multiply(value, Decimal(10) ** int(suffix[1:])), Format.DECIMAL_EXPONENT)
        raise QuantityError("unable to parse quantity's suffix")

    # --------------------------------------------------------------- values

    def value(self) -> int:
        """The amount rounded up to a whole number (bytes, cores)."""
        return int(self.amount.to_integral_value(rounding=decimal.ROUND_CEILING))

    def milli_value(self) -> int:
        """The amount in thousandths, rounded up (millicores)."""
        return int((self.amount * 1000).to_integral_value(rounding=decimal.ROUND_CEILING))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Quantity):
            return self.amount == other.amount
        return NotImplemented

    def __lt__(self, other: Quantity) -> bool:
        return self.amount < other.amount

    def __hash__(self) -> int:
        return hash(self.amount)

    def __add__(self, other: Quantity) -> Quantity:
        return Quantity(self.amount + other.amount, self.format)

    def __sub__(self, other: Quantity) -> Quantity:
        return Quantity(self.amount - other.amount, self.format)

    def __repr__(self) -> str:
        return f"Quantity({str(self)!r})"

    # --------------------------------------------------------------- text

    def __str__(self) -> str:
        amount = self.amount
        if amount == 0:
            return "0"
        fmt = self.format
        if fmt is Format.BINARY_SI and (abs(amount) < 1024 or amount != amount.to_integral_value()):
            fmt = Format.DECIMAL_SI
        sign = "-" if amount < 0 else ""
        amount = abs(amount)
        if fmt is Format.BINARY_SI:
            mantissa, exp = int(amount), 0
            while exp < 6 and mantissa % 1024 == 0:
                mantissa //= 1024
                exp += 1
            return f"{sign}{mantissa}{_BINARY_BY_EXP.get(exp, '') if exp else ''}"
        mantissa, exp10 = _decimal_mantissa(amount)
        if fmt is Format.DECIMAL_EXPONENT:
            return f"{sign}{mantissa}" + (f"e{exp10}" if exp10 else "")
        if exp10 > 18:
            mantissa, exp10 = mantissa * 10 ** (exp10 - 18), 18
        return f"{sign}{mantissa}{_DECIMAL_BY_EXP[exp10]}"


def _decimal_mantissa(amount: Decimal) -> tuple[int, int]:
    """Write a positive amount as mantissa * 10**exp, exp a multiple of 3
    and as large as possible while the mantissa stays whole."""
    exp = -9
    mantissa = int(amount.scaleb(9, context=_CONTEXT))
    while mantissa % 1000 == 0 and mantissa != 0:
        mantissa //= 1000
        exp += 3
    return mantissa, exp


def parse_quantity(text: str | int | float) -> Quantity:
    return Quantity.parse(text)


def canonical_quantity(text: str | int | float) -> str:
    """The form Kubernetes stores a quantity in ("0.5" -> "500m")."""
    return str(Quantity.parse(text))
