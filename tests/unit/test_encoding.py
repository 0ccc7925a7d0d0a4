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
    UNDERLYING_TAG,
    decode_tx,
    encode_account_leaf,
    encode_market_leaf,
    encode_order_leaf,
    encode_state,
    encode_tx,
    encode_underlying_leaf,
    leaf_hash,
    state_root,
)
from clearline.core.errors import ErrorCode, InvariantBroken, Rejected
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
    TxKind,
    Withdraw,
)
from clearline.oracle.report import PriceReport, encode_report

U8, U32, U64 = "uint8", "uint32", "uint64"
SIG_TYPES = ["bytes32", "bytes32", "uint8"]
REPORTS = "(uint32,uint64,uint64,uint64,bytes32,bytes32,uint8)[]"
N_SCENARIOS = 16
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

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
    MarkUpdate: (["uint64", "uint32[]", "uint64[]", "int64[]", REPORTS],
                 ["timestamp", "instruments", "prices", "risk_arrays", "reports"], True),
    OperatorAction: ([U8, U32, U64, U64], ["action", "target", "arg", "timestamp"], True),
    SetMarginMode: ([U32, U8, U64], ["account", "mode", "nonce"], True),
    SetAccountFlags: ([U32, U8, U64], ["account", "flags", "nonce"], True),
}
BITS = {"uint8": 8, "uint32": 32, "uint64": 64}


def uint(bits: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([0, 1, (1 << bits) - 1]), st.integers(0, (1 << bits) - 1))


signatures = st.one_of(
    st.just(b""),
    st.binary(min_size=65, max_size=65).filter(lambda b: any(b)),
)


def int_(bits: int) -> st.SearchStrategy[int]:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return st.one_of(st.sampled_from([lo, -1, 0, 1, hi]), st.integers(lo, hi))


reports = st.builds(PriceReport, uint(32), uint(64), uint(64), uint(64), signatures)


@st.composite
def mark_updates(draw) -> MarkUpdate:
    instruments = draw(st.lists(uint(32), max_size=4))
    risk = draw(st.one_of(st.just([]), st.lists(
        st.lists(int_(64), min_size=N_SCENARIOS, max_size=N_SCENARIOS),
        min_size=len(instruments), max_size=len(instruments))))
    return MarkUpdate(draw(uint(64)), draw(uint(64)), instruments,
                      draw(st.lists(uint(64), max_size=4)), risk,
                      draw(st.lists(reports, max_size=3)), signature=draw(signatures))


def tx_strategy(cls) -> st.SearchStrategy:
    if cls is MarkUpdate:
        return mark_updates()
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


def _abi_value(tx, attr: str):
    value = getattr(tx, attr)
    if attr == "risk_arrays":
        return [v for array in value for v in array]
    if attr == "reports":
        return [(r.asset, r.price, r.timestamp, r.round, *_rsv(r.signature)) for r in value]
    return value


def _rsv(sig: bytes) -> tuple:
    sig = sig or bytes(65)
    return sig[:32], sig[32:64], sig[64]


def eth_abi_encoding(tx) -> bytes:
    types, attrs, signed = LAYOUTS[type(tx)]
    values = [int(tx.KIND), tx.time_ms] + [_abi_value(tx, a) for a in attrs]
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
        MarkUpdate(10, 9, [1, 2], [650_000, 31_000], [RISK, RISK[::-1]],
                   [REPORT, PriceReport(1, 3_100_000_000, 1_699_999_999_600, 13)],
                   signature=b"\x66" * 64 + b"\x1b"),
        OperatorAction(11, 2, 7, 0, 10, signature=b"\x77" * 64 + b"\x1c"),
        SetMarginMode(12, 7, 1, 6, signature=b"\x88" * 64 + b"\x1b"),
        SetAccountFlags(13, 7, 1, 7, signature=b"\x99" * 64 + b"\x1c"),
    ]


