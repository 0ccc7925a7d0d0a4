"""FUNDING_SETTLE and FUNDING_PAY re-executed on L1 (KIND_OPERATOR_ACTION, FundingVerifier), and
KIND_FUNDING_PENDING, on the in-process EVM.

The pre-states come from the simulated market run through the harness (perpetual holders on
both sides, options listed), with each perpetual's funding fields set by the generator: the
interval started or not, ended or not, samples taken or due, sums of either sign, a mark or
none, ACTIVE or HALTED, already being paid or not. FUNDING_SETTLE targets perpetuals, options,
empty slots and ids at or above UNDERLYING_BASE. FUNDING_PAY runs on states where a settlement
at a non-zero rate is being paid, some holders paid already: the holders still due (the last
one hands the float to the insurance fund), holders paid, accounts without the position,
unknown accounts, markets not being paid. Each is judged against the honest post-root and a
wrong one. The contract's verdict (``judgeAction`` by ``eth_call``) must be the mirror's
(``action_judgement``: the core's own re-execution), 31 must be a rejection by the core, and
every accepted step must give 0 against its honest root and 30 against another.
``CLEARLINE_DIFF_FUNDING_CASES`` sets the number of generated steps (default 240).
"""

from __future__ import annotations

import os
import random
import sys

import pytest
from eth_abi import encode as abi_encode

sys.path.insert(0, os.path.dirname(__file__))

from fraud_env import operator_env, singleton_chunk  # noqa: E402

from clearline.core import eip712
from clearline.core.apply import apply
from clearline.core.errors import ErrorCode
from clearline.core.hashing import keccak
from clearline.core.instruments import InstrumentKind, MarketStatus
from clearline.core.operator import funding_payments_due
from clearline.core.state import UNDERLYING_BASE, State
from clearline.core.txs import MarkUpdate, OperatorAction, OperatorActionKind
from clearline.l1.chain import InProcessChain, revert_data
from clearline.l1.client import decode_revert
from clearline.l1.deploy import contract_abi
from clearline.watchtower.action_witness import action_judgement
from clearline.watchtower.fraud import PENDING_WITNESS_TYPE, _is_funding_pay, state_tuple

N_CASES = int(os.environ.get("CLEARLINE_DIFF_FUNDING_CASES", "240"))
SEED = int(os.environ.get("CLEARLINE_DIFF_SEED", "6"))
A = OperatorActionKind
WRONG = keccak(b"a wrong post-root")


@pytest.fixture(scope="module")
def env():
    chain = InProcessChain(n_accounts=12)
    r, rollup, mark = operator_env(chain, steps=60)
    st = State.from_blob(r.sequencer.state.to_blob())
    perps = [m.spec.id for m in st.markets.values() if m.spec.kind == InstrumentKind.PERPETUAL]
    assert perps and all(st.holders[mid] for mid in perps), "the run must leave holders of every perpetual"
    funding = chain.w3.eth.contract(address=mark.functions.funding().call(), abi=contract_abi("FundingVerifier"))
    yield chain, r, rollup, mark, funding, st, perps
    chain.close()


def _judge(env, st: State, tx, post_root: bytes, witness: bytes | None = None) -> int:
    _, r, rollup, mark, *_ = env
    if witness is None:
        witness = action_judgement(st, tx, post_root).witness
    try:
        return mark.functions.judgeAction(st.root(), post_root, rollup.functions.paramsHash().call(),
                                          r.deployment.rollup, singleton_chunk(tx), witness).call()
    except Exception as exc:  # a revert: the witness did not prove
        data = revert_data(exc)
        raise AssertionError(f"judgeAction reverted: {decode_revert(data) if data else exc}") from None


def _signed(env, st: State, action: int, target: int, arg: int, t: int) -> OperatorAction:
    tx = OperatorAction(t, int(action), target, arg, t)
    tx.signature = eip712.sign(st.domain, tx, env[1].sim.operator_key)
    return tx


def _after(st: State, tx) -> tuple[bool, bytes]:
    """(accepted, root after) of the core applying ``tx`` to a copy of ``st``."""
    s = State.from_blob(st.to_blob())
    probe = OperatorAction(tx.time_ms, tx.action, tx.target, tx.arg, tx.timestamp, tx.signature)
    probe.signer = st.operator
    ok = apply(s, probe).ok
    return ok, s.root()


def _funding_state(base: State, rng: random.Random, perps: list[int]) -> tuple[State, int]:
    """A copy of ``base`` whose perpetuals' funding fields are generated; and a time."""
    st = State.from_blob(base.to_blob())
    p = st.params
    t = st.time_ms + rng.choice([0, 1, 1_000, p.funding_interval_ms, 3 * p.funding_interval_ms + 7])
    slots = p.funding_interval_ms // p.funding_sample_ms
    for mid in perps:
        m = st.markets[mid]
        ended = rng.random() < 0.75
        m.last_funding_time = 0 if rng.random() < 0.08 else (
            t - p.funding_interval_ms - rng.randrange(0, 2 * p.funding_interval_ms) if ended
            else t - rng.randrange(0, p.funding_interval_ms))
        m.last_funding_time = max(0, m.last_funding_time)
        m.premium_samples = rng.choice([0, slots - 1, slots, slots, rng.randrange(slots + 1)])
        m.premium_sum = rng.choice([0, rng.randrange(-90_000, 90_000), rng.randrange(-3_000, 3_000)])
        m.last_sample_time = max(0, t - rng.choice([0, p.funding_sample_ms - 1, p.funding_sample_ms, 10**6]))
        m.last_sample_time = min(m.last_sample_time, st.time_ms)
        if rng.random() < 0.06:
            m.status = MarketStatus.HALTED
        if rng.random() < 0.05:
            m.mark_price = 0
        st.dirty_markets.add(mid)
    st.root()
    return st, t


