"""An order applied in step mode (``apply(..., stepwise=True)`` + ``MatchStep``s) leaves exactly
the state the node's ``apply`` leaves, and every state in between is one the commitment can hold.

The states and incoming orders are ``test_stepwise_matching``'s generated cases (six accounts,
thin to fat collateral, both margin modes, perpetuals and options with risk arrays, books with
reduce-only and expiring orders, a mark move); here the incoming order is a real signed
``Order`` (GTC, GTT, IOC or FOK) applied through ``apply``, so admission, FOK, the resting
remainder, the close reasons and the order id are the core's own. Per case: the receipts agree
(ok and code), the final roots and snapshots are equal, no step runs without a pending order
or past ``MAX_MAKERS_PER_ORDER``, and at every intermediate state the pending order's leaf is
in the orders tree at its id, a snapshot round-trips to the same root, and any other
transaction is refused (``ORDER_MATCHING``) without a change. A deterministic test covers a
Replace that crosses, and the refusals of a step with nothing pending or at another time.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_HERE = Path(__file__).resolve().parent
for p in (_HERE, _HERE.parent):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from helpers import key_of, owner_of  # noqa: E402
from test_stepwise_matching import _HypothesisDraw, _SeededDraw, build, gen_case  # noqa: E402

from clearline.core import eip712, encoding  # noqa: E402
from clearline.core.apply import apply  # noqa: E402
from clearline.core.errors import ErrorCode  # noqa: E402
from clearline.core.ledger import OrderClosed, OrderRested  # noqa: E402
from clearline.core.matching import MAX_MAKERS_PER_ORDER  # noqa: E402
from clearline.core.state import State  # noqa: E402
from clearline.core.txs import Cancel, CancelScope, MatchStep, Order, OrderFlag, OrderType, Replace, TimeInForce  # noqa: E402

_USERS = {owner_of(u): u for u in range(1, 12)}


def _signed(state: State, tx):
    key = key_of(_USERS[state.accounts[tx.account].owner])
    tx.signature = eip712.sign(state.domain, tx, key)
    tx.signer = eip712.recover_signer(state.domain, tx)
    return tx


def _incoming_order(draw, case) -> tuple[State, Order]:
    inc = build(case)
    s = inc.state
    tif = (TimeInForce.GTC, TimeInForce.GTT, TimeInForce.IOC, TimeInForce.FOK)[draw(0, 3)]
    t = inc.time_ms
    tx = Order(t, inc.account, inc.inst, inc.side, OrderType.LIMIT, tif,
               OrderFlag.REDUCE_ONLY if inc.reduce_only else 0, inc.stp, inc.limit, inc.qty,
               t + 1000 if tif == TimeInForce.GTT else 0, 0, s.accounts[inc.account].nonce + 1)
    return s, _signed(s, tx)


def run_case(s: State, tx) -> dict:
    """Apply ``tx`` at once and in steps on copies of ``s``; assert they agree. Returns what
    happened, for the coverage test."""
    blob = s.to_blob()
    whole, steps = State.from_blob(blob), State.from_blob(blob)
    r_whole = apply(whole, tx)
    r_open = apply(steps, tx, stepwise=True)
    assert (r_open.ok, r_open.code) == (r_whole.ok, r_whole.code)
    n = 0
    events = list(r_open.events)
    while steps.pending is not None:
        p = steps.pending
        assert p.order_id == r_open.order_id == steps.next_order_id - 1
        root = steps.root()
        assert steps.orders_tree.get(p.order_id) == encoding.leaf_hash(p.leaf())
        assert State.from_blob(steps.to_blob()).root() == root
        other = Cancel(tx.time_ms, tx.account, CancelScope.ALL, 0, 0, 0, steps.accounts[tx.account].nonce + 1)
        refused = apply(steps, _signed(steps, other), stepwise=True)
        assert (refused.ok, refused.code) == (False, ErrorCode.ORDER_MATCHING)
        assert steps.root() == root
        r = apply(steps, MatchStep(tx.time_ms), stepwise=True)
        assert r.ok, r
        events += r.events
        n += 1
        assert n <= MAX_MAKERS_PER_ORDER
    assert steps.root() == whole.root()
    assert steps.to_blob() == whole.to_blob()
    steps.check_invariants()
    ends = [e for e in events if isinstance(e, (OrderRested, OrderClosed)) and e.order_id == r_open.order_id]
    whole_ends = [e for e in r_whole.events if isinstance(e, (OrderRested, OrderClosed))
                  and e.order_id == r_whole.order_id]
    assert list(map(repr, ends)) == list(map(repr, whole_ends))
    return {"ok": r_whole.ok, "code": r_whole.code, "steps": n,
            "end": type(ends[0]).__name__ + (f":{ends[0].reason.name}" if ends and isinstance(ends[0], OrderClosed)
                                             else "") if ends else "filled" if r_whole.ok else "refused"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_order_in_steps_equals_order_at_once(data):
    draw = _HypothesisDraw(data)
    s, tx = _incoming_order(draw, gen_case(draw))
    run_case(s, tx)


SEEDS = 300


def test_generated_orders_reach_every_ending():
    seen = Counter()
    for seed in range(SEEDS):
        draw = _SeededDraw(10_000 + seed)
        s, tx = _incoming_order(draw, gen_case(draw))
        out = run_case(s, tx)
        seen[out["end"]] += 1
        seen["steps>1" if out["steps"] > 1 else f"steps={out['steps']}"] += 1
    for want in ("OrderRested", "filled", "OrderClosed:IOC_REMAINDER", "OrderClosed:MAKER_LIMIT",
                 "OrderClosed:SELF_TRADE", "OrderClosed:REDUCE_ONLY", "OrderClosed:NO_LIQUIDITY", "steps=0", "steps=1", "steps>1", "refused"):
        assert seen[want], (want, seen)


def crossing_replaces(seeds=range(200)):
    """``(state, replace)``: a generated case's incoming order rested away from the book, then a
    signed Replace that moves it to the opposite side's best price (it crosses)."""
    for seed in seeds:
        draw = _SeededDraw(20_000 + seed)
        s, tx = _incoming_order(draw, gen_case(draw))
        if tx.tif != TimeInForce.GTC or not s.books[tx.instrument].opposite_levels(tx.side):
            continue
        head = next(iter(s.books[tx.instrument].opposite_levels(tx.side)))[0]
        away = head - 50 if tx.side == 0 else head + 50
        if away <= 0:
            continue
        rest = _signed(s, Order(tx.time_ms, tx.account, tx.instrument, tx.side, OrderType.LIMIT, TimeInForce.GTC, 0,
                                tx.stp, away, tx.size, 0, 0, tx.nonce))
        r = apply(s, rest)
        if r.ok and r.order_id in s.orders:
            yield s, _signed(s, Replace(tx.time_ms, tx.account, r.order_id, head, tx.size + 1, tx.nonce + 1))


def test_a_crossing_replace_and_the_step_refusals():
    for s, replace in crossing_replaces():
        out = run_case(s, replace)
        if out["ok"] and out["steps"]:
            break
    else:
        pytest.fail("no crossing replace generated")
    st_ = State.from_blob(s.to_blob())
    r = apply(st_, MatchStep(st_.time_ms), stepwise=True)
    assert (r.ok, r.code) == (False, ErrorCode.NO_ORDER_MATCHING)
    assert apply(st_, replace, stepwise=True).ok and st_.pending is not None
    root = st_.root()
    r = apply(st_, MatchStep(st_.time_ms + 1), stepwise=True)
    assert (r.ok, r.code) == (False, ErrorCode.NO_ORDER_MATCHING)
    assert st_.root() == root
