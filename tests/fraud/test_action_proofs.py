"""KIND_OPERATOR_ACTION: the MarkVerifier's ``judgeAction`` judges one OperatorAction on L1 and
must give the verdict of ``clearline.watchtower.action_witness.action_judgement``: 31 where the
core rejects the action for a reason the transaction, the pre-state, the consensus params and
one leaf show, 0 otherwise.

The pre-states come from the simulated market run through the harness on the in-process EVM
(options listed, so underlyings hold settlement windows; makers with resting orders), some
with accounts that opted in to operator cancels. Generated OperatorActions cover actions 1..6
and unknown ones (FUNDING_SETTLE and FUNDING_PAY: tests/fraud/test_funding_proofs.py), good
and bad signatures, timestamps and times, known and unknown
accounts with and without the opt-in flag, good and bad cancel triggers, configured and
unconfigured underlyings, known and unknown expiries before and after them. Python's verdict
is compared with the contract's by ``eth_call``; a 31 must also be a rejection by the core.
``CLEARLINE_DIFF_ACTION_CASES`` sets the number of generated cases (default 300).
"""

from __future__ import annotations

import os
import random
import sys

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

sys.path.insert(0, os.path.dirname(__file__))

from fraud_env import operator_env, replay_journal, singleton_chunk  # noqa: E402

from clearline.core import eip712
from clearline.core.apply import apply, recover_signer
from clearline.core.errors import Rejected
from clearline.core.hashing import keccak
from clearline.core.state import State
from clearline.core.txs import AccountFlag, OperatorAction, OperatorActionKind
from clearline.l1.chain import InProcessChain, revert_data
from clearline.l1.client import decode_revert
from clearline.watchtower.action_witness import ACTION_WITNESS_TYPE, action_judgement

N_CASES = int(os.environ.get("CLEARLINE_DIFF_ACTION_CASES", "300"))
SEED = int(os.environ.get("CLEARLINE_DIFF_SEED", "6"))
A = OperatorActionKind


@pytest.fixture(scope="module")
def env():
    chain = InProcessChain(n_accounts=12)
    r, rollup, mark = operator_env(chain)
    # pre-states along the run, and the run's own OperatorActions with theirs
    states, honest = [], []
    for i, (st, tx) in enumerate(replay_journal(r)):
        if type(tx) is OperatorAction:
            honest.append((State.from_blob(st.to_blob()), tx))
        if i % 25 == 24:
            states.append(State.from_blob(st.to_blob()))
    states.append(State.from_blob(st.to_blob()))
    assert honest and any(u.windows for u in st.underlyings.values())
    assert any(a.open_orders for a in st.accounts)
    yield chain, r, rollup, mark, states, honest
    chain.close()


_chunk = singleton_chunk


def _judge(env, st: State, tx, witness: bytes | None = None, post_root: bytes | None = None) -> int:
    chain, r, rollup, mark, _, _ = env
    post_root = st.root() if post_root is None else post_root  # read only by the re-executed steps
    if witness is None:
        witness = action_judgement(st, tx, post_root).witness
    try:
        return mark.functions.judgeAction(st.root(), post_root, rollup.functions.paramsHash().call(),
                                          r.deployment.rollup, _chunk(tx), witness).call()
    except Exception as exc:  # a revert: the witness did not prove
        data = revert_data(exc)
        raise AssertionError(f"judgeAction reverted: {decode_revert(data) if data else exc}") from None


def _core_rejects(st: State, tx) -> bool:
    t = OperatorAction(tx.time_ms, tx.action, tx.target, tx.arg, tx.timestamp, tx.signature)
    s = State.from_blob(st.to_blob())
    try:
        recover_signer(s, t)
    except Rejected:
        t.signer = None
    return not apply(s, t).ok


def _opted_in(st: State, ids) -> State:
    s = State.from_blob(st.to_blob())
    for aid in ids:
        s.accounts[aid].flags |= AccountFlag.OPERATOR_MAY_CANCEL
        s.dirty_accounts.add(aid)
    s.root()
    return s


def _cases(env, rng: random.Random):
    """(rule, pre-state, OperatorAction): one generated action each."""
    _, r, _, _, states, _ = env
    op_key = r.sim.operator_key
    for _ in range(N_CASES):
        st = states[rng.randrange(len(states))]
        if rng.random() < 0.5:  # some accounts opted in to operator cancels
            st = _opted_in(st, [a.id for a in st.accounts if rng.random() < 0.5])
        # the re-executed steps (3, 7..10): tests/fraud/test_funding_proofs.py, test_expiry_proofs.py
        action = rng.choice([1, 2, 4, 4, 5, 5, 5, 6, 0, 11, 200])
        t = st.time_ms + rng.choice([0, 1, 500, 10**6])
        target = arg = 0
        rule = "honest"
        if action == A.CANCEL_ALL_ORDERS:
            n = len(st.accounts)
            target = rng.choice([rng.randrange(n), rng.randrange(n), n, n + rng.randrange(1, 99)])
            arg = rng.choice([1, 2, 1, 2, 0, 3, 77])
            rule = ("unknown_account" if target >= n else "bad_trigger" if arg not in (1, 2)
                    else "not_opted_in" if not st.accounts[target].flags & 1 else "opted_in")
        elif action == A.LIQUIDATE:
            target = rng.randrange(len(st.accounts) + 2)
        elif action == A.EXPIRE_ORDERS:
            rule = "retired"  # unbounded: CLOSE_ORDER closes one expired order a step
        elif action == A.LIST_OPTIONS:
            uids = sorted(st.underlyings)
            target = rng.choice(uids + uids + [max(uids) + 1, 999])
            if target not in st.underlyings:
                rule = "unconfigured"
        elif action not in A._value2member_map_:
            rule = "unknown_action"
        ts = t
        bad = rng.random()
        if bad < 0.06:
            ts, rule = 0, "timestamp_zero"
        elif bad < 0.12:
            ts, rule = t + rng.randrange(1, 1000), "timestamp_future"
        elif bad < 0.16:
            ts = max(1, t - rng.randrange(0, 5000))  # an earlier timestamp is fine
        if rng.random() < 0.06 and st.time_ms > 0:
            t = st.time_ms - 1
            ts = min(ts, t) or 1
            rule = "time_back"
        tx = OperatorAction(t, action, target, arg, ts)
        sig = rng.random()
        if sig < 0.07:
            tx.signature = eip712.sign(st.domain, tx, keccak(b"someone else"))
            rule = "stranger"
        elif sig < 0.1:
            tx.signature = eip712.sign(st.domain, tx, op_key)
            tx.signature = bytes(32) + tx.signature[32:]
            rule = "r_zero"
        elif sig < 0.13:
            tx.signature = eip712.sign(st.domain, tx, op_key)
            tx.arg += 1  # signed fields changed: recovers to someone else
            rule = "tampered"
        else:
            tx.signature = eip712.sign(st.domain, tx, op_key)
        yield rule, st, tx


