"""Batch data format v3: batch_v2's transaction codec in variable chunks, each operator-signed
transaction, withdrawal, transfer, order and replace alone in its chunk, and an order's matching
steps as empty chunks after it.

Why: a fraud proof re-executes one chunk, from the state root committed before it to the one
committed after it. In v2 a chunk is every ``k = txsPerRoot`` transactions, so an
operator-signed transaction (``MarkUpdate``: kind 7; ``OperatorAction``: kind 8 -- funding
ticks, liquidations, expiry settlement, listings, operator cancels) usually sits in the
middle of a chunk of orders, which the L1 verifier cannot re-execute: the operator's
transaction could not be proven wrong. In v3 it has its own pre- and post-root. The same holds
for the transactions whose re-execution needs an account's margin (``Withdraw``: 5,
``Transfer``: 6, ``ForcedWithdrawal``: 10): one margin check can cost ~1.2M gas on L1, so a
chunk of several could not be re-executed in one call, and a withdrawal beyond free collateral
hidden among them could not be proven. And for orders and replaces (``Order``: 2, ``Replace``:
4; milestone 9 of docs/fraud-proofs.md): each admission costs a margin check, and each meeting
with the book up to two, so an order has its own chunk and each of its meetings one more: an
**empty chunk** is one ``MatchStep`` of the order being matched (``clearline.core.order_steps``),
so every meeting has its own pre- and post-root.

Layout (``u`` = batch_v2's minimal unsigned LEB128 varint, at most 10 bytes)::

    data   = 0x03 || u k || u C || end[0] .. end[C-1] || chunk[0] .. chunk[C-1]
    end[c] = uint32 big-endian: offset in ``data`` where chunk c ends (chunk 0 starts right
             after the table, chunk c > 0 at end[c-1]; end[C-1] = len(data))
    chunk  = its transactions back to back, each in batch_v2's per-transaction encoding
             (unchanged; ``batch_v2`` documents it). The chunk's transaction count is the
             number of transactions that parse up to its end: it is not written. An empty
             chunk (end[c] = its start) holds no transaction: it is one ``MatchStep`` (at the
             state's time) of the order being matched.

``k`` is the batch's ``txsPerRoot``, now the *largest* chunk; ``C`` the number of chunks, so
the batch commits ``max(1, C)`` state roots (root c after chunk c; one root, the unchanged
one, for an empty batch). ``n``, the number of transactions, is not written (the sum of the
chunks' counts). As in v2 a transaction without the T bit has the time of the previous
transaction *in the same chunk* (0 before the chunk's first), so every chunk decodes on its
own.

Rules (the strict decoder, ``BatchFormatError``, rejects anything else): ``1 <= k <= 2**32 -
1``; ``C = 0`` only for an empty batch (and an empty batch has ``C = 0``); every chunk holds
0..k transactions; a chunk holding an ``Order``, a ``Replace``, a ``MarkUpdate``, an
``OperatorAction``, a ``Withdraw``, a ``Transfer``, a ``ForcedWithdrawal``, a
``SetMarginMode`` or a ``SetAccountFlags`` (packed or fallback: ``ALONE_KINDS``) holds only that
transaction (a fraud proof then re-executes at most one margin check per chunk of these
account transactions); ends non-decreasing, the last at the end of the data; minimal varints,
no trailing byte, and every batch_v2 rule inside the chunks. Whether an empty chunk is right
(an order is matching, and this many steps) is a rule of the state, not of the data: the core
refuses a ``MatchStep`` with no order matching (``NO_ORDER_MATCHING``) and anything else while
one is (``ORDER_MATCHING``).

The honest encoder (``encode_batch_v3``, ``chunk_sizes``) cuts greedily: a chunk ends when it
holds ``k`` transactions, and right before and right after each transaction that must be
alone, which is followed by its order's matching steps (``steps``: how many; the replay in
step mode tells). Its output for a transaction list is unique, so ``encode_batch_v3(decode) ==
data`` for every batch it wrote (up to batch_v2's risk-array mode choice). A strict decoder
accepts other cuts too (e.g. chunks shorter than the greedy ones): the rules above are what
a fraud proof can check about one chunk.

Pure and deterministic (no I/O, clock or randomness).
"""

from __future__ import annotations

from collections.abc import Sequence

from clearline.core.txs import (ForcedWithdrawal, MarkUpdate, OperatorAction, Order, Replace, SetAccountFlags,
                                SetMarginMode, Transfer, Withdraw)

from .batch_v2 import (_U32, FALLBACK, BatchFormatError, _chunk_parts, decode_chunk, encode_chunk, frame_chunks,
                       read_chunk_table)

__all__ = ["BATCH_FORMAT_V3", "chunk_bounds_v3", "chunk_sizes", "chunk_table_v3", "decode_batch_v3",
           "decode_chunk_v3", "decode_chunks_v3", "encode_batch_v3", "must_be_alone", "payload_must_be_alone", "steps_after",
           "tx_sizes_v3"]

BATCH_FORMAT_V3 = 0x03
# the transactions alone in their chunk (head kind / ABI kind byte): Order, Replace, Withdraw, Transfer,
# MarkUpdate, OperatorAction, SetMarginMode, ForcedWithdrawal, SetAccountFlags
ALONE_KINDS = (2, 4, 5, 6, 7, 8, 9, 10, 11)
_ALONE = (Order, Replace, Withdraw, Transfer, MarkUpdate, OperatorAction, SetMarginMode, ForcedWithdrawal,
          SetAccountFlags)


def must_be_alone(tx) -> bool:
    """A transaction that must be alone in its chunk (``ALONE_KINDS``)."""
    return isinstance(tx, _ALONE)


