"""Margin modes with hand-computed numbers: standard option margin, portfolio (SPAN-style)
margin on a covered position whose worst scenario is known, and switching modes.

Fixture (``issue3_helpers``): BTC index 10_000 USD; BTC options with tick 100_000 usd6 and lot
1e-4 BTC (tick_value 10 usd6), so one option lot's underlying value U at 10_000 USD is
1_000_000 usd6; scan 15 %, maintenance 7.5 %, short-option floor 10 % of U. BTC-PERP: one lot
at 100_000 ticks = 1_000_000 usd6, IM 5 %, MM 3 %. Listed at the index: strikes 9_000 ..
11_000 USD; ids 2.. in (strike, call, put) order for the first expiry.
"""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from helpers import BTC, ETH, E, events  # noqa: E402
from issue3_helpers import BTC_INDEX, BTC_U, ETH_INDEX, ETH_U, FUND, USD, Ex3  # noqa: E402

from clearline.core.instruments import OptionType  # noqa: E402
from clearline.core.ledger import MarginModeSet  # noqa: E402
from clearline.core.requirements import portfolio_requirements, standard_requirements  # noqa: E402
from clearline.core.state import State  # noqa: E402
from clearline.core.txs import MarginMode  # noqa: E402
from clearline.risk import option_mark_ticks, risk_array  # noqa: E402

T = 1_700_000_000_000
STD, PM = MarginMode.STANDARD, MarginMode.PORTFOLIO

# Published risk arrays (usd6 P&L of one long lot per scenario). The perp's is exact:
# 1_000_000 usd6 x move (0, +-5, +-10, +-15 %, +-30 % at 35 % cover). The ATM call's is what
# clearline.risk.risk_array gives for F = K = 100_000 ticks, vol 80 %, 30 days (checked below).
PERP_ARR = [0, 0, 50_000, 50_000, -50_000, -50_000, 100_000, 100_000, -100_000, -100_000,
            150_000, 150_000, -150_000, -150_000, 105_000, -105_000]
CALL_ARR = [11_352, -11_372, 40_783, 18_027, -14_254, -35_847, 73_709, 51_875, -35_815, -55_184,
            109_736, 89_549, -53_261, -69_506, 78_774, -30_229]
CALL_MARK = 9_130  # ticks: 913 USD per BTC, 91_300 usd6 per lot


def listed(ex: Ex3) -> dict[str, int]:
    ex.ok(ex.mark_update(index={BTC_U: BTC_INDEX, ETH_U: ETH_INDEX}, time=T))
    ex.ok(ex.list_options(BTC_U))
    e1 = ex.options()[0].expiry
    ids = {f"{k}{'C' if t == OptionType.CALL else 'P'}": ex.option_id(k, t, e1)
           for k in (9_000, 9_500, 10_000, 10_500, 11_000) for t in (OptionType.CALL, OptionType.PUT)}
    assert ids["9000C"] == 2 and ids["10000C"] == 6 and ids["11000P"] == 11
    return ids


def test_the_call_array_is_what_the_risk_module_computes():
    ex = Ex3()
    ids = listed(ex)
    spec = ex.state.markets[ids["10000C"]].spec
    got = risk_array(spec, 100_000, 0.8, 30 / 365)
    assert all(abs(g - w) <= 1 for g, w in zip(got, CALL_ARR, strict=True))  # floats: +-1 usd6
    assert risk_array(ex.state.markets[BTC].spec, 100_000) == PERP_ARR  # exact
    assert option_mark_ticks(spec, 100_000, 0.8, 30 / 365, 0.0) == CALL_MARK


# -- standard margin ----------------------------------------------------------------------------
def test_standard_option_requirements_hand_computed():
    ex = Ex3()
    ids = listed(ex)
    spec = {k: ex.state.markets[v].spec for k, v in ids.items()}
    idx = 10_200 * USD  # index 10_200 USD: U of 10 lots = 10 * 10_200 * 1e4 / 1e8 USD = 10_200_000 usd6
    # long: the premium, initial and maintenance alike: 10 lots x 1_000 ticks x 10
    assert standard_requirements(spec["9500P"], 10, 1_000, idx) == (100_000, 100_000)
    # short call 10_500, 300 USD out of the money: OTM = 10 * 300 USD * 1e-4 = 300_000
    # IM = premium 50_000 + max(1_530_000 - 300_000, 1_020_000) = 1_280_000
    # MM = 50_000 + 7.5 % U = 50_000 + 765_000
    assert standard_requirements(spec["10500C"], -10, 500, idx) == (1_280_000, 815_000)
    # short call 11_000: OTM 800_000 -> 730_000 < floor 10 % U = 1_020_000: the floor binds
    assert standard_requirements(spec["11000C"], -10, 100, idx) == (10_000 + 1_020_000, 10_000 + 765_000)
    # short put 9_500, 700 USD OTM: 1_530_000 - 700_000 = 830_000 < floor
    assert standard_requirements(spec["9500P"], -10, 300, idx) == (30_000 + 1_020_000, 30_000 + 765_000)
    # short put 11_000 is in the money: no reduction, 15 % U
    assert standard_requirements(spec["11000P"], -10, 8_000, idx) == (800_000 + 1_530_000, 800_000 + 765_000)
    # rounding against the account: U = ceil(3 * 10_200.000001 USD * 1e-4) = ceil(3_060_000.0003)
    # = 3_060_001; 15 % -> ceil(459_000.15) = 459_001; 7.5 % -> ceil(229_500.075) = 229_501
    # OTM (call 10_500) = floor(3 * 299.999999 USD * 1e-4) = floor(89_999.9997) = 89_999
    assert standard_requirements(spec["10500C"], -3, 1, 10_200 * USD + 1) == \
        (30 + 459_001 - 89_999, 30 + 229_501)


