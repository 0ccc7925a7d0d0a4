"""Small pure pieces of the batcher and the watchtower: public API, root positions, queue
item -> core transaction, appendBatch calldata decoding, report lines, CLI errors."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode

import clearline.batcher
import clearline.watchtower
from clearline.batcher import FeederError, queue_item_tx, root_count, root_tx_index
from clearline.core.hashing import keccak
from clearline.core.txs import Deposit, ForcedWithdrawal
from clearline.l1.formats import (QUEUE_DEPOSIT, QUEUE_FORCED_WITHDRAWAL, QueueItem, WithdrawalRecord, deposit_item_hash,
                                  encode_withdrawals, queue_item_hash)
from clearline.watchtower import Mismatch
from clearline.watchtower.l1data import APPEND_BATCH_SELECTOR, L1DataError, decode_append_batch
from clearline.watchtower.verify import main as verify_main

OWNER = bytes(range(20))


def test_public_api_is_exactly_this():
    assert sorted(clearline.batcher.__all__) == [
        "BatchPlan", "Batcher", "BatcherError", "Claim", "FeederError", "L1QueueFeeder", "PostResult",
        "queue_item_tx", "root_count", "root_tx_index", "withdrawal_records"]
    assert sorted(clearline.watchtower.__all__) == [
        "L1DataError", "Mismatch", "RollupReader", "VerifyReport", "main", "verify"]
    for mod in (clearline.batcher, clearline.watchtower):
        for name in mod.__all__:
            assert getattr(mod, name) is not None


def test_root_positions():
    assert [root_count(n, 4) for n in (0, 1, 4, 5, 8, 9)] == [1, 1, 1, 2, 2, 3]
    assert [root_tx_index(i, 9, 4) for i in range(3)] == [3, 7, 8]
    assert root_tx_index(0, 0, 16) == -1
    with pytest.raises(ValueError):
        root_count(3, 0)


def test_queue_items_become_core_transactions_with_the_same_hash():
    dep = QueueItem(4, QUEUE_DEPOSIT, OWNER, 2, 5_000_000, 1_700_000_000)
    tx = queue_item_tx(dep, 123)
    assert tx == Deposit(123, 4, OWNER, 2, 5_000_000) and deposit_item_hash(tx) == dep.item_hash
    fw = QueueItem(5, QUEUE_FORCED_WITHDRAWAL, OWNER, 9, 7, 1_700_000_000)
    tx = queue_item_tx(fw, 124)
    assert tx == ForcedWithdrawal(124, 5, OWNER, 9, 7)
    assert queue_item_hash(QUEUE_FORCED_WITHDRAWAL, tx.queue_index, tx.owner, tx.account, tx.amount) == fw.item_hash
    with pytest.raises(FeederError):
        queue_item_tx(QueueItem(6, 3, OWNER, 0, 1, 0), 125)


def test_append_batch_calldata_decodes():
    roots = [keccak(b"a"), keccak(b"b")]
    records = [WithdrawalRecord(5, b"\x11" * 20, 1_000, 0, 3), WithdrawalRecord(9, b"\x22" * 20, 7, 1, 0)]
    args = abi_encode(["uint64", "bytes32", "uint64", "bytes", "uint32", "bytes", "bytes32[]"],
                      [7, keccak(b"prev"), 3, encode_withdrawals(records), 16, b"\x01abc", roots])
    cd = decode_append_batch(APPEND_BATCH_SELECTOR + args)
    assert (cd.number, cd.queue_end, cd.txs_per_root, cd.txs, cd.state_roots) == (7, 3, 16, b"\x01abc", roots)
    assert cd.withdrawals == records
    assert APPEND_BATCH_SELECTOR == keccak(b"appendBatch(uint64,bytes32,uint64,bytes,uint32,bytes,bytes32[])")[:4]
    with pytest.raises(L1DataError):
        decode_append_batch(b"\x00\x00\x00\x00" + args)
    with pytest.raises(L1DataError):  # records that are not whole
        decode_append_batch(APPEND_BATCH_SELECTOR + abi_encode(
            ["uint64", "bytes32", "uint64", "bytes", "uint32", "bytes", "bytes32[]"],
            [7, keccak(b"prev"), 3, b"\x01" * 37, 16, b"\x01abc", roots]))


def test_mismatch_lines_name_batch_transaction_and_roots():
    a, b = keccak(b"a"), keccak(b"b")
    m = Mismatch("state_root", 12, 47, a, b, root_index=2, chunk_first_tx=32)
    assert m.line() == (f"MISMATCH state_root at batch 12, transaction 47 (state root #2, after transactions "
                        f"32..47): expected 0x{a.hex()}, committed 0x{b.hex()}")
    assert Mismatch("queue_end", 3, None, 5, 4).line() == "MISMATCH queue_end at batch 3: expected 5, committed 4"
    assert m.to_dict()["expected"] == "0x" + a.hex()


def test_verify_command_reports_unreadable_data_as_an_error(capsys):
    assert verify_main(["--rpc", "http://127.0.0.1:9", "--rollup", "0x" + "11" * 20, "--progress", "none"]) == 2
    assert "verify: error" in capsys.readouterr().err
