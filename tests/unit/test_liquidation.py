"""Liquidation with hand-computed numbers: preconditions, cancelled orders, stepwise
reduction into the book bounded by the bankruptcy price, the fee to the insurance fund
(capped at equity), insurance cover, and auto-deleveraging with pro-rata haircuts.

Fixture (``issue3_helpers``): BTC-PERP tick_value 10 usd6 (one lot at p ticks = 10 p usd6),
IM 5 %, MM 3 %, taker 500 ppm, maker 100 ppm; liquidation fee 0.5 % of the filled notional,
step 25 % of the riskiest position (at least one lot), at most 32 steps. Marks move without
oracle reports, so the index (and the liquidation pause) is not involved.
"""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from helpers import BTC, E, closed, fills  # noqa: E402
from issue3_helpers import BTC_INDEX, BTC_U, FUND, Ex3  # noqa: E402

from clearline.core.instruments import OptionType  # noqa: E402
from clearline.core.ledger import (Deleveraged, InsuranceCovered, LiquidationEnded, LiquidationFill,  # noqa: E402
                                   LiquidationStarted)
from clearline.core.liquidation import adl_ranking, bankruptcy_price  # noqa: E402
from clearline.core.matching import CloseReason  # noqa: E402
from clearline.core.txs import MarginMode  # noqa: E402


def liq_events(r) -> list[tuple]:
    """The liquidation-specific events of a receipt, as tuples, in order."""
    out = []
    for e in r.events:
        if isinstance(e, (LiquidationStarted, LiquidationFill, InsuranceCovered, Deleveraged, LiquidationEnded)):
            out.append((type(e).__name__, *(getattr(e, k) for k in e.__slots__)))
    return out


def long_100(ex: Ex3, deposit: int, *, seller_deposit: int = FUND) -> tuple[int, int]:
    """A buys 100 lots at 100_000 from S (taker fee 50_000). Returns (A, S)."""
    s = ex.account(1, seller_deposit)
    a = ex.account(2, deposit)
    ex.ok(ex.sell(s, 100_000, 100))
    ex.ok(ex.buy(a, 100_000, 100))
    return a, s


def test_bankruptcy_price_rounding():
    # long 100 lots, equity 1_700_000: 89_000 - 1_700_000 / 1_000 = 87_300 exactly
    assert bankruptcy_price(1_700_000, 100, 89_000, 10) == 87_300
    # a sell never goes below the price that zeroes equity: rounds up
    assert bankruptcy_price(1_700_500, 100, 89_000, 10) == 87_300  # exact 87_299.5 -> 87_300
    # a buy (short) rounds down: 111_000 + 1_999_500 / 1_000 = 112_999.5 -> 112_999
    assert bankruptcy_price(1_999_500, -100, 111_000, 10) == 112_999
    # negative equity: a long's bound is above the mark
    assert bankruptcy_price(-1_000_000, 98, 89_000, 10) == 90_021  # 89_000 + ceil(1_020.4)
    assert bankruptcy_price(10**12, 1, 5, 10) == 1  # never below one tick


def test_not_liquidatable_down_to_exactly_maintenance():
    ex = Ex3()
    a, s = long_100(ex, 12_750_000)
    ex.reject(E.NOT_LIQUIDATABLE, ex.liquidate, a)
    ex.reject(E.UNKNOWN_ACCOUNT, ex.liquidate, 99)
    ex.ok(ex.mark_update({BTC: 90_000}))
    # equity 12_750_000 - 50_000 - 100 * 10_000 * 10 = 2_700_000 = MM ceil(90_000_000 * 3 %)
    assert ex.health(a)[::2] == (2_700_000, 2_700_000)
    ex.reject(E.NOT_LIQUIDATABLE, ex.liquidate, a)
    ex.ok(ex.mark_update({BTC: 89_999}))
    assert ex.health(a)[::2] == (2_699_000, 2_699_970)
    ex.ok(ex.liquidate(a))


