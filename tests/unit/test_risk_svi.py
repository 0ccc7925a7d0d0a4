"""SVI slices (validation, formula, butterfly check, calibration) and the vol surface."""

import math

import numpy as np
import pytest

from clearline.risk import RiskError, SviSlice, VolSurface, calibrate
from clearline.risk.svi import DEFAULT_K_GRID

# Round numbers chosen so (k - m, sigma) form 3-4-5 triangles: sqrt(0.15^2 + 0.2^2) = 0.25.
S = dict(a=0.04, b=0.4, rho=-0.4, m=0.1, sigma=0.2, t_years=0.5)


def test_total_variance_at_hand_computed_points():
    s = SviSlice(**S)
    assert s.total_variance(0.1) == pytest.approx(0.04 + 0.4 * 0.2)  # k = m: a + b sigma
    assert s.total_variance(0.25) == pytest.approx(0.04 + 0.4 * (-0.4 * 0.15 + 0.25))  # 0.116
    assert s.total_variance(-0.05) == pytest.approx(0.04 + 0.4 * (0.4 * 0.15 + 0.25))  # 0.164
    assert s.total_variance(0.25) == pytest.approx(0.116)
    assert s.total_variance(-0.05) == pytest.approx(0.164)
    np.testing.assert_allclose(s.total_variance(np.array([0.1, 0.25, -0.05])), [0.12, 0.116, 0.164])
    assert s.min_total_variance == pytest.approx(0.04 + 0.4 * 0.2 * math.sqrt(1 - 0.16))
    # the minimum really is the minimum
    assert np.min(s.total_variance(np.linspace(-2, 2, 40001))) == pytest.approx(s.min_total_variance, abs=1e-9)


def test_implied_vol_from_strike_and_forward():
    s = SviSlice(**S)
    F = 3000.0
    K = F * math.exp(0.25)
    assert s.implied_vol(K, F) == pytest.approx(math.sqrt(0.116 / 0.5))
    np.testing.assert_allclose(s.implied_vol(np.array([F * math.exp(0.1), K]), F),
                               [math.sqrt(0.12 / 0.5), math.sqrt(0.116 / 0.5)])
    with pytest.raises(RiskError):
        s.implied_vol(-1.0, F)


@pytest.mark.parametrize("change, match", [
    (dict(b=-0.1), "b must be >= 0"),
    (dict(rho=1.0), r"\|rho\| < 1"),
    (dict(rho=-1.2), r"\|rho\| < 1"),
    (dict(sigma=0.0), "sigma must be > 0"),
    (dict(t_years=0.0), "t_years must be > 0"),
    (dict(a=-0.2), "minimum total variance"),
    (dict(a=float("nan")), "a must be finite"),
    (dict(m="x"), "m must be a number"),
])
def test_parameter_validation(change, match):
    with pytest.raises(RiskError, match=match):
        SviSlice(**{**S, **change})


def test_slice_is_frozen():
    s = SviSlice(**S)
    with pytest.raises(AttributeError):
        s.a = 0.0  # type: ignore[misc]


def test_boundary_of_the_domain_is_allowed():
    # a = -b sigma sqrt(1-rho^2): minimum variance exactly zero
    a = -0.4 * 0.2 * math.sqrt(1 - 0.16)
    s = SviSlice(**{**S, "a": a + 1e-15})
    assert s.min_total_variance == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------------ butterfly arbitrage
def test_butterfly_check_flags_the_gatheral_jacquier_counterexample():
    # Gatheral & Jacquier (2014), "Arbitrage-free SVI volatility surfaces", Example 3.1
    # (parameters due to Axel Vogt): passes the parameter checks yet has g(k) < 0 near k ~ 0.7.
    bad = SviSlice(a=-0.0410, b=0.1331, rho=0.3060, m=0.3586, sigma=0.4153, t_years=1.0)
    v = bad.butterfly_violations()
    assert v.size > 0
    assert 0.5 < float(np.median(v)) < 1.0
    assert float(np.min(bad.g(DEFAULT_K_GRID))) < -1e-3
    assert not bad.is_butterfly_free()
    with pytest.raises(RiskError, match="butterfly arbitrage"):
        bad.check_butterfly()


def test_reasonable_slice_is_butterfly_free():
    s = SviSlice(**S)
    assert s.is_butterfly_free()
    s.check_butterfly()
    assert np.all(s.g(DEFAULT_K_GRID) > 0)


def test_g_matches_finite_differences_of_w():
    s = SviSlice(**S)
    k, h = 0.3, 1e-4
    w = s.total_variance(k)
    w1 = (s.total_variance(k + h) - s.total_variance(k - h)) / (2 * h)
    w2 = (s.total_variance(k + h) - 2 * w + s.total_variance(k - h)) / h**2
    g = (1 - k * w1 / (2 * w)) ** 2 - w1**2 / 4 * (1 / w + 0.25) + w2 / 2
    assert s.g(k) == pytest.approx(g, rel=1e-6)


