"""Byte formats shared by the L1 contracts and Python: queue items, batch headers, batch data
(format v3 written, v1, v2 and v3 read; v2's transaction codec lives in ``batch_v2``, v3's
variable chunks in ``batch_v3``), withdrawal records and
compressed Merkle proofs. Each function here is pinned against the
contracts by the tests in ``tests/l1`` (same hashes on a real EVM).

Pure and deterministic like the core (no I/O, clock or randomness): the batcher and the
watchtower use these to build and check what the contracts commit to.
"""

from __future__ import annotations

import struct
from dataclasses import astuple, dataclass, fields
from collections.abc import Mapping, Sequence

from eth_utils import to_checksum_address

from clearline.core.encoding import decode_tx, encode_tx
from clearline.core.errors import Rejected
from clearline.core.hashing import keccak, tag
from clearline.core.merkle import ZERO_HASHES, SparseMerkleTree
from clearline.core.txs import Deposit

from .batch_v2 import BATCH_FORMAT_V2, BatchFormatError, decode_batch_v2
from .batch_v3 import BATCH_FORMAT_V3, decode_chunks_v3, encode_batch_v3

__all__ = [
    "BATCH_FORMAT_V1",
    "BATCH_FORMAT_V2",
    "BATCH_FORMAT_V3",
    "QUEUE_DEPOSIT",
    "QUEUE_FORCED_WITHDRAWAL",
    "STATE_ABI",
    "WITHDRAWALS_DEPTH",
    "WITHDRAWAL_RECORD_BYTES",
    "WITHDRAWAL_TAG",
    "BatchFormatError",
    "BatchHeader",
    "DecodedBatch",
    "QueueItem",
    "WithdrawalRecord",
    "batch_data_hash",
    "batch_data_parts",
    "batch_format",
    "compress_proof",
    "decode_batch",
    "decode_batch_txs",
    "deposit_item_hash",
    "encode_batch",
    "encode_batch_txs",
    "expand_proof",
    "queue_item_hash",
    "state_roots_hash",
    "decode_withdrawals",
    "encode_withdrawals",
    "withdrawal_leaf",
    "withdrawals_tree",
]

QUEUE_DEPOSIT = 1
# Escape.sol's EscapeState (the state root's preimage after its tag), as an ABI tuple type
STATE_ABI = "(bytes32,bytes32,bytes32,uint64,uint256,uint256,uint64,uint32,uint64,uint256,uint256)"
QUEUE_FORCED_WITHDRAWAL = 2
WITHDRAWALS_DEPTH = 16
WITHDRAWAL_TAG = tag("clearline.withdrawal.v2")
WITHDRAWAL_RECORD_BYTES = 38  # packed: uint32 account, address owner, uint64 amount, uint32 chunk, uint16 txIndex
_RECORD = struct.Struct(">I20sQIH")
BATCH_FORMAT_V1 = 0x01

_W = 32


def _word(value: int, bits: int, what: str) -> bytes:
    if type(value) is not int or value < 0 or value >> bits:
        raise ValueError(f"{what} must be a uint{bits}, got {value!r}")
    return value.to_bytes(_W, "big")


