"""The L1 contracts on real EVMs (in-process py-evm and an anvil node): queue, batches,
finalization, freeze, withdrawal claims, refunds, and SparseMerkle proofs."""

from __future__ import annotations

import random

import pytest

from clearline.core.encoding import encode_tx
from clearline.core.hashing import keccak
from clearline.core.merkle import ZERO_HASHES, SparseMerkleTree
from clearline.l1.client import L1Revert
from clearline.l1.formats import (
    QUEUE_DEPOSIT,
    QUEUE_FORCED_WITHDRAWAL,
    WITHDRAWALS_DEPTH,
    BatchHeader,
    WithdrawalRecord,
    batch_data_hash,
    deposit_item_hash,
    encode_batch_txs,
    queue_item_hash,
    state_roots_hash,
    withdrawals_tree,
)

# Deployment parameters of the conftest's deployment (tests/l1/conftest.py).
CHALLENGE_PERIOD = 100
FORCED_DEADLINE = 1_000
USER_FUNDS = 1_000_000_000


def _addr(client) -> bytes:
    return bytes.fromhex(client.address[2:])


def _roots(n: int, seed: int = 0) -> list[bytes]:
    return [keccak(b"root" + bytes([seed, i])) for i in range(n)]


def _revert(excinfo) -> str:
    return excinfo.value.error


# ---------------------------------------------------------------------------------- genesis
def test_genesis_batch_is_the_core_genesis_root(env):
    seq = env.seq
    assert (env.deployment.challenge_period, env.deployment.forced_deadline) == (CHALLENGE_PERIOD, FORCED_DEADLINE)
    assert seq.last_batch() == 0 and seq.last_finalized_batch() == 0
    assert seq.finalized_state_root() == env.genesis_root
    assert seq.header_hash(0) == BatchHeader.genesis(env.genesis_root).hash()
    (event,) = seq.rollup.events.Genesis().get_logs(from_block=env.deployment.block_number)
    assert event["args"]["config"] == env.genesis.to_json()
    assert bytes(event["args"]["configHash"]) == keccak(env.genesis.to_json())
    assert seq.bond() == 10**18
    env.users[0].add_bond(5)
    assert seq.bond() == 10**18 + 5


def test_withdrawal_leaf_matches_the_vault(env):
    alice = env.users[0]
    record = WithdrawalRecord(17, _addr(alice), 123_456, 3, 9)
    assert alice.vault.functions.withdrawalLeaf(record.as_abi()).call() == record.leaf()
    assert alice.vault.functions.WITHDRAWAL_TAG().call() == keccak(b"clearline.withdrawal.v2")


# ------------------------------------------------------------------------------------ queue
def test_deposit_enters_queue_with_the_core_deposit_hash(env):
    alice = env.users[0]
    vault_before = alice.token_balance(env.deployment.vault)
    r = alice.deposit(7, 250_000_000)
    item = r.value
    assert (item.index, item.kind, item.owner, item.target, item.amount) == (
        0, QUEUE_DEPOSIT, _addr(alice), 7, 250_000_000)
    block_time = env.chain.w3.eth.get_block(r.block_number)["timestamp"]
    stored_hash, stored_time = alice.queue_item(0)
    assert stored_time == item.time == block_time
    # the item hash is the core Deposit's ABI encoding without its timeMs word
    tx = item.as_deposit(time_ms=123_456)
    encoded = encode_tx(tx)
    assert stored_hash == keccak(encoded[:32] + encoded[64:]) == deposit_item_hash(tx) == item.item_hash
    assert stored_hash == queue_item_hash(1, 0, _addr(alice), 7, 250_000_000)
    assert alice.queue_length() == 1
    assert alice.token_balance() == USER_FUNDS - 250_000_000
    assert alice.token_balance(env.deployment.vault) == vault_before + 250_000_000
    # a second deposit takes the next index
    bob = env.users[1]
    assert bob.deposit(0, 1).value.index == 1
    assert [i.index for i in bob.queue_items()] == [0, 1]
    with pytest.raises(L1Revert) as e:
        bob.deposit(0, 0)
    assert _revert(e) == "ZeroAmount"


