"""The hand-rolled ABI layouts are pinned against eth_abi; decoding accepts only canonical
bytes and fails only with ``Rejected``."""

from __future__ import annotations

import eth_abi
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from clearline.core.encoding import (
    ACCOUNT_TAG,
    MARKET_TAG,
    ORDER_TAG,
    STATE_TAG,
    decode_tx,
    encode_account_leaf,
    encode_market_leaf,
    encode_order_leaf,
    encode_state,
    encode_tx,
    leaf_hash,
    state_root,
)
from clearline.core.errors import ErrorCode, InvariantBroken, Rejected
from clearline.core.hashing import keccak
from clearline.core.txs import (
    Cancel,
    Deposit,
    MarkUpdate,
    Order,
    Replace,
    Transfer,
    TxKind,
    Withdraw,
)

U8, U32, U64 = "uint8", "uint32", "uint64"
SIG_TYPES = ["bytes32", "bytes32", "uint8"]

# class -> (ABI types after (kind, timeMs), dataclass attributes in the same order, signed?)
LAYOUTS = {
    Deposit: (["uint64", "address", "uint32", "uint64"],
              ["queue_index", "owner", "subaccount", "amount"], False),
    Order: ([U32, U32, U8, U8, U8, U8, U8, U64, U64, U64, U64, U64],
            ["account", "instrument", "side", "order_type", "tif", "flags", "stp", "price",
             "size", "expiry", "client_id", "nonce"], True),
    Cancel: ([U32, U8, U32, U64, U64, U64],
             ["account", "scope", "instrument", "order_id", "client_id", "nonce"], True),
    Replace: ([U32, U64, U64, U64, U64], ["account", "order_id", "price", "size", "nonce"], True),
    Withdraw: ([U32, U64, U64], ["account", "amount", "nonce"], True),
    Transfer: ([U32, U32, U64, U64], ["account", "to_subaccount", "amount", "nonce"], True),
    MarkUpdate: (["uint64", "uint32[]", "uint64[]"], ["timestamp", "instruments", "prices"], True),
}
BITS = {"uint8": 8, "uint32": 32, "uint64": 64}


def uint(bits: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([0, 1, (1 << bits) - 1]), st.integers(0, (1 << bits) - 1))


signatures = st.one_of(
    st.just(b""),
    st.binary(min_size=65, max_size=65).filter(lambda b: any(b)),
)


def tx_strategy(cls) -> st.SearchStrategy:
    types, attrs, signed = LAYOUTS[cls]
    kwargs = {"time_ms": uint(64)}
    for t, a in zip(types, attrs):
        if t == "address":
            kwargs[a] = st.binary(min_size=20, max_size=20)
        elif t.endswith("[]"):
            kwargs[a] = st.lists(uint(BITS[t[:-2]]), max_size=6)
        else:
            kwargs[a] = uint(BITS[t])
    if signed:
        kwargs["signature"] = signatures
    return st.builds(cls, **kwargs)


any_tx = st.one_of(*(tx_strategy(cls) for cls in LAYOUTS))


def eth_abi_encoding(tx) -> bytes:
    types, attrs, signed = LAYOUTS[type(tx)]
    values = [int(tx.KIND), tx.time_ms] + [getattr(tx, a) for a in attrs]
    if signed:
        sig = tx.signature or bytes(65)
        values += [sig[:32], sig[32:64], sig[64]]
        types = types + SIG_TYPES
    return eth_abi.encode(["uint8", "uint64"] + types, values)


def sample_txs():
    return [
        Deposit(1, 0, b"\xaa" * 20, 0, 5_000_000),
        Order(2, 7, 2, 1, 0, 1, 1, 2, 650_000, 10, 0, 42, 1, signature=b"\x11" * 64 + b"\x1b"),
        Cancel(3, 7, 0, 0, 99, 0, 2, signature=b"\x22" * 64 + b"\x1c"),
        Replace(4, 7, 99, 650_100, 5, 3, signature=b"\x33" * 64 + b"\x1b"),
        Withdraw(5, 7, 1_000_000, 4, signature=b"\x44" * 64 + b"\x1b"),
        Transfer(6, 7, 3, 500, 5),
        MarkUpdate(7, 6, [1, 2, 3], [650_000, 31_000, 12], signature=b"\x55" * 64 + b"\x1c"),
        MarkUpdate(8, 7, [], []),
        MarkUpdate(9, 8, [1, 2], [3]),  # unequal lengths are the core's business, not encoding's
    ]


