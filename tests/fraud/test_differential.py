"""Differential test: the Python core (``clearline.core.apply``) against the FraudVerifier's
re-execution (KIND_COLLATERAL_ROOT, on the in-process EVM, by ``eth_call``) over thousands of
generated Deposits, ForcedWithdrawals, Withdraws, Transfers, SetMarginModes and
SetAccountFlags, valid and invalid (wrong queue index, unknown account, not the owner, wrong
signer, used nonce, zero amount, more than the collateral, transfer to its own subaccount, an
unknown margin mode or flag, time going backwards), deposits and transfers that create
accounts included (the account index's witness). (Accounts here hold no positions: the margin
paths are tests/fraud/test_margin_proofs.py's.)

Chunks are generated against a running Python state: a chunk ends at the first transaction the
core rejects. For every chunk the verifier must give the core's verdict: reason 0 with the
post-root the core computes (so both roots are identical) when the core accepts all of it,
reason 31 when the core rejects one; a chunk that ends in a rejection is also sent without
it (accepted, same root), and some accepted chunks with a wrong post-root (reason 30).

``CLEARLINE_DIFF_TXS`` sets the number of generated transactions (default 2,000; a soak run:
``CLEARLINE_DIFF_TXS=20000``), ``CLEARLINE_DIFF_SEED`` the seed.
"""

from __future__ import annotations

import os
import random

import pytest
from eth_utils import to_checksum_address

from clearline.core import eip712
from clearline.core.apply import apply, recover_signer
from clearline.core.errors import Rejected
from clearline.core.state import Genesis, State
from clearline.core.txs import Deposit, ForcedWithdrawal, SetAccountFlags, SetMarginMode, Transfer, Withdraw
from clearline.l1.batch_v3 import decode_chunk_v3, encode_batch_v3, must_be_alone
from clearline.l1.chain import InProcessChain
from clearline.l1.deploy import contract_abi, deploy
from clearline.l1.formats import batch_data_parts
from clearline.watchtower import fraud

N_TXS = int(os.environ.get("CLEARLINE_DIFF_TXS", "2000"))
SEED = int(os.environ.get("CLEARLINE_DIFF_SEED", "6"))
CHUNK = 32
USD = 10**6


@pytest.fixture(scope="module")
def env():
    chain = InProcessChain(n_accounts=2)
    dep = deploy(chain)
    verifier = chain.w3.eth.contract(address=dep.verifier, abi=contract_abi("FraudVerifier"))
    genesis = Genesis(chain.chain_id, bytes.fromhex(dep.rollup[2:]), bytes(19) + b"\x01")
    yield chain, dep, verifier, genesis
    chain.close()


