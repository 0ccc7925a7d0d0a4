"""Black-76 against published textbook values, parity, edge cases and typed errors."""

import math

import numpy as np
import pytest

from clearline.risk import RiskError, black76
from clearline.risk.black76 import Greeks, greeks, implied_vol, price


# ------------------------------------------------------------------ published vectors
def test_hull_black_scholes_via_forward():
    # Hull, Options Futures and Other Derivatives, Example 15.6 (Black-Scholes):
    # S=42, K=40, T=0.5, r=10%, sigma=20% -> c = 4.76 (4.7594), p = 0.81 (0.8086).
    S, K, T, r, v = 42.0, 40.0, 0.5, 0.10, 0.20
    F = S * math.exp(r * T)
    assert price(F, K, T, r, v, True) == pytest.approx(4.7594, abs=5e-5)
    assert price(F, K, T, r, v, False) == pytest.approx(0.8086, abs=5e-5)


def test_hull_black76_futures_put():
    # Hull, Example 18.x (Black's model): F=20, K=20, r=9%, T=4 months, sigma=25% -> put 1.12.
    assert price(20.0, 20.0, 4 / 12, 0.09, 0.25, False) == pytest.approx(1.12, abs=5e-3)
    assert price(20.0, 20.0, 4 / 12, 0.09, 0.25, False) == pytest.approx(1.1166, abs=1e-4)


def test_haug_black76_example():
    # Haug, The Complete Guide to Option Pricing Formulas, Black-76: F=K=19, T=0.75,
    # r=10%, sigma=28% -> call = put = 1.7011.
    c, p = price(19.0, 19.0, 0.75, 0.10, 0.28, np.array([True, False]))
    assert c == pytest.approx(1.7011, abs=1e-4)
    assert p == pytest.approx(1.7011, abs=1e-4)


def test_hull_greeks_after_conversion_to_spot():
    # Hull, Chapter 19 running example: S=49, K=50, r=5%, sigma=20%, T=20 weeks:
    # delta 0.522, gamma 0.066, vega 12.1 (per 1.00 vol), theta -4.31 per year.
    S, K, r, v, T = 49.0, 50.0, 0.05, 0.20, 20 / 52
    growth = math.exp(r * T)
    F = S * growth
    g = greeks(F, K, T, r, v, True)
    assert isinstance(g, Greeks)
    assert g.delta * growth == pytest.approx(0.522, abs=5e-4)  # dF/dS = e^{rT}
    assert g.gamma * growth**2 == pytest.approx(0.066, abs=5e-4)
    assert g.vega == pytest.approx(12.1, abs=0.05)  # vega at fixed S equals vega at fixed F
    # Black-Scholes theta holds S fixed, ours holds F fixed: dF/dt|S = -r F.
    assert g.theta - r * F * g.delta == pytest.approx(-4.31, abs=5e-3)


def test_put_call_parity_on_a_chain():
    F, r, T = 100.0, 0.03, 0.7
    K = np.linspace(50, 150, 41)
    c = price(F, K, T, r, 0.45, True)
    p = price(F, K, T, r, 0.45, False)
    np.testing.assert_allclose(c - p, math.exp(-r * T) * (F - K), atol=1e-11)


def test_delta_parity_and_shared_greeks():
    gc = greeks(100.0, 90.0, 0.5, 0.02, 0.3, True)
    gp = greeks(100.0, 90.0, 0.5, 0.02, 0.3, False)
    assert gc.delta - gp.delta == pytest.approx(math.exp(-0.02 * 0.5))
    assert gc.gamma == pytest.approx(gp.gamma)
    assert gc.vega == pytest.approx(gp.vega)
    # theta differs exactly by the parity term: -d/dT of DF (F - K) = r DF (F - K)
    assert gc.theta - gp.theta == pytest.approx(0.02 * math.exp(-0.01) * 10.0)


# ------------------------------------------------------------------ vectorisation
def test_broadcasting_and_scalar_return_types():
    assert isinstance(price(100, 100, 1, 0, 0.2, True), float)
    out = price(np.array([[90.0], [110.0]]), np.array([95.0, 100.0, 105.0]), 1.0, 0.0, 0.2, True)
    assert out.shape == (2, 3)
    assert out[1, 0] > out[0, 0] and out[0, 0] > out[0, 2]
    mixed = price(100.0, 100.0, 1.0, 0.0, 0.2, np.array([True, False, 1, 0]))
    assert mixed.shape == (4,)
    assert mixed[0] == pytest.approx(mixed[1])  # ATM forward: call == put
    g = greeks(100.0, [90.0, 110.0], 1.0, 0.0, 0.2, [True, False])
    assert g.delta.shape == (2,) and g.delta[0] > 0 > g.delta[1]


def test_vectorised_equals_scalar_loop():
    rng = np.random.default_rng(7)
    F = rng.uniform(50, 150, 200)
    K = rng.uniform(50, 150, 200)
    T = rng.uniform(0.01, 2, 200)
    v = rng.uniform(0.05, 1.5, 200)
    c = rng.integers(0, 2, 200).astype(bool)
    vec = price(F, K, T, 0.04, v, c)
    loop = [price(*args, 0.04, vv, cc) for args, vv, cc in zip(zip(F, K, T), v, c)]
    np.testing.assert_array_equal(vec, np.array(loop))


# ------------------------------------------------------------------ edge cases
def test_zero_time_is_intrinsic_undiscounted():
    assert price(120.0, 100.0, 0.0, 0.05, 0.5, True) == 20.0
    assert price(120.0, 100.0, 0.0, 0.05, 0.5, False) == 0.0
    assert price(80.0, 100.0, 0.0, 0.05, 0.5, False) == 20.0


