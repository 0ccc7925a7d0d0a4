"""Unit tests for clearline.risk.remargin: hand-computed examples (a covered call, standard vs
portfolio, the OTM floor, the no-array fallback), in-place mark updates, input validation and
the documented int64 bounds (exact right up to them, a typed error beyond)."""

from __future__ import annotations

import numpy as np
import pytest

from clearline.core.instruments import InstrumentSpec
from clearline.core.requirements import portfolio_requirements, standard_requirements
from clearline.risk.bench import bench_price_greeks, bench_remargin
from clearline.risk.errors import RiskError
from clearline.risk.remargin import (ACCOUNT_MAX, LOTS_MAX, PORTFOLIO, STANDARD, PortfolioBook, RemarginError,
                                     RemarginOverflowError, below_maintenance, remargin)

M = 1_000_000  # usd6 per USD

# $1 ticks, one whole underlying unit per lot: tick_value = 1_000_000 usd6, so "ticks" read as USD
PERP = InstrumentSpec(0, "X-PERP", 0, "X", tick_size=M, lot_size=10**8, im_ppm=50_000, mm_ppm=30_000,
                      maker_fee_ppm=0, taker_fee_ppm=0)


def call(strike: int) -> InstrumentSpec:
    return InstrumentSpec(1, f"X-{strike}-C", 1, "X", tick_size=M, lot_size=10**8, im_ppm=150_000, mm_ppm=75_000,
                          maker_fee_ppm=0, taker_fee_ppm=0, strike=strike, option_type=1)


# usd6 P&L per long lot; the perp's is the +-5/10/15% grid (extremes at 35% of 30%, rounded for the example)
R_PERP = [x * M for x in (0, 0, 5, 5, -5, -5, 10, 10, -10, -10, 15, 15, -15, -15, 10, -10)]
R_CALL = [x * M for x in (1, -1, 4, 2, -2, -3, 8, 6, -3, -4, 12, 11, -4, -4, 9, -3)]
INDEX = 100 * M  # $100


def covered_book(strike=100, perp_array=R_PERP, call_array=R_CALL, modes=(PORTFOLIO, STANDARD)):
    """Two accounts, each long 1 perp and short 1 call, opened at marks 100 and 5."""
    n = len(modes)
    return PortfolioBook.from_python(
        [PERP, call(strike)], marks=[100, 5], index_usd6=[INDEX, INDEX], risk_arrays=[perp_array, call_array],
        collateral=[20 * M] * n, quote_sum=[-95 * M] * n, modes=list(modes),
        positions=[p for a in range(n) for p in ((a, 0, 1), (a, 1, -1))])


def test_covered_call_portfolio_and_standard_by_hand():
    eq, im, mm, binding = remargin(covered_book())
    # equity: 20 + (-95) + (1 * 100 - 1 * 5) = $20
    assert eq.tolist() == [20 * M, 20 * M]
    # portfolio: loss_s = R_call[s] - R_perp[s]; worst is $11 in scenarios 12 and 13 -> lowest, 12
    # + short-option minimum 1% of $100 + contingency 1 usd6 per lot (2 lots)
    assert im[0] == 11 * M + 1 * M + 2 == 12_000_002
    assert mm[0] == 9_000_002  # ceil(0.75 * 12_000_002)
    assert binding[0] == 12
    # standard: perp 5% of $100 = $5; short ATM call: premium $5 + max(15% of $100 - 0, 10% floor) = $20
    assert im[1] == 25 * M
    assert mm[1] == 3 * M + 5 * M + 7_500_000  # perp 3%, call premium + 7.5% of the underlying
    assert binding[1] == -1
    # the same numbers straight from the core rules
    pr = portfolio_requirements([(PERP, 1, 100, R_PERP, INDEX), (call(100), -1, 5, R_CALL, INDEX)])
    assert (pr.initial, pr.maintenance, pr.binding) == (im[0], mm[0], binding[0])
    assert tuple(a + b for a, b in zip(standard_requirements(PERP, 1, 100, INDEX),
                                       standard_requirements(call(100), -1, 5, INDEX))) == (im[1], mm[1])


def test_hedge_is_cheaper_than_its_legs():
    legs = PortfolioBook.from_python(
        [PERP, call(100)], [100, 5], [INDEX, INDEX], [R_PERP, R_CALL], [0, 0], [0, 0], [PORTFOLIO, PORTFOLIO],
        [(0, 0, 1), (1, 1, -1)])
    _, im, _, binding = remargin(legs)
    assert im.tolist() == [15 * M + 1, 12 * M + 1 * M + 1]  # long perp: -15% move; naked call: +15%
    assert binding.tolist() == [12, 10]
    assert remargin(covered_book()).initial[0] < im.sum()


