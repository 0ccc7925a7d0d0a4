"""KIND_ORDER: an Order the core refuses for a rule its own fields and its market's leaf show,
on the in-process EVM.

The pre-state is built directly: perpetuals and options (some options expired at the orders'
time, one market delisted, one without a mark price). Generated chunks of up to six packed Orders
signed by their owners with fresh nonces (so only the order rules can refuse them): every
packed shape (side, type, time in force, post-only and reduce-only flags, stp 0..3), zero and
non-zero prices and sizes, GTT with and without expiry, expiries before, at and after the
order's time, instruments listed, delisted, expired, unmarked, unlisted and at or above
UNDERLYING_BASE. For every order the contract's verdict (``verify`` as the Rollup) is 31 exactly
when the mirror (``order_witness.order_rule``) names a rule, the core itself refuses every order
the mirror flags (soundness: apply on the pre-state), and the mirror's first flagged order is
the chunk's. Witnesses with another pre-state, another market's leaf or a transaction that is
not a packed Order revert. ``CLEARLINE_DIFF_ORDER_CASES`` sets the number of chunks (default 150).
"""

from __future__ import annotations

import os
import random

import pytest
from eth_utils import to_checksum_address

from clearline.core import eip712
from clearline.core.apply import apply
from clearline.core.instruments import InstrumentSpec, MarketStatus, default_perpetuals
from clearline.core.state import UNDERLYING_BASE, Genesis, State
from clearline.core.txs import Deposit, Order, Withdraw
from clearline.core.underlying import UnderlyingConfig
from clearline.l1.batch_v3 import encode_batch_v3
from clearline.l1.chain import InProcessChain
from clearline.l1.deploy import contract_abi, deploy
from clearline.l1.formats import batch_data_parts
from clearline.oracle.aggregate import OracleConfig, OracleState
from clearline.watchtower import fraud
from clearline.watchtower.batch_chunks import DecodedChunks
from clearline.watchtower.order_witness import order_fault, order_rule, order_witness

CASES = int(os.environ.get("CLEARLINE_DIFF_ORDER_CASES", "150"))
USD = 10**6
T = 50_000  # the orders' times are around T
KEYS = [(3000 + i).to_bytes(32, "big") for i in range(3)]
OPERATOR_KEY = bytes.fromhex("22" * 32)


def _options() -> list[InstrumentSpec]:
    """BTC calls and puts, expiring before, at and after the orders' times (ids 2..7)."""
    return [InstrumentSpec(2 + i, f"BTC-{e}-C{i}", 1, "BTC", 100_000, 1_000_000, 150_000, 75_000, 200, 500,
                           expiry=e, strike=100_000, option_type=1 + i % 2)
            for i, e in enumerate((T - 100, T, T + 100, T + 10**6, T - 1, 10**13))]


@pytest.fixture(scope="module")
def env():
    chain = InProcessChain(n_accounts=2)
    dep = deploy(chain)
    verifier = chain.w3.eth.contract(address=dep.verifier, abi=contract_abi("FraudVerifier"))
    oracle = OracleConfig((eip712.address_of(OPERATOR_KEY),), quorum=1, staleness_ms=5_000,
                          max_deviation_ppm=100_000, confirmations=2)
    genesis = Genesis(chain.chain_id, bytes.fromhex(dep.rollup[2:]), eip712.address_of(OPERATOR_KEY),
                      tuple(default_perpetuals()) + tuple(_options()), (100_000, 100_000),
                      (UnderlyingConfig(0, "BTC", oracle), UnderlyingConfig(1, "ETH", oracle)))
    st = State(genesis)
    st.underlyings[0].oracle = OracleState(0, 10_000 * USD, 1, 1)
    st.dirty_underlyings.add(0)
    for m in st.markets.values():
        m.mark_price = 0 if m.spec.id == 7 else 1_000  # instrument 7: no mark yet
        st.dirty_markets.add(m.spec.id)
    st.markets[6].status = int(MarketStatus.DELISTED)
    for i, k in enumerate(KEYS):
        assert apply(st, Deposit(1 + i, i, eip712.address_of(k), 0, 1_000_000 * USD)).ok
    st.time_ms = T - 10_000
    st.root()
    yield chain, dep, verifier, st
    chain.close()


