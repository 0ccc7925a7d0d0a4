"""KIND_NONCES: two signed transactions of one account whose nonces do not increase, proven
from the batch data alone, on the in-process EVM.

Differential: generated batches of packed Orders (with and without expiry and client id),
Cancels, Replaces, Withdraws, Transfers and SetMarginModes (plus Deposits between them) of a
few accounts, nonces mostly increasing (some close to the time, so they are written as a
delta from it, F3), some reused or lower, in chunks of 4. For every batch the mirror
(``nonce_witness.nonce_judgement``) finds the first pair that does not increase, if any, and
the contract (``FraudVerifier.verify``, called as the Rollup) returns 31 for it, through a
second chunk when the pair spans two; random pairs that do increase, or belong to two accounts,
give 0; a witness with a wrong chunk hash or naming a transaction the chunk lacks reverts.
``CLEARLINE_DIFF_NONCE_CASES`` sets the number of batches (default 300).
"""

from __future__ import annotations

import os
import random

import pytest
from eth_tester.exceptions import TransactionFailed
from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address

from clearline.core import eip712
from clearline.core.hashing import keccak
from clearline.core.txs import Cancel, Deposit, Order, Replace, SetMarginMode, Transfer, Withdraw
from clearline.batcher.records import tx_positions
from clearline.l1.batch_v3 import chunk_sizes
from clearline.l1.chain import InProcessChain
from clearline.l1.deploy import contract_abi, deploy
from clearline.l1.formats import batch_data_hash, batch_data_parts, encode_batch, withdrawals_tree
from clearline.watchtower import fraud
from clearline.watchtower.nonce_witness import NONCE_WITNESS_TYPE, nonce_judgement

CASES = int(os.environ.get("CLEARLINE_DIFF_NONCE_CASES", "300"))
K = 4
KEY = b"\x07" * 32


@pytest.fixture(scope="module")
def env():
    chain = InProcessChain(n_accounts=2)
    dep = deploy(chain)
    verifier = chain.w3.eth.contract(address=dep.verifier, abi=contract_abi("FraudVerifier"))
    domain = eip712.Domain(chain.chain_id, bytes.fromhex(dep.rollup[2:]))
    yield dep, verifier, domain
    chain.close()


def _tx(rng: random.Random, t: int, account: int, nonce: int):
    kind = rng.randrange(7)
    if kind == 0:
        return Order(t, account, rng.randrange(5), rng.randrange(2), 0, rng.randrange(2), 0, rng.randrange(3),
                     rng.randrange(1, 10**5), rng.randrange(1, 10**3),
                     t + rng.randrange(1, 10**6) if rng.random() < 0.3 else 0,
                     rng.randrange(1, 10**6) if rng.random() < 0.3 else 0, nonce)
    if kind == 1:
        return Cancel(t, account, rng.randrange(4), rng.randrange(5), rng.randrange(10**6), rng.randrange(10**6), nonce)
    if kind == 2:
        return Replace(t, account, rng.randrange(1, 10**6), rng.randrange(1, 10**5), rng.randrange(1, 10**3), nonce)
    if kind == 3:
        return Withdraw(t, account, rng.randrange(1, 10**9), nonce)
    if kind == 4:
        return Transfer(t, account, rng.randrange(1, 4), rng.randrange(1, 10**9), nonce)
    if kind == 5:
        return SetMarginMode(t, account, rng.randrange(2), nonce)
    return Deposit(t, rng.randrange(100), b"\x11" * 20, 0, rng.randrange(1, 10**9))


def _batch(rng: random.Random, domain) -> list:
    nonces = {a: rng.randrange(0, 5) for a in range(4)}
    txs, t = [], rng.randrange(1, 10**12)
    for _ in range(rng.randrange(2, 15)):
        t += rng.randrange(1, 1_000)
        a = rng.randrange(4)
        roll = rng.random()
        if roll < 0.08:
            nonce = max(1, nonces[a] - rng.randrange(0, 3))  # reused or lower
        elif roll < 0.3:
            nonce = t + rng.randrange(1, 50)  # near the time: the delta form
        else:
            nonce = nonces[a] + rng.randrange(1, 4)
        nonces[a] = max(nonces[a], nonce)
        tx = _tx(rng, t, a, nonce)
        if type(tx) is not Deposit:
            tx.signature = eip712.sign(domain, tx, KEY)
        txs.append(tx)
    return txs


