"""The faulty batcher's order faults (``over_fill``, ``price_outside_limit``,
``under_margined_fill``) in ``order_fault_rollup`` on the in-process EVM: the fault is in batch
3 at a matching step of an Order (or Replace), the committed roots before that step's chunk
equal an honest replica's (the journal replayed with ``clearline.core.apply`` in step mode),
that chunk's root differs, and the cheating state behind it holds the described wrong value.
The watchtower's first mismatch is that very chunk, and KIND_MATCH_STEP proves it
(``MatchVerifier.judgeStep``: the step re-executed, WRONG_POST_ROOT); the full dispute
(revert, bond, freeze, escape) is ``test_dispute.py``'s. The honest run of the scenario commits
the honest roots (and carries an order the margin gate cut)."""

from __future__ import annotations

import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from test_operator_faults import (Honest, _committed, _doctored_batch, chain, committed_data,  # noqa: E402, F401
                                  fresh)  # (fixtures by name)

from clearline.core.apply import apply  # noqa: E402
from clearline.core.book import BUY  # noqa: E402
from clearline.core.ledger import Fill, OrderClosed  # noqa: E402
from clearline.core.margin import health  # noqa: E402
from clearline.core.matching import CloseReason  # noqa: E402
from clearline.core.state import State  # noqa: E402
from clearline.core.txs import MatchStep, Order, Replace  # noqa: E402
from clearline.l1.formats import decode_batch  # noqa: E402
from clearline.sequencer.faults import (FaultKind, OPERATOR_FAULTS, OPERATOR_SCENARIO_FAULTS, ORDER_FAULTS,  # noqa: E402
                                        ORDER_SCENARIO_FAULTS, PROVABLE_FAULTS, ROLLUP_FAULTS, fault_scenario,
                                        order_fault_rollup)
from clearline.watchtower.fraud import build_proof  # noqa: E402
from clearline.watchtower.l1data import RollupReader  # noqa: E402
from clearline.watchtower.verify import verify  # noqa: E402

BUILD_BUDGET_S = 10.0


def _build(chain, fault, scenario=order_fault_rollup):
    t = time.perf_counter()
    fr = scenario(chain, fault)
    took = time.perf_counter() - t
    assert took < BUILD_BUDGET_S, f"the {fault} scenario took {took:.1f} s"
    return fr


def _check_doctored(fr, fault: FaultKind):
    """The committed roots against an honest replica's, the cheating state against the
    chunk's committed root; returns (injected, tx, honest receipt, before, after, cheat)."""
    b, inj, committed, j, honest, txs, c = _doctored_batch(fr, fault)
    for number in (1, 2, 4):
        assert committed[number][1] == honest.roots[number]
    roots, want = committed[3][1], honest.roots[3]
    # the doctored root is one of the order's matching steps (empty chunks after its own)
    first = honest.chunks[3][j]
    assert first < c <= first + 16 and decode_batch(committed_data(fr, 3)).chunk_sizes[first:c + 1] == [1] + [0] * (c - first)
    assert roots[:c] == want[:c] and roots[c] != want[c]
    # the cheating state right after the doctored step is the committed root of its chunk
    cheat = b.doctored_state
    assert cheat.root() == roots[c]
    # the honest state right after that step: the order opened and matched c - first steps
    step = State.from_blob(honest.before.to_blob())
    assert apply(step, txs[j], None, True).ok
    for _ in range(c - first):
        assert apply(step, MatchStep(step.time_ms)).ok
    assert step.root() == want[c]
    receipt = apply(State.from_blob(honest.before.to_blob()), txs[j])
    assert receipt.ok
    cheat.check_invariants()  # zero-sum positions, open interest and cash: the cheat is a "real" trade
    return inj, txs[j], receipt, honest.before, honest.after, cheat, c, step


def _check_watchtower(fr, c: int, j: int):
    """The first mismatch is batch 3's chunk ``c`` (the doctored step); KIND_MATCH_STEP proves it."""
    r = fr.rollup
    report = verify(r.chain, r.deployment.rollup, progress=None, workers=1, mode="thread")
    m = report.mismatch
    assert not report.ok and m is not None
    assert (m.kind, m.batch, m.root_index, m.tx_index) == ("state_root", 3, c, None), m.line()
    assert m.chunk_first_tx == j + 1  # a step's chunk holds none: the transactions before it are 0..j
    reader = RollupReader(r.chain, r.deployment.rollup, from_block=r.deployment.block_number)
    proof = build_proof(reader, 3)
    assert (proof.chunk_index, proof.kind_name, proof.reason_name) == (c, "match_step", "WRONG_POST_ROOT")
    assert proof.chunk == b""