def _address(value: bytes, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 20:
        raise ValueError(f"{what} must be a 20-byte address")
    return bytes(12) + bytes(value)


def _hash32(value: bytes, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        raise ValueError(f"{what} must be 32 bytes")
    return bytes(value)


# ------------------------------------------------------------------------------ L1 queue
def queue_item_hash(kind: int, index: int, owner: bytes, target: int, amount: int) -> bytes:
    """``keccak256(abi.encode(uint8 kind, uint64 queueIndex, address owner, uint32 target,
    uint64 amount))``: what ``Vault`` stores per queue item. ``target`` is the subaccount of a
    deposit (kind 1) or the account id of a forced withdrawal (kind 2)."""
    return keccak(
        _word(kind, 8, "kind")
        + _word(index, 64, "queue index")
        + _address(owner, "owner")
        + _word(target, 32, "target")
        + _word(amount, 64, "amount")
    )


def deposit_item_hash(tx: Deposit) -> bytes:
    """The queue item hash a core ``Deposit`` must match: its ABI encoding without ``timeMs``."""
    return queue_item_hash(QUEUE_DEPOSIT, tx.queue_index, tx.owner, tx.subaccount, tx.amount)


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One L1 queue item as the Vault's ``QueueItemAdded`` event reports it."""

    index: int
    kind: int  # QUEUE_DEPOSIT or QUEUE_FORCED_WITHDRAWAL
    owner: bytes  # 20 bytes
    target: int  # subaccount (deposit) or account id (forced withdrawal)
    amount: int  # usd6
    time: int  # L1 block timestamp, seconds
    block_number: int = 0

    @property
    def item_hash(self) -> bytes:
        return queue_item_hash(self.kind, self.index, self.owner, self.target, self.amount)

    def as_deposit(self, time_ms: int) -> Deposit:
        """The core transaction that consumes this (deposit) item, stamped ``time_ms``."""
        if self.kind != QUEUE_DEPOSIT:
            raise ValueError(f"queue item {self.index} is not a deposit")
        return Deposit(time_ms, self.index, self.owner, self.target, self.amount)


# ---------------------------------------------------------------------------- batch data
# ``BatchFormatError`` (batch_v2) is raised for any batch data that does not decode.


def encode_batch(txs: Sequence, txs_per_root: int, steps: Sequence[int] | None = None) -> bytes:
    """Batch data as the batcher posts it: format v3 (``batch_v3``) of core transaction
    objects, one chunk per state root (at most ``txs_per_root`` transactions a chunk, each
    operator-signed transaction, withdrawal, transfer, forced withdrawal, order and replace
    alone in its chunk, an order followed by one empty chunk per matching step: ``steps``)."""
    return encode_batch_v3(txs, txs_per_root, steps)


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    """Batch data decoded: its format version, its transactions (core objects, ``signer``
    None) and, for v2 and v3, the transactions per chunk it declares (``k``, None for v1) and
    the number of transactions in each chunk (``chunk_sizes``: one state root after each;
    None for v1)."""

    version: int
    txs: list
    txs_per_chunk: int | None
    chunk_sizes: list[int] | None = None


def batch_format(data: bytes) -> int:
    """The format version byte of batch data (``BatchFormatError`` if unknown)."""
    if not data or data[0] not in (BATCH_FORMAT_V1, BATCH_FORMAT_V2, BATCH_FORMAT_V3):
        raise BatchFormatError("unknown batch format")
    return data[0]


def decode_batch(data: bytes) -> DecodedBatch:
    """Decode batch data of either version by its leading byte; strict: anything that is not
    exactly a batch raises ``BatchFormatError`` (with ``tx_index`` when one transaction is
    at fault)."""
    version = batch_format(data)
    if version == BATCH_FORMAT_V3:
        k, chunks = decode_chunks_v3(data)
        return DecodedBatch(BATCH_FORMAT_V3, [tx for c in chunks for tx in c], k, [len(c) for c in chunks])
    if version == BATCH_FORMAT_V2:
        k, txs = decode_batch_v2(data)
        return DecodedBatch(BATCH_FORMAT_V2, txs, k, [min(k, len(txs) - i) for i in range(0, len(txs), k)])
    txs = []
    for i, raw in enumerate(decode_batch_txs(data)):
        try:
            txs.append(decode_tx(raw))
        except Rejected as exc:
            raise BatchFormatError(f"does not decode: {exc}", i) from None
    return DecodedBatch(BATCH_FORMAT_V1, txs, None)


def encode_batch_txs(encoded_txs: Sequence[bytes]) -> bytes:
    """Batch data, format v1 (no longer posted; kept to read old batches and to compare):
    ``0x01 || for each tx: uint32 big-endian length || tx bytes``, where each tx is its
    canonical ``clearline.core.encoding.encode_tx`` bytes."""
    parts = [bytes((BATCH_FORMAT_V1,))]
    for tx in encoded_txs:
        if not isinstance(tx, (bytes, bytearray)) or not tx:
            raise BatchFormatError("each transaction must be non-empty bytes")
        parts.append(struct.pack(">I", len(tx)))
        parts.append(bytes(tx))
    return b"".join(parts)


def decode_batch_txs(data: bytes) -> list[bytes]:
    """The canonical ABI bytes (``encode_tx``) of each transaction of batch data, v1, v2 or
    v3: for v1 the framing is undone (the bytes are not parsed), for v2 and v3 each decoded
    transaction is re-encoded. Anything else raises ``BatchFormatError``."""
    if batch_format(data) != BATCH_FORMAT_V1:
        return [encode_tx(tx) for tx in decode_batch(data).txs]
    out, pos, end = [], 1, len(data)
    while pos < end:
        if pos + 4 > end:
            raise BatchFormatError("truncated length")
        (n,) = struct.unpack_from(">I", data, pos)
        pos += 4
        if n == 0 or pos + n > end:
            raise BatchFormatError("bad transaction length")
        out.append(bytes(data[pos : pos + n]))
        pos += n
    return out


def state_roots_hash(state_roots: Sequence[bytes]) -> bytes:
    """``keccak256(abi.encodePacked(bytes32[] stateRoots))``."""
    return keccak(b"".join(_hash32(r, "state root") for r in state_roots))


# ---------------------------------------------------------------------- data commitment
def _walk_varint(data: bytes, pos: int) -> tuple[int, int] | None:
    """Lenient LEB128 (at most 10 bytes, overlong allowed), as the Rollup's walk reads it."""
    v = 0
    for i in range(10):
        if pos >= len(data):
            return None
        b = data[pos]
        pos += 1
        v |= (b & 0x7F) << (7 * i)
        if b < 0x80:
            return v, pos
    return None


def batch_data_parts(data: bytes) -> tuple[bytes, list[tuple[int, int]]]:
    """``(head, [(start, end), ...])``: how ``Rollup.appendBatch`` splits batch data for its
    commitment (``BatchDataLib`` in Rollup.sol): a v3 chunk table that walks (``0x03 || u k ||
    u C``: varints of at most 10 bytes, k > 0, C table entries that fit, ends non-decreasing
    from the table's end to the end of the data; or v2's, ``0x02 || u k || u n``
    with C = ceil(n / k)) gives the head (bytes before chunk 0) and the chunks; anything else
    is one head (the whole data) and no chunk."""
    data = bytes(data)
    whole = (data, [])
    if not data or data[0] not in (BATCH_FORMAT_V2, BATCH_FORMAT_V3):
        return whole
    r = _walk_varint(data, 1)
    if r is None or r[0] == 0:
        return whole
    k, pos = r
    r = _walk_varint(data, pos)
    if r is None:
        return whole
    c, pos = r
    if data[0] == BATCH_FORMAT_V2:
        c = -(-c // k)  # v2 writes n
    if c > (len(data) - pos) // 4:
        return whole
    start = table_end = pos + 4 * c
    chunks = []
    for i in range(c):
        (end,) = struct.unpack_from(">I", data, pos + 4 * i)
        if end < start or end > len(data):  # an empty chunk is a matching step (v3)
            return whole
        chunks.append((start, end))
        start = end
    if start != len(data):
        return whole
    return data[:table_end], chunks


def batch_data_hash(data: bytes) -> bytes:
    """The header's ``txsHash`` of batch data: ``keccak256(keccak256(head) || keccak256(chunk_0)
    || ...)`` over ``batch_data_parts`` (``keccak256(keccak256(data))`` when it does not walk)."""
    head, chunks = batch_data_parts(data)
    return keccak(keccak(head) + b"".join(keccak(data[a:b]) for a, b in chunks))


# -------------------------------------------------------------------------- batch header
@dataclass(frozen=True, slots=True)
class BatchHeader:
    """``Batch.sol``'s ``BatchHeader``; the Rollup stores ``keccak256(abi.encode(header))``."""

    number: int  # uint64
    prev_header_hash: bytes  # bytes32
    txs_hash: bytes  # bytes32 batch_data_hash(batch data): per-chunk commitment
    state_roots_hash: bytes  # bytes32
    post_state_root: bytes  # bytes32
    withdrawals_root: bytes  # bytes32
    queue_start: int  # uint64
    queue_end: int  # uint64
    txs_per_root: int  # uint32
    l1_timestamp: int  # uint64

    def encode(self) -> bytes:
        return b"".join((
            _word(self.number, 64, "number"),
            _hash32(self.prev_header_hash, "prev_header_hash"),
            _hash32(self.txs_hash, "txs_hash"),
            _hash32(self.state_roots_hash, "state_roots_hash"),
            _hash32(self.post_state_root, "post_state_root"),
            _hash32(self.withdrawals_root, "withdrawals_root"),
            _word(self.queue_start, 64, "queue_start"),
            _word(self.queue_end, 64, "queue_end"),
            _word(self.txs_per_root, 32, "txs_per_root"),
            _word(self.l1_timestamp, 64, "l1_timestamp"),
        ))

    def hash(self) -> bytes:
        return keccak(self.encode())

    def as_tuple(self) -> tuple:
        """The ABI tuple for contract calls that take a ``BatchHeader``."""
        return astuple(self)

    @classmethod
    def from_event(cls, header: Mapping | Sequence) -> "BatchHeader":
        """From a decoded ``BatchAppended`` event's ``header`` (dict or tuple)."""
        if isinstance(header, Mapping):
            names = [f.name for f in fields(cls)]
            camel = ["number", "prevHeaderHash", "txsHash", "stateRootsHash", "postStateRoot",
                     "withdrawalsRoot", "queueStart", "queueEnd", "txsPerRoot", "l1Timestamp"]
            return cls(**{n: _norm(header[c]) for n, c in zip(names, camel)})
        return cls(*(_norm(v) for v in header))

    @classmethod
    def genesis(cls, state_root: bytes) -> "BatchHeader":
        """Batch 0: all zeros but the genesis state root."""
        z = bytes(32)
        return cls(0, z, z, z, _hash32(state_root, "state_root"), z, 0, 0, 0, 0)


def _norm(v):
    return bytes(v) if isinstance(v, (bytes, bytearray)) else v


# --------------------------------------------------------------------------- withdrawals
@dataclass(frozen=True, slots=True)
class WithdrawalRecord:
    """One withdrawal paid by a batch (user ``Withdraw`` or served forced withdrawal), with the
    transaction that paid it: transaction ``tx_index`` of chunk ``chunk`` of the batch data
    (a fraud proof checks a record against that one transaction)."""

    account_id: int  # uint32
    owner: bytes  # address paid on L1
    amount: int  # uint64 usd6
    chunk: int  # uint32
    tx_index: int  # uint16

    def leaf(self) -> bytes:
        return withdrawal_leaf(self.account_id, self.owner, self.amount, self.chunk, self.tx_index)

    def position(self) -> tuple[int, int]:
        return self.chunk, self.tx_index

    def as_abi(self) -> tuple:
        """The Solidity ``WithdrawalRecord`` struct (Withdrawals.sol) as web3 takes it."""
        return (self.account_id, to_checksum_address(self.owner), self.amount, self.chunk, self.tx_index)


def withdrawal_leaf(account_id: int, owner: bytes, amount: int, chunk: int, tx_index: int) -> bytes:
    """``keccak256(abi.encode(bytes32 WITHDRAWAL_TAG, uint32 accountId, address owner,
    uint64 amount, uint32 chunk, uint16 txIndex))`` (``WithdrawalsLib.leaf``)."""
    return keccak(
        WITHDRAWAL_TAG
        + _word(account_id, 32, "account_id")
        + _address(owner, "owner")
        + _word(amount, 64, "amount")
        + _word(chunk, 32, "chunk")
        + _word(tx_index, 16, "tx_index")
    )


def encode_withdrawals(records: Sequence[WithdrawalRecord]) -> bytes:
    """The records as the sequencer posts them with a batch (``Rollup.appendBatch``'s
    ``withdrawals``; the Rollup computes the header's ``withdrawalsRoot`` from them)."""
    if len(records) > 1 << WITHDRAWALS_DEPTH:
        raise ValueError(f"at most {1 << WITHDRAWALS_DEPTH} withdrawals per batch")
    out = []
    for r in records:
        _address(r.owner, "owner")
        try:
            out.append(_RECORD.pack(r.account_id, bytes(r.owner), r.amount, r.chunk, r.tx_index))
        except struct.error:
            raise ValueError(f"withdrawal record out of range: {r}") from None
    return b"".join(out)


def decode_withdrawals(data: bytes) -> list[WithdrawalRecord]:
    """``encode_withdrawals`` inverted; ``BatchFormatError`` when ``data`` is not whole records."""
    if len(data) % WITHDRAWAL_RECORD_BYTES or len(data) > WITHDRAWAL_RECORD_BYTES << WITHDRAWALS_DEPTH:
        raise BatchFormatError(f"{len(data)} bytes are not packed withdrawal records")
    return [WithdrawalRecord(a, owner, amount, chunk, i) for a, owner, amount, chunk, i
            in _RECORD.iter_unpack(bytes(data))]


def withdrawals_tree(records: Sequence[WithdrawalRecord]) -> SparseMerkleTree:
    """The batch's withdrawal tree: leaf i = ``records[i].leaf()``, depth 16. Its ``root()``
    is the header's ``withdrawalsRoot`` (``ZERO_HASHES[16]`` for a batch without any)."""
    if len(records) > 1 << WITHDRAWALS_DEPTH:
        raise ValueError(f"at most {1 << WITHDRAWALS_DEPTH} withdrawals per batch")
    tree = SparseMerkleTree(WITHDRAWALS_DEPTH)
    tree.update((i, r.leaf()) for i, r in enumerate(records))
    return tree


# ---------------------------------------------------------------------- proof compression
def compress_proof(siblings: Sequence[bytes]) -> tuple[int, list[bytes]]:
    """``(present, kept)``: bit i of ``present`` is set iff sibling i is not the zero hash of
    level i; ``kept`` are those siblings, bottom-up (``SparseMerkle.rootFromCompressedProof``)."""
    present, kept = 0, []
    for i, s in enumerate(siblings):
        s = _hash32(s, f"sibling {i}")
        if s != ZERO_HASHES[i]:
            present |= 1 << i
            kept.append(s)
    return present, kept


def expand_proof(depth: int, present: int, kept: Sequence[bytes]) -> list[bytes]:
    """Inverse of ``compress_proof``."""
    if present < 0 or present >> depth or bin(present).count("1") != len(kept):
        raise ValueError("present bits do not match the kept siblings")
    it = iter(kept)
    return [next(it) if (present >> i) & 1 else ZERO_HASHES[i] for i in range(depth)]