def _check_k(k) -> int:
    if type(k) is not int or not 0 < k <= _U32:
        raise BatchFormatError("txs_per_chunk must be a positive uint32")
    return k


def payload_must_be_alone(payload: bytes) -> bool:
    """``must_be_alone`` of a transaction's canonical ABI bytes (``encode_tx``, as journaled):
    its kind byte, without decoding it."""
    return len(payload) >= 32 and payload[31] in ALONE_KINDS


def chunk_sizes(txs: Sequence, k: int, alone=must_be_alone, steps: Sequence[int] | None = None) -> list[int]:
    """The honest cut of ``txs`` into chunks of at most ``k`` (module docstring): the number of
    transactions in each chunk, in order (empty for no transaction); a 0 is a matching step.
    ``alone`` tells the ones that must be alone (``payload_must_be_alone`` for journal
    payloads); ``steps[i]``, the matching steps after transaction ``i`` (none if not given)."""
    _check_k(k)
    out: list[int] = []
    cur = 0
    for i, tx in enumerate(txs):
        if alone(tx):
            if cur:
                out.append(cur)
            out.append(1)
            if steps is not None and steps[i]:
                out.extend([0] * steps[i])
            cur = 0
            continue
        cur += 1
        if cur == k:
            out.append(cur)
            cur = 0
    if cur:
        out.append(cur)
    return out


def steps_after(sizes: Sequence[int]) -> list[int]:
    """The matching steps after each transaction (the empty chunks that follow its chunk) of a
    batch cut into ``sizes``: what ``chunk_sizes(..., steps=)`` takes back."""
    out: list[int] = []
    for size in sizes:
        if size:
            out.extend([0] * size)
        elif out:
            out[-1] += 1
    return out


def _split(txs: Sequence, sizes: list[int]) -> list[Sequence]:
    out, i = [], 0
    for s in sizes:
        out.append(txs[i:i + s])
        i += s
    return out


def encode_batch_v3(txs: Sequence, txs_per_chunk: int, steps: Sequence[int] | None = None) -> bytes:
    """Batch data v3 of core transaction objects, cut by ``chunk_sizes`` (``txs_per_chunk`` is
    the batch's ``txsPerRoot``, ``steps`` the matching steps after each). Raises
    ``BatchFormatError`` for a non-encodable transaction."""
    k = _check_k(txs_per_chunk)
    txs = list(txs)
    chunks = [encode_chunk(c) if c else b"" for c in _split(txs, chunk_sizes(txs, k, steps=steps))]
    return frame_chunks(BATCH_FORMAT_V3, k, len(chunks), chunks)


def tx_sizes_v3(txs: Sequence, txs_per_chunk: int) -> list[tuple[int, int]]:
    """``(bytes, signature bytes)`` each transaction takes in ``encode_batch_v3(txs, k)``
    (framing excluded), as batch_v2's ``tx_sizes``."""
    txs = list(txs)
    out = []
    for chunk in _split(txs, chunk_sizes(txs, txs_per_chunk)):
        for tx, b in zip(chunk, _chunk_parts(chunk)):
            n_sigs = (1 if isinstance(getattr(tx, "signature", None), (bytes, bytearray)) and tx.signature else 0) \
                + sum(1 for r in getattr(tx, "reports", ()) or () if getattr(r, "signature", b""))
            out.append((len(b), n_sigs * (96 if b[0] == FALLBACK else 64)))
    return out


def chunk_table_v3(data: bytes) -> tuple[int, list[tuple[int, int]]]:
    """``(k, [(start, end), ...])`` of v3 ``data``: the header and the chunk table, checked
    (the chunks themselves are not parsed). Raises ``BatchFormatError``."""
    k, _, table = read_chunk_table(data, BATCH_FORMAT_V3, lambda k, c: c)
    return k, table


def decode_chunk_v3(data: bytes, start: int, end: int, k: int, first_index: int = 0) -> list:
    """The transactions of one v3 chunk ``data[start:end]``: all that parse up to ``end``, 0..k
    of them (none: a matching step), one that must be alone alone. ``first_index`` numbers
    them in errors."""
    if start == end:
        return []
    txs = decode_chunk(data, start, end, None, first_index, max_count=k)
    if len(txs) > 1:
        for i, tx in enumerate(txs):
            if must_be_alone(tx):
                raise BatchFormatError(f"{type(tx).__name__} shares its chunk with other transactions",
                                       first_index + i)
    return txs


def decode_chunks_v3(data: bytes) -> tuple[int, list[list]]:
    """``(txs_per_chunk, [transactions of chunk 0, ...])`` of v3 batch ``data``; strict."""
    data = bytes(data)
    k, table = chunk_table_v3(data)
    chunks: list[list] = []
    first = 0
    for start, end in table:
        txs = decode_chunk_v3(data, start, end, k, first)
        chunks.append(txs)
        first += len(txs)
    return k, chunks


def chunk_bounds_v3(data: bytes) -> tuple[int, list[tuple[int, int, int, int]]]:
    """``(k, [(start, end, count, first_tx_index), ...])`` of v3 ``data``, every chunk decoded
    (strict: its count is what parses to its end)."""
    data = bytes(data)
    k, chunks = decode_chunks_v3(data)
    _, table = chunk_table_v3(data)
    out, first = [], 0
    for (start, end), txs in zip(table, chunks):
        out.append((start, end, len(txs), first))
        first += len(txs)
    return k, out


def decode_batch_v3(data: bytes) -> tuple[int, list]:
    """``(txs_per_chunk, transactions)`` of v3 batch ``data``; raises ``BatchFormatError``."""
    k, chunks = decode_chunks_v3(data)
    return k, [tx for c in chunks for tx in c]