# --- transactions: roundtrip and pinning -----------------------------------------------------

@pytest.mark.parametrize("cls", list(LAYOUTS), ids=lambda c: c.__name__)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_roundtrip_and_matches_eth_abi(cls, data):
    tx = data.draw(tx_strategy(cls))
    encoded = encode_tx(tx)
    assert encoded == eth_abi_encoding(tx)
    decoded = decode_tx(encoded)
    assert type(decoded) is cls
    assert decoded == tx
    assert getattr(decoded, "signer", None) is None
    assert encode_tx(decoded) == encoded


@pytest.mark.parametrize("tx", sample_txs(), ids=lambda t: type(t).__name__)
def test_samples_roundtrip_and_sizes(tx):
    encoded = encode_tx(tx)
    assert encoded == eth_abi_encoding(tx)
    assert decode_tx(encoded) == tx
    assert encoded[:32] == int(tx.KIND).to_bytes(32, "big")
    static_words = {Deposit: 6, Order: 17, Cancel: 11, Replace: 10, Withdraw: 8, Transfer: 9}
    if type(tx) in static_words:
        assert len(encoded) == 32 * static_words[type(tx)]


def test_signer_is_not_encoded():
    a = sample_txs()[1]
    b = sample_txs()[1]
    b.signer = b"\x99" * 20
    assert encode_tx(a) == encode_tx(b)
    assert decode_tx(encode_tx(b)).signer is None


def test_empty_signature_is_zero_rsv_and_back():
    tx = Withdraw(1, 2, 3, 4)
    encoded = encode_tx(tx)
    assert encoded[-96:] == bytes(96)
    assert decode_tx(encoded).signature == b""
    # A half-zero signature is a (bad) signature, kept as is for the verifier to reject.
    tx.signature = bytes(64) + b"\x1b"
    assert decode_tx(encode_tx(tx)).signature == bytes(64) + b"\x1b"


def test_decoded_signer_matches_after_eip712_roundtrip():
    from clearline.core.eip712 import Domain, address_of, recover_signer, sign

    domain = Domain(31337, b"\x5f" * 20)
    key = bytes([1]) * 32
    tx = Order(2, 7, 2, 1, 0, 1, 1, 2, 650_000, 10, 0, 42, 1)
    tx.signature = sign(domain, tx, key)
    assert recover_signer(domain, decode_tx(encode_tx(tx))) == address_of(key)


# --- encode_tx rejections ----------------------------------------------------------------------

@pytest.mark.parametrize("cls", list(LAYOUTS), ids=lambda c: c.__name__)
def test_encode_out_of_range_is_malformed(cls):
    types, attrs, _ = LAYOUTS[cls]
    fields = [("time_ms", "uint64")] + list(zip(attrs, types))
    for attr, t in fields:
        if t == "address":
            bads = [b"\x00" * 19, b"\x00" * 21, "0x" + "00" * 20, None]
        else:
            top = 1 << BITS[t.rstrip("[]")]
            bads = [top, -1, 1.5, "3", None]
            if t.endswith("[]"):
                bads = [[b] for b in bads] + [7]
        for bad in bads:
            tx = next(t for t in sample_txs() if type(t) is cls)
            setattr(tx, attr, bad)
            with pytest.raises(Rejected) as exc:
                encode_tx(tx)
            assert exc.value.code == ErrorCode.MALFORMED, (attr, bad)
    encode_tx(next(t for t in sample_txs() if type(t) is cls))  # the untouched sample encodes


@pytest.mark.parametrize("sig", [b"\x01" * 64, b"\x01" * 66, bytes(65), "00" * 65, 5, None])
def test_encode_bad_signature_is_malformed(sig):
    tx = sample_txs()[1]
    tx.signature = sig
    with pytest.raises(Rejected) as exc:
        encode_tx(tx)
    assert exc.value.code == ErrorCode.MALFORMED


