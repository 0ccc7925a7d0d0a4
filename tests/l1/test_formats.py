"""The L1 byte formats in Python (clearline.l1.formats), pinned against eth_abi and the core."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode

import clearline.l1
from clearline.core.encoding import encode_tx
from clearline.core.hashing import keccak
from clearline.core.merkle import ZERO_HASHES, SparseMerkleTree
from clearline.core.txs import Deposit, Withdraw
from clearline.l1.formats import (
    WITHDRAWAL_RECORD_BYTES,
    WITHDRAWAL_TAG,
    WITHDRAWALS_DEPTH,
    BatchFormatError,
    BatchHeader,
    QueueItem,
    WithdrawalRecord,
    compress_proof,
    decode_batch_txs,
    decode_withdrawals,
    deposit_item_hash,
    encode_batch_txs,
    encode_withdrawals,
    expand_proof,
    queue_item_hash,
    state_roots_hash,
    withdrawal_leaf,
    withdrawals_tree,
)

OWNER = bytes.fromhex("11" * 20)


def test_public_api_is_exactly_this():
    assert clearline.l1.__all__ == [
        "BatchHeader", "Deployment", "InProcessChain", "L1Client", "L1Revert", "QueueItem", "RpcChain",
        "TxResult", "WithdrawalRecord", "start_anvil",
    ]
    for name in clearline.l1.__all__:
        assert getattr(clearline.l1, name) is not None


def test_queue_item_hash_is_the_abi_encoding():
    expected = keccak(abi_encode(["uint8", "uint64", "address", "uint32", "uint64"], [2, 9, OWNER, 4, 77]))
    assert queue_item_hash(2, 9, OWNER, 4, 77) == expected
    tx = Deposit(time_ms=5, queue_index=3, owner=OWNER, subaccount=1, amount=10**6)
    enc = encode_tx(tx)
    assert deposit_item_hash(tx) == keccak(enc[:32] + enc[64:]) == queue_item_hash(1, 3, OWNER, 1, 10**6)
    item = QueueItem(3, 1, OWNER, 1, 10**6, time=100)
    assert item.item_hash == deposit_item_hash(tx) and item.as_deposit(5) == tx
    with pytest.raises(ValueError):
        QueueItem(3, 2, OWNER, 1, 10**6, time=100).as_deposit(5)
    with pytest.raises(ValueError):
        queue_item_hash(1, 2**64, OWNER, 0, 0)


def test_header_encoding_is_the_abi_encoding_of_the_struct():
    h = BatchHeader(7, keccak(b"p"), keccak(b"t"), keccak(b"s"), keccak(b"r"), keccak(b"w"), 3, 5, 16, 1_700_000_000)
    types = ["uint64", "bytes32", "bytes32", "bytes32", "bytes32", "bytes32", "uint64", "uint64", "uint32", "uint64"]
    assert h.encode() == abi_encode(["(" + ",".join(types) + ")"], [h.as_tuple()]) == abi_encode(types, h.as_tuple())
    assert h.hash() == keccak(h.encode())
    assert BatchHeader.from_event(h.as_tuple()) == h
    g = BatchHeader.genesis(keccak(b"g"))
    assert g.encode() == bytes(32 * 4) + keccak(b"g") + bytes(32 * 5)


def test_batch_data_round_trip_and_strict_decoding():
    txs = [encode_tx(Deposit(1, 0, OWNER, 0, 5)), encode_tx(Withdraw(2, 0, 5, 1, signature=b"\x01" * 65))]
    data = encode_batch_txs(txs)
    assert data[0] == 1 and data[1:5] == len(txs[0]).to_bytes(4, "big")
    assert decode_batch_txs(data) == txs
    assert decode_batch_txs(encode_batch_txs([])) == []
    for bad in (b"", b"\x02", data[:-1], data + b"\x00", b"\x01\x00\x00\x00\x00"):
        with pytest.raises(BatchFormatError):
            decode_batch_txs(bad)
    assert state_roots_hash([keccak(b"a"), keccak(b"b")]) == keccak(keccak(b"a") + keccak(b"b"))


def test_withdrawal_records_and_tree():
    assert WITHDRAWAL_TAG == keccak(b"clearline.withdrawal.v2")
    assert withdrawal_leaf(3, OWNER, 99, 7, 2) == keccak(
        abi_encode(["bytes32", "uint32", "address", "uint64", "uint32", "uint16"], [WITHDRAWAL_TAG, 3, OWNER, 99, 7, 2]))
    assert withdrawals_tree([]).root() == ZERO_HASHES[WITHDRAWALS_DEPTH]
    records = [WithdrawalRecord(i, OWNER, i + 1, i // 2, i % 2) for i in range(5)]
    packed = encode_withdrawals(records)
    assert len(packed) == 5 * WITHDRAWAL_RECORD_BYTES and decode_withdrawals(packed) == records
    assert packed[:WITHDRAWAL_RECORD_BYTES] == (0).to_bytes(4, "big") + OWNER + (1).to_bytes(8, "big") + bytes(6)
    with pytest.raises(BatchFormatError):
        decode_withdrawals(packed[:-1])
    with pytest.raises(ValueError):
        encode_withdrawals([WithdrawalRecord(0, OWNER, 1, 0, 1 << 16)])
    tree = withdrawals_tree(records)
    manual = SparseMerkleTree(WITHDRAWALS_DEPTH)
    for i, r in enumerate(records):
        manual.set(i, r.leaf())
    assert tree.root() == manual.root()


def test_proof_compression_round_trip():
    tree = SparseMerkleTree(32)
    for i in (0, 5, 2**31 + 7):
        tree.set(i, keccak(bytes([i % 256])))
    for i in (0, 5, 2**31 + 7, 123):
        proof = tree.proof(i)
        present, kept = compress_proof(proof)
        assert len(kept) == bin(present).count("1") < 32
        assert expand_proof(32, present, kept) == proof
    with pytest.raises(ValueError):
        expand_proof(4, 0b1, [])
