"""Golden vectors for risk arrays and option marks.

These integers are what the operator signs into a MarkUpdate and what portfolio margin is
computed from: a change here changes every margin requirement. ``vectors/risk.json`` was
produced by an independent pure-Python reference (``math.erfc`` Black-76, ``fractions``
for perpetuals, scenario constants typed in by hand), not by ``clearline.risk``; the
reference is repeated below so the file can be re-derived and checked.
"""

import json
import math
from fractions import Fraction
from pathlib import Path

import pytest

from clearline.core.instruments import InstrumentSpec
from clearline.risk import SCENARIOS, SviSlice, option_mark_ticks, risk_array
from clearline.risk import scenarios as sc

VECTORS = json.loads((Path(__file__).parent / "vectors" / "risk.json").read_text())
CASES = VECTORS["cases"]

# Pinned here as well as in the data file, so that editing the JSON alone cannot move them.
BTC_PERP_AT_60000 = [0, 0, 300000, 300000, -300000, -300000, 600000, 600000, -600000, -600000,
                     900000, 900000, -900000, -900000, 630000, -630000]
BTC_CALL_ATM_30D = [68045, -68130, 243715, 109828, -78206, -205005, 445972, 323955, -193747, -300339,
                    671085, 566871, -279327, -358968, 495389, -141255]


def _spec(d: dict) -> InstrumentSpec:
    spec = InstrumentSpec(d["id"], d["symbol"], d["kind"], d["underlying"], d["tick_size"], d["lot_size"],
                          im_ppm=100_000, mm_ppm=50_000, maker_fee_ppm=100, taker_fee_ppm=500,
                          expiry=d["expiry"], strike=d["strike"], option_type=d["option_type"])
    spec.validate()
    return spec


def _vol(case: dict):
    if "vol" in case:
        return case["vol"]
    if "svi" in case:
        return SviSlice(**case["svi"])
    return None


# ------------------------------------------------------------------ independent reference
def _ref_N(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def _ref_b76(F, K, t, r, v, call):
    df = math.exp(-r * t)
    if v * math.sqrt(t) == 0:
        return df * max(F - K, 0) if call else df * max(K - F, 0)
    sd = v * math.sqrt(t)
    d1 = (math.log(F / K) + sd * sd / 2) / sd
    d2 = d1 - sd
    if call:
        return max(df * (F * _ref_N(d1) - K * _ref_N(d2)), df * max(F - K, 0))
    return max(df * (K * _ref_N(-d2) - F * _ref_N(-d1)), df * max(K - F, 0))


def _ref_vol(case):
    if "vol" in case:
        return case["vol"]
    p, K, F = case["svi"], case["spec"]["strike"], case["forward"]
    x = math.log(K / F) - p["m"]
    return math.sqrt((p["a"] + p["b"] * (p["rho"] * x + math.sqrt(x * x + p["sigma"] ** 2))) / p["t_years"])


def _ref_array(case) -> list[int]:
    spec, F = case["spec"], case["forward"]
    tv = spec["tick_size"] * spec["lot_size"] // 10**8
    scen = VECTORS["scenarios"]
    if spec["kind"] == 0:
        return [math.floor(Fraction(F) * tv * s["move_ppm"] * s["cover_ppm"] / 10**12) for s in scen]
    K, call, t, r = spec["strike"], spec["option_type"] == 1, case["t_years"], case["rate"]
    vs = VECTORS["vol_shock"]
    v0 = _ref_vol(case)
    shock = min(vs["cap"], vs["base"] * math.sqrt(vs["ref_days"] / max(t * vs["days_per_year"], vs["min_days"])))
    down = max(v0 - shock, min(v0, vs["floor"]))
    base = _ref_b76(F, K, t, r, v0, call)
    out = []
    for s in scen:
        v = v0 + shock if s["vol_direction"] > 0 else down if s["vol_direction"] < 0 else v0
        pnl = (_ref_b76(F * (10**6 + s["move_ppm"]) / 10**6, K, t, r, v, call) - base) * tv
        if s["cover_ppm"] != 10**6:
            pnl = pnl * s["cover_ppm"] / 10**6
        out.append(math.floor(pnl))
    return out


# ------------------------------------------------------------------ tests
def test_scenario_set_matches_vectors():
    assert VECTORS["scenario_set_version"] == sc.SCENARIO_SET_VERSION
    assert [dict(move_ppm=s.move_ppm, vol_direction=s.vol_direction, cover_ppm=s.cover_ppm)
            for s in SCENARIOS] == VECTORS["scenarios"]
    vs = VECTORS["vol_shock"]
    assert (vs["base"], vs["ref_days"], vs["min_days"], vs["cap"], vs["floor"], vs["days_per_year"]) == (
        sc.VOL_SHOCK_BASE, sc.VOL_SHOCK_REF_DAYS, sc.VOL_SHOCK_MIN_DAYS, sc.VOL_SHOCK_CAP, sc.VOL_FLOOR,
        sc.DAYS_PER_YEAR)


def test_pinned_constants():
    by_name = {c["name"]: c for c in CASES}
    assert by_name["btc_perp_round"]["risk_array"] == BTC_PERP_AT_60000
    assert by_name["btc_call_atm_30d"]["risk_array"] == BTC_CALL_ATM_30D
    assert by_name["btc_call_atm_30d"]["mark_ticks"] == 40955


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_risk_array_matches_golden(case):
    arr = risk_array(_spec(case["spec"]), case["forward"], _vol(case), case.get("t_years", 0.0),
                     case.get("rate", 0.0))
    assert arr == case["risk_array"]


@pytest.mark.parametrize("case", [c for c in CASES if c["spec"]["kind"] == 1],
                         ids=[c["name"] for c in CASES if c["spec"]["kind"] == 1])
def test_option_mark_matches_golden(case):
    assert option_mark_ticks(_spec(case["spec"]), case["forward"], _vol(case), case["t_years"],
                             case["rate"]) == case["mark_ticks"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_independent_reference_reproduces_the_file(case):
    assert _ref_array(case) == case["risk_array"]
