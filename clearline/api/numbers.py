"""Decimal strings <-> the core's integers, exactly (DESIGN.md rule 1: decimals only here).

Inputs are plain decimal strings (``"65000.5"``, ``"0.01"``); anything else -- exponents,
signs, spaces, hex, separators, NaN -- is ``MALFORMED_NUMBER``. A value that is not a whole
number of the target unit (a price off the tick grid, a size off the lot grid, an amount
below 1e-6 USD) is ``NOT_A_MULTIPLE``: the API never rounds what a user signs.
"""

from __future__ import annotations

import re

from .errors import ApiCode, ApiError

__all__ = ["USD6", "ATOMS", "parse_units", "price_to_ticks", "size_to_lots", "amount_to_usd6", "parse_uint",
           "fmt_scaled", "fmt_usd6", "fmt_ticks", "fmt_lots", "fmt_ppm"]

USD6 = 1_000_000  # usd6 per USD
ATOMS = 100_000_000  # 1e-8 underlying units per unit
_DECIMAL = re.compile(r"(0|[1-9][0-9]{0,30})(?:\.([0-9]{1,30}))?")
UINT64_MAX = (1 << 64) - 1


def parse_units(text, scale: int, field: str) -> int:
    """``text`` × ``scale`` as an exact non-negative int (``scale`` a power of ten)."""
    if not isinstance(text, str):
        raise ApiError(ApiCode.MALFORMED_NUMBER, f"{field} must be a decimal string like \"12.5\", got {text!r}")
    m = _DECIMAL.fullmatch(text)
    if m is None:
        raise ApiError(ApiCode.MALFORMED_NUMBER,
                       f"{field} {text!r} is not a plain decimal number (digits with an optional '.', no sign, "
                       f"exponent or spaces)")
    whole, frac = m.group(1), m.group(2) or ""
    num = int(whole + frac)
    den = 10 ** len(frac)
    if (num * scale) % den:
        raise ApiError(ApiCode.NOT_A_MULTIPLE, f"{field} {text} has more decimals than the unit allows")
    return num * scale // den


def _grid(value: int, step: int, field: str, text: str, step_text: str) -> int:
    if value % step:
        raise ApiError(ApiCode.NOT_A_MULTIPLE, f"{field} {text} is not a multiple of {step_text}")
    out = value // step
    if out > UINT64_MAX:
        raise ApiError(ApiCode.OUT_OF_RANGE, f"{field} {text} is too large")
    return out


def price_to_ticks(text, tick_size: int, field: str = "price") -> int:
    """USD per whole underlying unit -> ticks of ``tick_size`` usd6."""
    usd6 = parse_units(text, USD6, field)
    return _grid(usd6, tick_size, field, text, f"the tick size {fmt_usd6(tick_size)}")


def size_to_lots(text, lot_size: int, field: str = "size") -> int:
    """Underlying units -> lots of ``lot_size`` × 1e-8 units."""
    atoms = parse_units(text, ATOMS, field)
    return _grid(atoms, lot_size, field, text, f"the lot size {fmt_scaled(lot_size, 8)}")


def amount_to_usd6(text, field: str = "amount") -> int:
    usd6 = parse_units(text, USD6, field)
    if usd6 > UINT64_MAX:
        raise ApiError(ApiCode.OUT_OF_RANGE, f"{field} {text} is too large")
    return usd6


def parse_uint(value, field: str, bits: int = 64) -> int:
    """An identifier or counter: a JSON integer or a decimal string (for values above 2^53)."""
    if isinstance(value, bool):
        raise ApiError(ApiCode.BAD_REQUEST, f"{field} must be an integer")
    if isinstance(value, str):
        if not re.fullmatch(r"0|[1-9][0-9]{0,25}", value):
            raise ApiError(ApiCode.MALFORMED_NUMBER, f"{field} {value!r} is not a non-negative integer")
        value = int(value)
    if not isinstance(value, int):
        raise ApiError(ApiCode.BAD_REQUEST, f"{field} must be an integer or a decimal string")
    if not (0 <= value < (1 << bits)):
        raise ApiError(ApiCode.OUT_OF_RANGE, f"{field} {value} is out of the uint{bits} range")
    return value


def fmt_scaled(value: int, decimals: int) -> str:
    """An int in units of 10^-decimals as the shortest exact decimal string."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10 ** decimals)
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}." + f"{frac:0{decimals}d}".rstrip("0")


def fmt_usd6(value: int) -> str:
    return fmt_scaled(value, 6)


def fmt_ticks(ticks: int, tick_size: int) -> str:
    return fmt_scaled(ticks * tick_size, 6)


def fmt_lots(lots: int, lot_size: int) -> str:
    return fmt_scaled(lots * lot_size, 8)


def fmt_ppm(ppm: int) -> str:
    return fmt_scaled(ppm, 6)
