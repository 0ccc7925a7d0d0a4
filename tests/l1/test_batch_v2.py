"""Batch data format v2 (clearline.l1.batch_v2): exact round trips for every transaction kind
over the full field ranges, the generic fallback, chunk framing and strict decoding."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearline.core.encoding import encode_tx
from clearline.core.txs import (Cancel, Deposit, ForcedWithdrawal, MarkUpdate, OperatorAction, Order, Replace,
                                SetMarginMode, Transfer, Withdraw)
from clearline.l1.batch_v2 import (_PREDICTORS, BatchFormatError, _unpredict, chunk_bounds, decode_batch_v2,
                                   decode_chunk, encode_batch_v2, encode_chunk, packed_kind, tx_size_bound,
                                   tx_sizes)
from clearline.l1.formats import (BATCH_FORMAT_V1, BATCH_FORMAT_V2, BATCH_FORMAT_V3, decode_batch, decode_batch_txs, encode_batch,
                                  encode_batch_txs)
from clearline.oracle.report import PriceReport

HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
T0 = 1_760_000_000_000
OWNER = bytes(range(20))


def uint(bits: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([0, 1, (1 << bits) - 1]), st.integers(0, (1 << bits) - 1))


def int64() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([-(1 << 63), -1, 0, 1, (1 << 63) - 1]), st.integers(-(1 << 63), (1 << 63) - 1))


# canonical signatures (v in {27, 28}, low s: packed) and anything else encode_tx takes (fallback)
canonical_sig = st.builds(lambda r, s, v: r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((v,)),
                          uint(256), st.integers(0, HALF_N), st.sampled_from([27, 28]))
any_sig = st.one_of(canonical_sig, canonical_sig, st.just(b""),
                    st.binary(min_size=65, max_size=65).filter(any))
times = st.one_of(uint(64), st.integers(T0, T0 + 10_000))
small = st.one_of(st.integers(0, 300), uint(64))
reports = st.builds(PriceReport, uint(32), uint(64), uint(64), uint(64), any_sig)
u8 = st.one_of(st.integers(0, 3), uint(8))


@st.composite
def mark_updates(draw) -> MarkUpdate:
    n = draw(st.integers(0, 5))
    if draw(st.booleans()):
        first = draw(st.integers(0, (1 << 32) - n))
        instruments = list(range(first, first + n))
    else:
        instruments = draw(st.lists(uint(32), min_size=n, max_size=n))
    prices = draw(st.one_of(st.lists(uint(64), min_size=n, max_size=n), st.lists(uint(64), max_size=4)))
    risk = draw(st.one_of(st.just([]), st.lists(st.lists(int64(), min_size=16, max_size=16), min_size=n,
                                                 max_size=n)))
    return MarkUpdate(draw(times), draw(times), instruments, prices, risk, draw(st.lists(reports, max_size=3)),
                      signature=draw(any_sig))


STRATEGIES = {
    Deposit: st.builds(Deposit, times, uint(64), st.binary(min_size=20, max_size=20), uint(32), uint(64)),
    ForcedWithdrawal: st.builds(ForcedWithdrawal, times, uint(64), st.binary(min_size=20, max_size=20), uint(32),
                                uint(64)),
    Order: st.builds(Order, times, uint(32), uint(32), u8, u8, u8, u8, u8, small, small,
                     st.one_of(st.just(0), times), st.one_of(st.just(0), uint(64)),
                     st.one_of(small, times), any_sig),
    Cancel: st.builds(Cancel, times, uint(32), u8, uint(32), small, small, st.one_of(small, times), any_sig),
    Replace: st.builds(Replace, times, uint(32), small, small, small, small, any_sig),
    Withdraw: st.builds(Withdraw, times, uint(32), small, st.one_of(small, times), any_sig),
    Transfer: st.builds(Transfer, times, uint(32), uint(32), small, small, any_sig),
    MarkUpdate: mark_updates(),
    OperatorAction: st.builds(OperatorAction, times, u8, uint(32), small, times, any_sig),
    SetMarginMode: st.builds(SetMarginMode, times, uint(32), u8, st.one_of(small, times), any_sig),
}
any_tx = st.one_of(*STRATEGIES.values())


def _round_trip(txs: list, k: int) -> bytes:
    data = encode_batch_v2(txs, k)
    k2, back = decode_batch_v2(data)
    assert k2 == k
    assert [encode_tx(t) for t in back] == [encode_tx(t) for t in txs]
    assert encode_batch_v2(back, k) == data  # canonical: one encoding per transaction list
    return data


@pytest.mark.parametrize("cls", list(STRATEGIES), ids=lambda c: c.__name__)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_kind_round_trips_exactly(cls, data):
    tx = data.draw(STRATEGIES[cls])
    _round_trip([tx], 1)
    assert tx_size_bound(tx) == len(encode_chunk([tx]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(txs=st.lists(any_tx, max_size=12), k=st.integers(1, 5))
def test_mixed_batches_round_trip_with_their_chunks(txs, k):
    data = _round_trip(txs, k)
    _, n, bounds = chunk_bounds(data)
    assert n == len(txs) and len(bounds) == -(-len(txs) // k)
    for c, (start, end, count) in enumerate(bounds):  # each chunk decodes on its own
        alone = decode_chunk(data, start, end, count)
        assert [encode_tx(t) for t in alone] == [encode_tx(t) for t in txs[c * k:c * k + count]]
    assert sum(s for s, _ in tx_sizes(txs, k)) == sum(e - s for s, e, _ in bounds)  # chunks are just the txs


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(txs=st.lists(any_tx, min_size=1, max_size=4), data=st.data())
def test_corrupted_data_fails_cleanly_or_means_the_same(txs, data):
    """A changed byte is a BatchFormatError or decodes to transactions that re-encode to the
    same bytes: never any other exception, never an ambiguous parse."""
    blob = bytearray(encode_batch_v2(txs, 2))
    for _ in range(data.draw(st.integers(1, 3))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    try:
        k, back = decode_batch_v2(bytes(blob))
    except BatchFormatError:
        return
    assert [encode_tx(t) for t in decode_batch_v2(encode_batch_v2(back, k))[1]] == [encode_tx(t) for t in back]


@given(st.lists(int64(), min_size=16, max_size=16))
def test_risk_predictor_unrolled_is_the_table(values):
    residuals = [values[i] - _PREDICTORS[i](values[:i]) for i in range(16)]
    assert _unpredict(residuals) == values


def _order(**kw) -> Order:
    f = dict(time_ms=T0, account=1, instrument=2, side=0, order_type=0, tif=1, flags=1, stp=0, price=1_000_086,
             size=969, expiry=T0 + 60_000, client_id=0, nonce=2, signature=bytes(range(1, 65)) + b"\x1b")
    f.update(kw)
    return Order(**f)


def test_packed_and_fallback_choice():
    assert packed_kind(_order()) == 2
    assert packed_kind(_order(side=2)) is None  # outside the shape byte
    assert packed_kind(_order(signature=b"")) is None
    assert packed_kind(_order(signature=bytes(range(1, 33)) + b"\xff" * 32 + b"\x1b")) is None  # high s
    assert packed_kind(_order(signature=bytes(range(1, 65)) + b"\x01")) is None  # v = 1
    assert packed_kind(MarkUpdate(T0, T0, [1], [])) is None  # prices not one per instrument
    assert packed_kind("not a tx") is None
    chunk = encode_chunk([_order(side=2)])
    assert chunk[0] == 0xFF and chunk[1:3] == bytes((0xA0, 0x04)) and chunk[3:] == encode_tx(_order(side=2))
    with pytest.raises(BatchFormatError):
        encode_batch_v2([_order(account=-1)], 16)  # no canonical encoding at all
    with pytest.raises(BatchFormatError):
        encode_batch_v2([], 0)


def test_signatures_are_eip2098_and_times_are_deltas():
    sig28 = bytes(range(1, 65)) + b"\x1c"
    a, b = _order(signature=sig28), _order(nonce=3)
    chunk = encode_chunk([a, b])
    first = encode_chunk([a])
    assert first[0] == 0x80 | 0x10 | 2  # T (absolute time) | F1 (expiry) | kind 2
    assert first[-64:] == sig28[:32] + bytes((sig28[32] | 0x80,)) + sig28[33:64]  # v = 28: top bit of s
    second = chunk[len(first):]
    assert second[0] == 0x10 | 2  # same time as the previous transaction: no delta
    assert len(second) == len(first) - 6


def _batch(*txs, k=16) -> bytes:
    return encode_batch_v2(list(txs), k)


def _bad(data: bytes, tx_index=...):
    with pytest.raises(BatchFormatError) as exc:
        decode_batch_v2(data)
    if tx_index is not ...:
        assert exc.value.tx_index == tx_index
    return exc.value


def _rechunk(head: bytes, *chunks: bytes, k: int = 16, n: int | None = None) -> bytes:
    """Batch data around hand-made chunk bodies (a correct table)."""
    n = len(chunks) if n is None else n
    pre = bytes((2, k, n))
    pos = len(pre) + 4 * len(chunks)
    table = b""
    for c in chunks:
        pos += len(c)
        table += pos.to_bytes(4, "big")
    return pre + table + b"".join(chunks)


def test_strict_decoder_rejects():
    good = _batch(_order(), Withdraw(T0, 1, 5, 3, bytes(range(1, 65)) + b"\x1b"))
    decode_batch_v2(good)
    _bad(b"")
    _bad(b"\x03" + good[1:])  # unknown version
    _bad(good + b"\x00")  # trailing byte
    _bad(good[:-1])  # truncated
    _bad(bytes((2, 0, 0)))  # k = 0
    _bad(bytes((2, 0x80, 0x00, 0)))  # overlong varint (k)
    _bad(bytes((2, 16, 1)) + (7).to_bytes(4, "big"))  # chunk end before its start
    w = encode_chunk([Withdraw(T0, 1, 5, 3, bytes(range(1, 65)) + b"\x1b")])
    assert decode_batch_v2(_rechunk(b"", w))[1][0].amount == 5
    _bad(_rechunk(b"", w + b"\x00"), 0)  # bytes left in the chunk
    _bad(_rechunk(b"", w, n=2), 1)  # the chunk ends before its second transaction
    _bad(_rechunk(b"", bytes((0x0B,)) + w[1:]), 0)  # unknown head (kind 11)
    _bad(_rechunk(b"", bytes((0x7F,)) + w[1:]), 0)  # kind 15 but not the fallback byte
    _bad(_rechunk(b"", bytes((w[0] | 0x10,)) + w[1:]), 0)  # F1 on a Withdraw
    _bad(_rechunk(b"", bytes((0x85, 0x00)) + w[7:]), 0)  # T with a zero delta
    # the time delta: absolute time in 6 varint bytes; make it overlong (7 bytes, last 0)
    t = w[1:7]
    _bad(_rechunk(b"", bytes((w[0],)) + t[:5] + bytes((t[5] | 0x80, 0x00)) + w[7:]), 0)
    _bad(_rechunk(b"", bytes((w[0],)) + b"\xff" * 10 + b"\x01" + w[7:]), 0)  # varint over 10 bytes
    # account > uint32: Withdraw body starts with u account (1 = 0x01); write 2**32 instead
    _bad(_rechunk(b"", w[:7] + b"\x80\x80\x80\x80\x10" + w[8:]), 0)
    # a fallback for a transaction that has a packed form
    abi = encode_tx(Withdraw(T0, 1, 5, 3, bytes(range(1, 65)) + b"\x1b"))
    _bad(_rechunk(b"", b"\xff" + bytes((0x80, 0x02)) + abi), 0)
    # a fallback whose ABI bytes do not decode
    _bad(_rechunk(b"", b"\xff\x03abc"), 0)
    # F1 (expiry present) with an expiry of zero: delta = -time
    o = _order(expiry=0)
    body = encode_chunk([o])
    zz = (2 * T0 - 1)  # zigzag(-T0)
    vz = bytearray()
    while zz > 0x7F:
        vz.append((zz & 0x7F) | 0x80)
        zz >>= 7
    vz.append(zz)
    pos = 1 + 6 + 1 + 1 + 1 + 3 + 2  # head, time, account, instrument, shape, price, size
    _bad(_rechunk(b"", bytes((body[0] | 0x10,)) + body[1:pos] + bytes(vz) + body[pos:]), 0)


def test_nonce_must_take_its_shortest_form():
    o = _order(nonce=T0 + 5)  # relative to the time: zigzag(5) = 10, one byte
    chunk = encode_chunk([o])
    assert chunk[0] & 0x40  # F3
    plain = bytearray(chunk)
    plain[0] &= ~0x40
    v = T0 + 5
    vb = bytearray()
    while v > 0x7F:
        vb.append((v & 0x7F) | 0x80)
        v >>= 7
    vb.append(v)
    pos = 1 + 6 + 1 + 1 + 1 + 3 + 2 + 3  # ... expiry delta (60,000: 3 bytes)
    assert chunk[pos] == 10
    _bad(_rechunk(b"", bytes(plain[:pos]) + bytes(vb) + bytes(plain[pos + 1:])), 0)


def test_formats_reads_every_version_and_writes_v3():
    txs = [Deposit(T0, 0, OWNER, 0, 5), _order()]
    v3 = encode_batch(txs, 16)
    v2 = encode_batch_v2(txs, 16)
    v1 = encode_batch_txs([encode_tx(t) for t in txs])
    assert v3[0] == BATCH_FORMAT_V3 and v2[0] == BATCH_FORMAT_V2 and v1[0] == BATCH_FORMAT_V1
    for data, version, k, sizes in ((v3, 3, 16, [1, 1]), (v2, 2, 16, [2]), (v1, 1, None, None)):
        d = decode_batch(data)
        assert (d.version, d.txs_per_chunk, d.chunk_sizes) == (version, k, sizes)
        assert [encode_tx(t) for t in d.txs] == decode_batch_txs(data) == [encode_tx(t) for t in txs]
    with pytest.raises(BatchFormatError) as exc:
        decode_batch(encode_batch_txs([b"abc"]))
    assert exc.value.tx_index == 0
    assert len(v2) * 5 < len(v1)


def test_set_account_flags_packs_in_v3_only():
    """Format v2 is frozen: a signed SetAccountFlags takes the fallback there (and a packed kind
    11 is an unknown head); v3 packs it (kind 11, SetMarginMode's layout) and refuses the
    fallback of a signed one, as for every packable kind."""
    from clearline.core.txs import SetAccountFlags
    from clearline.l1.batch_v2 import frame_chunks
    from clearline.l1.batch_v3 import decode_batch_v3

    tx = SetAccountFlags(T0, 7, 1, 9, bytes(range(1, 65)) + b"\x1b")
    assert packed_kind(tx) == 11 and packed_kind(tx, v2=True) is None
    fallback, packed = encode_chunk([tx], v2=True), encode_chunk([tx])
    assert fallback[0] == 0xFF and packed[0] == 0x80 | 11 and len(packed) == 74 < len(fallback) - 180
    assert decode_batch_v2(encode_batch_v2([tx], 1))[1] == [tx]
    assert encode_batch_v2([tx], 1) == frame_chunks(BATCH_FORMAT_V2, 1, 1, [fallback])
    assert decode_batch_v3(frame_chunks(BATCH_FORMAT_V3, 1, 1, [packed]))[1] == [tx]
    with pytest.raises(BatchFormatError, match="unknown head 0x8b"):
        decode_batch_v2(frame_chunks(BATCH_FORMAT_V2, 1, 1, [packed]))
    with pytest.raises(BatchFormatError, match="fallback for a transaction that has a packed form"):
        decode_batch_v3(frame_chunks(BATCH_FORMAT_V3, 1, 1, [fallback]))
