"""KIND_SIGNATURE: a packed user-signed transaction whose EIP-712 signer is not its account's
owner, or whose nonce is not above the account's at the chunk's pre-state, on the in-process EVM.

Differential: every packed signed transaction of generated chunks (all seven kinds, every packed
field form: Order shapes, expiry and clientId present or not, Cancel scopes, plain and delta
nonces, time deltas), signed by the owner or by another key, or altered after signing (a field
changed, the signature kept), with fresh or stale nonces (the accounts' nonce is 5), is judged
by the FraudVerifier (``verify`` as the Rollup, the
account leaf proven against the chunk's pre-state) and by the watchtower's mirror
(``fraud.signature_fault``): 31 exactly when the signer is not the owner or the nonce is stale,
0 for the owner's own signature with a fresh nonce, the mirror names the first such, and ``ChunkDecoder.signerOf`` recovers the signer Python recovers (0 where it does
not recover). A witness naming a transaction that is not signed, an account created after the
pre-state, or another account's leaf reverts. End to end, fault ``forged_order`` (an order one lot
larger than signed, among orders) is proven in tests/fraud/test_dispute.py, test_watch.py (anvil)
and the demo (tests/e2e/test_demo_inject.py). ``CLEARLINE_DIFF_SIGNATURE_CASES`` sets the number of
generated chunks (default 120).
"""

from __future__ import annotations

import os
import random
from dataclasses import replace

import pytest
from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address

from clearline.core import eip712
from clearline.core.apply import apply
from clearline.core.state import Genesis, State
from clearline.core.txs import (Cancel, Deposit, Order, Replace, SetAccountFlags, SetMarginMode, Transfer, Withdraw)
from clearline.l1.batch_v3 import encode_batch_v3
from clearline.l1.chain import InProcessChain
from clearline.l1.deploy import contract_abi, deploy
from clearline.l1.formats import batch_data_parts
from clearline.watchtower import fraud
from clearline.watchtower.batch_chunks import DecodedChunks

CASES = int(os.environ.get("CLEARLINE_DIFF_SIGNATURE_CASES", "120"))
KEYS = [(2000 + i).to_bytes(32, "big") for i in range(4)]
OWNERS = [eip712.address_of(k) for k in KEYS]
T0 = 1_760_000_000_000


@pytest.fixture(scope="module")
def env():
    chain = InProcessChain(n_accounts=2)
    dep = deploy(chain)
    verifier = chain.w3.eth.contract(address=dep.verifier, abi=contract_abi("FraudVerifier"))
    decoder = chain.w3.eth.contract(address=verifier.functions.chunkDecoder().call(), abi=contract_abi("ChunkDecoder"))
    genesis = Genesis(chain.chain_id, bytes.fromhex(dep.rollup[2:]), bytes(19) + b"\x01")
    st = State(genesis)
    for i, owner in enumerate(OWNERS):  # accounts 0..3, one per key, with nonce 5
        assert apply(st, Deposit(T0 + i, i, owner, 0, 1_000 * 10**6)).ok
        flags = SetAccountFlags(T0 + i, i, 0, 5)
        flags.signer = owner
        assert apply(st, flags).ok
    st.root()
    yield chain, dep, verifier, decoder, st
    chain.close()


def _tx(rng: random.Random, t: int, account: int):
    kind = rng.randrange(7)
    nonce = rng.choice((1, 5, 6, 7, t, t + 3, 2**64 - 1))  # the accounts' nonce is 5: 1 and 5 are stale
    if kind == 0:
        return Order(t, account, rng.randrange(3), rng.randrange(2), rng.randrange(2), rng.randrange(4),
                     rng.randrange(4), rng.randrange(4), rng.randrange(1, 10**9), rng.randrange(1, 10**6),
                     rng.choice((0, t + rng.randrange(1, 10**6))), rng.choice((0, rng.randrange(1, 2**64))), nonce)
    if kind == 1:
        return Cancel(t, account, rng.randrange(4), rng.randrange(3), rng.randrange(2**20), rng.randrange(2**20), nonce)
    if kind == 2:
        return Replace(t, account, rng.randrange(2**30), rng.randrange(1, 10**9), rng.randrange(1, 10**6), nonce)
    if kind == 3:
        return Withdraw(t, account, rng.randrange(1, 10**9), nonce)
    if kind == 4:
        return Transfer(t, account, rng.randrange(1, 5), rng.randrange(1, 10**9), nonce)
    if kind == 5:
        return SetMarginMode(t, account, rng.randrange(256), nonce)
    return SetAccountFlags(t, account, rng.randrange(256), nonce)


_ALTER = {Order: ("price", "size", "instrument", "side", "client_id", "nonce"), Cancel: ("order_id", "scope", "nonce"),
          Replace: ("price", "size", "order_id"), Withdraw: ("amount", "nonce"), Transfer: ("to_subaccount", "amount"),
          SetMarginMode: ("mode", "nonce"), SetAccountFlags: ("flags", "nonce")}