def test_encode_non_transaction_is_type_error():
    with pytest.raises(TypeError):
        encode_tx(object())


# --- decode_tx rejections ----------------------------------------------------------------------

def _code(data) -> ErrorCode:
    with pytest.raises(Rejected) as exc:
        decode_tx(data)
    return exc.value.code


@pytest.mark.parametrize("tx", sample_txs(), ids=lambda t: type(t).__name__)
def test_decode_rejects_truncated_and_padded(tx):
    encoded = encode_tx(tx)
    for n in range(len(encoded)):
        assert _code(encoded[:n]) == ErrorCode.MALFORMED, n
    for extra in (b"\x00", bytes(32), b"\x01" * 32):
        assert _code(encoded + extra) == ErrorCode.MALFORMED


@pytest.mark.parametrize("tx", sample_txs(), ids=lambda t: type(t).__name__)
def test_decode_rejects_dirty_padding(tx):
    """Every byte that eth_abi's canonical encoding leaves zero in a uint/address word must be
    zero: flipping any of them is rejected (eth_abi itself may or may not be this strict)."""
    encoded = encode_tx(tx)
    accepted = 0
    for i in range(len(encoded)):
        mutated = bytearray(encoded)
        mutated[i] ^= 0x80
        mutated = bytes(mutated)
        try:
            decoded = decode_tx(mutated)
        except Rejected as exc:
            assert exc.code in (ErrorCode.MALFORMED, ErrorCode.UNKNOWN_TX_KIND)
        else:
            accepted += 1
            # Only value bytes may change, and then the result is canonical again.
            assert encode_tx(decoded) == mutated
            assert eth_abi_encoding(decoded) == mutated
    assert accepted > 0


def test_unknown_kind():
    encoded = bytearray(encode_tx(sample_txs()[4]))
    for kind in (0, 8, 9, 255):
        encoded[31] = kind
        assert _code(bytes(encoded)) == ErrorCode.UNKNOWN_TX_KIND
    encoded[31] = TxKind.WITHDRAW
    encoded[0] = 1  # kind word not canonical
    assert _code(bytes(encoded)) == ErrorCode.MALFORMED


def test_decode_kind_and_length_must_agree():
    # A Withdraw body with the Transfer kind: wrong length for Transfer.
    encoded = bytearray(encode_tx(sample_txs()[4]))
    encoded[31] = TxKind.TRANSFER
    assert _code(bytes(encoded)) == ErrorCode.MALFORMED


def test_decode_rejects_non_bytes():
    for data in ("00" * 32, None, 5, [0] * 32):
        assert _code(data) == ErrorCode.MALFORMED
    assert decode_tx(bytearray(encode_tx(sample_txs()[0]))) == sample_txs()[0]


def _mark_words(tx: MarkUpdate) -> list[bytes]:
    data = encode_tx(tx)
    return [data[i : i + 32] for i in range(0, len(data), 32)]


def test_mark_update_rejects_non_canonical_offsets_that_eth_abi_accepts():
    tx = MarkUpdate(1, 2, [5], [6, 7])
    words = _mark_words(tx)
    # Swap the order of the two tails and fix the offsets: valid ABI, not canonical.
    ins_tail = words[8:10]
    prices_tail = words[10:13]
    swapped = words[:3] + [(256 + 96).to_bytes(32, "big"), (256).to_bytes(32, "big")] \
        + words[5:8] + prices_tail + ins_tail
    data = b"".join(swapped)
    assert eth_abi.decode(["uint8", "uint64", "uint64", "uint32[]", "uint64[]", *SIG_TYPES],
                          data)[3:5] == ((5,), (6, 7))
    assert _code(data) == ErrorCode.MALFORMED
    # Offsets that point elsewhere, or lengths that overrun.
    for index, value in ((3, 0), (3, 288), (4, 256), (4, 2**255), (8, 2), (8, 2**256 - 1),
                         (10, 3), (10, 1), (9, 2**32), (11, 2**64)):
        bad = list(words)
        bad[index] = value.to_bytes(32, "big")
        assert _code(b"".join(bad)) == ErrorCode.MALFORMED, index


