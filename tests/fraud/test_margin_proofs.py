"""Differential test of the margin paths of KIND_COLLATERAL_ROOT: withdrawals, transfers and
forced withdrawals from accounts that hold positions (free collateral = equity minus the
initial requirement, from proven market and underlying leaves through the MarginVerifier),
margin-mode changes (the initial requirement in the new mode) and flag changes, and
operator LIQUIDATE actions the core refuses (an account at or above maintenance, or one
holding an underlying whose index jump is unconfirmed).

The state is built directly (accounts with random perpetual and option positions, marks, risk
arrays, both margin modes, index prices, pending jumps), so every margin case is reached
without a trading history. For every generated chunk the FraudVerifier (``eth_call`` from the
Rollup's address, the EIP-712 domain's contract) must give the core's verdict: 0 with the
core's post-root, 31 where the core rejects a transaction, 30 for a wrong post-root. A
liquidation the core accepts is not re-executed on L1: the Python side declines to build a
witness (counted) and the contract reverts ``LiquidationNotReexecuted`` (checked once).

``CLEARLINE_DIFF_MARGIN_TXS`` sets the number of generated transactions (default 600),
``CLEARLINE_DIFF_SEED`` the seed.
"""

from __future__ import annotations

import os
import random

import pytest
from eth_utils import to_checksum_address

from clearline.core import eip712
from clearline.core.apply import apply, recover_signer
from clearline.core.errors import ErrorCode, Rejected
from clearline.core.instruments import InstrumentSpec, default_perpetuals
from clearline.core.margin import health
from clearline.core.state import Genesis, Position, State
from clearline.core.txs import (ForcedWithdrawal, OperatorAction, OperatorActionKind, SetAccountFlags, SetMarginMode,
                                Transfer, Withdraw)
from clearline.core.underlying import UnderlyingConfig
from clearline.l1.batch_v3 import decode_chunk_v3, encode_batch_v3, must_be_alone
from clearline.l1.chain import InProcessChain, revert_data
from clearline.l1.client import decode_revert
from clearline.l1.deploy import contract_abi, deploy
from clearline.l1.formats import batch_data_parts
from clearline.oracle.aggregate import OracleConfig, OracleState
from clearline.watchtower import fraud

N_TXS = int(os.environ.get("CLEARLINE_DIFF_MARGIN_TXS", "600"))
SEED = int(os.environ.get("CLEARLINE_DIFF_SEED", "6"))
USD = 10**6
OPERATOR_KEY = bytes.fromhex("11" * 32)


@pytest.fixture(scope="module")
def env():
    chain = InProcessChain(n_accounts=2)
    dep = deploy(chain)
    verifier = chain.w3.eth.contract(address=dep.verifier, abi=contract_abi("FraudVerifier"))
    yield chain, dep, verifier
    chain.close()


def _options() -> list[InstrumentSpec]:
    """Calls and puts on BTC and ETH around the index (ids after the perpetuals)."""
    out = []
    nid = 2
    for und, tick, lot, index_ticks, step in (("BTC", 100_000, 1_000_000, 100_000, 5_000),
                                               ("ETH", 10_000, 10_000_000, 100_000, 5_000)):
        for strike in (index_ticks - step, index_ticks, index_ticks + step):
            for otype, tag in ((1, "C"), (2, "P")):
                out.append(InstrumentSpec(nid, f"{und}-X-{strike}-{tag}", 1, und, tick, lot, 150_000, 75_000,
                                          200, 500, expiry=10**13, strike=strike, option_type=otype))
                nid += 1
    return out