def _paying_state(env, base: State, rng: random.Random) -> tuple[State, int, int]:
    """A state where a perpetual's funding (settled at a non-zero rate) is being paid, some of
    its holders paid already: (state, perpetual, time)."""
    *_, perps = env
    for _ in range(50):
        st = State.from_blob(base.to_blob())
        mid = rng.choice(perps)
        m = st.markets[mid]
        p = st.params
        t = st.time_ms + p.funding_interval_ms
        m.last_funding_time = st.time_ms - 1
        m.premium_samples = p.funding_interval_ms // p.funding_sample_ms
        m.premium_sum = rng.choice([-1, 1]) * rng.randrange(1_000, 90_000)
        m.last_sample_time = st.time_ms
        st.dirty_markets.add(mid)
        tx = _signed(env, st, A.FUNDING_SETTLE, mid, 0, t)
        tx.signer = st.operator
        if apply(st, tx).ok and st.paying:
            due = funding_payments_due(st)
            for pm, aid in due[:rng.randrange(len(due))]:  # some holders paid already
                pay = _signed(env, st, A.FUNDING_PAY, pm, aid, t)
                pay.signer = st.operator
                assert apply(st, pay).ok
            st.root()
            return st, mid, t
    raise AssertionError("no settlement at a non-zero rate")


def _cases(env, rng: random.Random):
    """(rule, pre-state, tx) for generated FUNDING_SETTLEs and FUNDING_PAYs."""
    *_, base, perps = env
    options = [m.spec.id for m in base.markets.values() if m.spec.kind == InstrumentKind.OPTION]
    for i in range(N_CASES):
        if i % 2 == 0:
            st, t = _funding_state(base, rng, perps)
            target = rng.choice(perps * 6 + options[:1] + [max(base.markets) + 5, UNDERLYING_BASE,
                                                           UNDERLYING_BASE + 1])
            if rng.random() < 0.08 and target in st.markets:  # this market is already being paid
                st.markets[target].unpaid_lots = 3
                st.paying.add(target)
                st.dirty_markets.add(target)
                st.root()
            yield "settle", st, _signed(env, st, A.FUNDING_SETTLE, target, 0, t)
        else:
            st, mid, t = _paying_state(env, base, rng)
            due = [aid for pm, aid in funding_payments_due(st) if pm == mid]
            paid = [aid for aid in st.holders[mid] if aid not in due]
            outsiders = [a.id for a in st.accounts if mid not in a.positions]
            pick = rng.random()
            if pick < 0.6 or not (paid or outsiders):
                target, arg, rule = mid, rng.choice(due), "due" if len(due) > 1 else "last"
            elif pick < 0.7 and paid:
                target, arg, rule = mid, rng.choice(paid), "paid"
            elif pick < 0.8 and outsiders:
                target, arg, rule = mid, rng.choice(outsiders), "no_position"
            elif pick < 0.9:
                target, arg, rule = mid, len(st.accounts) + rng.randrange(3), "unknown_account"
            else:
                target = rng.choice([p for p in perps if p != mid] + options[:1] + [UNDERLYING_BASE + 2])
                arg, rule = rng.choice(due), "not_paying"
            yield rule, st, _signed(env, st, A.FUNDING_PAY, target, arg, t)


def test_generated_funding_steps_verifier_equals_core(env):
    rng = random.Random(SEED)
    seen: dict[tuple[str, int], int] = {}
    for rule, st, tx in _cases(env, rng):
        ok, honest_root = _after(st, tx)
        for post_root in (honest_root, WRONG):
            j = action_judgement(st, tx, post_root)
            got = _judge(env, st, tx, post_root, j.witness)
            assert got == j.reason, (rule, tx, got, j.reason, j.detail)
            if got == 31:
                assert not ok, (rule, tx, j.detail)
            elif ok:  # accepted: 0 exactly against its own root
                assert got == (0 if post_root == honest_root else 30), (rule, tx, got, j.detail)
            seen[(rule, got)] = seen.get((rule, got), 0) + 1
    # every kind of case was reached, settlements both refused and re-executed
    assert {("settle", 31), ("settle", 0), ("settle", 30), ("due", 0), ("due", 30), ("last", 0), ("last", 30),
            ("paid", 31), ("no_position", 31), ("unknown_account", 31), ("not_paying", 31)} <= set(seen), seen


