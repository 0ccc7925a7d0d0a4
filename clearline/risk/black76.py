"""Black-76: European options on a forward (or futures) price.

Model: the forward ``F`` for the option's expiry is lognormal with volatility ``vol``; the
premium is paid today and the payoff ``max(F_T - K, 0)`` (call) or ``max(K - F_T, 0)`` (put) at
expiry is discounted at the continuously compounded ``rate``::

    d1 = (ln(F/K) + vol^2 t / 2) / (vol sqrt(t)),   d2 = d1 - vol sqrt(t),   DF = exp(-rate t)
    call = DF (F N(d1) - K N(d2))
    put  = DF (K N(-d2) - F N(-d1))

Units are the caller's: ``forward``, ``strike`` and the returned premium share one price unit
(USD, or instrument ticks: the formula is homogeneous of degree one in (F, K)). ``t_years`` is
in years (ACT/365 in :mod:`clearline.risk.arrays`), ``rate`` and ``vol`` are per year as
decimals (0.05 = 5 %, 0.60 = 60 vol points).

Greek conventions (:func:`greeks`):

- ``delta``: dV/dF, sensitivity to the *forward*, discounted (a call's delta is DF N(d1), not
  N(d1)). For Black-Scholes on spot S with F = S e^{rt}, spot delta = delta * e^{rt}.
- ``gamma``: d2V/dF2, per unit of forward price squared.
- ``vega``: dV/dvol per 1.00 (100 vol points) of volatility; divide by 100 for "per vol point".
- ``theta``: dV/d(calendar time) per *year*, forward and vol held fixed, i.e. ``-dV/dt_years``
  (negative for a long option whenever time decay dominates). Divide by 365 for per day.

Degenerate inputs: when ``t_years == 0`` or ``vol == 0`` the option is worth its discounted
intrinsic value ``DF * max(F - K, 0)`` (call) exactly. Greeks there are the limits as
``vol * sqrt(t) -> 0``: delta is ``DF`` in the money, 0 out of the money and ``DF / 2`` at the
money; gamma is reported as 0 (the true limit at F == K is a Dirac mass, which no caller can
use); vega is ``DF F sqrt(t) / sqrt(2 pi)`` at the money and 0 otherwise; theta is ``rate * V``
(the discounting term; the at-the-money time-decay singularity at t == 0 is dropped).

Everything is vectorised: arguments are scalars or numpy arrays broadcast together;
``is_call`` may be a bool array. All-scalar calls return Python floats. Invalid inputs raise
:class:`~clearline.risk.errors.RiskError`.

Determinism: results are IEEE-754 doubles from numpy/scipy. Recomputing on another platform
agrees to a few ulps, not necessarily bit for bit; that is why the core only ever sees the
integers the operator signed (see :mod:`clearline.risk.arrays`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtr

from .errors import RiskError

__all__ = ["Greeks", "price", "greeks", "implied_vol", "IV_MAX"]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

IV_MAX = 10.0
"""Upper end of the implied-volatility search bracket (1000 vol points)."""


class Greeks(NamedTuple):
    """Black-76 sensitivities; see the module docstring for units and sign conventions."""

    delta: float | np.ndarray
    gamma: float | np.ndarray
    vega: float | np.ndarray
    theta: float | np.ndarray


def _as_float_array(name: str, x) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as e:
        raise RiskError(f"{name} must be a number or an array of numbers (got {x!r})") from e
    if not np.all(np.isfinite(a)):
        raise RiskError(f"{name} must be finite (got {_first(a, ~np.isfinite(a))})")
    return a


def _first(a: np.ndarray, bad: np.ndarray):
    return a[bad].flat[0] if a.ndim else a.item()


def _as_bool_array(x) -> np.ndarray:
    c = np.asarray(x)
    if c.dtype == bool:
        return c
    if c.dtype.kind in "iu" and np.all((c == 0) | (c == 1)):
        return c.astype(bool)
    raise RiskError(f"is_call must be a bool or an array of bools (got {x!r})")


def _prepare(forward, strike, t_years, rate, vol, is_call):
    F = _as_float_array("forward", forward)
    K = _as_float_array("strike", strike)
    T = _as_float_array("t_years", t_years)
    r = _as_float_array("rate", rate)
    v = _as_float_array("vol", vol)
    c = _as_bool_array(is_call)
    for name, a, ok, rule in (("forward", F, F > 0, "> 0"), ("strike", K, K > 0, "> 0"),
                              ("t_years", T, T >= 0, ">= 0"), ("vol", v, v >= 0, ">= 0")):
        if not np.all(ok):
            raise RiskError(f"{name} must be {rule} (got {_first(a, ~ok)})")
    scalar = all(a.ndim == 0 for a in (F, K, T, r, v, c))
    try:
        F, K, T, r, v, c = np.broadcast_arrays(F, K, T, r, v, c)
    except ValueError as e:
        raise RiskError(f"arguments cannot be broadcast together: {e}") from e
    return F, K, T, r, v, c, scalar


def _out(x: np.ndarray, scalar: bool):
    return float(x) if scalar else x


class _Core(NamedTuple):
    df: np.ndarray
    sqrt_t: np.ndarray
    live: np.ndarray  # vol * sqrt(t) > 0: the lognormal formula applies
    d1: np.ndarray
    value: np.ndarray


def _core(F, K, T, r, v, c) -> _Core:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        df = np.exp(-r * T)
        sqrt_t = np.sqrt(T)
        sd = v * sqrt_t
        live = sd > 0
        sd_safe = np.where(live, sd, 1.0)
        d1 = np.where(live, (np.log(F / K) + 0.5 * sd * sd) / sd_safe, 0.0)
        d2 = d1 - sd
        call = df * (F * ndtr(d1) - K * ndtr(d2))
        put = df * (K * ndtr(-d2) - F * ndtr(-d1))
        intrinsic = df * np.where(c, np.maximum(F - K, 0.0), np.maximum(K - F, 0.0))
        # The model value is never below discounted intrinsic; clamp away cancellation noise.
        value = np.where(live, np.maximum(np.where(c, call, put), intrinsic), intrinsic)
    return _Core(df, sqrt_t, live, d1, value)


def price(forward, strike, t_years, rate, vol, is_call):
    """Black-76 premium, in the unit of ``forward``/``strike``. Vectorised; see module doc."""
    F, K, T, r, v, c, scalar = _prepare(forward, strike, t_years, rate, vol, is_call)
    return _out(_core(F, K, T, r, v, c).value, scalar)


_price = price  # for implied_vol, whose argument is named ``price``


def greeks(forward, strike, t_years, rate, vol, is_call) -> Greeks:
    """Delta (w.r.t. the forward, discounted), gamma, vega (per 1.00 vol), theta (per year).

    Vectorised like :func:`price`; degenerate limits (t == 0 or vol == 0) in the module doc.
    """
    F, K, T, r, v, c, scalar = _prepare(forward, strike, t_years, rate, vol, is_call)
    df, sqrt_t, live, d1, value = _core(F, K, T, r, v, c)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        pdf = np.exp(-0.5 * d1 * d1) * _INV_SQRT_2PI
        sd_safe = np.where(live, v * sqrt_t, 1.0)
        t_safe = np.where(live, sqrt_t, 1.0)
        # live branch
        delta_l = np.where(c, df * ndtr(d1), -df * ndtr(-d1))
        gamma_l = df * pdf / (F * sd_safe)
        vega_l = df * F * pdf * sqrt_t
        theta_l = r * value - df * F * pdf * v / (2.0 * t_safe)
        # degenerate branch: limits as vol*sqrt(t) -> 0
        itm = np.where(c, F > K, F < K)
        atm = F == K
        sign = np.where(c, 1.0, -1.0)
        delta_d = sign * df * np.where(itm, 1.0, np.where(atm, 0.5, 0.0))
        vega_d = np.where(atm, df * F * sqrt_t * _INV_SQRT_2PI, 0.0)
        theta_d = r * value
    return Greeks(
        delta=_out(np.where(live, delta_l, delta_d), scalar),
        gamma=_out(np.where(live, gamma_l, 0.0), scalar),
        vega=_out(np.where(live, vega_l, vega_d), scalar),
        theta=_out(np.where(live, theta_l, theta_d), scalar),
    )


def implied_vol(price, forward, strike, t_years, rate, is_call, *, vol_max: float = IV_MAX,
                xtol: float = 1e-12) -> float:
    """The Black-76 volatility that reproduces ``price`` (scalars only), by Brent's method.

    No-arbitrage bounds (DF = exp(-rate t)): a call must satisfy
    ``DF max(F - K, 0) <= price < DF F``, a put ``DF max(K - F, 0) <= price < DF K``. A price at
    the lower bound returns 0.0; a price outside the bounds, ``t_years == 0`` (volatility is then
    undefined) or a price needing more than ``vol_max`` volatility raises ``RiskError``.
    """
    p = _as_float_array("price", price)
    F, K, T, r, _, c, scalar = _prepare(forward, strike, t_years, rate, 0.0, is_call)
    if not scalar or p.ndim:
        raise RiskError("implied_vol takes scalars; loop (or np.vectorize) for a chain")
    p, F, K, T, r, c = float(p), float(F), float(K), float(T), float(r), bool(c)
    if T <= 0.0:
        raise RiskError("implied volatility is undefined at t_years == 0")
    df = math.exp(-r * T)
    lower = df * max(F - K, 0.0) if c else df * max(K - F, 0.0)
    upper = df * F if c else df * K
    kind = "call" if c else "put"
    if p < lower:
        raise RiskError(f"{kind} price {p} is below discounted intrinsic {lower}: no implied vol")
    if p >= upper:
        raise RiskError(f"{kind} price {p} is at or above the no-arbitrage upper bound {upper}")
    if p == lower:
        return 0.0

    def f(vol: float) -> float:
        return _price(F, K, T, r, vol, c) - p

    if f(vol_max) < 0.0:
        raise RiskError(f"{kind} price {p} needs a volatility above vol_max={vol_max}")
    return float(brentq(f, 0.0, vol_max, xtol=xtol, maxiter=500))
