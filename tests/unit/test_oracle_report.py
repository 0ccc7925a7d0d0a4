"""PriceReport EIP-712 hashing is pinned against eth_account; signatures are canonical
(low-s, v in {27, 28}); the ABI encoding is pinned against eth_abi and strictly canonical."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from eth_account.messages import _hash_eip191_message, encode_typed_data
from hypothesis import example, given, settings
from hypothesis import strategies as st

from clearline.core.eip712 import SECP256K1_N, Domain, address_of
from clearline.core.errors import ErrorCode, Rejected
from clearline.core.hashing import keccak
from clearline.oracle import report as rep
from clearline.oracle.report import (
    PRICE_REPORT_TYPEHASH,
    REPORT_SIZE,
    PriceReport,
    decode_report,
    decode_reports,
    digest,
    encode_report,
    encode_reports,
    recover_reporter,
    recover_reporters,
    sign,
    signed,
    struct_hash,
    typed_data,
)

KEY = bytes([7]) * 32
CONTRACT = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
DOMAIN = Domain(31337, CONTRACT)
REPORT = PriceReport(0, 65_000_500_000, 1_700_000_000_000, 42)
U32, U64 = (1 << 32) - 1, (1 << 64) - 1
TUPLE = "(uint32,uint64,uint64,uint64,bytes32,bytes32,uint8)"


def uint(bits: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([0, 1, (1 << bits) - 1]), st.integers(0, (1 << bits) - 1))


reports = st.builds(PriceReport, uint(32), uint(64), uint(64), uint(64))
domains = st.builds(Domain, uint(256), st.binary(min_size=20, max_size=20))
private_keys = st.integers(1, SECP256K1_N - 1).map(lambda k: k.to_bytes(32, "big"))
signatures = st.one_of(
    st.just(b""),
    st.binary(min_size=65, max_size=65).filter(lambda b: b != bytes(65)),
)


def eth_account_digest(domain: Domain, report: PriceReport) -> bytes:
    return bytes(_hash_eip191_message(encode_typed_data(full_message=typed_data(domain, report))))


# --- EIP-712 ---------------------------------------------------------------------------------

def test_type_string_is_exactly_the_spec():
    assert rep.PRICE_REPORT_TYPE == \
        "PriceReport(uint32 asset,uint64 price,uint64 timestamp,uint64 round)"
    assert PRICE_REPORT_TYPEHASH == keccak(rep.PRICE_REPORT_TYPE.encode())


def test_domain_separator_is_the_core_domain():
    msg = encode_typed_data(full_message=typed_data(DOMAIN, REPORT))
    assert bytes(msg.header) == DOMAIN.separator
    assert typed_data(DOMAIN, REPORT)["domain"]["name"] == "clearline"
    assert typed_data(DOMAIN, REPORT)["domain"]["version"] == "1"


@settings(max_examples=150, deadline=None)
@given(domains, reports)
@example(DOMAIN, PriceReport(0, 0, 0, 0))
@example(DOMAIN, PriceReport(U32, U64, U64, U64))
@example(Domain((1 << 256) - 1, b"\xff" * 20), REPORT)
def test_digest_matches_eth_account(domain, report):
    assert digest(domain, report) == eth_account_digest(domain, report)
    assert struct_hash(report) == bytes(
        encode_typed_data(full_message=typed_data(domain, report)).body)


def test_signature_is_ignored_by_the_hash():
    assert struct_hash(REPORT) == struct_hash(signed(DOMAIN, REPORT, KEY))


@pytest.mark.parametrize("bad", [
    PriceReport(-1, 1, 1, 1), PriceReport(1 << 32, 1, 1, 1), PriceReport(0, 1 << 64, 1, 1),
    PriceReport(0, 1, 1 << 64, 1), PriceReport(0, 1, 1, -1), PriceReport(0, 1.5, 1, 1),
    PriceReport(0, "1", 1, 1),
])
def test_out_of_range_fields_are_malformed(bad):
    with pytest.raises(Rejected) as e:
        struct_hash(bad)
    assert e.value.code == ErrorCode.MALFORMED


def test_not_a_report_is_a_type_error():
    with pytest.raises(TypeError):
        struct_hash((0, 1, 2, 3))


# --- signatures ------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(domains, reports, private_keys)
def test_sign_recover_roundtrip(domain, report, key):
    sig = sign(domain, report, key)
    assert len(sig) == 65 and sig[64] in (27, 28)
    assert int.from_bytes(sig[32:64], "big") <= SECP256K1_N // 2
    s = signed(domain, report, key)
    assert s.signature == sig
    assert recover_reporter(domain, s) == address_of(key)


def test_signature_matches_eth_account_signer():
    from eth_account import Account

    s = signed(DOMAIN, REPORT, KEY)
    theirs = Account.sign_typed_data(KEY, full_message=typed_data(DOMAIN, REPORT))
    assert s.signature == bytes(theirs.signature)  # RFC 6979: same deterministic nonce
    assert recover_reporter(DOMAIN, s) == bytes.fromhex(Account.from_key(KEY).address[2:])


def test_high_s_is_rejected():
    s = signed(DOMAIN, REPORT, KEY)
    r_, s_, v = s.signature[:32], int.from_bytes(s.signature[32:64], "big"), s.signature[64]
    flipped = r_ + (SECP256K1_N - s_).to_bytes(32, "big") + bytes((55 - v,))  # 27<->28
    bad = PriceReport(REPORT.asset, REPORT.price, REPORT.timestamp, REPORT.round, flipped)
    with pytest.raises(Rejected) as e:
        recover_reporter(DOMAIN, bad)
    assert e.value.code == ErrorCode.HIGH_S_SIGNATURE


@pytest.mark.parametrize("mutate", [
    lambda sig: sig[:64] + bytes((sig[64] - 27,)),  # v in {0, 1}: not canonical
    lambda sig: sig[:64],  # too short
    lambda sig: sig + b"\x00",  # too long
    lambda sig: bytes(32) + sig[32:],  # r = 0
    lambda sig: SECP256K1_N.to_bytes(32, "big") + sig[32:],  # r = n
    lambda sig: b"",  # unsigned
])
def test_bad_signatures_are_rejected(mutate):
    s = signed(DOMAIN, REPORT, KEY)
    bad = PriceReport(REPORT.asset, REPORT.price, REPORT.timestamp, REPORT.round,
                      mutate(s.signature))
    with pytest.raises(Rejected) as e:
        recover_reporter(DOMAIN, bad)
    assert e.value.code == ErrorCode.BAD_SIGNATURE


def test_wrong_domain_or_field_recovers_another_address():
    s = signed(DOMAIN, REPORT, KEY)
    me = address_of(KEY)
    assert recover_reporter(DOMAIN, s) == me
    assert recover_reporter(Domain(1, CONTRACT), s) != me
    assert recover_reporter(Domain(31337, bytes(20)), s) != me
    for field, value in (("asset", 1), ("price", REPORT.price + 1),
                         ("timestamp", REPORT.timestamp + 1), ("round", 43)):
        kwargs = {f: getattr(s, f) for f in ("asset", "price", "timestamp", "round", "signature")}
        kwargs[field] = value
        assert recover_reporter(DOMAIN, PriceReport(**kwargs)) != me, field


def test_recover_reporters_keeps_order_and_rejects_any_bad_signature():
    keys = [bytes([i]) * 32 for i in (1, 2, 3)]
    batch = [signed(DOMAIN, PriceReport(0, 100 + i, 5, i), k) for i, k in enumerate(keys)]
    pairs = recover_reporters(DOMAIN, batch)
    assert [p[0] for p in pairs] == batch
    assert [p[1] for p in pairs] == [address_of(k) for k in keys]
    with pytest.raises(Rejected):
        recover_reporters(DOMAIN, batch + [PriceReport(0, 1, 1, 1)])


def test_report_is_frozen():
    with pytest.raises(AttributeError):
        REPORT.price = 1  # type: ignore[misc]
    assert REPORT == PriceReport(0, 65_000_500_000, 1_700_000_000_000, 42)


# --- ABI encoding ----------------------------------------------------------------------------

def _abi_fields(r: PriceReport) -> tuple:
    sig = r.signature or bytes(65)
    return (r.asset, r.price, r.timestamp, r.round, sig[:32], sig[32:64], sig[64])


@settings(max_examples=200, deadline=None)
@given(reports, signatures)
def test_encoding_matches_eth_abi_and_roundtrips(report, sig):
    r = PriceReport(report.asset, report.price, report.timestamp, report.round, sig)
    data = encode_report(r)
    assert len(data) == REPORT_SIZE == 224
    assert data == abi_encode(["uint32", "uint64", "uint64", "uint64", "bytes32", "bytes32",
                               "uint8"], _abi_fields(r))
    assert decode_report(data) == r
    assert encode_report(decode_report(data)) == data


@settings(max_examples=50, deadline=None)
@given(st.lists(st.builds(PriceReport, uint(32), uint(64), uint(64), uint(64), signatures),
                max_size=5))
def test_report_array_matches_eth_abi_and_roundtrips(batch):
    data = encode_reports(batch)
    assert data == abi_encode([TUPLE + "[]"], [[_abi_fields(r) for r in batch]])
    assert decode_reports(data) == batch
    assert encode_reports(tuple(batch)) == data


def test_encode_rejects_bad_shapes():
    for bad in (PriceReport(0, 1 << 64, 1, 1), PriceReport(0, 1, 1, 1, bytes(65)),
                PriceReport(0, 1, 1, 1, b"\x01" * 64), PriceReport(0, 1, 1, 1, "sig")):
        with pytest.raises(Rejected) as e:
            encode_report(bad)
        assert e.value.code == ErrorCode.MALFORMED
    with pytest.raises(Rejected):
        encode_reports({REPORT})


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 223 * 8 - 1))
def test_any_single_bit_flip_is_rejected_or_reencodes_identically(bit):
    """Canonical: a decodable byte string always re-encodes to itself."""
    data = bytearray(encode_report(signed(DOMAIN, REPORT, KEY)))
    data[bit // 8] ^= 1 << (bit % 8)
    try:
        decoded = decode_report(bytes(data))
    except Rejected as e:
        assert e.code == ErrorCode.MALFORMED
    else:
        assert encode_report(decoded) == bytes(data)


def test_decode_rejects_non_canonical():
    good = encode_report(signed(DOMAIN, REPORT, KEY))
    cases = [
        good[:-1], good + b"\x00", b"",
        b"\x01" + good[1:],  # padding of the asset word
        good[:32] + b"\x01" + good[33:],  # padding of the price word
        good[:192] + b"\x01" + good[193:],  # padding of the v word
        "not bytes",
    ]
    for data in cases:
        with pytest.raises(Rejected) as e:
            decode_report(data)
        assert e.value.code == ErrorCode.MALFORMED
    assert decode_report(memoryview(good)) == decode_report(bytearray(good))


def test_decode_reports_rejects_non_canonical():
    one = encode_report(REPORT)
    good = encode_reports([REPORT])
    cases = [
        b"", good[:63], good[:-1], good + bytes(32),
        (64).to_bytes(32, "big") + good[32:],  # non-canonical offset
        good[:32] + (2).to_bytes(32, "big") + one,  # length too large
        good[:32] + (U64).to_bytes(32, "big") + one,  # huge length: no allocation
        good[:32] + ((1 << 256) - 1).to_bytes(32, "big") + one,
        good[:32] + (0).to_bytes(32, "big") + one,  # trailing bytes
    ]
    for data in cases:
        with pytest.raises(Rejected) as e:
            decode_reports(data)
        assert e.value.code == ErrorCode.MALFORMED
    assert decode_reports(encode_reports([])) == []
