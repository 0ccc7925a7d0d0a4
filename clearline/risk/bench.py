"""Benchmarks of the vectorised risk code (figures, never assertions).

- :func:`bench_remargin`: median milliseconds of one full re-margin of every account right after
  a mark update (``remargin_100k_accounts_ms``; issue target <= 100 ms for 100k accounts with
  ~10 positions each). The book (instruments, positions, collateral) and the mark updates
  (marks, index, risk arrays computed with :func:`clearline.risk.risk_array`) are prepared
  before timing; the timed step is applying the update to the book in place *and* re-margining
  every account (:func:`clearline.risk.remargin.remargin`).
- :func:`bench_price_greeks`: median milliseconds to price *and* compute the Greeks of ``n``
  options with :mod:`clearline.risk.black76` (``price`` then ``greeks``, vectorised)
  (``price_greeks_10k_options_ms``; target <= 20 ms).

Both are deterministic in their inputs (seeded ``numpy.random.Generator``); only the clock varies.
One untimed warm-up run precedes the timed repeats.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from ..core.instruments import InstrumentKind, InstrumentSpec, OptionType
from . import black76
from .arrays import option_mark_ticks, risk_array
from .remargin import PORTFOLIO, STANDARD, PortfolioBook, remargin

__all__ = ["bench_remargin", "bench_price_greeks", "make_bench_book"]

MS_PER_DAY = 86_400_000

# underlying -> (forward in ticks, tick_size usd6, lot_size 1e-8 units): tick_value = 10 usd6 for both
_UNDERLYINGS = {"BTC": (1_000_000, 100_000, 10_000), "ETH": (300_000, 10_000, 100_000)}


def _instruments(n_instruments: int, rng: np.random.Generator):
    """About 10% perpetuals, the rest calls and puts on a strike grid, 1..90 days, BTC and ETH."""
    specs, meta = [], []  # meta: (underlying, t_years, vol)
    n_perps = max(1, n_instruments // 10)
    for k in range(n_instruments):
        und = "BTC" if k % 2 == 0 else "ETH"
        f0, tick, lot = _UNDERLYINGS[und]
        if k < n_perps:
            specs.append(InstrumentSpec(k, f"{und}-PERP-{k}", InstrumentKind.PERPETUAL, und, tick_size=tick,
                                        lot_size=lot, im_ppm=50_000, mm_ppm=30_000, maker_fee_ppm=100,
                                        taker_fee_ppm=500))
            meta.append((und, 0.0, 0.0))
            continue
        days = int(rng.choice([1, 2, 7, 14, 30, 60, 90]))
        strike = int(round(f0 * float(rng.uniform(0.7, 1.3)) / 1000)) * 1000
        otype = OptionType.CALL if rng.random() < 0.5 else OptionType.PUT
        specs.append(InstrumentSpec(k, f"{und}-{days}D-{strike}-{'C' if otype == OptionType.CALL else 'P'}",
                                    InstrumentKind.OPTION, und, tick_size=tick, lot_size=lot, im_ppm=150_000,
                                    mm_ppm=75_000, maker_fee_ppm=100, taker_fee_ppm=300,
                                    expiry=days * MS_PER_DAY, strike=strike, option_type=otype))
        meta.append((und, days / 365.0, float(rng.uniform(0.4, 0.9))))
    return specs, meta


def _market(specs, meta, forwards: dict[str, int]):
    """Marks (ticks), index (usd6) and risk arrays of every instrument at ``forwards``."""
    marks, index, risk = [], [], []
    for spec, (und, t, vol) in zip(specs, meta):
        F = forwards[und]
        index.append(F * spec.tick_size)
        if spec.kind == InstrumentKind.PERPETUAL:
            marks.append(F)
            risk.append(risk_array(spec, F))
        else:
            marks.append(option_mark_ticks(spec, F, vol, t, 0.0))
            risk.append(risk_array(spec, F, vol, t, 0.0))
    return (np.array(marks, dtype=np.int64), np.array(index, dtype=np.int64), np.array(risk, dtype=np.int64))


def make_bench_book(n_accounts: int = 100_000, positions_per_account: int = 10, n_instruments: int = 200,
                    n_updates: int = 1, seed: int = 1, portfolio_share: float = 0.9):
    """A seeded book plus ``n_updates`` prepared mark updates ``(marks, index, risk)``.

    Every account holds exactly ``positions_per_account`` distinct instruments (signed sizes of
    1..500 lots); ``portfolio_share`` of the accounts are in portfolio mode."""
    if not 0 < positions_per_account <= n_instruments:
        raise ValueError("need 0 < positions_per_account <= n_instruments")
    rng = np.random.default_rng(seed)
    specs, meta = _instruments(n_instruments, rng)
    f0 = {u: v[0] for u, v in _UNDERLYINGS.items()}
    marks, index, risk = _market(specs, meta, f0)

    k = positions_per_account
    # k distinct instruments per account: strictly increasing offsets in [1, n_instruments], mod n
    steps = rng.integers(1, n_instruments // k + 1, size=(n_accounts, k))
    inst = (rng.integers(0, n_instruments, size=(n_accounts, 1)) + np.cumsum(steps, axis=1)) % n_instruments
    acct = np.repeat(np.arange(n_accounts, dtype=np.int64), k)
    size = rng.integers(1, 501, size=n_accounts * k) * rng.choice(np.array([-1, 1]), size=n_accounts * k)
    mode = np.where(rng.random(n_accounts) < portfolio_share, PORTFOLIO, STANDARD)
    collateral = rng.integers(0, 20_000_000_000, size=n_accounts)  # up to $20k

    book = PortfolioBook(account_idx=acct, instrument_idx=inst.ravel(), size=size, collateral=collateral,
                         quote_sum=np.zeros(n_accounts, dtype=np.int64), mode=mode,
                         kind=[s.kind for s in specs], option_type=[s.option_type for s in specs],
                         strike=[s.strike for s in specs], tick_size=[s.tick_size for s in specs],
                         lot_size=[s.lot_size for s in specs], im_ppm=[s.im_ppm for s in specs],
                         mm_ppm=[s.mm_ppm for s in specs], mark=marks, index_usd6=index, risk=risk)
    # positions opened at the initial marks: quote = -size * mark * tick_value
    book.update_quote_sum(-remargin(book).equity + book.collateral)

    updates = []
    for _ in range(n_updates):
        fwd = {u: int(round(f * float(np.exp(rng.normal(0.0, 0.03))))) for u, f in f0.items()}
        updates.append(_market(specs, meta, fwd))
    return book, updates


def bench_remargin(n_accounts: int = 100_000, positions_per_account: int = 10, n_instruments: int = 200,
                   repeats: int = 5, seed: int = 1) -> float:
    """Median ms of: apply one mark update to the book in place, then re-margin every account."""
    book, updates = make_bench_book(n_accounts, positions_per_account, n_instruments, repeats + 1, seed)
    times = []
    for r, (marks, index, risk) in enumerate(updates):
        t = time.perf_counter()
        book.apply_mark_update(None, marks, risk, index)
        remargin(book)
        dt = time.perf_counter() - t
        if r:  # the first run is a warm-up
            times.append(dt * 1e3)
    return statistics.median(times)


def bench_price_greeks(n: int = 10_000, repeats: int = 5, seed: int = 1) -> float:
    """Median ms to price and compute delta/gamma/vega/theta of ``n`` options (Black-76)."""
    rng = np.random.default_rng(seed)
    F = rng.uniform(1_000.0, 100_000.0, n)
    K = F * rng.uniform(0.6, 1.6, n)
    T = rng.uniform(1.0 / 365.0, 2.0, n)
    r = np.full(n, 0.03)
    vol = rng.uniform(0.2, 1.2, n)
    is_call = rng.random(n) < 0.5
    times = []
    for i in range(repeats + 1):
        t = time.perf_counter()
        black76.price(F, K, T, r, vol, is_call)
        black76.greeks(F, K, T, r, vol, is_call)
        dt = time.perf_counter() - t
        if i:
            times.append(dt * 1e3)
    return statistics.median(times)


if __name__ == "__main__":  # python -m clearline.risk.bench
    print({"remargin_100k_accounts_ms": round(bench_remargin(), 2),
           "price_greeks_10k_options_ms": round(bench_price_greeks(), 2)})