def test_forced_withdrawal_enters_queue(env):
    alice = env.users[0]
    item = alice.request_forced_withdrawal(3, 5_000_000).value
    assert (item.index, item.kind, item.target, item.amount) == (0, QUEUE_FORCED_WITHDRAWAL, 3, 5_000_000)
    assert alice.queue_item(0)[0] == queue_item_hash(2, 0, _addr(alice), 3, 5_000_000)


# ---------------------------------------------------------------------------------- batches
def test_append_consecutive_batches(env):
    seq, alice = env.seq, env.users[0]
    alice.deposit(0, 10_000_000)
    alice.deposit(1, 20_000_000)
    deposits = [i.as_deposit(1_000 + i.index) for i in seq.queue_items()]
    txs = encode_batch_txs([encode_tx(t) for t in deposits])
    roots = _roots(2)
    r1 = seq.append_batch(txs, roots, queue_end=2, txs_per_root=1)
    h1 = r1.value
    assert h1.number == 1 and h1.prev_header_hash == seq.header_hash(0)
    assert h1.txs_hash == batch_data_hash(txs) and h1.state_roots_hash == state_roots_hash(roots)
    assert h1.post_state_root == roots[-1] and (h1.queue_start, h1.queue_end) == (0, 2)
    assert h1.withdrawals_root == ZERO_HASHES[WITHDRAWALS_DEPTH]
    assert h1.l1_timestamp == env.chain.w3.eth.get_block(r1.block_number)["timestamp"]
    assert seq.header_hash(1) == h1.hash()
    assert seq.rollup.functions.hashHeader(h1.as_tuple()).call() == h1.hash()
    assert seq.last_batch() == 1 and seq.queue_position() == 2
    # the next batch links to it; consuming nothing more is fine
    h2 = seq.append_batch(encode_batch_txs([]), [roots[-1]], queue_end=2).value
    assert (h2.number, h2.prev_header_hash, h2.queue_start, h2.queue_end) == (2, h1.hash(), 2, 2)
    assert seq.batch_headers(1) == [h1, h2]
    assert seq.last_finalized_batch() == 0


def test_append_rejects_bad_batches(env):
    seq, alice = env.seq, env.users[0]
    alice.deposit(0, 1_000_000)
    h1 = seq.append_batch(b"\x01", _roots(1), queue_end=0).value
    cases = [
        (dict(number=1, prev_header_hash=seq.header_hash(0)), "BadBatchNumber"),  # repeated
        (dict(number=3, prev_header_hash=h1.hash()), "BadBatchNumber"),  # skipped
        (dict(number=0, prev_header_hash=bytes(32)), "BadBatchNumber"),
        (dict(number=2, prev_header_hash=keccak(b"not the previous header")), "BadPrevHeader"),
        (dict(number=2, prev_header_hash=seq.header_hash(0)), "BadPrevHeader"),
        (dict(queue_end=2), "BadQueuePosition"),  # beyond the queue (length 1)
    ]
    for kwargs, error in cases:
        with pytest.raises(L1Revert) as e:
            seq.append_batch(b"\x01", _roots(1), **kwargs)
        assert _revert(e) == error, kwargs
    with pytest.raises(L1Revert) as e:
        seq.append_batch(b"\x01", [], queue_end=1)
    assert _revert(e) == "NoStateRoots"
    with pytest.raises(L1Revert) as e:
        seq.append_batch(b"\x01", _roots(1), queue_end=1, txs_per_root=0)
    assert _revert(e) == "ZeroTxsPerRoot"
    with pytest.raises(L1Revert) as e:  # only the sequencer appends
        alice.append_batch(b"\x01", _roots(1), queue_end=1)
    assert _revert(e) == "NotSequencer"
    # the queue position cannot go backwards
    seq.append_batch(b"\x01", _roots(1), queue_end=1)
    with pytest.raises(L1Revert) as e:
        seq.append_batch(b"\x01", _roots(1), queue_end=0)
    assert _revert(e) == "BadQueuePosition"
    assert e.value.args_by_name == {"queueStart": 1, "queueEnd": 0, "queueLength": 1}
    assert seq.last_batch() == 2