def _state(chain, dep, rng: random.Random, keys: list[bytes]) -> State:
    oracle = OracleConfig((eip712.address_of(OPERATOR_KEY),), quorum=1, staleness_ms=5_000,
                          max_deviation_ppm=100_000, confirmations=2)
    specs = tuple(default_perpetuals()) + tuple(_options())
    genesis = Genesis(chain.chain_id, bytes.fromhex(dep.rollup[2:]), eip712.address_of(OPERATOR_KEY), specs,
                      (100_000, 100_000), (UnderlyingConfig(0, "BTC", oracle), UnderlyingConfig(1, "ETH", oracle)))
    st = State(genesis)
    for uid, index in ((0, 10_000 * USD), (1, 1_000 * USD)):
        st.underlyings[uid].oracle = OracleState(uid, index, 1, 1)
        st.dirty_underlyings.add(uid)
    for m in st.markets.values():
        s = m.spec
        if s.kind == 1:
            m.mark_price = rng.randrange(1, 4_000)
        if rng.random() < 0.7:
            m.risk_array = [rng.randrange(-50_000, 50_000) * s.tick_value // 10 for _ in range(16)]
        st.dirty_markets.add(s.id)
    for k in keys:
        owner = eip712.address_of(k)
        for sub in (0, 1):
            a = st.account_for(owner, sub)
            a.collateral = rng.randrange(0, 3_000) * USD
            a.margin_mode = rng.randrange(2)
            for inst in sorted(rng.sample(sorted(st.markets), rng.randrange(0, 5))):
                m = st.markets[inst]
                size = rng.choice((-1, 1)) * rng.randrange(1, 60)
                quote = -size * m.mark_price * m.spec.tick_value + rng.randrange(-200, 200) * USD
                a.positions[inst] = Position(size, quote, m.funding_index)
                st.holders[inst].add(a.id)
    st.time_ms = 1_000
    st.root()
    return st


def _pause(st: State, uid: int, on: bool) -> None:
    o = st.underlyings[uid].oracle
    st.underlyings[uid].oracle = OracleState(uid, o.index_price, o.index_time_ms, o.last_round_ms,
                                             o.index_price * 2 if on else 0, 1 if on else 0)
    st.dirty_underlyings.add(uid)


class Gen:
    def __init__(self, rng: random.Random, keys: list[bytes], st: State):
        self.rng = rng
        self.key_of = {eip712.address_of(k): k for k in keys}
        self.st = st
        self.counts: dict[str, int] = {}

    def _free(self, a) -> int:
        equity, im, _ = health(self.st, a)
        return max(0, min(a.collateral, equity - im))

    def tx(self, t: int, alone: bool):
        """A random transaction at ``t``; a LIQUIDATE only when it can start a chunk (``alone``)."""
        rng, st = self.rng, self.st
        a = st.accounts[rng.randrange(len(st.accounts))]
        free = self._free(a)
        amount = rng.choice((free, free + 1, max(1, free // 2), a.collateral, rng.randrange(1, 5_000) * USD))
        amount = max(1, amount)
        kind = rng.choice(("withdraw", "withdraw", "transfer", "forced", "forced", "mode", "mode", "flags")
                          + (("liquidate", "liquidate", "liquidate") if alone else ()))
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if kind == "forced":
            return ForcedWithdrawal(t, st.l1_queue_pos, a.owner, a.id, amount)
        if kind == "liquidate":
            tx = OperatorAction(t, int(OperatorActionKind.LIQUIDATE), a.id, 0, t)
            tx.signature = eip712.sign(st.domain, tx, OPERATOR_KEY)
            return tx
        nonce = a.nonce + rng.choice((1, 1, 1, 0))
        if kind in ("mode", "flags"):
            value = rng.choice((0, 1, 1 - a.margin_mode, 2)) if kind == "mode" else rng.choice((0, 1, 1, 2, 255))
            tx = (SetMarginMode if kind == "mode" else SetAccountFlags)(t, a.id, value, nonce)
            tx.signature = eip712.sign(st.domain, tx, self.key_of[a.owner] if rng.random() < 0.95 else OPERATOR_KEY)
            return tx
        if kind == "withdraw":
            tx = Withdraw(t, a.id, amount, nonce)
        else:
            tx = Transfer(t, a.id, 1 - a.subaccount, amount, nonce)
        tx.signature = eip712.sign(st.domain, tx, self.key_of[a.owner])
        return tx


def _error_name(exc: BaseException) -> str | None:
    return decode_revert(revert_data(exc))[0]


def _decoded(txs: list) -> list:
    if not txs:
        return []
    data = encode_batch_v3(txs, len(txs))
    _, parts = batch_data_parts(data)
    (a, e), = parts
    return decode_chunk_v3(data[a:e], 0, e - a, len(txs))


def _call(verifier, dep, st: State, txs: list, post_root: bytes, w: fraud.CollateralWitness):
    data = encode_batch_v3(txs, len(txs))
    head, parts = batch_data_parts(data)
    (a, e), = parts
    ctx = (fraud.KIND_COLLATERAL_ROOT, 0, 1, 1, len(txs), 0, 0, st.root(), post_root, to_checksum_address(dep.vault), bytes(32), bytes(32), bytes(32))
    return verifier.functions.verify(ctx, head, data[a:e], w.encode(fraud.state_tuple(st))).call({"from": dep.rollup})


def test_margin_paths_core_equals_verifier(env):
    chain, dep, verifier = env
    rng = random.Random(SEED)
    keys = [bytes([i + 1]) * 32 for i in range(6)]
    st = _state(chain, dep, rng, keys)
    gen = Gen(rng, keys, st)
    stats = {"chunks": 0, "txs": 0, "rejected": 0, "accepted": 0, "due_liquidations": 0, "wrong_root": 0,
             "margin_witnesses": 0}
    t = st.time_ms
    reverted_once = False
    while stats["txs"] < N_TXS:
        if rng.random() < 0.15:
            _pause(st, rng.randrange(2), rng.random() < 0.5)
            st.root()
        txs = []
        sim = State.from_blob(st.to_blob())
        gen.st = sim  # each transaction is generated against the state before it
        for _ in range(rng.randrange(1, 6)):
            t += rng.randrange(1, 50)
            tx = gen.tx(t, alone=not txs)
            txs.append(tx)
            if type(tx) in (Withdraw, Transfer, SetMarginMode, SetAccountFlags):
                try:
                    recover_signer(sim, tx)
                except Rejected:
                    tx.signer = None
            r = apply(sim, tx)
            if type(tx) is SetMarginMode and r.code == ErrorCode.INSUFFICIENT_MARGIN:
                gen.counts["mode_below_initial"] = gen.counts.get("mode_below_initial", 0) + 1
            if not r.ok or must_be_alone(tx):
                break  # a chunk ends at a rejection; withdrawals, transfers, forced withdrawals and
                # operator actions are alone in their chunk (batch data v3)
        gen.st = st
        stats["txs"] += len(txs)
        stats["chunks"] += 1
        decoded = _decoded(txs)
        w = fraud.collateral_witness(st, decoded)
        if w is None:  # a due liquidation: not provable by this kind
            stats["due_liquidations"] += 1
            assert type(txs[0]) is OperatorAction
            assert len(txs) == 1  # alone in its chunk
            if not reverted_once:
                target = decoded[0].target
                w = fraud.CollateralWitness(0, 0, None, [fraud._account_witness(st, target)],
                                            [fraud.margin_witness(st, target)])
                with pytest.raises(Exception) as e:
                    _call(verifier, dep, st, txs, bytes(32), w)
                assert _error_name(e.value) == "LiquidationNotReexecuted"
                reverted_once = True
            continue
        stats["margin_witnesses"] += len(w.margins)
        sol = _call(verifier, dep, st, txs, w.post_root or bytes(32), w)
        assert sol == w.reason, (stats, w.reason, sol, txs)
        if w.reason:
            stats["rejected"] += 1
            good = txs[:w.index]
        else:
            good = txs
        if not good:
            continue
        gd = _decoded(good)
        w2 = fraud.collateral_witness(st, gd)
        assert w2 is not None and w2.reason == 0
        if w.reason:
            assert _call(verifier, dep, st, good, w2.post_root, w2) == 0
        if stats["chunks"] % 7 == 0:
            wrong = bytes([w2.post_root[0] ^ 1]) + w2.post_root[1:]
            assert _call(verifier, dep, st, good, wrong, w2) == 30
            stats["wrong_root"] += 1
        for tx in gd:
            if type(tx) in (Withdraw, Transfer, SetMarginMode, SetAccountFlags):
                recover_signer(st, tx)
            assert apply(st, tx).ok
        assert st.root() == w2.post_root
        stats["accepted"] += len(good)
        t = st.time_ms
    print(f"\nmargin differential: {stats}\ncases: {gen.counts}")
    assert stats["rejected"] >= 10 and stats["accepted"] >= 50 and stats["margin_witnesses"] >= 50
    assert reverted_once and stats["due_liquidations"] >= 1
    assert gen.counts["mode"] >= 20 and gen.counts["flags"] >= 10 and gen.counts.get("mode_below_initial", 0) >= 3


def test_a_refused_liquidation_is_rejected_even_unsigned(env):
    """The verifier does not need the operator's signature: a healthy account's liquidation is
    refused by the core whoever signs it. Without its margin witness the call reverts."""
    chain, dep, verifier = env
    rng = random.Random(3)
    keys = [bytes([i + 1]) * 32 for i in range(2)]
    st = _state(chain, dep, rng, keys)
    healthy = next(a for a in st.accounts if a.positions and health(st, a)[0] >= health(st, a)[2])
    tx = OperatorAction(st.time_ms + 1, int(OperatorActionKind.LIQUIDATE), healthy.id, 0, st.time_ms + 1)
    tx.signature = eip712.sign(st.domain, tx, b"\x42" * 32)  # not the operator
    (d,) = _decoded([tx])
    w = fraud.collateral_witness(st, [d])
    assert w is not None and w.reason == 31
    assert _call(verifier, dep, st, [tx], bytes(32), w) == 31
    with pytest.raises(Exception) as e:
        bad = fraud.CollateralWitness(31, 0, None, w.accesses, [])  # no margin witness
        _call(verifier, dep, st, [tx], bytes(32), bad)
    assert _error_name(e.value) == "WitnessCount"


def test_worst_case_margin_proof_gas(env):
    """The largest margin check a proof can carry: an account at the core's position limit
    (MAX_POSITIONS, perpetuals and options on two underlyings, portfolio mode), whose refused
    liquidation is proven. The verifier's gas (``verify`` from the Rollup, calldata included)
    stays far below the 3,000,000 target; printed for the closing note."""
    from clearline.core.state import MAX_POSITIONS

    chain, dep, verifier = env
    oracle = OracleConfig((eip712.address_of(OPERATOR_KEY),), quorum=1, staleness_ms=5_000,
                          max_deviation_ppm=100_000, confirmations=2)
    specs = list(default_perpetuals())
    nid = 2
    while len(specs) < MAX_POSITIONS:
        und, tick, lot = (("BTC", 100_000, 1_000_000), ("ETH", 10_000, 10_000_000))[nid % 2]
        strike = 90_000 + 1_000 * nid
        specs.append(InstrumentSpec(nid, f"{und}-W-{strike}-{nid}", 1, und, tick, lot, 150_000, 75_000, 200, 500,
                                    expiry=10**13, strike=strike, option_type=1 + nid % 2))
        nid += 1
    genesis = Genesis(chain.chain_id, bytes.fromhex(dep.rollup[2:]), eip712.address_of(OPERATOR_KEY), tuple(specs),
                      (100_000, 100_000), (UnderlyingConfig(0, "BTC", oracle), UnderlyingConfig(1, "ETH", oracle)))
    st = State(genesis)
    for uid, index in ((0, 10_000 * USD), (1, 1_000 * USD)):
        st.underlyings[uid].oracle = OracleState(uid, index, 1, 1)
    rng = random.Random(5)
    for m in st.markets.values():
        if m.spec.kind == 1:
            m.mark_price = rng.randrange(100, 3_000)
        m.risk_array = [rng.randrange(-(1 << 40), 1 << 40) for _ in range(16)]  # wide values: long residuals
    key = b"\x07" * 32
    a = st.account_for(eip712.address_of(key), 0)
    a.collateral = 10**15
    a.margin_mode = 1
    for inst in sorted(st.markets):
        m = st.markets[inst]
        size = rng.choice((-1, 1)) * rng.randrange(1, 50)
        a.positions[inst] = Position(size, -size * m.mark_price * m.spec.tick_value, 0)
    st.time_ms = 1_000
    st.root()
    assert len(a.positions) == MAX_POSITIONS and health(st, a)[0] >= health(st, a)[2]
    tx = OperatorAction(st.time_ms + 1, int(OperatorActionKind.LIQUIDATE), a.id, 0, st.time_ms + 1)
    tx.signature = eip712.sign(st.domain, tx, OPERATOR_KEY)
    (d,) = _decoded([tx])
    w = fraud.collateral_witness(st, [d])
    assert w.reason == 31 and len(w.margins[0][0]) == MAX_POSITIONS
    data = encode_batch_v3([tx], 1)
    head, parts = batch_data_parts(data)
    (s0, e0), = parts
    ctx = (fraud.KIND_COLLATERAL_ROOT, 0, 1, 1, 1, 0, 0, st.root(), bytes(32), to_checksum_address(dep.vault), bytes(32), bytes(32), bytes(32))
    call = verifier.functions.verify(ctx, head, data[s0:e0], w.encode(fraud.state_tuple(st)))
    assert call.call({"from": dep.rollup}) == 31
    gas = call.estimate_gas({"from": dep.rollup})
    print(f"\nrefused liquidation of a {MAX_POSITIONS}-position account: verify gas {gas:,}")
    assert gas < 3_000_000