def test_stepwise_reduction_bounded_by_the_bankruptcy_price():
    ex = Ex3()
    a, s = long_100(ex, 12_750_000)
    mk = ex.account(3, FUND)
    own = ex.ok(ex.buy(a, 50_000, 10)).order_id  # A's open order
    bids = [ex.ok(ex.buy(mk, p, q)).order_id for p, q in ((88_900, 20), (88_500, 30), (80_000, 100))]
    ex.ok(ex.mark_update({BTC: 89_000}))
    # equity 12_700_000 - 11_000_000 = 1_700_000 < MM 30 * 89_000 = 2_670_000
    assert ex.health(a)[::2] == (1_700_000, 2_670_000)
    ins = ex.state.insurance_fund
    r = ex.ok(ex.liquidate(a))
    assert closed(r)[0] == (own, CloseReason.LIQUIDATION, 10)  # orders go first
    assert fills(r) == [(88_900, 20, bids[0], mk), (88_500, 5, bids[1], mk),  # step 1
                        (88_500, 19, bids[1], mk),  # step 2
                        (88_500, 6, bids[1], mk)]  # step 3 (the 80_000 bid is below every bound)
    assert liq_events(r) == [
        ("LiquidationStarted", a, 1_700_000, 2_670_000),
        # step 1: 25 lots, bound 89_000 - 1_700_000 // 1_000 = 87_300; notional
        # (20 * 88_900 + 5 * 88_500) * 10 = 22_205_000; fee ceil(0.5 %) = 111_025;
        # avg ceil(22_205_000 / 250) = 88_820; equity 1_700_000 - 45_000 - 111_025 = 1_543_975
        ("LiquidationFill", a, BTC, 25, 88_820, 87_300, 111_025),
        # step 2: ceil(75 / 4) = 19 lots, bound 89_000 - 1_543_975 // 750 = 86_942;
        # 19 at 88_500 = 16_815_000 -> fee 84_075; equity 1_543_975 - 95_000 - 84_075 = 1_364_900
        ("LiquidationFill", a, BTC, 19, 88_500, 86_942, 84_075),
        # step 3: 14 lots wanted, bound 89_000 - 1_364_900 // 560 = 86_563: only 6 left at 88_500;
        # 5_310_000 -> fee 26_550; equity 1_364_900 - 30_000 - 26_550 = 1_308_350
        ("LiquidationFill", a, BTC, 6, 88_500, 86_563, 26_550),
        # step 4: bound 89_000 - 1_308_350 // 500 = 86_384 > 80_000: no fill, stop.
        # 50 lots left, MM 30 * 89_000 / 2 = 1_335_000: still below, but nothing within the bound
        ("LiquidationEnded", a, 1_308_350, 1_335_000, 1),
    ]
    assert ex.pos(a) == (50, -50_000_000)
    assert ex.state.insurance_fund == ins + 111_025 + 84_075 + 26_550
    assert ex.depth(BTC) == [(80_000, 100, 1)]
    assert not ex.state.accounts[a].open_orders
    ex.conserved()
    # more liquidity within the bound later: the next LIQUIDATE continues where this stopped
    ex.ok(ex.buy(mk, 88_800, 100))
    r = ex.ok(ex.liquidate(a))
    # 13 lots at 88_800: equity 1_308_350 - 26_000 - ceil(11_544_000 * 0.5 %) = 1_224_630;
    # MM for 37 lots = ceil(37 * 890_000 * 3 %) = 987_900: healthy
    assert liq_events(r)[1:] == [("LiquidationFill", a, BTC, 13, 88_800, 86_384, 57_720),
                                 ("LiquidationEnded", a, 1_224_630, 987_900, 1)]


def test_short_liquidation_buys_up_to_the_bankruptcy_price():
    ex = Ex3()
    b = ex.account(1, FUND)
    a = ex.account(2, 13_050_000)
    mk = ex.account(3, FUND)
    ex.ok(ex.buy(b, 100_000, 100))
    ex.ok(ex.sell(a, 100_000, 100))
    ex.ok(ex.sell(mk, 111_500, 10))
    ex.ok(ex.sell(mk, 113_001, 100))
    ex.ok(ex.mark_update({BTC: 111_000}))
    r = ex.ok(ex.liquidate(a))
    assert liq_events(r) == [
        ("LiquidationStarted", a, 2_000_000, 3_330_000),
        # bound 111_000 + 2_000_000 // 1_000 = 113_000: 10 at 111_500 only; fee ceil(55_750)
        ("LiquidationFill", a, BTC, 10, 111_500, 113_000, 55_750),
        # equity 2_000_000 - 50_000 - 55_750 = 1_894_250; bound 111_000 + 1_894_250 // 900 = 113_104;
        # ceil(90 / 4) = 23 lots at 113_001: 25_990_230 -> fee ceil(129_951.15) = 129_952
        ("LiquidationFill", a, BTC, 23, 113_001, 113_104, 129_952),
        # equity 1_894_250 - 460_230 - 129_952 = 1_304_068; bound 111_000 + 1_304_068 // 670 = 112_946
        ("LiquidationEnded", a, 1_304_068, 2_231_100, 1),
    ]
    assert ex.pos(a) == (-67, 67_000_000)
    ex.conserved()