def test_the_fault_lists():
    assert not set(ORDER_FAULTS) & set(ROLLUP_FAULTS)
    assert set(ORDER_FAULTS) <= set(PROVABLE_FAULTS)  # KIND_MATCH_STEP re-executes their matching steps
    assert not set(ORDER_FAULTS) & set(OPERATOR_FAULTS)
    # order_fault_rollup also carries a forged and a replayed order, which KIND_SIGNATURE proves
    signed = (FaultKind.FORGED_ORDER, FaultKind.REPLAYED_OLD_ORDER)
    assert ORDER_SCENARIO_FAULTS == (*ORDER_FAULTS, *signed)
    # operator_fault_rollup also carries an order on an expired option, which KIND_ORDER proves
    assert OPERATOR_SCENARIO_FAULTS == (*OPERATOR_FAULTS, FaultKind.EXPIRED_OPTION_ORDER)
    assert set(ROLLUP_FAULTS) | set(OPERATOR_SCENARIO_FAULTS) | set(ORDER_SCENARIO_FAULTS) == set(FaultKind)
    assert PROVABLE_FAULTS == (*ROLLUP_FAULTS, *OPERATOR_FAULTS, *signed, FaultKind.EXPIRED_OPTION_ORDER,
                               *ORDER_FAULTS)


@pytest.mark.parametrize("fault", [f.value for f in ORDER_FAULTS])
def test_the_cli_accepts_the_order_faults(fault):
    from clearline.cli import FAULT_HELP, _fault_kinds

    assert fault in _fault_kinds() and FAULT_HELP.get(fault)


def test_order_fault_rollup_refuses_other_faults(chain):
    with pytest.raises(ValueError, match="order_fault_rollup carries"):
        order_fault_rollup(chain, FaultKind.WRONG_ROOT)


def test_honest_run_commits_the_honest_roots(fresh):
    fr = _build(fresh, None)
    committed = _committed(fr)
    assert sorted(committed) == [1, 2, 3, 4]
    honest = Honest(fr, committed)
    for number, (_, roots) in committed.items():
        assert roots == honest.roots[number]
    # batch 3 holds an order the margin gate cut (the thin trader's)
    replay = Honest(fr, committed, at=(3, 0)).before
    cut = 0
    for tx in honest.txs[3]:
        r = apply(replay, tx)
        assert r.ok
        cut += any(type(e) is OrderClosed and e.order_id == r.order_id and e.reason == CloseReason.INSUFFICIENT_MARGIN
                   for e in r.events)
    assert cut >= 1
    r = fr.rollup
    assert verify(r.chain, r.deployment.rollup, progress=None, workers=1, mode="thread").ok


def test_over_fill(fresh):
    fr = _build(fresh, FaultKind.OVER_FILL, fault_scenario)
    inj, tx, receipt, before, after, cheat, c, step = _check_doctored(fr, FaultKind.OVER_FILL)
    assert set(inj) == {"fault", "batch", "tx_index", "instrument", "taker_account", "maker_account", "maker_order",
                        "taker_side", "price", "qty", "extra"}
    assert type(tx) in (Order, Replace) and inj["extra"] == 1
    i, maker, taker, q = inj["instrument"], inj["maker_account"], inj["taker_account"], inj["qty"]
    # the maker order was filled completely by this transaction, at that price
    assert before.orders[inj["maker_order"]].remaining == q and inj["maker_order"] not in after.orders
    fill = next(e for e in receipt.events if type(e) is Fill and e.maker_order == inj["maker_order"])
    assert (fill.price, fill.qty, fill.taker_account) == (inj["price"], q, taker)
    sign = 1 if inj["taker_side"] == BUY else -1  # the taker's direction

    def size(s, a):
        p = s.accounts[a].positions.get(i)
        return p.size if p else 0

    honest_maker = sum(e.qty for e in receipt.events if type(e) is Fill and e.maker_account == maker)
    assert size(after, maker) - size(before, maker) == -sign * honest_maker
    # at the step that filled the maker order: one lot more each way than the honest step
    assert inj["maker_order"] in before.orders and inj["maker_order"] not in step.orders
    assert size(cheat, maker) - size(step, maker) == -sign and size(cheat, taker) - size(step, taker) == sign
    assert cheat.fee_pool > step.fee_pool
    _check_watchtower(fr, c, inj["tx_index"])


