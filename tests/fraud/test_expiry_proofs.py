"""SETTLE_OPTION, SETTLE_POSITION and CLOSE_ORDER re-executed on L1 (KIND_OPERATOR_ACTION,
ExpiryVerifier), on the in-process EVM.

The pre-states come from the simulated market run through the harness (options listed, quoted
and held). The clock is then moved past expiries and every settlement step the node would send
(``clearline.core.operator.settlement_steps``: per option its SETTLE_OPTION, a SETTLE_POSITION
per holder, a CLOSE_ORDER per resting order; the last option of an expiry closes its window) is
judged against its honest post-root and a wrong one, with the window of one expiry emptied
first (dt = 0: the price is the index, frozen for the expiry's other options). Refused steps
are generated too: an option not expired yet, a perpetual, an empty slot, an id at or above
UNDERLYING_BASE, an option settled already; a position step for a holder paid, an account
without the position, an unknown account, a market not being paid; a close of an order on an
active market or of an id never placed. The contract's verdict (``judgeAction`` by
``eth_call``) must be the mirror's (``action_judgement``: the core's own re-execution); a 31
must be a refusal by the core; an accepted step is 0 against its own root and 30 against any
other.
"""

from __future__ import annotations

import heapq
import os
import sys

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

sys.path.insert(0, os.path.dirname(__file__))

from fraud_env import operator_env, singleton_chunk  # noqa: E402

from clearline.core import eip712
from clearline.core.apply import apply
from clearline.core.book import RestingOrder
from clearline.core.hashing import keccak
from clearline.core.instruments import InstrumentKind, MarketStatus
from clearline.core.operator import settlement_steps
from clearline.core.state import UNDERLYING_BASE, State
from clearline.core.txs import OperatorAction, OperatorActionKind
from clearline.l1.chain import InProcessChain, revert_data
from clearline.l1.client import decode_revert
from clearline.l1.formats import compress_proof
from clearline.watchtower.action_witness import ACTION_WITNESS_TYPE, action_judgement

A = OperatorActionKind
WRONG = keccak(b"a wrong post-root")


@pytest.fixture(scope="module")
def env():
    chain = InProcessChain(n_accounts=12)
    r, rollup, mark = operator_env(chain, steps=120)
    st = State.from_blob(r.sequencer.state.to_blob())
    held = [m for m in st.markets.values() if m.spec.kind == InstrumentKind.OPTION and st.holders[m.spec.id]]
    assert held, "the run must leave option holders"
    assert any(o.instrument in {m.spec.id for m in held} for o in st.orders.values()), "and resting option orders"
    yield chain, r, rollup, mark, st, held
    chain.close()


def _signed(env, st: State, action: int, target: int, arg: int, t: int) -> OperatorAction:
    tx = OperatorAction(t, int(action), target, arg, t)
    tx.signature = eip712.sign(st.domain, tx, env[1].sim.operator_key)
    return tx


def _judge(env, st: State, tx, post_root: bytes) -> int:
    _, r, rollup, mark, *_ = env
    witness = action_judgement(st, tx, post_root).witness
    try:
        return mark.functions.judgeAction(st.root(), post_root, rollup.functions.paramsHash().call(),
                                          r.deployment.rollup, singleton_chunk(tx), witness).call()
    except Exception as exc:  # a revert: the witness did not prove
        data = revert_data(exc)
        raise AssertionError(f"judgeAction reverted: {decode_revert(data) if data else exc}") from None


def _applied(st: State, tx) -> tuple[bool, State]:
    after = State.from_blob(st.to_blob())
    probe = OperatorAction(tx.time_ms, tx.action, tx.target, tx.arg, tx.timestamp, tx.signature)
    probe.signer = st.operator
    ok = apply(after, probe).ok
    after.root()
    return ok, after


def _check(env, st: State, tx, seen: dict, rule: str) -> tuple[bool, State]:
    """Judge ``tx`` at ``st`` against its honest root and a wrong one; returns (accepted, after)."""
    ok, after = _applied(st, tx)
    for post in (after.root(), WRONG):
        j = action_judgement(st, tx, post)
        got = _judge(env, st, tx, post)
        assert got == j.reason, (rule, tx, got, j.reason, j.detail)
        if got == 31:
            assert not ok, (rule, tx, j.detail)
        else:
            assert ok and got == (0 if post == after.root() else 30), (rule, tx, got, j.detail)
        seen[(rule, got)] = seen.get((rule, got), 0) + 1
    return ok, after


