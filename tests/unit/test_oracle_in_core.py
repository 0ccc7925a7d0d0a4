"""The oracle inside the core: a MarkUpdate carries signed price reports and the core
recomputes the index itself (median, staleness, quorum, deviation guard), pauses
liquidations on an unconfirmed jump, and stores risk arrays in the market leaf.

Fixture (``issue3_helpers``): 3 reporters, quorum 2, staleness 5_000 ms, deviation guard
10 % (100_000 ppm), 2 confirmations. Prices are usd6 per whole BTC (10_000 USD =
10_000_000_000).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from helpers import BTC, ETH, E, events  # noqa: E402
from issue3_helpers import (BTC_INDEX, BTC_U, ETH_INDEX, ETH_U, FUND, OUTSIDER_KEY, REPORTER_KEYS, USD,  # noqa: E402
                            Ex3, issue3_genesis, oracle_config)

from clearline.core.ledger import IndexUpdated  # noqa: E402
from clearline.core.state import Genesis, State  # noqa: E402
from clearline.core.txs import MarkUpdate  # noqa: E402
from clearline.oracle.aggregate import Outcome  # noqa: E402
from clearline.oracle.report import PriceReport, signed  # noqa: E402
from clearline.risk import risk_array  # noqa: E402

T = 1_700_000_000_000


@pytest.fixture
def ex() -> Ex3:
    x = Ex3()
    x.ok(x.mark_update(index={BTC_U: BTC_INDEX, ETH_U: ETH_INDEX}, time=T))
    return x


def idx_event(r) -> IndexUpdated:
    (e,) = events(r, IndexUpdated)
    return e


def underlying_leaf(ex: Ex3, uid: int = BTC_U) -> bytes:
    return State.underlying_leaf(ex.state.underlyings[uid])


# -- median -----------------------------------------------------------------------------------
def test_first_index_is_the_median_of_the_signed_reports():
    ex = Ex3()
    assert ex.index() == 0
    t = T + 10
    prices = [10_001 * USD, 9_999 * USD, 10_000 * USD + 50_000]
    r = ex.ok(ex.mark_update(index={BTC_U: prices}, time=t))
    # sorted: 9_999, 10_000.05, 10_001 USD -> median 10_000.05 USD
    assert ex.index() == 10_000_050_000
    e = idx_event(r)
    assert (e.underlying, e.outcome, e.index, e.median, e.reports_used, e.liquidations_paused) == \
        (BTC_U, Outcome.ACCEPTED, 10_000_050_000, 10_000_050_000, 3, False)
    o = ex.state.underlyings[BTC_U].oracle
    assert (o.index_time_ms, o.last_round_ms, o.pending_price, o.pending_count) == (t, t, 0, 0)
    assert ex.index(ETH_U) == 0  # untouched


def test_median_does_not_depend_on_report_order():
    roots = []
    for order in ([0, 1, 2], [2, 0, 1]):
        ex = Ex3()
        reps = [ex.report(BTC_U, p, i, ts=T, round=1) for i, p in enumerate([101 * USD, 99 * USD, 100 * USD])]
        ex.ok(ex.mark_update(reports=[reps[k] for k in order], time=T))
        assert ex.index() == 100 * USD
        roots.append(ex.state.root())
    assert roots[0] == roots[1]


def test_even_number_of_reports_uses_the_lower_median():
    ex = Ex3(oracle=oracle_config(reporters=4, quorum=3))
    r = ex.ok(ex.mark_update(index={BTC_U: [100 * USD, 104 * USD, 101 * USD, 103 * USD]}, time=T))
    assert ex.index() == 101 * USD  # sorted 100, 101, 103, 104 -> element (4 - 1) // 2 = 1
    assert idx_event(r).reports_used == 4


def test_stale_and_unknown_reporters_are_dropped(ex):
    t = T + 10_000
    reps = [
        ex.report(BTC_U, 10_100 * USD, 0, ts=t - 5_000),  # age == staleness: still fresh
        ex.report(BTC_U, 12_000 * USD, 1, ts=t - 5_001),  # stale: dropped
        ex.report(BTC_U, 10_200 * USD, 2, ts=t),
        ex.report(BTC_U, 1 * USD, 3, ts=t),  # reporter 3 is not configured (3 reporters)
        ex.report(BTC_U, 2 * USD, 0, ts=t, key=OUTSIDER_KEY),  # a stranger
    ]
    r = ex.ok(ex.mark_update(reports=reps, time=t))
    e = idx_event(r)
    # fresh and known: 10_100 and 10_200 -> lower median 10_100 (within 10 % of 10_000)
    assert (e.outcome, e.median, e.reports_used) == (Outcome.ACCEPTED, 10_100 * USD, 2)
    assert ex.index() == 10_100 * USD


def test_quorum_not_met_leaves_the_index_unchanged(ex):
    before = underlying_leaf(ex)
    t = T + 1_000
    reps = [ex.report(BTC_U, 10_500 * USD, 0, ts=t),
            ex.report(BTC_U, 10_600 * USD, 1, ts=t - 6_000),  # stale
            ex.report(BTC_U, 10_700 * USD, 0, ts=t, key=OUTSIDER_KEY)]
    r = ex.ok(ex.mark_update(reports=reps, time=t))
    e = idx_event(r)
    assert (e.outcome, e.index, e.median, e.reports_used) == (Outcome.NO_UPDATE, BTC_INDEX, 0, 1)
    assert ex.index() == BTC_INDEX
    assert ex.state.underlyings[BTC_U].oracle.last_round_ms == T  # a failed round does not count
    # the leaf differs only in accTime (the settlement accumulators' clock, word 9)
    after = underlying_leaf(ex)
    assert after[:9 * 32] == before[:9 * 32] and after[10 * 32:] == before[10 * 32:]
    assert int.from_bytes(after[9 * 32:10 * 32], "big") == t


def test_reports_cannot_be_used_in_two_rounds(ex):
    t = T + 1_000
    reps = [ex.report(BTC_U, 10_100 * USD, i, ts=t) for i in range(3)]
    ex.ok(ex.mark_update(reports=reps, time=t))
    assert ex.index() == 10_100 * USD
    r = ex.ok(ex.mark_update(reports=reps, time=t + 1))  # same signed reports again
    assert idx_event(r).outcome == Outcome.NO_UPDATE and idx_event(r).reports_used == 0


# -- deviation guard and the liquidation pause -----------------------------------------------------
def _underwater_long(ex: Ex3) -> tuple[int, int]:
    """Account A long 100 BTC-PERP lots at 100_000 with 6 USD of collateral, maker M short."""
    m = ex.account(1, FUND)
    a = ex.account(2, 6_000_000)
    ex.ok(ex.sell(m, 100_000, 100))
    ex.ok(ex.buy(a, 100_000, 100))  # taker fee 50_000 usd6
    return m, a


def test_jump_beyond_the_guard_is_unconfirmed_and_pauses_liquidations(ex):
    m, a = _underwater_long(ex)
    t1 = T + 10_000
    # marks are the operator's; the index says -15 %, beyond the 10 % guard
    r = ex.ok(ex.mark_update({BTC: 85_000}, index={BTC_U: [8_500 * USD, 8_490 * USD, 8_510 * USD]}, time=t1))
    e = idx_event(r)
    assert (e.outcome, e.index, e.median, e.liquidations_paused) == (Outcome.UNCONFIRMED, BTC_INDEX, 8_500 * USD, True)
    o = ex.state.underlyings[BTC_U].oracle
    assert (o.index_price, o.pending_price, o.pending_count, o.last_round_ms) == (BTC_INDEX, 8_500 * USD, 1, t1)
    assert ex.state.underlyings[BTC_U].liquidations_paused
    # A: 6_000_000 - 50_000 + 100 * (85_000 - 100_000) * 10 = -9_050_000 < MM: liquidatable, but paused
    assert ex.health(a) == (-9_050_000, 4_250_000, 2_550_000)
    ex.reject(E.LIQUIDATIONS_PAUSED, ex.liquidate, a)
    # a healthy account is still "not liquidatable" first
    ex.reject(E.NOT_LIQUIDATABLE, ex.liquidate, m)
    # the second consecutive round beyond the bound confirms: the index is *its* median
    r = ex.ok(ex.mark_update(index={BTC_U: [8_400 * USD, 8_450 * USD, 8_420 * USD]}, time=t1 + 1_000))
    e = idx_event(r)
    assert (e.outcome, e.index, e.liquidations_paused) == (Outcome.CONFIRMED, 8_420 * USD, False)
    o = ex.state.underlyings[BTC_U].oracle
    assert (o.index_price, o.index_time_ms, o.pending_price, o.pending_count) == (8_420 * USD, t1 + 1_000, 0, 0)
    r = ex.ok(ex.liquidate(a))
    assert ex.equity(a) == 0 and not ex.state.accounts[a].positions


def test_pause_is_per_underlying(ex):
    m = ex.account(1, FUND)
    a = ex.account(2, 6_000_000)
    ex.ok(ex.sell(m, 100_000, 100, instrument=ETH))
    ex.ok(ex.buy(a, 100_000, 100, instrument=ETH))
    # BTC jumps (unconfirmed), ETH marks drop within its guard
    ex.ok(ex.mark_update({ETH: 90_000}, index={BTC_U: 5_000 * USD, ETH_U: 950 * USD}))
    assert ex.state.underlyings[BTC_U].liquidations_paused
    assert not ex.state.underlyings[ETH_U].liquidations_paused
    assert ex.index(ETH_U) == 950 * USD
    ex.ok(ex.liquidate(a))  # holds only ETH: not paused


def test_a_reversal_or_an_in_bound_round_resets_the_pending_jump(ex):
    ex.ok(ex.mark_update(index={BTC_U: 12_000 * USD}))  # +20 %: pending 1
    assert ex.state.underlyings[BTC_U].oracle.pending_count == 1
    r = ex.ok(ex.mark_update(index={BTC_U: 8_000 * USD}))  # -20 %: other side, restarts at 1
    assert idx_event(r).outcome == Outcome.UNCONFIRMED
    o = ex.state.underlyings[BTC_U].oracle
    assert (o.pending_price, o.pending_count) == (8_000 * USD, 1)
    r = ex.ok(ex.mark_update(index={BTC_U: 10_500 * USD}))  # within 10 % of 10_000: accepted, cleared
    assert idx_event(r).outcome == Outcome.ACCEPTED
    o = ex.state.underlyings[BTC_U].oracle
    assert (o.index_price, o.pending_price, o.pending_count) == (10_500 * USD, 0, 0)
    assert not ex.state.underlyings[BTC_U].liquidations_paused


def test_one_confirmation_accepts_a_jump_at_once():
    ex = Ex3(oracle=oracle_config(confirmations=1))
    ex.ok(ex.mark_update(index={BTC_U: BTC_INDEX}))
    r = ex.ok(ex.mark_update(index={BTC_U: 7_000 * USD}))
    assert idx_event(r).outcome == Outcome.CONFIRMED and ex.index() == 7_000 * USD
    assert not ex.state.underlyings[BTC_U].liquidations_paused


# -- rejected updates change nothing ---------------------------------------------------------------
def _good_reports(ex: Ex3, t: int) -> list[PriceReport]:
    return [ex.report(BTC_U, 10_100 * USD, i, ts=t) for i in range(3)]


def _with_sig(rep: PriceReport, sig: bytes) -> PriceReport:
    return PriceReport(rep.asset, rep.price, rep.timestamp, rep.round, sig)


@pytest.mark.parametrize("mutate, code", [
    (lambda sig: sig[:64] + bytes([29]), E.BAD_SIGNATURE),  # v not in {27, 28}
    (lambda sig: sig[:64], E.BAD_SIGNATURE),  # truncated
    (lambda sig: bytes(32) + sig[32:], E.BAD_SIGNATURE),  # r == 0
    (lambda sig: sig[:32] + (0xFFFFFFFF_FFFFFFFF_FFFFFFFF_FFFFFFFE_BAAEDCE6_AF48A03B_BFD25E8C_D0364140).to_bytes(32, "big")
     + sig[64:], E.HIGH_S_SIGNATURE),  # s = n - 1 > n/2
])
def test_a_bad_report_signature_rejects_the_whole_update(ex, mutate, code):
    t = T + 1_000
    reps = _good_reports(ex, t)
    reps[1] = _with_sig(reps[1], mutate(reps[1].signature))
    ex.reject(code, ex.mark_update, {BTC: 101_000}, reports=reps, time=t)
    assert ex.state.markets[BTC].mark_price == 100_000 and ex.index() == BTC_INDEX


def test_a_tampered_report_recovers_a_stranger_and_is_dropped(ex):
    t = T + 1_000
    reps = _good_reports(ex, t)
    reps[0] = PriceReport(BTC_U, 20_000 * USD, t, reps[0].round, reps[0].signature)  # price changed after signing
    r = ex.ok(ex.mark_update(reports=reps, time=t))
    assert (idx_event(r).reports_used, ex.index()) == (2, 10_100 * USD)


def test_structurally_invalid_oracle_input_is_rejected(ex):
    t = T + 1_000
    stranger_asset = [signed(ex.state.domain, PriceReport(7, 100 * USD, t, 1), REPORTER_KEYS[0])]
    ex.reject(E.UNKNOWN_UNDERLYING, ex.mark_update, reports=stranger_asset, time=t)
    twice = [ex.report(BTC_U, 10_100 * USD, 0, ts=t), ex.report(BTC_U, 10_200 * USD, 0, ts=t)]
    ex.reject(E.ORACLE_REJECTED, ex.mark_update, reports=twice, time=t)  # duplicate reporter
    ex.reject(E.MALFORMED, ex.mark_update, time=t)  # nothing to update


def test_only_the_operator_may_update(ex):
    t = T + 1_000
    tx = MarkUpdate(t, t, [BTC], [101_000], [], _good_reports(ex, t))
    tx.signer = b"\x11" * 20
    ex.reject(E.NOT_OPERATOR, ex._apply, tx)
    tx.signer = None
    ex.reject(E.BAD_SIGNATURE, ex._apply, tx)
    # really signed with the operator key: accepted
    ex.ok(ex.mark_update({BTC: 101_000}, index={BTC_U: 10_100 * USD}, time=t + 1, sign=True))
    assert ex.index() == 10_100 * USD


# -- risk arrays ---------------------------------------------------------------------------------
def test_risk_arrays_are_stored_in_the_market_leaf():
    with_arr, without = Ex3(), Ex3()
    spec = with_arr.state.markets[BTC].spec
    arr = risk_array(spec, 100_000)
    # one BTC-PERP lot at 100_000 ticks is 1_000_000 usd6; moves 0, +-5 %, +-10 %, +-15 %, +-30 % x 35 %
    assert arr == [0, 0, 50_000, 50_000, -50_000, -50_000, 100_000, 100_000, -100_000, -100_000,
                   150_000, 150_000, -150_000, -150_000, 105_000, -105_000]
    leaf0 = State.market_leaf(with_arr.state.markets[BTC])
    with_arr.ok(with_arr.mark_update({BTC: 100_000}, arrays={BTC: arr}, time=T))
    without.ok(without.mark_update({BTC: 100_000}, time=T))
    assert with_arr.state.markets[BTC].risk_array == arr
    assert without.state.markets[BTC].risk_array is None
    leaf = State.market_leaf(with_arr.state.markets[BTC])
    assert leaf != State.market_leaf(without.state.markets[BTC]) and leaf != leaf0
    # the int64 words of the array are in the leaf (negative values sign-extended)
    assert (150_000).to_bytes(32, "big") in leaf
    assert (-105_000).to_bytes(32, "big", signed=True) in leaf
    assert with_arr.state.root() != without.state.root()
    # a later mark without arrays keeps the published array
    with_arr.ok(with_arr.mark_update({BTC: 100_100}, time=T + 1))
    assert with_arr.state.markets[BTC].risk_array == arr


def test_malformed_risk_arrays_are_rejected(ex):
    arr = [0] * 16
    tx = MarkUpdate(T + 1, T + 1, [BTC, ETH], [100_000, 100_000], [arr])  # one array for two instruments
    tx.signer = ex.state.operator
    ex.reject(E.MALFORMED, ex._apply, tx)
    tx = MarkUpdate(T + 1, T + 1, [BTC], [100_000], [[0] * 15])
    tx.signer = ex.state.operator
    ex.reject(E.MALFORMED, ex._apply, tx)
    tx = MarkUpdate(T + 1, T + 1, [BTC], [100_000], [[1 << 63] + [0] * 15])  # beyond int64
    tx.signer = ex.state.operator
    ex.reject(E.MALFORMED, ex._apply, tx)


def test_genesis_with_underlyings_roundtrips_through_json():
    g = issue3_genesis()
    assert Genesis.from_json(g.to_json()) == g
