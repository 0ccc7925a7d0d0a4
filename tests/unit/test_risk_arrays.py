"""Scenario set, risk arrays and option marks: hand-computable examples and rounding."""

import math

import pytest

import clearline.risk
from clearline.core.instruments import InstrumentKind, InstrumentSpec, OptionType, default_perpetuals
from clearline.risk import (N_SCENARIOS, SCENARIOS, RiskError, SviSlice, VolSurface, black76, option_mark_ticks,
                            risk_array, year_fraction)
from clearline.risk import scenarios as sc
from clearline.risk.arrays import MS_PER_YEAR, option_base_vol

BTC_PERP = default_perpetuals()[0]  # tick 100_000 usd6 ($0.10), lot 10_000 (0.0001 BTC), tick_value 10
F = 600_000  # ticks: $60,000
T30 = 30 / 365
UP3, DOWN3_VOL_UP, DOWN3_VOL_DOWN, EXT_UP, EXT_DOWN = 10, 12, 13, 14, 15


def option(strike: int, typ: int, id_: int = 10) -> InstrumentSpec:
    spec = InstrumentSpec(id_, f"BTC-{'C' if typ == OptionType.CALL else 'P'}-{strike}", InstrumentKind.OPTION,
                          "BTC", tick_size=100_000, lot_size=10_000, im_ppm=100_000, mm_ppm=50_000,
                          maker_fee_ppm=100, taker_fee_ppm=500, expiry=1_767_225_600_000, strike=strike,
                          option_type=typ)
    spec.validate()
    return spec