@pytest.mark.parametrize("frozen", [False, True], ids=["twap", "empty_window"])
def test_every_settlement_step_verifier_equals_core(env, frozen):
    *_, base, held = env
    expiry = max(m.spec.expiry for m in held)
    t = max(base.time_ms, expiry) + 1
    st = State.from_blob(base.to_blob())
    if frozen:  # the windows saw no time: the price is the index, frozen at each expiry's first option
        for u in st.underlyings.values():
            for w in u.windows.values():
                w[0] = w[1] = 0
            st.dirty_underlyings.add(u.config.id)
    st.root()
    seen: dict = {}
    steps = settlement_steps(st, t)
    names = {A.SETTLE_OPTION: "settle", A.SETTLE_POSITION: "position", A.CLOSE_ORDER: "close"}
    assert {a for a, _, _ in steps} == set(names)
    prices: dict = {}
    for action, target, arg in steps:
        tx = _signed(env, st, action, target, arg, t)
        rule = names[action]
        if action == A.SETTLE_POSITION and st.markets[target].unpaid_lots == abs(
                st.accounts[arg].positions[target].size):
            rule = "position_last"  # its float returns to 0
        ok, st = _check(env, st, tx, seen, rule)
        assert ok, (rule, tx)
        if action == A.SETTLE_OPTION:
            spec = st.markets[target].spec
            prices.setdefault((spec.underlying, spec.expiry), set()).add(st.markets[target].settlement_price)
    assert all(len(p) == 1 for p in prices.values()), prices  # one price per expiry
    # every expired option settled, paid and its orders closed; the windows of the expiries gone
    assert not st.paying and all(m.status == MarketStatus.DELISTED for m in st.markets.values()
                                 if m.spec.kind == InstrumentKind.OPTION and m.spec.expiry < t)
    assert not any(st.markets[o.instrument].status == MarketStatus.DELISTED for o in st.orders.values())
    for v in st.underlyings.values():
        assert all(e >= t for e in v.windows)
    st.check_invariants()
    assert {("settle", 0), ("settle", 30), ("position", 0), ("position", 30), ("position_last", 0),
            ("close", 0), ("close", 30)} <= set(seen), seen


def _deepened(env) -> tuple[State, int]:
    """The state after an expiry's settlement steps but its CLOSE_ORDERs, each side of a delisted
    option deepened by two more orders of the same owner behind its order (its price, and a tick
    worse), and the time of the steps."""
    *_, base, held = env
    t = max(base.time_ms, max(m.spec.expiry for m in held)) + 1
    st = State.from_blob(base.to_blob())
    for action, target, arg in settlement_steps(st, t):
        if action != A.CLOSE_ORDER:
            _, st = _applied(st, _signed(env, st, action, target, arg, t))
    for o in [o for o in st.orders.values() if st.markets[o.instrument].status == MarketStatus.DELISTED]:
        for price in (o.price, o.price - 1 if o.side == 0 else o.price + 1):
            if price > 0:
                st.open_order(RestingOrder(st.next_order_id, o.account, o.owner, o.instrument, o.side, price, 1, 1,
                                           o.tif, o.flags, o.stp, 0, 0))
                st.next_order_id += 1
    st.check_invariants()
    return st, t