# ------------------------------------------------------------------ calibration
def test_calibration_recovers_known_parameters():
    true = SviSlice(a=0.02, b=0.15, rho=-0.35, m=0.05, sigma=0.25, t_years=0.5)
    F = 60_000.0
    K = F * np.exp(np.linspace(-0.8, 0.8, 21))
    vols = true.implied_vol(K, F)
    fit = calibrate(K, F, 0.5, vols)
    for name in ("a", "b", "rho", "m", "sigma"):
        assert getattr(fit, name) == pytest.approx(getattr(true, name), abs=1e-6), name
    assert fit.t_years == 0.5
    np.testing.assert_allclose(fit.implied_vol(K, F), vols, atol=1e-9)


def test_calibration_fits_noisy_data_closely():
    true = SviSlice(a=0.05, b=0.2, rho=0.1, m=-0.05, sigma=0.15, t_years=0.1)
    F = 3000.0
    K = F * np.exp(np.linspace(-0.5, 0.4, 15))
    rng = np.random.default_rng(3)
    vols = true.implied_vol(K, F) + rng.normal(0, 0.002, K.size)
    fit = calibrate(K, F, 0.1, vols, check_butterfly=True)
    assert np.max(np.abs(fit.implied_vol(K, F) - vols)) < 0.01


@pytest.mark.parametrize("kwargs, match", [
    (dict(strikes=[1, 2, 3, 4], vols=[0.5] * 4), "at least 5"),
    (dict(strikes=[1, 2, 3, 4, 5], vols=[0.5] * 4), "same length"),
    (dict(strikes=[1, 2, 3, 4, 5], vols=[0.5, 0.5, -0.5, 0.5, 0.5]), "finite and > 0"),
    (dict(strikes=[1, 2, 3, 4, 5], vols=[0.5] * 5, forward=-3.0), "must be > 0"),
    (dict(strikes=[1, 2, 3, 4, 5], vols=[0.5] * 5, weights=[1, 1]), "weights"),
])
def test_calibration_input_errors(kwargs, match):
    args = dict(forward=3.0, t_years=0.5) | kwargs
    with pytest.raises(RiskError, match=match):
        calibrate(args.pop("strikes"), args.pop("forward"), args.pop("t_years"), args.pop("vols"), **args)


# ------------------------------------------------------------------ surface
def _surface() -> tuple[VolSurface, SviSlice, SviSlice]:
    s1 = SviSlice(a=0.01, b=0.1, rho=-0.3, m=0.0, sigma=0.2, t_years=0.1)
    s2 = SviSlice(a=0.04, b=0.2, rho=-0.3, m=0.0, sigma=0.3, t_years=0.5)
    return VolSurface([s2, s1]), s1, s2


def test_surface_interpolates_total_variance_linearly_in_t():
    surf, s1, s2 = _surface()
    assert surf.expiries == (0.1, 0.5)
    k = np.array([-0.3, 0.0, 0.2])
    np.testing.assert_allclose(surf.total_variance(k, 0.1), s1.total_variance(k))
    np.testing.assert_allclose(surf.total_variance(k, 0.5), s2.total_variance(k))
    np.testing.assert_allclose(surf.total_variance(k, 0.3), 0.5 * (s1.total_variance(k) + s2.total_variance(k)))
    np.testing.assert_allclose(surf.total_variance(k, 0.2),
                               0.75 * s1.total_variance(k) + 0.25 * s2.total_variance(k))
    F, K = 100.0, 100.0 * math.exp(0.2)
    assert surf.implied_vol(K, F, 0.3) == pytest.approx(
        math.sqrt(0.5 * (s1.total_variance(0.2) + s2.total_variance(0.2)) / 0.3))


def test_surface_extrapolates_flat_in_vol():
    surf, s1, s2 = _surface()
    F, K = 100.0, 90.0
    assert surf.implied_vol(K, F, 0.01) == pytest.approx(s1.implied_vol(K, F))
    assert surf.implied_vol(K, F, 0.0) == pytest.approx(s1.implied_vol(K, F))
    assert surf.implied_vol(K, F, 3.0) == pytest.approx(s2.implied_vol(K, F))
    assert surf.total_variance(0.0, 1.0) == pytest.approx(2.0 * s2.total_variance(0.0))


def test_surface_calendar_check_and_errors():
    surf, s1, s2 = _surface()
    assert surf.calendar_violations() == []
    inverted = VolSurface({0.1: SviSlice(a=0.05, b=0.1, rho=0.0, m=0.0, sigma=0.2, t_years=0.1),
                           0.5: SviSlice(a=0.01, b=0.1, rho=0.0, m=0.0, sigma=0.2, t_years=0.5)})
    assert inverted.calendar_violations() == [(0.1, 0.5)]
    with pytest.raises(RiskError, match="at least one"):
        VolSurface([])
    with pytest.raises(RiskError, match="distinct"):
        VolSurface([s1, s1])
    with pytest.raises(RiskError, match="SviSlice"):
        VolSurface([0.3])
    with pytest.raises(RiskError, match="t_years must be >= 0"):
        surf.total_variance(0.0, -1.0)
