"""Differential test of ``MatchVerifier.step``: one MatchStep of an order matched in steps
(``clearline.core.order_steps``), re-executed on L1, against the core's own ``match_step``
(``clearline.watchtower.match_witness.match_step_mirror``), on the in-process EVM.

The orders are ``tests/property/test_order_steps.py``'s generated signed orders (GTC, GTT, IOC,
FOK; thin to fat collateral, both margin modes, perpetuals and options, books with reduce-only
and expiring orders) on fixed seeds, applied with ``stepwise=True``; for every MatchStep the
contract's ``StepResult`` (the meeting's outcome, how the order ends, its lots left and the whole
post-state preimage) must be the mirror's, and the post-state must be the one ``apply(state,
MatchStep(t), stepwise=True)`` leaves. Every ending is reached: filled, still matching, rested
after a predecessor, rested as its side's head (before an older head and on an empty side),
closed as IOC/FOK remainder or without liquidity, stopped (self-trade, margin, reduce-only) and
MAKER_LIMIT. A wrong witness (a pending leaf of another id) reverts.

``CLEARLINE_STEP_SEEDS`` sets the number of seeds (default 150: ~210 steps; every ending is
reached by seed 39 of them).
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from eth_utils import keccak

_HERE = Path(__file__).resolve().parent
for _p in (_HERE, _HERE.parent / "property", _HERE.parent):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from test_match_verifier import KEYS, _holding, _wide_state, call_or_fail, deploy_match_verifier  # noqa: E402
from test_order_steps import _incoming_order, crossing_replaces  # noqa: E402
from test_stepwise_matching import _SeededDraw, gen_case  # noqa: E402

from clearline.core.apply import apply  # noqa: E402
from clearline.core.book import BUY, SELL, RestingOrder  # noqa: E402
from clearline.core.matching import CloseReason  # noqa: E402
from clearline.core.order_steps import PendingTaker, open_pending  # noqa: E402
from clearline.core.state import MAX_POSITIONS, State  # noqa: E402
from clearline.core.txs import MatchStep  # noqa: E402
from clearline.l1.chain import InProcessChain, revert_data  # noqa: E402
from clearline.l1.formats import compress_proof  # noqa: E402
from clearline.watchtower.fraud import state_tuple  # noqa: E402
from clearline.watchtower.match_witness import (  # noqa: E402
    END_CLOSED,
    END_FILLED,
    END_MATCHING,
    END_RESTED,
    match_step_mirror,
    step_inputs,
)

SEEDS = int(os.environ.get("CLEARLINE_STEP_SEEDS", "150"))
FIRST_SEED = 10_000  # test_order_steps' own seeds


@pytest.fixture(scope="module")
def env():
    chain = InProcessChain(n_accounts=2)
    yield chain, deploy_match_verifier(chain)
    chain.close()


def _norm(result) -> tuple:
    *head, post = result
    return tuple(int(v) for v in head) + (tuple(bytes(v) if isinstance(v, (bytes, bytearray)) else int(v)
                                                for v in post),)


def _call(verifier, call, witness):
    return call_or_fail(verifier.functions.step, call, witness)


def _error(exc) -> bytes:
    """The revert data of a failed call, to compare with an error's exact encoding."""
    data = revert_data(exc)
    assert data is not None, exc
    return bytes(data)


def _ending(st: State, done) -> str:
    """The kind of ending of one step, for the coverage assertion."""
    if done.end == END_MATCHING:
        return "matching"
    if done.end == END_FILLED:
        return "filled"
    if done.end == END_CLOSED:
        return f"closed_{CloseReason(done.reason).name}"
    p = st.pending
    o = done.after.orders[p.order_id]
    if o.prev is not None:
        return "rested_after_prev"
    return "rested_head_before_older" if o.next is not None else "rested_head_alone"


def _gas_used(chain, verifier, call, witness) -> int:
    """The step's gas as a transaction (calldata included): one execution, where
    ``estimate_gas`` searches (~10x slower here); the widest is also estimated."""
    return chain.transact(verifier.functions.step(call, witness), chain.accounts[0], gas=5_000_000)["gasUsed"]


