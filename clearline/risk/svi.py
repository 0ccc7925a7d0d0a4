"""SVI volatility smiles and a volatility surface built from them.

Raw SVI (Gatheral 2004) gives the *total implied variance* ``w = vol^2 * t`` of one expiry as a
function of log-moneyness ``k = ln(K / F)`` (``F`` the forward of that expiry)::

    w(k) = a + b * (rho * (k - m) + sqrt((k - m)^2 + sigma^2))

Parameter domain (checked when a :class:`SviSlice` is built, ``RiskError`` otherwise):
``b >= 0``, ``|rho| < 1``, ``sigma > 0``, ``t_years > 0`` and ``a + b sigma sqrt(1 - rho^2) >= 0``
(the minimum of ``w`` over ``k``, so variance is never negative).

Butterfly (static) arbitrage: a slice is free of it iff the implied risk-neutral density is
non-negative, i.e. (Gatheral & Jacquier 2014, eq. 2.1) ``g(k) >= 0`` with::

    g(k) = (1 - k w'/(2w))^2 - (w'^2 / 4) (1/w + 1/4) + w''/2

:meth:`SviSlice.butterfly_violations` evaluates ``g`` on a grid of ``k``; a point with ``w <= 0``
also counts as a violation (the density is undefined there).

:class:`VolSurface` holds one slice per expiry and interpolates *total variance* at fixed ``k``,
linearly in ``t`` between expiries (this keeps the surface free of calendar arbitrage when the
slices are). Outside the listed expiries it extrapolates *flat in implied volatility*: before
the first expiry ``w(k, t) = w_1(k) t / t_1``, after the last ``w(k, t) = w_N(k) t / t_N``, so the
vol at a given ``k`` is the nearest slice's (total variance itself is *not* held flat, which
would make short-dated vols explode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from .errors import RiskError

__all__ = ["SviSlice", "VolSurface", "calibrate", "DEFAULT_K_GRID"]

DEFAULT_K_GRID = np.linspace(-3.0, 3.0, 1201)
"""Log-moneyness grid for the butterfly and calendar checks (K/F from 0.05 to 20)."""


def _finite(name: str, x) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError) as e:
        raise RiskError(f"SVI {name} must be a number (got {x!r})") from e
    if not math.isfinite(v):
        raise RiskError(f"SVI {name} must be finite (got {v})")
    return v


@dataclass(frozen=True)
class SviSlice:
    """One expiry's raw-SVI smile. ``t_years`` is the expiry's time to maturity (years)."""

    a: float
    b: float
    rho: float
    m: float
    sigma: float
    t_years: float

    def __post_init__(self) -> None:
        for name in ("a", "b", "rho", "m", "sigma", "t_years"):
            object.__setattr__(self, name, _finite(name, getattr(self, name)))
        if self.b < 0:
            raise RiskError(f"SVI b must be >= 0 (got {self.b})")
        if not -1.0 < self.rho < 1.0:
            raise RiskError(f"SVI rho must satisfy |rho| < 1 (got {self.rho})")
        if self.sigma <= 0:
            raise RiskError(f"SVI sigma must be > 0 (got {self.sigma})")
        if self.t_years <= 0:
            raise RiskError(f"SVI t_years must be > 0 (got {self.t_years})")
        if self.min_total_variance < 0:
            raise RiskError("SVI needs a + b*sigma*sqrt(1-rho^2) >= 0 (minimum total variance "
                            f"{self.min_total_variance} < 0)")

    @property
    def min_total_variance(self) -> float:
        """``min_k w(k) = a + b sigma sqrt(1 - rho^2)``."""
        return self.a + self.b * self.sigma * math.sqrt(1.0 - self.rho * self.rho)

    def total_variance(self, k):
        """``w(k)`` at log-moneyness ``k`` (scalar or array)."""
        k = np.asarray(k, dtype=float)
        x = k - self.m
        w = self.a + self.b * (self.rho * x + np.sqrt(x * x + self.sigma * self.sigma))
        return float(w) if w.ndim == 0 else w

    def implied_vol(self, strike, forward):
        """Black implied volatility ``sqrt(w(ln(K/F)) / t)`` (scalars or arrays, K, F > 0)."""
        K = np.asarray(strike, dtype=float)
        F = np.asarray(forward, dtype=float)
        if np.any(~(K > 0)) or np.any(~(F > 0)):
            raise RiskError("strike and forward must be > 0 and finite")
        w = np.maximum(np.asarray(self.total_variance(np.log(K / F))), 0.0)
        vol = np.sqrt(w / self.t_years)
        return float(vol) if vol.ndim == 0 else vol

    def g(self, k):
        """Gatheral's density function ``g(k)``; the slice is butterfly-free iff ``g >= 0``."""
        k = np.asarray(k, dtype=float)
        x = k - self.m
        root = np.sqrt(x * x + self.sigma * self.sigma)
        w = self.a + self.b * (self.rho * x + root)
        w1 = self.b * (self.rho + x / root)
        w2 = self.b * self.sigma * self.sigma / root**3
        with np.errstate(divide="ignore", invalid="ignore"):
            g = (1.0 - k * w1 / (2.0 * w)) ** 2 - (w1 * w1 / 4.0) * (1.0 / w + 0.25) + w2 / 2.0
        g = np.where(w > 0, g, -np.inf)
        return float(g) if g.ndim == 0 else g

    def butterfly_violations(self, k_grid=None, tol: float = 0.0) -> np.ndarray:
        """The grid points ``k`` where ``g(k) < -tol`` (empty array: no butterfly arbitrage seen)."""
        k = DEFAULT_K_GRID if k_grid is None else np.asarray(k_grid, dtype=float)
        return k[np.asarray(self.g(k)) < -tol]

    def is_butterfly_free(self, k_grid=None, tol: float = 0.0) -> bool:
        return self.butterfly_violations(k_grid, tol).size == 0

    def check_butterfly(self, k_grid=None, tol: float = 0.0) -> None:
        """Raise ``RiskError`` if ``g(k) < -tol`` anywhere on the grid."""
        bad = self.butterfly_violations(k_grid, tol)
        if bad.size:
            raise RiskError(f"SVI slice (t={self.t_years}) has butterfly arbitrage: g(k) < 0 for "
                            f"{bad.size} grid points in k = [{bad.min():.4g}, {bad.max():.4g}]")