@settings(max_examples=1000, deadline=None)
@given(data=st.binary(max_size=700))
@example(data=b"")
@example(data=(7).to_bytes(32, "big") + bytes(288))
def test_decode_garbage_only_raises_rejected(data):
    try:
        tx = decode_tx(data)
    except Rejected as exc:
        assert exc.code in (ErrorCode.MALFORMED, ErrorCode.UNKNOWN_TX_KIND)
    else:
        assert encode_tx(tx) == data


@settings(max_examples=500, deadline=None)
@given(tx=any_tx, data=st.data())
def test_decode_mutated_only_raises_rejected_or_is_canonical(tx, data):
    encoded = bytearray(encode_tx(tx))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(encoded) - 1))
        encoded[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.sampled_from([None, 0, 1, 31, 32]))
    mutated = bytes(encoded) if cut is None else bytes(encoded)[: len(encoded) - cut]
    try:
        decoded = decode_tx(mutated)
    except Rejected as exc:
        assert exc.code in (ErrorCode.MALFORMED, ErrorCode.UNKNOWN_TX_KIND)
    else:
        assert encode_tx(decoded) == mutated


# --- leaves ------------------------------------------------------------------------------------

def int_(bits: int) -> st.SearchStrategy[int]:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return st.one_of(st.sampled_from([lo, -1, 0, 1, hi]), st.integers(lo, hi))


ACCOUNT_TYPES = ["bytes32", "uint32", "address", "uint32", "int256", "uint64",
                 "(uint32,int64,int256,int256)[]"]

positions_strategy = st.lists(
    st.tuples(uint(32), int_(64), int_(256), int_(256)), max_size=5, unique_by=lambda p: p[0]
).map(lambda ps: sorted(ps, key=lambda p: p[0]))


def test_tags():
    assert ACCOUNT_TAG == keccak(b"clearline.account.v1")
    assert ORDER_TAG == keccak(b"clearline.order.v1")
    assert MARKET_TAG == keccak(b"clearline.market.v1")
    assert STATE_TAG == keccak(b"clearline.state.v1")
    assert len({ACCOUNT_TAG, ORDER_TAG, MARKET_TAG, STATE_TAG}) == 4


@settings(max_examples=200, deadline=None)
@given(id=uint(32), owner=st.binary(min_size=20, max_size=20), sub=uint(32), coll=int_(256),
       nonce=uint(64), positions=positions_strategy)
def test_account_leaf_matches_eth_abi(id, owner, sub, coll, nonce, positions):
    encoded = encode_account_leaf(id, owner, sub, coll, nonce, positions)
    expected = eth_abi.encode(ACCOUNT_TYPES, [ACCOUNT_TAG, id, owner, sub, coll, nonce, positions])
    assert encoded == expected
    assert leaf_hash(encoded) == keccak(expected)


def test_account_leaf_rejects_bad_state():
    good = dict(id=1, owner=b"\x01" * 20, subaccount=0, collateral=-5, nonce=0,
                positions=[(1, -3, 10, 0), (4, 2, -10, 7)])
    encode_account_leaf(**good)
    bads = [
        dict(positions=[(4, 2, -10, 7), (1, -3, 10, 0)]),  # unsorted
        dict(positions=[(1, 2, 0, 0), (1, 3, 0, 0)]),  # duplicate instrument
        dict(positions=[(1, 1 << 63, 0, 0)]),  # int64 overflow
        dict(positions=[(1, 0, 1 << 255, 0)]),
        dict(positions=[(1 << 32, 0, 0, 0)]),
        dict(collateral=-(1 << 255) - 1),
        dict(collateral=1.0),
        dict(nonce=-1),
        dict(id=1 << 32),
        dict(owner=b"\x01" * 19),
    ]
    for bad in bads:
        with pytest.raises(InvariantBroken):
            encode_account_leaf(**{**good, **bad})


@settings(max_examples=200, deadline=None)
@given(values=st.tuples(uint(64), uint(32), uint(32), uint(8), uint(8), uint(8), uint(8),
                        uint(64), uint(64), uint(64), uint(64), uint(64)))