def _order(rng: random.Random, st: State, t: int, nonces: dict) -> Order:
    account = rng.randrange(len(KEYS))
    nonces[account] += 1
    instrument = rng.choice((0, 1, 0, 1, 5, 5, 4, 4, 2, 3, 6, 7, 8, 1000, UNDERLYING_BASE, UNDERLYING_BASE + 1))
    tif = rng.randrange(4)
    expiry = rng.choice((0, 0, t - 5, t, t + 1, t + 10**6)) if tif != 1 or rng.random() < 0.8 else 0
    if tif == 1 and expiry == 0 and rng.random() < 0.5:
        expiry = t + 10**6
    o = Order(t, account, instrument, rng.randrange(2), rng.randrange(2), tif, rng.randrange(4), rng.randrange(4),
              rng.choice((0, 1, 990, 1_010, 10**6, 1_000, 999)), rng.choice((0, 1, 5, 1_000, 2, 3)), max(0, expiry),
              rng.choice((0, rng.randrange(1, 2**40))), nonces[account])
    o.signature = eip712.sign(st.domain, o, KEYS[account])
    return o


def _verify(env, txs: list, j: int, witness: bytes | None = None) -> int:
    chain, dep, verifier, st = env
    data = encode_batch_v3(txs, 16)
    head, parts = batch_data_parts(data)
    (a, e), = parts
    if witness is None:
        witness = order_witness(st, fraud.state_tuple(st), j, txs[j].instrument)
    ctx = (fraud.KIND_ORDER, 0, 1, 1, 16, 0, 0, st.root(), bytes(32), to_checksum_address(dep.vault), bytes(32),
           bytes(32), bytes(32))
    return verifier.functions.verify(ctx, head, data[a:e], witness).call({"from": dep.rollup})


def test_contract_equals_mirror_and_the_core_refuses_what_they_flag(env):
    chain, dep, verifier, st = env
    rng = random.Random(53)
    nonces = {i: 0 for i in range(len(KEYS))}
    rules: dict[str, int] = {}
    accepted = 0
    for _ in range(CASES * 4):  # each order alone in its chunk (batch data v3)
        t = T + rng.choice((-200, -1, 0, 1, 50))
        txs = [_order(rng, st, t, nonces)]
        data = encode_batch_v3(txs, 16)
        _, parts = batch_data_parts(data)
        decoded = DecodedChunks(data, parts, 16).txs(0)
        assert decoded is not None and all(packed for packed, _ in decoded)
        first = None
        for j, (_, tx) in enumerate(decoded):
            rule = order_rule(st, tx)
            got = _verify(env, txs, j)
            assert got == (31 if rule else 0), (rule, tx)
            if rule is None:
                accepted += 1
                continue
            rules[rule] = rules.get(rule, 0) + 1
            first = j if first is None else first
            probe = State.from_blob(st.to_blob())
            tx.signer = eip712.address_of(KEYS[tx.account])
            assert not apply(probe, tx).ok, (rule, tx)  # the core refuses it too
        found = order_fault(st, decoded)
        assert (found[0] if found else None) == first
    print(f"\norder rules: {dict(sorted(rules.items()))}, not flagged: {accepted}")
    assert len(rules) == 10 and min(rules.values()) >= 3, rules  # every rule of judgeOrder
    assert accepted >= 50


def test_witness_must_open_the_order_market_at_the_pre_state(env):
    from eth_tester.exceptions import TransactionFailed

    chain, dep, verifier, st = env
    o = Order(T + 1, 0, 2, 0, 0, 0, 0, 0, 1_000, 1, 0, 0, 10**6)  # option 2 expired at T - 100
    o.signature = eip712.sign(st.domain, o, KEYS[0])
    pre = fraud.state_tuple(st)
    assert _verify(env, [o], 0) == 31
    with pytest.raises(TransactionFailed):  # another market's leaf
        _verify(env, [o], 0, order_witness(st, pre, 0, 3))
    other = (bytes(32), *pre[1:])
    with pytest.raises(TransactionFailed):  # another pre-state
        _verify(env, [o], 0, order_witness(st, other, 0, 2))
    # gas of verify (the FraudVerifier's part of proveFraud) for an order (alone in its chunk)
    data = encode_batch_v3([o], 16)
    head, parts = batch_data_parts(data)
    (a, e), = parts
    ctx = (fraud.KIND_ORDER, 0, 1, 1, 16, 0, 0, st.root(), bytes(32), to_checksum_address(dep.vault), bytes(32),
           bytes(32), bytes(32))
    gas = verifier.functions.verify(ctx, head, data[a:e], order_witness(st, pre, 0, 2)).estimate_gas(
        {"from": dep.rollup})
    print(f"\nKIND_ORDER verify gas, an order alone in its chunk: {gas:,}")
    assert gas < 1_000_000
    w = Withdraw(T + 1, 0, 5, 10**6 + 1)
    w.signature = eip712.sign(st.domain, w, KEYS[0])
    with pytest.raises(TransactionFailed):  # not an Order
        _verify(env, [w], 0, order_witness(st, pre, 0, 2))