def test_standard_margin_of_an_account_with_options_and_perps():
    ex = Ex3()
    ids = listed(ex)
    c, p = ids["10500C"], ids["9500P"]
    ex.ok(ex.mark_update({c: 500, p: 1_000, BTC: 102_000}, index={BTC_U: 10_200 * USD}))
    mk = ex.account(1, FUND)
    a = ex.account(2, 5 * USD)
    ex.ok(ex.buy(mk, 500, 10, instrument=c))
    ex.ok(ex.sell(a, 500, 10, instrument=c))  # A writes 10 calls
    ex.ok(ex.sell(mk, 1_000, 10, instrument=p))
    ex.ok(ex.buy(a, 1_000, 10, instrument=p))  # A buys 10 puts
    ex.ok(ex.sell(mk, 102_000, 10))
    ex.ok(ex.buy(a, 102_000, 10))  # A buys 10 perp lots
    # fees (taker 500 ppm): options on U = 10_200_000 -> 5_100 each, capped at premium / 8:
    # call premium 50_000 -> cap 6_250 -> 5_100; put premium 100_000 -> 5_100; perp 10_200_000 -> 5_100
    # equity = 5_000_000 - 15_300 (positions are at their marks)
    # IM = call 1_280_000 + put 100_000 + perp ceil(10_200_000 * 5 %) = 510_000
    # MM = call 815_000 + put 100_000 + perp 306_000
    assert ex.health(a) == (5_000_000 - 15_300, 1_890_000, 1_221_000)


# -- portfolio margin: the covered call -------------------------------------------------------------
def covered(ex: Ex3, deposit: int, mode: int = PM) -> tuple[int, int, int]:
    ids = listed(ex)
    call = ids["10000C"]
    ex.ok(ex.mark_update({BTC: 100_000, call: CALL_MARK}, arrays={BTC: PERP_ARR, call: CALL_ARR}))
    mk = ex.account(1, FUND)
    a = ex.account(2, deposit)
    if mode == PM:
        ex.ok(ex.set_margin_mode(a, PM))
    ex.ok(ex.sell(mk, 100_000, 10))
    ex.ok(ex.buy(mk, CALL_MARK, 10, instrument=call))
    return a, mk, call


def test_covered_call_portfolio_margin_binding_scenario_by_hand():
    ex = Ex3()
    a, mk, call = covered(ex, 2 * USD)
    ex.ok(ex.buy(a, 100_000, 10))  # taker fee 5_000
    # perp only: worst is -15 % (scenario 12 and 13): 10 x 150_000, plus 10 usd6 contingency
    assert ex.health(a) == (1_995_000, 1_500_010, 1_125_008)  # MM = ceil(1_500_010 * 0.75)
    ex.ok(ex.sell(a, CALL_MARK, 10, instrument=call))  # taker fee min(ceil(1e7 * 500e-6), 913_000 // 8)
    assert ex.coll(a) == 2 * USD - 10_000
    # loss_s = -(10 * PERP[s] - 10 * CALL[s]) = 10 * (CALL[s] - PERP[s]):
    losses = [10 * (c - p) for c, p in zip(CALL_ARR, PERP_ARR)]
    assert losses == [113_520, -113_720, -92_170, -319_730, 357_460, 141_530, -262_910, -481_250,
                      641_850, 448_160, -402_640, -604_510, 967_390, 804_940, -262_260, 747_710]
    # the binding scenario is 12: down 15 %, vol up (the call's gain is smallest when vol rises)
    st = ex.state
    r = portfolio_requirements([(st.markets[i].spec, st.accounts[a].positions[i].size, st.markets[i].mark_price,
                                 st.markets[i].risk_array, ex.index()) for i in (BTC, call)])
    assert r.binding == 12 and r.losses == losses
    # short-option minimum 1 % of U = 1 % of 10_000_000 = 100_000; contingency 1 usd6 x 20 lots
    assert (r.short_option_min, r.contingency, r.fallback) == (100_000, 20, 0)
    assert r.initial == 967_390 + 100_000 + 20 == 1_067_410
    assert r.maintenance == 800_558  # ceil(1_067_410 * 0.75) = ceil(800_557.5)
    assert ex.health(a) == (1_990_000, 1_067_410, 800_558)
    # the same position under standard margin needs far more:
    # perp 500_000 / 300_000; short ATM call: premium 913_000 + 15 % U = 1_500_000 (OTM 0),
    # maintenance 913_000 + 750_000
    std = [standard_requirements(st.markets[i].spec, st.accounts[a].positions[i].size, st.markets[i].mark_price,
                                 ex.index()) for i in (BTC, call)]
    assert std == [(500_000, 300_000), (2_413_000, 1_663_000)]
    # switching to standard would leave equity 1_990_000 below the 2_913_000 initial requirement
    ex.reject(E.INSUFFICIENT_MARGIN, ex.set_margin_mode, a, STD)
    assert st.accounts[a].margin_mode == PM


