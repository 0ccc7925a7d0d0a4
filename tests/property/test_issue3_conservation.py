"""Property test over the issue-3 core: random sequences mixing trades (perps and options,
standard and portfolio accounts), mark updates with signed oracle reports (small moves and
unconfirmed jumps, with and without risk arrays), funding ticks, liquidations, listings and
expiry settlements.

After every step: ``check_invariants()`` holds (sum of positions 0 per instrument, open
interest, cash conservation: collateral + quotes + insurance + fee pool = deposits -
withdrawals, uncrossed books), the insurance fund and the fee pool are never negative, and a
rejected transaction leaves the root and the snapshot bytes unchanged. At the end: the log
replays to the same root, and a snapshot round-trips exactly.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from issue3_helpers import BTC_INDEX, BTC_U, ETH_INDEX, ETH_U, USD, Ex3, assert_conserved, replay_roots  # noqa: E402

from clearline.core.instruments import InstrumentKind, MarketStatus  # noqa: E402
from clearline.core.state import State  # noqa: E402
from clearline.core.txs import CancelScope, MarginMode, OrderType, TimeInForce  # noqa: E402

T = 1_700_000_000_000
EXAMPLES = int(os.environ.get("ISSUE3_EXAMPLES", "100"))  # e.g. ISSUE3_EXAMPLES=2000 for a long soak
N_ACCOUNTS = 6
DEPOSITS = (2_000 * USD, 400 * USD, 60 * USD, 30 * USD, 300 * USD, 80 * USD)  # accounts 4, 5: portfolio
TICKS = {BTC_U: 100_000, ETH_U: 10_000}

dt = st.integers(1, 60_000)
acct = st.integers(0, N_ACCOUNTS - 1)
order_op = st.tuples(st.just("order"), acct, st.integers(0, 10_000), st.integers(0, 1), st.integers(-4, 4),
                     st.integers(1, 400), st.booleans(), dt)
trade_op = st.tuples(st.just("trade"), acct, acct, st.integers(0, 10_000), st.integers(0, 1), st.integers(1, 400), dt)
mark_op = st.tuples(st.just("mark"), st.integers(-60_000, 60_000), st.integers(-60_000, 60_000),
                    st.sampled_from([0, 0, 250_000, -250_000]), st.booleans(), dt)
ops = st.one_of(
    order_op, order_op, trade_op, trade_op, trade_op, mark_op, mark_op,
    st.tuples(st.just("funding"), dt),
    st.tuples(st.just("liquidate"), acct, dt),
    st.tuples(st.just("sweep"), dt), st.tuples(st.just("sweep"), dt),
    st.tuples(st.just("list"), st.integers(0, 1), dt),
    st.tuples(st.just("settle"), st.integers(0, 1), st.integers(0, 60_000)),
    st.tuples(st.just("cancel"), acct, dt),
    st.tuples(st.just("mode"), acct, st.integers(0, 1), dt),
    st.tuples(st.just("withdraw"), acct, st.integers(1, 50 * USD), dt),
)


class Run:
    def __init__(self):
        self.ex = ex = Ex3()
        self.true = {BTC_U: BTC_INDEX, ETH_U: ETH_INDEX}
        ex.ok(ex.mark_update(index=dict(self.true), time=T))
        ex.ok(ex.list_options(BTC_U))
        ex.ok(ex.list_options(ETH_U))
        for i, amount in enumerate(DEPOSITS):
            assert ex.account(i + 1, amount) == i
        ex.ok(ex.insurance_deposit(20 * USD))
        for a in (4, 5):
            ex.ok(ex.set_margin_mode(a, MarginMode.PORTFOLIO))
        self.mark(0, 0, 0, True, 1)
        # a little two-sided liquidity from the big account
        for inst in (0, 1):
            ex.ok(ex.buy(0, 99_500, 300, instrument=inst))
            ex.ok(ex.sell(0, 100_500, 300, instrument=inst))

    # -- helpers -----------------------------------------------------------------------------
    def tradable(self) -> list[int]:
        """Instruments open for orders: the perps first, then options nearest the money and
        expiry first (so liquidity concentrates and orders cross)."""
        t = self.ex.time
        st_ = self.ex.state
        live = [m for _, m in sorted(st_.markets.items())
                if m.status == MarketStatus.ACTIVE and m.mark_price and (not m.spec.expiry or m.spec.expiry > t)]

        def key(m):
            u = st_.underlying_by_symbol[m.spec.underlying].oracle.index_price
            return (m.spec.kind, m.spec.expiry, abs(m.spec.strike * m.spec.tick_size - u) * 1_000 // max(1, u),
                    m.spec.id)

        return [m.spec.id for m in sorted(live, key=key)]

    def step(self, fn, *args, **kw):
        s = self.ex.state
        root, blob = s.root(), s.to_blob()
        r = fn(*args, **kw)
        if not r.ok:
            assert s.root() == root, r
            assert s.to_blob() == blob, r
        assert_conserved(s)
        assert s.insurance_fund >= 0 and s.fee_pool >= 0
        return r

    # -- operations --------------------------------------------------------------------------
    def mark(self, btc_move: int, eth_move: int, jump: int, arrays: bool, d: int):
        ex = self.ex
        t = ex.time + d
        for uid, move in ((BTC_U, btc_move + jump), (ETH_U, eth_move + jump)):
            self.true[uid] = max(TICKS[uid], self.true[uid] * (1_000_000 + move) // 1_000_000)
        marks = {0: self.true[BTC_U] // TICKS[BTC_U], 1: self.true[ETH_U] // TICKS[ETH_U]}
        for i, m in ex.state.markets.items():
            if m.spec.kind == InstrumentKind.OPTION and m.status == MarketStatus.ACTIVE and m.spec.expiry > t:
                uid = BTC_U if m.spec.underlying == "BTC" else ETH_U
                marks[i] = max(1, ex.option_mark(i, t, {uid: self.true[uid]}))
        index = {uid: [p * (1_000_000 + n) // 1_000_000 for n in (-100, 0, 150)] for uid, p in self.true.items()}
        return self.step(ex.mark_update, marks, index=index, arrays="auto" if arrays else None, time=t)

    def apply_op(self, op):
        ex = self.ex
        kind, *args = op
        if kind == "order":
            a, sel, side, offset, size, ioc, d = args
            insts = self.tradable()
            inst = insts[sel % 2] if sel % 3 else insts[sel % min(len(insts), 8)]
            mark = ex.state.markets[inst].mark_price
            price = max(1, mark + offset * max(1, mark // 200))
            tif = TimeInForce.IOC if ioc else TimeInForce.GTC
            return self.step(ex.order, a, side, price, size, instrument=inst, tif=tif, order_type=OrderType.LIMIT,
                             time=ex.time + d)
        if kind == "trade":  # maker rests at the mark, taker crosses it (IOC)
            maker, taker, sel, side, size, d = args
            insts = self.tradable()
            inst = insts[sel % 2] if sel % 3 else insts[sel % min(len(insts), 8)]
            mark = ex.state.markets[inst].mark_price
            self.step(ex.order, maker, side, mark, size, instrument=inst, time=ex.time + d)
            return self.step(ex.order, taker, 1 - side, mark, size, instrument=inst, tif=TimeInForce.IOC,
                             time=ex.time + 1)
        if kind == "mark":
            return self.mark(*args)
        if kind == "funding":
            return self.step(ex.funding_tick, time=ex.time + args[0])
        if kind == "liquidate":
            return self.step(ex.liquidate, args[0], time=ex.time + args[1])
        if kind == "sweep":  # liquidate every account below maintenance
            out = None
            for a in range(len(ex.state.accounts)):
                e, _, mm = ex.health(a)
                if e < mm:
                    r = self.step(ex.liquidate, a, time=ex.time + args[0])
                    out = r if out is None or r.ok else out
            return out
        if kind == "list":
            return self.step(ex.list_options, args[0], time=ex.time + args[1])
        if kind == "settle":
            uid, late = args
            windows = sorted(ex.state.underlyings[uid].windows)
            if not windows:
                return None
            expiry = windows[0]
            t = max(ex.time + 1, expiry + late) if late else ex.time + 1  # late: jump to the expiry
            return self.step(ex.settle_expiry, uid, expiry, time=t)
        if kind == "cancel":
            return self.step(ex.cancel, args[0], scope=CancelScope.ALL, time=ex.time + args[1])
        if kind == "mode":
            return self.step(ex.set_margin_mode, args[0], args[1], time=ex.time + args[2])
        if kind == "withdraw":
            return self.step(ex.withdraw, args[0], args[1], time=ex.time + args[2])
        raise AssertionError(kind)


_NOTABLE = {"Fill", "FundingSettled", "LiquidationFill", "InsuranceCovered", "Deleveraged", "ExpirySettled", "Netting"}


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(ops, min_size=10, max_size=60))
def test_random_sequences_keep_every_invariant(seq):
    run = Run()
    ex = run.ex
    for op in seq:
        r = run.apply_op(op)
        if r is not None and r.ok:
            for name in sorted({type(e).__name__ for e in r.events} & _NOTABLE):
                event(name)
    # finally: liquidate everyone below maintenance, settle every due expiry
    r = run.apply_op(("sweep", 1))
    if r is not None and r.ok:
        for name in sorted({type(e).__name__ for e in r.events} & _NOTABLE):
            event(name)
    for uid in (BTC_U, ETH_U):
        for expiry in sorted(ex.state.underlyings[uid].windows):
            if expiry <= ex.time:
                assert run.step(ex.settle_expiry, uid, expiry).ok
    st_ = ex.state
    root = st_.root()
    blob = st_.to_blob()
    restored = State.from_blob(blob)
    assert restored.root() == root
    assert restored.to_blob() == blob
    restored.check_invariants()
    # the log replays to the same root, from genesis and from a snapshot taken halfway
    assert replay_roots(ex.genesis, ex.log)[-1] == root
    half = len(ex.log) // 2
    first = State(ex.genesis)
    replay_roots(ex.genesis, ex.log[:half], first)
    assert replay_roots(ex.genesis, ex.log[half:], State.from_blob(first.to_blob()))[-1] == root


def test_a_long_fixed_sequence_exercises_every_operation():
    """A deterministic walk (no shrinking needed) that surely reaches expiry, funding,
    liquidation and ADL; a canary that the random test's operations all work."""
    run = Run()
    ex = run.ex
    seen = set()
    script = []
    for k in range(60):
        side, offset, size = (k // 2) % 2, (k % 9) - 4, 5 + 37 * k % 400
        script.append(("order", k % N_ACCOUNTS, 7 * k, side, offset, size, k % 3 == 0, 5_000))
        if k % 5 == 0:
            jump = {20: -250_000, 40: -250_000, 50: 250_000}.get(k, 0)
            script.append(("mark", -20_000 if k < 30 else 15_000, 5_000, jump, k % 2 == 0, 7_000))
        if k % 4 == 0:
            script.append(("funding", 10_000))
        if k % 6 == 0:
            script += [("liquidate", a, 1) for a in range(N_ACCOUNTS)]
        if k % 10 == 0:
            script += [("list", 0, 1), ("list", 1, 1), ("settle", 0, 0), ("settle", 1, 0)]
    for op in script:
        r = run.apply_op(op)
        if r is not None and r.ok:
            seen.add(op[0])
            for e in r.events:
                seen.add(type(e).__name__)
    assert {"order", "mark", "funding", "liquidate", "list", "settle", "Fill", "FundingSettled", "InstrumentListed",
            "LiquidationStarted", "LiquidationFill", "InsuranceCovered", "Deleveraged", "ExpirySettled"} <= seen, seen
    assert State.from_blob(ex.state.to_blob()).root() == ex.state.root()
    assert replay_roots(ex.genesis, ex.log)[-1] == ex.state.root()