def test_finalize_only_after_the_challenge_period_and_in_order(env):
    seq, chain = env.seq, env.chain
    h1 = seq.append_batch(b"\x01", _roots(1, 1)).value
    h2 = seq.append_batch(b"\x01", _roots(1, 2)).value
    with pytest.raises(L1Revert) as e:
        seq.finalize([h1])
    assert _revert(e) == "ChallengePeriodNotOver"
    assert e.value.args_by_name["finalizableAt"] == h1.l1_timestamp + CHALLENGE_PERIOD
    assert seq.finalize_ready() is None
    chain.advance_time(CHALLENGE_PERIOD)
    with pytest.raises(L1Revert) as e:  # out of order
        seq.finalize([h2])
    assert _revert(e) == "BadBatchNumber"
    with pytest.raises(L1Revert) as e:  # a header that was not committed
        seq.finalize([BatchHeader(**{**_fields(h1), "post_state_root": keccak(b"forged")})])
    assert _revert(e) == "HeaderMismatch"
    with pytest.raises(L1Revert) as e:
        seq.finalize([])
    assert _revert(e) == "NothingToFinalize"
    anyone = env.users[2]
    r = anyone.finalize([h1, h2])
    assert r.value == 2
    assert seq.last_finalized_batch() == 2
    assert seq.finalized_state_root() == h2.post_state_root
    with pytest.raises(L1Revert) as e:  # already final
        seq.finalize([h2])
    assert _revert(e) == "BadBatchNumber"
    # finalize_ready picks up exactly the batches whose period is over
    h3 = seq.append_batch(b"\x01", _roots(1, 3)).value
    assert seq.finalize_ready() is None
    chain.advance_time(CHALLENGE_PERIOD)
    assert seq.finalize_ready().value == 3
    assert seq.finalized_state_root() == h3.post_state_root


def _fields(h: BatchHeader) -> dict:
    return {f: getattr(h, f) for f in h.__dataclass_fields__}


# ----------------------------------------------------------------------------------- freeze
def test_freeze_after_an_unserved_forced_withdrawal(env):
    seq, alice, anyone, chain = env.seq, env.users[0], env.users[2], env.chain
    alice.deposit(0, 10_000_000)
    seq.append_batch(b"\x01", _roots(1), queue_end=1)  # the deposit is served
    with pytest.raises(L1Revert) as e:
        anyone.freeze()
    assert _revert(e) == "NothingOverdue"
    item = alice.request_forced_withdrawal(0, 1_000_000).value
    with pytest.raises(L1Revert) as e:
        anyone.freeze()
    assert _revert(e) == "NotOverdue"
    assert e.value.args_by_name == {"queueIndex": 1, "deadline": item.time + FORCED_DEADLINE}
    seq.append_batch(b"\x01", _roots(1, 1), queue_end=1)  # before the deadline: appends go on
    chain.advance_time(FORCED_DEADLINE + 1)
    with pytest.raises(L1Revert) as e:  # too late to serve it
        seq.append_batch(b"\x01", _roots(1, 2), queue_end=2)
    assert _revert(e) == "QueueItemOverdue"
    anyone.freeze()
    assert seq.frozen() and seq.rollup.functions.frozen().call()
    with pytest.raises(L1Revert) as e:
        seq.append_batch(b"\x01", _roots(1, 2), queue_end=2)
    assert _revert(e) == "IsFrozen"
    with pytest.raises(L1Revert) as e:
        anyone.freeze()
    assert _revert(e) == "AlreadyFrozen"
    headers = seq.batch_headers(1)
    with pytest.raises(L1Revert) as e:  # nothing finalizes after a freeze
        seq.finalize(headers)
    assert _revert(e) == "IsFrozen"
    for call in (lambda: alice.deposit(0, 1), lambda: alice.request_forced_withdrawal(0, 1)):
        with pytest.raises(L1Revert) as e:
            call()
        assert _revert(e) == "IsFrozen"


def test_overdue_deposit_also_allows_freeze(env):
    alice, chain = env.users[0], env.chain
    alice.deposit(0, 5)
    chain.advance_time(FORCED_DEADLINE + 1)
    alice.freeze()
    assert alice.frozen()