def test_liquidation_fee_is_capped_at_equity():
    ex = Ex3()
    a, s = long_100(ex, 11_150_000)
    mk = ex.account(3, FUND)
    ex.ok(ex.buy(mk, 88_900, 25))
    ex.ok(ex.buy(mk, 88_000, 100))
    ex.ok(ex.mark_update({BTC: 89_000}))
    ins = ex.state.insurance_fund
    r = ex.ok(ex.liquidate(a))
    # equity 100_000; bound 88_900: 25 at 88_900 leaves 75_000 of equity; the fee
    # ceil(22_225_000 * 0.5 %) = 111_125 is capped at 75_000. Then bound = mark: no more fills.
    assert liq_events(r) == [("LiquidationStarted", a, 100_000, 2_670_000),
                             ("LiquidationFill", a, BTC, 25, 88_900, 88_900, 75_000),
                             ("LiquidationEnded", a, 0, 2_002_500, 1)]
    assert ex.state.insurance_fund == ins + 75_000
    ex.conserved()


def test_insurance_covers_a_negative_equity():
    ex = Ex3()
    a, s = long_100(ex, 10_450_000)  # equity at 89_000: 10_400_000 - 11_000_000 = -600_000
    ex.ok(ex.insurance_deposit(2_000_000))
    mk = ex.account(3, FUND)
    ex.ok(ex.buy(mk, 88_000, 100))  # below the mark: the bankruptcy bound (above the mark) excludes it
    ex.ok(ex.mark_update({BTC: 89_000}))
    s_equity = ex.equity(s)
    r = ex.ok(ex.liquidate(a))
    assert liq_events(r) == [("LiquidationStarted", a, -600_000, 2_670_000),
                             ("Deleveraged", a, s, BTC, 100, 89_000, 0),
                             ("InsuranceCovered", a, 600_000, 1_400_000),
                             ("LiquidationEnded", a, 0, 0, 0)]
    assert fills(r) == []
    assert ex.equity(a) == ex.coll(a) == 0 and not ex.state.accounts[a].positions
    assert ex.equity(s) == s_equity  # closed at the mark: no loss for the counterparty
    assert ex.pos(s) == (0, 0)
    assert ex.state.insurance_fund == 1_400_000
    ex.conserved()


def test_insurance_exhausted_then_adl_ranked_with_pro_rata_haircuts():
    ex = Ex3()
    b = ex.account(1, 3_000_000)
    c = ex.account(2, 3_000_000)
    d = ex.account(3, 2_100_000)
    a = ex.account(4, 9_829_000)
    ex.ok(ex.sell(b, 100_000, 29))
    ex.ok(ex.sell(c, 100_000, 29))
    ex.ok(ex.sell(d, 100_000, 40))
    ex.ok(ex.buy(a, 100_000, 98))  # taker fee 49_000; makers pay 2_900, 2_900, 4_000
    ex.ok(ex.insurance_deposit(300_000))
    ex.ok(ex.mark_update({BTC: 89_000}))
    # A: 9_829_000 - 49_000 - 98 * 11_000 * 10 = -1_000_000
    # ranking = profit ratio x leverage (ppm), highest first:
    #   D: upnl 40_000_000 - 35_600_000 = 4_400_000 -> 110_000 ppm; equity 2_096_000 + 4_400_000
    #      = 6_496_000; leverage 35_600_000 / 6_496_000 -> 5_480_295 ppm
    #   B, C: upnl 3_190_000 -> 110_000 ppm; equity 6_187_100; leverage 25_810_000 / 6_187_100
    #      -> 4_171_583 ppm; equal scores: by account id
    assert ex.equity(d) == 6_496_000 and ex.equity(b) == ex.equity(c) == 6_187_100
    assert adl_ranking(ex.state, BTC, -1, a) == [d, b, c]
    r = ex.ok(ex.liquidate(a))
    # taken over at the mark: D 40 lots (35_600_000 usd6), B and C 29 (25_810_000 each), total 87_220_000
    # insurance pays 300_000; the other 700_000 is charged pro rata, rounded up:
    # D ceil(700_000 * 35_600_000 / 87_220_000) = ceil(285_714.29) = 285_715
    # B, C ceil(700_000 * 25_810_000 / 87_220_000) = ceil(207_142.86) = 207_143
    # charged 700_001: the 1 usd6 rounding surplus goes to the insurance fund
    assert liq_events(r) == [
        ("LiquidationStarted", a, -1_000_000, 2_616_600),
        ("Deleveraged", a, d, BTC, 40, 89_000, 0),
        ("Deleveraged", a, b, BTC, 29, 89_000, 0),
        ("Deleveraged", a, c, BTC, 29, 89_000, 0),
        ("InsuranceCovered", a, 300_000, 0),
        ("Deleveraged", a, d, -1, 0, 0, 285_715),
        ("Deleveraged", a, b, -1, 0, 0, 207_143),
        ("Deleveraged", a, c, -1, 0, 0, 207_143),
        ("LiquidationEnded", a, 0, 0, 0),
    ]
    assert ex.equity(a) == 0
    assert ex.equity(d) == ex.coll(d) == 6_496_000 - 285_715
    assert ex.equity(b) == ex.coll(b) == 6_187_100 - 207_143
    assert ex.equity(c) == ex.coll(c) == 6_187_100 - 207_143
    assert ex.state.insurance_fund == 1
    assert ex.state.markets[BTC].open_interest == 0
    ex.conserved()