REPORT = PriceReport(0, 65_000_500_000, 1_699_999_999_500, 12, b"\x11" * 64 + b"\x1b")
RISK = [-5_000_000 + 700_000 * i for i in range(N_SCENARIOS)]
RISK[0], RISK[-1] = INT64_MIN, INT64_MAX


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
    static_words = {Deposit: 6, Order: 17, Cancel: 11, Replace: 10, Withdraw: 8, Transfer: 9,
                    OperatorAction: 9, SetMarginMode: 8, SetAccountFlags: 8}
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

def test_mark_update_layout():
    tx = sample_txs()[9]
    decoded = decode_tx(encode_tx(tx))
    assert decoded.risk_arrays == [RISK, RISK[::-1]]
    assert all(type(a) is list for a in decoded.risk_arrays)
    assert all(type(r) is PriceReport for r in decoded.reports)
    words = _mark_words(tx)
    # head (10 words) | instruments (1+2) | prices (1+2) | riskArrays (1+32) | reports (1+2*7)
    assert [int.from_bytes(w, "big") for w in words[3:7]] == [320, 416, 512, 1568]
    assert len(words) == 10 + 3 + 3 + 33 + 15
    assert b"".join(words[50:57]) == encode_report(REPORT)
    assert words[17] == b"\xff" * 24 + INT64_MIN.to_bytes(8, "big", signed=True)
    assert int.from_bytes(words[18], "big", signed=True) == RISK[1] < 0


@pytest.mark.parametrize("cls", list(LAYOUTS), ids=lambda c: c.__name__)
def test_encode_out_of_range_is_malformed(cls):
    types, attrs, _ = LAYOUTS[cls]
    fields = [("time_ms", "uint64")] + [(a, t) for a, t in zip(attrs, types)
                                        if t not in ("int64[]", REPORTS)]
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


def _bad_mark_updates():
    """MarkUpdates whose risk arrays or reports cannot be encoded as declared."""
    def with_(**kw):
        tx = sample_txs()[9]
        for k, v in kw.items():
            setattr(tx, k, v)
        return tx

    bads = []
    for value in (INT64_MAX + 1, INT64_MIN - 1, 1.5, "3", None):
        tx = sample_txs()[9]
        tx.risk_arrays[1][3] = value
        bads.append(tx)
    return bads + [
        with_(risk_arrays=[[0] * 15] * 2),
        with_(risk_arrays=[[0] * 17] * 2),
        with_(risk_arrays=[[0] * N_SCENARIOS]),  # one per instrument, or none
        with_(risk_arrays=[[0] * N_SCENARIOS] * 3),
        with_(risk_arrays=[[0] * 32]),
        with_(risk_arrays=[0] * 32),
        with_(risk_arrays=7),
        with_(risk_arrays=None),
        with_(instruments=[], risk_arrays=[[0] * N_SCENARIOS]),
        with_(reports=7),
        with_(reports=None),
        with_(reports=[None]),
        with_(reports=[(1, 2, 3, 4, b"")]),
        with_(reports=[PriceReport(1 << 32, 0, 0, 0)]),
        with_(reports=[PriceReport(0, -1, 0, 0)]),
        with_(reports=[PriceReport(0, 0, 0, 1.5)]),
        with_(reports=[PriceReport(0, 0, 0, 0, bytes(65))]),
        with_(reports=[PriceReport(0, 0, 0, 0, b"\x01" * 66)]),
        with_(reports=[PriceReport(0, 0, 0, 0, None)]),
    ]


@pytest.mark.parametrize("tx", _bad_mark_updates())
def test_encode_bad_mark_update_is_malformed(tx):
    with pytest.raises(Rejected) as exc:
        encode_tx(tx)
    assert exc.value.code == ErrorCode.MALFORMED


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
    for kind in (0, 12, 13, 255):  # 10 is FORCED_WITHDRAWAL, 11 SET_ACCOUNT_FLAGS
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


