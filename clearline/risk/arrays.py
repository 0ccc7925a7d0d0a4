"""Risk arrays and option marks: the integers the operator signs into a ``MarkUpdate``.

A *risk array* of an instrument is ``N_SCENARIOS`` (16) integers: the P&L, in usd6, of a
**long position of one lot** under each scenario of :mod:`clearline.risk.scenarios`, already
multiplied by the scenario's cover fraction. The core's portfolio margin is then linear
(DESIGN.md rule 5): an account with signed sizes ``q_i`` (lots) loses
``-sum_i q_i * R_i[s]`` in scenario ``s``, and its scan requirement is the worst such loss.

Units
-----
- ``forward`` and option strikes are in the instrument's price *ticks* per whole underlying
  unit (``spec.tick_size`` usd6 each); a forward need not be a whole number of ticks.
- One lot is ``spec.lot_size`` x 1e-8 underlying units, so a price change of ``x`` ticks on one
  lot is worth ``x * spec.tick_value`` usd6 (``tick_value = tick_size * lot_size / 1e8``, which
  the instrument rules require to be a whole number).
- ``t_years``: time to the option's expiry, ACT/365 (:func:`year_fraction`). ``rate``:
  continuously compounded, per year.

Perpetuals
----------
A perp is linear and undiscounted: ``R[s] = floor(F * move_ppm/1e6 * cover_ppm/1e6 * tick_value)``
computed in exact rational arithmetic (``fractions.Fraction`` of the forward), so it is
reproducible bit for bit, in Python or Solidity. Volatility, time and rate are ignored.

Options
-------
Repriced with Black-76 (:mod:`clearline.risk.black76`) at the shocked forward
``F * (1 + move_ppm/1e6)`` and shocked volatility; ``R[s] = floor((V_s - V_0) * tick_value *
cover)`` with ``V_0`` the Black-76 value at the unshocked forward and base vol. The base vol is
read *sticky-strike*: once, from the surface at the option's strike and the current forward
(``surface.implied_vol(K, F, t)``), and the scenario shock is added to that number (the smile
does not move with the forward inside a scenario). Up-shocked vol is ``vol + shock``,
down-shocked ``max(vol - shock, min(vol, VOL_FLOOR))`` (never negative, never above the base).
No time passes within a scenario. Option arithmetic is IEEE double: on another platform a value
sitting within a few ulps of an integer may floor differently (by 1 usd6); the signed integers
are authoritative, and "anyone can recompute" means "to within 1 usd6 per lot and scenario".

Rounding (DESIGN.md rule 1: losses round against the holder)
-----------------------------------------------------------
Each entry is the long's P&L rounded **down** (toward -infinity): a long's loss is overstated
and its gain understated, by less than 1 usd6 per lot.

A short position uses the *same* array negated (that is what ``q_i * R_i[s]`` with ``q_i < 0``
does), so the short's P&L is ``-floor(x) = ceil(-x)``: rounded **up**, i.e. in the short's
favour, by less than 1 usd6 per lot per scenario. Consequences: (1) publishing one array per
instrument keeps margin linear and keeps Σ over long and short P&L exactly zero-sum per
scenario, which two separately rounded arrays would not; (2) a portfolio's scanned loss can
understate the exact loss by strictly less than ``sum(|q_i|)`` usd6 over its short positions
(and overstate it by as much over long ones). If the core wants the requirement strictly
against the account, it can add ``sum_i |q_i|`` usd6 as a rounding add-on (one more linear term).
Magnitudes are bounded: every entry must fit in int64 or ``RiskError`` is raised.

Option marks (:func:`option_mark_ticks`) are the Black-76 premium per whole underlying unit in
ticks, rounded to the **nearest** tick (halves up, ``floor(x + 1/2)``): a mark is a valuation,
not a credit or a requirement, so it is not biased. It is then raised to ``min_ticks`` (default
1 tick), because in the core a mark of 0 means "no mark yet" and would stop the market trading;
a far out-of-the-money option is therefore marked at one tick rather than at zero.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..core.instruments import InstrumentKind, InstrumentSpec, OptionType
from ..core.units import INT64_MAX, PPM, UNDERLYING_ATOMS
from . import black76
from .errors import RiskError
from .scenarios import SCENARIOS, VOL_FLOOR, Scenario, vol_shock
from .svi import SviSlice, VolSurface

__all__ = ["risk_array", "option_mark_ticks", "option_base_vol", "year_fraction", "MS_PER_YEAR"]

MS_PER_YEAR = 365 * 86_400_000
"""ACT/365 year in milliseconds (the core's clock unit)."""


def year_fraction(now_ms: int, expiry_ms: int) -> float:
    """Time to expiry in years (ACT/365) from core milliseconds, 0.0 once expired."""
    if isinstance(now_ms, bool) or isinstance(expiry_ms, bool) or not (
            isinstance(now_ms, int) and isinstance(expiry_ms, int)):
        raise RiskError("now_ms and expiry_ms must be int milliseconds")
    return max(expiry_ms - now_ms, 0) / MS_PER_YEAR


def _tick_value(spec: InstrumentSpec) -> int:
    if spec.tick_size <= 0 or spec.lot_size <= 0:
        raise RiskError(f"{spec.symbol}: tick_size and lot_size must be positive")
    if (spec.tick_size * spec.lot_size) % UNDERLYING_ATOMS:
        raise RiskError(f"{spec.symbol}: tick_size*lot_size must be a multiple of 1e8")
    return spec.tick_value


def _positive_float(name: str, x) -> float:
    if isinstance(x, bool):
        raise RiskError(f"{name} must be a number (got {x!r})")
    try:
        v = float(x)
    except (TypeError, ValueError) as e:
        raise RiskError(f"{name} must be a number (got {x!r})") from e
    if not (math.isfinite(v) and v > 0):
        raise RiskError(f"{name} must be finite and > 0 (got {x!r})")
    return v


def _check_t_rate(t_years, rate) -> tuple[float, float]:
    try:
        t, r = float(t_years), float(rate)
    except (TypeError, ValueError) as e:
        raise RiskError(f"t_years and rate must be numbers (got {t_years!r}, {rate!r})") from e
    if not (math.isfinite(t) and t >= 0):
        raise RiskError(f"t_years must be finite and >= 0 (got {t_years!r})")
    if not math.isfinite(r):
        raise RiskError(f"rate must be finite (got {rate!r})")
    return t, r


def _option_terms(spec: InstrumentSpec) -> tuple[int, bool]:
    if spec.kind != InstrumentKind.OPTION:
        raise RiskError(f"{spec.symbol}: not an option")
    if spec.option_type not in (OptionType.CALL, OptionType.PUT):
        raise RiskError(f"{spec.symbol}: option_type must be CALL or PUT (got {spec.option_type})")
    if spec.strike <= 0:
        raise RiskError(f"{spec.symbol}: strike must be > 0 ticks (got {spec.strike})")
    return spec.strike, spec.option_type == OptionType.CALL


def option_base_vol(spec: InstrumentSpec, forward, surface_or_vol, t_years: float) -> float:
    """The option's unshocked vol: a number is used as is; an :class:`SviSlice` is read at
    ``k = ln(K/F)`` (its own ``t_years`` defines the smile); a :class:`VolSurface` is read at
    ``(K, F, t_years)``."""
    strike, _ = _option_terms(spec)
    F = _positive_float("forward", forward)
    if isinstance(surface_or_vol, VolSurface):
        vol = surface_or_vol.implied_vol(strike, F, t_years)
    elif isinstance(surface_or_vol, SviSlice):
        vol = surface_or_vol.implied_vol(strike, F)
    elif surface_or_vol is None or isinstance(surface_or_vol, bool):
        raise RiskError(f"{spec.symbol}: an option needs a volatility or a surface")
    else:
        try:
            vol = float(surface_or_vol)
        except (TypeError, ValueError) as e:
            raise RiskError(f"surface_or_vol must be a vol, an SviSlice or a VolSurface "
                            f"(got {surface_or_vol!r})") from e
    if not (math.isfinite(vol) and vol >= 0):
        raise RiskError(f"{spec.symbol}: volatility must be finite and >= 0 (got {vol})")
    return float(vol)


def _to_int64(x: float | Fraction, what: str) -> int:
    if isinstance(x, float) and not math.isfinite(x):
        raise RiskError(f"{what}: non-finite value")
    v = math.floor(x)
    if not -INT64_MAX - 1 <= v <= INT64_MAX:
        raise RiskError(f"{what}: {v} does not fit in int64")
    return v


def _perp_array(spec: InstrumentSpec, forward, scenarios: tuple[Scenario, ...]) -> list[int]:
    tv = _tick_value(spec)
    _positive_float("forward", forward)
    F = Fraction(forward)  # exact for int, float and Fraction alike
    return [_to_int64(F * tv * s.move_ppm * s.cover_ppm / (PPM * PPM), f"{spec.symbol}[{s.index}]")
            for s in scenarios]


def _option_array(spec, forward, surface_or_vol, t_years, rate, scenarios) -> list[int]:
    tv = _tick_value(spec)
    strike, is_call = _option_terms(spec)
    t, r = _check_t_rate(t_years, rate)
    F = _positive_float("forward", forward)
    vol0 = option_base_vol(spec, F, surface_or_vol, t)
    shock = vol_shock(t)
    down = max(vol0 - shock, min(vol0, VOL_FLOOR))
    moves = np.array([s.move_ppm for s in scenarios], dtype=float)
    fwd = F * (PPM + moves) / PPM
    vols = np.array([vol0 + shock if s.vol_direction > 0 else down if s.vol_direction < 0 else vol0
                     for s in scenarios])
    v0 = black76.price(F, strike, t, r, vol0, is_call)
    vs = black76.price(fwd, strike, t, r, vols, is_call)
    out = []
    for s, v in zip(scenarios, np.atleast_1d(vs).tolist()):
        pnl = (v - v0) * tv
        if s.cover_ppm != PPM:
            pnl = pnl * s.cover_ppm / PPM
        out.append(_to_int64(pnl, f"{spec.symbol}[{s.index}]"))
    return out


def risk_array(spec: InstrumentSpec, forward, surface_or_vol=None, t_years: float = 0.0, rate: float = 0.0,
               *, scenarios: tuple[Scenario, ...] = SCENARIOS) -> list[int]:
    """P&L in usd6 of a long position of one lot under each scenario, rounded down (module doc).

    ``forward``: current forward in ticks (for a perp, its mark/index). For an option,
    ``surface_or_vol`` is a vol (decimal), an :class:`SviSlice` or a :class:`VolSurface`,
    ``t_years`` its time to expiry and ``rate`` the discount rate; perps ignore all three.
    Returns a list of Python ints, one per scenario, in scenario order.
    """
    if not isinstance(spec, InstrumentSpec):
        raise RiskError(f"spec must be an InstrumentSpec (got {type(spec).__name__})")
    if spec.kind == InstrumentKind.PERPETUAL:
        return _perp_array(spec, forward, scenarios)
    if spec.kind == InstrumentKind.OPTION:
        return _option_array(spec, forward, surface_or_vol, t_years, rate, scenarios)
    raise RiskError(f"{spec.symbol}: unknown instrument kind {spec.kind}")


def option_mark_ticks(spec: InstrumentSpec, forward, surface, t_years: float, rate: float,
                      *, min_ticks: int = 1) -> int:
    """Black-76 premium per whole underlying unit, in ticks, rounded to the nearest tick
    (halves up) and raised to at least ``min_ticks`` (see module doc for why the default is 1).

    ``surface`` may be a vol, an :class:`SviSlice` or a :class:`VolSurface`.
    """
    if not isinstance(spec, InstrumentSpec):
        raise RiskError(f"spec must be an InstrumentSpec (got {type(spec).__name__})")
    strike, is_call = _option_terms(spec)
    t, r = _check_t_rate(t_years, rate)
    F = _positive_float("forward", forward)
    if isinstance(min_ticks, bool) or not isinstance(min_ticks, int) or min_ticks < 0:
        raise RiskError(f"min_ticks must be an int >= 0 (got {min_ticks!r})")
    vol = option_base_vol(spec, F, surface, t)
    value = black76.price(F, strike, t, r, vol, is_call)
    return max(_to_int64(value + 0.5, f"{spec.symbol} mark"), min_ticks)