def test_honest_operator_actions_are_not_fraud(env):
    for st, tx in env[5][:40]:
        after = State.from_blob(st.to_blob())
        t = OperatorAction(tx.time_ms, tx.action, tx.target, tx.arg, tx.timestamp, tx.signature)
        t.signer = st.operator
        assert apply(after, t).ok
        j = action_judgement(st, tx, after.root())
        assert j.reason == 0, j.detail
        assert _judge(env, st, tx, j.witness, after.root()) == 0


def test_generated_operator_actions_core_equals_verifier(env):
    rng = random.Random(SEED)
    seen: dict[tuple[str, int], int] = {}
    for rule, st, tx in _cases(env, rng):
        j = action_judgement(st, tx)
        got = _judge(env, st, tx, j.witness)
        assert got == j.reason, (rule, tx, got, j.reason, j.detail)
        if j.reason == 31:
            assert _core_rejects(st, tx), (rule, tx, j.detail)
        seen[(rule, got)] = seen.get((rule, got), 0) + 1
    rejected = {w for (w, v) in seen if v == 31}
    assert {"unknown_account", "bad_trigger", "not_opted_in", "unconfigured", "retired",
            "unknown_action", "timestamp_zero", "timestamp_future", "time_back", "stranger", "r_zero",
            "tampered"} <= rejected, seen
    accepted = {w for (w, v) in seen if v == 0}
    assert {"honest", "opted_in"} <= accepted, seen
    for w in ("unknown_account", "bad_trigger", "not_opted_in", "unconfigured",
              "unknown_action", "timestamp_zero", "timestamp_future", "time_back", "stranger", "r_zero", "tampered"):
        assert (w, 0) not in seen, seen


def _with_leaf_of(env, st: State, other: State, tx) -> bytes:
    """``tx``'s witness at ``st`` with the leaf and its proof taken from ``other``."""
    mine = abi_decode([ACTION_WITNESS_TYPE], action_judgement(st, tx).witness)[0]
    theirs = abi_decode([ACTION_WITNESS_TYPE], action_judgement(other, tx).witness)[0]
    return abi_encode([ACTION_WITNESS_TYPE], [(mine[0], mine[1], theirs[2], theirs[3], list(theirs[4]), b"", 0, [], 0, b"", 0, [])])


def test_a_leaf_proven_against_another_root_reverts(env):
    _, r, _, _, states, _ = env
    st, other = states[-1], states[len(states) // 2]
    aid = next(a.id for a in other.accounts if st.account_leaf(st.accounts[a.id]) != other.account_leaf(a))
    tx = OperatorAction(st.time_ms + 1, int(A.CANCEL_ALL_ORDERS), aid, 1, st.time_ms + 1)
    tx.signature = eip712.sign(st.domain, tx, r.sim.operator_key)
    with pytest.raises(AssertionError, match="InvalidAccountsProof"):
        _judge(env, st, tx, _with_leaf_of(env, st, other, tx))
    # and a witness for another pre-state
    with pytest.raises(AssertionError, match="PreStateMismatch"):
        _judge(env, st, tx, action_judgement(other, tx).witness)


def test_operator_action_proof_gas(env):
    """judgeAction's gas on a CANCEL_ALL_ORDERS of an account that has not opted in."""
    chain, r, rollup, mark, states, _ = env
    st = states[-1]
    aid = next(a.id for a in st.accounts if a.open_orders)
    tx = OperatorAction(st.time_ms + 1, int(A.CANCEL_ALL_ORDERS), aid, 1, st.time_ms + 1)
    tx.signature = eip712.sign(st.domain, tx, r.sim.operator_key)
    j = action_judgement(st, tx)
    assert j.reason == 31
    gas = mark.functions.judgeAction(st.root(), st.root(), rollup.functions.paramsHash().call(),
                                     r.deployment.rollup, _chunk(tx), j.witness).estimate_gas()
    print(f"\nMarkVerifier.judgeAction gas (CANCEL_ALL_ORDERS, account leaf): {gas:,}")
    assert gas < 500_000