def test_last_payment_moves_the_float_to_insurance(env):
    rng = random.Random(SEED + 1)
    st, mid, t = _paying_state(env, env[5], rng)
    before = st.insurance_fund
    m = st.markets[mid]
    for pm, aid in funding_payments_due(st):
        tx = _signed(env, st, A.FUNDING_PAY, pm, aid, t)
        ok, root = _after(st, tx)
        assert ok and _judge(env, st, tx, root) == 0
        tx.signer = st.operator
        assert apply(st, tx).ok
    assert m.unpaid_lots == 0 and m.pay_float == 0 and not st.paying
    assert st.insurance_fund >= before  # the rounding remainder: payers round up, receivers down
    assert all(st.accounts[a].positions[mid].funding_index == m.funding_index for a in st.holders[mid])


def _pending_witness(st: State, mid: int) -> bytes:
    present, siblings = fraud_compress(st, mid)
    return abi_encode([PENDING_WITNESS_TYPE], [(state_tuple(st), State.market_leaf(st.markets[mid]), present,
                                                siblings)])


def fraud_compress(st: State, mid: int):
    from clearline.l1.formats import compress_proof

    return compress_proof(st.markets_tree.proof(mid))


def test_funding_pending_proves_anything_but_a_payment(env):
    """KIND_FUNDING_PENDING: while a market is being paid, a chunk that is not one packed
    FUNDING_PAY is 31 (the core rejects its first transaction: FUNDING_IN_PROGRESS); a
    FUNDING_PAY chunk, or any chunk while nothing is being paid, is 0; a leaf of another
    state reverts."""
    *_, funding, base, perps = env
    rng = random.Random(SEED + 2)
    st, mid, t = _paying_state(env, base, rng)
    (pm, aid), *_ = funding_payments_due(st)
    pay = _signed(env, st, A.FUNDING_PAY, pm, aid, t)
    mark = MarkUpdate(t, t, [perps[0]], [st.markets[perps[0]].mark_price], [], [])
    mark.signature = eip712.sign(st.domain, mark, env[1].sim.operator_key)
    others = [_signed(env, st, A.EXPIRE_ORDERS, 0, 0, t), _signed(env, st, A.FUNDING_TICK, 0, 0, t),
              _signed(env, st, A.FUNDING_SETTLE, perps[0], 0, t), mark]
    witness = _pending_witness(st, mid)
    assert _is_funding_pay(singleton_chunk(pay))
    assert funding.functions.judgePending(st.root(), singleton_chunk(pay), witness).call() == 0
    for tx in others:
        chunk = singleton_chunk(tx)
        assert not _is_funding_pay(chunk)
        assert funding.functions.judgePending(st.root(), chunk, witness).call() == 31, tx
        probe = State.from_blob(st.to_blob())
        tx.signer = st.operator
        assert apply(probe, tx).code == ErrorCode.FUNDING_IN_PROGRESS
    # nothing being paid: the same chunks are not provable this way
    quiet = State.from_blob(base.to_blob())
    for tx in others:
        assert funding.functions.judgePending(quiet.root(), singleton_chunk(tx), _pending_witness(quiet, mid)).call() == 0
    with pytest.raises(Exception) as exc:
        funding.functions.judgePending(st.root(), singleton_chunk(others[0]), _pending_witness(quiet, mid)).call()
    assert "BadFundingWitness" in decode_revert(revert_data(exc.value))


def test_funding_proof_gas(env):
    """judgeAction's gas re-executing a FUNDING_SETTLE and a FUNDING_PAY against a wrong root."""
    _, r, rollup, mark, *_ = env
    rng = random.Random(SEED + 3)
    st, mid, t = _paying_state(env, env[5], rng)
    (pm, aid), *_ = funding_payments_due(st)
    pay = _signed(env, st, A.FUNDING_PAY, pm, aid, t)
    gas = {}
    gas["pay"] = mark.functions.judgeAction(st.root(), WRONG, rollup.functions.paramsHash().call(),
                                            r.deployment.rollup, singleton_chunk(pay),
                                            action_judgement(st, pay, WRONG).witness).estimate_gas()
    base, mid = env[5], env[6][0]
    pst, _ = _funding_state(base, random.Random(1), [])
    m = pst.markets[mid]
    p = pst.params
    m.last_funding_time, m.premium_samples, m.last_sample_time = pst.time_ms - 1, 0, pst.time_ms
    m.premium_samples = p.funding_interval_ms // p.funding_sample_ms
    pst.dirty_markets.add(mid)
    settle = _signed(env, pst, A.FUNDING_SETTLE, mid, 0, pst.time_ms + p.funding_interval_ms)
    assert action_judgement(pst, settle, WRONG).reason == 30
    gas["settle"] = mark.functions.judgeAction(pst.root(), WRONG, rollup.functions.paramsHash().call(),
                                               r.deployment.rollup, singleton_chunk(settle),
                                               action_judgement(pst, settle, WRONG).witness).estimate_gas()
    print(f"\nMarkVerifier.judgeAction gas: FUNDING_SETTLE {gas['settle']:,}, FUNDING_PAY {gas['pay']:,}")
    assert max(gas.values()) < 1_000_000
