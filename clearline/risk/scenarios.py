"""The fixed scenario set behind every risk array (SPAN-style, 16 scenarios).

Every constant that defines the scenarios lives in this module. Changing any of them changes
every published risk array, and so every portfolio-margin requirement: treat it as a
protocol change (bump :data:`SCENARIO_SET_VERSION`).

The set, in this exact order (index: move of the underlying forward, volatility shock,
fraction of the P&L counted)::

     0: unchanged      vol up     100%        1: unchanged      vol down   100%
     2: up   1/3 range vol up     100%        3: up   1/3 range vol down 100%
     4: down 1/3 range vol up     100%        5: down 1/3 range vol down 100%
     6: up   2/3 range vol up     100%        7: up   2/3 range vol down 100%
     8: down 2/3 range vol up     100%        9: down 2/3 range vol down 100%
    10: up   3/3 range vol up     100%       11: up   3/3 range vol down 100%
    12: down 3/3 range vol up     100%       13: down 3/3 range vol down 100%
    14: up   2x range  vol flat    35%       15: down 2x range  vol flat    35%

With the default range of 15 %, the moves are 0, +-5 %, +-10 %, +-15 % and the extremes +-30 %
(counted at 35 %, i.e. like a 10.5 % move for a linear product, but capturing the convexity of
far out-of-the-money short options).

Moves are integers in ppm of the current forward, so a perpetual's array is exact integer
arithmetic (see :mod:`clearline.risk.arrays`). The volatility shock is *absolute* (vol points)
and scaled with time to expiry, because short-dated implied vols move more::

    shock(t) = min(VOL_SHOCK_CAP, VOL_SHOCK_BASE * sqrt(VOL_SHOCK_REF_DAYS / max(t_days, VOL_SHOCK_MIN_DAYS)))

so 10 vol points at 30 days, ~20.7 at 1 week, capped at 40 for expiries under ~1.9 days, ~2.9
at one year. A shocked-down vol never goes below :data:`VOL_FLOOR`. Scenarios do not advance
time (no theta within a scenario) and do not move the interest rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.units import PPM
from .errors import RiskError

__all__ = [
    "Scenario", "SCENARIOS", "N_SCENARIOS", "SCENARIO_SET_VERSION", "PRICE_SCAN_RANGE_PPM",
    "EXTREME_MULTIPLE", "EXTREME_COVER_PPM", "VOL_SHOCK_BASE", "VOL_SHOCK_REF_DAYS",
    "VOL_SHOCK_MIN_DAYS", "VOL_SHOCK_CAP", "VOL_FLOOR", "DAYS_PER_YEAR", "vol_shock",
]

SCENARIO_SET_VERSION = 1
"""Bump whenever anything below changes: arrays from different versions are not comparable."""

PRICE_SCAN_RANGE_PPM = 150_000
"""Price scan range: the largest "ordinary" move of the forward, 15 % (in ppm of the forward).
Must be divisible by 3 so the 1/3 and 2/3 moves are whole ppm."""

EXTREME_MULTIPLE = 2
"""Extreme scenarios move the forward by this multiple of the scan range (+-30 %)."""

EXTREME_COVER_PPM = 350_000
"""Fraction of an extreme scenario's P&L that counts (35 %): extremes are unlikely, so only
part of their loss is covered, but enough to make naked far-OTM short options pay."""

VOL_SHOCK_BASE = 0.10
"""Absolute volatility shock (10 vol points) for a 30-day option."""

VOL_SHOCK_REF_DAYS = 30.0
"""The time to expiry (days) at which the shock equals :data:`VOL_SHOCK_BASE`."""

VOL_SHOCK_MIN_DAYS = 1.0
"""Times to expiry below one day scale the shock as if exactly one day remained."""

VOL_SHOCK_CAP = 0.40
"""Upper bound of the volatility shock (40 vol points)."""

VOL_FLOOR = 0.01
"""A shocked-down volatility is floored at 1 vol point (Black-76 needs vol >= 0)."""

DAYS_PER_YEAR = 365.0
"""ACT/365: ``t_years = milliseconds / (365 * 86_400_000)``."""

@dataclass(frozen=True, slots=True)
class Scenario:
    """One scenario: forward moves to ``F * (1 + move_ppm / 1e6)``, vol moves by
    ``vol_direction * vol_shock(t)`` and ``cover_ppm / 1e6`` of the resulting P&L counts."""

    index: int
    move_ppm: int
    vol_direction: int  # +1 up, -1 down, 0 unchanged
    cover_ppm: int
    label: str


def _build() -> tuple[Scenario, ...]:
    if PRICE_SCAN_RANGE_PPM % 3:
        raise RuntimeError("PRICE_SCAN_RANGE_PPM must be divisible by 3")
    out: list[Scenario] = []
    third = PRICE_SCAN_RANGE_PPM // 3

    def add(move: int, vol_dir: int, cover: int, label: str) -> None:
        out.append(Scenario(len(out), move, vol_dir, cover, label))

    for n in (0, 1, 2, 3):
        for sign in ((1,) if n == 0 else (1, -1)):
            move = sign * n * third
            where = "unchanged" if n == 0 else f"{'up' if sign > 0 else 'down'} {n}/3"
            add(move, +1, PPM, f"{where}, vol up")
            add(move, -1, PPM, f"{where}, vol down")
    extreme = EXTREME_MULTIPLE * PRICE_SCAN_RANGE_PPM
    add(+extreme, 0, EXTREME_COVER_PPM, f"up {EXTREME_MULTIPLE}x range, {EXTREME_COVER_PPM // 10_000}% cover")
    add(-extreme, 0, EXTREME_COVER_PPM, f"down {EXTREME_MULTIPLE}x range, {EXTREME_COVER_PPM // 10_000}% cover")
    return tuple(out)


SCENARIOS: tuple[Scenario, ...] = _build()
"""The 16 scenarios, in array order (see the module docstring)."""

N_SCENARIOS = len(SCENARIOS)


def vol_shock(t_years: float) -> float:
    """Absolute vol shock (decimal) for an option with ``t_years`` to expiry; see module doc."""
    t = float(t_years)
    if not (math.isfinite(t) and t >= 0):
        raise RiskError(f"t_years must be finite and >= 0 (got {t_years!r})")
    days = max(t * DAYS_PER_YEAR, VOL_SHOCK_MIN_DAYS)
    return min(VOL_SHOCK_CAP, VOL_SHOCK_BASE * math.sqrt(VOL_SHOCK_REF_DAYS / days))