def test_closing_orders_out_of_priority_order_relinks_the_book(env):
    """CLOSE_ORDERs of a delisted option's orders from the back of each side, then from the
    middle: every one but a side's head is unlinked through the order before it (the third
    leaf), on L1 as in the core, against the honest root and a wrong one."""
    st, t = _deepened(env)
    seen: dict = {}
    sides = [list(b.orders(side)) for b in st.books.values() for side in (0, 1)
             if st.markets[b.instrument].status == MarketStatus.DELISTED]
    order = [o.order_id for ranked in sides for o in reversed(ranked[len(ranked) // 2:])]  # back half, tail first
    order += [o.order_id for ranked in sides for o in ranked[1:len(ranked) // 2]]  # then the middle
    assert order, "the scenario leaves resting orders on a delisted option"
    _, r, rollup, mark, *_ = env
    gas = 0
    for oid in order:
        rule = "linked" if st.orders[oid].prev is not None else "head"
        tx = _signed(env, st, A.CLOSE_ORDER, oid, 0, t)
        if rule == "linked" and not gas:
            gas = mark.functions.judgeAction(st.root(), WRONG, rollup.functions.paramsHash().call(),
                                             r.deployment.rollup, singleton_chunk(tx),
                                             action_judgement(st, tx, WRONG).witness).estimate_gas()
            print(f"\nMarkVerifier.judgeAction gas, CLOSE_ORDER of an order behind another: {gas:,}")
        ok, st = _check(env, st, tx, seen, rule)
        assert ok
    st.check_invariants()  # links and heads still the priority order
    assert {("linked", 0), ("linked", 30)} <= set(seen), seen
    assert gas < 1_000_000


def test_a_close_order_witness_with_the_wrong_predecessor_reverts(env):
    """The third leaf must be the order whose next is the closed one, proven in the tree with
    the closed order's leaf already emptied: another order, or the right one proven against the
    pre-state's tree, do not prove anything (the call reverts)."""
    _, r, rollup, mark, *_ = env
    st, t = _deepened(env)
    ranked = next(list(b.orders(side)) for b in st.books.values() for side in (0, 1)
                  if st.markets[b.instrument].status == MarketStatus.DELISTED and len(list(b.orders(side))) >= 3)
    target, pred, other = ranked[2], ranked[1], ranked[0]
    tx = _signed(env, st, A.CLOSE_ORDER, target.order_id, 0, t)
    good = abi_decode([ACTION_WITNESS_TYPE], action_judgement(st, tx, WRONG).witness)[0]
    assert good[9] == State.order_leaf(pred)

    def verdict(leaf3: bytes, proof: list) -> int:
        present, siblings = compress_proof(proof)
        w = abi_encode([ACTION_WITNESS_TYPE], [(*good[:9], leaf3, present, siblings)])
        return mark.functions.judgeAction(st.root(), WRONG, rollup.functions.paramsHash().call(),
                                          r.deployment.rollup, singleton_chunk(tx), w).call()

    without = st.orders_tree.copy()
    without.set(target.order_id, bytes(32))
    assert verdict(good[9], without.proof(pred.order_id)) == 30  # the honest witness proves the wrong root
    for leaf3, proof in ((State.order_leaf(other), without.proof(other.order_id)),  # next is not the target
                         (good[9], st.orders_tree.proof(pred.order_id))):  # proven in the pre-state's tree
        with pytest.raises(Exception) as e:
            verdict(leaf3, proof)
        assert "BadExpiryWitness" in decode_revert(revert_data(e.value) or b"")


def test_refused_settlement_steps(env):
    *_, base, held = env
    seen: dict = {}
    st = State.from_blob(base.to_blob())
    opt = held[0]
    mid = opt.spec.id
    early = opt.spec.expiry - 1
    if early >= st.time_ms:
        _check(env, st, _signed(env, st, A.SETTLE_OPTION, mid, 0, early), seen, "not_expired")
    t = max(st.time_ms, opt.spec.expiry) + 1
    perp = next(m.spec.id for m in st.markets.values() if m.spec.kind == InstrumentKind.PERPETUAL)
    for target, rule in ((perp, "perpetual"), (max(st.markets) + 7, "empty_slot"), (UNDERLYING_BASE, "base")):
        _check(env, st, _signed(env, st, A.SETTLE_OPTION, target, 0, t), seen, rule)
    holder = min(st.holders[mid])
    _check(env, st, _signed(env, st, A.SETTLE_POSITION, mid, holder, t), seen, "not_paying")
    active_order = next(o for o in st.orders.values() if st.markets[o.instrument].status == MarketStatus.ACTIVE)
    _check(env, st, _signed(env, st, A.CLOSE_ORDER, active_order.order_id, 0, t), seen, "order_active")
    _check(env, st, _signed(env, st, A.CLOSE_ORDER, st.next_order_id + 3, 0, t), seen, "order_never_placed")
    # settle it: then the option again, strangers and the paid holder
    ok, st = _applied(st, _signed(env, st, A.SETTLE_OPTION, mid, 0, t))
    assert ok and st.paying == {mid}
    _check(env, st, _signed(env, st, A.SETTLE_OPTION, mid, 0, t), seen, "settled_already")
    stranger = next(a.id for a in st.accounts if mid not in a.positions)
    _check(env, st, _signed(env, st, A.SETTLE_POSITION, mid, stranger, t), seen, "no_position")
    _check(env, st, _signed(env, st, A.SETTLE_POSITION, mid, len(st.accounts) + 2, t), seen, "unknown_account")
    ok, st = _applied(st, _signed(env, st, A.SETTLE_POSITION, mid, holder, t))
    assert ok
    if st.paying:
        _check(env, st, _signed(env, st, A.SETTLE_POSITION, mid, holder, t), seen, "paid_already")
    refused = {rule for (rule, got) in seen if got == 31}
    assert {"perpetual", "empty_slot", "base", "not_paying", "order_active", "order_never_placed",
            "settled_already", "no_position", "unknown_account"} <= refused, seen
    assert not {rule for (rule, got) in seen if got != 31}, seen


def test_close_order_of_a_good_till_time_order(env):
    """CLOSE_ORDER also closes an order whose own expiry has passed (the bounded successor of
    EXPIRE_ORDERS): accepted at or after its expiry (0 against its own root, 30 against another),
    31 before it and for an order without one; EXPIRE_ORDERS itself is refused (31)."""
    *_, base, held = env
    seen: dict = {}
    st = State.from_blob(base.to_blob())
    active = sorted((o for o in st.orders.values() if st.markets[o.instrument].status == MarketStatus.ACTIVE),
                    key=lambda o: o.order_id)
    gtt, plain = active[0], active[1]
    t = st.time_ms + 10
    gtt.expiry, plain.expiry = t, 0  # as if placed good-till-time / good-till-cancelled
    heapq.heappush(st.expiries, (t, gtt.order_id))  # the expiry index follows (plain's entry goes stale)
    st.dirty_orders[gtt.order_id], st.dirty_orders[plain.order_id] = gtt, plain
    st.root()
    _check(env, st, _signed(env, st, A.CLOSE_ORDER, gtt.order_id, 0, t - 1), seen, "gtt_early")
    _check(env, st, _signed(env, st, A.CLOSE_ORDER, plain.order_id, 0, t), seen, "no_expiry")
    ok, after = _check(env, st, _signed(env, st, A.CLOSE_ORDER, gtt.order_id, 0, t), seen, "gtt_due")
    assert ok and gtt.order_id not in after.orders
    assert (gtt.order_id not in {o for _, o, _ in settlement_steps(st, t - 1)}
            and (int(A.CLOSE_ORDER), gtt.order_id, 0) in settlement_steps(st, t))
    _check(env, st, _signed(env, st, A.EXPIRE_ORDERS, 0, 0, t), seen, "expire_orders")
    assert seen == {("gtt_early", 31): 2, ("no_expiry", 31): 2, ("gtt_due", 0): 1, ("gtt_due", 30): 1,
                    ("expire_orders", 31): 2}, seen


def test_a_close_order_of_an_order_that_is_not_open_is_proven_rejected(env):
    """The orders tree holds an order at its id, so an empty leaf there shows it is not open:
    a closed order's id, id 0 and an id not yet placed are all 31, on L1 as in the core."""
    *_, base, held = env
    st = State.from_blob(base.to_blob())
    gone = next(i for i in range(1, st.next_order_id) if i not in st.orders)
    seen: dict = {}
    for target in (gone, 0, st.next_order_id):
        ok, _ = _check(env, st, _signed(env, st, A.CLOSE_ORDER, target, 0, st.time_ms + 1), seen, "not_open")
        assert not ok
    assert seen == {("not_open", 31): 6}, seen


def test_settlement_proof_gas(env):
    """judgeAction's gas re-executing each step against a wrong root."""
    *_, base, held = env
    _, r, rollup, mark, *_ = env
    t = max(base.time_ms, max(m.spec.expiry for m in held)) + 1
    st = State.from_blob(base.to_blob())
    gas: dict = {}
    for action, target, arg in settlement_steps(st, t):
        tx = _signed(env, st, action, target, arg, t)
        name = A(action).name
        if name not in gas:
            gas[name] = mark.functions.judgeAction(st.root(), WRONG, rollup.functions.paramsHash().call(),
                                                   r.deployment.rollup, singleton_chunk(tx),
                                                   action_judgement(st, tx, WRONG).witness).estimate_gas()
        _, st = _applied(st, tx)
    print("\nMarkVerifier.judgeAction gas: " + ", ".join(f"{k} {v:,}" for k, v in sorted(gas.items())))
    assert set(gas) == {"SETTLE_OPTION", "SETTLE_POSITION", "CLOSE_ORDER"} and max(gas.values()) < 1_000_000