def test_unprofitable_counterparties_rank_last_whatever_their_id():
    ex = Ex3()
    c = ex.account(1, FUND)
    a = ex.account(2, FUND)
    b = ex.account(3, FUND)
    f = ex.account(4, FUND)
    ex.ok(ex.sell(b, 100_000, 10))
    ex.ok(ex.buy(a, 100_000, 10))  # A long at 100_000, B short
    ex.ok(ex.mark_update({BTC: 80_000}))
    ex.ok(ex.sell(c, 80_000, 5))
    ex.ok(ex.buy(f, 80_000, 5))  # C short at 80_000, F long
    ex.ok(ex.mark_update({BTC: 81_000}))
    # shorts: B is in profit, C (the lower id) is losing: B first
    assert adl_ranking(ex.state, BTC, -1, -1) == [b, c]
    # longs: F is in profit, A (the lower id) is losing: F first
    assert adl_ranking(ex.state, BTC, 1, -1) == [f, a]
    assert adl_ranking(ex.state, BTC, 1, f) == [a]  # the liquidated account is excluded


def test_portfolio_account_short_puts_bought_back_stepwise():
    """A portfolio-margin account short 10 puts; requirements from the published arrays."""
    ex = Ex3()
    ex.ok(ex.mark_update(index={BTC_U: BTC_INDEX}))
    ex.ok(ex.list_options(BTC_U))
    put = ex.option_id(9_500, OptionType.PUT, ex.options()[0].expiry)
    # usd6 P&L of one long put lot per scenario (hand-made; the core only needs integers)
    calm = [0, 0, -2_000, -2_000, 5_000, 5_000, -3_000, -3_000, 15_000, 15_000, -3_500, -3_500,
            30_000, 30_000, -1_000, 25_000]
    stressed = [2 * v for v in calm]
    ex.ok(ex.mark_update({put: 500}, arrays={put: calm}))
    mk = ex.account(1, FUND)
    a = ex.account(2, 600_000)
    ex.ok(ex.set_margin_mode(a, MarginMode.PORTFOLIO))
    ex.ok(ex.buy(mk, 500, 10, instrument=put))
    ex.ok(ex.sell(a, 500, 10, instrument=put))  # fee min(ceil(10_000_000 * 500e-6), 50_000 // 8) = 5_000
    # short 10: worst loss 10 * 30_000 (scenario 12) + 1 % of U (10 lots: 10_000_000) + 10 contingency
    assert ex.health(a) == (595_000, 400_010, 300_008)
    ex.ok(ex.sell(mk, 3_100, 4, instrument=put))
    ex.ok(ex.sell(mk, 3_300, 10, instrument=put))
    ex.ok(ex.mark_update({put: 3_000}, arrays={put: stressed}))
    # equity 595_000 - 10 * 2_500 * 10 = 345_000; IM 600_000 + 100_000 + 10; MM ceil(x 0.75) = 525_008
    assert ex.health(a) == (345_000, 700_010, 525_008)
    r = ex.ok(ex.liquidate(a))
    assert liq_events(r) == [
        ("LiquidationStarted", a, 345_000, 525_008),
        # 3 lots (ceil 2.5); bound 3_000 + 345_000 // 100 = 6_450; 3 at 3_100: 93_000 -> fee 465
        ("LiquidationFill", a, put, 3, 3_100, 6_450, 465),
        # equity 345_000 - 3_000 - 465 = 341_535 < MM(7 lots) ceil(490_007 * 0.75) = 367_506;
        # 2 lots, bound 3_000 + 341_535 // 70 = 7_879: 1 at 3_100, 1 at 3_300 -> 64_000, fee 320
        ("LiquidationFill", a, put, 2, 3_200, 7_879, 320),
        # 341_535 - 4_000 - 320 = 337_215 >= MM(5 lots) ceil(350_005 * 0.75) = 262_504
        ("LiquidationEnded", a, 337_215, 262_504, 1),
    ]
    assert ex.pos(a, put)[0] == -5
    ex.conserved()