def test_match_steps_core_equals_verifier(env):
    chain, verifier = env
    seen: Counter = Counter()
    gas: list[tuple[int, str, tuple, tuple]] = []
    steps = 0
    t0 = time.monotonic()
    for seed in range(SEEDS):
        draw = _SeededDraw(FIRST_SEED + seed)
        s, tx = _incoming_order(draw, gen_case(draw))
        if not apply(s, tx, stepwise=True).ok:
            continue
        while s.pending is not None:
            done = match_step_mirror(s)
            call, witness = step_inputs(s, done)
            got = _norm(_call(verifier, call, witness))
            assert got == _norm(done.result()), (seed, steps, got[:7], done.result()[:7])
            kind = _ending(s, done)
            seen[kind] += 1
            if done.end == END_CLOSED and done.meeting.stop:
                seen["stopped"] += 1
            if steps % 2 == 0 or done.end != END_MATCHING:  # sampled: a transaction costs more than the call
                gas.append((_gas_used(chain, verifier, call, witness), f"seed {FIRST_SEED + seed}: {kind}", call,
                            witness))
            r = apply(s, MatchStep(s.time_ms), stepwise=True)
            assert r.ok, r
            s.root()
            assert state_tuple(s) == state_tuple(done.after)  # the core's own post-state
            assert got[-1] == tuple(state_tuple(s))
            steps += 1
    took = time.monotonic() - t0
    g = sorted(x[0] for x in gas)
    widest = max(gas, key=lambda x: x[0])
    estimate = verifier.functions.step(widest[2], widest[3]).estimate_gas()
    print(f"\nmatch steps: {steps} over {SEEDS} seeds in {took:.1f} s; endings: {dict(sorted(seen.items()))}")
    print(f"MatchVerifier.step gas used over {len(g)} steps (every 2nd and every end): median "
          f"{statistics.median(g):,.0f}, max {widest[0]:,} ({widest[1]}; estimate_gas {estimate:,})")
    # a crossing order's remainder always becomes its side's head (see the next test)
    for want in ("matching", "filled", "rested_head_alone",
                 "closed_IOC_REMAINDER", "closed_NO_LIQUIDITY", "closed_MAKER_LIMIT", "closed_SELF_TRADE",
                 "closed_REDUCE_ONLY", "stopped"):
        assert seen[want], (want, seen)


