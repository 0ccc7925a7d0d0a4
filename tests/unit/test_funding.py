"""Perpetual funding with hand-computed numbers: FUNDING_TICK timing, the premium index from
impact bid/ask against the index, the rate formula, exact per-position payments.

Fixture (``issue3_helpers``): funding interval 60_000 ms sampled every 20_000 ms (three samples
per interval, the last one at the interval end), interest 12 ppm per interval, clamp 50 ppm,
cap 1_000 ppm, impact notional 5 USD (5_000_000 usd6). BTC-PERP: tick_value 10 usd6, so one
lot at p ticks is worth p * 10 usd6; the BTC index 10_000 USD is exactly 100_000 ticks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from helpers import BTC, ETH, E, events  # noqa: E402
from issue3_helpers import FUNDING_SAMPLE, BTC_INDEX, BTC_U, ETH_INDEX, ETH_U, FUND, Ex3  # noqa: E402

from clearline.core.book import BUY, SELL  # noqa: E402
from clearline.core.funding import average, funding_payment, funding_rate_ppm, impact_price, premium_ppm  # noqa: E402
from clearline.core.ledger import FundingSampled, FundingSettled  # noqa: E402
from clearline.core.state import State  # noqa: E402

T0 = 1_700_000_040_000  # a multiple of the 60_000 ms interval
assert T0 % 60_000 == 0


def setup_positions(ex: Ex3) -> tuple[int, int, int, int]:
    """Index 10_000 USD; A long 7, B short 3, C short 4 lots of BTC-PERP at 100_000; MK a maker
    with an empty position. Returns (A, B, C, MK)."""
    ex.ok(ex.mark_update(index={BTC_U: BTC_INDEX, ETH_U: ETH_INDEX}, time=T0 - 10_000))
    a, b, c, mk = (ex.account(i, FUND) for i in (1, 2, 3, 4))
    ex.ok(ex.sell(b, 100_000, 3))
    ex.ok(ex.sell(c, 100_000, 4))
    ex.ok(ex.buy(a, 100_000, 7))
    assert ex.pos(a) == (7, -7_000_000) and ex.pos(b) == (-3, 3_000_000) and ex.pos(c) == (-4, 4_000_000)
    return a, b, c, mk


def quote_book(ex: Ex3, mk: int) -> dict[str, int]:
    """bids 100_050 x 3, 100_020 x 10; asks 100_080 x 2, 100_100 x 10."""
    ids = {}
    for name, side, price, size in (("b1", BUY, 100_050, 3), ("b2", BUY, 100_020, 10),
                                    ("a1", SELL, 100_080, 2), ("a2", SELL, 100_100, 10)):
        ids[name] = ex.ok(ex.order(mk, side, price, size)).order_id
    return ids


# -- pure formulas ----------------------------------------------------------------------------------
@pytest.mark.parametrize("premium, rate", [
    (0, 12),  # no premium: the interest component
    (30, 12),  # |I - P| <= clamp: rate = I
    (62, 12),  # I - P = -50: still inside the clamp
    (63, 13),  # I - P = -51 -> -50: rate = P - 50
    (-100, -50),  # I - P = 112 -> +50
    (2_000, 1_000),  # 1_950 capped
    (-5_000, -1_000),  # -4_950 capped
])
def test_rate_formula(premium, rate):
    assert funding_rate_ppm(premium, 12, 50, 1_000) == rate


def test_average_rounds_toward_zero():
    assert average(0, 0) == 0
    assert average(7, 2) == 3
    assert average(-7, 2) == -3


def test_payment_rounds_against_the_holder():
    # 7 lots at 100_003 ticks, tick value 10, rate 210 ppm: 7_000_210 * 210 / 1e6 = 1_470.0441
    assert funding_payment(7, 100_003, 10, 210) == 1_471  # the payer rounds up
    assert funding_payment(-3, 100_003, 10, 210) == -630  # -630.0189: the receiver gets the floor
    assert funding_payment(-4, 100_003, 10, 210) == -840
    assert funding_payment(7, 100_003, 10, 0) == 0


def test_impact_prices_and_premium_from_a_hand_built_book():
    ex = Ex3()
    a, b, c, mk = setup_positions(ex)
    quote_book(ex, mk)
    book = ex.state.books[BTC]
    # selling 5_000_000 usd6: 3 lots at 100_050 (3_001_500), then ceil(1_998_500 / 1_000_200) = 2
    # lots at 100_020 -> floor((3 * 100_050 + 2 * 100_020) / 5) = floor(100_038.0)
    assert impact_price(book, SELL, 5_000_000, 10) == 100_038
    # buying: 2 lots at 100_080 (2_001_600), then ceil(2_998_400 / 1_001_000) = 3 lots at 100_100
    # -> ceil((2 * 100_080 + 3 * 100_100) / 5) = ceil(100_092.0)
    assert impact_price(book, BUY, 5_000_000, 10) == 100_092
    assert impact_price(book, BUY, 20_000_000, 10) is None  # 12 lots (12.01 USD) are not enough
    # premium = (max(0, 100_038 - 100_000) - max(0, 100_000 - 100_092)) / 100_000 = 380 ppm
    assert premium_ppm(book, 100_000, 5_000_000, 10) == 380
    assert premium_ppm(book, 100_060, 5_000_000, 10) == 0  # index inside [impact bid, impact ask]
    # index above the impact ask: negative, rounded toward zero: -(100_108 - 100_092) / 100_108
    assert premium_ppm(book, 100_108, 5_000_000, 10) == -159  # -159.83
    assert premium_ppm(book, 0, 5_000_000, 10) == 0


# -- timing -----------------------------------------------------------------------------------------
def test_nothing_due_is_rejected_before_any_mark():
    ex = Ex3(marks=(0, 0))
    ex.reject(E.NOT_DUE, ex.funding_tick, time=T0)


def test_tick_timing_samples_and_settlement_exact():
    ex = Ex3()
    a, b, c, mk = setup_positions(ex)
    ids = quote_book(ex, mk)
    st = ex.state
    coll0 = {x: ex.coll(x) for x in (a, b, c, mk)}
    ins0, fees0 = st.insurance_fund, st.fee_pool

    # start: both (marked) perpetuals begin an interval at the last boundary, no event
    r = ex.ok(ex.funding_tick(time=T0 + 5))
    assert r.events == []
    assert st.markets[BTC].last_funding_time == st.markets[ETH].last_funding_time == T0
    ex.reject(E.NOT_DUE, ex.funding_tick, time=T0 + 6)
    ex.reject(E.NOT_DUE, ex.funding_tick, time=T0 + 19_999)

    # sample 1 at T0 + 20_000: 380 ppm (hand-computed above); ETH's empty book: 0
    r = ex.ok(ex.funding_tick(time=T0 + 20_000))
    assert [(e.instrument, e.premium_ppm, e.samples) for e in r.events] == [(BTC, 380, 1), (ETH, 0, 1)]
    ex.reject(E.NOT_DUE, ex.funding_tick, time=T0 + 20_001)

    # the 100_050 bid leaves: impact bid = 5 lots at 100_020 -> 20 ticks over the index = 200 ppm
    ex.ok(ex.cancel(mk, order_id=ids["b1"]))
    r = ex.ok(ex.funding_tick(time=T0 + 40_000))
    assert [(e.instrument, e.premium_ppm, e.samples) for e in r.events] == [(BTC, 200, 2), (ETH, 0, 2)]
    assert (st.markets[BTC].premium_sum, st.markets[BTC].premium_samples) == (580, 2)

    ex.ok(ex.mark_update({BTC: 100_003}, time=T0 + 50_000))
    # T0 + 60_000: sample 3 (200) and settlement. P = (380 + 200 + 200) // 3 = 260;
    # F = 260 + clamp(12 - 260, -50, 50) = 210 ppm (cap 1_000 not reached)
    r = ex.ok(ex.funding_tick(time=T0 + 60_000))
    sampled = [(e.instrument, e.premium_ppm, e.samples) for e in events(r, FundingSampled)]
    assert sampled == [(BTC, 200, 3), (ETH, 0, 3)]
    settled = {e.instrument: (e.rate_ppm, e.mark, e.paid, e.received, e.to_insurance)
               for e in events(r, FundingSettled)}
    # A pays ceil(7 * 100_003 * 10 * 210 / 1e6) = ceil(1_470.0441) = 1_471;
    # B receives floor(630.0189) = 630, C floor(840.0252) = 840; remainder 1 to insurance
    assert settled[BTC] == (210, 100_003, 1_471, 1_470, 1)
    assert settled[ETH] == (12, 100_000, 0, 0, 0)  # no premium: the interest component, no holders
    assert ex.coll(a) == coll0[a] - 1_471
    assert ex.coll(b) == coll0[b] + 630
    assert ex.coll(c) == coll0[c] + 840
    assert ex.coll(mk) == coll0[mk]
    assert st.insurance_fund == ins0 + 1 and st.fee_pool == fees0
    m = st.markets[BTC]
    assert m.funding_index == 210 * 100_003 * 10 == 210_006_300
    assert all(st.accounts[x].positions[BTC].funding_index == m.funding_index for x in (a, b, c))
    assert (m.premium_sum, m.premium_samples, m.last_funding_rate_ppm, m.last_funding_time) == \
        (0, 0, 210, T0 + 60_000)
    ex.conserved()
    ex.reject(E.NOT_DUE, ex.funding_tick, time=T0 + 60_001)


def test_the_steps_one_by_one_the_pause_and_an_unfinished_payout():
    """The same interval step by step: FUNDING_TICK takes the last sample, FUNDING_SETTLE is
    refused while a sample is due, then moves the index and leaves the holders to pay; until
    the last FUNDING_PAY nothing else goes in (FUNDING_IN_PROGRESS), a holder cannot be paid
    twice, and a node that stopped between the steps finds the payments due first
    (``funding_payments_due``; the simulated operator sends them before anything else)."""
    from clearline.core.operator import funding_payments_due
    from clearline.core.txs import OperatorActionKind as A

    ex = Ex3()
    a, b, c, mk = setup_positions(ex)
    quote_book(ex, mk)
    st = ex.state
    ex.ok(ex.op(A.FUNDING_TICK, time=T0 + 5))
    for k in (1, 2):
        ex.ok(ex.op(A.FUNDING_TICK, time=T0 + k * 20_000))
    ex.reject(E.NOT_DUE, ex.op, A.FUNDING_SETTLE, BTC, time=T0 + 59_999)  # the interval has not ended
    ex.reject(E.NOT_DUE, ex.op, A.FUNDING_SETTLE, BTC, time=T0 + 60_000)  # sample 3 is due first
    ex.ok(ex.op(A.FUNDING_TICK, time=T0 + 60_000))
    ex.ok(ex.op(A.FUNDING_SETTLE, BTC, time=T0 + 60_000))
    m = st.markets[BTC]
    assert m.unpaid_lots == 2 * m.open_interest > 0 and st.paying == {BTC}
    due = funding_payments_due(st)
    assert due == [(BTC, x) for x in sorted((a, b, c))]
    # a node restarted here rebuilds the same state, payments due included
    restored = State.from_blob(st.to_blob())
    assert restored.paying == {BTC} and funding_payments_due(restored) == due and restored.root() == st.root()
    ex.reject(E.FUNDING_IN_PROGRESS, ex.buy, a, 100_000, 1)
    ex.reject(E.FUNDING_IN_PROGRESS, ex.op, A.FUNDING_SETTLE, ETH, time=T0 + 60_000)
    ex.reject(E.NOT_DUE, ex.op, A.FUNDING_PAY, BTC, mk)  # no position in BTC
    ex.ok(ex.op(A.FUNDING_PAY, BTC, a))
    ex.reject(E.NOT_DUE, ex.op, A.FUNDING_PAY, BTC, a)  # paid already
    assert m.pay_float > 0  # A paid, nobody received yet: the float holds it
    for x in (b, c):
        ex.ok(ex.op(A.FUNDING_PAY, BTC, x))
    assert m.unpaid_lots == 0 and m.pay_float == 0 and not st.paying and funding_payments_due(st) == []
    ex.ok(ex.op(A.FUNDING_SETTLE, ETH))  # ETH: no holders, nothing to pay
    assert not st.paying
    ex.conserved()


def test_a_late_tick_settles_once_and_realigns_the_interval():
    ex = Ex3()
    a, b, c, mk = setup_positions(ex)
    ex.ok(ex.funding_tick(time=T0))
    # nothing for 3.5 intervals: one sample (empty book: 0 ppm), one settlement at the interest rate
    r = ex.ok(ex.funding_tick(time=T0 + 210_000))
    settled = [e for e in events(r, FundingSettled) if e.instrument == BTC]
    # rate 12 ppm at mark 100_000: A pays 7 * 1_000_000 * 12 / 1e6 = 84, B gets 36, C 48: exact
    assert [(e.rate_ppm, e.paid, e.received, e.to_insurance) for e in settled] == [(12, 84, 84, 0)]
    assert ex.state.markets[BTC].last_funding_time == T0 + 180_000
    # the new interval is already 30_000 ms old, but this book was just sampled: a late
    # operator cannot sample the same book again at once; the next sample is a sample
    # interval later
    ex.reject(E.NOT_DUE, ex.funding_tick, time=T0 + 210_000)
    ex.reject(E.NOT_DUE, ex.funding_tick, time=T0 + 210_000 + FUNDING_SAMPLE - 1)
    r = ex.ok(ex.funding_tick(time=T0 + 210_000 + FUNDING_SAMPLE))
    assert [e.samples for e in events(r, FundingSampled)] == [1, 1]


def test_negative_premium_capped_shorts_pay_longs():
    ex = Ex3()
    a, b, c, mk = setup_positions(ex)
    ex.ok(ex.sell(mk, 95_000, 10))  # an ask 5 % under the index
    ex.ok(ex.mark_update({BTC: 99_999}))
    ex.ok(ex.funding_tick(time=T0))
    coll0 = {x: ex.coll(x) for x in (a, b, c)}
    ins0 = ex.state.insurance_fund
    for k in (1, 2):
        r = ex.ok(ex.funding_tick(time=T0 + k * 20_000))
        # impact ask 95_000: premium = -(100_000 - 95_000) / 100_000 = -50_000 ppm
        assert [e.premium_ppm for e in events(r, FundingSampled) if e.instrument == BTC] == [-50_000]
    r = ex.ok(ex.funding_tick(time=T0 + 60_000))
    # F = -50_000 + clamp(12 + 50_000) = -49_950 -> capped at -1_000 ppm
    # A: ceil(7 * 99_999 * 10 * -1_000 / 1e6) = ceil(-6_999.93) = -6_999 (receives 6_999)
    # B: ceil(2_999.97) = 3_000, C: ceil(3_999.96) = 4_000 (pay)
    (e,) = [e for e in events(r, FundingSettled) if e.instrument == BTC]
    assert (e.rate_ppm, e.paid, e.received, e.to_insurance) == (-1_000, 7_000, 6_999, 1)
    assert ex.coll(a) - coll0[a] == 6_999
    assert ex.coll(b) - coll0[b] == -3_000
    assert ex.coll(c) - coll0[c] == -4_000
    assert ex.state.insurance_fund == ins0 + 1
    assert ex.state.markets[BTC].funding_index == -1_000 * 99_999 * 10
    ex.conserved()
