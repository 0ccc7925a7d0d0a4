"""Cross margin, fees and P&L realisation, with hand-computed numbers.

Default fixture: tick_value 10 usd6 for both perpetuals, marks 100_000 ticks, so one lot at
100_000 is 1_000_000 usd6 of notional. IM 5% (50_000 ppm), MM 3%, taker fee 500 ppm, maker
fee 100 ppm; requirements and fees round up, realised credits round down.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from helpers import BTC, BUY, ETH, SELL, E, Exchange, closed, fills, rested  # noqa: E402

from clearline.core import margin  # noqa: E402
from clearline.core.matching import CloseReason as R  # noqa: E402
from clearline.core.txs import OrderFlag, TimeInForce  # noqa: E402

FUND = 10_000_000_000
IOC = TimeInForce.IOC


@pytest.fixture
def ex() -> Exchange:
    return Exchange()


# -- account health -------------------------------------------------------------------------
def test_account_health_hand_computed(ex):
    a = ex.account(1, 1_000_000_000)
    m = ex.account(2, FUND)
    ex.ok(ex.sell(m, 100_000, 10))
    ex.ok(ex.buy(a, 100_000, 10))  # taker fee ceil(10_000_000 * 500 / 1e6) = 5_000
    ex.ok(ex.buy(m, 100_000, 5, instrument=ETH))
    ex.ok(ex.sell(a, 100_000, 5, instrument=ETH))  # taker fee 2_500
    assert ex.coll(a) == 1_000_000_000 - 5_000 - 2_500 == 999_992_500
    assert ex.pos(a, BTC) == (10, -10_000_000) and ex.pos(a, ETH) == (-5, 5_000_000)
    assert ex.health(a) == (999_992_500, 500_000 + 250_000, 300_000 + 150_000)
    ex.ok(ex.mark({BTC: 101_000, ETH: 98_000}))
    # equity = 999_992_500 + (-10_000_000 + 10*101_000*10) + (5_000_000 - 5*98_000*10)
    #        = 999_992_500 + 100_000 + 100_000
    # IM = ceil(10_100_000 * 5%) + ceil(4_900_000 * 5%) = 505_000 + 245_000
    # MM = ceil(10_100_000 * 3%) + ceil(4_900_000 * 3%) = 303_000 + 147_000
    assert ex.health(a) == (1_000_192_500, 750_000, 450_000)
    # the maker: maker fees 1_000 + 500, and the mirror-image P&L -200_000
    assert ex.health(m) == (FUND - 1_500 - 200_000, 750_000, 450_000)


def test_requirements_round_up(ex):
    a = ex.account(1, FUND)
    m = ex.account(2, FUND)
    ex.ok(ex.sell(m, 100_000, 3))
    ex.ok(ex.buy(a, 100_000, 3))
    ex.ok(ex.mark({BTC: 100_001}))
    mk = ex.state.markets[BTC]
    # notional 3 * 100_001 * 10 = 3_000_030: IM 150_001.5 -> 150_002, MM 90_000.9 -> 90_001
    assert margin.requirement(mk, 3, 50_000) == 150_002
    assert margin.requirement(mk, -3, 30_000) == 90_001
    eq, im, mm = ex.health(a)
    assert (im, mm) == (150_002, 90_001)
    assert eq == FUND - 1_500 + 30  # taker fee 1_500, +30 of mark-to-market
    assert margin.fee(100_001, 1, 10, 500) == 501 and margin.fee(100_001, 1, 10, 100) == 101


# -- the initial margin check on new orders ---------------------------------------------------
def test_initial_margin_boundary_on_a_new_order(ex):
    # checked at the mark, with the taker fee: 1000 lots -> fee 500_000, IM 50_000_000
    a = ex.account(1, 50_500_000)
    ex.reject(E.INSUFFICIENT_MARGIN, ex.buy, a, 99_000, 1001)  # 49_999_500 < 50_050_000
    ex.reject(E.INSUFFICIENT_MARGIN, ex.sell, a, 101_000, 1001)
    r = ex.ok(ex.buy(a, 99_000, 1000))  # 50_000_000 >= 50_000_000
    assert rested(r) == [(r.order_id, BUY, 99_000, 1000)]
    # open orders are not margined: another order of the same size is accepted too
    ex.ok(ex.sell(a, 101_000, 1000))


def test_cross_margin_counts_other_positions(ex):
    a = ex.account(1, 50_500_000)
    m = ex.account(2, FUND)
    ex.ok(ex.buy(m, 100_000, 100, instrument=ETH))
    ex.ok(ex.sell(a, 100_000, 100, instrument=ETH))  # fee 50_000; ETH IM 5_000_000
    assert ex.coll(a) == 50_450_000
    # BTC q lots: 50_450_000 - 500*q >= 5_000_000 + 50_000*q  <=>  q <= 900
    ex.reject(E.INSUFFICIENT_MARGIN, ex.buy, a, 99_000, 901)
    ex.ok(ex.buy(a, 99_000, 900))


def test_taker_stopped_by_margin_at_a_worse_fill_price(ex):
    b = ex.account(1, 50_500_000)
    m = ex.account(2, FUND)
    ex.ok(ex.sell(m, 101_000, 1000))
    # passes the check at the mark, but at 101_000: quote -1_010_000_000 vs value 1_000_000_000,
    # fee 505_000: equity 39_995_000 < IM 50_000_000 -> no fill; the GTC order does not rest
    r = ex.ok(ex.buy(b, 101_000, 1000))
    assert fills(r) == [] and closed(r) == [(r.order_id, R.INSUFFICIENT_MARGIN, 1000)]
    assert ex.depth(BTC, BUY) == [] and ex.depth(BTC, SELL) == [(101_000, 1000, 1)]
    assert ex.state.accounts[b].nonce == 1


def test_taker_margin_sees_its_earlier_fills_in_the_same_order(ex):
    b = ex.account(1, 50_500_000)
    m1, m2 = ex.account(2, FUND), ex.account(3, FUND)
    o1 = ex.ok(ex.sell(m1, 100_000, 500)).order_id
    ex.ok(ex.sell(m2, 100_100, 500))
    r = ex.ok(ex.buy(b, 100_100, 1000))
    # fill 1: 500 @ 100_000, fee 250_000 -> equity 50_250_000 >= IM 25_000_000
    # fill 2 would need: 50_500_000 - 250_000 - 250_250 (fee) - 500_000 (paid over mark)
    #   = 49_499_750 < IM 50_000_000 for 1000 lots -> matching stops
    assert fills(r) == [(100_000, 500, o1, m1)]
    assert closed(r) == [(o1, R.FILLED, 0), (r.order_id, R.INSUFFICIENT_MARGIN, 500)]
    assert ex.pos(b) == (500, -500_000_000) and ex.coll(b) == 50_250_000


def test_maker_that_cannot_afford_its_order_is_cancelled_and_matching_continues(ex):
    m1 = ex.account(1, 50_500_000)
    m2 = ex.account(2, FUND)
    b = ex.account(3, FUND)
    o1 = ex.ok(ex.sell(m1, 100_000, 1000)).order_id
    ex.ok(ex.withdraw(m1, 10_000_000))  # open orders are not margined: allowed
    o2 = ex.ok(ex.sell(m2, 100_000, 5)).order_id
    # m1 for 1000 lots: 40_500_000 - 100_000 (maker fee) = 40_400_000 < IM 50_000_000
    r = ex.ok(ex.buy(b, 100_000, 1000))
    assert closed(r) == [(o2, R.FILLED, 0), (o1, R.INSUFFICIENT_MARGIN, 1000)]
    assert fills(r) == [(100_000, 5, o2, m2)]
    assert rested(r) == [(r.order_id, BUY, 100_000, 995)]
    assert ex.pos(m1) == (0, 0) and ex.open_ids(m1) == []
    assert ex.coll(m1) == 40_500_000  # a cancelled maker pays nothing


def test_maker_check_uses_the_crossing_quantity_only(ex):
    m1 = ex.account(1, 5_050_000)
    b = ex.account(3, FUND)
    o1 = ex.ok(ex.sell(m1, 100_000, 100)).order_id  # just affordable (fee 5_000 at the mark)
    ex.ok(ex.withdraw(m1, 4_000_000))  # now affords ~20 lots
    r = ex.ok(ex.buy(b, 100_000, 10))  # 10 lots: 1_050_000 - 100 >= 500_000
    assert fills(r) == [(100_000, 10, o1, m1)]
    assert ex.state.orders[o1].remaining == 90


# -- below initial margin: only risk-reducing trades --------------------------------------------
def test_risk_reducing_trades_allowed_below_initial_margin(ex):
    a = ex.account(1, 50_500_000)
    m = ex.account(2, FUND)
    m2 = ex.account(3, FUND)
    ex.ok(ex.sell(m, 100_000, 1000))
    ex.ok(ex.buy(a, 100_000, 1000))  # fee 500_000
    assert ex.coll(a) == 50_000_000 and ex.pos(a) == (1000, -1_000_000_000)
    assert ex.health(a) == (50_000_000, 50_000_000, 30_000_000)
    ex.ok(ex.mark({BTC: 99_000}))
    # equity 50_000_000 - 10_000_000; IM = 990_000_000 * 5%; MM = 990_000_000 * 3%
    assert ex.health(a) == (40_000_000, 49_500_000, 29_700_000)
    ex.ok(ex.buy(m2, 99_000, 20))
    ex.reject(E.INSUFFICIENT_MARGIN, ex.buy, a, 98_000, 1)  # increases
    ex.reject(E.INSUFFICIENT_MARGIN, ex.sell, a, 99_000, 2000)  # flips to short 1000
    ex.reject(E.INSUFFICIENT_MARGIN, ex.withdraw, a, 1)
    r = ex.ok(ex.sell(a, 99_000, 10, tif=IOC))
    assert fills(r)[0][:2] == (99_000, 10)
    # s=1000, q=-1_000_000_000, d=-10: kept = ceil(q*990/1000) = -990_000_000,
    # realised = q + 9_900_000 - kept = -100_000; taker fee ceil(9_900_000*5e-4) = 4_950
    assert ex.coll(a) == 50_000_000 - 100_000 - 4_950 == 49_895_050
    assert ex.pos(a) == (990, -990_000_000)
    # equity 49_895_050 + 980_100_000 - 990_000_000; IM ceil(980_100_000*5%); MM ceil(*3%)
    assert ex.health(a) == (39_995_050, 49_005_000, 29_403_000)
    # a reduce-only order works as well: 5 more lots, realised -50_000, fee 2_475
    ex.ok(ex.sell(a, 99_000, 5, flags=OrderFlag.REDUCE_ONLY))
    assert ex.coll(a) == 49_895_050 - 50_000 - 2_475 and ex.pos(a) == (985, -985_000_000)


# -- fees -------------------------------------------------------------------------------------
def test_fees_round_up_per_fill_into_the_fee_pool(ex):
    a1, a2, b = ex.account(1, FUND), ex.account(2, FUND), ex.account(3, FUND)
    ex.ok(ex.sell(a1, 100_001, 1))
    ex.ok(ex.sell(a2, 100_001, 1))
    r = ex.ok(ex.buy(b, 100_001, 2))
    # each fill: notional 1_000_010 -> taker ceil(500.005) = 501, maker ceil(100.001) = 101
    f = [(e.taker_fee, e.maker_fee) for e in r.events if type(e).__name__ == "Fill"]
    assert f == [(501, 101), (501, 101)]
    assert ex.coll(b) == FUND - 1_002
    assert ex.coll(a1) == FUND - 101 and ex.coll(a2) == FUND - 101
    assert ex.state.fee_pool == 2 * (501 + 101)
    # exact when divisible: 100_000 * 1 * 10 = 1_000_000 -> 500 and 100
    ex.ok(ex.sell(a1, 100_000, 1))
    ex.ok(ex.buy(b, 100_000, 1))
    assert ex.state.fee_pool == 1_204 + 600


# -- realised P&L and flips ---------------------------------------------------------------------
def _long3(ex):
    """a long 3 for 3_000_020 (1 @ 100_000 + 2 @ 100_001), a bid of m2 at 100_500."""
    a, m, m2 = ex.account(1, FUND), ex.account(2, FUND), ex.account(3, FUND)
    ex.ok(ex.sell(m, 100_000, 1))
    ex.ok(ex.sell(m, 100_001, 2))
    ex.ok(ex.buy(a, 100_001, 3))  # taker fees 500 + ceil(1000.01) = 1_001
    assert ex.pos(a) == (3, -3_000_020) and ex.coll(a) == FUND - 1_501
    return a, m, m2


def test_realised_pnl_moves_to_collateral_on_reduction(ex):
    a, m, m2 = _long3(ex)
    ex.ok(ex.buy(m2, 100_500, 3))
    ex.ok(ex.sell(a, 100_500, 1))
    # cash +1_005_000; kept = ceil(-3_000_020 * 2 / 3) = ceil(-2_000_013.33) = -2_000_013
    # realised = -3_000_020 + 1_005_000 + 2_000_013 = 4_993 (4_993.33 rounded down)
    # taker fee ceil(1_005_000 * 5e-4) = ceil(502.5) = 503
    assert ex.pos(a) == (2, -2_000_013)
    assert ex.coll(a) == FUND - 1_501 + 4_993 - 503
    ex.ok(ex.sell(a, 100_500, 2))
    # closes: realised = -2_000_013 + 2_010_000 = 9_987; fee 1_005; position removed
    assert ex.pos(a) == (0, 0) and BTC not in ex.state.accounts[a].positions
    assert ex.coll(a) == FUND - 1_501 + 4_993 - 503 + 9_987 - 1_005
    assert 4_993 + 9_987 == 3 * 1_005_000 - 3_000_020  # all of the P&L, split across closes
    assert ex.state.markets[BTC].open_interest == 3  # m2 is long 3 now


def test_position_flip_realises_everything_and_opens_the_rest(ex):
    a, m, m2 = _long3(ex)
    assert ex.state.markets[BTC].open_interest == 3
    ex.ok(ex.buy(m2, 100_500, 5))
    ex.ok(ex.sell(a, 100_500, 5))
    # close 3: realised = -3_000_020 + 3*1_005_000 = 14_980; open short 2: quote = 2*1_005_000
    # taker fee ceil(5_025_000 * 5e-4) = ceil(2_512.5) = 2_513
    assert ex.pos(a) == (-2, 2_010_000)
    assert ex.coll(a) == FUND - 1_501 + 14_980 - 2_513
    assert ex.state.markets[BTC].open_interest == 5  # m2 long 5; a short 2; m short 3


def test_short_flip_to_long(ex):
    a, m = ex.account(1, FUND), ex.account(2, FUND)
    ex.ok(ex.buy(m, 100_000, 2))
    ex.ok(ex.sell(a, 100_000, 2))  # a short 2, quote +2_000_000
    ex.ok(ex.sell(m, 99_000, 5))
    ex.ok(ex.buy(a, 99_000, 5))
    # close 2 at 99_000: realised 2_000_000 - 1_980_000 = 20_000; open long 3: quote -2_970_000
    assert ex.pos(a) == (3, -2_970_000)
    assert ex.coll(a) == FUND - 1_000 + 20_000 - 2_475  # fees ceil(1_000.0), ceil(2_475.0)
    assert ex.state.markets[BTC].open_interest == 3


# -- withdrawals against margin -------------------------------------------------------------------
def test_withdraw_only_free_collateral_with_positions(ex):
    b = ex.account(1, 100_000_000)
    t = ex.account(2, FUND)
    ex.ok(ex.buy(b, 100_000, 1000))  # maker: fee 100_000
    ex.ok(ex.sell(t, 100_000, 1000))
    assert ex.coll(b) == 99_900_000 and ex.health(b) == (99_900_000, 50_000_000, 30_000_000)
    ex.reject(E.INSUFFICIENT_MARGIN, ex.withdraw, b, 49_900_001)
    ex.ok(ex.withdraw(b, 49_900_000))
    assert ex.health(b) == (50_000_000, 50_000_000, 30_000_000)
    ex.ok(ex.mark({BTC: 200_000}))  # unrealised +1_000_000_000: equity 1_050_000_000
    ex.reject(E.INSUFFICIENT_COLLATERAL, ex.withdraw, b, 50_000_001)  # unrealised is not withdrawable
    ex.ok(ex.withdraw(b, 50_000_000))
    assert ex.coll(b) == 0 and ex.health(b) == (1_000_000_000, 100_000_000, 60_000_000)
    assert ex.state.total_withdrawals == 100_000_000 - 100_000


def test_short_reduction_rounds_the_realised_credit_down(ex):
    a, m, m2 = ex.account(1, FUND), ex.account(2, FUND), ex.account(3, FUND)
    ex.ok(ex.buy(m, 100_000, 1))
    ex.ok(ex.buy(m, 100_001, 2))
    ex.ok(ex.sell(a, 100_000, 3))  # better bid first: 2 @ 100_001, then 1 @ 100_000
    assert ex.pos(a) == (-3, 3_000_020) and ex.coll(a) == FUND - 1_001 - 500
    ex.ok(ex.sell(m2, 99_500, 1))
    ex.ok(ex.buy(a, 99_500, 1))
    # cash -995_000; kept = ceil(3_000_020 * -2 / -3) = ceil(2_000_013.33) = 2_000_014
    # realised = 3_000_020 - 995_000 - 2_000_014 = 5_006 (5_006.67 rounded down); fee ceil(497.5) = 498
    assert ex.pos(a) == (-2, 2_000_014)
    assert ex.coll(a) == FUND - 1_501 + 5_006 - 498