def test_zero_vol_is_discounted_intrinsic():
    df = math.exp(-0.05 * 2.0)
    assert price(120.0, 100.0, 2.0, 0.05, 0.0, True) == pytest.approx(20.0 * df, rel=1e-15)
    assert price(120.0, 100.0, 2.0, 0.05, 0.0, False) == 0.0


def test_degenerate_greeks_are_the_documented_limits():
    df = math.exp(-0.05)
    g = greeks(np.array([120.0, 100.0, 80.0]), 100.0, 1.0, 0.05, 0.0, True)
    np.testing.assert_allclose(g.delta, [df, df / 2, 0.0])
    np.testing.assert_array_equal(g.gamma, [0.0, 0.0, 0.0])
    np.testing.assert_allclose(g.vega, [0.0, df * 100.0 / math.sqrt(2 * math.pi), 0.0])
    np.testing.assert_allclose(g.theta, [0.05 * 20.0 * df, 0.0, 0.0])
    gp = greeks(80.0, 100.0, 0.0, 0.05, 0.3, False)
    assert (gp.delta, gp.gamma, gp.vega, gp.theta) == (-1.0, 0.0, 0.0, 0.05 * 20.0)
    # the limit is continuous: a tiny vol is close to vol == 0
    assert greeks(120.0, 100.0, 1.0, 0.05, 1e-6, True).delta == pytest.approx(df)


@pytest.mark.parametrize("args, match", [
    ((-1.0, 100.0, 1.0, 0.0, 0.2, True), "forward must be > 0"),
    ((0.0, 100.0, 1.0, 0.0, 0.2, True), "forward must be > 0"),
    ((100.0, -5.0, 1.0, 0.0, 0.2, True), "strike must be > 0"),
    ((100.0, 100.0, -0.1, 0.0, 0.2, True), "t_years must be >= 0"),
    ((100.0, 100.0, 1.0, 0.0, -0.2, True), "vol must be >= 0"),
    ((100.0, 100.0, 1.0, float("nan"), 0.2, True), "rate must be finite"),
    ((100.0, float("inf"), 1.0, 0.0, 0.2, True), "strike must be finite"),
    ((np.array([100.0, -1.0]), 100.0, 1.0, 0.0, 0.2, True), r"forward must be > 0 \(got -1.0\)"),
    (([1.0, 2.0], [1.0, 2.0, 3.0], 1.0, 0.0, 0.2, True), "broadcast"),
    ((100.0, 100.0, 1.0, 0.0, 0.2, "call"), "is_call"),
    ((100.0, 100.0, 1.0, 0.0, 0.2, 2), "is_call"),
    (("abc", 100.0, 1.0, 0.0, 0.2, True), "forward must be a number"),
])
def test_invalid_inputs_raise_risk_error(args, match):
    with pytest.raises(RiskError, match=match):
        price(*args)
    with pytest.raises(RiskError, match=match):
        greeks(*args)


def test_risk_error_is_a_value_error():
    assert issubclass(RiskError, ValueError)
    with pytest.raises(ValueError):
        price(-1, 1, 1, 0, 0.1, True)


# ------------------------------------------------------------------ implied vol
@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("K", [60.0, 100.0, 140.0])
def test_implied_vol_roundtrip(is_call, K):
    p = price(100.0, K, 0.4, 0.03, 0.55, is_call)
    assert implied_vol(p, 100.0, K, 0.4, 0.03, is_call) == pytest.approx(0.55, abs=1e-10)


def test_implied_vol_of_hull_prices():
    F = 42.0 * math.exp(0.05)
    assert implied_vol(4.759422392871532, F, 40.0, 0.5, 0.10, True) == pytest.approx(0.20, abs=1e-9)


def test_implied_vol_no_arbitrage_bounds():
    df = math.exp(-0.05)
    with pytest.raises(RiskError, match="below discounted intrinsic"):
        implied_vol(19.0 * df, 120.0, 100.0, 1.0, 0.05, True)
    with pytest.raises(RiskError, match="upper bound"):
        implied_vol(120.0 * df, 120.0, 100.0, 1.0, 0.05, True)
    with pytest.raises(RiskError, match="upper bound"):
        implied_vol(100.0, 120.0, 100.0, 1.0, 0.05, False)
    with pytest.raises(RiskError, match="below discounted intrinsic"):
        implied_vol(-0.01, 100.0, 100.0, 1.0, 0.0, False)
    assert implied_vol(20.0 * df, 120.0, 100.0, 1.0, 0.05, True) == 0.0


def test_implied_vol_other_errors():
    with pytest.raises(RiskError, match="t_years == 0"):
        implied_vol(5.0, 100.0, 100.0, 0.0, 0.0, True)
    with pytest.raises(RiskError, match="vol_max"):
        implied_vol(price(100.0, 100.0, 1.0, 0.0, 3.0, True), 100.0, 100.0, 1.0, 0.0, True, vol_max=2.0)
    with pytest.raises(RiskError, match="scalars"):
        implied_vol([5.0, 6.0], 100.0, 100.0, 1.0, 0.0, True)
    with pytest.raises(RiskError, match="price must be finite"):
        implied_vol(float("nan"), 100.0, 100.0, 1.0, 0.0, True)


def test_module_exports():
    assert sorted(black76.__all__) == ["Greeks", "IV_MAX", "greeks", "implied_vol", "price"]
