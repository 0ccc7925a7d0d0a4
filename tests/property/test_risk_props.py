"""Property tests for clearline.risk: Greeks against finite differences of ``price``,
no-arbitrage identities, implied-vol round trips and risk-array rounding guarantees."""

import math

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from clearline.core.instruments import InstrumentKind, InstrumentSpec, OptionType, default_perpetuals
from clearline.risk import SCENARIOS, black76, risk_array
from clearline.risk.black76 import greeks, implied_vol, price

finite = dict(allow_nan=False, allow_infinity=False)
forwards = st.floats(50.0, 200.0, **finite)
moneyness = st.floats(0.6, 1.6, **finite)
times = st.floats(0.02, 3.0, **finite)
vols = st.floats(0.05, 1.5, **finite)
rates = st.floats(-0.02, 0.10, **finite)
calls = st.booleans()

SETTINGS = settings(max_examples=200, deadline=None)


@SETTINGS
@given(forwards, moneyness, times, rates, vols, calls)
def test_delta_and_gamma_match_finite_differences(F, m, T, r, v, c):
    K = F * m
    sd = v * math.sqrt(T)  # steps scale with the distribution's width, or short-dated gamma is missed
    h = F * sd * 1e-3
    up, mid, dn = (price(F + h, K, T, r, v, c), price(F, K, T, r, v, c), price(F - h, K, T, r, v, c))
    g = greeks(F, K, T, r, v, c)
    assert math.isclose(g.delta, (up - dn) / (2 * h), rel_tol=1e-5, abs_tol=1e-7)
    h2 = F * sd * 1e-2
    fd_gamma = (price(F + h2, K, T, r, v, c) - 2 * mid + price(F - h2, K, T, r, v, c)) / (h2 * h2)
    assert math.isclose(g.gamma, fd_gamma, rel_tol=1e-3, abs_tol=1e-6 / F)


@SETTINGS
@given(forwards, moneyness, times, rates, vols, calls)
def test_vega_and_theta_match_finite_differences(F, m, T, r, v, c):
    K = F * m
    g = greeks(F, K, T, r, v, c)
    hv = 1e-5
    fd_vega = (price(F, K, T, r, v + hv, c) - price(F, K, T, r, v - hv, c)) / (2 * hv)
    assert math.isclose(g.vega, fd_vega, rel_tol=1e-5, abs_tol=1e-6 * F)
    ht = T * 1e-5
    fd_theta = -(price(F, K, T + ht, r, v, c) - price(F, K, T - ht, r, v, c)) / (2 * ht)  # per year
    assert math.isclose(g.theta, fd_theta, rel_tol=1e-4, abs_tol=1e-6 * F)


@SETTINGS
@given(forwards, moneyness, st.floats(0.0, 3.0, **finite), rates, st.floats(0.0, 2.0, **finite))
def test_put_call_parity_and_bounds(F, m, T, r, v):
    K = F * m
    c, p = price(F, K, T, r, v, np.array([True, False]))
    df = math.exp(-r * T)
    assert math.isclose(c - p, df * (F - K), rel_tol=1e-9, abs_tol=1e-9 * F)
    ulp = 1e-12 * F  # df is computed by np.exp in the library and math.exp here
    assert df * max(F - K, 0.0) - ulp <= c <= df * F
    assert df * max(K - F, 0.0) - ulp <= p <= df * K


@SETTINGS
@given(forwards, moneyness, times, rates, vols, calls)
def test_price_is_monotone(F, m, T, r, v, c):
    K = F * m
    base = price(F, K, T, r, v, c)
    eps = 1e-12 * F  # deep in the money the change is below float resolution
    assert price(F, K, T, r, v * 1.01, c) >= base - eps  # vega >= 0
    moved = price(F * 1.01, K, T, r, v, c)
    assert (moved >= base - eps) if c else (moved <= base + eps)


