"""Golden vectors: exact bytes of digests, signatures, transaction encodings, leaf hashes and a
state root for fixed inputs. Any change to the canonical encoding shows up here as a diff.

The vectors in ``vectors/encoding.json`` were generated once by this file. To regenerate
(only when an encoding change is intended, and then bump the tags/versions):

    CLEARLINE_REGEN_GOLDEN=1 pytest tests/golden/test_golden_encoding.py

Numbers are stored as decimal strings and bytes as 0x-hex, so any language (Solidity tests,
the TypeScript UI) can consume the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account.messages import _hash_eip191_message, encode_typed_data

from clearline.core import eip712
from clearline.core.encoding import (
    decode_tx,
    encode_account_leaf,
    encode_market_leaf,
    encode_order_leaf,
    encode_pending_order_leaf,
    encode_state,
    encode_tx,
    encode_underlying_leaf,
    leaf_hash,
    state_root,
)
from clearline.core.txs import (
    Cancel,
    Deposit,
    MarginMode,
    MarkUpdate,
    OperatorAction,
    OperatorActionKind,
    Order,
    Replace,
    SetAccountFlags,
    SetMarginMode,
    Transfer,
    Withdraw,
)
from clearline.oracle.report import PriceReport, recover_reporter
from clearline.oracle.report import signed as signed_report
from golden_store import load_vectors

VECTORS = Path(__file__).parent / "vectors" / "encoding.json"

PRIVATE_KEY = bytes([1]) * 32  # 0x0101...01
DOMAIN = eip712.Domain(31337, bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
OWNER = eip712.address_of(PRIVATE_KEY)
U64_MAX = (1 << 64) - 1
U32_MAX = (1 << 32) - 1
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
REPORTER_KEY = bytes([2]) * 32  # 0x0202...02

# Risk arrays (usd6 per long lot, 16 scenarios): both int64 bounds, negatives and zero.
RISK_BTC = [-6_500_000 + 1_000_000 * i for i in range(16)]
RISK_OPT = [INT64_MIN, -1, 0, 1, INT64_MAX] + [-31_000 * i for i in range(11)]


def golden_txs() -> list[tuple[str, object]]:
    return [
        ("deposit", Deposit(1_700_000_000_000, 0, OWNER, 0, 25_000_000_000)),
        ("order_limit_gtc", Order(1_700_000_000_001, 1, 1, 0, 0, 0, 0, 0,
                                  650_000, 10, 0, 42, 1)),
        ("order_market_ioc_flags", Order(1_700_000_000_002, 1, 2, 1, 1, 2, 3, 2,
                                         U64_MAX, 1, 1_700_000_060_000, U64_MAX, 2)),
        ("cancel_by_order_id", Cancel(1_700_000_000_003, 1, 0, 0, 7, 0, 3)),
        ("cancel_all", Cancel(1_700_000_000_004, U32_MAX, 3, U32_MAX, U64_MAX, U64_MAX, U64_MAX)),
        ("replace", Replace(1_700_000_000_005, 1, 7, 650_100, 5, 4)),
        ("withdraw", Withdraw(1_700_000_000_006, 1, 1_000_000_000, 5)),
        ("transfer", Transfer(1_700_000_000_007, 1, 2, 500_000_000, 6)),
        ("mark_update", MarkUpdate(1_700_000_000_008, 1_700_000_000_000, [1, 2, 3],
                                   [650_000, 31_000, U64_MAX])),
        ("mark_update_empty", MarkUpdate(1_700_000_000_009, 0, [], [])),
        ("mark_update_risk_reports", MarkUpdate(
            1_700_000_000_010, 1_700_000_000_010, [1, 2], [650_000, 31_000],
            [RISK_BTC, RISK_OPT],
            [signed_report(DOMAIN, PriceReport(0, 65_000_500_000, 1_700_000_000_005, 7),
                           REPORTER_KEY)])),
        ("operator_funding_tick", OperatorAction(1_700_000_000_011,
                                                 OperatorActionKind.FUNDING_TICK, 0, 0,
                                                 1_700_000_000_011)),
        ("operator_settle_option", OperatorAction(1_700_000_000_012,
                                                  OperatorActionKind.SETTLE_OPTION, U32_MAX,
                                                  U64_MAX, 1_700_000_000_012)),
        ("set_margin_mode", SetMarginMode(1_700_000_000_013, 1, MarginMode.PORTFOLIO, 7)),
        ("set_account_flags", SetAccountFlags(1_700_000_000_014, 1, 1, 8)),
        ("operator_cancel_all_orders", OperatorAction(1_700_000_000_015,
                                                      OperatorActionKind.CANCEL_ALL_ORDERS, 1, 2,
                                                      1_700_000_000_015)),
    ]


def _json_value(value):
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, PriceReport):
        return {f: _json_value(getattr(value, f)) for f in value.__slots__}
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    raise TypeError(type(value))


def _fields(tx) -> dict:
    return {f: _json_value(getattr(tx, f)) for f in tx.__slots__ if f != "signer"}


MARKET = dict(
    id=2, symbol="BTC-27JUN25-70000-C", kind=1, underlying="BTC", tick_size=100_000,
    lot_size=10_000, im_ppm=150_000, mm_ppm=75_000, maker_fee_ppm=-100, taker_fee_ppm=500,
    expiry=1_751_011_200_000, strike=700_000, option_type=1, status=0, mark_price=31_000,
    mark_time=1_700_000_000_000, funding_index=-(10**24) - 7, open_interest=12_345,
    premium_sum=-123_456, premium_samples=17, last_funding_time=1_699_999_200_000,
    last_funding_rate_ppm=-42, settlement_price=U64_MAX, risk_array=RISK_OPT, unpaid_lots=24_690,
    pay_float=-(1 << 63), bid_head=11, ask_head=U64_MAX,
)
ACCOUNT = dict(id=1, owner=OWNER, subaccount=0, collateral=-1_234_567,
               nonce=6, positions=[(1, 10, -6_500_000, 3), (2, -(1 << 63), (1 << 255) - 1, -1)],
               margin_mode=MarginMode.PORTFOLIO, flags=1)
UNDERLYING = dict(id=0, symbol="BTC", index_price=65_000_500_000, index_time=1_700_000_000_005,
                  last_round_ms=1_700_000_000_000, pending_price=65_001_000_000, pending_count=2,
                  liquidations_paused=True,
                  windows=[(1_751_011_200_000, (1 << 256) - 1, 1_800_000, 12),
                           (1_758_873_600_000, 0, 0, (1 << 32) - 1)])
RESTING_ORDER = dict(order_id=7, account=1, instrument=1, side=0, tif=0, flags=1, stp=2,
                     price=650_000, size=10, remaining=4, expiry=0, client_id=42, next_order=9)
# An incoming order between its match steps (clearline.core.order_steps): a GTT reduce-only sell,
# 3 makers met so far (the last word, where a resting order has `next`).
PENDING_ORDER = dict(order_id=8, account=2, instrument=1, side=1, tif=1, flags=2, stp=1,
                     price=640_000, size=12, remaining=5, expiry=1_700_000_060_000, client_id=U64_MAX, met=3)


def build_vectors() -> dict:
    txs = []
    for name, tx in golden_txs():
        entry = {"name": name, "type": type(tx).__name__}
        if isinstance(tx, Deposit):
            entry["fields"] = _fields(tx)
        else:
            tx.signature = eip712.sign(DOMAIN, tx, PRIVATE_KEY)
            entry["fields"] = _fields(tx)
            entry["struct_hash"] = _json_value(eip712.struct_hash(tx))
            entry["digest"] = _json_value(eip712.digest(DOMAIN, tx))
            entry["signature"] = _json_value(tx.signature)
        entry["encoding"] = _json_value(encode_tx(tx))
        txs.append(entry)

    account_leaf = encode_account_leaf(**ACCOUNT)
    order_leaf = encode_order_leaf(**RESTING_ORDER)
    pending_leaf = encode_pending_order_leaf(**PENDING_ORDER)
    market_leaf = encode_market_leaf(**MARKET)
    underlying_leaf = encode_underlying_leaf(**UNDERLYING)
    # The sub-roots here are single leaf hashes standing in for tree roots: the vector pins
    # the state-root preimage layout, not the Merkle trees (those have their own vectors).
    state = dict(
        accounts_root=leaf_hash(account_leaf), orders_root=leaf_hash(order_leaf),
        markets_root=leaf_hash(market_leaf), l1_queue_pos=1, fee_pool=1_234,
        insurance_fund=(1 << 256) - 1, next_order_id=8, next_account_id=2,
        time_ms=1_700_000_000_009, total_deposits=25_000_000_000, total_withdrawals=0,
    )
    return {
        "private_key": _json_value(PRIVATE_KEY),
        "signer": _json_value(OWNER),
        "domain": {"name": eip712.DOMAIN_NAME, "version": eip712.DOMAIN_VERSION,
                   "chainId": str(DOMAIN.chain_id),
                   "verifyingContract": _json_value(DOMAIN.verifying_contract),
                   "separator": _json_value(DOMAIN.separator)},
        "transactions": txs,
        "leaves": {
            "account": {"inputs": {k: _json_value(v) for k, v in ACCOUNT.items()},
                        "encoding": _json_value(account_leaf),
                        "hash": _json_value(leaf_hash(account_leaf))},
            "order": {"inputs": {k: _json_value(v) for k, v in RESTING_ORDER.items()},
                      "encoding": _json_value(order_leaf),
                      "hash": _json_value(leaf_hash(order_leaf))},
            "pending_order": {"inputs": {k: _json_value(v) for k, v in PENDING_ORDER.items()},
                              "encoding": _json_value(pending_leaf),
                              "hash": _json_value(leaf_hash(pending_leaf))},
            "market": {"inputs": {k: (v if isinstance(v, str) else _json_value(v))
                                  for k, v in MARKET.items()},
                       "encoding": _json_value(market_leaf),
                       "hash": _json_value(leaf_hash(market_leaf))},
            "underlying": {"inputs": {k: (v if isinstance(v, str) else _json_value(v))
                                      for k, v in UNDERLYING.items()},
                           "encoding": _json_value(underlying_leaf),
                           "hash": _json_value(leaf_hash(underlying_leaf))},
        },
        "state": {"inputs": {k: _json_value(v) for k, v in state.items()},
                  "encoding": _json_value(encode_state(**state)),
                  "root": _json_value(state_root(**state))},
    }


@pytest.fixture(scope="module")
def stored() -> dict:
    return load_vectors(VECTORS, build_vectors)


def test_golden_vectors_unchanged(stored):
    current = build_vectors()
    assert current.keys() == stored.keys()
    for key in ("private_key", "signer", "domain", "leaves", "state"):
        assert current[key] == stored[key], key
    assert [t["name"] for t in current["transactions"]] == \
        [t["name"] for t in stored["transactions"]]
    for now, then in zip(current["transactions"], stored["transactions"]):
        assert now == then, now["name"]


def test_golden_encodings_decode_to_their_fields(stored):
    for entry in stored["transactions"]:
        tx = decode_tx(bytes.fromhex(entry["encoding"][2:]))
        assert type(tx).__name__ == entry["type"]
        assert _fields(tx) == entry["fields"], entry["name"]


def test_golden_signatures_recover_to_signer(stored):
    signer = bytes.fromhex(stored["signer"][2:])
    for entry in stored["transactions"]:
        if "signature" not in entry:
            continue
        tx = decode_tx(bytes.fromhex(entry["encoding"][2:]))
        assert eip712.recover_signer(DOMAIN, tx) == signer, entry["name"]
        for report in getattr(tx, "reports", ()):
            assert recover_reporter(DOMAIN, report) == eip712.address_of(REPORTER_KEY)


def test_golden_digests_agree_with_eth_account(stored):
    """Anchor the stored digests to an independent implementation, not only to ourselves."""
    for entry in stored["transactions"]:
        if "digest" not in entry:
            continue
        tx = decode_tx(bytes.fromhex(entry["encoding"][2:]))
        msg = encode_typed_data(full_message=eip712.typed_data(DOMAIN, tx))
        assert "0x" + bytes(_hash_eip191_message(msg)).hex() == entry["digest"], entry["name"]
