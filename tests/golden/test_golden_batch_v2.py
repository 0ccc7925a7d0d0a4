"""Golden vectors of batch data format v2 (``clearline.l1.batch_v2``): the exact bytes of each
transaction kind as one chunk, of a fallback, and of a whole chunked batch. Any change to the
format shows up here as a diff; a change is a new format version, not an edit of v2.

To regenerate (only for an intended change, together with a version bump):

    CLEARLINE_REGEN_GOLDEN=1 pytest tests/golden/test_golden_batch_v2.py

Self-contained on purpose (its own transactions, not ``test_golden_encoding``'s list), so a
transaction kind added to the core does not move these vectors.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from clearline.core import eip712
from clearline.core.encoding import encode_tx
from clearline.core.txs import (Cancel, Deposit, ForcedWithdrawal, MarkUpdate, OperatorAction, Order, Replace,
                                SetAccountFlags, SetMarginMode, Transfer, Withdraw)
from clearline.l1.batch_v2 import FALLBACK, decode_batch_v2, decode_chunk, encode_batch_v2, encode_chunk
from clearline.oracle.report import PriceReport
from clearline.oracle.report import signed as signed_report
from golden_store import load_vectors

VECTORS = Path(__file__).parent / "vectors" / "batch_v2.json"

PRIVATE_KEY = bytes([1]) * 32
REPORTER_KEY = bytes([2]) * 32
DOMAIN = eip712.Domain(31337, bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
OWNER = eip712.address_of(PRIVATE_KEY)
U64_MAX, U32_MAX = (1 << 64) - 1, (1 << 32) - 1
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
T0 = 1_760_000_000_000
PERP = [0, 0, 499_056, 499_056, -499_057, -499_057, 998_113, 998_113, -998_113, -998_113, 1_497_169, 1_497_169,
        -1_497_170, -1_497_170, 1_048_018, -1_048_019]
CALL = [1_067_103, -32_483, 49_909_689, 49_873_017, -38_730_164, -49_694_735, 99_778_942, 99_778_517,
        -55_844_215, -58_142_483, 149_684_019, 149_684_017, -58_087_615, -58_142_483, 104_790_181, -20_349_869]
PUT = [1_067_103, -32_483, 4_189, -32_483, 11_175_336, 210_765, -32_058, -32_483, 43_966_785, 41_668_517,
       -32_481, -32_483, 91_628_885, 91_574_017, -11_369, 84_451_681]
EXTREMES = [INT64_MIN, -1, 0, 1, INT64_MAX] + [-31_000 * i for i in range(11)]


def _reports() -> list[PriceReport]:
    return [signed_report(DOMAIN, PriceReport(0, 100_002_800_000, T0 - 108, 1), REPORTER_KEY),
            signed_report(DOMAIN, PriceReport(1, 3_009_133_924, T0 + 5, U64_MAX), REPORTER_KEY)]


def golden_txs() -> list[tuple[str, object]]:
    """(name, transaction): each packed kind, its optional fields, and fallbacks."""
    return [
        ("deposit", Deposit(T0, 0, OWNER, 0, 25_000_000_000)),
        ("deposit_max", Deposit(U64_MAX, U64_MAX, OWNER, U32_MAX, U64_MAX)),
        ("forced_withdrawal", ForcedWithdrawal(T0 + 1, 7, OWNER, 3, 1_000_000)),
        ("order_gtt_post_only", Order(T0, 0, 0, 0, 0, 1, 1, 0, 1_000_086, 969, T0 + 60_000, 0, 2)),
        ("order_market_ioc_client_id", Order(T0, 5, 1, 1, 1, 2, 2, 2, U64_MAX, 1, 0, 42, 9)),
        ("order_nonce_is_a_timestamp", Order(T0, U32_MAX, U32_MAX, 1, 0, 3, 3, 1, 1, U64_MAX, U64_MAX, U64_MAX,
                                             T0 + 3)),
        ("order_expiry_before_time", Order(T0, 1, 2, 0, 0, 1, 0, 0, 650_000, 10, 1, 0, 1)),
        ("cancel_all_in_instrument", Cancel(T0, 0, 2, 1, 0, 0, 8)),
        ("cancel_by_order_id", Cancel(T0, 3, 0, 0, 77, 0, 9)),
        ("cancel_all_max", Cancel(T0, U32_MAX, 3, U32_MAX, U64_MAX, U64_MAX, U64_MAX)),
        ("replace", Replace(T0, 1, 7, 650_100, 5, 4)),
        ("withdraw", Withdraw(T0, 1, 1_000_000_000, 5)),
        ("transfer", Transfer(T0, 1, 2, 500_000_000, 6)),
        ("mark_update_marks_only", MarkUpdate(T0, T0, [0, 1], [1_000_000, 300_000])),
        ("mark_update_empty", MarkUpdate(T0, 0, [], [])),
        ("mark_update_arrays_reports", MarkUpdate(T0 + 2, T0, [0, 2, 3, 9], [1_000_000, 5_902, 4, U64_MAX],
                                                  [PERP, CALL, PUT, EXTREMES], _reports())),
        ("operator_funding_tick", OperatorAction(T0, 1, 0, 0, T0)),
        ("operator_settle_expiry", OperatorAction(T0, 3, U32_MAX, U64_MAX, 0)),
        ("set_margin_mode", SetMarginMode(T0, 1, 1, 7)),
        ("fallback_order_side_7", Order(T0, 1, 1, 7, 0, 0, 0, 0, 650_000, 10, 0, 0, 1)),
        ("fallback_unsigned_withdraw", Withdraw(T0, 1, 5, 1)),
        ("fallback_mark_prices_not_one_per_instrument", MarkUpdate(T0, T0, [0, 1], [1_000_000])),
        ("fallback_set_account_flags", SetAccountFlags(T0, 1, 1, 8)),  # no packed form in v2 (v3 packs it: kind 11)
    ]


def _signed(name: str, tx):
    if hasattr(tx, "signature") and not name.startswith("fallback_unsigned"):
        tx.signature = eip712.sign(DOMAIN, tx, PRIVATE_KEY)
    return tx


def build_vectors() -> dict:
    entries, txs = [], []
    for name, tx in golden_txs():
        tx = _signed(name, tx)
        txs.append(tx)
        entries.append({"name": name, "type": type(tx).__name__, "abi": "0x" + encode_tx(tx).hex(),
                        "chunk": "0x" + encode_chunk([tx], v2=True).hex()})
    batch = [txs[3], txs[4], txs[7], txs[13], txs[0], txs[18], txs[19]]  # shared times, a fallback
    return {
        "private_key": "0x" + PRIVATE_KEY.hex(),
        "reporter_key": "0x" + REPORTER_KEY.hex(),
        "domain": {"chainId": str(DOMAIN.chain_id), "verifyingContract": "0x" + DOMAIN.verifying_contract.hex()},
        "transactions": entries,
        "batch": {"txs_per_chunk": "3", "tx_names": [e["name"] for e in (entries[3], entries[4], entries[7],
                                                                          entries[13], entries[0], entries[18],
                                                                          entries[19])],
                  "data": "0x" + encode_batch_v2(batch, 3).hex()},
        "empty_batch": "0x" + encode_batch_v2([], 16).hex(),
    }


@pytest.fixture(scope="module")
def stored() -> dict:
    return load_vectors(VECTORS, build_vectors)


def test_golden_v2_vectors_unchanged(stored):
    current = build_vectors()
    assert [t["name"] for t in current["transactions"]] == [t["name"] for t in stored["transactions"]]
    for now, then in zip(current["transactions"], stored["transactions"]):
        assert now == then, now["name"]
    assert current == stored


def test_golden_chunks_decode_to_their_canonical_transactions(stored):
    for e in stored["transactions"]:
        chunk = bytes.fromhex(e["chunk"][2:])
        (tx,) = decode_chunk(chunk, 0, len(chunk), 1)
        assert type(tx).__name__ == e["type"], e["name"]
        assert "0x" + encode_tx(tx).hex() == e["abi"], e["name"]
        assert (chunk[0] == FALLBACK) == e["name"].startswith("fallback"), e["name"]


def test_golden_batch_decodes(stored):
    data = bytes.fromhex(stored["batch"]["data"][2:])
    k, txs = decode_batch_v2(data)
    assert k == 3 and len(txs) == 7
    by_name = {e["name"]: e["abi"] for e in stored["transactions"]}
    assert ["0x" + encode_tx(t).hex() for t in txs] == [by_name[n] for n in stored["batch"]["tx_names"]]
    assert encode_batch_v2(txs, 3) == data
    # the frame: version 2, k = 3, n = 7, three uint32 chunk ends, the last = the length
    assert data[:3] == bytes((2, 3, 7)) and int.from_bytes(data[11:15], "big") == len(data)
    assert bytes.fromhex(stored["empty_batch"][2:]) == bytes((2, 16, 0))
    assert decode_batch_v2(bytes((2, 16, 0))) == (16, [])


def test_golden_orders_are_a_sixth_of_their_abi_size(stored):
    sizes = {e["name"]: (len(e["chunk"]) // 2 - 1, len(e["abi"]) // 2 - 1) for e in stored["transactions"]}
    v2, abi = sizes["order_gtt_post_only"]
    # 64 bytes of signature; 6 of absolute time as a chunk's first transaction (then 0-2)
    assert abi == 544 and v2 == 83