class Gen:
    """Random transactions against a state (which it does not change)."""

    def __init__(self, rng: random.Random, keys: list[bytes]):
        self.rng = rng
        self.keys = keys
        self.owners = [eip712.address_of(k) for k in keys]
        self.key_of = dict(zip(self.owners, keys))
        self.counts: dict[str, int] = {}

    def _note(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def tx(self, st: State, t: int):
        rng = self.rng
        if rng.random() < 0.01 and st.time_ms > 0:
            t = st.time_ms - 1
            self._note("time_backwards")
        n = len(st.accounts)
        roll = rng.random()
        if roll < 0.3:  # deposit into an existing account, a new one (the account index), or the insurance fund
            q = st.l1_queue_pos
            if rng.random() < 0.03:
                q += rng.choice((1, 2, -1)) if q > 0 else 1
                self._note("deposit_wrong_queue_index")
            if rng.random() < 0.08:
                owner, sub = bytes(20), 0
            elif rng.random() < 0.15:  # a new account (or, by chance, an existing one)
                owner = rng.choice(self.owners) if rng.random() < 0.7 else rng.randbytes(20)
                sub = rng.randrange(2, 12)
                self._note("deposit_new_account" if (owner, sub) not in st.account_ids else "deposit")
            else:
                a = st.accounts[rng.randrange(n)]
                owner, sub = a.owner, a.subaccount
            amount = 0 if rng.random() < 0.04 else rng.randrange(1, 500 * USD)
            self._note("deposit")
            return Deposit(t, q, owner, sub, amount)
        if roll < 0.42:  # forced withdrawal: served or denied, the item consumed
            q = st.l1_queue_pos
            if rng.random() < 0.05:
                q += 1
                self._note("forced_wrong_queue_index")
            acct = rng.randrange(n + 2)
            a = st.accounts[acct] if acct < n else None
            owner = a.owner if a is not None and rng.random() < 0.8 else rng.choice(self.owners)
            col = a.collateral if a is not None else 100 * USD
            amount = rng.choice((0, rng.randrange(1, max(2, col + 1)), col + rng.randrange(1, 10 * USD)))
            self._note("forced_withdrawal")
            return ForcedWithdrawal(t, q, owner, acct, amount)
        # a signed withdrawal or transfer
        acct = rng.randrange(n + 1) if rng.random() < 0.05 else rng.randrange(n)
        a = st.accounts[acct] if acct < n else None
        col = a.collateral if a is not None else 100 * USD
        nonce = (a.nonce if a is not None else 0) + rng.randrange(1, 4)
        if a is not None and rng.random() < 0.03:
            nonce = rng.choice((a.nonce, max(0, a.nonce - 1)))
            self._note("used_nonce")
        r = rng.random()
        amount = 0 if r < 0.02 else col + rng.randrange(1, 5 * USD) if r < 0.06 else rng.randrange(1, max(2, col // 3))
        key = self.key_of.get(a.owner) if a is not None else None  # None: an owner without a known key
        key = key or rng.choice(self.keys)
        if rng.random() < 0.03:
            key = rng.choice(self.keys)
            self._note("maybe_wrong_signer")
        roll = rng.random()
        if roll < 0.12:
            value = rng.choice((0, 1, 1, 2, 7, 255))
            if value > 1:
                self._note("unknown_mode_or_flag")
            if roll < 0.06:
                tx = SetMarginMode(t, acct, value, nonce)
                self._note("set_margin_mode")
            else:
                tx = SetAccountFlags(t, acct, value, nonce)
                self._note("set_account_flags")
        elif roll < 0.56:
            tx = Withdraw(t, acct, amount, nonce)
            self._note("withdraw")
        else:
            sub = a.subaccount if a is not None else 0
            to = sub if rng.random() < 0.03 else (1 if sub == 0 else 0) if rng.random() < 0.8 else rng.randrange(2, 12)
            if a is not None and (a.owner, to) not in st.account_ids:
                self._note("transfer_new_account")
            tx = Transfer(t, acct, to, amount, nonce)
            self._note("transfer")
        tx.signature = eip712.sign(st.domain, tx, key)
        return tx


def _verify(verifier, dep, st: State, txs: list, post_root: bytes, w) -> int:
    """The verifier's reason for ``txs`` as one chunk from ``st`` claimed to end at ``post_root``
    (eth_call from the Rollup's address: the EIP-712 domain is the Rollup's)."""
    data = encode_batch_v3(txs, len(txs))
    head, parts = batch_data_parts(data)
    (a, e), = parts
    chunk = data[a:e]
    pre = fraud.state_tuple(st)
    witness = w.encode(pre)
    ctx = (fraud.KIND_COLLATERAL_ROOT, 0, 1, 1, len(txs), 0, 0, st.root(), post_root,
           to_checksum_address(dep.vault), bytes(32), bytes(32), bytes(32))
    return verifier.functions.verify(ctx, head, chunk, witness).call({"from": dep.rollup})


def test_core_and_verifier_agree_on_generated_transactions(env):
    chain, dep, verifier, genesis = env
    rng = random.Random(SEED)
    keys = [(1000 + i).to_bytes(32, "big") for i in range(6)]
    gen = Gen(rng, keys)
    st = State(genesis)
    t = 1_000
    for owner in gen.owners:  # subaccounts 0 and 1 of every owner (the pre-state)
        for sub in (0, 1):
            t += 1
            assert apply(st, Deposit(t, st.l1_queue_pos, owner, sub, rng.randrange(50, 2_000) * USD)).ok
    st.root()
    stats = {"txs": 0, "accepted_txs": 0, "rejected_txs": 0, "chunks": 0, "calls": 0, "wrong_root_calls": 0}
    pending = None  # a withdrawal, transfer or forced withdrawal that starts the next chunk
    while stats["txs"] < N_TXS:
        # a chunk against a scratch copy: up to CHUNK transactions, ending at the first rejection;
        # a withdrawal, transfer or forced withdrawal alone (batch data v3)
        sim = State.from_blob(st.to_blob())
        txs, rejected = [], False
        while len(txs) < CHUNK:
            if pending is None:
                t += rng.randrange(0, 4)
                tx = gen.tx(sim, t)
                t = max(t, tx.time_ms)
            else:
                tx, pending = pending, None
            if must_be_alone(tx) and txs:
                pending = tx
                break
            txs.append(tx)
            try:
                recover_signer(sim, tx)
            except Rejected:
                tx.signer = None
            if not apply(sim, tx).ok:
                rejected = True
                break
            if must_be_alone(tx):
                break
        stats["txs"] += len(txs)
        stats["chunks"] += 1
        decoded = _decoded(txs)
        w = fraud.collateral_witness(st, decoded)
        reason, index, post, acc = w.reason, w.index, w.post_root, w
        assert (reason == 31) == rejected and (not rejected or index == len(txs) - 1)
        sol = _verify(verifier, dep, st, txs, post if post is not None else bytes(32), acc)
        stats["calls"] += 1
        assert sol == reason, (stats, reason, sol, txs[index] if reason else None)
        good = txs[:-1] if rejected else txs
        if rejected:
            stats["rejected_txs"] += 1
        stats["accepted_txs"] += len(good)
        if good:
            gd = _decoded(good)
            w2 = fraud.collateral_witness(st, gd)
            r2, post2, acc2 = w2.reason, w2.post_root, w2
            assert r2 == 0
            if rejected:
                assert _verify(verifier, dep, st, good, post2, acc2) == 0
                stats["calls"] += 1
            if stats["chunks"] % 8 == 0:
                wrong = bytes([post2[0] ^ 1]) + post2[1:]
                assert _verify(verifier, dep, st, good, wrong, acc2) == 30
                stats["wrong_root_calls"] += 1
            for tx in gd:
                assert apply(st, tx).ok
            assert st.root() == post2
    print(f"\ndifferential: {stats}\ncases: {dict(sorted(gen.counts.items()))}")
    assert stats["rejected_txs"] >= N_TXS // 50
    assert stats["accepted_txs"] >= N_TXS // 2
    assert gen.counts.get("deposit_new_account", 0) >= 20 and gen.counts.get("transfer_new_account", 0) >= 10
    assert gen.counts.get("set_margin_mode", 0) >= 20 and gen.counts.get("set_account_flags", 0) >= 20


def _decoded(txs: list) -> list:
    """``txs`` as the verifier sees them: encoded as one chunk and decoded back."""
    data = encode_batch_v3(txs, len(txs))
    _, parts = batch_data_parts(data)
    (a, e), = parts
    return decode_chunk_v3(data[a:e], 0, e - a, len(txs))
