"""Expiry settlement with hand-computed numbers (SETTLE_OPTION per option, SETTLE_POSITION per
holder, CLOSE_ORDER per resting order: ``Ex3.settle_expiry`` sends them as the node does): the
index TWAP over the settlement window, intrinsic payoffs, closed positions, cancelled orders,
delisting and the netting reports.

Fixture (``issue3_helpers``): settlement window 60_000 ms, settlement fee 150 ppm of the
underlying value (capped at 1/8 of the payoff); BTC options tick 100_000 usd6 (0.1 USD), lot
1e-4 BTC, tick_value 10 usd6. Listed at T: first expiry E1 = 1_700_000_400_000, window
[E1 - 60_000, E1].
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from helpers import E, closed, events  # noqa: E402
from issue3_helpers import BTC_INDEX, BTC_U, FUND, PERIOD, TEST_PARAMS, USD, Ex3  # noqa: E402

from clearline.core.instruments import MarketStatus, OptionType  # noqa: E402
from clearline.core.ledger import ExpirySettled, Netting, OrderClosed  # noqa: E402
from clearline.core.listing import ListingRule  # noqa: E402
from clearline.core.matching import CloseReason  # noqa: E402
from clearline.core.state import State  # noqa: E402
from clearline.core.operator import settlement_steps  # noqa: E402
from clearline.core.txs import OperatorActionKind  # noqa: E402

T = 1_700_000_000_000
E1 = 1_700_000_400_000
E2 = E1 + PERIOD
C, P = OptionType.CALL, OptionType.PUT


def book_of_options(ex: Ex3):
    """W writes 5 calls 10_000 to A (at 400 ticks), 2 puts 10_500 to B (700), 3 calls 11_000
    to C (50); W keeps an ask on the 10_000 call, A a bid on the 10_500 put."""
    ex.ok(ex.mark_update(index={BTC_U: BTC_INDEX}, time=T))
    ex.ok(ex.list_options(BTC_U, time=T + 1))
    c10, p105, c11 = ex.option_id(10_000, C, E1), ex.option_id(10_500, P, E1), ex.option_id(11_000, C, E1)
    ex.ok(ex.mark_update({c10: 400, p105: 700, c11: 50}, time=T + 2))
    w, a, b, c = (ex.account(i, FUND if i == 1 else 100 * USD) for i in (1, 2, 3, 4))
    for inst, price, size, buyer in ((c10, 400, 5, a), (p105, 700, 2, b), (c11, 50, 3, c)):
        ex.ok(ex.sell(w, price, size, instrument=inst))
        ex.ok(ex.buy(buyer, price, size, instrument=inst))
    ask = ex.ok(ex.sell(w, 450, 7, instrument=c10)).order_id
    bid = ex.ok(ex.buy(a, 650, 1, instrument=p105)).order_id
    return (w, a, b, c), (c10, p105, c11), (ask, bid)


def test_settlement_at_the_twap_hand_computed():
    ex = Ex3()
    (w, a, b, c), (c10, p105, c11), (ask, bid) = book_of_options(ex)
    st = ex.state
    u = st.underlyings[BTC_U]
    coll0 = {x: ex.coll(x) for x in (w, a, b, c)}
    fees0 = st.fee_pool

    ex.ok(ex.mark_update(index={BTC_U: 10_200 * USD}, time=E1 - 100_000))  # before the window opens
    n1 = len(ex.options("BTC", E1))
    assert u.windows[E1] == [0, 0, n1]  # [acc, dt, options of the expiry not settled yet]
    ex.ok(ex.mark_update(index={BTC_U: 10_400 * USD}, time=E1 - 40_000))
    assert u.windows[E1] == [10_200 * USD * 20_000, 20_000, n1]  # 10_200 held over [E1-60_000, E1-40_000]
    ex.ok(ex.mark_update(index={BTC_U: 10_300 * USD}, time=E1 - 10_000))
    assert u.windows[E1] == [10_200 * USD * 20_000 + 10_400 * USD * 30_000, 50_000, n1]
    ex.ok(ex.mark_update(index={BTC_U: 10_900 * USD}, time=E1 + 5_000))  # after expiry: does not count
    acc = 10_200 * USD * 20_000 + 10_400 * USD * 30_000 + 10_300 * USD * 10_000
    assert u.windows[E1] == [acc, 60_000, n1]
    assert u.windows[E2][:2] == [0, 0]  # its window has not opened

    r = ex.ok(ex.settle_expiry(BTC_U, E1, time=E1 + 10_000))
    # TWAP = floor(619_000_000_000_000_000 / 60_000) = 10_316_666_666 usd6 (10_316.67 USD)
    s = 10_316_666_666
    assert acc // 60_000 == s
    e1_ids = [spec.id for spec in ex.options("BTC", E1)]
    settled = events(r, ExpirySettled)  # one per option, all at the expiry's price
    assert {(es.underlying, es.expiry, es.settlement_price) for es in settled} == {(BTC_U, E1, s)}
    assert [i for es in settled for i in es.instruments] == e1_ids
    assert e1_ids == list(range(2, 12))
    # call 10_000: intrinsic 316_666_666 usd6 -> 3_166 ticks (rounded down) -> 31_660 usd6 per lot
    # A: 5 lots -> payoff 158_300; fee: U = ceil(5 * s * 1e4 / 1e8) = ceil(5_158_333.333) = 5_158_334,
    #    ceil(5_158_334 * 150 / 1e6) = ceil(773.75) = 774 <= 158_300 // 8
    # put 10_500: intrinsic 183_333_334 -> 1_833 ticks -> 18_330 per lot; B: 2 lots -> 36_660;
    #    fee: U = ceil(2_063_333.3332) = 2_063_334 -> ceil(309.50) = 310
    # call 11_000: out of the money -> 0
    net: dict = {}  # one Netting per position settled: summed per account
    for n in events(r, Netting):
        g, v, f = net.get((n.account, n.expiry), (0, 0, 0))
        net[(n.account, n.expiry)] = (g + n.gross, v + n.net, f + n.fees)
    assert sorted({n.account for n in events(r, Netting)}) == sorted([w, a, b, c])
    assert net == {(a, E1): (158_300, 158_300, 774), (b, E1): (36_660, 36_660, 310), (c, E1): (0, 0, 0),
                   (w, E1): (158_300 + 36_660, -(158_300 + 36_660), 0)}
    # cash: each long's premium was paid at the trade (quote); closing at the intrinsic
    # price realises quote + payoff into collateral
    assert ex.coll(a) == coll0[a] - 5 * 400 * 10 + 158_300 - 774
    assert ex.coll(b) == coll0[b] - 2 * 700 * 10 + 36_660 - 310
    assert ex.coll(c) == coll0[c] - 3 * 50 * 10
    assert ex.coll(w) == coll0[w] + (5 * 400 + 2 * 700 + 3 * 50) * 10 - 158_300 - 36_660
    assert st.fee_pool == fees0 + 774 + 310
    # positions closed, orders cancelled, instruments delisted
    for x in (w, a, b, c):
        assert not any(i in st.accounts[x].positions for i in e1_ids)
    assert sorted(closed(r)) == sorted([(ask, CloseReason.SETTLED, 7), (bid, CloseReason.SETTLED, 1)])
    assert not st.accounts[w].open_orders and not st.accounts[a].open_orders
    for i in e1_ids:
        m = st.markets[i]
        assert m.status == MarketStatus.DELISTED and m.settlement_price == s and m.open_interest == 0
    assert (st.markets[c10].mark_price, st.markets[p105].mark_price, st.markets[c11].mark_price) == (3_166, 1_833, 0)
    assert E1 not in u.windows and E2 in u.windows
    ex.reject(E.INSTRUMENT_NOT_ACTIVE, ex.buy, a, 500, 1, instrument=c10)
    ex.reject(E.INSTRUMENT_NOT_ACTIVE, ex.mark_update, {c10: 500})
    ex.reject(E.NOT_DUE, ex.op, OperatorActionKind.SETTLE_OPTION, c10)  # settled once
    # options of the next expiry are untouched and still trade
    c10_e2 = ex.option_id(10_000, C, E2)
    assert ex.state.markets[c10_e2].status == MarketStatus.ACTIVE
    ex.conserved()


def test_not_expired_and_unknown():
    ex = Ex3()
    (w, a, b, c), (c10, p105, c11), _ = book_of_options(ex)
    A = OperatorActionKind
    ex.reject(E.NOT_EXPIRED, ex.op, A.SETTLE_OPTION, c10, time=E1 - 1)
    ex.reject(E.UNKNOWN_INSTRUMENT, ex.op, A.SETTLE_OPTION, 999, time=E1)
    ex.reject(E.INVALID_INSTRUMENT, ex.op, A.SETTLE_OPTION, 0, time=E1)  # a perpetual
    # nothing being paid, or not this holder's
    ex.reject(E.NOT_DUE, ex.op, A.SETTLE_POSITION, c10, a, time=E1)
    ex.ok(ex.op(A.SETTLE_OPTION, c11, time=E1))  # out of the money, 3 lots held: 6 lots to pay
    # a node that stopped here finds the unfinished payout first among the steps due
    steps = settlement_steps(ex.state, E1)
    assert steps[:2] == [(int(A.SETTLE_POSITION), c11, x) for x in sorted((c, w))]
    assert (int(A.SETTLE_OPTION), c11, 0) not in steps and (int(A.SETTLE_OPTION), c10, 0) in steps
    ex.reject(E.NOT_DUE, ex.op, A.SETTLE_POSITION, c11, a)  # A holds no c11
    ex.reject(E.UNKNOWN_ACCOUNT, ex.op, A.SETTLE_POSITION, c11, 999)
    # while c11's holders are being paid nothing else goes in
    ex.reject(E.FUNDING_IN_PROGRESS, ex.op, A.SETTLE_OPTION, c10)
    ex.reject(E.FUNDING_IN_PROGRESS, ex.buy, a, 450, 1, instrument=p105)
    ex.ok(ex.op(A.SETTLE_POSITION, c11, c))
    ex.ok(ex.op(A.SETTLE_POSITION, c11, w))
    assert ex.state.markets[c11].unpaid_lots == 0 and not ex.state.paying
    ex.reject(E.UNKNOWN_ORDER, ex.op, A.CLOSE_ORDER, 10**6)
    ex.conserved()


def test_expired_options_do_not_trade_before_settlement():
    ex = Ex3()
    (w, a, b, c), (c10, p105, c11), _ = book_of_options(ex)
    ex.reject(E.INSTRUMENT_NOT_ACTIVE, ex.buy, a, 450, 1, instrument=c10, time=E1)
    ex.reject(E.INSTRUMENT_NOT_ACTIVE, ex.sell, w, 1, 1, instrument=c11, time=E1 + 1)


def test_no_time_in_the_window_falls_back_to_the_index_and_the_fee_cap_binds():
    ex = Ex3(params=replace(TEST_PARAMS, settlement_window_ms=0))
    ex.ok(ex.mark_update(index={BTC_U: BTC_INDEX}, time=T))
    ex.ok(ex.list_options(BTC_U))
    c10 = ex.option_id(10_000, C, E1)
    p10 = ex.option_id(10_000, P, E1)
    ex.ok(ex.mark_update({c10: 10, p10: 10}))
    w, a = ex.account(1, FUND), ex.account(2, 100 * USD)
    ex.ok(ex.sell(w, 10, 10, instrument=c10))
    ex.ok(ex.buy(a, 10, 10, instrument=c10))
    ex.ok(ex.sell(w, 10, 4, instrument=p10))
    ex.ok(ex.buy(a, 10, 4, instrument=p10))
    ex.ok(ex.mark_update(index={BTC_U: 10_000 * USD + 500_000}, time=E1 - 5_000))
    coll = ex.coll(a)
    r = ex.ok(ex.settle_expiry(BTC_U, E1, time=E1 + 1))
    # an empty window (dt == 0): the settlement price is the index, 10_000.5 USD
    assert events(r, ExpirySettled)[0].settlement_price == 10_000_500_000
    # call: 500_000 usd6 -> 5 ticks -> 50 usd6 per lot, payoff 500; the fee would be
    # ceil(10_000_500 * 150 / 1e6) = 1_501 but is capped at 500 // 8 = 62. The put is out of the money.
    mine = [(n.gross, n.net, n.fees) for n in events(r, Netting) if n.account == a]  # one per position
    assert sorted(mine) == [(0, 0, 0), (500, 500, 62)]
    assert ex.coll(a) == coll + (-10 * 10 * 10 + 500 - 62) + (-4 * 10 * 10)
    ex.conserved()


def test_settlement_receipt_is_the_same_after_a_snapshot_restore():
    ex = Ex3()
    (w, a, b, c), (c10, p105, c11), (ask, bid) = book_of_options(ex)
    # more orders on the 10_000 call, so book priority order differs from order-id order
    ex.ok(ex.buy(a, 300, 2, instrument=c10))
    ex.ok(ex.sell(w, 440, 1, instrument=c10))
    ex.ok(ex.sell(w, 460, 1, instrument=c10))
    restored = Ex3(ex.genesis)
    restored.state = State.from_blob(ex.state.to_blob())
    assert restored.state.root() == ex.state.root()
    live = ex.ok(ex.settle_expiry(BTC_U, E1, time=E1 + 10_000))
    again = restored.ok(restored.settle_expiry(BTC_U, E1, time=E1 + 10_000))
    assert restored.state.root() == ex.state.root()
    assert repr(again.events) == repr(live.events)
    # orders are cancelled instrument by instrument, in order-id order
    by_inst = [(e.instrument, e.order_id) for e in events(live, OrderClosed)]
    assert by_inst == sorted(by_inst) and len(by_inst) == 5


def test_an_expiry_whose_settlement_window_has_opened_is_not_listed():
    """With a listing lead (10 s) shorter than the settlement window (60 s), an expiry could
    be listed after its window opened; the index before the listing would then be missing
    from its TWAP (it depended on when the last mark update happened). The core lists only
    expiries whose whole window is still ahead."""
    rule = ListingRule(daily=1, weekly=0, monthly=0, min_lead_ms=10_000, strikes_each_side=0,
                       compressed_period_ms=PERIOD)
    ex = Ex3(rule=rule)
    ex.ok(ex.mark_update(index={BTC_U: BTC_INDEX}, time=T))
    ex.ok(ex.mark_update(index={BTC_U: 10_500 * USD}, time=E1 - 50_000))  # E1's window is open
    r = ex.ok(ex.list_options(BTC_U, time=E1 - 30_000))  # E1 is 30 s away: more than the 10 s lead
    assert {s.expiry for s in ex.options()} == {E2}
    assert sorted(ex.state.underlyings[BTC_U].windows) == [E2]
    # E2 is listed before its window opens, so its TWAP sees the whole window
    ex.ok(ex.mark_update(index={BTC_U: 10_600 * USD}, time=E2 - 20_000))
    ex.ok(ex.settle_expiry(BTC_U, E2, time=E2 + 1))
    assert events(ex.receipts[-1], ExpirySettled)[0].settlement_price == \
        (10_500 * USD * 40_000 + 10_600 * USD * 20_000) // 60_000
    assert r.ok
