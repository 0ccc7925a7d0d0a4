"""Fraud proofs from L1 data: find the first wrong commitment, build the ``Rollup.proveFraud``
call that proves it, and submit it (commit, then reveal in a later block).

Everything here is derived from L1 alone (``l1data.RollupReader``: the Genesis event, batch
headers and ``appendBatch`` calldata, the Vault's queue items) plus a rebuild with the core.
``clearline.watchtower.verify`` finds the first mismatch; ``build_proof`` turns it into one
``FraudProof`` of a kind the ``FraudVerifier`` contract implements, judging each candidate
locally first with Python mirrors of the contract's checks (``framing_reason``,
``decode_chunk_reason`` / ``walk_chunk``), so a proof is only sent when the contract will accept it.

Kinds (``FraudVerifier.sol``; docs/fraud-proofs.md):

- ``KIND_FRAMING`` (1): the batch data's v3 framing is wrong (version, varints, k, chunk
  table, number of roots; an empty batch whose queueEnd moved);
- ``KIND_CHUNK_DECODE`` (2): one chunk does not decode: batch_v3's chunk rules (1..k
  transactions, an operator-signed one alone) and batch_v2's strict rules for each transaction
  (all of them: the contract's ``decodeChunk``, mirrored by ``decode_chunk_reason``; reasons
  10-13);
- ``KIND_QUEUE_ITEM`` (3): a Deposit / ForcedWithdrawal that is not the next L1 queue item
  (skipped, out of order, altered -- e.g. minted collateral -- or nonexistent);
- ``KIND_QUEUE_END`` (4): the last chunk's L1 transactions do not end at the header's
  queueEnd;
- ``KIND_COLLATERAL_ROOT`` (5): a chunk of deposits, forced and signed withdrawals and
  transfers whose committed post-root
  is not the one re-executing them gives, or one of which the core rejects (deposits into
  existing accounts or the insurance fund; withdrawals from accounts without positions:
  signature, nonce, amount, collateral).
- ``KIND_MARK_UPDATE`` (6): one MarkUpdate the core rejects, or whose post-root is wrong
  (``mark_witness``);
- ``KIND_OPERATOR_ACTION`` (7): one OperatorAction the core rejects for a reason the
  MarkVerifier's ``judgeAction`` shows (``action_witness``: time, signature, timestamp,
  unknown action; a cancel of an unknown or not opted-in account or with a bad trigger; an
  unconfigured underlying), or a step of funding (FUNDING_SETTLE, FUNDING_PAY) or of expiry
  settlement (SETTLE_OPTION, SETTLE_POSITION, CLOSE_ORDER) rejected or whose post-root is wrong
  (re-executed by the FundingVerifier / ExpiryVerifier: ``step_judgement``).
- ``KIND_WITHDRAWALS`` (8): the posted withdrawal records (the header's ``withdrawalsRoot``)
  are not the batch's: a record that its transaction does not pay, records out of order, a
  Withdraw without a record (``record_witness``; from the batch data alone); or, with the
  right roots around a chunk, its records do not sum to the state's withdrawals over it (a
  ForcedWithdrawal recorded though denied, or served without a record; ``records_sum_judgement``).
- ``KIND_NONCES`` (9): two signed transactions of one account whose nonces do not increase
  (``nonce_witness``: a replayed signature, from the batch data alone, orders or not).
- ``KIND_SIGNATURE`` (10): a signed transaction, in any chunk, whose signer is not its account's
  owner or whose nonce is not above the account's at the chunk's pre-state
  (``signature_fault``: a forged or replayed order, cancel, replace, ...).
- ``KIND_ORDER`` (11): an Order the core refuses for a rule its fields and its market's leaf show
  (``order_witness``: unknown, inactive or expired instrument, no mark, a shape the core refuses).
- ``KIND_FUNDING_PENDING`` (12): a chunk other than one FUNDING_PAY or SETTLE_POSITION while a
  market's holders are being paid (its leaf at the chunk's pre-state: ``unpaidLots`` > 0).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address

from clearline.core import eip712, encoding
from clearline.core.apply import apply, recover_signer
from clearline.core.errors import Rejected
from clearline.core.hashing import keccak
from clearline.core.merkle import ZERO_HASHES
from clearline.core.liquidation import check_liquidatable
from clearline.core.state import ACCOUNT_INDEX_BASE, MAX_ACCOUNTS, Genesis, State
from clearline.core.txs import (Deposit, ForcedWithdrawal, MarkUpdate, MatchStep, OperatorAction, OperatorActionKind,
                                SetAccountFlags, SetMarginMode, Transfer, Withdraw)
from clearline.l1.batch_v2 import BatchFormatError
from clearline.l1.batch_v3 import ALONE_KINDS, BATCH_FORMAT_V3, chunk_table_v3, decode_chunk_v3
from clearline.l1.params import check_params_hash
from clearline.l1.formats import (QUEUE_DEPOSIT, QUEUE_FORCED_WITHDRAWAL, STATE_ABI, WITHDRAWALS_DEPTH, BatchHeader,
                                  batch_data_parts, compress_proof, decode_batch, queue_item_hash)

from .escape import _MARKET_TYPES
from .l1data import BatchRef, RollupReader
from .margin_witness import margin_witness
from .action_witness import REEXECUTED_ACTIONS, action_judgement
from .batch_chunks import SIGNED_KINDS, DecodedChunks
from .mark_witness import mark_judgement
from .nonce_witness import nonce_judgement
from .order_witness import order_fault, order_witness
from .record_witness import records_judgement, records_sum_judgement

__all__ = [
    "KIND_CHUNK_DECODE",
    "KIND_COLLATERAL_ROOT",
    "KIND_FRAMING",
    "KIND_NAMES",
    "KIND_MARK_UPDATE",
    "KIND_OPERATOR_ACTION",
    "KIND_QUEUE_END",
    "KIND_QUEUE_ITEM",
    "KIND_NONCES",
    "KIND_FUNDING_PENDING",
    "KIND_WITHDRAWALS",
    "REASON_NAMES",
    "FraudError",
    "FraudProof",
    "Submitted",
    "build_proof",
    "chunk_count",
    "decode_chunk_reason",
    "find_fraud",
    "framing_reason",
    "rebuild_before",
    "state_tuple",
    "submit_proof",
    "walk_chunk",
]

KIND_FRAMING = 1
KIND_CHUNK_DECODE = 2
KIND_QUEUE_ITEM = 3
KIND_QUEUE_END = 4
KIND_COLLATERAL_ROOT = 5
KIND_MARK_UPDATE = 6
KIND_OPERATOR_ACTION = 7
KIND_WITHDRAWALS = 8
KIND_NONCES = 9
KIND_SIGNATURE = 10
KIND_ORDER = 11
KIND_FUNDING_PENDING = 12
KIND_MATCH_STEP = 13
KIND_NAMES = {1: "framing", 2: "chunk_decode", 3: "queue_item", 4: "queue_end", 5: "collateral_root",
              6: "mark_update", 7: "operator_action", 8: "withdrawals", 9: "nonces", 10: "signature",
              11: "order", 12: "funding_pending", 13: "match_step"}

REASON_NAMES = {
    1: "BAD_VERSION", 2: "BAD_HEADER_VARINT", 3: "BAD_TXS_PER_ROOT", 4: "CHUNK_TABLE", 5: "ROOT_COUNT",
    10: "CHUNK_UNDECODABLE", 11: "CHUNK_FIELD_RANGE", 12: "CHUNK_NOT_CANONICAL", 13: "CHUNK_BAD_FALLBACK",
    20: "QUEUE_OUT_OF_ORDER", 21: "QUEUE_ITEM_MISMATCH", 23: "QUEUE_END", 30: "WRONG_POST_ROOT", 31: "REJECTED_TX",
    40: "BAD_WITHDRAWAL_RECORD", 41: "WITHDRAWAL_RECORDS_OUT_OF_ORDER", 42: "MISSING_WITHDRAWAL_RECORD",
    43: "WITHDRAWAL_RECORDS_SUM",
}

EMPTY_WITHDRAWALS_ROOT = ZERO_HASHES[WITHDRAWALS_DEPTH]  # the withdrawal tree of a batch without withdrawals
STATE_TYPE = STATE_ABI
_POSITION_TYPE = "(uint32,int64,int256,int256)"
ACCOUNT_TYPE = f"(uint32,address,uint32,int256,uint64,uint8,uint8,{_POSITION_TYPE}[],uint256,bytes32[])"
MARKET_LEAF_TYPE = _MARKET_TYPES[1]  # the market leaf without its tag (Escape.sol MarketLeaf)
PENDING_WITNESS_TYPE = f"({STATE_TYPE},bytes,uint256,bytes32[])"  # FundingVerifier.PendingWitness
# (market leaves with proofs, in position order; (underlying id, leaf, present, siblings))
INDEX_TYPE = "(uint32,uint256,uint256,uint256,bytes32[],uint256,bytes32[])"  # FraudVerifier.IndexWitness
MARGIN_TYPE = f"(({MARKET_LEAF_TYPE},uint256,bytes32[])[],(uint32,bytes,uint256,bytes32[])[])"
_U32, _U64 = (1 << 32) - 1, (1 << 64) - 1


class FraudError(RuntimeError):
    """No proof kind implemented here proves the mismatch found (or L1 data is unreadable)."""


# ------------------------------------------------------------------- mirrors of the contract
def _u(d: bytes, p: int) -> tuple[int, int, bool]:
    """``FraudVerifier._u``: LEB128, at most 10 bytes, minimal."""
    v = 0
    for i in range(10):
        if p >= len(d):
            return 0, p, False
        b = d[p]
        p += 1
        v |= (b & 0x7F) << (7 * i)
        if b < 0x80:
            return v, p, not (b == 0 and i > 0)
    return 0, p, False


class _Malformed(Exception):
    """``ChunkDecoder.ChunkMalformed(reason)`` in the mirror of ``decodeChunk``."""

    def __init__(self, reason: int):
        super().__init__(reason)
        self.reason = reason


_UNDECODABLE, _FIELD_RANGE, _NOT_CANONICAL, _BAD_FALLBACK = 10, 11, 12, 13
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1


def _ru(d: bytes, p: int) -> tuple[int, int]:
    v, p, ok = _u(d, p)
    if not ok:
        raise _Malformed(_UNDECODABLE)
    return v, p


def _rb(d: bytes, p: int, limit: int) -> int:
    v, p = _ru(d, p)
    if v > limit:
        raise _Malformed(_FIELD_RANGE)
    return p


def _unzz(z: int) -> int:
    return z >> 1 if not z & 1 else -((z + 1) >> 1)


def _plus_z(base: int, z: int) -> int:
    v = base + _unzz(z)
    if not 0 <= v <= _U64:
        raise _Malformed(_FIELD_RANGE)
    return v


def _ulen(v: int) -> int:
    n = 1
    while v > 0x7F:
        v >>= 7
        n += 1
    return n


def _tx(d: bytes, p: int, prev: int, s: list) -> tuple[int, int, bool]:
    """``FraudVerifier._tx``: (next, time, is an L1 transaction)."""
    head = d[p]
    p += 1
    if head == 0xFF:
        return _fallback(d, p)
    kind = head & 0x0F
    if kind == 0 or kind > 11:
        raise _Malformed(_UNDECODABLE)
    t = prev
    if head & 0x80:
        z, p = _ru(d, p)
        if z == 0:
            raise _Malformed(_UNDECODABLE)
        t = _plus_z(prev, z)
    f = head & 0x70
    if kind in (1, 10):
        p = _rb(d, p, _U64)
        p = _rb(d, _rb(d, p + 20, _U32), _U64)
        if f:
            raise _Malformed(_NOT_CANONICAL)
        return p, t, True
    if kind == 2:
        return _order(d, p, f, t), t, False
    if kind == 7:
        return _mark(d, p, f, t, s), t, False
    if kind == 8:
        if f:
            raise _Malformed(_NOT_CANONICAL)
        p = _rb(d, _rb(d, p + 1, _U32), _U64)
        z, p = _ru(d, p)
        _plus_z(t, z)
        return p + 64, t, False
    if kind != 3 and f & 0x30:
        raise _Malformed(_NOT_CANONICAL)
    p = _rb(d, p, _U32)
    if kind == 3:
        p = _rb(d, _rb(d, _rb(d, p, _U32), _U64), _U64)
    elif kind == 4:
        p = _rb(d, _rb(d, _rb(d, p, _U64), _U64), _U64)
    elif kind == 5:
        p = _rb(d, p, _U64)
    elif kind == 6:
        p = _rb(d, _rb(d, p, _U32), _U64)
    else:
        p += 1
    return _nonce(d, p, f, t) + 64, t, False


def _order(d: bytes, p: int, f: int, t: int) -> int:
    p = _rb(d, _rb(d, p, _U32), _U32) + 1
    p = _rb(d, _rb(d, p, _U64), _U64)
    if f & 0x10:
        v, p = _ru(d, p)
        expiry = t + _unzz(v)
        if not 0 <= expiry <= _U64:
            raise _Malformed(_FIELD_RANGE)
        if expiry == 0:
            raise _Malformed(_NOT_CANONICAL)
    if f & 0x20:
        v, p = _ru(d, p)
        if v > _U64:
            raise _Malformed(_FIELD_RANGE)
        if v == 0:
            raise _Malformed(_NOT_CANONICAL)
    return _nonce(d, p, f, t) + 64


def _nonce(d: bytes, p: int, f: int, t: int) -> int:
    v, q = _ru(d, p)
    written = q - p
    if f & 0x40:
        nonce = t + _unzz(v)
        if not 0 <= nonce <= _U64:
            raise _Malformed(_FIELD_RANGE)
        if written >= _ulen(nonce):
            raise _Malformed(_NOT_CANONICAL)
    else:
        if v > _U64:
            raise _Malformed(_FIELD_RANGE)
        rel = v - t
        if _ulen(rel << 1 if rel >= 0 else ((-rel) << 1) - 1) < written:
            raise _Malformed(_NOT_CANONICAL)
    return q


def _mark(d: bytes, p: int, f: int, t: int, s: list) -> int:
    if f & 0x40:
        raise _Malformed(_NOT_CANONICAL)
    z, p = _ru(d, p)
    ts = _plus_z(t, z)
    n, p = _ru(d, p)
    if n > len(d) - p:
        raise _Malformed(_UNDECODABLE)
    if f & 0x10:
        if n == 0:
            raise _Malformed(_NOT_CANONICAL)
        first, p = _ru(d, p)
        if first > _U32 or first + n - 1 > _U32:
            raise _Malformed(_FIELD_RANGE)
    else:
        p = _instruments(d, p, n)
    for _ in range(n):
        p = _rb(d, p, _U64)
    if f & 0x20:
        if n == 0:
            raise _Malformed(_NOT_CANONICAL)
        p = _risk_arrays(d, p, n, s)
    m, p = _ru(d, p)
    if m > (len(d) - p) // 68:
        raise _Malformed(_UNDECODABLE)
    for _ in range(m):
        p = _rb(d, _rb(d, p, _U32), _U64)
        z, p = _ru(d, p)
        _plus_z(ts, z)
        p = _rb(d, p, _U64) + 64
    return p + 64


def _instruments(d: bytes, p: int, n: int) -> int:
    id_ = first = 0
    run = True
    for i in range(n):
        z, p = _ru(d, p)
        id_ += _unzz(z)
        if not 0 <= id_ <= _U32:
            raise _Malformed(_FIELD_RANGE)
        if i == 0:
            first = id_
        elif id_ != first + i:
            run = False
    if n and run:
        raise _Malformed(_NOT_CANONICAL)
    return p


def _risk_arrays(d: bytes, p: int, n: int, s: list) -> int:
    """``FraudVerifier._riskArrays`` (s: the ring of the last four arrays, 64 values)."""
    for j in range(n):
        if p >= len(d):
            raise _Malformed(_UNDECODABLE)
        mode = d[p]
        p += 1
        if mode > 3 or mode > j:
            raise _Malformed(_NOT_CANONICAL)
        e = []
        for _ in range(16):
            z, p = _ru(d, p)
            e.append(_unzz(z))
        r0 = e[0]
        e[1] += r0
        e[2] += r0
        e[3] += e[2] + e[1] - r0
        e[4] += 2 * r0 - e[2]
        e[5] += e[4] + e[1] - r0
        e[6] += 2 * e[2] - r0
        e[7] += e[6] + e[3] - e[2]
        e[8] += 2 * e[4] - r0
        e[9] += e[8] + e[5] - e[4]
        e[10] += 2 * e[6] - e[2]
        e[11] += e[10] + e[7] - e[6]
        e[12] += 2 * e[8] - e[4]
        e[13] += e[12] + e[9] - e[8]
        e[14] += (7 * e[10]) // 10
        e[15] += (7 * e[12]) // 10
        cur, a1, a2, a3 = (j & 3) << 4, ((j + 3) & 3) << 4, ((j + 2) & 3) << 4, ((j + 1) & 3) << 4
        for i in range(16):
            v = e[i]
            if mode == 1:
                v += s[a1 + i]
            elif mode == 2:
                v += s[a2 + i]
            elif mode == 3:
                v += s[a1 + i] + s[a2 + i] - s[a3 + i]
            if not _I64_MIN <= v <= _I64_MAX:
                raise _Malformed(_FIELD_RANGE)
            s[cur + i] = v
    return p


# bytes per ABI word of each static layout (``FraudVerifier._layout``)
_LAYOUTS = {1: b"\x01\x08\x08\x14\x04\x08", 10: b"\x01\x08\x08\x14\x04\x08",
            2: bytes.fromhex("0108040401010101010808080808202001"), 3: bytes.fromhex("0108040104080808202001"),
            4: bytes.fromhex("01080408080808202001"), 5: bytes.fromhex("0108040808202001"),
            6: bytes.fromhex("010804040808202001"), 8: bytes.fromhex("010801040808202001"),
            9: bytes.fromhex("0108040108202001"), 11: bytes.fromhex("0108040108202001")}


def _word(a: bytes, i: int) -> int:
    """``FraudVerifier._word`` (calldataload: zeros past the end)."""
    return int.from_bytes(a[32 * i:32 * i + 32].ljust(32, b"\x00"), "big")


def _sig_packable(a: bytes, i: int) -> bool:
    v = _word(a, i + 2)
    return v in (27, 28) and not _word(a, i + 1) >> 255


def _fallback(d: bytes, p: int) -> tuple[int, int, bool]:
    """``FraudVerifier._fallback``: (next, time, False)."""
    n, p = _ru(d, p)
    if p + n > len(d):
        raise _Malformed(_UNDECODABLE)
    a = d[p:p + n]
    if n < 32 or _word(a, 0) > 0xFF:
        raise _Malformed(_BAD_FALLBACK)
    kind = _word(a, 0)
    if kind == 0 or kind > 11:
        raise _Malformed(_BAD_FALLBACK)
    if kind == 7:
        packable = _abi_mark(a)
    else:
        layout = _LAYOUTS[kind]
        words = len(layout)
        if n != 32 * words:
            raise _Malformed(_BAD_FALLBACK)
        for i in range(1, words):
            if layout[i] < 32 and _word(a, i) >> (8 * layout[i]):
                raise _Malformed(_BAD_FALLBACK)
        if kind in (1, 10):
            packable = True
        else:
            packable = _sig_packable(a, words - 3)
        if kind == 2:
            packable = packable and _word(a, 4) <= 1 and _word(a, 5) <= 1 and _word(a, 6) <= 3 \
                and _word(a, 7) <= 3 and _word(a, 8) <= 3
        elif kind == 3:
            packable = packable and _word(a, 3) <= 3
    if packable:
        raise _Malformed(_BAD_FALLBACK)
    return p + n, _word(a, 1), False


def _abi_mark(a: bytes) -> bool:
    n = len(a)
    if n < 448:
        raise _Malformed(_BAD_FALLBACK)
    if _word(a, 1) > _U64 or _word(a, 2) > _U64 or _word(a, 9) > 0xFF or _word(a, 3) != 320:
        raise _Malformed(_BAD_FALLBACK)
    n_ins, end = _abi_array(a, 320, 32)
    if _word(a, 4) != end:
        raise _Malformed(_BAD_FALLBACK)
    n_prices, end = _abi_array(a, end, 64)
    if _word(a, 5) != end:
        raise _Malformed(_BAD_FALLBACK)
    n_risk, end = _abi_array(a, end, 0)
    if n_risk != 0 and n_risk != 16 * n_ins:
        raise _Malformed(_BAD_FALLBACK)
    if _word(a, 6) != end or end + 32 > n:
        raise _Malformed(_BAD_FALLBACK)
    m = int.from_bytes(a[end:end + 32], "big")
    start = end + 32
    if m > (n - start) // 224 or start + m * 224 != n:
        raise _Malformed(_BAD_FALLBACK)
    packable = n_prices == n_ins and _sig_packable(a, 7)
    for i in range(m):
        r = a[start + 224 * i:start + 224 * (i + 1)]
        if _word(r, 0) > _U32 or _word(r, 1) > _U64 or _word(r, 2) > _U64 or _word(r, 3) > _U64 \
                or _word(r, 6) > 0xFF:
            raise _Malformed(_BAD_FALLBACK)
        if not _sig_packable(r, 4):
            packable = False
    return packable


def _abi_array(a: bytes, off: int, bits: int) -> tuple[int, int]:
    if off + 32 > len(a):
        raise _Malformed(_BAD_FALLBACK)
    n = _word(a[off:], 0)
    if n > (len(a) - off - 32) // 32:
        raise _Malformed(_BAD_FALLBACK)
    end = off + 32 + 32 * n
    for i in range(n):
        w = int.from_bytes(a[off + 32 + 32 * i:off + 64 + 32 * i], "big")
        ok = (_I64_MIN <= (w - (1 << 256) if w >> 255 else w) <= _I64_MAX) if bits == 0 else not w >> bits
        if not ok:
            raise _Malformed(_BAD_FALLBACK)
    return n, end


def decode_chunk_reason(chunk: bytes, k: int, target: int | None = None) -> tuple[int, int, int, int, int]:
    """``FraudVerifier._walk`` (``decodeChunk`` caught): ``(reason, l1_before, at, l1_total,
    count)``, reason 0 when the chunk (batch data v3: its transactions up to its end, 0..k of
    them, one that must be alone alone) decodes under batch_v2's strict rules (up to
    ``target``), else the contract's REASON_CHUNK_* code (10 structure, 11 a field out of
    range, 12 a non-canonical form, 13 a bad ABI fallback). Stopped at ``target``: ``at`` its
    head and the time before it in place of ``l1_total``."""
    p = t = l1_total = count = 0
    operator = False
    s = [0] * 64
    try:
        while p < len(chunk):
            if count == k:
                raise _Malformed(_UNDECODABLE)
            if count == target:
                return 0, l1_total, p, t, count  # the time before it in place of l1_total
            if _alone(chunk, p):
                operator = True
            p, t, l1 = _tx(chunk, p, t, s)
            if p > len(chunk):
                raise _Malformed(_UNDECODABLE)
            if l1:
                l1_total += 1
            count += 1
        if operator and count > 1:  # none: a matching step
            raise _Malformed(_UNDECODABLE)
    except _Malformed as exc:
        return exc.reason, 0, 0, 0, count
    return 0, l1_total, 0, l1_total, count


def _alone(chunk: bytes, p: int) -> bool:
    """``ChunkDecoder._alone``: head kind in ``ALONE_KINDS`` (2, 4..11), or a fallback whose
    ABI kind is."""
    head = chunk[p]
    kind = head & 0x0F
    if head == 0xFF:
        n, a, ok = _u(chunk, p + 1)
        kind = chunk[a + 31] if ok and n >= 32 and a + 32 <= len(chunk) else 0
    return kind in ALONE_KINDS


def walk_chunk(chunk: bytes, k: int, target: int | None = None) -> tuple[bool, int, int, int]:
    """``(ok, l1_before, at, l1_total)``: ``decode_chunk_reason`` with ok = reason 0."""
    reason, before, at, total, _ = decode_chunk_reason(chunk, k, target)
    return reason == 0, before, at, total


def chunk_count(chunk: bytes, k: int) -> tuple[bool, int]:
    """``(ok, count)``: whether the chunk decodes, and its transactions (up to the first bad one)."""
    reason, _, _, _, count = decode_chunk_reason(chunk, k)
    return reason == 0, count


def framing_reason(head: bytes, *, txs_per_root: int, n_chunks: int, n_roots: int, queue_start: int,
                   queue_end: int, withdrawals_root: bytes = EMPTY_WITHDRAWALS_ROOT) -> tuple[int, int]:
    """``FraudVerifier._framing``: ``(reason, k)``, reason 0 when the (v3) framing is right."""
    if not head or head[0] != 3:
        return 1, 0
    k, p, ok = _u(head, 1)
    if not ok:
        return 2, 0
    c, p, ok = _u(head, p)
    if not ok:
        return 2, 0
    if k == 0 or k != txs_per_root:
        return 3, k
    if c != n_chunks or len(head) != p + 4 * c:
        return 4, k
    if n_roots != max(1, c):
        return 5, k
    if c == 0 and queue_end != queue_start:
        return 23, k
    if c == 0 and withdrawals_root != EMPTY_WITHDRAWALS_ROOT:
        return 40, k
    return 0, k


# ------------------------------------------------------------------------------ the proof
@dataclass
class FraudProof:
    """One ``Rollup.proveFraud`` argument (``as_tuple``) and what it is expected to prove."""

    header: BatchHeader
    prev_header: BatchHeader
    chunk_index: int
    kind: int
    head: bytes
    chunk_hashes: list[bytes]
    chunk: bytes
    state_roots: list[bytes]
    witness: bytes
    reason: int  # the reason code the local judge expects the verifier to return
    tx_index: int | None = None  # in the batch, when one transaction is at fault
    detail: str = ""

    @property
    def batch(self) -> int:
        return self.header.number

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.kind, str(self.kind))

    @property
    def reason_name(self) -> str:
        return REASON_NAMES.get(self.reason, str(self.reason))

    def as_tuple(self) -> tuple:
        return (self.header.as_tuple(), self.prev_header.as_tuple(), self.chunk_index, self.kind, self.head,
                list(self.chunk_hashes), self.chunk, list(self.state_roots), self.witness)

    def calldata_bytes(self) -> int:
        return (640 + len(self.head) + len(self.chunk) + len(self.witness)
                + 32 * (len(self.chunk_hashes) + len(self.state_roots)))


def state_tuple(st: State) -> tuple:
    """The ``EscapeState`` tuple (state-root preimage without its tag) of ``st``."""
    return (st.accounts_tree.root(), st.orders_tree.root(), st.markets_tree.root(), st.l1_queue_pos,
            st.fee_pool, st.insurance_fund, st.next_order_id, len(st.accounts), st.time_ms,
            st.total_deposits, st.total_withdrawals)


def _state_root_of(t: tuple) -> bytes:
    return keccak(encoding.STATE_TAG + abi_encode([STATE_TYPE], [t]))


# ------------------------------------------------------------------------------- rebuild
def _apply_all(state: State, txs: list, stepwise: bool = True) -> None:
    """One v3 chunk's transactions (orders matched in steps), or none: one matching step.
    ``stepwise`` False: v1/v2 data, orders matched at once."""
    if not txs and stepwise:
        apply(state, MatchStep(state.time_ms))  # refused (no change) when no order is matching
    for tx in txs:
        try:
            recover_signer(state, tx)
        except Rejected:
            tx.signer = None
        apply(state, tx, None, stepwise)  # a rejection changes nothing, as in the watchtower


def rebuild_before(reader: RollupReader, number: int, chunk_index: int) -> State:
    """The state rebuilt from L1 data just before chunk ``chunk_index`` of batch ``number``
    (batches ``1..number-1`` whole, then that batch's earlier chunks)."""
    genesis = Genesis.from_json(reader.genesis().config)
    state = State(genesis)
    for ref in reader.batch_refs(1):
        if ref.number > number:
            break
        data = reader.batch_calldata(ref).txs
        if data[:1] != bytes((BATCH_FORMAT_V3,)):
            _apply_all(state, decode_batch(data).txs, stepwise=False)
            continue
        k, table = chunk_table_v3(data)
        first = 0
        for start, end in table[:chunk_index] if ref.number == number else table:
            txs = decode_chunk_v3(data, start, end, k, first)
            _apply_all(state, txs)
            first += len(txs)
    return state


# --------------------------------------------------------------------------- the builder
@dataclass
class _Batch:
    ref: BatchRef
    prev: BatchHeader
    data: bytes
    roots: list[bytes]
    head: bytes
    parts: list[tuple[int, int]]
    records: list  # the posted withdrawal records
    _firsts: list[int] | None = None

    @property
    def chunk_hashes(self) -> list[bytes]:
        return [keccak(self.data[a:b]) for a, b in self.parts]

    def first_tx_index(self, c: int, k: int) -> int:
        """Index in the batch of chunk ``c``'s first transaction: the counts of the chunks
        before it (as the verifier counts them, ``chunk_count``)."""
        if self._firsts is None:
            self._firsts, first = [], 0
            for a, e in self.parts:
                self._firsts.append(first)
                first += chunk_count(self.data[a:e], k)[1]
        return self._firsts[c]

    def proof(self, chunk_index: int, kind: int, witness: bytes, reason: int, **kw) -> FraudProof:
        chunk = b""
        if kind != KIND_FRAMING:
            a, b = self.parts[chunk_index]
            chunk = self.data[a:b]
        return FraudProof(self.ref.header, self.prev, chunk_index, kind, self.head, self.chunk_hashes, chunk,
                          self.roots, witness, reason, **kw)


def _load(reader: RollupReader, number: int) -> _Batch:
    refs = reader.batch_refs(max(1, number - 1), number=None)
    by_number = {r.number: r for r in refs}
    ref = by_number.get(number)
    if ref is None:
        raise FraudError(f"batch {number} is not on chain (last batch {reader.last_batch()})")
    prev = by_number[number - 1].header if number - 1 in by_number else reader.genesis_header()
    cd = reader.batch_calldata(ref)
    head, parts = batch_data_parts(cd.txs)
    return _Batch(ref, prev, cd.txs, cd.state_roots, head, parts, cd.withdrawals)


def _decode_l1(chunk: bytes, at: int) -> tuple[int, int, bytes, int, int]:
    """(tx kind, queueIndex, owner, target, amount) of the L1 transaction whose head is at ``at``
    (read as the contract reads it)."""
    head = chunk[at]
    p = at + 1
    if head & 0x80:
        _, p, _ = _u(chunk, p)
    q, p, _ = _u(chunk, p)
    owner = chunk[p:p + 20]
    target, p, _ = _u(chunk, p + 20)
    amount, p, _ = _u(chunk, p)
    return head & 0x0F, q, owner, target, amount


def _queue_item_reason(chunk: bytes, at: int, expected: int, queue: dict) -> int:
    kind, q, owner, target, amount = _decode_l1(chunk, at)
    if q != expected:
        return 20
    entry = queue.get(expected)
    if entry is None or target > _U32 or amount > _U64:
        return 21
    qkind = QUEUE_DEPOSIT if kind == 1 else QUEUE_FORCED_WITHDRAWAL
    return 0 if queue_item_hash(qkind, expected, owner, target, amount) == entry[1] else 21


def build_proof(reader: RollupReader, number: int, chunk_index: int | None = None, *,
                queue: dict | None = None) -> FraudProof:
    """A proof against batch ``number`` (chunk ``chunk_index``, or the first chunk any kind
    proves, when None). Raises ``FraudError`` when no implemented kind proves it."""
    b = _load(reader, number)
    h = b.ref.header
    n_chunks = len(b.parts)
    reason, k = framing_reason(b.head, txs_per_root=h.txs_per_root, n_chunks=n_chunks, n_roots=len(b.roots),
                               queue_start=h.queue_start, queue_end=h.queue_end, withdrawals_root=h.withdrawals_root)
    if reason:
        return b.proof(0, KIND_FRAMING, b"", reason, detail="the batch data's framing is wrong")
    decoded = None
    if chunk_index is None:
        genesis = Genesis.from_json(reader.genesis().config)
        decoded = DecodedChunks(b.data, b.parts, k)  # decoded once for the data-only kinds and signatures
        judged = records_judgement(b.data, b.parts, k, b.records,
                                   eip712.Domain(genesis.chain_id, genesis.verifying_contract), decoded)
        if judged is not None:
            c = judged.chunk
            first = b.first_tx_index(c, k)
            return b.proof(c, KIND_WITHDRAWALS, judged.witness, judged.reason,
                           tx_index=None if judged.tx_index is None else first + judged.tx_index,
                           detail=judged.detail)
        reused = nonce_judgement(b.data, b.parts, k, decoded)
        if reused is not None:
            c, j = reused.second
            return b.proof(c, KIND_NONCES, reused.witness, 31, tx_index=b.first_tx_index(c, k) + j,
                           detail=reused.detail)
    if queue is None:
        queue = {item.index: (item, hsh) for item, hsh in reader.queue_items()}
    chunks = range(n_chunks) if chunk_index is None else [chunk_index]
    state: State | None = None
    state_at = -1
    for c in chunks:
        a, e = b.parts[c]
        chunk = b.data[a:e]
        first = b.first_tx_index(c, k)
        bad, _, _, l1_total, count = decode_chunk_reason(chunk, k)
        if bad:
            return b.proof(c, KIND_CHUNK_DECODE, b"", bad, tx_index=first,
                           detail=f"chunk {c} does not decode ({REASON_NAMES[bad]})")
        if state is None or state_at != c:
            state = rebuild_before(reader, number, c)
            state_at = c
        state.root()
        pre = state_tuple(state)
        pre_root = b.prev.post_state_root if c == 0 else b.roots[c - 1]
        if _state_root_of(pre) != pre_root:
            raise FraudError(f"batch {number} chunk {c}: the rebuilt pre-state is not the committed pre-root "
                             "(an earlier root is wrong)")
        for j in range(count):
            _, before, at, _ = walk_chunk(chunk, count, j)
            if chunk[at] != 0xFF and chunk[at] & 0x0F in (1, 10):
                r = _queue_item_reason(chunk, at, pre[3] + before, queue)
                if r:
                    witness = abi_encode(["uint256", STATE_TYPE], [j, pre])
                    return b.proof(c, KIND_QUEUE_ITEM, witness, r, tx_index=first + j,
                                   detail=f"transaction {first + j} is not L1 queue item {pre[3] + before}")
        if c == n_chunks - 1 and pre[3] + l1_total != h.queue_end:
            witness = abi_encode([STATE_TYPE], [pre])
            return b.proof(c, KIND_QUEUE_END, witness, 23,
                           detail=f"the batch consumes up to queue item {pre[3] + l1_total}, queueEnd says "
                                  f"{h.queue_end}")
        proof = _match_step_proof(b, c, chunk, state, pre)
        if proof is None:
            proof = _funding_pending_proof(b, c, chunk, state, pre)
        if proof is None:
            proof = _mark_update_proof(reader, b, c, chunk, count, state)
        if proof is None:
            proof = _operator_action_proof(reader, b, c, chunk, count, state)
        if proof is None:
            proof = _collateral_root_proof(b, c, chunk, count, state, pre)
        if proof is None:
            proof = _signature_proof(b, c, k, state, pre, decoded)
        if proof is None:
            proof = _order_proof(b, c, k, state, pre, decoded)
        if proof is not None:
            return proof
        # advance the rebuild past this chunk for the next one
        try:
            txs = decode_chunk_v3(b.data, a, e, k, first)
        except BatchFormatError as exc:
            raise FraudError(f"batch {number} chunk {c} does not decode under batch_v3 ({exc}) in a way the "
                             "verifier's decoder does not check yet") from None
        _apply_all(state, txs)
        state_at = c + 1
        if state.root() == b.roots[c]:
            # right roots around the chunk: its records must sum to the state's withdrawals over it
            summed = records_sum_judgement(b.records, c, pre, state_tuple(state))
            if summed is not None:
                return b.proof(c, KIND_WITHDRAWALS, summed.witness, summed.reason, detail=summed.detail)
        elif not txs:
            raise FraudError(f"batch {number} chunk {c} (a matching step) commits a wrong post-root, but no "
                             "implemented proof kind re-executes matching steps yet")
        else:
            kinds: dict[str, int] = {}
            for tx in txs:
                kinds[type(tx).__name__] = kinds.get(type(tx).__name__, 0) + 1
            held = ", ".join(f"{n} {name}" for name, n in sorted(kinds.items()))
            raise FraudError(f"batch {number} chunk {c} (transactions {first}..{first + len(txs) - 1}: {held}) "
                             "commits a wrong post-root, but no implemented proof kind re-executes all of its "
                             "transactions yet (docs/fraud-proofs.md, \"Not built yet\")")
    raise FraudError(f"no implemented proof kind proves batch {number}"
                     + (f" chunk {chunk_index}" if chunk_index is not None else ""))


@dataclass
class CollateralWitness:
    """What KIND_COLLATERAL_ROOT needs besides the chunk: ``reason`` 31 and the ``index`` of the
    first transaction the core rejects (``post_root`` None), or 0 and the post-root;
    ``accesses`` the account witnesses and ``margins`` the margin witnesses (one per margin
    check: a withdrawal, transfer or forced withdrawal from an account with positions, or a
    liquidation), both in access order."""

    reason: int
    index: int
    post_root: bytes | None
    accesses: list
    margins: list
    creations: list = field(default_factory=list)  # an index witness per account created, in order

    def encode(self, pre: tuple) -> bytes:
        return abi_encode([STATE_TYPE, f"{ACCOUNT_TYPE}[]", f"{MARGIN_TYPE}[]", f"{INDEX_TYPE}[]"],
                          [pre, self.accesses, self.margins, self.creations])


def collateral_witness(state: State, txs: list) -> CollateralWitness | None:
    """Re-execute ``txs`` (Deposits, ForcedWithdrawals, Withdraws, Transfers, SetMarginModes,
    SetAccountFlags and LIQUIDATE operator actions) from ``state`` (left untouched) as
    KIND_COLLATERAL_ROOT does. None when
    the verifier cannot re-execute them: another operator action, or a
    liquidation the core accepts (the verifier proves only that a liquidation is refused). A
    Deposit or Transfer that creates an account carries the account index's witness."""
    st = State.from_blob(state.to_blob())
    accesses: list = []
    margins: list = []
    creations: list = []
    reason = i = 0
    for i, tx in enumerate(txs):
        st.root()
        if type(tx) is Deposit:
            if tx.owner == bytes(20):
                accesses.append(_placeholder_account())
            else:
                aid = st.account_ids.get((tx.owner, tx.subaccount))
                if aid is None and len(st.accounts) < MAX_ACCOUNTS:
                    accesses.append(_new_account_witness(st, tx.owner, tx.subaccount, creations))
                elif aid is None:  # no room: the verifier refuses the creation, as the core does
                    accesses.append(_placeholder_account(len(st.accounts), tx.owner, tx.subaccount))
                else:
                    accesses.append(_account_witness(st, aid))
        elif type(tx) is ForcedWithdrawal:
            if not 0 <= tx.account < len(st.accounts):
                accesses.append(_placeholder_account())
            else:
                a = st.accounts[tx.account]
                accesses.append(_account_witness(st, tx.account))
                denied_anyway = a.owner != tx.owner or tx.amount == 0 or tx.amount > a.collateral
                if a.positions and not denied_anyway and tx.time_ms >= st.time_ms:
                    margins.append(margin_witness(st, tx.account))
        elif type(tx) is OperatorAction:
            if tx.action != OperatorActionKind.LIQUIDATE:
                return None  # another operator action: not re-executed on L1 yet
            if tx.time_ms < st.time_ms:
                pass  # refused for its time, before any access
            elif not 0 <= tx.target < len(st.accounts):
                accesses.append(_placeholder_account())
            else:
                accesses.append(_account_witness(st, tx.target))
                margins.append(margin_witness(st, tx.target))
                if not liquidation_provably_refused(st, tx.target):
                    return None  # a due liquidation: the verifier does not re-execute it
        else:  # a signed Withdraw, Transfer, SetMarginMode or SetAccountFlags
            try:
                recover_signer(st, tx)
            except Rejected:
                tx.signer = None
            if not 0 <= tx.account < len(st.accounts):
                accesses.append(_placeholder_account())
            else:
                src = st.accounts[tx.account]
                accesses.append(_account_witness(st, tx.account))
                if tx.time_ms >= st.time_ms and _signed_prechecks_pass(st, src, tx):
                    if src.positions:
                        margins.append(margin_witness(st, tx.account))
                    if type(tx) is Transfer and apply(State.from_blob(st.to_blob()), _copy_signed(tx)).ok:
                        accesses.append(_dest_witness(st, src, tx, creations))
        r = apply(st, tx)
        if not r.ok:
            reason = 31
            break
    return CollateralWitness(reason, i, (st.root() if not reason else None), accesses, margins, creations)


_COLLATERAL_KINDS = (Deposit, ForcedWithdrawal, Withdraw, Transfer, OperatorAction, SetMarginMode, SetAccountFlags)


def _signed_prechecks_pass(st: State, src, tx) -> bool:
    """The checks the core makes on a signed Withdraw, Transfer or SetMarginMode before its
    margin (the verifier asks for a margin witness exactly when these pass and the account
    holds positions; a SetAccountFlags has no margin check)."""
    if tx.signer != src.owner or not (src.nonce < tx.nonce <= _U64) or type(tx) is SetAccountFlags:
        return False
    if type(tx) is SetMarginMode:
        return tx.mode in (0, 1)  # the margin in the new mode follows
    if not (0 < tx.amount <= _U64):
        return False
    if type(tx) is Transfer and (not 0 <= tx.to_subaccount <= _U32 or tx.to_subaccount == src.subaccount):
        return False
    return tx.amount <= src.collateral


def _copy_signed(tx):
    out = (Transfer(tx.time_ms, tx.account, tx.to_subaccount, tx.amount, tx.nonce, tx.signature)
           if type(tx) is Transfer else Withdraw(tx.time_ms, tx.account, tx.amount, tx.nonce, tx.signature))
    out.signer = tx.signer
    return out


def liquidation_provably_refused(st: State, account_id: int) -> bool:
    """True when the core refuses to liquidate ``account_id`` for a reason the verifier
    re-computes (``check_liquidatable``: equity at or above maintenance, or an unconfirmed
    index jump on an underlying it holds), False when the liquidation is due."""
    try:
        check_liquidatable(st, st.accounts[account_id])
    except Rejected:
        return True
    return False


def _collateral_root_proof(b: _Batch, c: int, chunk: bytes, count: int, state: State, pre: tuple, *,
                           force: bool = False) -> FraudProof | None:
    """KIND_COLLATERAL_ROOT when chunk ``c`` holds only Deposits, ForcedWithdrawals, Withdraws,
    Transfers, SetMarginModes, SetAccountFlags and refused LIQUIDATEs, and re-executing them
    does not give the committed post-root (reason 30) or the core rejects one (reason 31).
    ``force``: build it even for an honest chunk (tests)."""
    k = b.ref.header.txs_per_root
    try:
        txs = decode_chunk_v3(chunk, 0, len(chunk), k)
    except BatchFormatError:
        return None
    if len(txs) != count:
        return None
    first = b.first_tx_index(c, k)
    if not txs or any(type(tx) not in _COLLATERAL_KINDS for tx in txs):
        return None
    got = collateral_witness(state, txs)
    if got is None:
        return None
    reason, i, post = got.reason, got.index, got.post_root
    if not reason:
        if post != b.roots[c]:
            reason = 30
    if not reason and not force:
        return None
    witness = got.encode(pre)
    detail = (f"re-executing the chunk's {len(txs)} deposits/withdrawals gives another root than the committed "
              f"0x{b.roots[c].hex()}" if reason == 30 else f"the core rejects transaction {first + i}"
              if reason == 31 else "honest")
    return b.proof(c, KIND_COLLATERAL_ROOT, witness, reason,
                   tx_index=first + (i if reason == 31 else 0), detail=detail)


def signature_fault(state: State, txs: list) -> tuple[int, int, bytes | None] | None:
    """KIND_SIGNATURE's question for one chunk (``txs``: ``[(packed, tx)]``) at its pre-state:
    the first packed user-signed transaction naming an account that exists in ``state`` whose
    EIP-712 signer (None: it does not recover) is not the account's owner, or whose nonce is not
    above the account's, as ``(index, account, signer)``; None when there is none."""
    for j, (packed, tx) in enumerate(txs):
        if not packed or type(tx) not in SIGNED_KINDS or not 0 <= tx.account < len(state.accounts):
            continue
        try:
            signer = eip712.recover_signer(state.domain, tx)
        except Rejected:
            signer = None
        acct = state.accounts[tx.account]
        if signer != acct.owner or tx.nonce <= acct.nonce:
            return j, tx.account, signer
    return None


def _signature_proof(b: _Batch, c: int, k: int, state: State, pre: tuple,
                     decoded: DecodedChunks | None) -> FraudProof | None:
    """KIND_SIGNATURE (31) when chunk ``c`` holds a packed signed transaction not signed by its
    account's owner (``signature_fault``), whatever else the chunk holds."""
    txs = (decoded or DecodedChunks(b.data, b.parts, k)).txs(c)
    found = signature_fault(state, txs or [])
    if found is None:
        return None
    j, account, signer = found
    state.root()
    witness = abi_encode(["uint256", STATE_TYPE, ACCOUNT_TYPE], [j, pre, _account_witness(state, account)])
    first = b.first_tx_index(c, k)
    acct, tx = state.accounts[account], txs[j][1]
    what = f"transaction {first + j} ({type(tx).__name__} of account {account})"
    if signer != acct.owner:
        who = "does not recover" if signer is None else f"recovers to 0x{signer.hex()}"
        detail = f"{what}: its signature {who}, not the account's owner 0x{acct.owner.hex()}"
    else:
        detail = f"{what}: its nonce {tx.nonce} is not above the account's {acct.nonce} before the chunk (a replay)"
    return b.proof(c, KIND_SIGNATURE, witness, 31, tx_index=first + j, detail=detail)


def _order_proof(b: _Batch, c: int, k: int, state: State, pre: tuple,
                 decoded: DecodedChunks | None) -> FraudProof | None:
    """KIND_ORDER (31) when chunk ``c`` holds a packed Order the core rejects for a rule its
    fields and its market's leaf show (``order_witness.order_fault``)."""
    txs = (decoded or DecodedChunks(b.data, b.parts, k)).txs(c)
    found = order_fault(state, txs or [])
    if found is None:
        return None
    j, rule = found
    tx = txs[j][1]
    first = b.first_tx_index(c, k)
    return b.proof(c, KIND_ORDER, order_witness(state, pre, j, tx.instrument), 31, tx_index=first + j,
                   detail=f"transaction {first + j} (Order of account {tx.account} in instrument {tx.instrument}): "
                          f"{rule}, which the core refuses")


def _operator_chunk(b: _Batch, c: int, chunk: bytes, count: int, head_kind: int, proof_kind: int, name: str):
    """For a chunk of one operator transaction of batch_v2 kind ``head_kind`` (7 MarkUpdate, 8
    OperatorAction): the decoded transaction when packed, or the proof (reason 31) when in the
    ABI fallback, which the core never accepts (every accepted one packs); None for any other
    chunk."""
    if count != 1 or not _alone(chunk, 0):
        return None
    if chunk[0] == 0xFF:
        _, a, _ = _u(chunk, 1)
        if chunk[a + 31] != head_kind:
            return None
        first = b.first_tx_index(c, b.ref.header.txs_per_root)
        return b.proof(c, proof_kind, b"", 31, tx_index=first,
                       detail=f"transaction {first} is a {name} in the ABI fallback: the core accepts none")
    if chunk[0] & 0x0F != head_kind:
        return None
    (tx,) = decode_chunk_v3(chunk, 0, len(chunk), b.ref.header.txs_per_root)
    return tx


def _mark_update_proof(reader: RollupReader, b: _Batch, c: int, chunk: bytes, count: int, state: State, *,
                       force: bool = False) -> FraudProof | None:
    """KIND_MARK_UPDATE when chunk ``c`` is one MarkUpdate that the core rejects (31; always
    so in the ABI fallback, as every accepted MarkUpdate packs) or whose committed post-root
    is not the re-executed one (30). ``force``: build it even for an honest chunk (tests)."""
    first = b.first_tx_index(c, b.ref.header.txs_per_root)
    found = _operator_chunk(b, c, chunk, count, 7, KIND_MARK_UPDATE, "MarkUpdate")
    if not isinstance(found, MarkUpdate):
        return found
    tx = found
    check_params_hash(Genesis.from_json(reader.genesis().config), reader.params_hash())
    j = mark_judgement(state, tx)
    reason = j.reason or (30 if j.post_root != b.roots[c] else 0)
    if not reason and not force:
        return None
    detail = j.detail if reason == 31 else (
        f"re-executing MarkUpdate {first} gives post-root 0x{j.post_root.hex()}, not the committed "
        f"0x{b.roots[c].hex()}" if reason == 30 else "honest")
    return b.proof(c, KIND_MARK_UPDATE, j.witness, reason, tx_index=first, detail=detail)


def _operator_action_proof(reader: RollupReader, b: _Batch, c: int, chunk: bytes, count: int, state: State, *,
                           force: bool = False) -> FraudProof | None:
    """KIND_OPERATOR_ACTION when chunk ``c`` is one OperatorAction that the core rejects
    (re-executed on a copy of ``state``) for a reason the MarkVerifier's ``judgeAction`` shows
    (``action_judgement``; always so in the ABI fallback, as every accepted OperatorAction
    packs); None otherwise (e.g. a LIQUIDATE of a healthy account: KIND_COLLATERAL_ROOT's).
    ``force``: build it even when it would not prove (tests)."""
    first = b.first_tx_index(c, b.ref.header.txs_per_root)
    found = _operator_chunk(b, c, chunk, count, 8, KIND_OPERATOR_ACTION, "OperatorAction")
    if not isinstance(found, OperatorAction):
        return found
    tx = found
    after = State.from_blob(state.to_blob())
    try:
        recover_signer(after, tx)
    except Rejected:
        tx.signer = None
    receipt = apply(after, tx)
    if receipt.ok and not force and tx.action not in REEXECUTED_ACTIONS:
        return None
    j = action_judgement(state, tx, b.roots[c])
    if j.reason == 0 and not force:
        return None
    if j.reason == 31 and receipt.ok:
        raise FraudError(f"batch {b.ref.header.number} chunk {c}: action_judgement rejects an OperatorAction "
                         f"the core accepts ({j.detail})")
    check_params_hash(Genesis.from_json(reader.genesis().config), reader.params_hash())
    detail = (f"the core rejects transaction {first}: {j.detail} ({receipt.message})" if j.reason == 31
              else f"transaction {first}: {j.detail}" if j.reason == 30 else "not provably rejected")
    return b.proof(c, KIND_OPERATOR_ACTION, j.witness, j.reason, tx_index=first, detail=detail)


def _funding_pending_proof(b: _Batch, c: int, chunk: bytes, state: State, pre: tuple) -> FraudProof | None:
    """KIND_FUNDING_PENDING when a market of the chunk's pre-state is being paid (funding, or
    an option's settlement) and the chunk is not one packed FUNDING_PAY or SETTLE_POSITION (the
    core accepts nothing else then)."""
    if not state.paying or _is_funding_pay(chunk):
        return None
    mid = min(state.paying)
    present, siblings = compress_proof(state.markets_tree.proof(mid))
    witness = abi_encode([PENDING_WITNESS_TYPE], [(pre, State.market_leaf(state.markets[mid]), present, siblings)])
    first = b.first_tx_index(c, b.ref.header.txs_per_root)
    return b.proof(c, KIND_FUNDING_PENDING, witness, 31, tx_index=first,
                   detail=f"instrument {mid}'s holders are being paid, and chunk {c} (transaction {first} on) is not "
                          "one FUNDING_PAY or SETTLE_POSITION")


def _empty_step_witness() -> tuple:
    """A StepWitness that ``judgeStep`` does not read (no order pending, or a chunk that holds
    transactions)."""
    meeting = (b"", 0, [], b"", 0, [], b"", 0, [], b"", 0, [], ([], []), b"", 0, [])
    return (b"", 0, [], meeting, b"", 0, [], b"", 0, [], b"", 0, [])


def _match_step_proof(b: _Batch, c: int, chunk: bytes, state: State, pre: tuple, *,
                      force: bool = False) -> FraudProof | None:
    """KIND_MATCH_STEP (``MatchVerifier.judgeStep``): a matching step (an empty chunk) with no
    order matching, a chunk of transactions while one is (31), or a step whose re-execution is
    not the committed post-root (30); None when the chunk is neither a step nor held up by one
    (``force``: the proof anyway, reason 0: what a griefer would send)."""
    from .match_witness import STEP_WITNESS_TYPE, match_step_mirror, step_inputs

    p = state.pending
    if chunk and p is None and not force:
        return None
    oid = state.next_order_id - 1
    o = state.orders.get(oid)
    leaf = p.leaf() if p is not None else State.order_leaf(o) if o is not None else b""
    present, siblings = compress_proof(state.orders_tree.proof(oid))
    first = b.first_tx_index(c, b.ref.header.txs_per_root)
    step, reason = _empty_step_witness(), 31
    if chunk and p is None:
        reason, detail = 0, "honest"
    elif chunk:
        detail = f"order {oid} is matching, and chunk {c} (transaction {first} on) is not one of its matching steps"
    elif p is None:
        detail = f"chunk {c} is a matching step, and no order is matching"
    else:
        done = match_step_mirror(state)
        if done.after.root() == b.roots[c] and not force:
            return None
        _, step = step_inputs(state, done)
        reason, detail = 30, (f"re-executing matching step {p.met + 1} of order {oid} (chunk {c}) gives another root "
                              f"than the committed 0x{b.roots[c].hex()}")
        if done.after.root() == b.roots[c]:
            reason, detail = 0, "honest"
    witness = abi_encode([f"({STATE_TYPE},bytes,uint256,bytes32[],{STEP_WITNESS_TYPE})"],
                         [(pre, leaf, present, siblings, step)])
    return b.proof(c, KIND_MATCH_STEP, witness, reason, tx_index=first if chunk else None, detail=detail)


def _is_funding_pay(chunk: bytes) -> bool:
    """FundingVerifier._isPayStep: the chunk's first transaction is a packed OperatorAction
    whose action byte is FUNDING_PAY or SETTLE_POSITION."""
    if not chunk or chunk[0] == 0xFF or chunk[0] & 0x0F != 8:
        return False
    p = 1
    if chunk[0] & 0x80:
        while p < len(chunk) and chunk[p] & 0x80:
            p += 1
        p += 1
    return p < len(chunk) and chunk[p] in (OperatorActionKind.FUNDING_PAY, OperatorActionKind.SETTLE_POSITION)


def _account_witness(st: State, account_id: int) -> tuple:
    from eth_abi import decode as abi_decode

    acct = st.accounts[account_id]
    leaf = st.account_leaf(acct)
    types = ["bytes32", "uint32", "address", "uint32", "int256", "uint64", "uint8", "uint8", f"{_POSITION_TYPE}[]"]
    fields = list(abi_decode(types, leaf)[1:])
    fields[1] = to_checksum_address(fields[1])
    present, kept = compress_proof(st.accounts_tree.proof(account_id))
    return (*fields, present, kept)


def _dest_witness(st: State, src, tx, creations: list) -> tuple:
    """The destination's leaf and proof after the source's debit (what the verifier sees); a new
    subaccount's placeholder, with its index witness appended to ``creations``."""
    saved = (src.collateral, src.nonce)
    src.collateral -= tx.amount
    src.nonce = tx.nonce
    st.dirty_accounts.add(src.id)
    st.root()
    dest = st.account_ids.get((src.owner, tx.to_subaccount))
    if dest is None:
        w = _new_account_witness(st, src.owner, tx.to_subaccount, creations)
    else:
        w = _account_witness(st, dest)
    src.collateral, src.nonce = saved
    st.dirty_accounts.add(src.id)
    st.root()
    return w


def _new_account_witness(st: State, owner: bytes, subaccount: int, creations: list) -> tuple:
    """The witness of the account (owner, subaccount) that ``st`` does not hold yet, created at
    the next id as FraudVerifier._openOrCreate does: the index entry before its key (proven,
    then pointed at the key), the new entry's empty leaf, then the account's empty leaf, each
    proven against the accounts root after the updates before it. Appends the index witness to
    ``creations``; returns the placeholder account (zero fields, the empty leaf's proof)."""
    st.root()
    tree = st.accounts_tree.copy()
    key = encoding.account_key(owner, subaccount)
    pred = st.index_predecessor(key)
    pred_key, pred_next = st.index_entry(pred)
    pred_present, pred_kept = compress_proof(tree.proof(ACCOUNT_INDEX_BASE + pred))
    tree.set(ACCOUNT_INDEX_BASE + pred, keccak(encoding.encode_account_index_leaf(pred_key, key)))
    n = len(st.accounts)
    new_present, new_kept = compress_proof(tree.proof(ACCOUNT_INDEX_BASE + n))
    tree.set(ACCOUNT_INDEX_BASE + n, keccak(encoding.encode_account_index_leaf(key, pred_next)))
    creations.append((pred, pred_key, pred_next, pred_present, pred_kept, new_present, new_kept))
    return _placeholder_account(n, owner, subaccount, *compress_proof(tree.proof(n)))


def _placeholder_account(account_id: int = 0, owner: bytes = bytes(20), subaccount: int = 0, present: int = 0,
                         kept: list | None = None) -> tuple:
    """An account witness with zero fields: the zero owner's and an unknown account's (no
    proof), or a new account's (the proof of its empty leaf)."""
    return (account_id, to_checksum_address(owner), subaccount, 0, 0, 0, 0, [], present, kept or [])


# --------------------------------------------------------------------------- find + submit
def find_fraud(source: Any, rollup_address: str | bytes, *, from_block: int | None = None,
               workers: int = 1) -> tuple[Any, FraudProof | None]:
    """``(verify report, proof or None)``: rebuild from L1, and on the first mismatch build
    its proof (``FraudError`` when no implemented kind proves it)."""
    from .verify import verify

    report = verify(source, rollup_address, progress=None, workers=workers, mode="thread", from_block=from_block)
    if report.ok or report.mismatch is None:
        return report, None
    m = report.mismatch
    if m.batch <= report.last_finalized_batch:
        raise FraudError(f"the mismatch is in finalized batch {m.batch}: too late to prove")
    reader = RollupReader(source, rollup_address, from_block=from_block)
    return report, build_proof(reader, m.batch)


@dataclass
class Submitted:
    proof: FraudProof
    commit_gas: int
    prove_gas: int
    reason: int
    reward: int
    burnt: int
    batches_reverted: int
    frozen: bool
    salt: bytes = field(repr=False, default=b"")

    def to_dict(self) -> dict:
        return {"batch": self.proof.batch, "chunk": self.proof.chunk_index, "tx_index": self.proof.tx_index,
                "kind": self.proof.kind_name, "reason": REASON_NAMES.get(self.reason, str(self.reason)),
                "detail": self.proof.detail, "commit_gas": self.commit_gas, "prove_gas": self.prove_gas,
                "reward_wei": self.reward, "burnt_wei": self.burnt, "batches_reverted": self.batches_reverted,
                "frozen": self.frozen}


def _wait_past(client, block: int, wait_s: float) -> None:
    """Until the chain's head is past ``block`` (gas estimation runs on the head: a reveal
    estimated in the commitment's block reverts ``RevealTooEarly``). A dev chain is asked to
    mine a block; a real one is polled."""
    import time

    deadline = time.monotonic() + wait_s
    while client.w3.eth.block_number <= block:
        mine = getattr(client.chain, "mine", None)
        if mine is not None:
            try:
                mine()
                continue
            except Exception:  # not a dev node: wait for the next block
                pass
        if time.monotonic() > deadline:
            raise FraudError(f"no block after the commitment's block {block} within {wait_s} s")
        time.sleep(0.5)


def submit_proof(client, proof: FraudProof, *, salt: bytes | None = None, wait_s: float = 120) -> Submitted:
    """Commit (``commitChallenge``), then reveal (``proveFraud``) once the chain is past the
    commitment's block, from ``client``'s sender (an ``L1Client``)."""
    salt = salt if salt is not None else os.urandom(32)
    c = client.commit_challenge(proof.batch, proof.chunk_index, salt)
    _wait_past(client, c.block_number, wait_s)
    r = client.prove_fraud(proof.as_tuple(), salt)
    ev = r.value
    return Submitted(proof, c.gas_used, r.gas_used, int(ev["reason"]), int(ev["reward"]), int(ev["burnt"]),
                     int(ev["batchesReverted"]), client.frozen(), salt)