def N(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def hand_call(F, K, t, r, v):
    """Textbook Black-76 call, independent of clearline.risk."""
    sd = v * math.sqrt(t)
    d1 = (math.log(F / K) + sd * sd / 2) / sd
    return math.exp(-r * t) * (F * N(d1) - K * N(d1 - sd))


# ------------------------------------------------------------------ the scenario set
def test_scenario_set_is_the_documented_sixteen():
    assert N_SCENARIOS == 16 == len(SCENARIOS)
    assert [s.index for s in SCENARIOS] == list(range(16))
    assert [s.move_ppm for s in SCENARIOS] == [0, 0, 50_000, 50_000, -50_000, -50_000, 100_000, 100_000,
                                               -100_000, -100_000, 150_000, 150_000, -150_000, -150_000,
                                               300_000, -300_000]
    assert [s.vol_direction for s in SCENARIOS] == [1, -1] * 7 + [0, 0]
    assert [s.cover_ppm for s in SCENARIOS] == [1_000_000] * 14 + [350_000] * 2
    assert SCENARIOS[DOWN3_VOL_UP].label == "down 3/3, vol up"
    assert SCENARIOS[EXT_DOWN].label == "down 2x range, 35% cover"
    assert sc.PRICE_SCAN_RANGE_PPM == 150_000 and sc.EXTREME_MULTIPLE == 2 and sc.EXTREME_COVER_PPM == 350_000
    assert sc.SCENARIO_SET_VERSION == 1


def test_vol_shock_scales_with_time_to_expiry():
    assert sc.vol_shock(30 / 365) == pytest.approx(0.10)
    assert sc.vol_shock(1.0) == pytest.approx(0.10 * math.sqrt(30 / 365))
    assert sc.vol_shock(7 / 365) == pytest.approx(0.10 * math.sqrt(30 / 7))
    assert sc.vol_shock(0.0) == sc.vol_shock(1 / 365 / 24) == sc.VOL_SHOCK_CAP == 0.40
    assert sc.vol_shock(2 / 365) == pytest.approx(0.10 * math.sqrt(15))  # 0.387, just under the cap
    with pytest.raises(RiskError):
        sc.vol_shock(-1.0)
    with pytest.raises(RiskError):
        sc.vol_shock(float("nan"))


# ------------------------------------------------------------------ perpetuals
def test_perp_long_one_lot_hand_example():
    arr = risk_array(BTC_PERP, F)
    # +15% on $60,000 for 0.0001 BTC = $0.90 = 900_000 usd6 exactly (0.15 * 600_000 ticks * 10 usd6/tick)
    assert arr[UP3] == 900_000 == round(0.15 * F * BTC_PERP.tick_value)
    assert arr[DOWN3_VOL_UP] == arr[DOWN3_VOL_DOWN] == -900_000
    assert arr[2] == 300_000 and arr[6] == 600_000
    # extreme: 30% move counted at 35%: 0.30 * 0.35 * 6_000_000 = 630_000
    assert arr[EXT_UP] == 630_000 and arr[EXT_DOWN] == -630_000
    assert arr[0] == arr[1] == 0
    # vol, time and rate are irrelevant for a perp
    assert risk_array(BTC_PERP, F, 0.9, 1.0, 0.2) == arr


def test_perp_rounding_is_down_for_the_long():
    arr = risk_array(BTC_PERP, F + 1)  # exact values are x.5 or x.x5 usd6: the floor shows
    assert arr[UP3] == 900_001  # 900_001.5 -> down
    assert arr[DOWN3_VOL_UP] == -900_002  # -900_001.5 -> down (a bigger loss)
    assert arr[EXT_UP] == 630_001  # 630_001.05
    assert arr[EXT_DOWN] == -630_002  # -630_001.05
    # a short uses the negated array: its P&L is rounded *up* (in its favour, by < 1 usd6)
    short = [-x for x in arr]
    assert short[DOWN3_VOL_UP] == 900_002 and short[DOWN3_VOL_UP] - 900_001.5 == 0.5
    # exact integer arithmetic: floats and ints agree when they represent the same number
    assert risk_array(BTC_PERP, 600_001.0) == arr
    assert risk_array(BTC_PERP, 600_000.5) == [math.floor(600_000.5 * 10 * s.move_ppm * s.cover_ppm / 10**12)
                                               for s in SCENARIOS]


# ------------------------------------------------------------------ options
def test_option_at_expiry_equals_intrinsic_change():
    call = option(570_000, OptionType.CALL)  # $3,000 in the money
    arr = risk_array(call, F, 0.6, 0.0, 0.05)
    intrinsic0 = F - 570_000
    expected = []
    for s in SCENARIOS:
        fs = F * (1_000_000 + s.move_ppm) // 1_000_000
        change_usd6 = (max(fs - 570_000, 0) - intrinsic0) * 10
        expected.append(change_usd6 * s.cover_ppm // 1_000_000)
    assert arr == expected
    assert arr[DOWN3_VOL_UP] == -300_000  # capped at losing the $3,000 intrinsic on 0.0001 BTC
    assert arr[EXT_DOWN] == -105_000  # -300_000 at 35%
    put = option(630_000, OptionType.PUT)
    assert risk_array(put, F, 0.6, 0.0, 0.05)[DOWN3_VOL_UP] == 900_000


def test_option_array_tends_to_intrinsic_as_t_goes_to_zero():
    # strike away from every scenario forward, so a tiny t leaves no time value at all
    spec = option(555_000, OptionType.CALL)
    assert risk_array(spec, F, 0.6, 1e-8, 0.0) == risk_array(spec, F, 0.6, 0.0, 0.0)
    # with a rate, discounting over 1e-8 years moves values by far less than 1 usd6 (but may
    # push an exact integer just below it, hence the floor by one)
    near = risk_array(spec, F, 0.6, 1e-8, 0.05)
    assert all(0 <= b - a <= 1 for a, b in zip(near, risk_array(spec, F, 0.6, 0.0, 0.05)))


def test_option_array_is_black76_repricing():
    spec = option(F, OptionType.CALL)
    arr = risk_array(spec, F, 0.6, T30, 0.05)
    v0 = hand_call(F, F, T30, 0.05, 0.6)
    assert arr[0] == math.floor((hand_call(F, F, T30, 0.05, 0.7) - v0) * 10)  # vol +10 points
    assert arr[1] == math.floor((hand_call(F, F, T30, 0.05, 0.5) - v0) * 10)
    assert arr[DOWN3_VOL_UP] == math.floor((hand_call(0.85 * F, F, T30, 0.05, 0.7) - v0) * 10)
    assert arr[EXT_UP] == math.floor((hand_call(1.3 * F, F, T30, 0.05, 0.6) - v0) * 10 * 0.35)


def test_vol_floor_on_the_down_shock():
    spec = option(F, OptionType.CALL)
    low = risk_array(spec, F, 0.05, T30, 0.0)  # shock 0.10 would go negative: floored at 0.01
    v0 = black76.price(F, F, T30, 0.0, 0.05, True)
    assert low[1] == math.floor((black76.price(F, F, T30, 0.0, 0.01, True) - v0) * 10)
    tiny = risk_array(spec, F, 0.005, T30, 0.0)  # below the floor already: unchanged, never raised
    assert tiny[1] == 0


def test_covered_call_at_expiry_worst_scenario_by_hand():
    """Long 1 lot BTC-PERP + short 1 lot of a $54,000 call, at expiry, forward $60,000.

    Up moves: perp gains what the call loses, net 0. Down 15%: perp -$9,000/BTC, the call
    loses all its $6,000 intrinsic, the short keeps it: net -$3,000/BTC = -300_000 usd6/lot.
    Extreme down 30% at 35%: perp -0.35*$18,000 = -$6,300, short call +0.35*$6,000 = +$2,100:
    net -$4,200/BTC = -420_000 usd6: the extreme scenario binds, not the 15% move.
    """
    perp = risk_array(BTC_PERP, F)
    call = risk_array(option(540_000, OptionType.CALL), F, 0.6, 0.0, 0.05)
    portfolio = [1 * p + (-1) * c for p, c in zip(perp, call)]
    assert portfolio[UP3] == 0 and portfolio[EXT_UP] == 0
    assert portfolio[DOWN3_VOL_UP] == -300_000
    assert portfolio[EXT_DOWN] == -420_000
    worst = min(range(N_SCENARIOS), key=lambda s: portfolio[s])
    assert worst == EXT_DOWN and -portfolio[worst] == 420_000


def test_covered_call_30_days_worst_scenario_by_hand():
    """Long 1 lot perp + short 1 lot ATM call, 30 days, vol 60%, rate 5%.

    The covered call's payoff is capped above and fully exposed below, and a short option
    loses when vol rises: the worst scenario is "down 3/3, vol up". Its loss is the perp's
    0.15 F less what the short call gains as its value falls, C(F, 60%) - C(0.85 F, 70%).
    """
    perp = risk_array(BTC_PERP, F)
    call = risk_array(option(F, OptionType.CALL), F, 0.6, T30, 0.05)
    portfolio = [p - c for p, c in zip(perp, call)]
    worst = min(range(N_SCENARIOS), key=lambda s: portfolio[s])
    assert worst == DOWN3_VOL_UP
    by_hand = 0.15 * F * 10 - (hand_call(F, F, T30, 0.05, 0.6) - hand_call(0.85 * F, F, T30, 0.05, 0.7)) * 10
    assert -portfolio[worst] == pytest.approx(by_hand, abs=1.0)  # < 1 usd6 of rounding
    assert -portfolio[worst] < 0.15 * F * 10  # the call premium cushions the perp's loss


def test_outputs_are_plain_ints_and_deterministic():
    surf = SviSlice(a=0.02, b=0.15, rho=-0.35, m=0.05, sigma=0.25, t_years=0.25)
    for spec, vol in ((BTC_PERP, None), (option(F, OptionType.CALL), 0.6), (option(500_000, OptionType.PUT), surf)):
        a = risk_array(spec, F, vol, 0.25, 0.05)
        b = risk_array(spec, F, vol, 0.25, 0.05)
        assert a == b and len(a) == N_SCENARIOS
        assert all(type(x) is int for x in a)
    assert type(option_mark_ticks(option(F, OptionType.CALL), F, 0.6, T30, 0.05)) is int


def test_surface_slice_and_number_agree():
    spec = option(660_000, OptionType.CALL)
    sl = SviSlice(a=0.02, b=0.15, rho=-0.35, m=0.05, sigma=0.25, t_years=0.25)
    surf = VolSurface([sl, SviSlice(a=0.04, b=0.15, rho=-0.35, m=0.05, sigma=0.25, t_years=0.5)])
    vol = sl.implied_vol(660_000, F)
    assert option_base_vol(spec, F, surf, 0.25) == pytest.approx(vol)
    assert risk_array(spec, F, surf, 0.25, 0.05) == risk_array(spec, F, sl, 0.25, 0.05) == \
        risk_array(spec, F, vol, 0.25, 0.05)


# ------------------------------------------------------------------ marks
def test_option_mark_is_rounded_to_nearest_tick():
    spec = option(F, OptionType.CALL)
    exact = hand_call(F, F, T30, 0.05, 0.6)
    assert option_mark_ticks(spec, F, 0.6, T30, 0.05) == math.floor(exact + 0.5) == 40_955  # ~$4,095.5/BTC
    itm = option(570_000, OptionType.CALL)
    assert option_mark_ticks(itm, F, 0.6, 0.0, 0.05) == 30_000  # intrinsic at expiry
    far = option(1_200_000, OptionType.CALL)
    assert option_mark_ticks(far, F, 0.6, 1 / 365, 0.05) == 1  # worthless, but 0 means "no mark"
    assert option_mark_ticks(far, F, 0.6, 1 / 365, 0.05, min_ticks=0) == 0


def test_option_mark_halves_round_up():
    spec = option(500_000, OptionType.CALL)
    # at expiry with a forward ending in .5 ticks the intrinsic is exactly x.5
    assert option_mark_ticks(spec, 600_000.5, 0.6, 0.0, 0.0) == 100_001
    assert option_mark_ticks(spec, 600_000.49, 0.6, 0.0, 0.0) == 100_000


# ------------------------------------------------------------------ errors and helpers
def test_invalid_inputs_raise_risk_error():
    call = option(F, OptionType.CALL)
    with pytest.raises(RiskError, match="needs a volatility"):
        risk_array(call, F, None, T30, 0.05)
    with pytest.raises(RiskError, match="forward must be finite and > 0"):
        risk_array(BTC_PERP, -5)
    with pytest.raises(RiskError, match="forward must be finite and > 0"):
        risk_array(call, float("nan"), 0.6, T30, 0.05)
    with pytest.raises(RiskError, match="t_years must be finite and >= 0"):
        risk_array(call, F, 0.6, -0.1, 0.05)
    with pytest.raises(RiskError, match="volatility must be finite and >= 0"):
        risk_array(call, F, -0.6, T30, 0.05)
    with pytest.raises(RiskError, match="InstrumentSpec"):
        risk_array("BTC-PERP", F)
    with pytest.raises(RiskError, match="option_type"):
        risk_array(InstrumentSpec(9, "X", InstrumentKind.OPTION, "BTC", 100_000, 10_000, 2, 1, 0, 0,
                                  strike=F, option_type=OptionType.NONE), F, 0.6, T30, 0.0)
    with pytest.raises(RiskError, match="strike"):
        option_mark_ticks(InstrumentSpec(9, "X", InstrumentKind.OPTION, "BTC", 100_000, 10_000, 2, 1, 0, 0,
                                         strike=0, option_type=OptionType.CALL), F, 0.6, T30, 0.0)
    with pytest.raises(RiskError, match="not an option"):
        option_mark_ticks(BTC_PERP, F, 0.6, T30, 0.0)
    with pytest.raises(RiskError, match="multiple of 1e8"):
        risk_array(InstrumentSpec(9, "X", InstrumentKind.PERPETUAL, "BTC", 3, 7, 2, 1, 0, 0), F)
    with pytest.raises(RiskError, match="min_ticks"):
        option_mark_ticks(call, F, 0.6, T30, 0.0, min_ticks=-1)


def test_year_fraction_act_365():
    assert MS_PER_YEAR == 31_536_000_000
    assert year_fraction(0, 30 * 86_400_000) == pytest.approx(30 / 365)
    assert year_fraction(10, 5) == 0.0
    with pytest.raises(RiskError):
        year_fraction(0.5, 10)  # type: ignore[arg-type]


def test_public_api_is_small():
    assert sorted(clearline.risk.__all__) == [
        "N_SCENARIOS", "RiskError", "SCENARIOS", "SviSlice", "VolSurface", "black76", "calibrate",
        "option_mark_ticks", "risk_array", "year_fraction",
    ]
    for name in clearline.risk.__all__:
        assert getattr(clearline.risk, name) is not None


def test_no_assert_for_validation_in_risk_sources():
    from pathlib import Path
    for path in Path(clearline.risk.__file__).parent.glob("*.py"):
        lines = [ln.strip() for ln in path.read_text().splitlines()]
        assert not any(ln.startswith("assert ") for ln in lines), path.name
