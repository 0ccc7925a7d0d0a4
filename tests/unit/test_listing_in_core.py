"""LIST_OPTIONS in the core: options listed by the rule around the index, NOT_DUE when
nothing is new, and listed options trading on the ordinary book once marked.

Fixture (``issue3_helpers``): compressed listing, period 600_000 ms, 2 expiries, lead 60_000 ms,
2 strikes each side; BTC strike step 500 USD, ETH 50 USD. At T = 1_700_000_000_000 the next
two multiples of the period after T + lead are E1 = 1_700_000_400_000 and E2 = E1 + 600_000.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from helpers import E, events, fills  # noqa: E402
from issue3_helpers import (BTC_INDEX, BTC_U, ETH_INDEX, ETH_U, FUND, PERIOD, USD, Ex3,  # noqa: E402
                            issue3_genesis)

from clearline.core.instruments import InstrumentKind, MarketStatus, OptionType  # noqa: E402
from clearline.core.ledger import Fill, InstrumentListed  # noqa: E402

T = 1_700_000_000_000
E1 = 1_700_000_400_000
E2 = E1 + PERIOD
C, P = OptionType.CALL, OptionType.PUT


@pytest.fixture
def ex() -> Ex3:
    x = Ex3()
    x.ok(x.mark_update(index={BTC_U: BTC_INDEX, ETH_U: ETH_INDEX}, time=T))
    return x


def listed(r) -> list[tuple]:
    return [(e.instrument, e.symbol, e.expiry, e.strike, int(e.option_type)) for e in events(r, InstrumentListed)]


def test_lists_calls_and_puts_around_the_index(ex):
    root = ex.state.root()
    r = ex.ok(ex.list_options(BTC_U, time=T + 1))
    got = listed(r)
    want = []
    i = 2  # after BTC-PERP (0) and ETH-PERP (1)
    for expiry, tag in ((E1, "20231114T2220"), (E2, "20231114T2230")):
        for k in (9_000, 9_500, 10_000, 10_500, 11_000):
            for t, letter in ((C, "C"), (P, "P")):
                want.append((i, f"BTC-{tag}-{k}-{letter}", expiry, k * 10, int(t)))  # strike ticks: USD / 0.1
                i += 1
    assert got == want
    st = ex.state
    for inst, symbol, expiry, strike, t in want:
        m = st.markets[inst]
        s = m.spec
        assert (s.kind, s.underlying, s.tick_size, s.lot_size, s.im_ppm, s.mm_ppm, s.maker_fee_ppm,
                s.taker_fee_ppm) == (InstrumentKind.OPTION, "BTC", 100_000, 10_000, 150_000, 75_000, 200, 500)
        assert (m.status, m.mark_price, m.open_interest, m.risk_array) == (MarketStatus.ACTIVE, 0, 0, None)
        assert len(st.books[inst]) == 0
    # one settlement window per new expiry, counting its options
    per_expiry = {e: sum(1 for _, _, x, _, _ in want if x == e) for e in (E1, E2)}
    assert st.underlyings[BTC_U].windows == {E1: [0, 0, per_expiry[E1]], E2: [0, 0, per_expiry[E2]]}
    assert st.root() != root
    ex.conserved()


def test_nothing_new_is_not_due(ex):
    ex.ok(ex.list_options(BTC_U))
    ex.reject(E.NOT_DUE, ex.list_options, BTC_U)
    ex.reject(E.NOT_DUE, ex.list_options, BTC_U, time=E1 - 60_001)  # still the same two expiries


def test_preconditions():
    ex = Ex3()
    ex.reject(E.NO_INDEX, ex.list_options, BTC_U)
    ex.reject(E.UNKNOWN_UNDERLYING, ex.list_options, 9)
    no_rule = Ex3(rule=None)
    no_rule.ok(no_rule.mark_update(index={BTC_U: BTC_INDEX}))
    no_rule.reject(E.NOT_CONFIGURED, no_rule.list_options, BTC_U)
    no_template = Ex3(issue3_genesis(templates=False))
    no_template.ok(no_template.mark_update(index={BTC_U: BTC_INDEX}))
    no_template.reject(E.NOT_CONFIGURED, no_template.list_options, BTC_U)


def test_an_index_move_adds_only_the_missing_strikes(ex):
    ex.ok(ex.list_options(BTC_U))
    ex.ok(ex.mark_update(index={BTC_U: 10_600 * USD}))  # +6 %: inside the guard
    r = ex.ok(ex.list_options(BTC_U))
    # centre round(10_600 / 500) = 21 -> 10_500: grid 9_500 .. 11_500; only 11_500 is new
    assert [(i, e, k, t) for i, _, e, k, t in listed(r)] == [
        (22, E1, 115_000, C), (23, E1, 115_000, P), (24, E2, 115_000, C), (25, E2, 115_000, P)]


def test_time_passing_lists_the_next_expiry(ex):
    ex.ok(ex.list_options(BTC_U))
    t = E1 - 60_000  # cutoff = E1: the schedule becomes E2, E3
    r = ex.ok(ex.list_options(BTC_U, time=t))
    e3 = E2 + PERIOD
    assert {e for _, _, e, _, _ in listed(r)} == {e3} and len(listed(r)) == 10
    assert sorted(ex.state.underlyings[BTC_U].windows) == [E1, E2, e3]


def test_eth_uses_its_own_template(ex):
    r = ex.ok(ex.list_options(ETH_U))
    syms = [s for _, s, e, _, _ in listed(r) if e == E1]
    assert syms == [f"ETH-20231114T2220-{k}-{x}" for k in (900, 950, 1000, 1050, 1100) for x in "CP"]
    spec = ex.state.markets[listed(r)[0][0]].spec
    assert (spec.tick_size, spec.lot_size, spec.strike) == (10_000, 100_000, 90_000)  # 900 USD / 0.01


def test_listed_options_trade_on_the_book_once_marked(ex):
    ex.ok(ex.list_options(BTC_U))
    call = ex.option_id(10_000, C, E1)
    mk = ex.account(1, FUND)
    a = ex.account(2, FUND)
    ex.reject(E.NO_MARK_PRICE, ex.sell, mk, 200, 3, instrument=call)
    ex.ok(ex.mark_update({call: 200}))
    first = ex.ok(ex.sell(mk, 210, 2, instrument=call))
    second = ex.ok(ex.sell(mk, 200, 3, instrument=call))
    r = ex.ok(ex.buy(a, 210, 4, instrument=call))
    # price priority: 3 at 200 first, then 1 at 210
    assert fills(r) == [(200, 3, second.order_id, mk), (210, 1, first.order_id, mk)]
    # option fees: ppm of the underlying value at the index, capped at 1/8 of the premium.
    # 3 lots: U = 3_000_000; taker 500 ppm -> 1_500, premium 3 * 200 * 10 = 6_000 -> cap 750;
    #         maker 200 ppm -> 600 (under the cap)
    # 1 lot:  U = 1_000_000; taker 500, premium 2_100 -> cap 262: 262; maker 200
    assert [(f.taker_fee, f.maker_fee) for f in events(r, Fill)] == [(750, 600), (262, 200)]
    assert ex.pos(a, call) == (4, -(3 * 200 + 210) * 10)
    assert ex.pos(mk, call) == (-4, (3 * 200 + 210) * 10)
    assert ex.state.markets[call].open_interest == 4
    assert ex.depth(call, side=1) == [(210, 1, 1)]
    ex.conserved()
