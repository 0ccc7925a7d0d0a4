"""Batch data format v2: a compact, byte-exact binary encoding of core transactions.

The per-transaction encoding below (heads, bodies, fallback) is also format v3's
(``clearline.l1.batch_v3``, what the batcher writes now: the same transactions in variable
chunks, each operator-signed one alone in its chunk); v2's fixed chunks are still read.

Why: format v1 posts each transaction's canonical ABI encoding (~970 bytes a transaction,
mostly zero padding), and calldata is what a rollup pays for. v2 writes the same
transactions in ~9x fewer bytes at the demo's mix, keeps every signature (fraud proofs need them) and stays
parseable by a contract without decompression (no zlib: one L1 call must be able to find and
read one transaction).

Layout (all integers big-endian; ``u`` = unsigned LEB128 varint, minimal length, at most
10 bytes; ``z`` = zigzag varint of a signed value: ``u`` of ``2v`` if ``v >= 0``, else of
``-2v - 1``)::

    data   = 0x02 || u k || u n || end[0] .. end[C-1] || chunk[0] .. chunk[C-1]
    end[c] = uint32: offset in ``data`` where chunk c ends (chunk 0 starts right after
             the table, chunk c > 0 at end[c-1]; end[C-1] = len(data))
    C      = ceil(n / k): chunk c holds transactions c*k .. min((c+1)*k, n) - 1

``k`` is the batch's ``txsPerRoot``, so chunk c is exactly the transactions behind state
root c: a fraud proof reads ``end[c-1]``/``end[c]`` (fixed offsets) and parses that chunk
alone. Inside a chunk, transactions follow each other; a transaction is ``head [time] body``:

- ``head``: bits 0-3 the kind (``TxKind`` 1..11), bits 4-6 three kind-specific flags (F1,
  F2, F3; 0 where unused), bit 7 (T): a time delta follows. Without T the transaction's
  ``time_ms`` is the previous one's *in the same chunk* (0 before the chunk's first), with T
  it is that plus ``z delta`` (delta != 0). So a chunk decodes on its own.
- ``0xFF`` is the generic fallback: ``0xFF || u len || encode_tx bytes`` (canonical ABI,
  time included). It carries any transaction without a packed codec below (a kind added
  to the core later) or whose fields fall outside the packed ranges (e.g. a ``side`` of 7,
  an empty or high-s signature). Every other head with kind 0, 12..15 is invalid.

``sig`` is a signature in the EIP-2098 compact form, 64 bytes: ``r || (v - 27) << 255 | s``
(lossless for the core's canonical signatures: ``v`` in {27, 28} and low ``s``, whose top
bit is therefore free). Packed bodies (``nonce`` = ``u nonce`` if F3 = 0, ``z (nonce -
time_ms)`` if F3 = 1, whichever is shorter, plain on a tie)::

    1 Deposit           u queueIndex, owner (20 bytes), u subaccount, u amount
    10 ForcedWithdrawal u queueIndex, owner (20 bytes), u account, u amount
    2 Order             u account, u instrument, shape, u price, u size,
                        [z (expiry - time_ms) if F1], [u clientId if F2], nonce, sig
                        shape = side | orderType << 1 | tif << 2 | flags << 4 | stp << 6;
                        F1 iff expiry != 0, F2 iff clientId != 0
    3 Cancel            u account, u instrument, u orderId, u clientId, nonce, sig;
                        scope = F1 | F2 << 1
    4 Replace           u account, u orderId, u price, u size, nonce, sig
    5 Withdraw          u account, u amount, nonce, sig
    6 Transfer          u account, u toSubaccount, u amount, nonce, sig
    7 MarkUpdate        z (timestamp - time_ms), u n, instruments, n * u price,
                        [n risk arrays if F2], u reports, reports, sig
                        instruments: if F1 a run ``u first`` (first, first+1, ...; F1 iff
                        n > 0 and they are consecutive), else n * z (id - previous id)
                        report = u asset, u price, z (timestamp - mark timestamp), u round, sig
                        risk array j = mode (1 byte), 16 * z (D[i] - P[i]) with
                        D = R - ref(mode), P the predictor below
    8 OperatorAction    action (1 byte), u target, u arg, z (timestamp - time_ms), sig
    9 SetMarginMode     u account, mode (1 byte), nonce, sig
    11 SetAccountFlags  u account, flags (1 byte), nonce, sig (format v3 only: in v2 it
                        has no packed form and always takes the fallback)

A MarkUpdate's prices must be one per instrument to be packed (else fallback). Risk arrays
(usd6 per lot, the bulk of a MarkUpdate) are written as residuals: ``ref`` is zeros (mode
0), array j-1 (1), array j-2 (2) or ``R[j-1] + R[j-2] - R[j-3]`` (3: a put from its call and
the previous call-put pair, by put-call parity); the encoder takes the shortest (lowest
mode on a tie). The predictor follows the scenario grid (``clearline.risk.scenarios``:
vol up/down pairs for moves 0, +1/3, -1/3, +2/3, -2/3, +3/3, -3/3 of the range, then the
extremes at 35% of twice the range): linear extrapolation along the moves, the inner move's
vega for each vol-down entry, ``floor(7 * R / 10)`` for the extremes (``_PREDICTORS``).
Exact for any int64 values: the predictor only changes what is written.

Strict decoding (``BatchFormatError``): wrong version, overlong or over-10-byte varint, any
value out of its field's range, an unknown head, a flag that must be 0, a T delta of 0, a
redundant optional field (e.g. F1 with a zero expiry), a nonce form that is not the
shortest, a risk-array mode that refers to missing arrays, a fallback for a transaction that
has a packed form, an ABI fallback that does not decode, chunks that do not end where their
transactions end, and any trailing byte. Every accepted batch decodes to one list of
transactions, each re-encoding (``encode_tx``) to the canonical ABI bytes the journal holds,
and ``encode_batch_v2`` of it gives the same bytes except possibly for a risk array written
in a longer mode than the encoder's choice (accepted: checking the choice would cost the
watchtower more than the bytes it saves).

The set of packed kinds and their layouts are version 2's, and version 3's (which changes the
chunking) plus SetAccountFlags (kind 11): packing another kind is a new version. The codec is
shared; ``v2=True`` (``encode_batch_v2``, a v2 batch's ``decode_chunk`` with a ``count``)
keeps v2 exactly as it was.
Pure and deterministic (no I/O, clock or randomness).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from clearline.core.encoding import decode_tx, encode_tx
from clearline.core.errors import Rejected
from clearline.core.txs import (Cancel, Deposit, ForcedWithdrawal, MarkUpdate, OperatorAction, Order, Replace,
                                SetAccountFlags, SetMarginMode, Transfer, Withdraw)

__all__ = ["BATCH_FORMAT_V2", "FALLBACK", "BatchFormatError", "chunk_bounds", "decode_batch_v2", "decode_chunk",
           "encode_batch_v2", "encode_chunk", "packed_kind",
           "tx_size_bound", "tx_sizes"]

BATCH_FORMAT_V2 = 0x02
FALLBACK = 0xFF
N_SCENARIOS = 16

_U32, _U64 = (1 << 32) - 1, (1 << 64) - 1
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0  # secp256k1 n / 2
_T, _F1, _F2, _F3 = 0x80, 0x10, 0x20, 0x40
_TOP = 1 << 255
_END = struct.Struct(">I")


class BatchFormatError(ValueError):
    """Batch data that does not decode (for a watchtower: a provably bad batch).
    ``tx_index`` is the index in the batch of the transaction at fault, when there is one."""

    def __init__(self, message: str, tx_index: int | None = None):
        super().__init__(message if tx_index is None else f"transaction {tx_index}: {message}")
        self.tx_index = tx_index


class _Bad(Exception):
    """Internal: a packed field out of range while decoding (becomes BatchFormatError)."""


class _Unpackable(Exception):
    """Internal: the transaction has no packed form (the encoder writes the fallback)."""


# ------------------------------------------------------------------------------- varints
def _u(out: bytearray, v: int) -> None:
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _ulen(v: int) -> int:
    return max(1, -(-v.bit_length() // 7))


def _zz(v: int) -> int:
    return v << 1 if v >= 0 else ((-v) << 1) - 1


def _unzz(z: int) -> int:
    return z >> 1 if not z & 1 else -((z + 1) >> 1)


def _read_u(data: bytes, pos: int) -> tuple[int, int]:
    b = data[pos]
    if b < 0x80:
        return b, pos + 1
    v, shift = b & 0x7F, 7
    while True:
        pos += 1
        b = data[pos]
        v |= (b & 0x7F) << shift
        if b < 0x80:
            if b == 0:
                raise _Bad("overlong varint")
            return v, pos + 1
        shift += 7
        if shift >= 70:
            raise _Bad("varint longer than 10 bytes")


def _read_bounded(data: bytes, pos: int, limit: int) -> tuple[int, int]:
    v, pos = _read_u(data, pos)
    if v > limit:
        raise _Bad(f"value {v} out of range")
    return v, pos


# ---------------------------------------------------------------------------- signatures
def _sig(out: bytearray, sig: bytes) -> None:
    """EIP-2098 compact form; anything else is not packable."""
    if not isinstance(sig, (bytes, bytearray)) or len(sig) != 65 or sig[64] not in (27, 28):
        raise _Unpackable
    s = int.from_bytes(sig[32:64], "big")
    if s >> 255:
        raise _Unpackable
    out += sig[:32]
    out += (s | (_TOP if sig[64] == 28 else 0)).to_bytes(32, "big")


def _read_sig(data: bytes, pos: int) -> tuple[bytes, int]:
    end = pos + 64
    if end > len(data):
        raise IndexError
    vs = int.from_bytes(data[pos + 32:end], "big")
    v = 28 if vs >> 255 else 27
    return data[pos:pos + 32] + (vs & (_TOP - 1)).to_bytes(32, "big") + bytes((v,)), end


# --------------------------------------------------------------------------------- nonce
def _nonce(out: bytearray, nonce: int, time_ms: int) -> int:
    """Write the nonce in its shortest form; returns the F3 flag."""
    rel = _zz(nonce - time_ms)
    if _ulen(rel) < _ulen(nonce):
        _u(out, rel)
        return _F3
    _u(out, nonce)
    return 0


def _read_nonce(data: bytes, pos: int, flags: int, time_ms: int) -> tuple[int, int]:
    v, pos = _read_u(data, pos)
    if flags & _F3:
        nonce = time_ms + _unzz(v)
        if not 0 <= nonce <= _U64 or _ulen(v) >= _ulen(nonce):
            raise _Bad("nonce out of range or not in its shortest form")
        return nonce, pos
    if v > _U64 or _ulen(_zz(v - time_ms)) < _ulen(v):
        raise _Bad("nonce out of range or not in its shortest form")
    return v, pos


def _check(value: int, limit: int) -> int:
    """``value`` as a plain int if it is an int (IntEnum and bool included, as the ABI
    encoder takes them) within ``0..limit``; else the transaction is not packable."""
    if not isinstance(value, int) or not 0 <= value <= limit:
        raise _Unpackable
    return int(value)


# ---------------------------------------------------------------------------- risk arrays
_PREDICTORS = (
    lambda r: 0,
    lambda r: r[0],                          # 1: unchanged, vol down
    lambda r: r[0],                          # 2: up 1/3
    lambda r: r[2] + (r[1] - r[0]),          # 3: its vol down: the vega of the move inside
    lambda r: 2 * r[0] - r[2],               # 4: down 1/3: linear through 0 and +1/3
    lambda r: r[4] + (r[1] - r[0]),
    lambda r: 2 * r[2] - r[0],               # 6: up 2/3: linear extrapolation
    lambda r: r[6] + (r[3] - r[2]),
    lambda r: 2 * r[4] - r[0],               # 8: down 2/3
    lambda r: r[8] + (r[5] - r[4]),
    lambda r: 2 * r[6] - r[2],               # 10: up 3/3
    lambda r: r[10] + (r[7] - r[6]),
    lambda r: 2 * r[8] - r[4],               # 12: down 3/3
    lambda r: r[12] + (r[9] - r[8]),
    lambda r: (7 * r[10]) // 10,             # 14: up 2x range at 35% (a linear product: 0.7 x up 3/3)
    lambda r: (7 * r[12]) // 10,             # 15: down 2x range at 35%
)
"""Prediction of scenario i from scenarios 0..i-1 (floor division: exact integers)."""


def _reference(arrays: list, j: int, mode: int) -> list[int] | None:
    """The array that array ``j`` of a MarkUpdate is written relative to (module docstring);
    None where the mode needs arrays that do not exist."""
    if mode == 0:
        return _ZEROS
    if mode > j:
        return None
    if mode == 1:
        return arrays[j - 1]
    if mode == 2:
        return arrays[j - 2]
    a, b, c = arrays[j - 1], arrays[j - 2], arrays[j - 3]  # mode 3: put-call parity step
    return [x + y - z for x, y, z in zip(a, b, c)]


_ZEROS = [0] * N_SCENARIOS
_RISK_MODES = 4


def _residuals(values: list[int], ref: list[int]) -> list[int]:
    d: list[int] = []
    out = []
    for i in range(N_SCENARIOS):
        x = values[i] - ref[i]
        out.append(_zz(x - _PREDICTORS[i](d)))
        d.append(x)
    return out


def _risk_arrays(out: bytearray, arrays) -> None:
    checked: list[list[int]] = []
    for a in arrays:
        if not isinstance(a, (list, tuple)) or len(a) != N_SCENARIOS:
            raise _Unpackable
        for v in a:
            if not isinstance(v, int) or not _I64_MIN <= v <= _I64_MAX:
                raise _Unpackable
        checked.append([int(v) for v in a])
    for j, a in enumerate(checked):
        best = None
        for mode in range(_RISK_MODES):
            ref = _reference(checked, j, mode)
            if ref is None:
                continue
            res = _residuals(a, ref)
            size = sum(_ulen(z) for z in res)
            if best is None or size < best[0]:
                best = (size, mode, res)
        out.append(best[1])
        for z in best[2]:
            _u(out, z)


def _unpredict(e: list[int]) -> list[int]:
    """Inverse of the residuals: ``_PREDICTORS`` unrolled (the decoder's hot loop)."""
    r0 = e[0]
    r1 = r0 + e[1]
    r2 = r0 + e[2]
    r3 = r2 + r1 - r0 + e[3]
    r4 = 2 * r0 - r2 + e[4]
    r5 = r4 + r1 - r0 + e[5]
    r6 = 2 * r2 - r0 + e[6]
    r7 = r6 + r3 - r2 + e[7]
    r8 = 2 * r4 - r0 + e[8]
    r9 = r8 + r5 - r4 + e[9]
    r10 = 2 * r6 - r2 + e[10]
    r11 = r10 + r7 - r6 + e[11]
    r12 = 2 * r8 - r4 + e[12]
    r13 = r12 + r9 - r8 + e[13]
    return [r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, (7 * r10) // 10 + e[14],
            (7 * r12) // 10 + e[15]]


def _read_risk_arrays(data: bytes, pos: int, n: int) -> tuple[list[list[int]], int]:
    arrays: list[list[int]] = []
    for j in range(n):
        mode = data[pos]
        pos += 1
        ref = _reference(arrays, j, mode) if mode < _RISK_MODES else None
        if ref is None:
            raise _Bad(f"risk array mode {mode} not valid for array {j}")
        e = []
        for _ in range(N_SCENARIOS):
            b = data[pos]
            if b < 0x80:
                pos += 1
                z = b
            else:
                z, pos = _read_u(data, pos)
            e.append(z >> 1 if not z & 1 else -((z + 1) >> 1))
        d = _unpredict(e)
        a = d if mode == 0 else [x + y for x, y in zip(d, ref)]
        for v in a:
            if not _I64_MIN <= v <= _I64_MAX:
                raise _Bad("risk array value out of int64")
        arrays.append(a)
    return arrays, pos


# ------------------------------------------------------------------------ packed encoders
def _pack_l1(out: bytearray, tx) -> int:
    owner = tx.owner
    if type(owner) is not bytes or len(owner) != 20:
        raise _Unpackable
    _u(out, _check(tx.queue_index, _U64))
    out += owner
    _u(out, _check(tx.subaccount if type(tx) is Deposit else tx.account, _U32))
    _u(out, _check(tx.amount, _U64))
    return 0


def _pack_order(out: bytearray, tx: Order) -> int:
    side, ot = _check(tx.side, 1), _check(tx.order_type, 1)
    tif, fl, stp = _check(tx.tif, 3), _check(tx.flags, 3), _check(tx.stp, 3)
    _u(out, _check(tx.account, _U32))
    _u(out, _check(tx.instrument, _U32))
    out.append(side | ot << 1 | tif << 2 | fl << 4 | stp << 6)
    _u(out, _check(tx.price, _U64))
    _u(out, _check(tx.size, _U64))
    flags = 0
    t = tx.time_ms
    if _check(tx.expiry, _U64):
        _u(out, _zz(tx.expiry - t))
        flags |= _F1
    if _check(tx.client_id, _U64):
        _u(out, tx.client_id)
        flags |= _F2
    flags |= _nonce(out, _check(tx.nonce, _U64), t)
    _sig(out, tx.signature)
    return flags


def _pack_cancel(out: bytearray, tx: Cancel) -> int:
    scope = _check(tx.scope, 3)
    _u(out, _check(tx.account, _U32))
    _u(out, _check(tx.instrument, _U32))
    _u(out, _check(tx.order_id, _U64))
    _u(out, _check(tx.client_id, _U64))
    flags = (scope & 1) * _F1 | (scope >> 1) * _F2
    flags |= _nonce(out, _check(tx.nonce, _U64), tx.time_ms)
    _sig(out, tx.signature)
    return flags


def _pack_replace(out: bytearray, tx: Replace) -> int:
    _u(out, _check(tx.account, _U32))
    _u(out, _check(tx.order_id, _U64))
    _u(out, _check(tx.price, _U64))
    _u(out, _check(tx.size, _U64))
    flags = _nonce(out, _check(tx.nonce, _U64), tx.time_ms)
    _sig(out, tx.signature)
    return flags


def _pack_withdraw(out: bytearray, tx: Withdraw) -> int:
    _u(out, _check(tx.account, _U32))
    _u(out, _check(tx.amount, _U64))
    flags = _nonce(out, _check(tx.nonce, _U64), tx.time_ms)
    _sig(out, tx.signature)
    return flags


def _pack_transfer(out: bytearray, tx: Transfer) -> int:
    _u(out, _check(tx.account, _U32))
    _u(out, _check(tx.to_subaccount, _U32))
    _u(out, _check(tx.amount, _U64))
    flags = _nonce(out, _check(tx.nonce, _U64), tx.time_ms)
    _sig(out, tx.signature)
    return flags


def _pack_operator(out: bytearray, tx: OperatorAction) -> int:
    out.append(_check(tx.action, 0xFF))
    _u(out, _check(tx.target, _U32))
    _u(out, _check(tx.arg, _U64))
    _u(out, _zz(_check(tx.timestamp, _U64) - tx.time_ms))
    _sig(out, tx.signature)
    return 0


def _pack_margin_mode(out: bytearray, tx: SetMarginMode | SetAccountFlags) -> int:
    """SetMarginMode and SetAccountFlags: the same layout (its one byte: mode or flags)."""
    _u(out, _check(tx.account, _U32))
    out.append(_check(tx.mode if type(tx) is SetMarginMode else tx.flags, 0xFF))
    flags = _nonce(out, _check(tx.nonce, _U64), tx.time_ms)
    _sig(out, tx.signature)
    return flags


def _pack_mark(out: bytearray, tx: MarkUpdate) -> int:
    from clearline.oracle.report import PriceReport

    ins, prices, arrays, reports = tx.instruments, tx.prices, tx.risk_arrays, tx.reports
    if not all(isinstance(x, (list, tuple)) for x in (ins, prices, arrays, reports)):
        raise _Unpackable
    n = len(ins)
    if len(prices) != n or (arrays and len(arrays) != n):
        raise _Unpackable
    ts = _check(tx.timestamp, _U64)
    _u(out, _zz(ts - tx.time_ms))
    _u(out, n)
    flags = 0
    for i in ins:
        _check(i, _U32)
    if n and all(ins[j] == ins[0] + j for j in range(1, n)):
        _u(out, ins[0])
        flags |= _F1
    else:
        prev = 0
        for i in ins:
            _u(out, _zz(i - prev))
            prev = i
    for p in prices:
        _u(out, _check(p, _U64))
    if arrays:
        flags |= _F2
        _risk_arrays(out, arrays)
    _u(out, len(reports))
    for rep in reports:
        if type(rep) is not PriceReport:
            raise _Unpackable
        _u(out, _check(rep.asset, _U32))
        _u(out, _check(rep.price, _U64))
        _u(out, _zz(_check(rep.timestamp, _U64) - ts))
        _u(out, _check(rep.round, _U64))
        _sig(out, rep.signature)
    _sig(out, tx.signature)
    return flags


_PACKERS = {
    Deposit: (1, _pack_l1),
    Order: (2, _pack_order),
    Cancel: (3, _pack_cancel),
    Replace: (4, _pack_replace),
    Withdraw: (5, _pack_withdraw),
    Transfer: (6, _pack_transfer),
    MarkUpdate: (7, _pack_mark),
    OperatorAction: (8, _pack_operator),
    SetMarginMode: (9, _pack_margin_mode),
    ForcedWithdrawal: (10, _pack_l1),
    SetAccountFlags: (11, _pack_margin_mode),
}


_V3_ONLY = (SetAccountFlags,)  # packed from format v3 on


def packed_kind(tx, *, v2: bool = False) -> int | None:
    """The head kind of ``tx`` if it has a packed form (in format v2 with ``v2``), else None
    (fallback)."""
    entry = _PACKERS.get(type(tx))
    if entry is None or (v2 and type(tx) in _V3_ONLY):
        return None
    try:
        entry[1](bytearray(), tx)
    except (_Unpackable, TypeError, ValueError, OverflowError):
        return None
    return entry[0]


def _pack(tx, prev_time: int, v2: bool = False) -> bytes | None:
    """Packed bytes of ``tx`` after a transaction at ``prev_time`` (None: no packed form)."""
    entry = _PACKERS.get(type(tx))
    if entry is None or (v2 and type(tx) in _V3_ONLY):
        return None
    kind, packer = entry
    t = tx.time_ms
    if not isinstance(t, int) or not 0 <= t <= _U64:
        return None
    body = bytearray()
    try:
        flags = packer(body, tx)
    except (_Unpackable, TypeError, ValueError, OverflowError):
        return None
    head = bytearray((kind | flags,))
    if t != prev_time:
        head[0] |= _T
        _u(head, _zz(t - prev_time))
    return bytes(head + body)


def _fallback(tx) -> bytes:
    try:
        abi = encode_tx(tx)
    except Rejected as exc:
        raise BatchFormatError(f"{type(tx).__name__} has no canonical encoding: {exc}") from None
    out = bytearray((FALLBACK,))
    _u(out, len(abi))
    return bytes(out) + abi


def tx_size_bound(tx) -> int:
    """Bytes ``tx`` takes in a chunk when the time goes forward (as in a journal): at most
    its size as a chunk's first transaction (a time delta is never longer than the time)."""
    b = _pack(tx, 0)
    return len(b) if b is not None else len(_fallback(tx))


def _chunk_parts(txs: Sequence, v2: bool = False) -> list[bytes]:
    out, prev = [], 0
    for tx in txs:
        b = _pack(tx, prev, v2)
        out.append(b if b is not None else _fallback(tx))
        prev = tx.time_ms
    return out


def encode_chunk(txs: Sequence, *, v2: bool = False) -> bytes:
    """One chunk: the transactions back to back, times relative to the chunk's start (format
    v3's packed kinds; v2's with ``v2``)."""
    return b"".join(_chunk_parts(txs, v2))


def tx_sizes(txs: Sequence, txs_per_chunk: int) -> list[tuple[int, int]]:
    """``(bytes, signature bytes)`` each transaction takes in ``encode_batch_v2(txs, k)``
    (framing excluded): where the DA bytes go. Packed signatures take 64 bytes, a fallback's
    its three ABI words (96)."""
    out = []
    k = txs_per_chunk
    for i in range(0, len(txs), k):
        for tx, b in zip(txs[i:i + k], _chunk_parts(txs[i:i + k], True)):
            n_sigs = (1 if isinstance(getattr(tx, "signature", None), (bytes, bytearray)) and tx.signature else 0) \
                + sum(1 for r in getattr(tx, "reports", ()) or () if getattr(r, "signature", b""))
            out.append((len(b), n_sigs * (96 if b[0] == FALLBACK else 64)))
    return out


def encode_batch_v2(txs: Sequence, txs_per_chunk: int) -> bytes:
    """Batch data v2 of core transaction objects, chunked every ``txs_per_chunk``
    (the batch's ``txsPerRoot``). Raises ``BatchFormatError`` for a non-encodable transaction."""
    k = txs_per_chunk
    if type(k) is not int or not 0 < k <= _U32:
        raise BatchFormatError("txs_per_chunk must be a positive uint32")
    n = len(txs)
    return frame_chunks(BATCH_FORMAT_V2, k, n, [encode_chunk(txs[i:i + k], v2=True) for i in range(0, n, k)])


def frame_chunks(version: int, k: int, x: int, chunks: list[bytes]) -> bytes:
    """``version || u k || u x || uint32 end[C] || chunks``: the framing v2 (``x`` = n) and v3
    (``x`` = C) share."""
    head = bytearray((version,))
    _u(head, k)
    _u(head, x)
    pos = len(head) + 4 * len(chunks)
    table = bytearray()
    for c in chunks:
        pos += len(c)
        table += _END.pack(pos)
    if pos > _U32:
        raise BatchFormatError("batch data longer than 4 GiB")
    return bytes(head + table) + b"".join(chunks)


# ------------------------------------------------------------------------ packed decoders
def _dec_l1(data, pos, flags, t, kind):
    q, pos = _read_bounded(data, pos, _U64)
    owner = data[pos:pos + 20]
    if len(owner) != 20:
        raise IndexError
    pos += 20
    target, pos = _read_bounded(data, pos, _U32)
    amount, pos = _read_bounded(data, pos, _U64)
    if flags:
        raise _Bad("flags must be 0")
    cls = Deposit if kind == 1 else ForcedWithdrawal
    return cls(t, q, owner, target, amount), pos


def _dec_order(data, pos, flags, t, kind):
    account, pos = _read_bounded(data, pos, _U32)
    instrument, pos = _read_bounded(data, pos, _U32)
    shape = data[pos]
    pos += 1
    price, pos = _read_bounded(data, pos, _U64)
    size, pos = _read_bounded(data, pos, _U64)
    expiry = client_id = 0
    if flags & _F1:
        z, pos = _read_u(data, pos)
        expiry = t + _unzz(z)
        if not 0 < expiry <= _U64:
            raise _Bad("expiry out of range (or zero with F1)")
    if flags & _F2:
        client_id, pos = _read_bounded(data, pos, _U64)
        if not client_id:
            raise _Bad("clientId zero with F2")
    nonce, pos = _read_nonce(data, pos, flags, t)
    sig, pos = _read_sig(data, pos)
    return Order(t, account, instrument, shape & 1, (shape >> 1) & 1, (shape >> 2) & 3, (shape >> 4) & 3,
                 shape >> 6, price, size, expiry, client_id, nonce, sig), pos


def _dec_cancel(data, pos, flags, t, kind):
    account, pos = _read_bounded(data, pos, _U32)
    instrument, pos = _read_bounded(data, pos, _U32)
    order_id, pos = _read_bounded(data, pos, _U64)
    client_id, pos = _read_bounded(data, pos, _U64)
    nonce, pos = _read_nonce(data, pos, flags, t)
    sig, pos = _read_sig(data, pos)
    scope = (1 if flags & _F1 else 0) | (2 if flags & _F2 else 0)
    return Cancel(t, account, scope, instrument, order_id, client_id, nonce, sig), pos


def _no_flags(flags: int, allowed: int = 0) -> None:
    if flags & ~allowed & (_F1 | _F2 | _F3):
        raise _Bad("flag must be 0")


def _dec_replace(data, pos, flags, t, kind):
    _no_flags(flags, _F3)
    account, pos = _read_bounded(data, pos, _U32)
    order_id, pos = _read_bounded(data, pos, _U64)
    price, pos = _read_bounded(data, pos, _U64)
    size, pos = _read_bounded(data, pos, _U64)
    nonce, pos = _read_nonce(data, pos, flags, t)
    sig, pos = _read_sig(data, pos)
    return Replace(t, account, order_id, price, size, nonce, sig), pos


def _dec_withdraw(data, pos, flags, t, kind):
    _no_flags(flags, _F3)
    account, pos = _read_bounded(data, pos, _U32)
    amount, pos = _read_bounded(data, pos, _U64)
    nonce, pos = _read_nonce(data, pos, flags, t)
    sig, pos = _read_sig(data, pos)
    return Withdraw(t, account, amount, nonce, sig), pos


def _dec_transfer(data, pos, flags, t, kind):
    _no_flags(flags, _F3)
    account, pos = _read_bounded(data, pos, _U32)
    to_sub, pos = _read_bounded(data, pos, _U32)
    amount, pos = _read_bounded(data, pos, _U64)
    nonce, pos = _read_nonce(data, pos, flags, t)
    sig, pos = _read_sig(data, pos)
    return Transfer(t, account, to_sub, amount, nonce, sig), pos


def _dec_operator(data, pos, flags, t, kind):
    _no_flags(flags)
    action = data[pos]
    target, pos = _read_bounded(data, pos + 1, _U32)
    arg, pos = _read_bounded(data, pos, _U64)
    z, pos = _read_u(data, pos)
    ts = t + _unzz(z)
    if not 0 <= ts <= _U64:
        raise _Bad("timestamp out of range")
    sig, pos = _read_sig(data, pos)
    return OperatorAction(t, action, target, arg, ts, sig), pos


def _dec_margin_mode(data, pos, flags, t, kind):
    _no_flags(flags, _F3)
    account, pos = _read_bounded(data, pos, _U32)
    mode = data[pos]
    nonce, pos = _read_nonce(data, pos + 1, flags, t)
    sig, pos = _read_sig(data, pos)
    cls = SetMarginMode if kind == 9 else SetAccountFlags
    return cls(t, account, mode, nonce, sig), pos


def _dec_mark(data, pos, flags, t, kind):
    from clearline.oracle.report import PriceReport

    _no_flags(flags, _F1 | _F2)
    z, pos = _read_u(data, pos)
    ts = t + _unzz(z)
    if not 0 <= ts <= _U64:
        raise _Bad("timestamp out of range")
    n, pos = _read_u(data, pos)
    if n > len(data) - pos:  # each instrument takes at least one byte: no huge allocations
        raise _Bad("instrument count beyond the data")
    if flags & _F1:
        if n == 0:
            raise _Bad("instrument run of length 0")
        first, pos = _read_bounded(data, pos, _U32)
        if first + n - 1 > _U32:
            raise _Bad("instrument run beyond uint32")
        ins = list(range(first, first + n))
    else:
        ins, prev = [], 0
        for _ in range(n):
            z, pos = _read_u(data, pos)
            prev += _unzz(z)
            if not 0 <= prev <= _U32:
                raise _Bad("instrument out of range")
            ins.append(prev)
        if n and all(ins[j] == ins[0] + j for j in range(1, n)):
            raise _Bad("consecutive instruments must be written as a run")
    prices = []
    for _ in range(n):
        p, pos = _read_bounded(data, pos, _U64)
        prices.append(p)
    arrays = []
    if flags & _F2:
        if n == 0:
            raise _Bad("risk arrays flag without instruments")
        arrays, pos = _read_risk_arrays(data, pos, n)
    m, pos = _read_u(data, pos)
    if m > (len(data) - pos) // 68:
        raise _Bad("report count beyond the data")
    reports = []
    for _ in range(m):
        asset, pos = _read_bounded(data, pos, _U32)
        price, pos = _read_bounded(data, pos, _U64)
        z, pos = _read_u(data, pos)
        rts = ts + _unzz(z)
        if not 0 <= rts <= _U64:
            raise _Bad("report timestamp out of range")
        rnd, pos = _read_bounded(data, pos, _U64)
        sig, pos = _read_sig(data, pos)
        reports.append(PriceReport(asset, price, rts, rnd, sig))
    sig, pos = _read_sig(data, pos)
    return MarkUpdate(t, ts, ins, prices, arrays, reports, signature=sig), pos


_DECODERS = {1: _dec_l1, 2: _dec_order, 3: _dec_cancel, 4: _dec_replace, 5: _dec_withdraw, 6: _dec_transfer,
             7: _dec_mark, 8: _dec_operator, 9: _dec_margin_mode, 10: _dec_l1, 11: _dec_margin_mode}


def decode_chunk(data: bytes, start: int, end: int, count: int | None, first_index: int = 0, *,
                 max_count: int | None = None) -> list:
    """Exactly ``count`` transactions from ``data[start:end]`` (one chunk of format v2);
    ``first_index`` numbers them in errors. ``count`` None (format v3): every transaction up
    to ``end``, at most ``max_count`` of them. Raises ``BatchFormatError``."""
    v2 = count is not None
    out: list = []
    pos, prev = start, 0
    index = first_index
    try:
        while True:
            if count is not None:
                if len(out) == count:
                    break
                index = first_index + len(out)
                if pos >= end:
                    raise _Bad("chunk ends before its transactions")
            elif pos >= end:
                break
            else:
                index = first_index + len(out)
                if max_count is not None and len(out) >= max_count:
                    raise _Bad(f"more than {max_count} transactions in the chunk")
            head = data[pos]
            pos += 1
            if head == FALLBACK:
                n, pos = _read_u(data, pos)
                if pos + n > end:
                    raise _Bad("fallback runs past the chunk")
                try:
                    tx = decode_tx(data[pos:pos + n])
                except Rejected as exc:
                    raise _Bad(f"fallback does not decode: {exc}") from None
                pos += n
                if packed_kind(tx, v2=v2) is not None:
                    raise _Bad("fallback for a transaction that has a packed form")
            else:
                decoder = _DECODERS.get(head & 0x0F)
                if decoder is None or (v2 and head & 0x0F == 11):
                    raise _Bad(f"unknown head 0x{head:02x}")
                t = prev
                if head & _T:
                    z, pos = _read_u(data, pos)
                    if z == 0:
                        raise _Bad("zero time delta with T")
                    t = prev + _unzz(z)
                    if not 0 <= t <= _U64:
                        raise _Bad("time out of range")
                tx, pos = decoder(data, pos, head & 0x70, t, head & 0x0F)
                if pos > end:
                    raise _Bad("transaction runs past its chunk")
            prev = tx.time_ms
            out.append(tx)
        if pos != end:
            raise _Bad("bytes left at the end of the chunk")
    except _Bad as exc:
        raise BatchFormatError(str(exc), index) from None
    except IndexError:
        raise BatchFormatError("truncated", index) from None
    return out


def read_chunk_table(data: bytes, version: int, what: str) -> tuple[int, int, list[tuple[int, int]]]:
    """``(k, x, [(start, end), ...])`` of batch ``data`` of ``version`` whose header is
    ``version || u k || u x``, where ``what(k, x)`` is the number of chunks (v2: ``x`` = n
    transactions, v3: ``x`` = C chunks): the header and the chunk table checked (ends strictly
    increasing, or for v3 non-decreasing, the last one the data's end), the chunks not parsed. Raises
    ``BatchFormatError``."""
    if not data or data[0] != version:
        raise BatchFormatError(f"not batch format v{version}")
    try:
        k, pos = _read_u(data, 1)
        x, pos = _read_u(data, pos)
    except _Bad as exc:
        raise BatchFormatError(str(exc)) from None
    except IndexError:
        raise BatchFormatError("truncated header") from None
    if not 0 < k <= _U32:
        raise BatchFormatError("txs per chunk must be a positive uint32")
    c = what(k, x)
    if c > (len(data) - pos) // 4:  # 4 table bytes each (a v3 matching step is an empty chunk)
        raise BatchFormatError("chunk table beyond the data")
    start = pos + 4 * c
    out = []
    for i in range(c):
        (end,) = _END.unpack_from(data, pos + 4 * i)
        if end < start or end > len(data) or (end == start and version != 3):
            raise BatchFormatError(f"chunk {i}: bad end offset {end}")
        out.append((start, end))
        start = end
    if start != len(data):
        raise BatchFormatError("bytes after the last chunk")
    return k, x, out


def chunk_bounds(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """``(k, n, [(start, end, count), ...])`` of v2 ``data``: the chunk table, checked."""
    k, n, table = read_chunk_table(data, BATCH_FORMAT_V2, lambda k, n: -(-n // k))
    return k, n, [(start, end, min(k, n - i * k)) for i, (start, end) in enumerate(table)]


def decode_batch_v2(data: bytes) -> tuple[int, list]:
    """``(txs_per_chunk, transactions)`` of v2 batch ``data``; raises ``BatchFormatError``."""
    data = bytes(data)
    k, _, bounds = chunk_bounds(data)
    txs: list = []
    for i, (start, end, count) in enumerate(bounds):
        txs.extend(decode_chunk(data, start, end, count, i * k))
    return k, txs