# ------------------------------------------------------------------------ claims and refunds
def test_withdrawal_claims_and_refunds(env):
    seq, alice, bob, carol, chain = env.seq, env.users[0], env.users[1], env.users[2], env.chain
    d0 = alice.deposit(0, 100_000_000).value
    d1 = bob.deposit(2, 40_000_000).value
    records = [
        WithdrawalRecord(0, _addr(alice), 30_000_000, 0, 0),
        WithdrawalRecord(4, _addr(carol), 1_000_000, 0, 3),
        WithdrawalRecord(0, _addr(alice), 5_000_000, 1, 0),
    ]
    tree = withdrawals_tree(records)
    h1 = seq.append_batch(b"\x01", _roots(1), queue_end=1, withdrawals=records).value
    assert h1.withdrawals_root == tree.root()  # the Rollup computed it from the posted records
    with pytest.raises(L1Revert) as e:  # not final yet
        carol.claim_withdrawal(h1, 0, records[0], tree.proof(0))
    assert _revert(e) == "NotFinalized"
    chain.advance_time(CHALLENGE_PERIOD)
    seq.finalize([h1])
    h2 = seq.append_batch(b"\x01", _roots(1, 1), queue_end=1).value  # pending at the freeze

    before = alice.token_balance()
    carol.claim_withdrawal(h1, 0, records[0], tree.proof(0))  # anyone may claim; owner is paid
    assert alice.token_balance() == before + 30_000_000
    assert alice.is_claimed(1, 0) and not alice.is_claimed(1, 2)
    with pytest.raises(L1Revert) as e:
        carol.claim_withdrawal(h1, 0, records[0], tree.proof(0))
    assert _revert(e) == "AlreadyClaimed"
    with pytest.raises(L1Revert) as e:  # a record that is not at that index
        alice.claim_withdrawal(h1, 1, records[2], tree.proof(1))
    assert _revert(e) == "InvalidWithdrawalProof"
    bad = tree.proof(2)
    bad[0] = keccak(b"wrong sibling")
    with pytest.raises(L1Revert) as e:
        alice.claim_withdrawal(h1, 2, records[2], bad)
    assert _revert(e) == "InvalidWithdrawalProof"
    with pytest.raises(L1Revert) as e:  # a header with a forged withdrawals root
        alice.claim_withdrawal(BatchHeader(**{**_fields(h1), "withdrawals_root": bytes(32)}), 2, records[2],
                               tree.proof(2))
    assert _revert(e) == "HeaderMismatch"
    with pytest.raises(L1Revert) as e:
        alice.claim_withdrawal(h2, 0, records[0], tree.proof(0))
    assert _revert(e) == "NotFinalized"

    # refunds only after a freeze, only for deposits the finalized state did not consume
    with pytest.raises(L1Revert) as e:
        bob.refund_deposit(d1)
    assert _revert(e) == "NotFrozen"
    chain.advance_time(FORCED_DEADLINE + 1)  # d1 was never consumed: overdue
    carol.freeze()
    with pytest.raises(L1Revert) as e:
        alice.refund_deposit(d0)
    assert _revert(e) == "DepositConsumed"
    with pytest.raises(L1Revert) as e:
        carol.refund_deposit(type(d1)(**{**{f: getattr(d1, f) for f in d1.__dataclass_fields__},
                                        "amount": d1.amount + 1}))
    assert _revert(e) == "QueueItemMismatch"
    before = bob.token_balance()
    carol.refund_deposit(d1)
    assert bob.token_balance() == before + 40_000_000
    assert bob.queue_item(1)[0] == bytes(32)
    with pytest.raises(L1Revert) as e:
        carol.refund_deposit(d1)
    assert _revert(e) == "AlreadyRefunded"
    # finalized withdrawals stay claimable after the freeze
    alice.claim_withdrawal(h1, 2, records[2], tree.proof(2))
    assert alice.is_claimed(1, 2)