MARK_TYPES = ["uint8", "uint64", "uint64", "uint32[]", "uint64[]", "int64[]", REPORTS,
              *SIG_TYPES]


def test_mark_update_rejects_non_canonical_offsets_that_eth_abi_accepts():
    tx = MarkUpdate(1, 2, [5], [6, 7], [RISK], [REPORT])
    words = _mark_words(tx)
    # words: 0-9 head (3-6 offsets) | 10-11 instruments | 12-14 prices | 15-31 riskArrays
    #        | 32-39 reports
    assert [int.from_bytes(w, "big") for w in words[3:7]] == [320, 384, 480, 1024]
    assert len(words) == 40
    # Swap the order of the first two tails and fix the offsets: valid ABI, not canonical.
    ins_tail, prices_tail = words[10:12], words[12:15]
    swapped = words[:3] + [(320 + 96).to_bytes(32, "big"), (320).to_bytes(32, "big")] \
        + words[5:10] + prices_tail + ins_tail + words[15:]
    data = b"".join(swapped)
    assert eth_abi.decode(MARK_TYPES, data)[3:5] == ((5,), (6, 7))
    assert _code(data) == ErrorCode.MALFORMED
    # Swap the risk and report tails likewise.
    swapped = words[:5] + [(480 + 256).to_bytes(32, "big"), (480).to_bytes(32, "big")] \
        + words[7:15] + words[32:] + words[15:32]
    data = b"".join(swapped)
    assert list(eth_abi.decode(MARK_TYPES, data)[5]) == RISK
    assert _code(data) == ErrorCode.MALFORMED
    # Offsets that point elsewhere, or lengths that overrun / do not fit.
    for index, value in ((3, 0), (3, 352), (4, 320), (4, 2**255), (5, 448), (5, 512),
                         (6, 992), (6, 1056), (6, 2**256 - 1),
                         (10, 2), (10, 2**256 - 1), (12, 3), (12, 1), (11, 2**32),
                         (13, 2**64), (15, 15), (15, 17), (15, 0), (15, 2**64),
                         (32, 0), (32, 2), (32, 2**256 - 1), (32, 2**250)):
        bad = list(words)
        bad[index] = value.to_bytes(32, "big")
        assert _code(b"".join(bad)) == ErrorCode.MALFORMED, index


def _mark_bytes(instruments, prices, risk_flat, reports_tuples) -> bytes:
    """A well-formed ABI MarkUpdate with arbitrary (possibly inconsistent) tails."""
    return eth_abi.encode(MARK_TYPES, [7, 1, 2, instruments, prices, risk_flat,
                                       reports_tuples, bytes(32), bytes(32), 0])


def test_mark_update_risk_length_must_fit_the_instruments():
    ok = _mark_bytes([1, 2], [3, 4], list(range(32)), [])
    assert decode_tx(ok).risk_arrays == [list(range(16)), list(range(16, 32))]
    assert _mark_bytes([1, 2], [3, 4], [], []) == encode_tx(MarkUpdate(1, 2, [1, 2], [3, 4]))
    for instruments, n in (([1, 2], 16), ([1, 2], 31), ([1, 2], 33), ([1], 32), ([], 16)):
        assert _code(_mark_bytes(instruments, [3], list(range(n)), [])) == ErrorCode.MALFORMED


@pytest.mark.parametrize("word", [
    (1 << 63).to_bytes(32, "big"),  # int64 overflow: a canonical int256, not an int64
    (1 << 64).to_bytes(32, "big"),
    b"\xff" * 24 + (1).to_bytes(8, "big"),  # sign extension of a positive value
    bytes(24) + b"\xff" * 8,  # a negative value without its sign extension
    b"\x80" + bytes(31),
    b"\xff" * 23 + b"\x7f" + b"\x80" + bytes(7),
])
def test_mark_update_rejects_non_canonical_int64(word):
    data = encode_tx(MarkUpdate(1, 2, [5], [6], [[0] * N_SCENARIOS]))
    for i in (15, 30):  # first and last risk words (word 14 is the length)
        bad = bytearray(data)
        bad[i * 32 : i * 32 + 32] = word
        assert _code(bytes(bad)) == ErrorCode.MALFORMED


