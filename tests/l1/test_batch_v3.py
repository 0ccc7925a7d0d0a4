"""Batch data format v3 (clearline.l1.batch_v3): variable chunks of 0..k transactions, each
Order / Replace / MarkUpdate / OperatorAction (and the other ALONE_KINDS) alone in its chunk, an
empty chunk one matching step, over batch_v2's per-transaction codec. Exact round trips of
random mixes, the honest cut (matching steps included), strict rejections of every chunk rule,
and golden vectors of a fixed small batch (``tests/golden/vectors/batch_v3.json``; regenerate
with ``CLEARLINE_REGEN_GOLDEN=1`` only together with a change of the format's rules: the last
one, milestone 9 of docs/fraud-proofs.md, put orders and replaces alone and added the steps,
before any deployment held v3 data)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearline.core import eip712
from clearline.core.encoding import encode_tx
from clearline.core.txs import (Cancel, Deposit, MarkUpdate, OperatorAction, Order, Replace, SetAccountFlags, SetMarginMode,
                                Transfer, Withdraw)
from clearline.l1.batch_v2 import BatchFormatError, encode_chunk
from clearline.l1.batch_v3 import (BATCH_FORMAT_V3, chunk_bounds_v3, chunk_sizes, chunk_table_v3, decode_batch_v3,
                                   decode_chunk_v3, decode_chunks_v3, encode_batch_v3, must_be_alone,
                                   payload_must_be_alone, steps_after, tx_sizes_v3)
from clearline.l1.formats import batch_data_parts, decode_batch, encode_batch
from golden_store import load_vectors
from test_batch_v2 import STRATEGIES, any_tx

T0 = 1_760_000_000_000
SIG = bytes(range(1, 65)) + b"\x1b"
operator_tx = st.one_of(STRATEGIES[MarkUpdate], STRATEGIES[OperatorAction])
mixed = st.lists(st.one_of(any_tx, operator_tx), max_size=14)


def _abi(txs) -> list[bytes]:
    return [encode_tx(t) for t in txs]


def _order(nonce: int = 2, t: int = T0) -> Order:
    return Order(t, 1, 2, 0, 0, 1, 1, 0, 1_000_086, 969, T0 + 60_000, 0, nonce, SIG)


def _mark(t: int = T0) -> MarkUpdate:
    return MarkUpdate(t, t, [0, 1], [1_000_000, 300_000], signature=SIG)


def _op(t: int = T0) -> OperatorAction:
    return OperatorAction(t, 1, 0, 0, t, SIG)


# --------------------------------------------------------------------------- round trips
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(txs=mixed, k=st.integers(1, 5))
def test_random_mixes_round_trip_in_honest_chunks(txs, k):
    data = encode_batch_v3(txs, k)
    assert data[0] == BATCH_FORMAT_V3
    k2, chunks = decode_chunks_v3(data)
    assert k2 == k
    flat = [t for c in chunks for t in c]
    assert _abi(flat) == _abi(txs)  # decode(encode(x)) == x
    assert encode_batch_v3(flat, k) == data  # re-encoding gives the same bytes
    assert [len(c) for c in chunks] == chunk_sizes(txs, k)
    for c in chunks:  # every chunk holds 1..k, an operator-signed transaction alone
        assert 1 <= len(c) <= k
        assert len(c) == 1 or not any(must_be_alone(t) for t in c)
    # greedy: two neighbouring chunks of ordinary transactions only when the first is full
    for a, b in zip(chunks, chunks[1:]):
        if not must_be_alone(a[-1]) and not must_be_alone(b[0]):
            assert len(a) == k
    # the table: chunks decode on their own, counts and first indices
    k3, bounds = chunk_bounds_v3(data)
    assert k3 == k and len(bounds) == len(chunks)
    first = 0
    for (start, end, count, first_index), c in zip(bounds, chunks):
        assert (count, first_index) == (len(c), first)
        assert _abi(decode_chunk_v3(data, start, end, k)) == _abi(c)
        first += count
    assert sum(s for s, _ in tx_sizes_v3(txs, k)) == sum(e - s for s, e, _, _ in bounds)
    # the Rollup's commitment splits it the same way; formats reads it
    head, parts = batch_data_parts(data)
    assert parts == [(s, e) for s, e, _, _ in bounds] and head == data[:bounds[0][0] if bounds else len(data)]
    d = decode_batch(data)
    assert (d.version, d.txs_per_chunk, d.chunk_sizes) == (3, k, [len(c) for c in chunks])
    assert _abi(d.txs) == _abi(txs) and encode_batch(txs, k) == data
    assert [payload_must_be_alone(encode_tx(t)) for t in txs] == [must_be_alone(t) for t in txs]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(txs=st.lists(st.one_of(any_tx, operator_tx), min_size=1, max_size=5), data=st.data())
def test_corrupted_data_fails_cleanly_or_means_the_same(txs, data):
    blob = bytearray(encode_batch_v3(txs, 2))
    for _ in range(data.draw(st.integers(1, 3))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    try:
        k, chunks = decode_chunks_v3(bytes(blob))
    except BatchFormatError:
        return
    for c in chunks:
        assert 0 <= len(c) <= k and (len(c) <= 1 or not any(must_be_alone(t) for t in c))


def _cancel(nonce: int = 2, t: int = T0) -> Cancel:
    return Cancel(t, 1, 0, 0, 77, 0, nonce, SIG)


def test_honest_cut():
    o, m, p, c = _order(), _mark(), _op(), _cancel()
    assert chunk_sizes([], 4) == []
    assert chunk_sizes([c] * 9, 4) == [4, 4, 1]
    assert chunk_sizes([c, c, m, c, p, p, c, c, c, c, c], 4) == [2, 1, 1, 1, 1, 4, 1]
    assert chunk_sizes([m, c, c, c, c], 4) == [1, 4]
    assert chunk_sizes([c, m], 1) == [1, 1]
    # orders alone, each followed by its matching steps (empty chunks)
    assert chunk_sizes([c, o, c, c, o, o], 4) == [1, 1, 2, 1, 1]
    steps = [0, 2, 0, 0, 0, 1]
    sizes = chunk_sizes([c, o, c, c, o, o], 4, steps=steps)
    assert sizes == [1, 1, 0, 0, 2, 1, 1, 0] and steps_after(sizes) == steps
    data = encode_batch_v3([c, o, c, c, o, o], 4, steps)
    assert decode_batch(data).chunk_sizes == sizes and len(batch_data_parts(data)[1]) == 8
    k, chunks = decode_chunks_v3(data)
    assert _abi([t for ch in chunks for t in ch]) == _abi([c, o, c, c, o, o]) and [len(ch) for ch in chunks] == sizes
    with pytest.raises(BatchFormatError):
        encode_batch_v3([o], 0)
    with pytest.raises(BatchFormatError):
        encode_batch_v3([o], 1 << 32)
    assert encode_batch_v3([], 16) == bytes((3, 16, 0))
    assert decode_batch_v3(bytes((3, 16, 0))) == (16, [])


# ------------------------------------------------------------------------------ strict
def _frame(*chunks: bytes, k: int = 16, c: int | None = None) -> bytes:
    """v3 data around hand-made chunk bodies (a correct table unless ``c`` says otherwise)."""
    pre = bytes((3, k, len(chunks) if c is None else c))
    pos = len(pre) + 4 * len(chunks)
    table = b""
    for ch in chunks:
        pos += len(ch)
        table += pos.to_bytes(4, "big")
    return pre + table + b"".join(chunks)


def _bad(data: bytes, tx_index=...) -> BatchFormatError:
    with pytest.raises(BatchFormatError) as exc:
        decode_batch_v3(data)
    if tx_index is not ...:
        assert exc.value.tx_index == tx_index
    with pytest.raises(BatchFormatError):
        decode_batch(data)
    return exc.value


def test_strict_decoder_rejects():
    o1, o2, o3 = _cancel(2), _cancel(3), _cancel(4)
    orders = encode_chunk([o1, o2, o3])  # cancels: they share chunks
    w = encode_chunk([Withdraw(T0, 1, 5, 3, SIG)])
    assert _abi(decode_batch_v3(_frame(orders, w, k=3))[1]) == _abi([o1, o2, o3, Withdraw(T0, 1, 5, 3, SIG)])
    # an order or a replace shares no chunk
    decode_batch_v3(_frame(orders, encode_chunk([_order()])))
    assert _bad(_frame(encode_chunk([o1, _order()]))).tx_index == 1
    _bad(_frame(encode_chunk([_order(), o1])), 0)
    _bad(_frame(encode_chunk([Replace(T0, 1, 7, 1_000, 5, 9, SIG), o1])), 0)
    # a chunk with k + 1 transactions
    _bad(_frame(orders, k=2), 2)
    _bad(_frame(w, orders, k=2), 3)
    # an operator transaction sharing a chunk (packed or as a fallback), before or after
    mark, op = encode_chunk([_mark()]), encode_chunk([_op()])
    decode_batch_v3(_frame(orders, mark, op, w))
    assert _bad(_frame(encode_chunk([o1, _mark()]))).tx_index == 1
    _bad(_frame(encode_chunk([_op(), o1])), 0)
    _bad(_frame(encode_chunk([_mark(), _op()])), 0)
    fallback_mark = MarkUpdate(T0, T0, [0, 1], [1_000_000], signature=SIG)  # not one price per instrument
    fb = encode_chunk([fallback_mark])
    assert fb[0] == 0xFF
    decode_batch_v3(_frame(orders, fb))
    _bad(_frame(orders + fb), 3)
    # an empty chunk (an end equal to its start) is a matching step: it decodes, to no transaction
    assert decode_chunks_v3(_frame(orders, b"", b"", w, k=3))[1][1:3] == [[], []]
    assert decode_batch(_frame(b"", w)).chunk_sizes == [0, 1]
    # bad tables and headers
    good = _frame(orders, w)
    _bad(b"")
    _bad(b"\x02" + good[1:])  # another version (v2 reads this differently)
    _bad(good + b"\x00")  # trailing byte after the last chunk
    _bad(good[:-1])  # truncated
    _bad(bytes((3, 0, 0)))  # k = 0
    _bad(bytes((3, 0x80, 0x00, 0)))  # overlong varint (k)
    _bad(bytes((3, 16, 0x80, 0x00)))  # overlong varint (C)
    _bad(bytes((3, 16)))  # no C
    _bad(bytes((3, 16, 0, 0)))  # an empty batch with a trailing byte
    _bad(_frame(orders, w, c=1))  # C says fewer chunks than the table has
    _bad(_frame(orders, w, c=3))  # ... or more
    _bad(bytes((3, 16, 1)) + (6).to_bytes(4, "big"))  # chunk end before its start
    swapped = bytearray(good)
    swapped[3:7], swapped[7:11] = good[7:11], good[3:7]  # ends not increasing
    _bad(bytes(swapped))
    # batch_v2's per-transaction rules still hold inside a chunk
    _bad(_frame(w + b"\x00"), 1)  # a zero head after the withdrawal
    _bad(_frame(bytes((0x0B,)) + w[1:]), 0)  # unknown head
    with pytest.raises(BatchFormatError):
        chunk_table_v3(b"\x02" + good[1:])


# ------------------------------------------------------------------------------- golden
VECTORS = Path(__file__).parent.parent / "golden" / "vectors" / "batch_v3.json"
KEY = bytes([1]) * 32
DOMAIN = eip712.Domain(31337, bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
OWNER = eip712.address_of(KEY)


def golden_batch() -> list:
    """A fixed small batch: orders, a cancel, a deposit, a mark update, a margin-mode and a flags
    change, two operator actions in a row, a withdrawal and a transfer, with k = 3."""
    txs = [
        Deposit(T0, 0, OWNER, 0, 25_000_000_000),
        Order(T0, 0, 0, 0, 0, 1, 1, 0, 1_000_086, 969, T0 + 60_000, 0, 2),
        Order(T0 + 1, 5, 1, 1, 1, 2, 2, 2, 2_000_000, 1, 0, 42, 9),
        Order(T0 + 1, 1, 2, 0, 0, 1, 0, 0, 650_000, 10, 1, 0, 1),
        MarkUpdate(T0 + 2, T0 + 2, [0, 1], [1_000_000, 300_000]),
        Cancel(T0 + 2, 3, 0, 0, 77, 0, 10),
        SetMarginMode(T0 + 2, 3, 1, 11),
        SetAccountFlags(T0 + 2, 3, 1, 12),
        OperatorAction(T0 + 3, 1, 0, 0, T0 + 3),
        OperatorAction(T0 + 3, 3, 7, 1_234, T0),
        Withdraw(T0 + 4, 1, 1_000_000_000, 5),
        Transfer(T0 + 4, 1, 2, 500_000_000, 6),
    ]
    for tx in txs:
        if hasattr(tx, "signature"):
            tx.signature = eip712.sign(DOMAIN, tx, KEY)
    return txs


GOLDEN_STEPS = [0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]  # the first order meets two resting orders, the third one


def build_vectors() -> dict:
    txs = golden_batch()
    data = encode_batch_v3(txs, 3, GOLDEN_STEPS)
    _, bounds = chunk_bounds_v3(data)
    return {
        "txs_per_chunk": "3",
        "transactions": ["0x" + encode_tx(t).hex() for t in txs],
        "data": "0x" + data.hex(),
        "chunks": [{"start": s, "end": e, "count": n, "first_tx": f} for s, e, n, f in bounds],
        "empty_batch": "0x" + encode_batch_v3([], 16).hex(),
    }


@pytest.fixture(scope="module")
def golden() -> dict:
    return load_vectors(VECTORS, build_vectors)


def test_golden_v3_vectors_unchanged(golden):
    assert build_vectors() == golden


def test_golden_v3_batch_decodes(golden):
    data = bytes.fromhex(golden["data"][2:])
    k, txs = decode_batch_v3(data)
    assert k == 3 and ["0x" + encode_tx(t).hex() for t in txs] == golden["transactions"]
    assert encode_batch_v3(txs, 3, steps_after(decode_batch(data).chunk_sizes)) == data
    # the frame: version 3, k = 3, C = 15 chunks (deposit | order | step | step | order | order |
    # step | mark | cancel | margin mode | flags | operator | operator | withdraw | transfer),
    # fifteen uint32 ends, the last = the length
    assert data[:3] == bytes((3, 3, 15))
    assert [c["count"] for c in golden["chunks"]] == [1, 1, 0, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1]
    assert [c["first_tx"] for c in golden["chunks"]] == [0, 1, 2, 2, 2, 3, 4, 4, 5, 6, 7, 8, 9, 10, 11]
    assert int.from_bytes(data[3 + 4 * 14:3 + 4 * 15], "big") == len(data) == golden["chunks"][-1]["end"]
    assert golden["chunks"][0]["start"] == 3 + 4 * 15
    assert bytes.fromhex(golden["empty_batch"][2:]) == bytes((3, 16, 0))