@settings(max_examples=100, deadline=None)
@given(forwards, moneyness, times, rates, vols, calls)
def test_implied_vol_roundtrip(F, m, T, r, v, c):
    K = F * m
    p = price(F, K, T, r, v, c)
    g = greeks(F, K, T, r, v, c)
    df = math.exp(-r * T)
    intrinsic = df * (max(F - K, 0.0) if c else max(K - F, 0.0))
    # only where the price actually carries information about vol
    assume(g.vega > 1e-4 * F and p - intrinsic > 1e-9 * F)
    iv = implied_vol(p, F, K, T, r, c)
    assert math.isclose(price(F, K, T, r, iv, c), p, rel_tol=1e-9, abs_tol=1e-10 * F)
    assert math.isclose(iv, v, rel_tol=1e-5, abs_tol=1e-6)


# ------------------------------------------------------------------ risk arrays
BTC_PERP = default_perpetuals()[0]
TV = BTC_PERP.tick_value


def _option(strike: int, is_call: bool) -> InstrumentSpec:
    return InstrumentSpec(10, "BTC-OPT", InstrumentKind.OPTION, "BTC", 100_000, 10_000, 100_000, 50_000, 100, 500,
                          expiry=1, strike=strike, option_type=OptionType.CALL if is_call else OptionType.PUT)


@SETTINGS
@given(st.integers(1, 10**9))
def test_perp_array_is_the_floor_of_the_exact_value(F):
    arr = risk_array(BTC_PERP, F)
    for s, x in zip(SCENARIOS, arr):
        exact_num = F * TV * s.move_ppm * s.cover_ppm  # exact value is exact_num / 1e12
        assert type(x) is int
        assert x * 10**12 <= exact_num < (x + 1) * 10**12


@settings(max_examples=100, deadline=None)
@given(st.integers(100_000, 2_000_000), st.floats(0.5, 1.5, **finite), st.floats(0.0, 1.0, **finite),
       st.floats(0.1, 1.5, **finite), st.floats(0.0, 0.1, **finite))
def test_call_minus_put_arrays_follow_parity(F, m, T, v, r):
    """Per scenario, long call + short put is a discounted forward: R_c - R_p equals
    DF (F_s - F) tick_value cover, up to the two floors (and float noise): within 2 usd6."""
    K = max(1, round(F * m))
    rc = risk_array(_option(K, True), F, v, T, r)
    rp = risk_array(_option(K, False), F, v, T, r)
    df = math.exp(-r * T)
    for s, a, b in zip(SCENARIOS, rc, rp):
        expected = df * F * s.move_ppm / 1e6 * TV * s.cover_ppm / 1e6
        assert abs((a - b) - expected) <= 2.0 + 1e-9 * abs(expected)


@settings(max_examples=100, deadline=None)
@given(st.integers(100_000, 2_000_000), st.floats(0.5, 1.5, **finite), st.floats(0.0, 1.0, **finite),
       st.floats(0.05, 1.5, **finite), st.floats(0.0, 0.1, **finite), st.booleans())
def test_option_arrays_are_ints_deterministic_and_bounded(F, m, T, v, r, c):
    K = max(1, round(F * m))
    spec = _option(K, c)
    a = risk_array(spec, F, v, T, r)
    assert a == risk_array(spec, F, v, T, r)
    assert all(type(x) is int for x in a)
    v0 = black76.price(F, K, T, r, v, c) * TV
    # a long option can lose at most its premium (rounded down by < 1 usd6)
    assert all(x >= math.floor(-v0) - 1 for x in a)
    # a call's array rises with the move (for a fixed vol direction), a put's falls
    for lo, hi in ((4, 2), (8, 6), (12, 10), (5, 3), (9, 7), (13, 11)):  # (down n/3, up n/3)
        assert (a[hi] >= a[lo]) if c else (a[hi] <= a[lo])


@settings(max_examples=100, deadline=None)
@given(st.integers(100_000, 2_000_000), st.integers(100_000, 2_000_000), st.booleans())
def test_option_array_at_expiry_is_floor_of_intrinsic_change(F, K, c):
    arr = risk_array(_option(K, c), F, 0.7, 0.0, 0.05)

    def intrinsic(f):
        return max(f - K, 0) if c else max(K - f, 0)

    for s, x in zip(SCENARIOS, arr):
        fs = F * (1_000_000 + s.move_ppm) / 1_000_000
        exact = (intrinsic(fs) - intrinsic(F)) * TV * s.cover_ppm / 1_000_000
        assert x == math.floor(exact) or (x == math.floor(exact) - 1 and exact - math.floor(exact) < 1e-6)