def calibrate(strikes, forward, t_years, vols, *, weights=None, check_butterfly: bool = False) -> SviSlice:
    """Fit a raw-SVI slice to market implied vols of one expiry (bounded least squares).

    Residuals are in total variance, ``w_svi(k_i) - vol_i^2 t`` (times ``weights`` if given).
    To keep the fit inside the parameter domain with box bounds only, the optimiser works on
    ``(v, b, rho, m, sigma)`` with ``v = a + b sigma sqrt(1-rho^2) >= 0`` the minimum variance.
    Bounds: ``0 <= b <= 10``, ``|rho| <= 0.999``, ``m`` within twice the data's k-range,
    ``1e-4 <= sigma <= 10``. Several starting points are tried and the lowest cost wins.
    Needs at least 5 strikes. With ``check_butterfly`` the result must also be butterfly-free.
    """
    K = np.asarray(strikes, dtype=float)
    vol = np.asarray(vols, dtype=float)
    F = _finite("forward", forward)
    t = _finite("t_years", t_years)
    if K.ndim != 1 or vol.shape != K.shape:
        raise RiskError("strikes and vols must be 1-d arrays of the same length")
    if K.size < 5:
        raise RiskError(f"SVI calibration needs at least 5 strikes (got {K.size})")
    if F <= 0 or t <= 0:
        raise RiskError("forward and t_years must be > 0")
    if not (np.all(np.isfinite(K)) and np.all(K > 0) and np.all(np.isfinite(vol)) and np.all(vol > 0)):
        raise RiskError("strikes and vols must be finite and > 0")
    wts = np.ones_like(K) if weights is None else np.asarray(weights, dtype=float)
    if wts.shape != K.shape or not np.all(np.isfinite(wts)) or np.any(wts < 0):
        raise RiskError("weights must be finite, >= 0 and the same length as strikes")

    k = np.log(K / F)
    w_mkt = vol * vol * t
    span = max(float(k.max() - k.min()), 1e-3)
    lo = np.array([0.0, 0.0, -0.999, float(k.min()) - span, 1e-4])
    hi = np.array([max(float(w_mkt.max()), 1e-8) * 2.0, 10.0, 0.999, float(k.max()) + span, 10.0])

    def to_slice(p) -> SviSlice:
        v, b, rho, m, sigma = (float(x) for x in p)
        a = v - b * sigma * math.sqrt(1.0 - rho * rho)
        return SviSlice(a, b, rho, m, sigma, t)

    def resid(p):
        v, b, rho, m, sigma = p
        x = k - m
        a = v - b * sigma * np.sqrt(1.0 - rho * rho)
        return wts * (a + b * (rho * x + np.sqrt(x * x + sigma * sigma)) - w_mkt)

    k_atm = float(k[np.argmin(np.abs(k))])
    best = None
    for rho0 in (-0.5, 0.0, 0.5):
        for sigma0 in (0.05, 0.3):
            x0 = np.clip([float(w_mkt.min()) * 0.9, 0.1, rho0, k_atm, sigma0], lo, hi)
            try:
                res = least_squares(resid, x0, bounds=(lo, hi), method="trf",
                                    x_scale="jac", xtol=1e-14, ftol=1e-14, gtol=1e-14, max_nfev=4000)
            except ValueError as e:  # pragma: no cover - scipy rejects the problem
                raise RiskError(f"SVI calibration failed: {e}") from e
            if best is None or res.cost < best.cost:
                best = res
    if best is None or not np.all(np.isfinite(best.x)):
        raise RiskError("SVI calibration did not converge")
    out = to_slice(best.x)
    if check_butterfly:
        out.check_butterfly()
    return out


