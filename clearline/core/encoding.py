"""Canonical Solidity-ABI encoding of transactions and Merkle leaves (DESIGN.md rule 2).

Why ABI: the L1 contracts decode the same bytes (batch calldata, fraud proofs, escape
proofs) with ``abi.decode``, so one encoding serves the journal, the batches and Solidity.

Transactions are ``abi.encode(uint8 kind, uint64 timeMs, <EIP-712 fields in signing order>,
bytes32 r, bytes32 s, uint8 v)``; ``Deposit`` has no signature, and ``MarkUpdate`` carries
four dynamic arrays: ``uint32[] instruments, uint64[] prices, int64[] riskArrays,
(uint32,uint64,uint64,uint64,bytes32,bytes32,uint8)[] reports`` -- the risk arrays flattened
in instrument order (empty, or 16 per instrument), the reports in place of the signed
``reportsHash``, each as ``clearline.oracle.report`` encodes it. ``signer`` is derived data
and never encoded. An absent signature (``b""``) is written as r = s = 0, v = 0; a 65-byte
all-zero signature is therefore refused by ``encode_tx`` so decoding stays the exact inverse.

Decoding is strict: only the unique canonical encoding of a transaction is accepted (exact
length, zero padding, canonical offsets); anything else is ``Rejected(MALFORMED)``, and an
unknown ``kind`` is ``Rejected(UNKNOWN_TX_KIND)``. So ``encode_tx(decode_tx(b)) == b``
whenever ``decode_tx`` succeeds.

The fixed layouts are hand-rolled with ``struct`` (one pack/unpack per transaction: every
input is journaled). The tests pin them against ``eth_abi``.

Leaves: out-of-range leaf values mean the state itself breaks its rules, so leaf encoders
raise ``InvariantBroken`` (halt), not ``Rejected``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from .errors import ErrorCode, InvariantBroken, Rejected
from .hashing import keccak, tag
from .txs import (
    Cancel,
    Deposit,
    ForcedWithdrawal,
    MarkUpdate,
    OperatorAction,
    Order,
    Replace,
    SetAccountFlags,
    SetMarginMode,
    Transfer,
    Tx,
    TxKind,
    Withdraw,
)

__all__ = [
    "ACCOUNT_INDEX_TAG",
    "ACCOUNT_TAG",
    "MARKET_TAG",
    "ORDER_TAG",
    "PENDING_ORDER_TAG",
    "STATE_TAG",
    "UNDERLYING_TAG",
    "account_key",
    "decode_tx",
    "encode_account_index_leaf",
    "encode_account_leaf",
    "encode_market_leaf",
    "encode_order_leaf",
    "encode_pending_order_leaf",
    "encode_state",
    "encode_tx",
    "encode_underlying_leaf",
    "leaf_hash",
    "market_leaf_state",
    "market_leaf_terms",
    "state_root",
]

ACCOUNT_TAG = tag("clearline.account.v1")
ORDER_TAG = tag("clearline.order.v1")
PENDING_ORDER_TAG = tag("clearline.pending-order.v1")  # an incoming order between its matching steps
MARKET_TAG = tag("clearline.market.v1")
UNDERLYING_TAG = tag("clearline.underlying.v1")
STATE_TAG = tag("clearline.state.v1")
ACCOUNT_INDEX_TAG = tag("clearline.account_index.v1")

# Scenarios per risk array; the same number as ``requirements.N_SCENARIOS`` and
# ``clearline.risk.N_SCENARIOS`` (a test keeps the three equal).
_N_SCENARIOS = 16

# ---------------------------------------------------------------------------------------
# transactions

# 32-byte ABI words as struct codes: zero padding + big-endian value (range-checked by pack).
_U8, _U32, _U64, _ADDR, _B32 = "31xB", "28xI", "24xQ", "12x20s", "32s"
_SIG = (_B32, _B32, _U8)  # r, s, v

_ZERO_SIG = bytes(65)
_ZERO_31 = bytes(31)  # the padding of the kind word
_EMPTY_RSV = (bytes(32), bytes(32), 0)


def _layout(*codes: str) -> tuple[struct.Struct, int]:
    """A static layout and the mask of its padding bits (must be zero when decoding)."""
    s = struct.Struct(">" + "".join(codes))
    mask = 0
    for code in codes:
        mask <<= 256
        if code == _U8:
            mask |= ((1 << 248) - 1) << 8
        elif code == _U32:
            mask |= ((1 << 224) - 1) << 32
        elif code == _U64:
            mask |= ((1 << 192) - 1) << 64
        elif code == _ADDR:
            mask |= ((1 << 96) - 1) << 160
        elif code != _B32:
            raise ValueError(f"unknown word code {code!r}")
    if s.size != 32 * len(codes):
        raise ValueError("layout is not a whole number of words")
    return s, mask


_DEPOSIT, _DEPOSIT_MASK = _layout(_U8, _U64, _U64, _ADDR, _U32, _U64)
_ORDER, _ORDER_MASK = _layout(
    _U8, _U64, _U32, _U32, _U8, _U8, _U8, _U8, _U8, _U64, _U64, _U64, _U64, _U64, *_SIG
)
_CANCEL, _CANCEL_MASK = _layout(_U8, _U64, _U32, _U8, _U32, _U64, _U64, _U64, *_SIG)
_REPLACE, _REPLACE_MASK = _layout(_U8, _U64, _U32, _U64, _U64, _U64, _U64, *_SIG)
_WITHDRAW, _WITHDRAW_MASK = _layout(_U8, _U64, _U32, _U64, _U64, *_SIG)
_TRANSFER, _TRANSFER_MASK = _layout(_U8, _U64, _U32, _U32, _U64, _U64, *_SIG)
_OPERATOR, _OPERATOR_MASK = _layout(_U8, _U64, _U8, _U32, _U64, _U64, *_SIG)
_MARGIN_MODE, _MARGIN_MODE_MASK = _layout(_U8, _U64, _U32, _U8, _U64, *_SIG)
_ACCOUNT_FLAGS = _MARGIN_MODE  # (kind, timeMs, account, flags, nonce, r, s, v): the same words
# MarkUpdate head: kind, timeMs, timestamp, offset(instruments), offset(prices),
# offset(riskArrays), offset(reports), r, s, v
_MARK_HEAD, _MARK_HEAD_MASK = _layout(_U8, _U64, _U64, _B32, _B32, _B32, _B32, *_SIG)
_MARK_HEAD_SIZE = _MARK_HEAD.size  # 320
_REPORT_SIZE = 224  # clearline.oracle.report.REPORT_SIZE: 7 static words per report


def _split_sig(sig: bytes) -> tuple[bytes, bytes, int]:
    if len(sig) == 65:
        if sig == _ZERO_SIG:
            raise Rejected(ErrorCode.MALFORMED, "all-zero signature: use b'' for none")
        return sig[:32], sig[32:64], sig[64]
    if len(sig) == 0:
        return _EMPTY_RSV
    raise Rejected(ErrorCode.MALFORMED, "signature must be 65 bytes or empty")


def _join_sig(r: bytes, s: bytes, v: int) -> bytes:
    if v == 0 and r == _EMPTY_RSV[0] and s == _EMPTY_RSV[1]:
        return b""
    return r + s + bytes((v,))


def _enc_deposit(tx: Deposit) -> bytes:
    if not isinstance(tx.owner, bytes) or len(tx.owner) != 20:
        raise Rejected(ErrorCode.MALFORMED, "owner must be a 20-byte address")
    return _DEPOSIT.pack(TxKind.DEPOSIT, tx.time_ms, tx.queue_index, tx.owner, tx.subaccount,
                         tx.amount)


def _enc_forced(tx: ForcedWithdrawal) -> bytes:
    """Same layout as a deposit: (kind, timeMs, queueIndex, owner, account, amount)."""
    if not isinstance(tx.owner, bytes) or len(tx.owner) != 20:
        raise Rejected(ErrorCode.MALFORMED, "owner must be a 20-byte address")
    return _DEPOSIT.pack(TxKind.FORCED_WITHDRAWAL, tx.time_ms, tx.queue_index, tx.owner, tx.account, tx.amount)


def _enc_order(tx: Order) -> bytes:
    return _ORDER.pack(TxKind.ORDER, tx.time_ms, tx.account, tx.instrument, tx.side,
                       tx.order_type, tx.tif, tx.flags, tx.stp, tx.price, tx.size, tx.expiry,
                       tx.client_id, tx.nonce, *_split_sig(tx.signature))


def _enc_cancel(tx: Cancel) -> bytes:
    return _CANCEL.pack(TxKind.CANCEL, tx.time_ms, tx.account, tx.scope, tx.instrument,
                        tx.order_id, tx.client_id, tx.nonce, *_split_sig(tx.signature))


def _enc_replace(tx: Replace) -> bytes:
    return _REPLACE.pack(TxKind.REPLACE, tx.time_ms, tx.account, tx.order_id, tx.price,
                         tx.size, tx.nonce, *_split_sig(tx.signature))


def _enc_withdraw(tx: Withdraw) -> bytes:
    return _WITHDRAW.pack(TxKind.WITHDRAW, tx.time_ms, tx.account, tx.amount, tx.nonce,
                          *_split_sig(tx.signature))


def _enc_transfer(tx: Transfer) -> bytes:
    return _TRANSFER.pack(TxKind.TRANSFER, tx.time_ms, tx.account, tx.to_subaccount,
                          tx.amount, tx.nonce, *_split_sig(tx.signature))


def _enc_operator(tx: OperatorAction) -> bytes:
    return _OPERATOR.pack(TxKind.OPERATOR, tx.time_ms, tx.action, tx.target, tx.arg,
                          tx.timestamp, *_split_sig(tx.signature))


def _enc_margin_mode(tx: SetMarginMode) -> bytes:
    return _MARGIN_MODE.pack(TxKind.SET_MARGIN_MODE, tx.time_ms, tx.account, tx.mode, tx.nonce,
                             *_split_sig(tx.signature))


def _enc_account_flags(tx: SetAccountFlags) -> bytes:
    return _ACCOUNT_FLAGS.pack(TxKind.SET_ACCOUNT_FLAGS, tx.time_ms, tx.account, tx.flags, tx.nonce,
                               *_split_sig(tx.signature))


def _flat_risk(tx: MarkUpdate) -> list:
    """``tx.risk_arrays`` flattened in order: empty, or exactly one array of ``_N_SCENARIOS``
    values per instrument (anything else -> ``Rejected(MALFORMED)``)."""
    arrays = tx.risk_arrays
    if not isinstance(arrays, (list, tuple)):
        raise Rejected(ErrorCode.MALFORMED, "MarkUpdate risk_arrays must be a list")
    if not arrays:
        return []
    if len(arrays) != len(tx.instruments):
        raise Rejected(ErrorCode.MALFORMED, "MarkUpdate risk_arrays: none or one per instrument")
    flat: list = []
    for array in arrays:
        if not isinstance(array, (list, tuple)) or len(array) != _N_SCENARIOS:
            raise Rejected(ErrorCode.MALFORMED,
                           f"MarkUpdate risk array must be a list of {_N_SCENARIOS} int64")
        flat.extend(array)
    return flat


_NEG_PAD, _POS_PAD = b"\xff" * 24, bytes(24)


def _int64_words(values: list) -> bytes:
    """int64 values as 32-byte two's complement words (sign-extended), concatenated.
    The ``q`` pack range-checks every value (out of int64 / non-int -> struct.error)."""
    packed = struct.pack(f">{len(values)}q", *values)
    return b"".join((_NEG_PAD if packed[i] & 0x80 else _POS_PAD) + packed[i:i + 8]
                    for i in range(0, len(packed), 8))


def _enc_mark(tx: MarkUpdate) -> bytes:
    # Imported here, not at module level: clearline.oracle.report imports the core.
    from clearline.oracle.report import encode_report

    ins, prices, reports = tx.instruments, tx.prices, tx.reports
    if not isinstance(ins, (list, tuple)) or not isinstance(prices, (list, tuple)):
        raise Rejected(ErrorCode.MALFORMED, "MarkUpdate arrays must be lists")
    if not isinstance(reports, (list, tuple)):
        raise Rejected(ErrorCode.MALFORMED, "MarkUpdate reports must be a list")
    risk = _flat_risk(tx)
    n_ins, n_prices, n_risk = len(ins), len(prices), len(risk)
    off_ins = _MARK_HEAD_SIZE
    off_prices = off_ins + 32 + 32 * n_ins
    off_risk = off_prices + 32 + 32 * n_prices
    off_reports = off_risk + 32 + 32 * n_risk
    head = _MARK_HEAD.pack(TxKind.MARK_UPDATE, tx.time_ms, tx.timestamp,
                           off_ins.to_bytes(32, "big"), off_prices.to_bytes(32, "big"),
                           off_risk.to_bytes(32, "big"), off_reports.to_bytes(32, "big"),
                           *_split_sig(tx.signature))
    return b"".join((
        head,
        struct.pack(">24xQ" + "28xI" * n_ins, n_ins, *ins),
        struct.pack(">24xQ" + "24xQ" * n_prices, n_prices, *prices),
        n_risk.to_bytes(32, "big"),
        _int64_words(risk),
        len(reports).to_bytes(32, "big"),
        *(encode_report(r) for r in reports),  # TypeError for a non-PriceReport
    ))


_ENCODERS = {
    Deposit: _enc_deposit,
    ForcedWithdrawal: _enc_forced,
    Order: _enc_order,
    Cancel: _enc_cancel,
    Replace: _enc_replace,
    Withdraw: _enc_withdraw,
    Transfer: _enc_transfer,
    MarkUpdate: _enc_mark,
    OperatorAction: _enc_operator,
    SetMarginMode: _enc_margin_mode,
    SetAccountFlags: _enc_account_flags,
}


def encode_tx(tx: Tx) -> bytes:
    """Canonical ABI bytes of ``tx`` (what is journaled and posted as batch calldata).

    Out-of-range or non-integer fields, a bad owner address or a signature that is neither
    65 bytes nor empty raise ``Rejected(MALFORMED)``. A non-transaction is a ``TypeError``.
    """
    try:
        encoder = _ENCODERS[type(tx)]
    except KeyError:
        raise TypeError(f"{type(tx).__name__} is not a transaction") from None
    try:
        return encoder(tx)
    except struct.error as exc:
        raise Rejected(ErrorCode.MALFORMED, f"{type(tx).__name__}: {exc}") from None
    except (TypeError, OverflowError) as exc:  # e.g. non-bytes signature, huge list length
        raise Rejected(ErrorCode.MALFORMED, f"{type(tx).__name__}: {exc}") from None


def _check_static(data: bytes, layout: struct.Struct, mask: int) -> tuple:
    """``layout.unpack(data)`` of canonical bytes. ``mask`` marks the padding bits, which must
    be zero; checked as ``pack(unpack(data)) == data`` (unpack skips the pad bytes, pack writes
    them as zeros: equal exactly when ``int(data) & mask == 0``, and ~2x faster than building
    the int; tests/property/test_fast_leaves.py pins the two)."""
    if len(data) != layout.size:
        raise Rejected(ErrorCode.MALFORMED, f"expected {layout.size} bytes, got {len(data)}")
    fields = layout.unpack(data)
    if layout.pack(*fields) != data:
        raise Rejected(ErrorCode.MALFORMED, "non-canonical padding")
    return fields


def _dec_deposit(data: bytes) -> Deposit:
    _, time_ms, queue_index, owner, subaccount, amount = _check_static(
        data, _DEPOSIT, _DEPOSIT_MASK
    )
    return Deposit(time_ms, queue_index, owner, subaccount, amount)


def _dec_forced(data: bytes) -> ForcedWithdrawal:
    _, time_ms, queue_index, owner, account, amount = _check_static(data, _DEPOSIT, _DEPOSIT_MASK)
    return ForcedWithdrawal(time_ms, queue_index, owner, account, amount)


def _dec_order(data: bytes) -> Order:
    f = _check_static(data, _ORDER, _ORDER_MASK)
    return Order(*f[1:14], signature=_join_sig(f[14], f[15], f[16]))


def _dec_cancel(data: bytes) -> Cancel:
    f = _check_static(data, _CANCEL, _CANCEL_MASK)
    return Cancel(*f[1:8], signature=_join_sig(f[8], f[9], f[10]))


def _dec_replace(data: bytes) -> Replace:
    f = _check_static(data, _REPLACE, _REPLACE_MASK)
    return Replace(*f[1:7], signature=_join_sig(f[7], f[8], f[9]))


def _dec_withdraw(data: bytes) -> Withdraw:
    f = _check_static(data, _WITHDRAW, _WITHDRAW_MASK)
    return Withdraw(*f[1:5], signature=_join_sig(f[5], f[6], f[7]))


def _dec_transfer(data: bytes) -> Transfer:
    f = _check_static(data, _TRANSFER, _TRANSFER_MASK)
    return Transfer(*f[1:6], signature=_join_sig(f[6], f[7], f[8]))


def _dec_operator(data: bytes) -> OperatorAction:
    f = _check_static(data, _OPERATOR, _OPERATOR_MASK)
    return OperatorAction(*f[1:6], signature=_join_sig(f[6], f[7], f[8]))


def _dec_margin_mode(data: bytes) -> SetMarginMode:
    f = _check_static(data, _MARGIN_MODE, _MARGIN_MODE_MASK)
    return SetMarginMode(*f[1:5], signature=_join_sig(f[5], f[6], f[7]))


def _dec_account_flags(data: bytes) -> SetAccountFlags:
    f = _check_static(data, _ACCOUNT_FLAGS, _MARGIN_MODE_MASK)
    return SetAccountFlags(*f[1:5], signature=_join_sig(f[5], f[6], f[7]))


def _dec_uint_array(data: bytes, offset: int, bits: int) -> tuple[list[int], int]:
    """Decode a canonical ``uintN[]`` at ``offset``; return the values and the end offset."""
    if offset + 32 > len(data):
        raise Rejected(ErrorCode.MALFORMED, "truncated array length")
    n = int.from_bytes(data[offset : offset + 32], "big")
    end = offset + 32 + 32 * n
    if end > len(data):  # also bounds n by the input size: no huge allocations
        raise Rejected(ErrorCode.MALFORMED, "truncated array")
    values = [int.from_bytes(data[i : i + 32], "big") for i in range(offset + 32, end, 32)]
    for value in values:
        if value >> bits:
            raise Rejected(ErrorCode.MALFORMED, f"array element exceeds uint{bits}")
    return values, end


_INT64_MIN, _INT64_LIMIT = -(1 << 63), 1 << 63


def _dec_int64_array(data: bytes, offset: int) -> tuple[list[int], int]:
    """Decode a canonical ``int64[]`` (sign-extended words) at ``offset``; values and end."""
    if offset + 32 > len(data):
        raise Rejected(ErrorCode.MALFORMED, "truncated array length")
    n = int.from_bytes(data[offset : offset + 32], "big")
    end = offset + 32 + 32 * n
    if end > len(data):
        raise Rejected(ErrorCode.MALFORMED, "truncated array")
    values = [int.from_bytes(data[i : i + 32], "big", signed=True)
              for i in range(offset + 32, end, 32)]
    for value in values:
        if not _INT64_MIN <= value < _INT64_LIMIT:
            raise Rejected(ErrorCode.MALFORMED, "array element is not a canonical int64")
    return values, end


def _dec_mark(data: bytes) -> MarkUpdate:
    from clearline.oracle.report import decode_report  # see _enc_mark

    if len(data) < _MARK_HEAD_SIZE + 128:
        raise Rejected(ErrorCode.MALFORMED, "MarkUpdate too short")
    head = data[:_MARK_HEAD_SIZE]
    if int.from_bytes(head, "big") & _MARK_HEAD_MASK:
        raise Rejected(ErrorCode.MALFORMED, "non-canonical padding")
    _, time_ms, timestamp, off_ins, off_prices, off_risk, off_reports, r, s, v = \
        _MARK_HEAD.unpack(head)
    if int.from_bytes(off_ins, "big") != _MARK_HEAD_SIZE:
        raise Rejected(ErrorCode.MALFORMED, "non-canonical instruments offset")
    instruments, end = _dec_uint_array(data, _MARK_HEAD_SIZE, 32)
    if int.from_bytes(off_prices, "big") != end:
        raise Rejected(ErrorCode.MALFORMED, "non-canonical prices offset")
    prices, end = _dec_uint_array(data, end, 64)
    if int.from_bytes(off_risk, "big") != end:
        raise Rejected(ErrorCode.MALFORMED, "non-canonical riskArrays offset")
    risk, end = _dec_int64_array(data, end)
    if len(risk) not in (0, _N_SCENARIOS * len(instruments)):
        raise Rejected(ErrorCode.MALFORMED, "riskArrays: none or 16 values per instrument")
    if int.from_bytes(off_reports, "big") != end:
        raise Rejected(ErrorCode.MALFORMED, "non-canonical reports offset")
    if end + 32 > len(data):
        raise Rejected(ErrorCode.MALFORMED, "truncated array length")
    n_reports = int.from_bytes(data[end : end + 32], "big")
    start = end + 32
    # compare before multiplying a possibly huge count: no big allocations from hostile input
    if n_reports > (len(data) - start) // _REPORT_SIZE \
            or start + n_reports * _REPORT_SIZE != len(data):
        raise Rejected(ErrorCode.MALFORMED, "reports length does not match the data")
    reports = [decode_report(data[i : i + _REPORT_SIZE])
               for i in range(start, len(data), _REPORT_SIZE)]
    risk_arrays = [risk[i : i + _N_SCENARIOS] for i in range(0, len(risk), _N_SCENARIOS)]
    return MarkUpdate(time_ms, timestamp, instruments, prices, risk_arrays, reports,
                      signature=_join_sig(r, s, v))


_DECODERS = {
    TxKind.DEPOSIT: _dec_deposit,
    TxKind.FORCED_WITHDRAWAL: _dec_forced,
    TxKind.ORDER: _dec_order,
    TxKind.CANCEL: _dec_cancel,
    TxKind.REPLACE: _dec_replace,
    TxKind.WITHDRAW: _dec_withdraw,
    TxKind.TRANSFER: _dec_transfer,
    TxKind.MARK_UPDATE: _dec_mark,
    TxKind.OPERATOR: _dec_operator,
    TxKind.SET_MARGIN_MODE: _dec_margin_mode,
    TxKind.SET_ACCOUNT_FLAGS: _dec_account_flags,
}


def decode_tx(data: bytes) -> Tx:
    """Parse canonical ABI bytes back into a transaction (``signer`` left ``None``).

    Never raises anything but ``Rejected``: MALFORMED for wrong length / padding / offsets /
    out-of-range values, UNKNOWN_TX_KIND for a kind word that is canonical but unknown.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise Rejected(ErrorCode.MALFORMED, "data must be bytes")
    data = bytes(data)
    if len(data) < 32:
        raise Rejected(ErrorCode.MALFORMED, "shorter than one word")
    if not data.startswith(_ZERO_31):
        raise Rejected(ErrorCode.MALFORMED, "non-canonical kind word")
    decoder = _DECODERS.get(data[31])
    if decoder is None:
        raise Rejected(ErrorCode.UNKNOWN_TX_KIND, f"unknown kind {data[31]}")
    return decoder(data)


