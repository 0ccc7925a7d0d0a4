"""The hand-rolled EIP-712 hashing is pinned against eth_account, and signature recovery
enforces the canonical (low-s, v in {27, 28}) form."""

from __future__ import annotations

import json
import subprocess
import sys

import eth_abi
import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from clearline.core import eip712
from clearline.core.eip712 import (
    SECP256K1_N,
    TYPES,
    Domain,
    address_of,
    digest,
    recover,
    recover_signer,
    sign,
    struct_hash,
    typed_data,
)
from clearline.core.errors import ErrorCode, Rejected
from clearline.core.hashing import keccak
from clearline.core.txs import (
    Cancel,
    Deposit,
    MarkUpdate,
    OperatorAction,
    Order,
    Replace,
    SetAccountFlags,
    SetMarginMode,
    Transfer,
    Withdraw,
)
from clearline.oracle.report import PriceReport, encode_reports

CLASSES = {"Order": Order, "Cancel": Cancel, "Replace": Replace, "Withdraw": Withdraw,
           "Transfer": Transfer, "MarkUpdate": MarkUpdate, "OperatorAction": OperatorAction,
           "SetMarginMode": SetMarginMode, "SetAccountFlags": SetAccountFlags}
ATTR = {"orderType": "order_type", "timeInForce": "tif", "clientId": "client_id",
        "orderId": "order_id", "toSubaccount": "to_subaccount", "riskArrays": "risk_arrays"}
BITS = {"uint8": 8, "uint32": 32, "uint64": 64}
N_SCENARIOS = 16
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

KEY = bytes([1]) * 32
CONTRACT = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
DOMAIN = Domain(31337, CONTRACT)


def uint(bits: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([0, 1, (1 << bits) - 1]), st.integers(0, (1 << bits) - 1))


def int64() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([INT64_MIN, -1, 0, 1, INT64_MAX]),
                     st.integers(INT64_MIN, INT64_MAX))


signatures = st.one_of(st.just(b""), st.binary(min_size=65, max_size=65).filter(any))
reports = st.builds(PriceReport, uint(32), uint(64), uint(64), uint(64), signatures)


@st.composite
def mark_updates(draw) -> MarkUpdate:
    instruments = draw(st.lists(uint(32), max_size=4))
    risk = draw(st.one_of(st.just([]), st.lists(
        st.lists(int64(), min_size=N_SCENARIOS, max_size=N_SCENARIOS),
        min_size=len(instruments), max_size=len(instruments))))
    return MarkUpdate(draw(uint(64)), draw(uint(64)), instruments,
                      draw(st.lists(uint(64), max_size=4)), risk,
                      draw(st.lists(reports, max_size=3)))


def tx_strategy(name: str) -> st.SearchStrategy:
    if name == "MarkUpdate":
        return mark_updates()
    kwargs = {"time_ms": uint(64)}
    for fname, ftype in TYPES[name]:
        if ftype.endswith("[]"):
            kwargs[ATTR.get(fname, fname)] = st.lists(uint(BITS[ftype[:-2]]), max_size=6)
        else:
            kwargs[ATTR.get(fname, fname)] = uint(BITS[ftype])
    return st.builds(CLASSES[name], **kwargs)


any_signed_tx = st.one_of(*(tx_strategy(name) for name in TYPES))
domains = st.builds(Domain, uint(256), st.binary(min_size=20, max_size=20))
private_keys = st.integers(1, SECP256K1_N - 1).map(lambda k: k.to_bytes(32, "big"))