def test_mark_update_rejects_dirty_report_padding():
    data = encode_tx(MarkUpdate(1, 2, [], [], [], [REPORT]))
    head = len(data) - 224
    for word, width in enumerate((32, 64, 64, 64, 256, 256, 8)):
        if width == 256:
            continue
        bad = bytearray(data)
        bad[head + 32 * word] = 1
        assert _code(bytes(bad)) == ErrorCode.MALFORMED, word


@settings(max_examples=1000, deadline=None)
@given(data=st.binary(max_size=700))
@example(data=b"")
@example(data=(7).to_bytes(32, "big") + bytes(288))
@example(data=(7).to_bytes(32, "big") + bytes(416))
@example(data=(8).to_bytes(32, "big") + bytes(256))
@example(data=(9).to_bytes(32, "big") + bytes(224))
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

ACCOUNT_TYPES = ["bytes32", "uint32", "address", "uint32", "int256", "uint64", "uint8", "uint8",
                 "(uint32,int64,int256,int256)[]"]

positions_strategy = st.lists(
    st.tuples(uint(32), int_(64), int_(256), int_(256)), max_size=5, unique_by=lambda p: p[0]
).map(lambda ps: sorted(ps, key=lambda p: p[0]))


def test_tags():
    assert ACCOUNT_TAG == keccak(b"clearline.account.v1")
    assert ORDER_TAG == keccak(b"clearline.order.v1")
    assert MARKET_TAG == keccak(b"clearline.market.v1")
    assert STATE_TAG == keccak(b"clearline.state.v1")
    assert UNDERLYING_TAG == keccak(b"clearline.underlying.v1")
    assert len({ACCOUNT_TAG, ORDER_TAG, MARKET_TAG, STATE_TAG, UNDERLYING_TAG}) == 5


@settings(max_examples=200, deadline=None)
@given(id=uint(32), owner=st.binary(min_size=20, max_size=20), sub=uint(32), coll=int_(256),
       nonce=uint(64), mode=uint(8), flags=uint(8), positions=positions_strategy)
def test_account_leaf_matches_eth_abi(id, owner, sub, coll, nonce, mode, flags, positions):
    encoded = encode_account_leaf(id, owner, sub, coll, nonce, positions, margin_mode=mode, flags=flags)
    expected = eth_abi.encode(ACCOUNT_TYPES,
                              [ACCOUNT_TAG, id, owner, sub, coll, nonce, mode, flags, positions])
    assert encoded == expected
    assert leaf_hash(encoded) == keccak(expected)


def test_account_leaf_margin_mode_defaults_and_is_keyword_only():
    args = (1, b"\x01" * 20, 0, -5, 3, [(1, -3, 10, 0)])
    assert encode_account_leaf(*args) == encode_account_leaf(*args, margin_mode=0)
    assert encode_account_leaf(*args) != encode_account_leaf(*args, margin_mode=1)
    with pytest.raises(TypeError):
        encode_account_leaf(*args, 1)


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
        dict(margin_mode=256),
        dict(margin_mode=-1),
        dict(margin_mode=None),
        dict(flags=256),
        dict(flags=-1),
    ]
    for bad in bads:
        with pytest.raises(InvariantBroken):
            encode_account_leaf(**{**good, **bad})


@settings(max_examples=200, deadline=None)
@given(values=st.tuples(uint(64), uint(32), uint(32), uint(8), uint(8), uint(8), uint(8),
                        uint(64), uint(64), uint(64), uint(64), uint(64), uint(64)))