# ----------------------------------------------------------------------------- SparseMerkle
def test_sparse_merkle_proofs_from_the_core_verify_on_chain(env):
    client = env.seq
    rng = random.Random(4)
    tree = SparseMerkleTree(32)
    indices = [0, 1, 2**32 - 1, 2**31] + [rng.randrange(2**32) for _ in range(12)]
    for i in indices:
        tree.set(i, keccak(i.to_bytes(8, "big")))
    root = tree.root()
    for i in indices[:6] + [12345]:  # 12345: an empty leaf (non-membership)
        leaf, proof = tree.get(i), tree.proof(i)
        assert client.merkle_root(32, i, leaf, proof) == root
        assert client.merkle_root(32, i, leaf, proof, compressed=False) == root
        wrong = list(proof)
        wrong[rng.randrange(32)] = keccak(b"wrong")
        assert client.merkle_root(32, i, leaf, wrong) != root
        assert client.merkle_root(32, i, leaf, wrong, compressed=False) != root
        if leaf != bytes(32):  # (an empty leaf's empty neighbour has the same proof)
            assert client.merkle_root(32, i ^ 1, leaf, proof) != root  # wrong position
    # the empty tree and the precomputed zero hashes
    assert client.merkle_root(32, 7, bytes(32), [ZERO_HASHES[h] for h in range(32)]) == ZERO_HASHES[32]
    assert client.merkle_root(64, 2**64 - 1, bytes(32), [ZERO_HASHES[h] for h in range(64)]) == ZERO_HASHES[64]
    f = client.rollup.functions
    z = bytes(32)
    for call, error in [
        (f.merkleRoot(33, 0, z, 1, []), "InvalidProofLength"),  # a present sibling is missing
        (f.merkleRoot(8, 0, z, 0, [z]), "InvalidProofLength"),  # one sibling too many
        (f.merkleRoot(65, 0, z, 0, []), "InvalidDepth"),
        (f.merkleRoot(0, 0, z, 0, []), "InvalidDepth"),
        (f.merkleRoot(8, 256, z, 0, []), "InvalidIndex"),
        (f.merkleRootFull(256, z, [z] * 8), "InvalidIndex"),
        (f.merkleRootFull(0, z, [z] * 65), "InvalidDepth"),
    ]:
        with pytest.raises(L1Revert) as e:
            client._call(call)
        assert _revert(e) == error


def test_data_commitment_is_formats_batch_data_hash(env):
    """Rollup's per-chunk txsHash (BatchDataLib) = formats.batch_data_hash, on both backends:
    v3 and v2 batches walk into their chunks; v1, garbage and broken tables are one head."""
    from clearline.l1.batch_v2 import encode_batch_v2
    from clearline.l1.formats import batch_data_parts
    from clearline.l1.gas import sample_order_txs

    orders = sample_order_txs(33)
    v2 = encode_batch_v2(orders, 16)
    broken = bytearray(v2)
    broken[3] ^= 0xFF  # the first chunk end offset (its top byte: beyond the data)
    cases = [v2, encode_batch_v2(orders, 1), encode_batch_v2([], 4), encode_batch_txs([b"\x01"]), b"", b"\x02",
             bytes(broken), v2 + b"\x00"]
    # v3 (what the batcher posts): variable chunks, an operator transaction alone in its chunk
    from clearline.core.txs import OperatorAction
    from clearline.l1.batch_v3 import encode_batch_v3

    mixed = orders[:10] + [OperatorAction(1, 1, 0, 0, 1, b"")] + orders[10:]
    v3 = encode_batch_v3(mixed, 16, [2] + [0] * (len(mixed) - 1))  # orders alone, the first with two steps
    broken3 = bytearray(v3)
    broken3[3] ^= 0xFF
    cases += [v3, encode_batch_v3(orders, 1), encode_batch_v3([], 4), b"\x03", b"\x03\x10\x00",
              b"\x03\x10\x05", bytes(broken3), v3 + b"\x00", v3[:-1]]
    for data in cases:
        h, n = env.seq.data_hash(data)
        assert h == batch_data_hash(data) and n == len(batch_data_parts(data)[1])
    assert len(batch_data_parts(v2)[1]) == 3 and batch_data_parts(bytes(broken))[1] == []
    n3 = len(mixed) + 2  # each alone, and two empty chunks
    assert len(batch_data_parts(v3)[1]) == n3 and batch_data_parts(bytes(broken3))[1] == []
    assert [b - a for a, b in batch_data_parts(v3)[1]][1:3] == [0, 0]
    header = env.seq.append_batch(v2, [keccak(b"r")] * 3, txs_per_root=16).value
    assert header.txs_hash == batch_data_hash(v2)
    header = env.seq.append_batch(v3, [keccak(b"r")] * n3, txs_per_root=16).value
    assert header.txs_hash == batch_data_hash(v3)