def _signed(rng: random.Random, st: State, tx, seen: dict):
    """``tx`` signed by its owner, by another key, or by its owner and then altered."""
    roll = rng.random()
    owner_key = KEYS[tx.account]
    if roll < 0.5:
        tx.signature = eip712.sign(st.domain, tx, owner_key)
        seen["owner"] = seen.get("owner", 0) + 1
        return tx
    if roll < 0.75:
        tx.signature = eip712.sign(st.domain, tx, rng.choice([k for k in KEYS if k != owner_key]))
        seen["other_key"] = seen.get("other_key", 0) + 1
        return tx
    tx.signature = eip712.sign(st.domain, tx, owner_key)
    field = rng.choice(_ALTER[type(tx)])
    value = getattr(tx, field)
    limit = {"side": 1, "scope": 3, "mode": 255, "flags": 255}.get(field, 2**32 - 1 if field in (
        "instrument", "to_subaccount") else 2**64 - 1)
    new = value + 1 if value < limit else value - 1
    altered = replace(tx, **{field: new})
    altered.signature = tx.signature
    seen["altered"] = seen.get("altered", 0) + 1
    return altered


def _verify(env, txs: list, j: int, account: int) -> int:
    chain, dep, verifier, _, st = env
    data = encode_batch_v3(txs, 16)
    head, parts = batch_data_parts(data)
    (a, e), = parts
    witness = abi_encode(["uint256", fraud.STATE_TYPE, fraud.ACCOUNT_TYPE],
                         [j, fraud.state_tuple(st), fraud._account_witness(st, account)])
    ctx = (fraud.KIND_SIGNATURE, 0, 1, 1, 16, 0, 0, st.root(), bytes(32), to_checksum_address(dep.vault), bytes(32),
           bytes(32), bytes(32))
    return verifier.functions.verify(ctx, head, data[a:e], witness).call({"from": dep.rollup})


def _chunk(rng: random.Random, st: State, seen: dict) -> list:
    """A chunk: one transaction alone (an order, a replace, an account transaction), or up to six
    cancels."""
    t = T0 + rng.randrange(10**6)
    n = 1 if rng.random() < 0.5 else rng.randrange(2, 7)
    txs = []
    for _ in range(n):
        t += rng.choice((0, 1, 250))
        tx = _tx(rng, t, rng.randrange(len(OWNERS)))
        while n > 1 and type(tx) is not Cancel:
            tx = _tx(rng, t, tx.account)
        txs.append(_signed(rng, st, tx, seen))
    return txs


def test_contract_equals_mirror_on_generated_signed_transactions(env):
    chain, dep, verifier, decoder, st = env
    rng = random.Random(41)
    seen: dict[str, int] = {}
    verdicts = {0: 0, 31: 0}
    domain = st.domain.separator
    for _ in range(CASES):
        txs = _chunk(rng, st, seen)
        data = encode_batch_v3(txs, 16)
        _, parts = batch_data_parts(data)
        decoded = DecodedChunks(data, parts, 16).txs(0)
        assert decoded is not None and all(packed for packed, _ in decoded)
        found = fraud.signature_fault(st, decoded)
        (a, e), = parts
        chunk = data[a:e]
        for j, (_, tx) in enumerate(decoded):
            # the ChunkDecoder recovers what Python recovers, for every form
            _, at, prev, _ = verifier.functions.decodeChunk(chunk, 16, j).call()
            signed, account, nonce, signer = decoder.functions.signerOf(chunk, at, prev, domain).call()
            try:
                want = eip712.recover_signer(st.domain, tx)
            except Exception:
                want = None
            assert signed and account == tx.account and nonce == tx.nonce
            assert bytes.fromhex(signer[2:]) == (want or bytes(20)), (type(tx).__name__, j)
            got = _verify(env, txs, j, tx.account)
            verdicts[got] += 1
            stale = tx.nonce <= st.accounts[tx.account].nonce
            seen["stale_nonce"] = seen.get("stale_nonce", 0) + stale
            assert got == (31 if want != OWNERS[tx.account] or stale else 0)
        first_bad = next((j for j, (_, tx) in enumerate(decoded)
                          if _verify(env, txs, j, tx.account) == 31), None)
        assert (found[0] if found else None) == first_bad
    assert verdicts[0] > 50 and verdicts[31] > 50, verdicts
    assert all(seen.get(k, 0) > 20 for k in ("owner", "other_key", "altered", "stale_nonce")), seen


def test_witness_must_name_a_signed_transaction_of_a_known_account(env):
    from eth_tester.exceptions import TransactionFailed

    chain, dep, verifier, _, st = env
    order = Order(T0, 1, 0, 0, 0, 0, 0, 0, 100, 5, 0, 0, 3)
    order.signature = eip712.sign(st.domain, order, KEYS[0])  # not account 1's owner
    assert _verify(env, [order], 0, 1) == 31
    with pytest.raises(TransactionFailed):  # another account's leaf
        _verify(env, [order], 0, 0)
    with pytest.raises(TransactionFailed):  # no transaction 1
        _verify(env, [order], 1, 1)
    deposit = Deposit(T0, 4, OWNERS[0], 0, 5)
    with pytest.raises(TransactionFailed):  # not a signed transaction
        _verify(env, [deposit], 0, 0)
    unknown = Withdraw(T0, len(OWNERS), 5, 1)  # an account the pre-state does not have
    unknown.signature = eip712.sign(st.domain, unknown, KEYS[0])
    with pytest.raises(TransactionFailed):
        _verify(env, [unknown], 0, 0)