def test_order_leaf_matches_eth_abi(values):
    types = ["bytes32", "uint64", "uint32", "uint32", "uint8", "uint8", "uint8", "uint8",
             "uint64", "uint64", "uint64", "uint64", "uint64", "uint64"]
    encoded = encode_order_leaf(*values)
    assert encoded == eth_abi.encode(types, [ORDER_TAG, *values])


def test_order_leaf_rejects_out_of_range():
    with pytest.raises(InvariantBroken):
        encode_order_leaf(1 << 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    with pytest.raises(InvariantBroken):
        encode_order_leaf(0, 0, 0, 256, 0, 0, 0, 0, 0, 0, 0, 0)
    with pytest.raises(InvariantBroken):
        encode_order_leaf(1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 << 64)  # next


MARKET_FIELDS = [
    ("id", "uint32"), ("symbol", "bytes32"), ("kind", "uint8"), ("underlying", "bytes32"),
    ("tick_size", "uint64"), ("lot_size", "uint64"), ("im_ppm", "uint32"), ("mm_ppm", "uint32"),
    ("maker_fee_ppm", "int32"), ("taker_fee_ppm", "int32"), ("expiry", "uint64"),
    ("strike", "uint64"), ("option_type", "uint8"), ("status", "uint8"),
    ("mark_price", "uint64"), ("mark_time", "uint64"), ("funding_index", "int256"),
    ("open_interest", "uint64"), ("premium_sum", "int64"), ("premium_samples", "uint32"),
    ("last_funding_time", "uint64"), ("last_funding_rate_ppm", "int64"),
    ("settlement_price", "uint64"), ("last_sample_time", "uint64"), ("risk_array", "int64[16]"),
    ("unpaid_lots", "uint64"), ("pay_float", "int64"), ("bid_head", "uint64"), ("ask_head", "uint64"),
]
MARKET_DEFAULTS = dict(premium_sum=0, premium_samples=0, last_funding_time=0,
                       last_funding_rate_ppm=0, settlement_price=0, last_sample_time=0, risk_array=None,
                       unpaid_lots=0, pay_float=0, bid_head=0, ask_head=0)
ascii32 = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=127), max_size=32)


def _field_strategy(t: str):
    if t == "bytes32":
        return ascii32
    if t == "int64[16]":
        return st.lists(int_(64), min_size=16, max_size=16)
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


def test_market_leaf_new_fields_default_to_zero():
    kw = {n: 0 for n, _ in MARKET_FIELDS if n not in MARKET_DEFAULTS}
    kw.update(symbol="BTC-PERP", underlying="BTC")
    old_style = encode_market_leaf(**kw)
    assert old_style == encode_market_leaf(**kw, **{**MARKET_DEFAULTS, "risk_array": [0] * 16})
    assert len(old_style) == 32 * (1 + 18 + 6 + 16 + 2 + 2)
    assert old_style[-25 * 32:] == bytes(25 * 32)


def test_market_leaf_rejects_bad_strings_and_ranges():
    kw = {n: 0 for n, _ in MARKET_FIELDS}
    kw.update(symbol="BTC-PERP", underlying="BTC", maker_fee_ppm=-200, funding_index=-(10**30),
              risk_array=[-1] * 16, premium_sum=-5, last_funding_rate_ppm=-7)
    encode_market_leaf(**kw)
    for bad in (dict(symbol="x" * 33), dict(symbol="BTC€"), dict(underlying=b"BTC"),
                dict(maker_fee_ppm=1 << 31), dict(taker_fee_ppm=-(1 << 31) - 1),
                dict(status=256), dict(premium_sum=1 << 63), dict(premium_sum=-(1 << 63) - 1),
                dict(premium_samples=1 << 32), dict(premium_samples=-1),
                dict(last_funding_time=1 << 64), dict(last_funding_rate_ppm=-(1 << 63) - 1),
                dict(settlement_price=-1), dict(settlement_price=1.0),
                dict(risk_array=[0] * 15), dict(risk_array=[0] * 17), dict(risk_array=[]),
                dict(risk_array=[0] * 15 + [1 << 63]), dict(risk_array=[0] * 15 + [None]),
                dict(risk_array=5), dict(risk_array=b"\x00" * 16), dict(unpaid_lots=-1),
                dict(unpaid_lots=1 << 64), dict(pay_float=1 << 63), dict(pay_float=-(1 << 63) - 1),
                dict(bid_head=-1), dict(ask_head=1 << 64)):
        with pytest.raises(InvariantBroken):
            encode_market_leaf(**{**kw, **bad})
    with pytest.raises(TypeError):
        encode_market_leaf(*kw.values())  # keyword-only


