"""The hand-rolled EIP-712 hashing is pinned against eth_account, and signature recovery
enforces the canonical (low-s, v in {27, 28}) form."""

from __future__ import annotations

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
from clearline.core.txs import Cancel, Deposit, MarkUpdate, Order, Replace, Transfer, Withdraw

CLASSES = {"Order": Order, "Cancel": Cancel, "Replace": Replace, "Withdraw": Withdraw,
           "Transfer": Transfer, "MarkUpdate": MarkUpdate}
ATTR = {"orderType": "order_type", "timeInForce": "tif", "clientId": "client_id",
        "orderId": "order_id", "toSubaccount": "to_subaccount"}
BITS = {"uint8": 8, "uint32": 32, "uint64": 64}

KEY = bytes([1]) * 32
CONTRACT = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
DOMAIN = Domain(31337, CONTRACT)


def uint(bits: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([0, 1, (1 << bits) - 1]), st.integers(0, (1 << bits) - 1))


def tx_strategy(name: str) -> st.SearchStrategy:
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
    """Every field at its maximum (arrays of 3 maxed elements)."""
    kwargs = {"time_ms": (1 << 64) - 1}
    for fname, ftype in TYPES[name]:
        top = (1 << BITS[ftype.rstrip("[]")]) - 1
        kwargs[ATTR.get(fname, fname)] = [top] * 3 if ftype.endswith("[]") else top
    return CLASSES[name](**kwargs)


def eth_account_digest(domain: Domain, tx) -> bytes:
    return bytes(_hash_eip191_message(encode_typed_data(full_message=typed_data(domain, tx))))


def sample_txs():
    return [
        Order(1, 7, 2, 1, 0, 1, 1, 2, 650_000, 10, 0, 42, 1),
        Cancel(1, 7, 0, 0, 99, 0, 2),
        Replace(1, 7, 99, 650_100, 5, 3),
        Withdraw(1, 7, 1_000_000, 4),
        Transfer(1, 7, 3, 500, 5),
        MarkUpdate(1, 1_700_000_000_000, [1, 2, 3], [650_000, 31_000, 12]),
        MarkUpdate(1, 0, [], []),
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
        "MarkUpdate": "MarkUpdate(uint64 timestamp,uint32[] instruments,uint64[] prices)",
    }
    assert set(TYPES) == set(expected)
    for name, type_string in expected.items():
        assert eip712._TYPEHASH[name] == keccak(type_string.encode())


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
    zero = CLASSES[name](**{f: ([] if isinstance(v, list) else 0)
                            for f, v in _fields(max_tx(name)).items()})
    assert digest(DOMAIN, zero) == eth_account_digest(DOMAIN, zero)


def _fields(tx) -> dict:
    return {f: getattr(tx, f) for f in tx.__slots__ if f not in ("signature", "signer")}


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
        attr = ATTR.get(fname, fname)
        setattr(tx, attr, [] if ftype.endswith("[]") else 0)
        assert digest(DOMAIN, tx) != base_digest, fname


def test_type_confusion_gives_distinct_digests():
    # Withdraw(account, amount, nonce) and a Transfer with the same numbers must not collide.
    assert struct_hash(Withdraw(0, 1, 2, 3)) != struct_hash(Transfer(0, 1, 0, 2, 3))


# --- range validation ----------------------------------------------------------------------

@pytest.mark.parametrize("name", list(TYPES))
def test_out_of_range_fields_are_malformed(name):
    for fname, ftype in TYPES[name]:
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
                  "prices": [650_000, 31_000, 12]}
