"""A crash: the BTC index falls 30 % in one step. Liquidations into the book, the insurance
fund and auto-deleveraging are all exercised; every account's final equity is checked
against numbers computed here by hand; cash is conserved after every transaction; and the
whole log replays to identical roots, from genesis and from snapshots.

Units: BTC-PERP tick_value 10 usd6, so one lot at p ticks is 10 p usd6 (1 USD at 100_000).
The crash takes the perp mark from 100_000 to 70_000 ticks and the index from 10_000 to
7_000 USD. Fees: perp taker 500 / maker 100 ppm of notional; options 500 / 200 ppm of the
underlying value, capped at 1/8 of the premium; liquidation fee 0.5 %, liquidation step 50 %.

Cast (account id: role, deposit in usd6):
  0 MM  market maker, 1_000_000_000: sells 250 lots to L2 and PM, later bids 69_800 for 1_000
  1 S1  short 300 lots (sold to L3), 40_000_000: very leveraged, very profitable after the crash
  2 S2  short 100 lots (sold to L1), 50_000_000
  3 L1  long 100 lots, 31_550_000: ends above zero; one liquidation step into the book
  4 L2  long 200 lots, 52_100_000: ends at -8_000_000; the insurance fund covers it
  5 L3  long 300 lots, 70_150_000: ends at -20_000_000; the fund runs dry; ADL haircuts the rest
  6 PM  portfolio margin, 10_000_000: long 50 lots + long 50 puts 9_500 (protected: survives)
  7 W   option writer, 100_000_000: sells the 50 puts; withdraws 1_000_000 before the crash
  insurance fund: 10_000_000 deposited for the zero address.

After the liquidations, one funding interval and the put's expiry settle on top (so
conservation and replay cover funding, liquidation, ADL and expiry in one log).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from helpers import BTC, ETH, E, closed, events  # noqa: E402
from issue3_helpers import (BTC_INDEX, BTC_U, ETH_INDEX, ETH_U, PERIOD, TEST_PARAMS, USD, Ex3,  # noqa: E402
                            cash_total, issue3_genesis)

from clearline.core.apply import apply  # noqa: E402
from clearline.core.instruments import OptionType  # noqa: E402
from clearline.core.ledger import (Deleveraged, ExpirySettled, FundingSampled, FundingSettled, InsuranceCovered,  # noqa: E402
                                   LiquidationFill, Netting)
from clearline.core.listing import ListingRule  # noqa: E402
from clearline.core.matching import CloseReason  # noqa: E402
from clearline.core.state import State  # noqa: E402
from clearline.core.txs import MarginMode  # noqa: E402
from clearline.oracle.aggregate import Outcome  # noqa: E402

T = 1_700_000_000_000
MM, S1, S2, L1, L2, L3, PM, W = range(8)
DEPOSITS = {MM: 1_000_000_000, S1: 40_000_000, S2: 50_000_000, L1: 31_550_000, L2: 52_100_000,
            L3: 70_150_000, PM: 10_000_000, W: 100_000_000}
INSURANCE = 10_000_000
CRASH_INDEX = 7_000 * USD
PUT_BEFORE, PUT_AFTER = 1_000, 25_100  # ticks (100 and 2_510 USD per BTC)


def run_crash() -> SimpleNamespace:
    genesis = issue3_genesis(params=replace(TEST_PARAMS, liquidation_step_ppm=500_000),
                             rule=ListingRule(daily=1, weekly=0, monthly=0, min_lead_ms=60_000, strikes_each_side=2,
                                              compressed_period_ms=PERIOD))
    ex = Ex3(genesis)
    ex.track_roots = True
    out = SimpleNamespace(ex=ex)
    ex.ok(ex.mark_update(index={BTC_U: BTC_INDEX, ETH_U: ETH_INDEX}, time=T))
    ex.ok(ex.list_options(BTC_U))
    expiry = ex.options()[0].expiry
    put = out.put = ex.option_id(9_500, OptionType.PUT, expiry)
    for user, acct in enumerate(DEPOSITS):
        assert ex.account(user + 1, DEPOSITS[acct]) == acct
    ex.ok(ex.insurance_deposit(INSURANCE))
    option_marks = {s.id: PUT_BEFORE for s in ex.options()}
    ex.ok(ex.mark_update({BTC: 100_000, **option_marks}, arrays="auto"))

    ex.ok(ex.sell(S1, 100_000, 300))
    ex.ok(ex.buy(L3, 100_000, 300))
    ex.ok(ex.sell(S2, 100_000, 100))
    ex.ok(ex.buy(L1, 100_000, 100))
    ex.ok(ex.sell(MM, 100_000, 250))
    ex.ok(ex.buy(L2, 100_000, 200))
    ex.ok(ex.set_margin_mode(PM, MarginMode.PORTFOLIO))
    ex.ok(ex.buy(PM, 100_000, 50))
    ex.ok(ex.sell(W, PUT_BEFORE, 50, instrument=put))
    ex.ok(ex.buy(PM, PUT_BEFORE, 50, instrument=put))
    out.l2_bid = ex.ok(ex.buy(L2, 60_000, 10)).order_id
    ex.ok(ex.withdraw(W, 1_000_000))
    out.snap_before_crash = len(ex.log)

    # the crash: marks -30 % and an index round beyond the 10 % guard (2 confirmations needed)
    crash_marks = {BTC: 70_000, put: PUT_AFTER}
    out.first_round = ex.ok(ex.mark_update(crash_marks, index={BTC_U: CRASH_INDEX}))
    out.paused = {a: ex.liquidate(a) for a in (L1, L2, L3)}
    ex.ok(ex.buy(MM, 69_800, 1_000))
    ex.ok(ex.sell(MM, 70_200, 1_000))
    out.second_round = ex.ok(ex.mark_update(crash_marks, index={BTC_U: CRASH_INDEX}, arrays="auto"))
    out.snap_after_crash = len(ex.log)

    out.below = [a for a in range(len(ex.state.accounts)) if ex.health(a)[0] < ex.health(a)[2]]
    out.healthy = {a: ex.liquidate(a) for a in range(len(ex.state.accounts)) if a not in out.below}
    out.liq = {a: ex.ok(ex.liquidate(a)) for a in out.below}
    out.after_liq = {a: ex.equity(a) for a in range(len(ex.state.accounts))}
    out.fund_after_liq, out.fees_after_liq = ex.state.insurance_fund, ex.state.fee_pool

    # epilogue: one funding interval and the put's expiry settle on top of the crash
    out.funding = [ex.ok(ex.funding_tick(time=t)) for t in (T + 60_000, T + 60_000, T + 80_000, T + 100_000)]
    out.expiry = ex.ok(ex.settle_expiry(BTC_U, expiry, time=expiry + 1))
    return out


@pytest.fixture(scope="module")
def crash() -> SimpleNamespace:
    return run_crash()


def test_the_jump_pauses_liquidations_until_confirmed(crash):
    ex = crash.ex
    (first,) = [e for e in crash.first_round.events if type(e).__name__ == "IndexUpdated"]
    assert (first.outcome, first.index, first.median, first.liquidations_paused) == \
        (Outcome.UNCONFIRMED, BTC_INDEX, CRASH_INDEX, True)
    assert all(r.code == E.LIQUIDATIONS_PAUSED for r in crash.paused.values())
    (second,) = [e for e in crash.second_round.events if type(e).__name__ == "IndexUpdated"]
    assert (second.outcome, second.index, second.liquidations_paused) == (Outcome.CONFIRMED, CRASH_INDEX, False)
    assert ex.index() == CRASH_INDEX


def test_who_was_liquidated(crash):
    assert crash.below == [L1, L2, L3]
    assert all(r.code == E.NOT_LIQUIDATABLE for r in crash.healthy.values())
    assert sorted(crash.healthy) == [MM, S1, S2, PM, W]


def test_every_final_equity_by_hand(crash):
    ex = crash.ex
    lot = 10  # usd6 per tick per lot
    drop = (70_000 - 100_000) * lot  # per long lot
    # L1: 100 lots, taker fee 50_000 -> 1_500_000 after the crash (MM 2_100_000). One step of 50
    # lots at 69_800 (bound 70_000 - 1_500_000 // 1_000 = 68_500): -50 * 200 * 10 at the mark,
    # fee ceil(34_900_000 * 0.5 %) = 174_500; MM for 50 lots 1_050_000: healthy again
    l1_before = DEPOSITS[L1] - 50_000 + 100 * drop
    assert l1_before == 1_500_000
    l1 = l1_before - 50 * 200 * lot - 174_500
    # L2 / L3: below zero; no bid reaches their bankruptcy prices (above the mark): backstop
    l2_before = DEPOSITS[L2] - 100_000 + 200 * drop
    l3_before = DEPOSITS[L3] - 150_000 + 300 * drop
    assert (l2_before, l3_before) == (-8_000_000, -20_000_000)
    # insurance: 10_000_000 + 174_500 (L1's fee) - 8_000_000 (L2) = 2_174_500 left for L3
    fund_for_l3 = INSURANCE + 174_500 + l2_before
    rest = -l3_before - fund_for_l3
    assert rest == 17_825_500
    # L3's 300 lots go to S2, S1, MM (100 each at the mark, 70_000_000 usd6 each): equal
    # haircuts ceil(17_825_500 / 3) = 5_941_834; surplus 2 stays in the fund
    haircut = -(-rest // 3)
    assert haircut == 5_941_834
    s1 = DEPOSITS[S1] - 30_000 - 300 * drop - haircut
    s2 = DEPOSITS[S2] - 10_000 - 100 * drop - haircut
    # MM: short 250 (maker fees 25_000) -> +75_000_000; bought 50 at 69_800 in L1's liquidation
    # (+100_000 against the 70_000 mark, maker fee 3_490); took 100 lots of L3 at the mark
    mm = DEPOSITS[MM] - 25_000 - 250 * drop + 50 * 200 * lot - 3_490 - haircut
    # PM: perp -15_000_000, puts +50 * (25_100 - 1_000) * 10, fees 25_000 + 25_000
    pm = DEPOSITS[PM] - 50_000 + 50 * drop + 50 * (PUT_AFTER - PUT_BEFORE) * lot
    # W: option maker fee 10_000, withdrew 1_000_000, short puts -12_050_000
    w = DEPOSITS[W] - 10_000 - 1_000_000 - 50 * (PUT_AFTER - PUT_BEFORE) * lot
    want = {MM: mm, S1: s1, S2: s2, L1: l1, L2: 0, L3: 0, PM: pm, W: w}
    assert want == {MM: 1_069_129_676, S1: 124_028_166, S2: 74_048_166, L1: 1_225_500, L2: 0, L3: 0,
                    PM: 7_000_000, W: 86_940_000}
    assert {a: crash.after_liq[a] for a in want} == want
    assert crash.fund_after_liq == 3 * haircut - rest == 2
    # fees: takers 150_000 + 50_000 + 100_000 + 25_000 + 25_000 (put);
    #       makers 30_000 + 10_000 + 20_000 + 5_000 + 10_000 (put) + 3_490
    assert crash.fees_after_liq == 428_490
    # positions left: L1 50 long; MM short 100 (250 - 50 - 100); S1, S2 flat; PM and W unchanged
    assert ex.pos(L1) == (50, -50_000_000) and ex.pos(MM)[0] == -100 and ex.pos(PM)[0] == 50
    assert ex.pos(S1) == ex.pos(S2) == ex.pos(L2) == ex.pos(L3) == (0, 0)
    # and the books balance: equities + fund + fee pool = deposits - withdrawals
    assert sum(want.values()) + 2 + 428_490 == sum(DEPOSITS.values()) + INSURANCE - 1_000_000


def test_funding_and_expiry_after_the_crash(crash):
    ex = crash.ex
    # funding: the book is bid 69_800 / offered 70_200 around the 70_000-tick index, so both
    # impact prices straddle it: premium 0, rate = interest 12 ppm per interval. At the mark
    # 70_000, one lot pays 700_000 * 12 / 1e6 = 8.4 usd6: longs L1 and PM (50 lots) pay 420
    # each, MM (short 100) receives 840; exact, nothing to the fund
    start, s1, s2, settle = crash.funding
    assert start.events == []
    assert [(e.instrument, e.premium_ppm) for e in events(settle, FundingSampled)] == [(BTC, 0), (ETH, 0)]
    assert [(e.instrument, e.rate_ppm, e.paid, e.received, e.to_insurance)
            for e in events(settle, FundingSettled)] == [(BTC, 12, 840, 840, 0), (ETH, 12, 0, 0, 0)]
    # expiry: the index was 7_000 USD through the whole settlement window -> the 9_500 put pays
    # 2_500 USD = 25_000 ticks = 250_000 usd6 per lot; PM's 50 lots were marked at 25_100:
    # -50 * 100 * 10 at settlement, fee min(ceil(35_000_000 * 150e-6), 12_500_000 // 8) = 5_250
    settled = events(crash.expiry, ExpirySettled)  # one per option of the expiry, all at its price
    assert settled and {es.settlement_price for es in settled} == {CRASH_INDEX}
    assert crash.put in {i for es in settled for i in es.instruments}
    net = {n.account: (n.gross, n.net, n.fees) for n in events(crash.expiry, Netting)}
    assert net == {PM: (12_500_000, 12_500_000, 5_250), W: (12_500_000, -12_500_000, 0)}
    final = dict(crash.after_liq)
    final[L1] -= 420
    final[PM] += -420 - 50 * 100 * 10 - 5_250
    final[MM] += 840
    final[W] += 50 * 100 * 10
    assert {a: ex.equity(a) for a in final} == final
    assert (final[PM], final[W], final[L1]) == (6_944_330, 86_990_000, 1_225_080)
    assert ex.pos(PM, crash.put) == ex.pos(W, crash.put) == (0, 0)
    assert ex.state.insurance_fund == 2 and ex.state.fee_pool == 428_490 + 5_250
    assert sum(final.values()) + 2 + 428_490 + 5_250 == sum(DEPOSITS.values()) + INSURANCE - 1_000_000


def test_each_liquidation_step_is_in_the_receipts(crash):
    r1, r2, r3 = (crash.liq[a] for a in (L1, L2, L3))
    assert [(e.qty, e.avg_price, e.bound, e.fee) for e in events(r1, LiquidationFill)] == [(50, 69_800, 68_500, 174_500)]
    assert events(r1, Deleveraged) == [] and events(r1, InsuranceCovered) == []
    # L2: its open order is cancelled, 200 lots go to S1 (ranked first: most profitable x most leveraged)
    assert closed(r2) == [(crash.l2_bid, CloseReason.LIQUIDATION, 10)]
    assert [(e.counterparty, e.instrument, e.qty, e.price, e.haircut) for e in events(r2, Deleveraged)] == \
        [(S1, BTC, 200, 70_000, 0)]
    assert [(e.amount, e.fund_after) for e in events(r2, InsuranceCovered)] == [(8_000_000, 2_174_500)]
    # L3: S1 now holds only 100 lots, so S2 ranks first; the fund is exhausted, ADL haircuts the rest
    assert [(e.counterparty, e.instrument, e.qty, e.price, e.haircut) for e in events(r3, Deleveraged)] == [
        (S2, BTC, 100, 70_000, 0), (S1, BTC, 100, 70_000, 0), (MM, BTC, 100, 70_000, 0),
        (S2, -1, 0, 0, 5_941_834), (S1, -1, 0, 0, 5_941_834), (MM, -1, 0, 0, 5_941_834)]
    assert [(e.amount, e.fund_after) for e in events(r3, InsuranceCovered)] == [(2_174_500, 0)]


def test_cash_is_conserved_after_every_tx(crash):
    ex = crash.ex
    st = State(ex.genesis)
    for tx in ex.log:
        apply(st, tx)
        assert cash_total(st) == st.total_deposits - st.total_withdrawals
        st.check_invariants()
    assert st.total_deposits == sum(DEPOSITS.values()) + INSURANCE
    assert st.total_withdrawals == 1_000_000


def test_replay_is_deterministic_from_genesis_and_from_snapshots(crash):
    ex = crash.ex
    live = ex.roots
    assert len(live) == len(ex.log) > 40
    for _ in range(2):
        st = State(ex.genesis)
        roots, receipts = [], []
        for tx in ex.log:
            r = apply(st, tx)
            roots.append(st.root())
            receipts.append((r.ok, r.code, repr(r.events)))
        assert roots == live
        assert receipts == [(r.ok, r.code, repr(r.events)) for r in ex.receipts]
    assert len(set(live)) > len(live) // 2  # the roots really move
    for k in sorted({crash.snap_before_crash, crash.snap_after_crash, len(ex.log) // 3, len(ex.log) - 2}):
        st = State(ex.genesis)
        for tx in ex.log[:k]:
            apply(st, tx)
        restored = State.from_blob(st.to_blob())
        assert restored.root() == live[k - 1]
        tail = []
        for tx, want in zip(ex.log[k:], ex.receipts[k:]):
            r = apply(restored, tx)
            tail.append(restored.root())
            assert (r.ok, r.code, repr(r.events)) == (want.ok, want.code, repr(want.events))
        assert tail == live[k:]