UNDERLYING_FIELDS = [
    ("id", "uint32"), ("symbol", "bytes32"), ("index_price", "uint64"),
    ("index_time", "uint64"), ("last_round_ms", "uint64"), ("pending_price", "uint64"),
    ("pending_count", "uint32"), ("liquidations_paused", "bool"), ("acc_time", "uint64"),
    ("windows", "(uint64,uint256,uint64,uint32)[]"),
]
windows_strategy = st.lists(
    st.tuples(uint(64), uint(256), uint(64), uint(32)), max_size=5, unique_by=lambda w: w[0]
).map(lambda ws: sorted(ws, key=lambda w: w[0]))


@settings(max_examples=200, deadline=None)
@given(kw=st.fixed_dictionaries({
    n: (ascii32 if t == "bytes32" else st.booleans() if t == "bool"
        else windows_strategy if t.endswith("[]") else uint(int(t[4:])))
    for n, t in UNDERLYING_FIELDS}))
def test_underlying_leaf_matches_eth_abi(kw):
    encoded = encode_underlying_leaf(**kw)
    values = [kw[n].encode().ljust(32, b"\x00") if t == "bytes32" else kw[n]
              for n, t in UNDERLYING_FIELDS]
    expected = eth_abi.encode(["bytes32"] + [t for _, t in UNDERLYING_FIELDS],
                              [UNDERLYING_TAG, *values])
    assert encoded == expected
    assert leaf_hash(encoded) == keccak(expected)


def test_underlying_leaf_rejects_bad_state():
    good = dict(id=0, symbol="BTC", index_price=65_000_000_000, index_time=5, last_round_ms=5,
                pending_price=0, pending_count=0, liquidations_paused=False,
                windows=[(10, 1 << 255, 3, 2), (20, 0, 0, 1)])
    encode_underlying_leaf(**good)
    assert encode_underlying_leaf(**{**good, "liquidations_paused": 1}) == \
        encode_underlying_leaf(**{**good, "liquidations_paused": True})
    for bad in (dict(windows=[(20, 0, 0, 1), (10, 0, 0, 1)]),  # unsorted
                dict(windows=[(10, 0, 0, 1), (10, 1, 0, 1)]),  # duplicate expiry
                dict(windows=[(1 << 64, 0, 0, 1)]), dict(windows=[(-1, 0, 0, 1)]),
                dict(windows=[(1, 1 << 256, 0, 1)]), dict(windows=[(1, -1, 0, 1)]),
                dict(windows=[(1, 0, 1 << 64, 1)]), dict(windows=[(1, 0, 0)]),
                dict(windows=[(1, 0, 0, 1 << 32)]), dict(windows=[(1, 0, 0, -1)]),
                dict(windows=[(1, 0, 0, 0, 0)]), dict(windows=[None]), dict(windows=[(1.0, 0, 0, 1)]),
                dict(symbol="x" * 33), dict(symbol=b"BTC"), dict(id=1 << 32),
                dict(index_price=-1), dict(pending_count=1 << 32),
                dict(liquidations_paused=2), dict(liquidations_paused=None),
                dict(liquidations_paused="yes")):
        with pytest.raises(InvariantBroken):
            encode_underlying_leaf(**{**good, **bad})
    with pytest.raises(TypeError):
        encode_underlying_leaf(*good.values())  # keyword-only


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