def max_tx(name: str):
    """Every field at its maximum (arrays of 3 maxed elements; risk arrays at both int64
    bounds; one report with maxed fields)."""
    if name == "MarkUpdate":
        top32, top64 = (1 << 32) - 1, (1 << 64) - 1
        return MarkUpdate(top64, top64, [top32] * 3, [top64] * 3,
                          [[INT64_MAX] * N_SCENARIOS, [INT64_MIN] * N_SCENARIOS,
                           [-1, 1] * (N_SCENARIOS // 2)],
                          [PriceReport(top32, top64, top64, top64, b"\xff" * 65)])
    kwargs = {"time_ms": (1 << 64) - 1}
    for fname, ftype in TYPES[name]:
        top = (1 << BITS[ftype.rstrip("[]")]) - 1
        kwargs[ATTR.get(fname, fname)] = [top] * 3 if ftype.endswith("[]") else top
    return CLASSES[name](**kwargs)


def zero_tx(name: str):
    """Every field zero, every array empty."""
    if name == "MarkUpdate":
        return MarkUpdate(0, 0)
    return CLASSES[name](**{f: 0 for f in _fields(max_tx(name))})


def eth_account_digest(domain: Domain, tx) -> bytes:
    return bytes(_hash_eip191_message(encode_typed_data(full_message=typed_data(domain, tx))))


REPORT = PriceReport(0, 65_000_500_000, 1_699_999_999_500, 12, b"\x11" * 64 + b"\x1b")
RISK = [-5_000_000 + 700_000 * i for i in range(N_SCENARIOS)]


def sample_txs():
    return [
        Order(1, 7, 2, 1, 0, 1, 1, 2, 650_000, 10, 0, 42, 1),
        Cancel(1, 7, 0, 0, 99, 0, 2),
        Replace(1, 7, 99, 650_100, 5, 3),
        Withdraw(1, 7, 1_000_000, 4),
        Transfer(1, 7, 3, 500, 5),
        MarkUpdate(1, 1_700_000_000_000, [1, 2, 3], [650_000, 31_000, 12]),
        MarkUpdate(1, 0, [], []),
        MarkUpdate(1, 1_700_000_000_000, [1, 2], [650_000, 31_000], [RISK, RISK[::-1]],
                   [REPORT, PriceReport(1, 3_100_000_000, 1_699_999_999_600, 13)]),
        OperatorAction(1, 2, 7, 0, 1_700_000_000_000),
        SetMarginMode(1, 7, 1, 6),
        SetAccountFlags(1, 7, 1, 7),
    ]


# --- pinned type strings -------------------------------------------------------------------

def test_type_strings_are_exactly_the_spec():
    expected = {
        "Order": "Order(uint32 account,uint32 instrument,uint8 side,uint8 orderType,"
                 "uint8 timeInForce,uint8 flags,uint8 stp,uint64 price,uint64 size,"
                 "uint64 expiry,uint64 clientId,uint64 nonce)",
        "Cancel": "Cancel(uint32 account,uint8 scope,uint32 instrument,uint64 orderId,"
                  "uint64 clientId,uint64 nonce)",
        "Replace": "Replace(uint32 account,uint64 orderId,uint64 price,uint64 size,uint64 nonce)",
        "Withdraw": "Withdraw(uint32 account,uint64 amount,uint64 nonce)",
        "Transfer": "Transfer(uint32 account,uint32 toSubaccount,uint64 amount,uint64 nonce)",
        "MarkUpdate": "MarkUpdate(uint64 timestamp,uint32[] instruments,uint64[] prices,"
                      "int64[] riskArrays,bytes32 reportsHash)",
        "OperatorAction": "OperatorAction(uint8 action,uint32 target,uint64 arg,uint64 timestamp)",
        "SetMarginMode": "SetMarginMode(uint32 account,uint8 mode,uint64 nonce)",
        "SetAccountFlags": "SetAccountFlags(uint32 account,uint8 flags,uint64 nonce)",
    }
    assert set(TYPES) == set(expected)
    for name, type_string in expected.items():
        assert eip712._TYPEHASH[name] == keccak(type_string.encode())
        assert eip712.type_string(name) == type_string
    assert eip712.type_string("EIP712Domain") == (
        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")


def test_domain_separator_matches_eth_account():
    for domain in (DOMAIN, Domain(0, bytes(20)), Domain((1 << 256) - 1, b"\xff" * 20)):
        msg = encode_typed_data(full_message=typed_data(domain, sample_txs()[0]))
        assert bytes(msg.header) == domain.separator
        assert msg.version == b"\x01"


def test_domain_rejects_bad_config():
    with pytest.raises(ValueError):
        Domain(1, bytes(19))
    with pytest.raises(ValueError):
        Domain(-1, CONTRACT)
    with pytest.raises(ValueError):
        Domain(1 << 256, CONTRACT)
    assert Domain(1, CONTRACT) == Domain(1, CONTRACT)
    with pytest.raises(AttributeError):
        DOMAIN.chain_id = 2  # frozen


# --- hand-rolled hash == eth_account -------------------------------------------------------

@pytest.mark.parametrize("name", list(TYPES))
def test_digest_at_bounds_matches_eth_account(name):
    top = max_tx(name)
    assert digest(DOMAIN, top) == eth_account_digest(DOMAIN, top)
    zero = zero_tx(name)
    assert digest(DOMAIN, zero) == eth_account_digest(DOMAIN, zero)


def _fields(tx) -> dict:
    return {f: getattr(tx, f) for f in tx.__slots__ if f not in ("signature", "signer")}


@pytest.mark.parametrize("tx", sample_txs(), ids=lambda t: type(t).__name__)
def test_samples_match_eth_account(tx):
    assert digest(DOMAIN, tx) == eth_account_digest(DOMAIN, tx)


@pytest.mark.parametrize("name", list(TYPES))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_digest_matches_eth_account(name, data):
    tx = data.draw(tx_strategy(name))
    domain = data.draw(domains)
    expected = eth_account_digest(domain, tx)
    assert digest(domain, tx) == expected
    assert keccak(b"\x19\x01" + domain.separator + struct_hash(tx)) == expected


def test_struct_hash_ignores_unsigned_fields():
    a, b = sample_txs()[0], sample_txs()[0]
    b.time_ms, b.signature, b.signer = 999, b"\x01" * 65, b"\x02" * 20
    assert struct_hash(a) == struct_hash(b)


@pytest.mark.parametrize("name", list(TYPES))
def test_every_signed_field_changes_the_digest(name):
    base = max_tx(name)
    base_digest = digest(DOMAIN, base)
    for fname, ftype in TYPES[name]:
        tx = max_tx(name)
        if fname == "reportsHash":
            tx.reports = []
        elif fname == "riskArrays":
            tx.risk_arrays = []
        elif ftype.endswith("[]"):  # same length, so the risk arrays still fit
            setattr(tx, ATTR.get(fname, fname), [0] * 3)
        else:
            setattr(tx, ATTR.get(fname, fname), 0)
        assert digest(DOMAIN, tx) != base_digest, fname


def test_mark_update_signs_every_report_byte_and_risk_value():
    base = sample_txs()[7]
    seen = {digest(DOMAIN, base)}
    variants = []
    for change in (dict(asset=1), dict(price=1), dict(timestamp=1), dict(round=1),
                   dict(signature=b"\x11" * 64 + b"\x1c"), dict(signature=b"")):
        tx = sample_txs()[7]
        tx.reports[0] = PriceReport(**{**{f: getattr(REPORT, f) for f in REPORT.__slots__},
                                       **change})
        variants.append(tx)
    tx = sample_txs()[7]
    tx.reports = tx.reports[::-1]  # order matters
    variants.append(tx)
    tx = sample_txs()[7]
    tx.risk_arrays = tx.risk_arrays[::-1]
    variants.append(tx)
    tx = sample_txs()[7]
    tx.risk_arrays[1][15] -= 1
    variants.append(tx)
    for tx in variants:
        d = digest(DOMAIN, tx)
        assert d not in seen
        assert d == eth_account_digest(DOMAIN, tx)
        seen.add(d)


def test_reports_hash_is_keccak_of_encode_reports():
    tx = sample_txs()[7]
    expected = keccak(encode_reports(tx.reports))
    assert eip712._reports_hash(tx.reports) == expected
    assert typed_data(DOMAIN, tx)["message"]["reportsHash"] == "0x" + expected.hex()
    # An empty list hashes the encoding of an empty list (offset 0x20, length 0).
    empty = keccak((32).to_bytes(32, "big") + bytes(32))
    assert eip712._reports_hash([]) == empty == keccak(encode_reports([]))
    assert typed_data(DOMAIN, MarkUpdate(1, 2))["message"]["reportsHash"] == "0x" + empty.hex()


@settings(max_examples=200, deadline=None)
@given(values=st.lists(int64(), max_size=40))
def test_int64_words_match_eth_abi(values):
    assert eip712._int64_words(values) == eth_abi.encode(["int64"] * len(values), values)


def test_scenario_count_agrees_with_the_core_and_risk():
    from clearline.core import encoding, requirements
    from clearline.risk import N_SCENARIOS as RISK_N_SCENARIOS

    # eip712 flattens risk arrays with encoding's helper, so encoding's count governs both
    assert eip712._flat_risk is encoding._flat_risk
    assert encoding._N_SCENARIOS == requirements.N_SCENARIOS == RISK_N_SCENARIOS == N_SCENARIOS


@pytest.mark.parametrize("first", ["clearline.oracle.report", "clearline.oracle",
                                   "clearline.core.eip712", "clearline.core.encoding"])
def test_no_import_cycle_whatever_is_imported_first(first):
    # eip712/encoding use clearline.oracle.report, which imports eip712: the import is lazy.
    code = (f"import {first}; from clearline.core import eip712, encoding; "
            "from clearline.core.txs import MarkUpdate; "
            "from clearline.oracle.report import PriceReport; "
            "tx = MarkUpdate(1, 2, [3], [4], [[5] * 16], [PriceReport(1, 2, 3, 4)]); "
            "eip712.struct_hash(tx); assert encoding.decode_tx(encoding.encode_tx(tx)) == tx")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_type_confusion_gives_distinct_digests():
    # Withdraw(account, amount, nonce) and a Transfer with the same numbers must not collide.
    assert struct_hash(Withdraw(0, 1, 2, 3)) != struct_hash(Transfer(0, 1, 0, 2, 3))


# --- range validation ----------------------------------------------------------------------

@pytest.mark.parametrize("name", list(TYPES))
def test_out_of_range_fields_are_malformed(name):
    for fname, ftype in TYPES[name]:
        if ftype in ("int64[]", "bytes32"):
            continue  # riskArrays and reportsHash: test_bad_mark_update_is_malformed
        attr = ATTR.get(fname, fname)
        top = 1 << BITS[ftype.rstrip("[]")]
        bad_values = [top, -1, 1.0, "1", None]
        for bad in bad_values:
            tx = max_tx(name)
            setattr(tx, attr, [bad] if ftype.endswith("[]") else bad)
            with pytest.raises(Rejected) as exc:
                struct_hash(tx)
            assert exc.value.code == ErrorCode.MALFORMED, (fname, bad)
    tx = max_tx("MarkUpdate")
    tx.instruments = 5
    with pytest.raises(Rejected) as exc:
        struct_hash(tx)
    assert exc.value.code == ErrorCode.MALFORMED


@pytest.mark.parametrize("value", [INT64_MAX + 1, INT64_MIN - 1, 1.0, "1", None])
def test_risk_value_out_of_int64_is_malformed(value):
    tx = max_tx("MarkUpdate")
    tx.risk_arrays[1][3] = value
    with pytest.raises(Rejected) as exc:
        struct_hash(tx)
    assert exc.value.code == ErrorCode.MALFORMED


def _bad_mark_updates():
    """MarkUpdates whose risk arrays or reports have a shape that could never have been
    signed as declared."""
    def with_(**kw):
        tx = max_tx("MarkUpdate")
        for k, v in kw.items():
            setattr(tx, k, v)
        return tx

    return [
        with_(risk_arrays=[[0] * 15] * 3),  # short array
        with_(risk_arrays=[[0] * 17] * 3),  # long array
        with_(risk_arrays=[[0] * N_SCENARIOS] * 2),  # one too few for 3 instruments
        with_(risk_arrays=[[0] * N_SCENARIOS] * 4),  # one too many
        with_(risk_arrays=[[0] * 48]),  # the right total, not one array per instrument
        with_(risk_arrays=[0] * 48),  # already flat
        with_(risk_arrays=5),
        with_(risk_arrays=None),
        with_(risk_arrays=[None] * 3),
        with_(risk_arrays=[b"\x00" * N_SCENARIOS] * 3),
        with_(instruments=[], risk_arrays=[[0] * N_SCENARIOS]),
        with_(reports=5),
        with_(reports=None),
        with_(reports=[None]),
        with_(reports=[object()]),
        with_(reports=[(1, 2, 3, 4, b"")]),
        with_(reports=[PriceReport(1 << 32, 0, 0, 0)]),
        with_(reports=[PriceReport(0, -1, 0, 0)]),
        with_(reports=[PriceReport(0, 0, 1 << 64, 0)]),
        with_(reports=[PriceReport(0, 0, 0, 1.0)]),
        with_(reports=[PriceReport(0, 0, 0, 0, bytes(65))]),  # all-zero: use b"" for none
        with_(reports=[PriceReport(0, 0, 0, 0, b"\x01" * 64)]),
        with_(reports=[PriceReport(0, 0, 0, 0, "00" * 65)]),
    ]


@pytest.mark.parametrize("tx", _bad_mark_updates())
def test_bad_mark_update_is_malformed(tx):
    # typed_data computes the flattening and reportsHash too, so it refuses the same shapes.
    for fn in (struct_hash, lambda t: typed_data(DOMAIN, t)):
        with pytest.raises(Rejected) as exc:
            fn(tx)
        assert exc.value.code == ErrorCode.MALFORMED


def test_unsigned_transaction_type_is_a_type_error():
    with pytest.raises(TypeError):
        struct_hash(Deposit(1, 0, bytes(20), 0, 1))
    with pytest.raises(TypeError):
        typed_data(DOMAIN, Deposit(1, 0, bytes(20), 0, 1))


# --- signing and recovery ------------------------------------------------------------------

def test_address_of_matches_eth_account():
    assert "0x" + address_of(KEY).hex() == Account.from_key(KEY).address.lower()


@settings(max_examples=40, deadline=None)
@given(tx=any_signed_tx, key=private_keys, domain=domains)
def test_eth_account_signature_recovers_with_ours(tx, key, domain):
    signed = Account.sign_typed_data(key, full_message=typed_data(domain, tx))
    tx.signature = bytes(signed.signature)
    assert recover_signer(domain, tx) == address_of(key)
    signed2 = Account.sign_message(encode_typed_data(full_message=typed_data(domain, tx)), key)
    assert bytes(signed2.signature) == tx.signature  # RFC 6979: same bytes both ways


@settings(max_examples=40, deadline=None)
@given(tx=any_signed_tx, key=private_keys, domain=domains)
def test_our_signature_verifies_with_eth_account(tx, key, domain):
    sig = sign(domain, tx, key)
    assert len(sig) == 65 and sig[64] in (27, 28)
    assert int.from_bytes(sig[32:64], "big") <= SECP256K1_N // 2
    recovered = Account.recover_message(
        encode_typed_data(full_message=typed_data(domain, tx)), signature=sig
    )
    assert recovered == Account.from_key(key).address
    tx.signature = sig
    assert recover_signer(domain, tx) == address_of(key)


def _high_s(sig: bytes) -> bytes:
    s = int.from_bytes(sig[32:64], "big")
    return sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes((55 - sig[64],))


@pytest.mark.parametrize("tx", sample_txs())
def test_high_s_variant_is_rejected(tx):
    d = digest(DOMAIN, tx)
    sig = sign(DOMAIN, tx, KEY)
    high = _high_s(sig)
    # The flipped signature is mathematically valid (eth_keys would recover the same signer)...
    from eth_keys import keys
    vrs = (high[64] - 27, int.from_bytes(high[:32], "big"), int.from_bytes(high[32:64], "big"))
    assert keys.Signature(vrs=vrs).recover_public_key_from_msg_hash(d).to_canonical_address() \
        == address_of(KEY)
    # ...but it is the malleable twin, so we refuse it.
    with pytest.raises(Rejected) as exc:
        recover(d, high)
    assert exc.value.code == ErrorCode.HIGH_S_SIGNATURE


@pytest.mark.parametrize("tx", sample_txs())
def test_wrong_domain_recovers_a_different_address(tx):
    tx.signature = sign(DOMAIN, tx, KEY)
    owner = address_of(KEY)
    assert recover_signer(DOMAIN, tx) == owner
    assert recover_signer(Domain(1, CONTRACT), tx) != owner
    assert recover_signer(Domain(31337, b"\x11" * 20), tx) != owner


def test_tampered_field_recovers_a_different_address():
    tx = sample_txs()[0]
    tx.signature = sign(DOMAIN, tx, KEY)
    tx.size += 1
    assert recover_signer(DOMAIN, tx) != address_of(KEY)


def _int32(x: int) -> bytes:
    return x.to_bytes(32, "big")


@pytest.mark.parametrize("mutate", [
    lambda sig: sig[:64],  # too short
    lambda sig: sig + b"\x00",  # too long
    lambda sig: b"",
    lambda sig: sig[:64] + b"\x00",  # v = 0: the {0, 1} form is not accepted
    lambda sig: sig[:64] + b"\x01",
    lambda sig: sig[:64] + b"\x1d",  # 29
    lambda sig: sig[:64] + b"\xff",
    lambda sig: bytes(32) + sig[32:],  # r = 0
    lambda sig: sig[:32] + bytes(32) + sig[64:],  # s = 0
    lambda sig: _int32(SECP256K1_N) + sig[32:],  # r = n
    lambda sig: b"\xff" * 32 + sig[32:],  # r > n
    lambda sig: sig[:32] + _int32(SECP256K1_N) + sig[64:],  # s = n (not merely high)
], ids=["short", "long", "empty", "v0", "v1", "v29", "v255", "r0", "s0", "r=n", "r>n", "s=n"])
def test_malformed_signature_is_bad_signature(mutate):
    tx = sample_txs()[0]
    sig = sign(DOMAIN, tx, KEY)
    with pytest.raises(Rejected) as exc:
        recover(digest(DOMAIN, tx), mutate(sig))
    assert exc.value.code == ErrorCode.BAD_SIGNATURE


def test_unsigned_tx_is_bad_signature():
    tx = sample_txs()[0]
    with pytest.raises(Rejected) as exc:
        recover_signer(DOMAIN, tx)
    assert exc.value.code == ErrorCode.BAD_SIGNATURE


def test_r_not_on_curve_is_bad_signature():
    # x = 5 has no point on secp256k1 (5^3 + 7 = 132 is not a square mod p): recovery fails.
    sig = _int32(5) + _int32(1) + b"\x1b"
    with pytest.raises(Rejected) as exc:
        recover(bytes(32), sig)
    assert exc.value.code == ErrorCode.BAD_SIGNATURE


@settings(max_examples=300, deadline=None)
@given(sig=st.binary(min_size=60, max_size=70), d=st.binary(min_size=32, max_size=32))
@example(sig=b"\x00" * 64 + b"\x1b", d=bytes(32))
def test_recover_never_raises_anything_but_rejected(sig, d):
    try:
        address = recover(d, sig)
    except Rejected as exc:
        assert exc.code in (ErrorCode.BAD_SIGNATURE, ErrorCode.HIGH_S_SIGNATURE)
    else:
        assert len(address) == 20


# --- typed_data format ---------------------------------------------------------------------

def test_typed_data_shape():
    td = typed_data(DOMAIN, sample_txs()[0])
    assert td["primaryType"] == "Order"
    assert td["domain"] == {"name": "clearline", "version": "1", "chainId": 31337,
                            "verifyingContract": "0x5FbDB2315678afecb367f032d93F642f64180aa3"}
    assert [f["name"] for f in td["types"]["Order"]][:4] == ["account", "instrument", "side",
                                                             "orderType"]
    assert td["message"]["timeInForce"] == 1 and td["message"]["clientId"] == 42
    assert "time_ms" not in td["message"] and "signature" not in td["message"]
    mu = typed_data(DOMAIN, sample_txs()[5])["message"]
    assert mu == {"timestamp": 1_700_000_000_000, "instruments": [1, 2, 3],
                  "prices": [650_000, 31_000, 12], "riskArrays": [],
                  "reportsHash": "0x" + keccak(encode_reports([])).hex()}
    tx = sample_txs()[7]
    td = typed_data(DOMAIN, tx)
    assert td["types"]["MarkUpdate"][3:] == [{"name": "riskArrays", "type": "int64[]"},
                                             {"name": "reportsHash", "type": "bytes32"}]
    assert td["message"]["riskArrays"] == RISK + RISK[::-1]
    assert td["message"]["reportsHash"] == "0x" + keccak(encode_reports(tx.reports)).hex()
    op = typed_data(DOMAIN, sample_txs()[8])
    assert op["primaryType"] == "OperatorAction"
    assert op["message"] == {"action": 2, "target": 7, "arg": 0, "timestamp": 1_700_000_000_000}
    mm = typed_data(DOMAIN, sample_txs()[9])
    assert mm["message"] == {"account": 7, "mode": 1, "nonce": 6}


@pytest.mark.parametrize("tx", sample_txs(), ids=lambda t: type(t).__name__)
def test_typed_data_survives_json(tx):
    """What a wallet or a remote signer receives is JSON: the digest must not change."""
    td = json.loads(json.dumps(typed_data(DOMAIN, tx)))
    assert bytes(_hash_eip191_message(encode_typed_data(full_message=td))) == digest(DOMAIN, tx)