def test_the_same_trade_is_refused_under_standard_margin():
    ex = Ex3()
    a, mk, call = covered(ex, 2 * USD, mode=STD)
    ex.ok(ex.buy(a, 100_000, 10))
    # IM after selling the calls would be 2_913_000 > equity 1_990_000
    ex.reject(E.INSUFFICIENT_MARGIN, ex.sell, a, CALL_MARK, 10, instrument=call)


def test_switch_modes_event_root_and_checks():
    ex = Ex3()
    a, mk, call = covered(ex, 1 * USD, mode=STD)
    ex.ok(ex.buy(a, 100_000, 10))  # equity 995_000; standard IM 500_000
    assert ex.health(a) == (995_000, 500_000, 300_000)
    # portfolio: -15 % on 10 lots = 1_500_000 + 10 > 995_000: refused, nothing changes
    ex.reject(E.INSUFFICIENT_MARGIN, ex.set_margin_mode, a, PM)
    ex.reject(E.INVALID_MARGIN_MODE, ex.set_margin_mode, a, 2)
    ex.reject(E.NOT_ACCOUNT_OWNER, ex.set_margin_mode, a, STD, key=ex.keys[mk])
    ex.ok(ex.buy(mk, 100_000, 5))
    ex.ok(ex.sell(a, 100_000, 5))  # reduce to 5 lots (taker fee 2_500); portfolio IM 750_005
    leaf = State.account_leaf(ex.state, ex.state.accounts[a])
    nonce = ex.state.accounts[a].nonce
    r = ex.ok(ex.set_margin_mode(a, PM))
    assert [(e.account, e.mode) for e in events(r, MarginModeSet)] == [(a, PM)]
    assert ex.state.accounts[a].margin_mode == PM and ex.state.accounts[a].nonce == nonce + 1
    assert State.account_leaf(ex.state, ex.state.accounts[a]) != leaf
    # equity = 1_000_000 - 5_000 - 2_500 (both trades at the mark, taker fees only)
    assert ex.health(a) == (992_500, 750_005, 562_504)
    ex.ok(ex.set_margin_mode(a, STD))
    assert ex.health(a) == (992_500, 250_000, 150_000)


def test_portfolio_positions_without_arrays_are_charged_standard():
    ex = Ex3()
    ex.ok(ex.mark_update({BTC: 100_000}, index={BTC_U: BTC_INDEX, ETH_U: ETH_INDEX}, arrays={BTC: PERP_ARR}, time=T))
    mk = ex.account(1, FUND)
    a = ex.account(2, 5 * USD)
    ex.ok(ex.set_margin_mode(a, PM))
    ex.ok(ex.sell(mk, 100_000, 10))
    ex.ok(ex.buy(a, 100_000, 10))
    ex.ok(ex.buy(mk, 100_000, 4, instrument=ETH))
    ex.ok(ex.sell(a, 100_000, 4, instrument=ETH))  # ETH-PERP has no array yet
    # core = 1_500_000 + 10 (BTC, scenario 12); fallback ETH: IM 5 % of 4_000_000, MM 3 %
    assert ex.health(a) == (5 * USD - 7_000, 1_500_010 + 200_000, 1_125_008 + 120_000)
    # once ETH has an array, the short ETH offsets the long BTC in every scenario
    ex.ok(ex.mark_update({ETH: 100_000}, arrays={ETH: PERP_ARR}))
    # loss_s = -(10 - 4) * PERP[s]: worst 6 * 150_000 = 900_000; contingency 14
    assert ex.health(a) == (5 * USD - 7_000, 900_014, 675_011)
