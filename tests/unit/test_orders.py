"""Order types, priority, cancels, replaces and self-trade prevention of the exchange core.

Default fixture (``tests/helpers.py``): both perpetuals have tick_value 10 usd6 and marks of
100_000 ticks, so ``notional(p, q) = p * q * 10`` usd6 and one lot at 100_000 is 1 USD.
Fees: taker 500 ppm, maker 100 ppm, each rounded up per fill.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from helpers import BTC, BUY, ETH, SELL, START_MS, E, Exchange, closed, fills, rested  # noqa: E402

from clearline.core.matching import CloseReason as R  # noqa: E402
from clearline.core.txs import CancelScope, OrderFlag, OrderType, SelfTradePrevention, TimeInForce  # noqa: E402

FUND = 10_000_000_000  # 10_000 USD
GTC, GTT, IOC, FOK = TimeInForce.GTC, TimeInForce.GTT, TimeInForce.IOC, TimeInForce.FOK
MARKET = OrderType.MARKET
POST_ONLY, REDUCE_ONLY = OrderFlag.POST_ONLY, OrderFlag.REDUCE_ONLY


@pytest.fixture
def ex() -> Exchange:
    return Exchange()


def users(ex: Exchange, n: int, amount: int = FUND) -> list[int]:
    return [ex.account(i + 1, amount) for i in range(n)]


# -- limit orders: resting, crossing, price-time priority --------------------------------------
def test_limit_orders_rest_without_crossing(ex):
    a, b = users(ex, 2)
    r1 = ex.ok(ex.sell(a, 100_100, 5))
    r2 = ex.ok(ex.sell(a, 100_200, 3))
    r3 = ex.ok(ex.buy(b, 99_900, 4))
    r4 = ex.ok(ex.buy(b, 99_950, 1))
    assert (r1.order_id, r2.order_id, r3.order_id, r4.order_id) == (1, 2, 3, 4)
    assert rested(r1) == [(1, SELL, 100_100, 5)]
    assert fills(r1) == [] and closed(r1) == []
    assert ex.depth(BTC, SELL) == [(100_100, 5, 1), (100_200, 3, 1)]  # best ask first
    assert ex.depth(BTC, BUY) == [(99_950, 1, 1), (99_900, 4, 1)]  # best bid first
    assert ex.coll(a) == FUND and ex.coll(b) == FUND and ex.state.fee_pool == 0  # no fee to rest
    assert ex.open_ids(a) == [1, 2] and ex.open_ids(b) == [3, 4]
    assert ex.state.accounts[a].nonce == 2


def test_price_time_priority_better_price_first_then_arrival(ex):
    a1, a2, a3, b = users(ex, 4)
    id1 = ex.ok(ex.sell(a1, 100_000, 2)).order_id
    id2 = ex.ok(ex.sell(a2, 100_000, 3)).order_id
    id3 = ex.ok(ex.sell(a3, 99_900, 4)).order_id  # better price, arrived last
    r = ex.ok(ex.buy(b, 100_000, 6))
    # 4 @ 99_900 (better price) then 2 @ 100_000 from the earlier of the two makers there
    assert fills(r) == [(99_900, 4, id3, a3), (100_000, 2, id1, a1)]
    assert closed(r) == [(id3, R.FILLED, 0), (id1, R.FILLED, 0)]
    assert rested(r) == []  # fully filled
    assert ex.depth(BTC, SELL) == [(100_000, 3, 1)]
    assert ex.book_ids(BTC, SELL) == [id2]
    # fill 1: notional 99_900*4*10 = 3_996_000: taker ceil(1998.0)=1998, maker ceil(399.6)=400
    # fill 2: notional 100_000*2*10 = 2_000_000: taker 1000, maker 200
    assert ex.coll(b) == FUND - 1998 - 1000
    assert ex.pos(b) == (6, -5_996_000)
    assert ex.coll(a3) == FUND - 400 and ex.pos(a3) == (-4, 3_996_000)
    assert ex.coll(a1) == FUND - 200 and ex.pos(a1) == (-2, 2_000_000)
    assert ex.coll(a2) == FUND and ex.pos(a2) == (0, 0)
    assert ex.state.fee_pool == 1998 + 400 + 1000 + 200
    assert ex.state.markets[BTC].open_interest == 6
    f = [e for e in r.events if type(e).__name__ == "Fill"]
    assert [(x.taker_fee, x.maker_fee, x.taker_side, x.taker_order, x.taker_account) for x in f] == [
        (1998, 400, BUY, r.order_id, b), (1000, 200, BUY, r.order_id, b)]


def test_fill_happens_at_the_maker_price_and_partial_maker_keeps_priority(ex):
    a1, a2, b, c = users(ex, 4)
    id1 = ex.ok(ex.sell(a1, 100_000, 5)).order_id
    id2 = ex.ok(ex.sell(a2, 100_000, 5)).order_id
    r = ex.ok(ex.buy(b, 100_500, 2))  # willing to pay more: still trades at the resting 100_000
    assert fills(r) == [(100_000, 2, id1, a1)]
    assert ex.pos(b) == (2, -2_000_000)
    assert ex.depth(BTC, SELL) == [(100_000, 8, 2)]
    o = ex.state.orders[id1]
    assert (o.size, o.remaining) == (5, 3)  # partially filled maker stays first
    assert ex.book_ids(BTC, SELL) == [id1, id2]
    r = ex.ok(ex.buy(c, 100_000, 4))
    assert fills(r) == [(100_000, 3, id1, a1), (100_000, 1, id2, a2)]
    assert closed(r) == [(id1, R.FILLED, 0)]
    assert ex.depth(BTC, SELL) == [(100_000, 4, 1)]


def test_crossing_limit_rests_its_remainder(ex):
    a, b = users(ex, 2)
    ex.ok(ex.sell(a, 100_000, 3))
    r = ex.ok(ex.buy(b, 100_100, 5))
    assert fills(r) == [(100_000, 3, 1, a)]
    assert rested(r) == [(r.order_id, BUY, 100_100, 2)]
    o = ex.state.orders[r.order_id]
    assert (o.size, o.remaining, o.price) == (5, 2, 100_100)
    assert ex.depth(BTC, BUY) == [(100_100, 2, 1)] and ex.depth(BTC, SELL) == []


def test_instruments_have_separate_books(ex):
    a, b = users(ex, 2)
    ex.ok(ex.sell(a, 100_000, 3, instrument=ETH))
    r = ex.ok(ex.buy(b, 100_000, 3, instrument=BTC))
    assert fills(r) == [] and ex.depth(BTC, BUY) == [(100_000, 3, 1)]
    assert ex.depth(ETH, SELL) == [(100_000, 3, 1)]


# -- market orders ----------------------------------------------------------------------------
def _asks(ex, maker):
    ex.ok(ex.sell(maker, 100_000, 2))
    ex.ok(ex.sell(maker, 100_100, 3))
    ex.ok(ex.sell(maker, 100_300, 4))


def test_market_order_stops_at_its_protective_bound(ex):
    m, b = users(ex, 2)
    _asks(ex, m)
    r = ex.ok(ex.buy(b, 100_200, 8, order_type=MARKET, tif=IOC))
    assert fills(r) == [(100_000, 2, 1, m), (100_100, 3, 2, m)]
    assert closed(r) == [(1, R.FILLED, 0), (2, R.FILLED, 0), (r.order_id, R.IOC_REMAINDER, 3)]
    assert ex.depth(BTC, SELL) == [(100_300, 4, 1)] and ex.depth(BTC, BUY) == []
    assert ex.pos(b) == (5, -(2_000_000 + 3_003_000))


def test_market_order_must_be_ioc_or_fok(ex):
    m, b = users(ex, 2)
    _asks(ex, m)
    ex.reject(E.INVALID_TIME_IN_FORCE, ex.buy, b, 100_200, 1, order_type=MARKET, tif=GTC)
    ex.reject(E.INVALID_TIME_IN_FORCE, ex.buy, b, 100_200, 1, order_type=MARKET, tif=GTT, expiry=START_MS * 2)


def test_market_fok_all_or_nothing(ex):
    m, b = users(ex, 2)
    _asks(ex, m)
    ex.reject(E.FOK_NOT_FILLABLE, ex.buy, b, 100_200, 6, order_type=MARKET, tif=FOK)  # only 5 within bound
    r = ex.ok(ex.buy(b, 100_200, 5, order_type=MARKET, tif=FOK))
    assert fills(r) == [(100_000, 2, 1, m), (100_100, 3, 2, m)]
    assert closed(r) == [(1, R.FILLED, 0), (2, R.FILLED, 0)]


def test_market_order_without_liquidity_is_dropped(ex):
    (b,) = users(ex, 1)
    r = ex.ok(ex.sell(b, 1, 7, order_type=MARKET, tif=IOC))
    assert fills(r) == [] and closed(r) == [(r.order_id, R.NO_LIQUIDITY, 7)]
    assert len(ex.state.books[BTC]) == 0
    assert ex.state.accounts[b].nonce == 1  # accepted: nonce consumed, order id used
    assert ex.state.next_order_id == 2


# -- post-only, IOC, FOK ---------------------------------------------------------------------------
def test_post_only(ex):
    a, b = users(ex, 2)
    ex.ok(ex.sell(a, 100_000, 2))
    ex.reject(E.POST_ONLY_WOULD_CROSS, ex.buy, b, 100_000, 1, flags=POST_ONLY)  # equal price crosses
    ex.reject(E.POST_ONLY_WOULD_CROSS, ex.buy, b, 100_500, 1, flags=POST_ONLY)
    r = ex.ok(ex.buy(b, 99_999, 1, flags=POST_ONLY))
    assert rested(r) == [(r.order_id, BUY, 99_999, 1)]
    ex.reject(E.POST_ONLY_WOULD_CROSS, ex.sell, a, 99_999, 1, flags=POST_ONLY)
    ex.reject(E.INVALID_FLAGS, ex.buy, b, 99_000, 1, flags=POST_ONLY, tif=IOC)
    ex.reject(E.INVALID_FLAGS, ex.buy, b, 99_000, 1, flags=POST_ONLY, tif=FOK)
    ex.reject(E.INVALID_FLAGS, ex.buy, b, 99_000, 1, flags=4)


def test_ioc_remainder_is_dropped(ex):
    a, b = users(ex, 2)
    ex.ok(ex.sell(a, 100_000, 2))
    r = ex.ok(ex.buy(b, 100_000, 5, tif=IOC))
    assert fills(r) == [(100_000, 2, 1, a)]
    assert closed(r) == [(1, R.FILLED, 0), (r.order_id, R.IOC_REMAINDER, 3)]
    assert rested(r) == [] and len(ex.state.books[BTC]) == 0 and ex.open_ids(b) == []


def test_fok_all_or_nothing(ex):
    a, b = users(ex, 2)
    ex.ok(ex.sell(a, 100_000, 2))
    ex.ok(ex.sell(a, 100_100, 2))
    ex.reject(E.FOK_NOT_FILLABLE, ex.buy, b, 100_100, 5, tif=FOK)
    ex.reject(E.FOK_NOT_FILLABLE, ex.buy, b, 100_000, 3, tif=FOK)  # 3rd lot is beyond the limit
    r = ex.ok(ex.buy(b, 100_100, 4, tif=FOK))
    assert fills(r) == [(100_000, 2, 1, a), (100_100, 2, 2, a)]
    assert closed(r) == [(1, R.FILLED, 0), (2, R.FILLED, 0)]
    assert ex.pos(b) == (4, -(2_000_000 + 2_002_000))


# -- reduce-only -------------------------------------------------------------------------------------
def _long(ex, who, maker, size, price=100_000):
    ex.ok(ex.sell(maker, price, size))
    ex.ok(ex.buy(who, price, size))
    assert ex.pos(who)[0] >= size


def test_reduce_only_rejected_when_it_would_increase(ex):
    a, b = users(ex, 2)
    ex.reject(E.REDUCE_ONLY_WOULD_INCREASE, ex.sell, a, 100_000, 1, flags=REDUCE_ONLY)  # flat
    ex.reject(E.REDUCE_ONLY_WOULD_INCREASE, ex.buy, a, 100_000, 1, flags=REDUCE_ONLY)
    _long(ex, a, b, 3)
    ex.reject(E.REDUCE_ONLY_WOULD_INCREASE, ex.buy, a, 100_000, 1, flags=REDUCE_ONLY)  # long: buy increases
    ex.reject(E.REDUCE_ONLY_WOULD_INCREASE, ex.sell, b, 100_000, 1, flags=REDUCE_ONLY)  # short: sell increases


def test_reduce_only_taker_is_capped_at_the_position(ex):
    a, b, c = users(ex, 3)
    _long(ex, a, b, 3)
    cid = ex.ok(ex.buy(c, 100_000, 10)).order_id
    r = ex.ok(ex.sell(a, 100_000, 10, flags=REDUCE_ONLY))  # GTC, but only 3 may trade
    assert fills(r) == [(100_000, 3, cid, c)]
    assert closed(r) == [(r.order_id, R.REDUCE_ONLY, 7)]
    assert ex.pos(a) == (0, 0) and a not in [o.account for o in ex.state.orders.values()]
    assert ex.depth(BTC, BUY) == [(100_000, 7, 1)]


def test_reduce_only_cap_inside_a_makers_order(ex):
    a, b, c, d = users(ex, 4)
    _long(ex, a, b, 3)
    oc = ex.ok(ex.buy(c, 100_000, 2)).order_id
    od = ex.ok(ex.buy(d, 100_000, 5)).order_id
    r = ex.ok(ex.sell(a, 100_000, 10, flags=REDUCE_ONLY))
    # 2 from c, then only 1 of d's 5 may still reduce a's long: d keeps 4, the rest is dropped
    assert fills(r) == [(100_000, 2, oc, c), (100_000, 1, od, d)]
    assert closed(r) == [(oc, R.FILLED, 0), (r.order_id, R.REDUCE_ONLY, 7)]
    assert ex.depth(BTC, BUY) == [(100_000, 4, 1)] and ex.pos(a) == (0, 0)


def test_resting_reduce_only_maker_is_capped(ex):
    a, b, c = users(ex, 3)
    _long(ex, a, b, 3)
    oid = ex.ok(ex.sell(a, 100_100, 5, flags=REDUCE_ONLY)).order_id  # rests whole: capped when it trades
    r = ex.ok(ex.buy(c, 100_100, 5))
    assert fills(r) == [(100_100, 3, oid, a)]
    # the maker's remaining 2 lots can no longer reduce anything: cancelled
    assert closed(r) == [(oid, R.REDUCE_ONLY, 2)]
    assert rested(r) == [(r.order_id, BUY, 100_100, 2)]
    assert ex.pos(a) == (0, 0)
    assert ex.depth(BTC, SELL) == [] and ex.depth(BTC, BUY) == [(100_100, 2, 1)]


def test_resting_reduce_only_maker_is_cancelled_when_the_position_is_gone(ex):
    a, b, c, d = users(ex, 4)
    _long(ex, a, b, 3)
    ro = ex.ok(ex.sell(a, 100_200, 3, flags=REDUCE_ONLY)).order_id
    nxt = ex.ok(ex.sell(d, 100_200, 3)).order_id
    ex.ok(ex.buy(c, 100_000, 3))
    ex.ok(ex.sell(a, 100_000, 3, tif=IOC))  # a closes its long elsewhere
    assert ex.pos(a) == (0, 0)
    r = ex.ok(ex.buy(c, 100_200, 2))
    assert closed(r)[0] == (ro, R.REDUCE_ONLY, 3)
    assert fills(r) == [(100_200, 2, nxt, d)]  # matching continued with the next maker
    assert ex.book_ids(BTC, SELL) == [nxt]


# -- GTT / expiry ------------------------------------------------------------------------------------
def test_orders_with_expiry_not_after_time_are_rejected(ex):
    (a,) = users(ex, 1)
    t = ex.time + 10
    ex.reject(E.ORDER_EXPIRED, ex.buy, a, 99_000, 1, tif=GTT, expiry=t, time=t)
    ex.reject(E.ORDER_EXPIRED, ex.buy, a, 99_000, 1, tif=GTT, expiry=t - 1, time=t)
    ex.reject(E.ORDER_EXPIRED, ex.buy, a, 99_000, 1, tif=GTC, expiry=t, time=t)  # enforced whenever set
    ex.reject(E.INVALID_TIME_IN_FORCE, ex.buy, a, 99_000, 1, tif=GTT, expiry=0, time=t)
    r = ex.ok(ex.buy(a, 99_000, 1, tif=GTT, expiry=t + 1, time=t))
    assert rested(r) == [(r.order_id, BUY, 99_000, 1)]


def test_expired_resting_orders_are_cancelled_when_met(ex):
    a1, a2, a3, b = users(ex, 4)
    t0 = ex.time
    e1 = ex.ok(ex.sell(a1, 100_000, 5, tif=GTT, expiry=t0 + 100)).order_id
    live = ex.ok(ex.sell(a2, 100_000, 2)).order_id
    far = ex.ok(ex.sell(a3, 101_000, 1, tif=GTT, expiry=t0 + 100)).order_id  # expired, never met
    r = ex.ok(ex.buy(b, 100_000, 1, time=t0 + 100))  # time == expiry: expired
    assert closed(r) == [(e1, R.EXPIRED, 5)]
    assert fills(r) == [(100_000, 1, live, a2)]
    assert ex.book_ids(BTC, SELL) == [live, far]  # the unmet expired order is still there
    assert ex.depth(BTC, SELL) == [(100_000, 1, 1), (101_000, 1, 1)]
    assert ex.open_ids(a1) == []


def test_expired_order_ahead_in_the_book_before_expiry_trades(ex):
    a, b = users(ex, 2)
    t0 = ex.time
    oid = ex.ok(ex.sell(a, 100_000, 5, tif=GTT, expiry=t0 + 100)).order_id
    r = ex.ok(ex.buy(b, 100_000, 2, time=t0 + 99))
    assert fills(r) == [(100_000, 2, oid, a)]


# -- client ids, cancels --------------------------------------------------------------------------------
def test_client_ids(ex):
    a, b = users(ex, 2)
    oid = ex.ok(ex.buy(a, 99_000, 1, client_id=7)).order_id
    ex.reject(E.DUPLICATE_CLIENT_ID, ex.buy, a, 98_000, 1, client_id=7)
    ex.reject(E.DUPLICATE_CLIENT_ID, ex.sell, a, 101_000, 1, client_id=7, instrument=ETH)
    ex.ok(ex.buy(b, 99_000, 1, client_id=7))  # another account may use the same id
    ex.reject(E.UNKNOWN_ORDER, ex.cancel, a, client_id=8)
    ex.reject(E.UNKNOWN_ORDER, ex.cancel, a, client_id=0, scope=CancelScope.BY_CLIENT_ID)
    r = ex.ok(ex.cancel(a, client_id=7))
    assert closed(r) == [(oid, R.USER_CANCEL, 1)]
    assert ex.open_ids(a) == [] and ex.state.accounts[a].client_ids == {}
    oid2 = ex.ok(ex.buy(a, 98_000, 1, client_id=7)).order_id  # reusable once closed
    assert ex.state.accounts[a].client_ids == {7: oid2}


def test_client_id_is_freed_when_the_order_fills(ex):
    a, b = users(ex, 2)
    ex.ok(ex.sell(a, 100_000, 1, client_id=9))
    ex.ok(ex.buy(b, 100_000, 1))
    assert ex.state.accounts[a].client_ids == {}
    ex.ok(ex.sell(a, 100_000, 1, client_id=9))


def test_client_id_of_a_non_resting_order_is_not_kept(ex):
    a, b = users(ex, 2)
    ex.ok(ex.sell(b, 100_000, 1))
    ex.ok(ex.buy(a, 100_000, 3, tif=IOC, client_id=5))
    assert ex.state.accounts[a].client_ids == {}
    ex.ok(ex.buy(a, 99_000, 3, client_id=5))


def test_cancel_by_id_and_ownership(ex):
    a, b = users(ex, 2)
    oid = ex.ok(ex.buy(a, 99_000, 4)).order_id
    ex.reject(E.NOT_ORDER_OWNER, ex.cancel, b, order_id=oid)
    ex.reject(E.UNKNOWN_ORDER, ex.cancel, a, order_id=oid + 1)
    r = ex.ok(ex.cancel(a, order_id=oid))
    assert closed(r) == [(oid, R.USER_CANCEL, 4)]
    assert len(ex.state.books[BTC]) == 0 and ex.state.orders == {}
    ex.reject(E.UNKNOWN_ORDER, ex.cancel, a, order_id=oid)  # already gone


def test_cancel_after_partial_fill_reports_the_unfilled_part(ex):
    a, b = users(ex, 2)
    oid = ex.ok(ex.buy(a, 100_000, 4)).order_id
    ex.ok(ex.sell(b, 100_000, 1))
    r = ex.ok(ex.cancel(a, order_id=oid))
    assert closed(r) == [(oid, R.USER_CANCEL, 3)]


def test_cancel_all_and_all_in_instrument(ex):
    a, b = users(ex, 2)
    a1 = ex.ok(ex.buy(a, 99_000, 1)).order_id
    a2 = ex.ok(ex.sell(a, 101_000, 2, instrument=ETH)).order_id
    a3 = ex.ok(ex.sell(a, 101_000, 3)).order_id
    b1 = ex.ok(ex.buy(b, 99_000, 1)).order_id
    b2 = ex.ok(ex.buy(b, 98_000, 1, instrument=ETH)).order_id
    r = ex.ok(ex.cancel(a, scope=CancelScope.ALL_IN_INSTRUMENT, instrument=BTC))
    assert closed(r) == [(a1, R.USER_CANCEL, 1), (a3, R.USER_CANCEL, 3)]
    assert ex.open_ids(a) == [a2]
    assert ex.book_ids(BTC, BUY) == [b1] and ex.depth(BTC, SELL) == []
    ex.reject(E.UNKNOWN_INSTRUMENT, ex.cancel, a, scope=CancelScope.ALL_IN_INSTRUMENT, instrument=9)
    a4 = ex.ok(ex.buy(a, 97_000, 1, instrument=BTC)).order_id
    r = ex.ok(ex.cancel(a, scope=CancelScope.ALL))
    assert closed(r) == [(a2, R.USER_CANCEL, 2), (a4, R.USER_CANCEL, 1)]  # ascending order ids
    assert ex.open_ids(a) == [] and ex.open_ids(b) == [b1, b2]
    r = ex.ok(ex.cancel(a, scope=CancelScope.ALL))  # nothing open: accepted, nonce consumed
    assert closed(r) == []
    ex.reject(E.INVALID_CANCEL_SCOPE, ex.cancel, a, scope=4)


# -- cancel / replace ------------------------------------------------------------------------------------
def test_replace_smaller_same_price_keeps_id_and_priority(ex):
    a1, a2, b = users(ex, 3)
    id1 = ex.ok(ex.sell(a1, 100_000, 5)).order_id
    id2 = ex.ok(ex.sell(a2, 100_000, 5)).order_id
    r = ex.ok(ex.replace(a1, id1, 100_000, 3))
    assert r.order_id == id1 and rested(r) == [(id1, SELL, 100_000, 3)] and closed(r) == []
    assert ex.book_ids(BTC, SELL) == [id1, id2]
    assert ex.depth(BTC, SELL) == [(100_000, 8, 2)]
    assert ex.state.next_order_id == 3
    r = ex.ok(ex.buy(b, 100_000, 4))
    assert fills(r) == [(100_000, 3, id1, a1), (100_000, 1, id2, a2)]


def test_replace_after_partial_fill_sets_the_new_remaining(ex):
    a, b = users(ex, 2)
    oid = ex.ok(ex.sell(a, 100_000, 10)).order_id
    ex.ok(ex.buy(b, 100_000, 4))  # remaining 6 of 10
    r = ex.ok(ex.replace(a, oid, 100_000, 2))
    o = ex.state.orders[oid]
    assert r.order_id == oid and (o.size, o.remaining) == (6, 2)  # 4 filled + 2 remaining


@pytest.mark.parametrize("price,size", [(100_100, 5), (99_900, 5), (100_000, 6), (100_000, 5)])
def test_replace_price_change_or_no_decrease_gives_a_new_id_and_loses_priority(ex, price, size):
    a1, a2 = users(ex, 2)
    id1 = ex.ok(ex.sell(a1, 100_000, 5, client_id=42)).order_id
    id2 = ex.ok(ex.sell(a2, 100_000, 5)).order_id
    r = ex.ok(ex.replace(a1, id1, price, size))
    new = r.order_id
    assert new == 3
    assert closed(r) == [(id1, R.REPLACED, 5)]
    assert rested(r) == [(new, SELL, price, size)]
    assert id1 not in ex.state.orders and ex.open_ids(a1) == [new]
    if price == 100_000:
        assert ex.book_ids(BTC, SELL) == [id2, new]  # behind the other maker now
    elif price < 100_000:
        assert ex.book_ids(BTC, SELL) == [new, id2]  # better price still goes first
    else:
        assert ex.book_ids(BTC, SELL) == [id2, new]
    assert ex.state.accounts[a1].client_ids == {42: new}  # client id moves with it
    r = ex.ok(ex.cancel(a1, client_id=42))
    assert closed(r) == [(new, R.USER_CANCEL, size)]


def test_replace_that_crosses_trades_and_rests_the_rest(ex):
    a, b = users(ex, 2)
    ex.ok(ex.sell(a, 100_000, 2))
    oid = ex.ok(ex.buy(b, 99_000, 5)).order_id
    r = ex.ok(ex.replace(b, oid, 100_000, 5))
    assert closed(r) == [(oid, R.REPLACED, 5), (1, R.FILLED, 0)]
    assert fills(r) == [(100_000, 2, 1, a)]
    assert rested(r) == [(r.order_id, BUY, 100_000, 3)]


def test_failing_replace_leaves_the_original_untouched(ex):
    a, b = users(ex, 2)
    ex.ok(ex.sell(a, 100_000, 2))
    oid = ex.ok(ex.buy(b, 99_000, 5, flags=POST_ONLY, client_id=3)).order_id
    ex.reject(E.POST_ONLY_WOULD_CROSS, ex.replace, b, oid, 100_000, 5)
    ex.reject(E.INVALID_PRICE, ex.replace, b, oid, 0, 5)
    ex.reject(E.INVALID_SIZE, ex.replace, b, oid, 99_000, 0)
    ex.reject(E.UNKNOWN_ORDER, ex.replace, b, oid + 100, 99_000, 1)
    ex.reject(E.UNKNOWN_ORDER, ex.replace, a, oid, 99_000, 1)  # not a's order
    ex.reject(E.INSUFFICIENT_MARGIN, ex.replace, b, oid, 99_000, 10**9)  # far beyond equity
    assert ex.book_ids(BTC, BUY) == [oid]
    assert ex.state.accounts[b].client_ids == {3: oid}


def test_replace_of_an_expired_order_is_rejected(ex):
    a, _ = users(ex, 2)
    t0 = ex.time
    oid = ex.ok(ex.buy(a, 99_000, 5, tif=GTT, expiry=t0 + 10)).order_id
    ex.reject(E.ORDER_EXPIRED, ex.replace, a, oid, 99_000, 4, time=t0 + 10)
    ex.reject(E.ORDER_EXPIRED, ex.replace, a, oid, 98_000, 4, time=t0 + 11)
    assert ex.book_ids(BTC, BUY) == [oid]


def test_reduce_only_replace_when_the_position_is_gone(ex):
    a, b, c = users(ex, 3)
    _long(ex, a, b, 3)
    oid = ex.ok(ex.sell(a, 100_500, 3, flags=REDUCE_ONLY)).order_id
    ex.ok(ex.buy(c, 100_000, 3))
    ex.ok(ex.sell(a, 100_000, 3, tif=IOC))
    ex.reject(E.REDUCE_ONLY_WOULD_INCREASE, ex.replace, a, oid, 100_400, 3)
    r = ex.ok(ex.replace(a, oid, 100_500, 1))  # same price, smaller: allowed (only shrinks)
    assert r.order_id == oid


# -- self-trade prevention (two subaccounts of one owner) -------------------------------------------
@pytest.fixture
def stp_setup(ex):
    sub0 = ex.account(1, FUND, subaccount=0)
    sub1 = ex.account(1, FUND, subaccount=1)
    x = ex.account(2, FUND)
    y = ex.account(3, FUND)
    better = ex.ok(ex.sell(x, 99_900, 3)).order_id  # 1
    own = ex.ok(ex.sell(sub0, 100_000, 2)).order_id  # 2, same owner as sub1
    after = ex.ok(ex.sell(y, 100_000, 2)).order_id  # 3
    return ex, sub0, sub1, x, y, better, own, after


def test_stp_cancel_resting(stp_setup):
    ex, sub0, sub1, x, y, better, own, after = stp_setup
    r = ex.ok(ex.buy(sub1, 100_000, 7, stp=SelfTradePrevention.CANCEL_RESTING))
    assert fills(r) == [(99_900, 3, better, x), (100_000, 2, after, y)]
    assert closed(r) == [(better, R.FILLED, 0), (after, R.FILLED, 0), (own, R.SELF_TRADE, 2)]
    assert rested(r) == [(r.order_id, BUY, 100_000, 2)]  # the rest still rests
    assert ex.pos(sub0) == (0, 0) and ex.pos(sub1) == (5, -(2_997_000 + 2_000_000))
    assert ex.depth(BTC, SELL) == []


def test_stp_cancel_incoming(stp_setup):
    ex, sub0, sub1, x, y, better, own, after = stp_setup
    r = ex.ok(ex.buy(sub1, 100_000, 7, stp=SelfTradePrevention.CANCEL_INCOMING))
    assert fills(r) == [(99_900, 3, better, x)]
    assert closed(r) == [(better, R.FILLED, 0), (r.order_id, R.SELF_TRADE, 4)]
    assert ex.book_ids(BTC, SELL) == [own, after] and ex.depth(BTC, BUY) == []


def test_stp_cancel_both(stp_setup):
    ex, sub0, sub1, x, y, better, own, after = stp_setup
    r = ex.ok(ex.buy(sub1, 100_000, 7, stp=SelfTradePrevention.CANCEL_BOTH))
    assert fills(r) == [(99_900, 3, better, x)]
    assert closed(r) == [(better, R.FILLED, 0), (own, R.SELF_TRADE, 2), (r.order_id, R.SELF_TRADE, 4)]
    assert ex.book_ids(BTC, SELL) == [after] and ex.depth(BTC, BUY) == []


def test_stp_uses_the_incoming_orders_mode(ex):
    sub0 = ex.account(1, FUND, subaccount=0)
    sub1 = ex.account(1, FUND, subaccount=1)
    y = ex.account(3, FUND)
    own = ex.ok(ex.sell(sub0, 100_000, 2, stp=SelfTradePrevention.CANCEL_INCOMING)).order_id
    other = ex.ok(ex.sell(y, 100_000, 2)).order_id
    # the resting order's own mode is irrelevant: the incoming CANCEL_RESTING cancels it
    r = ex.ok(ex.buy(sub1, 100_000, 1, stp=SelfTradePrevention.CANCEL_RESTING, tif=IOC))
    assert closed(r) == [(own, R.SELF_TRADE, 2)] and fills(r) == [(100_000, 1, other, y)]
    # and STP also applies between the two subaccounts the other way round
    mine = ex.ok(ex.buy(sub1, 99_000, 2)).order_id
    r = ex.ok(ex.sell(sub0, 99_000, 1, stp=SelfTradePrevention.CANCEL_INCOMING))
    assert closed(r) == [(r.order_id, R.SELF_TRADE, 1)] and fills(r) == []
    assert ex.book_ids(BTC, BUY) == [mine]


def test_stp_fok_that_cannot_fill_changes_nothing(stp_setup):
    ex, sub0, sub1, *_ = stp_setup
    ex.reject(E.FOK_NOT_FILLABLE, ex.buy, sub1, 100_000, 7, tif=FOK, stp=SelfTradePrevention.CANCEL_RESTING)
    ex.reject(E.INVALID_STP_MODE, ex.buy, sub1, 100_000, 1, stp=3)


def test_no_self_trade_between_different_owners(ex):
    a, b = users(ex, 2)
    oid = ex.ok(ex.sell(a, 100_000, 1)).order_id
    r = ex.ok(ex.buy(b, 100_000, 1, stp=SelfTradePrevention.CANCEL_BOTH))
    assert fills(r) == [(100_000, 1, oid, a)]


# -- shape validation ----------------------------------------------------------------------------------
def test_order_shape_rejections(ex):
    (a,) = users(ex, 1)
    ex.reject(E.INVALID_PRICE, ex.buy, a, 0, 1)
    ex.reject(E.INVALID_SIZE, ex.buy, a, 100_000, 0)
    ex.reject(E.MALFORMED, ex.order, a, 2, 100_000, 1)
    ex.reject(E.INVALID_ORDER_TYPE, ex.buy, a, 100_000, 1, order_type=2)
    ex.reject(E.INVALID_TIME_IN_FORCE, ex.buy, a, 100_000, 1, tif=4)
    ex.reject(E.UNKNOWN_INSTRUMENT, ex.buy, a, 100_000, 1, instrument=7)


def test_no_mark_no_trading():
    ex = Exchange(marks=())
    a = ex.account(1, FUND)
    ex.reject(E.NO_MARK_PRICE, ex.buy, a, 100_000, 1)
    ex.ok(ex.mark({BTC: 100_000}))
    ex.ok(ex.buy(a, 100_000, 1))
    ex.reject(E.NO_MARK_PRICE, ex.buy, a, 100_000, 1, instrument=ETH)


def test_halted_market_takes_no_orders_but_allows_cancels(ex):
    from clearline.core.instruments import MarketStatus
    (a,) = users(ex, 1)
    oid = ex.ok(ex.buy(a, 99_000, 1)).order_id
    ex.state.markets[BTC].status = MarketStatus.HALTED
    ex.state.dirty_markets.add(BTC)
    ex.reject(E.INSTRUMENT_NOT_ACTIVE, ex.buy, a, 99_000, 1)
    ex.reject(E.INSTRUMENT_NOT_ACTIVE, ex.replace, a, oid, 98_000, 1)
    ex.ok(ex.cancel(a, order_id=oid))


# -- position count limit ----------------------------------------------------------------------------
def _many_markets(n: int) -> Exchange:
    from dataclasses import replace as dc_replace

    from helpers import CHAIN_ID, CONTRACT, MARK, OPERATOR

    from clearline.core.instruments import default_perpetuals
    from clearline.core.state import Genesis
    base = default_perpetuals()[0]
    specs = tuple(dc_replace(base, id=i, symbol=f"P{i}") for i in range(n))
    return Exchange(genesis=Genesis(CHAIN_ID, CONTRACT, OPERATOR, specs, (MARK,) * n))


def test_position_limit_for_takers():
    from clearline.core.state import MAX_POSITIONS
    ex = _many_markets(MAX_POSITIONS + 1)
    a, m, n = ex.account(1, FUND), ex.account(2, FUND), ex.account(3, FUND)
    for i in range(MAX_POSITIONS):
        ex.ok(ex.sell(m, 100_000, 1, instrument=i))
        ex.ok(ex.buy(a, 100_000, 1, instrument=i))
    ex.reject(E.TOO_MANY_POSITIONS, ex.sell, m, 100_000, 1, instrument=MAX_POSITIONS)  # resting too
    ex.ok(ex.sell(n, 100_000, 1, instrument=MAX_POSITIONS))
    ex.reject(E.TOO_MANY_POSITIONS, ex.buy, a, 100_000, 1, instrument=MAX_POSITIONS)
    ex.ok(ex.buy(m, 100_000, 1, instrument=0, tif=IOC))  # m closes one position...
    ex.ok(ex.sell(a, 100_000, 1, instrument=0))  # ...a rests a sell there, and m takes it
    ex.ok(ex.buy(m, 100_000, 1, instrument=0, tif=IOC))
    assert len(ex.state.accounts[a].positions) == MAX_POSITIONS - 1
    ex.ok(ex.buy(a, 100_000, 1, instrument=MAX_POSITIONS))  # room again


def test_position_limit_for_makers():
    """A maker that rested orders in more instruments than it may hold positions in, while it
    held none: the fill that would open one position too many cancels that maker order (its
    gate admits 0) and matching goes on with the next maker."""
    from clearline.core.state import MAX_POSITIONS
    ex = _many_markets(MAX_POSITIONS + 1)
    m = ex.account(1, FUND)
    t0, t1, t2 = ex.account(2, FUND), ex.account(3, FUND), ex.account(4, FUND)
    oids = [ex.ok(ex.sell(m, 100_000, 1, instrument=i)).order_id for i in range(MAX_POSITIONS + 1)]
    other = ex.ok(ex.sell(t1, 100_000, 1, instrument=MAX_POSITIONS)).order_id
    for i in range(MAX_POSITIONS):
        ex.ok(ex.buy(t0 if i < 16 else t1, 100_000, 1, instrument=i))
    assert len(ex.state.accounts[m].positions) == MAX_POSITIONS
    r = ex.ok(ex.buy(t2, 100_000, 1, instrument=MAX_POSITIONS))
    assert closed(r) == [(other, R.FILLED, 0), (oids[-1], R.INSUFFICIENT_MARGIN, 1)]
    assert fills(r) == [(100_000, 1, other, t1)]
    assert len(ex.state.accounts[m].positions) == MAX_POSITIONS


def test_an_order_sweeping_more_makers_than_the_bound_is_closed_not_rested(ex):
    """MAX_MAKERS_PER_ORDER resting orders filled, then the rest of a GTC order is closed with
    MAKER_LIMIT (resting it would cross the book), the makers beyond the bound untouched."""
    from clearline.core.matching import MAX_MAKERS_PER_ORDER as N

    a, b = users(ex, 2)
    ids = [ex.ok(ex.sell(a, 100_000 + i, 1)).order_id for i in range(N + 2)]
    r = ex.ok(ex.buy(b, 100_000 + N + 5, N + 2))
    assert [f[2] for f in fills(r)] == ids[:N]
    assert closed(r)[-1] == (r.order_id, R.MAKER_LIMIT, 2) and rested(r) == []
    assert ex.book_ids(BTC, SELL) == ids[N:] and ex.book_ids(BTC, BUY) == []
    assert ex.pos(b)[0] == N and ex.state.markets[BTC].open_interest == N
    ex.state.check_invariants()


def test_book_links_survive_snapshots_and_old_snapshots_still_load(ex):
    """The committed links follow from the order a snapshot lists the orders in, so a restored
    state has the same root; a snapshot from before orders were keyed by id (an eighth scalar,
    a slot per order) loads to the same state."""
    import json

    from clearline.core.state import State

    a, b = users(ex, 2)
    for i, price in enumerate((100_100, 100_000, 100_100, 100_200, 100_000)):
        ex.ok(ex.sell(a if i % 2 else b, price, 1 + i))
    for price in (99_900, 99_950, 99_900):
        ex.ok(ex.buy(a, price, 2))
    mid = ex.book_ids(BTC, SELL)[1]
    ex.ok(ex.cancel(ex.state.orders[mid].account, order_id=mid))  # a middle one: its predecessor relinks
    st = ex.state
    st.check_invariants()
    root = st.root()
    m = st.markets[BTC]
    assert (m.bid_head, m.ask_head) == (ex.book_ids(BTC, BUY)[0], ex.book_ids(BTC, SELL)[0])
    copy = State.from_blob(st.to_blob())
    copy.check_invariants()
    assert copy.root() == root
    d = json.loads(st.to_blob())
    d["scalars"].append(123)  # the old next-slot scalar
    for k, o in enumerate(d["orders"]):
        o.append(k)  # an old slot
    old = State.from_blob(json.dumps(d).encode())
    assert old.root() == root


def test_an_order_past_the_last_order_id_is_refused(ex):
    """Order ids are the orders tree's indices (depth 48): the last one is used, then every new
    order is refused whole, a typed rejection that changes nothing."""
    from clearline.core.state import MAX_ORDER_ID

    a, b = users(ex, 2)
    ex.state.next_order_id = MAX_ORDER_ID
    r = ex.ok(ex.sell(a, 100_100, 1))
    assert r.order_id == MAX_ORDER_ID and ex.book_ids(BTC, SELL) == [MAX_ORDER_ID]
    ex.reject(E.ORDER_IDS_EXHAUSTED, ex.buy, b, 100_100, 1)  # root, snapshot and nonces unchanged
    assert ex.book_ids(BTC, SELL) == [MAX_ORDER_ID]