def test_out_of_the_money_short_call_hits_the_floor():
    _, im, mm, _ = remargin(covered_book(strike=110))
    # OTM by $10: scan 15 - 10 = $5 < floor 10% of $100 -> $10, plus premium $5 and the perp's $5
    assert im[1] == 5 * M + 5 * M + 10 * M
    assert mm[1] == 15_500_000


def test_position_without_array_falls_back_to_standard():
    eq, im, mm, binding = remargin(covered_book(call_array=None, modes=(PORTFOLIO,)))
    # perp by array: worst loss $15 (scenario 12), contingency 1; the call by the standard rule ($20 / $12.5)
    assert im[0] == 15 * M + 1 + 20 * M
    assert mm[0] == -((-(15 * M + 1) * 750_000) // M) + 12_500_000
    assert binding[0] == 12
    _, im, mm, binding = remargin(covered_book(perp_array=None, call_array=None, modes=(PORTFOLIO,)))
    assert (im[0], mm[0], binding[0]) == (25 * M, 15_500_000, -1)  # no array at all: standard, no binding


def test_mark_update_in_place_and_below_maintenance():
    book = covered_book()
    assert below_maintenance(book).tolist() == []
    book.apply_mark_update([0], [90], index_usd6=[90 * M])  # perp -$10, arrays unchanged
    book.update_index([90 * M], [1])
    res = remargin(book)
    assert res.equity.tolist() == [10 * M, 10 * M]
    # portfolio: 11 + 1% of $90 + 2 lots -> 11_900_002; maintenance 75% (rounded up)
    assert (res.initial[0], res.maintenance[0]) == (11_900_002, 8_925_002)
    # standard: perp 3% of $90 + call $5 + 7.5% of $90 = 14.45 > equity 10
    assert res.maintenance[1] == 2_700_000 + 5 * M + 6_750_000
    assert below_maintenance(book).tolist() == [1]
    assert below_maintenance(book, res).tolist() == [1]
    book.clear_risk()
    assert remargin(book).binding.tolist() == [-1, -1]
    book.update_risk([R_PERP, R_CALL])
    assert remargin(book).binding.tolist() == [12, -1]


def test_empty_and_flat_accounts():
    book = PortfolioBook.from_python([PERP], [100], [INDEX], [R_PERP], [5, -7, 0], [1, 0, 0],
                                     [PORTFOLIO, STANDARD, PORTFOLIO], [(2, 0, 0)])
    eq, im, mm, binding = remargin(book)
    assert eq.tolist() == [6, -7, 0]
    assert im.tolist() == mm.tolist() == [0, 0, 0]
    assert binding.tolist() == [-1, -1, -1]  # a zero-size position has no array that counts
    assert below_maintenance(book).tolist() == [1]
    none = PortfolioBook.from_python([], [], [], [], [], [], [], [])
    assert [x.tolist() for x in remargin(none)] == [[], [], [], []]


def test_positions_are_canonicalised_and_duplicates_refused():
    a = covered_book()
    b = PortfolioBook.from_python([PERP, call(100)], [100, 5], [INDEX, INDEX], [R_PERP, R_CALL], [20 * M] * 2,
                                  [-95 * M] * 2, [PORTFOLIO, STANDARD], [(1, 1, -1), (0, 1, -1), (1, 0, 1), (0, 0, 1)])
    assert [x.tolist() for x in remargin(a)] == [x.tolist() for x in remargin(b)]
    with pytest.raises(RemarginError, match="twice"):
        PortfolioBook.from_python([PERP], [100], [INDEX], [None], [0], [0], [0], [(0, 0, 1), (0, 0, 2)])


@pytest.mark.parametrize("change, match", [
    (dict(modes=[2]), "mode"),
    (dict(positions=[(1, 0, 1)]), "account_idx"),
    (dict(positions=[(0, 1, 1)]), "instrument_idx"),
    (dict(marks=[-1]), "mark"),
    (dict(marks=[1.5]), "integers only"),
    (dict(risk_arrays=[[0] * 15]), "16"),
])
def test_invalid_books_are_refused(change, match):
    args = dict(specs=[PERP], marks=[100], index_usd6=[INDEX], risk_arrays=[None], collateral=[0], quote_sum=[0],
                modes=[0], positions=[(0, 0, 1)])
    args.update(change)
    with pytest.raises(RemarginError, match=match) as e:
        PortfolioBook.from_python(**args)
    assert isinstance(e.value, RiskError) and isinstance(e.value, ValueError)


def test_exact_at_the_bounds():
    """LOTS_MAX lots, a large index and a large mark: the split arithmetic stays exact where a
    naive ``lots * index * lot_size`` would wrap int64 many times over."""
    big_call = InstrumentSpec(1, "B-C", 1, "B", tick_size=M, lot_size=10**7, im_ppm=999_999, mm_ppm=333_333,
                              maker_fee_ppm=0, taker_fee_ppm=0, strike=1, option_type=2)
    specs = [big_call, PERP]
    marks, index = [7, 3], [123_456_789, 10**8 + 1]
    positions = [(0, 0, -LOTS_MAX), (1, 0, LOTS_MAX - 1), (1, 1, -LOTS_MAX), (2, 0, -LOTS_MAX), (2, 1, LOTS_MAX)]
    arrays = [[(-1) ** s * 12_345 * (s + 1) for s in range(16)], None]
    coll, quote = [ACCOUNT_MAX, -ACCOUNT_MAX, 0], [-ACCOUNT_MAX, ACCOUNT_MAX, 1]
    for modes in ([0, 0, 0], [1, 1, 1]):
        book = PortfolioBook.from_python(specs, marks, index, arrays, coll, quote, modes, positions)
        res = remargin(book)
        for a in range(3):
            held = [(i, q) for acc, i, q in positions if acc == a]
            eq = coll[a] + quote[a] + sum(q * marks[i] * specs[i].tick_value for i, q in held)
            if modes[a] == 0:
                reqs = [standard_requirements(specs[i], q, marks[i], index[i]) for i, q in held]
                exp = (eq, sum(r[0] for r in reqs), sum(r[1] for r in reqs), -1)
            else:
                r = portfolio_requirements([(specs[i], q, marks[i], arrays[i], index[i]) for i, q in held])
                exp = (eq, r.initial, r.maintenance, r.binding)
            assert tuple(int(x[a]) for x in res) == exp
        assert max(abs(v) for v in res.equity.tolist()) > 2**53  # beyond float64's exact integers


def test_overflow_is_refused_with_a_typed_error():
    base = dict(specs=[PERP], marks=[100], index_usd6=[INDEX], risk_arrays=[None], collateral=[0], quote_sum=[0],
                modes=[0], positions=[(0, 0, 1)])
    for change in (dict(positions=[(0, 0, LOTS_MAX + 1)]), dict(collateral=[ACCOUNT_MAX + 1]),
                   dict(collateral=[2**64]), dict(index_usd6=[2**62]), dict(risk_arrays=[[2**62] * 16])):
        with pytest.raises(RemarginOverflowError):
            PortfolioBook.from_python(**{**base, **change})
    book = PortfolioBook.from_python(**base)
    book.update_marks([2**62 // M])  # fits int64, but mark * tick_value does not fit the bound
    with pytest.raises(RemarginOverflowError, match="tick_value"):
        remargin(book)


def test_per_account_bound_is_checked_per_account():
    """One account with huge lot counts in a cheap instrument, another with one lot of an
    expensive one: the crude global bound fails, the per-account one passes; an account
    holding both fails."""
    cheap = InstrumentSpec(1, "C-PERP", 0, "C", tick_size=10, lot_size=10**7, im_ppm=50_000, mm_ppm=30_000,
                           maker_fee_ppm=0, taker_fee_ppm=0)  # tick_value 1 usd6
    specs = [PERP, cheap]
    marks = [2_300_000_000_000, M]  # PERP: 2.3e18 usd6 per lot, just below ACCOUNT_MAX; cheap: 1e6
    args = (specs, marks, [0, 0], [None, None], [0, 0], [0, 0], [0, 0])
    book = PortfolioBook.from_python(*args, [(0, 1, LOTS_MAX), (1, 0, -1)])
    eq, im, _, _ = remargin(book)
    assert eq.tolist() == [LOTS_MAX * M, -2_300_000_000_000 * M]
    assert im.tolist() == [LOTS_MAX * 50_000, 2_300_000_000_000 * 50_000]
    book = PortfolioBook.from_python(*args, [(0, 1, LOTS_MAX), (0, 0, -1)])
    with pytest.raises(RemarginOverflowError, match="account 0"):
        remargin(book)


def test_benchmarks_run_small():
    assert bench_remargin(n_accounts=2_000, positions_per_account=4, n_instruments=20, repeats=2) > 0
    assert bench_price_greeks(n=1_000, repeats=2) > 0