def test_price_outside_limit(fresh):
    fr = _build(fresh, FaultKind.PRICE_OUTSIDE_LIMIT, fault_scenario)
    inj, tx, receipt, before, after, cheat, c, step = _check_doctored(fr, FaultKind.PRICE_OUTSIDE_LIMIT)
    assert set(inj) == {"fault", "batch", "tx_index", "instrument", "taker_account", "maker_account", "maker_order",
                        "taker_side", "limit", "qty", "maker_price", "price"}
    assert type(tx) is Order and tx.price == inj["limit"] and tx.side == inj["taker_side"]
    first = next(e for e in receipt.events if type(e) is Fill)
    assert (first.maker_order, first.qty, first.price) == (inj["maker_order"], inj["qty"], inj["maker_price"])
    buy = tx.side == BUY
    p = inj["price"]
    assert p == (tx.price + 1 if buy else tx.price - 1) and p > 0
    assert (p > tx.price) if buy else (p < tx.price)  # beyond the taker's limit
    assert (first.price <= tx.price) if buy else (first.price >= tx.price)  # honestly within it
    i, tv, q = inj["instrument"], after.markets[inj["instrument"]].spec.tick_value, inj["qty"]
    d = q if buy else -q
    taker = cheat.accounts[inj["taker_account"]].positions[i]
    maker = cheat.accounts[inj["maker_account"]].positions[i]
    # at the step of that fill, the taker's quote carries q lots bought (sold) at p, not at the maker's price
    assert taker.quote - step.accounts[inj["taker_account"]].positions[i].quote == -d * (p - first.price) * tv
    assert maker.quote - step.accounts[inj["maker_account"]].positions[i].quote == d * (p - first.price) * tv
    assert taker.size == step.accounts[inj["taker_account"]].positions[i].size
    if i not in before.accounts[inj["taker_account"]].positions and sum(type(e) is Fill for e in receipt.events) == 1:
        assert taker.quote == -d * p * tv  # a new position of that one fill: the quote of a fill at p
    _check_watchtower(fr, c, inj["tx_index"])


def test_under_margined_fill(fresh):
    fr = _build(fresh, FaultKind.UNDER_MARGINED_FILL, fault_scenario)
    inj, tx, receipt, before, after, cheat, c, step = _check_doctored(fr, FaultKind.UNDER_MARGINED_FILL)
    assert step.root() == after.root()  # doctored after the step that ends the order
    assert set(inj) == {"fault", "batch", "tx_index", "instrument", "taker_account", "taker_order", "taker_side",
                        "maker_account", "maker_order", "price", "qty", "unfilled"}
    assert type(tx) is Order and receipt.order_id == inj["taker_order"]
    cut = next(e for e in receipt.events if type(e) is OrderClosed and e.order_id == receipt.order_id)
    assert cut.reason == CloseReason.INSUFFICIENT_MARGIN and cut.unfilled == inj["unfilled"] >= inj["qty"] >= 1
    t = inj["taker_account"]
    equity, initial, _ = health(after, after.accounts[t])
    assert equity >= initial  # honestly: within its initial margin
    equity, initial, _ = health(cheat, cheat.accounts[t])
    assert equity < initial  # the cheating fill: below it
    # the fill is against the next maker in priority, at its price, and within the taker's limit
    o = after.orders[inj["maker_order"]]
    assert o.price == inj["price"] and o.account == inj["maker_account"]
    assert (o.price <= tx.price) if tx.side == BUY else (o.price >= tx.price)
    best = after.books[tx.instrument].best_ask() if tx.side == BUY else after.books[tx.instrument].best_bid()
    assert o.price == best
    moved = cheat.accounts[t].positions[tx.instrument].size - (after.accounts[t].positions[tx.instrument].size
                                                                if tx.instrument in after.accounts[t].positions else 0)
    assert moved == (inj["qty"] if tx.side == BUY else -inj["qty"])
    left = cheat.orders.get(inj["maker_order"])
    assert (left.remaining if left else 0) == o.remaining - inj["qty"]
    _check_watchtower(fr, c, inj["tx_index"])