# ---------------------------------------------------------------------------------------
# Merkle leaves and the state root


def _uint(value: int, bits: int, name: str) -> bytes:
    if not isinstance(value, int):
        raise InvariantBroken(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value < 1 << bits:
        raise InvariantBroken(f"{name}={value} out of uint{bits} range")
    return value.to_bytes(32, "big")


def _int(value: int, bits: int, name: str) -> bytes:
    if not isinstance(value, int):
        raise InvariantBroken(f"{name} must be an int, got {type(value).__name__}")
    bound = 1 << (bits - 1)
    if not -bound <= value < bound:
        raise InvariantBroken(f"{name}={value} out of int{bits} range")
    return value.to_bytes(32, "big", signed=True)


def _address(value: bytes, name: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 20:
        raise InvariantBroken(f"{name} must be a 20-byte address")
    return bytes(12) + value


def _bytes32(value: bytes, name: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise InvariantBroken(f"{name} must be 32 bytes")
    return value


def _ascii32(value: str, name: str) -> bytes:
    """An ASCII string right-padded with zeros to bytes32 (symbol, underlying)."""
    if not isinstance(value, str) or not value.isascii() or len(value) > 32:
        raise InvariantBroken(f"{name} must be an ASCII string of at most 32 characters")
    return value.encode("ascii").ljust(32, b"\x00")


def _bool(value: bool, name: str) -> bytes:
    if not isinstance(value, int) or value not in (0, 1):  # bool is an int: True/False, 1/0
        raise InvariantBroken(f"{name} must be a bool, got {value!r}")
    return int(value).to_bytes(32, "big")


# tag, id, owner, subaccount, collateral, nonce, marginMode, flags, offset(positions)
_ACCOUNT_HEAD_WORDS = 9
_POSITIONS_OFFSET = (32 * _ACCOUNT_HEAD_WORDS).to_bytes(32, "big")


def _account_leaf_reference(
    id: int,
    owner: bytes,
    subaccount: int,
    collateral: int,
    nonce: int,
    positions: Sequence[tuple[int, int, int, int]],
    *,
    margin_mode: int = 0,
    flags: int = 0,
) -> bytes:
    """``abi.encode(bytes32 ACCOUNT_TAG, uint32 id, address owner, uint32 subaccount,
    int256 collateral, uint64 nonce, uint8 marginMode, uint8 flags, (uint32 instrument,
    int64 size, int256 quote, int256 fundingIndex)[] positions)``. ``positions`` must be
    strictly increasing by instrument (one canonical leaf per account state).
    ``margin_mode`` is a ``txs.MarginMode`` value, ``flags`` ``txs.AccountFlag`` bits."""
    parts = [
        ACCOUNT_TAG,
        _uint(id, 32, "id"),
        _address(owner, "owner"),
        _uint(subaccount, 32, "subaccount"),
        _int(collateral, 256, "collateral"),
        _uint(nonce, 64, "nonce"),
        _uint(margin_mode, 8, "margin_mode"),
        _uint(flags, 8, "flags"),
        _POSITIONS_OFFSET,
        len(positions).to_bytes(32, "big"),
    ]
    previous = -1
    for instrument, size, quote, funding_index in positions:
        if not isinstance(instrument, int) or instrument <= previous:
            raise InvariantBroken("positions must be strictly increasing by instrument")
        previous = instrument
        parts.append(_uint(instrument, 32, "position.instrument"))
        parts.append(_int(size, 64, "position.size"))
        parts.append(_int(quote, 256, "position.quote"))
        parts.append(_int(funding_index, 256, "position.funding_index"))
    return b"".join(parts)


def _order_leaf_reference(
    order_id: int,
    account: int,
    instrument: int,
    side: int,
    tif: int,
    flags: int,
    stp: int,
    price: int,
    size: int,
    remaining: int,
    expiry: int,
    client_id: int,
    next_order: int = 0,
) -> bytes:
    """``abi.encode(bytes32 ORDER_TAG, uint64 orderId, uint32 account, uint32 instrument,
    uint8 side, uint8 timeInForce, uint8 flags, uint8 stp, uint64 price, uint64 size,
    uint64 remaining, uint64 expiry, uint64 clientId, uint64 next)`` of a resting order
    (``next``: the id of the order after it in its book side's priority, 0 for the last)."""
    return b"".join((
        ORDER_TAG,
        _uint(order_id, 64, "order_id"),
        _uint(account, 32, "account"),
        _uint(instrument, 32, "instrument"),
        _uint(side, 8, "side"),
        _uint(tif, 8, "tif"),
        _uint(flags, 8, "flags"),
        _uint(stp, 8, "stp"),
        _uint(price, 64, "price"),
        _uint(size, 64, "size"),
        _uint(remaining, 64, "remaining"),
        _uint(expiry, 64, "expiry"),
        _uint(client_id, 64, "client_id"),
        _uint(next_order, 64, "next_order"),
    ))


_ZERO_RISK_WORDS = bytes(32 * _N_SCENARIOS)  # riskArray of a market without one


def _market_leaf_reference(
    *,
    id: int,
    symbol: str,
    kind: int,
    underlying: str,
    tick_size: int,
    lot_size: int,
    im_ppm: int,
    mm_ppm: int,
    maker_fee_ppm: int,
    taker_fee_ppm: int,
    expiry: int,
    strike: int,
    option_type: int,
    status: int,
    mark_price: int,
    mark_time: int,
    funding_index: int,
    open_interest: int,
    premium_sum: int = 0,
    premium_samples: int = 0,
    last_funding_time: int = 0,
    last_funding_rate_ppm: int = 0,
    settlement_price: int = 0,
    last_sample_time: int = 0,
    risk_array: Sequence[int] | None = None,
    unpaid_lots: int = 0,
    pay_float: int = 0,
    bid_head: int = 0,
    ask_head: int = 0,
) -> bytes:
    """``abi.encode(bytes32 MARKET_TAG, uint32 id, bytes32 symbol, uint8 kind,
    bytes32 underlying, uint64 tickSize, uint64 lotSize, uint32 imPpm, uint32 mmPpm,
    int32 makerFeePpm, int32 takerFeePpm, uint64 expiry, uint64 strike, uint8 optionType,
    uint8 status, uint64 markPrice, uint64 markTime, int256 fundingIndex,
    uint64 openInterest, int64 premiumSum, uint32 premiumSamples, uint64 lastFundingTime,
    int64 lastFundingRatePpm, uint64 settlementPrice, uint64 lastSampleTime,
    int64[16] riskArray, uint64 unpaidLots, int64 payFloat, uint64 bidHead, uint64 askHead)``;
    ``riskArray`` is a static array (16 words in place), ``None`` meaning all zeros; the heads
    are the ids of the best bid and ask in price-time priority (0: none). Keyword-only: 29
    fields are too many to pass by position."""
    if risk_array is None:
        risk_words = _ZERO_RISK_WORDS
    elif not isinstance(risk_array, (list, tuple)) or len(risk_array) != _N_SCENARIOS:
        raise InvariantBroken(f"risk_array must be a list of {_N_SCENARIOS} int64 values")
    else:
        risk_words = b"".join(_int(v, 64, "risk_array") for v in risk_array)
    return b"".join((
        MARKET_TAG,
        _uint(id, 32, "id"),
        _ascii32(symbol, "symbol"),
        _uint(kind, 8, "kind"),
        _ascii32(underlying, "underlying"),
        _uint(tick_size, 64, "tick_size"),
        _uint(lot_size, 64, "lot_size"),
        _uint(im_ppm, 32, "im_ppm"),
        _uint(mm_ppm, 32, "mm_ppm"),
        _int(maker_fee_ppm, 32, "maker_fee_ppm"),
        _int(taker_fee_ppm, 32, "taker_fee_ppm"),
        _uint(expiry, 64, "expiry"),
        _uint(strike, 64, "strike"),
        _uint(option_type, 8, "option_type"),
        _uint(status, 8, "status"),
        _uint(mark_price, 64, "mark_price"),
        _uint(mark_time, 64, "mark_time"),
        _int(funding_index, 256, "funding_index"),
        _uint(open_interest, 64, "open_interest"),
        _int(premium_sum, 64, "premium_sum"),
        _uint(premium_samples, 32, "premium_samples"),
        _uint(last_funding_time, 64, "last_funding_time"),
        _int(last_funding_rate_ppm, 64, "last_funding_rate_ppm"),
        _uint(settlement_price, 64, "settlement_price"),
        _uint(last_sample_time, 64, "last_sample_time"),
        risk_words,
        _uint(unpaid_lots, 64, "unpaid_lots"),
        _int(pay_float, 64, "pay_float"),
        _uint(bid_head, 64, "bid_head"),
        _uint(ask_head, 64, "ask_head"),
    ))


# ---------------------------------------------------------------------------------------
# Fast leaf encoders: what ``State.root`` calls for every dirty leaf.
#
# Why hand-rolled: the reference encoders above check and convert one word at a time
# (~0.3 us a word; a market leaf is 45 words) and were the largest part of computing a root.
# The versions below write the same bytes with one ``struct.pack`` per leaf (struct checks the
# range of every unsigned word and of int64 words; signed words get their sign-extension
# padding as a ``24s`` argument) and cache nothing themselves (``State`` caches a market's
# constant terms, see ``market_leaf_terms``). Whenever a value is not a plain in-range int
# they fall back to the reference encoder, so the error (``InvariantBroken``) and its message
# are always the reference's. Pinned against the reference encoders, errors included, by
# tests/property/test_fast_leaves.py, and against eth_abi by tests/unit/test_encoding.py.

_SIGN_PAD = (bytes(24), b"\xff" * 24)  # 24 padding bytes of an int64 word, by (value < 0)
_INT_TYPES = (int,) * 64  # isinstance(v, int) for many values at once: all(map(isinstance, vs, _INT_TYPES))
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1

_ORDER_LEAF = struct.Struct(">32s24xQ28xI28xI31xB31xB31xB31xB24xQ24xQ24xQ24xQ24xQ24xQ")


def encode_order_leaf(
    order_id: int,
    account: int,
    instrument: int,
    side: int,
    tif: int,
    flags: int,
    stp: int,
    price: int,
    size: int,
    remaining: int,
    expiry: int,
    client_id: int,
    next_order: int = 0,
) -> bytes:
    """``abi.encode(bytes32 ORDER_TAG, uint64 orderId, uint32 account, uint32 instrument,
    uint8 side, uint8 timeInForce, uint8 flags, uint8 stp, uint64 price, uint64 size,
    uint64 remaining, uint64 expiry, uint64 clientId, uint64 next)`` of a resting order
    (``next``: the id of the order after it in its book side's priority, 0 for the last)."""
    values = (order_id, account, instrument, side, tif, flags, stp, price, size, remaining, expiry, client_id,
              next_order)
    if all(map(isinstance, values, _INT_TYPES)):
        try:
            return _ORDER_LEAF.pack(ORDER_TAG, *values)
        except struct.error:
            pass
    return _order_leaf_reference(*values)


def encode_pending_order_leaf(order_id: int, account: int, instrument: int, side: int, tif: int, flags: int,
                              stp: int, price: int, size: int, remaining: int, expiry: int, client_id: int,
                              met: int) -> bytes:
    """The leaf of an incoming order while it matches step by step (``clearline.core.order_steps``):
    the order leaf's layout under ``PENDING_ORDER_TAG``, ``price`` its limit, ``remaining`` what is
    left to fill, and the last word ``met``, the resting orders met so far, where a resting order
    has ``next`` (a pending order is in no book list). The tag keeps the two apart on L1."""
    values = (order_id, account, instrument, side, tif, flags, stp, price, size, remaining, expiry, client_id, met)
    if all(map(isinstance, values, _INT_TYPES)):
        try:
            return _ORDER_LEAF.pack(PENDING_ORDER_TAG, *values)
        except struct.error:
            pass
    return PENDING_ORDER_TAG + _order_leaf_reference(*values)[32:]


# tag, id, owner, subaccount, collateral, nonce, marginMode, flags, offset(positions), length
_ACCOUNT_HEAD = struct.Struct(">32s28xI12x20s28xI32s24xQ31xB31xB32s24xQ")
_POSITION = struct.Struct(">28xI24sq32s32s")  # instrument, size (int64), quote, fundingIndex (int256)


def encode_account_leaf(
    id: int,
    owner: bytes,
    subaccount: int,
    collateral: int,
    nonce: int,
    positions: Sequence[tuple[int, int, int, int]],
    *,
    margin_mode: int = 0,
    flags: int = 0,
) -> bytes:
    """``abi.encode(bytes32 ACCOUNT_TAG, uint32 id, address owner, uint32 subaccount,
    int256 collateral, uint64 nonce, uint8 marginMode, uint8 flags, (uint32 instrument,
    int64 size, int256 quote, int256 fundingIndex)[] positions)``. ``positions`` must be
    strictly increasing by instrument (one canonical leaf per account state).
    ``margin_mode`` is a ``txs.MarginMode`` value, ``flags`` ``txs.AccountFlag`` bits."""
    try:
        if (type(owner) is bytes and len(owner) == 20
                and all(map(isinstance, (id, subaccount, collateral, nonce, margin_mode, flags), _INT_TYPES))):
            parts = [_ACCOUNT_HEAD.pack(ACCOUNT_TAG, id, owner, subaccount,
                                        collateral.to_bytes(32, "big", signed=True), nonce, margin_mode, flags,
                                        _POSITIONS_OFFSET, len(positions))]
            pack = _POSITION.pack
            previous = -1
            for instrument, size, quote, funding_index in positions:
                if (type(instrument) is not int or instrument <= previous
                        or not all(map(isinstance, (size, quote, funding_index), _INT_TYPES))):
                    break
                previous = instrument
                parts.append(pack(instrument, _SIGN_PAD[size < 0], size, quote.to_bytes(32, "big", signed=True),
                                  funding_index.to_bytes(32, "big", signed=True)))
            else:
                return b"".join(parts)
    except (struct.error, OverflowError, TypeError, ValueError):
        pass
    return _account_leaf_reference(id, owner, subaccount, collateral, nonce, positions, margin_mode=margin_mode,
                                   flags=flags)


def market_leaf_terms(
    *,
    id: int,
    symbol: str,
    kind: int,
    underlying: str,
    tick_size: int,
    lot_size: int,
    im_ppm: int,
    mm_ppm: int,
    maker_fee_ppm: int,
    taker_fee_ppm: int,
    expiry: int,
    strike: int,
    option_type: int,
) -> bytes:
    """The first 14 words of a market leaf (``MARKET_TAG`` and the contract terms, through
    ``optionType``): constant for a listed instrument, so ``State`` encodes them once per spec."""
    return b"".join((
        MARKET_TAG,
        _uint(id, 32, "id"),
        _ascii32(symbol, "symbol"),
        _uint(kind, 8, "kind"),
        _ascii32(underlying, "underlying"),
        _uint(tick_size, 64, "tick_size"),
        _uint(lot_size, 64, "lot_size"),
        _uint(im_ppm, 32, "im_ppm"),
        _uint(mm_ppm, 32, "mm_ppm"),
        _int(maker_fee_ppm, 32, "maker_fee_ppm"),
        _int(taker_fee_ppm, 32, "taker_fee_ppm"),
        _uint(expiry, 64, "expiry"),
        _uint(strike, 64, "strike"),
        _uint(option_type, 8, "option_type"),
    ))


# status, markPrice, markTime, fundingIndex, openInterest, premiumSum, premiumSamples,
# lastFundingTime, lastFundingRatePpm, settlementPrice, lastSampleTime
_MARKET_STATE = struct.Struct(">31xB24xQ24xQ32s24xQ24sq28xI24xQ24sq24xQ24xQ")
_RISK_WORDS = struct.Struct(">" + "24sq" * _N_SCENARIOS)
_LEAF_TAIL = struct.Struct(">24xQ24sq24xQ24xQ")  # unpaidLots, payFloat, bidHead, askHead


def _market_state_reference(status, mark_price, mark_time, funding_index, open_interest, premium_sum,
                            premium_samples, last_funding_time, last_funding_rate_ppm, settlement_price,
                            last_sample_time, risk_array, unpaid_lots, pay_float, bid_head=0, ask_head=0) -> bytes:
    """The reference encoding of a market leaf's last 31 words (raises as ``_market_leaf_reference``)."""
    if risk_array is None:
        risk_words = _ZERO_RISK_WORDS
    elif not isinstance(risk_array, (list, tuple)) or len(risk_array) != _N_SCENARIOS:
        raise InvariantBroken(f"risk_array must be a list of {_N_SCENARIOS} int64 values")
    else:
        risk_words = b"".join(_int(v, 64, "risk_array") for v in risk_array)
    return b"".join((
        _uint(status, 8, "status"),
        _uint(mark_price, 64, "mark_price"),
        _uint(mark_time, 64, "mark_time"),
        _int(funding_index, 256, "funding_index"),
        _uint(open_interest, 64, "open_interest"),
        _int(premium_sum, 64, "premium_sum"),
        _uint(premium_samples, 32, "premium_samples"),
        _uint(last_funding_time, 64, "last_funding_time"),
        _int(last_funding_rate_ppm, 64, "last_funding_rate_ppm"),
        _uint(settlement_price, 64, "settlement_price"),
        _uint(last_sample_time, 64, "last_sample_time"),
        risk_words,
        _uint(unpaid_lots, 64, "unpaid_lots"),
        _int(pay_float, 64, "pay_float"),
        _uint(bid_head, 64, "bid_head"),
        _uint(ask_head, 64, "ask_head"),
    ))


def market_leaf_state(status: int, mark_price: int, mark_time: int, funding_index: int, open_interest: int,
                      premium_sum: int, premium_samples: int, last_funding_time: int, last_funding_rate_ppm: int,
                      settlement_price: int, last_sample_time: int, risk_array: Sequence[int] | None,
                      unpaid_lots: int = 0, pay_float: int = 0, bid_head: int = 0, ask_head: int = 0) -> bytes:
    """The last 31 words of a market leaf (``status`` through ``askHead``), positional in
    leaf order; ``market_leaf_terms(...) + market_leaf_state(...)`` is the whole leaf."""
    scalars = (status, mark_price, mark_time, funding_index, open_interest, premium_sum, premium_samples,
               last_funding_time, last_funding_rate_ppm, settlement_price, last_sample_time)
    try:
        if all(map(isinstance, (*scalars, unpaid_lots, pay_float, bid_head, ask_head), _INT_TYPES)):
            if risk_array is None:
                risk_words = _ZERO_RISK_WORDS
            elif (type(risk_array) is list or type(risk_array) is tuple) and len(risk_array) == _N_SCENARIOS \
                    and all(map(isinstance, risk_array, _INT_TYPES)):
                pad = _SIGN_PAD
                args = []
                push = args.append
                for v in risk_array:
                    push(pad[v < 0])
                    push(v)
                risk_words = _RISK_WORDS.pack(*args)
            else:
                risk_words = None
            if risk_words is not None:
                return _MARKET_STATE.pack(
                    status, mark_price, mark_time, funding_index.to_bytes(32, "big", signed=True), open_interest,
                    _SIGN_PAD[premium_sum < 0], premium_sum, premium_samples, last_funding_time,
                    _SIGN_PAD[last_funding_rate_ppm < 0], last_funding_rate_ppm, settlement_price,
                    last_sample_time) + risk_words + _LEAF_TAIL.pack(
                    unpaid_lots, _SIGN_PAD[pay_float < 0], pay_float, bid_head, ask_head)
    except (struct.error, OverflowError):
        pass
    return _market_state_reference(*scalars, risk_array, unpaid_lots, pay_float, bid_head, ask_head)


def encode_market_leaf(
    *,
    id: int,
    symbol: str,
    kind: int,
    underlying: str,
    tick_size: int,
    lot_size: int,
    im_ppm: int,
    mm_ppm: int,
    maker_fee_ppm: int,
    taker_fee_ppm: int,
    expiry: int,
    strike: int,
    option_type: int,
    status: int,
    mark_price: int,
    mark_time: int,
    funding_index: int,
    open_interest: int,
    premium_sum: int = 0,
    premium_samples: int = 0,
    last_funding_time: int = 0,
    last_funding_rate_ppm: int = 0,
    settlement_price: int = 0,
    last_sample_time: int = 0,
    risk_array: Sequence[int] | None = None,
    unpaid_lots: int = 0,
    pay_float: int = 0,
    bid_head: int = 0,
    ask_head: int = 0,
) -> bytes:
    """``abi.encode(bytes32 MARKET_TAG, uint32 id, bytes32 symbol, uint8 kind,
    bytes32 underlying, uint64 tickSize, uint64 lotSize, uint32 imPpm, uint32 mmPpm,
    int32 makerFeePpm, int32 takerFeePpm, uint64 expiry, uint64 strike, uint8 optionType,
    uint8 status, uint64 markPrice, uint64 markTime, int256 fundingIndex,
    uint64 openInterest, int64 premiumSum, uint32 premiumSamples, uint64 lastFundingTime,
    int64 lastFundingRatePpm, uint64 settlementPrice, uint64 lastSampleTime,
    int64[16] riskArray, uint64 unpaidLots, int64 payFloat, uint64 bidHead, uint64 askHead)``;
    ``riskArray`` is a static array (16 words in place), ``None`` meaning all zeros; the heads
    are the ids of the best bid and ask in price-time priority (0: none). Keyword-only: 29
    fields are too many to pass by position."""
    try:
        terms = market_leaf_terms(id=id, symbol=symbol, kind=kind, underlying=underlying, tick_size=tick_size,
                                  lot_size=lot_size, im_ppm=im_ppm, mm_ppm=mm_ppm, maker_fee_ppm=maker_fee_ppm,
                                  taker_fee_ppm=taker_fee_ppm, expiry=expiry, strike=strike, option_type=option_type)
    except InvariantBroken:  # raise what the reference raises (it checks the risk array first)
        _market_leaf_reference(
            id=id, symbol=symbol, kind=kind, underlying=underlying, tick_size=tick_size, lot_size=lot_size,
            im_ppm=im_ppm, mm_ppm=mm_ppm, maker_fee_ppm=maker_fee_ppm, taker_fee_ppm=taker_fee_ppm, expiry=expiry,
            strike=strike, option_type=option_type, status=status, mark_price=mark_price, mark_time=mark_time,
            funding_index=funding_index, open_interest=open_interest, premium_sum=premium_sum,
            premium_samples=premium_samples, last_funding_time=last_funding_time,
            last_funding_rate_ppm=last_funding_rate_ppm, settlement_price=settlement_price,
            last_sample_time=last_sample_time, risk_array=risk_array, unpaid_lots=unpaid_lots,
            pay_float=pay_float, bid_head=bid_head, ask_head=ask_head)
        raise
    return terms + market_leaf_state(status, mark_price, mark_time, funding_index, open_interest, premium_sum,
                                     premium_samples, last_funding_time, last_funding_rate_ppm, settlement_price,
                                     last_sample_time, risk_array, unpaid_lots, pay_float, bid_head, ask_head)


# tag, id, symbol, indexPrice, indexTime, lastRoundMs, pendingPrice, pendingCount,
# liquidationsPaused, accTime, offset(settlementWindows)
_UNDERLYING_HEAD_WORDS = 11
_WINDOWS_OFFSET = (32 * _UNDERLYING_HEAD_WORDS).to_bytes(32, "big")


def encode_underlying_leaf(
    *,
    id: int,
    symbol: str,
    index_price: int,
    index_time: int,
    last_round_ms: int,
    pending_price: int,
    pending_count: int,
    liquidations_paused: bool,
    windows: Sequence[tuple[int, int, int, int]],
    acc_time: int = 0,
) -> bytes:
    """``abi.encode(bytes32 UNDERLYING_TAG, uint32 id, bytes32 symbol, uint64 indexPrice,
    uint64 indexTime, uint64 lastRoundMs, uint64 pendingPrice, uint32 pendingCount,
    bool liquidationsPaused, uint64 accTime, (uint64 expiry, uint256 acc, uint64 dt,
    uint32 open)[] settlementWindows)``; ``accTime`` is the time up to which the windows are accumulated.
    ``symbol`` is ASCII, right-padded like the market leaf's; ``windows`` are
    ``(expiry, acc, dt, open)`` tuples strictly increasing by expiry (one canonical leaf per
    state); ``open`` counts the expiry's options not settled yet."""
    parts = [
        UNDERLYING_TAG,
        _uint(id, 32, "id"),
        _ascii32(symbol, "symbol"),
        _uint(index_price, 64, "index_price"),
        _uint(index_time, 64, "index_time"),
        _uint(last_round_ms, 64, "last_round_ms"),
        _uint(pending_price, 64, "pending_price"),
        _uint(pending_count, 32, "pending_count"),
        _bool(liquidations_paused, "liquidations_paused"),
        _uint(acc_time, 64, "acc_time"),
        _WINDOWS_OFFSET,
        len(windows).to_bytes(32, "big"),
    ]
    previous = -1
    for window in windows:
        if not isinstance(window, (list, tuple)) or len(window) != 4:
            raise InvariantBroken("a settlement window must be (expiry, acc, dt, open)")
        expiry, acc, dt, open_ = window
        if not isinstance(expiry, int) or expiry <= previous:
            raise InvariantBroken("settlement windows must be strictly increasing by expiry")
        previous = expiry
        parts.append(_uint(expiry, 64, "window.expiry"))
        parts.append(_uint(acc, 256, "window.acc"))
        parts.append(_uint(dt, 64, "window.dt"))
        parts.append(_uint(open_, 32, "window.open"))
    return b"".join(parts)


def _state_reference(
    *,
    accounts_root: bytes,
    orders_root: bytes,
    markets_root: bytes,
    l1_queue_pos: int,
    fee_pool: int,
    insurance_fund: int,
    next_order_id: int,
    next_account_id: int,
    time_ms: int,
    total_deposits: int,
    total_withdrawals: int,
) -> bytes:
    """The preimage of ``state_root`` (exposed for proofs that must reveal it)."""
    return b"".join((
        STATE_TAG,
        _bytes32(accounts_root, "accounts_root"),
        _bytes32(orders_root, "orders_root"),
        _bytes32(markets_root, "markets_root"),
        _uint(l1_queue_pos, 64, "l1_queue_pos"),
        _uint(fee_pool, 256, "fee_pool"),
        _uint(insurance_fund, 256, "insurance_fund"),
        _uint(next_order_id, 64, "next_order_id"),
        _uint(next_account_id, 32, "next_account_id"),
        _uint(time_ms, 64, "time_ms"),
        _uint(total_deposits, 256, "total_deposits"),
        _uint(total_withdrawals, 256, "total_withdrawals"),
    ))


# tag, accountsRoot, ordersRoot, marketsRoot, l1QueuePos, feePool, insuranceFund, nextOrderId,
# nextAccountId, timeMs, totalDeposits, totalWithdrawals (uint256 words passed as 32 bytes)
_STATE = struct.Struct(">32s32s32s32s24xQ32s32s24xQ28xI24xQ32s32s")


def encode_state(
    *,
    accounts_root: bytes,
    orders_root: bytes,
    markets_root: bytes,
    l1_queue_pos: int,
    fee_pool: int,
    insurance_fund: int,
    next_order_id: int,
    next_account_id: int,
    time_ms: int,
    total_deposits: int,
    total_withdrawals: int,
) -> bytes:
    """The preimage of ``state_root`` (exposed for proofs that must reveal it). One
    ``struct.pack`` (a root per transaction is a use case), falling back to the word-by-word
    reference on anything unusual, like the fast leaf encoders above."""
    try:
        if (type(accounts_root) is bytes and len(accounts_root) == 32 and type(orders_root) is bytes
                and len(orders_root) == 32 and type(markets_root) is bytes and len(markets_root) == 32
                and all(map(isinstance, (l1_queue_pos, fee_pool, insurance_fund, next_order_id, next_account_id,
                                         time_ms, total_deposits, total_withdrawals), _INT_TYPES))):
            return _STATE.pack(STATE_TAG, accounts_root, orders_root, markets_root, l1_queue_pos,
                               fee_pool.to_bytes(32, "big"), insurance_fund.to_bytes(32, "big"), next_order_id,
                               next_account_id, time_ms, total_deposits.to_bytes(32, "big"),
                               total_withdrawals.to_bytes(32, "big"))
    except (struct.error, OverflowError):
        pass
    return _state_reference(
        accounts_root=accounts_root, orders_root=orders_root, markets_root=markets_root, l1_queue_pos=l1_queue_pos,
        fee_pool=fee_pool, insurance_fund=insurance_fund, next_order_id=next_order_id,
        next_account_id=next_account_id, time_ms=time_ms, total_deposits=total_deposits,
        total_withdrawals=total_withdrawals)


def state_root(
    *,
    accounts_root: bytes,
    orders_root: bytes,
    markets_root: bytes,
    l1_queue_pos: int,
    fee_pool: int,
    insurance_fund: int,
    next_order_id: int,
    next_account_id: int,
    time_ms: int,
    total_deposits: int,
    total_withdrawals: int,
) -> bytes:
    """``keccak(abi.encode(bytes32 STATE_TAG, bytes32 accountsRoot, bytes32 ordersRoot,
    bytes32 marketsRoot, uint64 l1QueuePos, uint256 feePool, uint256 insuranceFund,
    uint64 nextOrderId, uint32 nextAccountId, uint64 timeMs, uint256 totalDeposits,
    uint256 totalWithdrawals))``: the one root committed per batch (DESIGN.md rule 3)."""
    return keccak(encode_state(
        accounts_root=accounts_root,
        orders_root=orders_root,
        markets_root=markets_root,
        l1_queue_pos=l1_queue_pos,
        fee_pool=fee_pool,
        insurance_fund=insurance_fund,
        next_order_id=next_order_id,
        next_account_id=next_account_id,
        time_ms=time_ms,
        total_deposits=total_deposits,
        total_withdrawals=total_withdrawals,
    ))


def account_key(owner: bytes, subaccount: int) -> int:
    """The account index's key of (owner, subaccount): ``uint256(keccak256(abi.encodePacked(
    address owner, uint32 subaccount)))``."""
    return int.from_bytes(keccak(bytes(owner) + subaccount.to_bytes(4, "big")), "big")


def encode_account_index_leaf(key: int, next_key: int) -> bytes:
    """``abi.encode(bytes32 ACCOUNT_INDEX_TAG, uint256 key, uint256 nextKey)``: one entry of the
    accounts tree's sorted index of (owner, subaccount) keys (``nextKey`` the next larger key,
    0 for none), so that L1 can prove an account does not exist yet."""
    return ACCOUNT_INDEX_TAG + key.to_bytes(32, "big") + next_key.to_bytes(32, "big")


def leaf_hash(encoded: bytes) -> bytes:
    """Merkle leaf hash of an encoded leaf (the tag inside the encoding domain-separates it)."""
    return keccak(encoded)