class VolSurface:
    """SVI slices keyed by time to expiry, interpolated in total variance (see module doc)."""

    __slots__ = ("_slices", "_ts")

    def __init__(self, slices):
        items = list(slices.values()) if isinstance(slices, dict) else list(slices)
        if not items:
            raise RiskError("a VolSurface needs at least one slice")
        if not all(isinstance(s, SviSlice) for s in items):
            raise RiskError("VolSurface slices must be SviSlice instances")
        items.sort(key=lambda s: s.t_years)
        ts = [s.t_years for s in items]
        if len(set(ts)) != len(ts):
            raise RiskError("VolSurface slices must have distinct t_years")
        self._slices: tuple[SviSlice, ...] = tuple(items)
        self._ts: tuple[float, ...] = tuple(ts)

    @property
    def slices(self) -> tuple[SviSlice, ...]:
        return self._slices

    @property
    def expiries(self) -> tuple[float, ...]:
        return self._ts

    def total_variance(self, k, t_years: float):
        """``w(k, t)``: linear in ``t`` between slices at fixed ``k``, flat vol outside."""
        t = _finite("t_years", t_years)
        if t < 0:
            raise RiskError(f"t_years must be >= 0 (got {t})")
        s, ts = self._slices, self._ts
        if t <= ts[0]:
            return s[0].total_variance(k) * (t / ts[0])
        if t >= ts[-1]:
            return s[-1].total_variance(k) * (t / ts[-1])
        i = int(np.searchsorted(ts, t, side="right")) - 1
        t0, t1 = ts[i], ts[i + 1]
        lam = (t - t0) / (t1 - t0)
        return s[i].total_variance(k) * (1.0 - lam) + s[i + 1].total_variance(k) * lam

    def implied_vol(self, strike, forward, t_years: float):
        """Implied vol at strike ``K`` for the forward ``F`` of time ``t_years``.

        At ``t_years == 0`` this is the first slice's vol at ``k`` (the flat-vol limit).
        """
        K = np.asarray(strike, dtype=float)
        F = np.asarray(forward, dtype=float)
        if np.any(~(K > 0)) or np.any(~(F > 0)):
            raise RiskError("strike and forward must be > 0 and finite")
        t = _finite("t_years", t_years)
        k = np.log(K / F)
        if t == 0.0:
            w, tt = np.asarray(self._slices[0].total_variance(k)), self._ts[0]
        else:
            w, tt = np.asarray(self.total_variance(k, t)), t
        vol = np.sqrt(np.maximum(w, 0.0) / tt)
        return float(vol) if vol.ndim == 0 else vol

    def calendar_violations(self, k_grid=None, tol: float = 0.0) -> list[tuple[float, float]]:
        """Pairs (t_i, t_{i+1}) of adjacent slices where ``w_{i+1}(k) < w_i(k) - tol`` somewhere."""
        k = DEFAULT_K_GRID if k_grid is None else np.asarray(k_grid, dtype=float)
        out = []
        for a, b in zip(self._slices, self._slices[1:]):
            if np.any(np.asarray(b.total_variance(k)) < np.asarray(a.total_variance(k)) - tol):
                out.append((a.t_years, b.t_years))
        return out