def test_order_leaf_matches_eth_abi(values):
    types = ["bytes32", "uint64", "uint32", "uint32", "uint8", "uint8", "uint8", "uint8",
             "uint64", "uint64", "uint64", "uint64", "uint64"]
    encoded = encode_order_leaf(*values)
    assert encoded == eth_abi.encode(types, [ORDER_TAG, *values])


def test_order_leaf_rejects_out_of_range():
    with pytest.raises(InvariantBroken):
        encode_order_leaf(1 << 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    with pytest.raises(InvariantBroken):
        encode_order_leaf(0, 0, 0, 256, 0, 0, 0, 0, 0, 0, 0, 0)


MARKET_FIELDS = [
    ("id", "uint32"), ("symbol", "bytes32"), ("kind", "uint8"), ("underlying", "bytes32"),
    ("tick_size", "uint64"), ("lot_size", "uint64"), ("im_ppm", "uint32"), ("mm_ppm", "uint32"),
    ("maker_fee_ppm", "int32"), ("taker_fee_ppm", "int32"), ("expiry", "uint64"),
    ("strike", "uint64"), ("option_type", "uint8"), ("status", "uint8"),
    ("mark_price", "uint64"), ("mark_time", "uint64"), ("funding_index", "int256"),
    ("open_interest", "uint64"),
]
ascii32 = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=127), max_size=32)


def _field_strategy(t: str):
    if t == "bytes32":
        return ascii32
    if t.startswith("int"):
        return int_(int(t[3:]))
    return uint(int(t[4:]))


@settings(max_examples=200, deadline=None)
@given(kw=st.fixed_dictionaries({n: _field_strategy(t) for n, t in MARKET_FIELDS}))
def test_market_leaf_matches_eth_abi(kw):
    encoded = encode_market_leaf(**kw)
    values = [kw[n].encode().ljust(32, b"\x00") if t == "bytes32" else kw[n]
              for n, t in MARKET_FIELDS]
    assert encoded == eth_abi.encode(["bytes32"] + [t for _, t in MARKET_FIELDS],
                                     [MARKET_TAG, *values])


def test_market_leaf_rejects_bad_strings_and_ranges():
    kw = {n: 0 for n, _ in MARKET_FIELDS}
    kw.update(symbol="BTC-PERP", underlying="BTC", maker_fee_ppm=-200, funding_index=-(10**30))
    encode_market_leaf(**kw)
    for bad in (dict(symbol="x" * 33), dict(symbol="BTC€"), dict(underlying=b"BTC"),
                dict(maker_fee_ppm=1 << 31), dict(taker_fee_ppm=-(1 << 31) - 1),
                dict(status=256)):
        with pytest.raises(InvariantBroken):
            encode_market_leaf(**{**kw, **bad})
    with pytest.raises(TypeError):
        encode_market_leaf(*kw.values())  # keyword-only


STATE_FIELDS = [
    ("accounts_root", "bytes32"), ("orders_root", "bytes32"), ("markets_root", "bytes32"),
    ("l1_queue_pos", "uint64"), ("fee_pool", "uint256"), ("insurance_fund", "uint256"),
    ("next_order_id", "uint64"), ("next_account_id", "uint32"), ("time_ms", "uint64"),
    ("total_deposits", "uint256"), ("total_withdrawals", "uint256"),
]


@settings(max_examples=200, deadline=None)
@given(kw=st.fixed_dictionaries({
    n: st.binary(min_size=32, max_size=32) if t == "bytes32" else uint(int(t[4:]))
    for n, t in STATE_FIELDS}))
def test_state_root_matches_eth_abi(kw):
    expected = eth_abi.encode(["bytes32"] + [t for _, t in STATE_FIELDS],
                              [STATE_TAG] + [kw[n] for n, _ in STATE_FIELDS])
    assert encode_state(**kw) == expected
    assert state_root(**kw) == keccak(expected)


def test_state_root_rejects_bad_state():
    kw = {n: (bytes(32) if t == "bytes32" else 0) for n, t in STATE_FIELDS}
    state_root(**kw)
    for bad in (dict(accounts_root=bytes(31)), dict(fee_pool=-1), dict(next_account_id=1 << 32),
                dict(total_deposits=1 << 256)):
        with pytest.raises(InvariantBroken):
            state_root(**{**kw, **bad})