def test_a_remainder_rests_in_priority_order(env):
    """A crossing order's remainder always becomes its side's head: its limit is at least the
    opposite side's best, which is beyond its own side's best. The other places ``Book.add``
    gives (after the tail of its price level or of the next better level, as the last order, or
    as the head before an older one) are reached with pending orders the core never opens: ones
    that do not cross, whose step meets nothing and rests them. Contract = core for each."""
    chain, verifier = env
    seen: Counter = Counter()
    for seed in range(SEEDS):
        draw = _SeededDraw(FIRST_SEED + seed)
        s, tx = _incoming_order(draw, gen_case(draw))
        book = s.books[tx.instrument]
        for side in (BUY, SELL):
            own = sorted({o.price for o in book.orders(side)})
            other = [o.price for o in book.orders(SELL if side == BUY else BUY)]
            if len(own) < 2:
                continue
            prices = {own[0], own[-1], own[0] - 1, own[-1] + 1, (own[0] + own[-1]) // 2}
            for price in sorted(prices):
                if price <= 0 or (other and (price >= min(other) if side == BUY else price <= max(other))):
                    continue  # it would cross
                st = State.from_blob(s.to_blob())
                a = st.accounts[tx.account]
                oid = st.next_order_id
                st.next_order_id = oid + 1
                open_pending(st, PendingTaker(oid, a.id, a.owner, tx.instrument, side, 0, 0, 0, price, 3, 0, 0))
                st.root()
                done = match_step_mirror(st)
                assert done.end == END_RESTED and not done.meeting.met
                call, witness = step_inputs(st, done)
                assert _norm(_call(verifier, call, witness)) == _norm(done.result()), (seed, side, price)
                kind = _ending(st, done)
                seen[kind] += 1
                if kind == "rested_after_prev" and done.after.orders[oid].next is None:
                    seen["rested_last"] += 1
                if kind == "rested_after_prev":  # an earlier place in the list is refused
                    seen["wrong_places_refused"] += _wrong_places_revert(verifier, done, call, witness)
        if seen["rested_last"] >= 5 and seen["rested_after_prev"] >= 20 and seen["rested_head_before_older"] >= 5:
            break
    print(f"\nnon-crossing remainders rested: {dict(seen)}")
    assert seen["rested_last"] and seen["rested_after_prev"] > seen["rested_last"], seen
    assert seen["rested_head_before_older"], seen
    assert seen["wrong_places_refused"] > seen["rested_after_prev"], seen


def _wrong_places_revert(verifier, done, call, witness) -> int:
    """The remainder put first (no prev) or after its side's head (when that is not its prev):
    each call reverts (BadStepWitness(2): the order it would go before is not strictly worse).
    Returns how many wrong places were tried."""
    mid = done.meeting.after  # the orders tree the next leaf proves against; prev's: the post-state's
    o = done.after.orders[int.from_bytes(witness[0][32:64], "big")]
    head = mid.books[o.instrument].head(o.side)
    tries = [witness[:10] + (b"", 0, [])]
    if head.next is not None and State.order_leaf(head) != witness[10]:
        nxt = head.next
        tries.append(witness[:7] + (State.order_leaf(nxt), *compress_proof(mid.orders_tree.proof(nxt.order_id)))
                     + (State.order_leaf(head), *compress_proof(done.after.orders_tree.proof(head.order_id))))
    for bad in tries:
        with pytest.raises(Exception) as exc:
            verifier.functions.step(call, bad).call()
        assert _error(exc.value) == keccak(b"BadStepWitness(uint256)")[:4] + (2).to_bytes(32, "big")
    return len(tries)


def test_the_widest_step(env):
    """The widest meeting (``test_match_verifier``'s: an option fill between two accounts holding
    31 positions, which opens the 32nd of each, both gates a 32-position portfolio health) in a
    step that then reads every other leaf a step can: the next ask, which no longer crosses, and
    the older bid its GTC remainder rests before, as its side's new head. Contract = core; its
    gas is printed."""
    chain, verifier = env
    rng = random.Random(8)
    st = _wide_state(rng)
    x = 2  # an option: its fee needs the underlying leaf too
    others = [i for i in sorted(st.markets) if i != x]
    maker = _holding(st, KEYS[0], 0, others[:31], rng)
    taker = _holding(st, KEYS[1], 0, others[-31:], rng)
    third = _holding(st, KEYS[2], 0, [], rng)
    mark = st.markets[x].mark_price
    for a, side, price in ((maker, SELL, mark), (third, SELL, mark + 2), (third, BUY, mark - 3)):
        o = RestingOrder(st.next_order_id, a.id, a.owner, x, side, price, 5, 5, 0, 0, 0, 0, 0)
        st.next_order_id += 1
        st.open_order(o)
    oid = st.next_order_id
    st.next_order_id = oid + 1
    open_pending(st, PendingTaker(oid, taker.id, taker.owner, x, BUY, 0, 0, 0, mark, 8, 0, 0))
    st.root()
    done = match_step_mirror(st)
    assert done.meeting.filled == 5 and done.end == END_RESTED and done.remaining == 3
    assert len(done.after.accounts[taker.id].positions) == len(done.after.accounts[maker.id].positions) == MAX_POSITIONS
    assert _ending(st, done) == "rested_head_before_older"
    call, witness = step_inputs(st, done)
    assert _norm(_call(verifier, call, witness)) == _norm(done.result())
    estimate = verifier.functions.step(call, witness).estimate_gas()
    print(f"\nwidest MatchVerifier.step: estimate_gas {estimate:,}, used {_gas_used(chain, verifier, call, witness):,}")
    assert estimate < 3_000_000, estimate


def test_the_steps_of_a_crossing_replace(env):
    """A Replace that moves a resting order across the book opens a pending order like an Order
    does (``test_order_steps``' construction): its steps too are the core's on L1."""
    _, verifier = env
    for s, replace in crossing_replaces():
        if apply(s, replace, stepwise=True).ok and s.pending is not None:
            break
    else:
        pytest.fail("no crossing replace generated")
    n = 0
    while s.pending is not None:
        done = match_step_mirror(s)
        call, witness = step_inputs(s, done)
        assert _norm(_call(verifier, call, witness)) == _norm(done.result()), n
        assert apply(s, MatchStep(s.time_ms), stepwise=True).ok
        n += 1
    assert n >= 1


def test_a_wrong_pending_witness_reverts(env):
    """A pending leaf that is not the one at nextOrderId - 1 (its id off by one) reverts
    (BadStepWitness): the challenger's mistake, never a verdict."""
    _, verifier = env
    for seed in range(SEEDS):
        draw = _SeededDraw(FIRST_SEED + seed)
        s, tx = _incoming_order(draw, gen_case(draw))
        if apply(s, tx, stepwise=True).ok and s.pending is not None:
            break
    call, witness = step_inputs(s)
    p = s.pending
    p.order_id += 1
    bad = (p.leaf(),) + tuple(witness[1:])
    p.order_id -= 1
    with pytest.raises(Exception) as exc:
        verifier.functions.step(call, bad).call()
    assert _error(exc.value) == keccak(b"BadStepWitness(uint256)")[:4] + (0).to_bytes(32, "big")
    later = (call[0], call[1] + 1)
    with pytest.raises(Exception) as exc:
        verifier.functions.step(later, witness).call()
    assert _error(exc.value)[:4] == keccak(b"StepAtOtherTime(uint64,uint64)")[:4]