def _verify(env, data: bytes, c: int, witness: bytes) -> int:
    dep, verifier, _ = env
    head, parts = batch_data_parts(data)
    a, e = parts[c]
    n = len(parts)
    ctx = (fraud.KIND_NONCES, c, n, n, K, 0, 0, bytes(32), bytes(32), to_checksum_address(dep.vault), bytes(32),
           withdrawals_tree([]).root(), batch_data_hash(data))
    return verifier.functions.verify(ctx, head, data[a:e], witness).call({"from": dep.rollup})


def _witness(data: bytes, parts, first: tuple[int, int], second: tuple[int, int]) -> bytes:
    (c1, i), (c2, j) = first, second
    same = c1 == c2
    hashes = [] if same else [keccak(data[x:y]) for x, y in parts]
    chunk1 = b"" if same else data[parts[c1][0]:parts[c1][1]]
    return abi_encode([NONCE_WITNESS_TYPE], [(c1, i, j, hashes, chunk1)])


def test_contract_equals_mirror_on_generated_batches(env):
    domain = env[2]
    rng = random.Random(21)
    found = spans = honest_pairs = 0
    for _ in range(CASES):
        txs = _batch(rng, domain)
        data = encode_batch(txs, K)
        _, parts = batch_data_parts(data)
        judged = nonce_judgement(data, parts, K)
        # the mirror's own rule, checked against the transactions
        seen: dict[int, int] = {}
        first_bad = None
        for n, tx in enumerate(txs):
            if type(tx) is Deposit:
                continue
            if tx.account in seen and tx.nonce <= seen[tx.account]:
                first_bad = n
                break
            seen[tx.account] = max(seen.get(tx.account, 0), tx.nonce)
        assert (judged is None) == (first_bad is None)
        positions = tx_positions(chunk_sizes(txs, K))  # withdrawals and transfers alone (v3)
        if judged is not None:
            assert judged.second == positions[first_bad]
            c2 = judged.second[0]
            assert _verify(env, data, judged.chunk, judged.witness) == 31, judged.detail
            found += 1
            spans += judged.first[0] != c2
        # pairs of one account that increase, and pairs of two accounts: not fraud
        positions = [(*positions[n], tx) for n, tx in enumerate(txs) if type(tx) is not Deposit]
        for _ in range(2):
            if len(positions) < 2:
                break
            p, q = sorted(rng.sample(range(len(positions)), 2))
            (c1, i, t1), (c2, j, t2) = positions[p], positions[q]
            if t1.account == t2.account and t2.nonce <= t1.nonce:
                continue
            assert _verify(env, data, c2, _witness(data, parts, (c1, i), (c2, j))) == 0
            honest_pairs += 1
    assert found > 30 and spans > 5 and honest_pairs > 100, (found, spans, honest_pairs)


def test_bad_witnesses_revert(env):
    domain = env[2]
    rng = random.Random(3)
    while True:
        txs = _batch(rng, domain)
        data = encode_batch(txs, K)
        _, parts = batch_data_parts(data)
        judged = nonce_judgement(data, parts, K)
        if judged is not None and judged.first[0] != judged.second[0]:
            break
    c1, i = judged.first
    c2, j = judged.second
    hashes = [keccak(data[x:y]) for x, y in parts]
    other = data[parts[c1][0]:parts[c1][1]]
    bad = [
        (c1, i, j, [bytes(32)] * len(hashes), other),  # chunk hashes that do not open txsHash
        (c1, i, j, hashes, other + b"\x00"),  # a chunk that is not the committed one
        (c2, j, j, [], b""),  # the "first" is the second itself
        (c1, K + 1, j, hashes, other),  # a transaction the chunk does not have
    ]
    for w in bad:
        with pytest.raises(TransactionFailed):
            _verify(env, data, c2, abi_encode([NONCE_WITNESS_TYPE], [w]))
