"""Rebuild the whole state from L1 data alone and check every commitment of every batch.

Inputs (``l1data.RollupReader``): the Rollup's ``Genesis`` event (the genesis config), every
batch's header (``BatchAppended``) and calldata (``appendBatch``'s ``txs`` and
``stateRoots``), and the Vault's queue items. No sequencer, no journal.

Checks, in order, stopping at the first failure (after it the rebuilt state and the chain's
have diverged, so later comparisons would say nothing new):

- genesis: the config decodes, ``State(genesis).root()`` is the committed genesis root, and
  its EIP-712 domain binds this chain id and this Rollup (else signatures could be replayed);
- per batch: it links to the previous header; its data decodes (``formats.decode_batch``:
  format v3, or v2 / v1 as older batchers posted them; strict), a v2 or v3 batch's ``k`` is
  the header's ``txsPerRoot``; it carries one root per chunk (v3: the chunk table, each
  chunk 1..k transactions, an operator-signed one alone; v1, v2: chunks of ``txsPerRoot``),
  one for an empty batch; ``queueStart`` is the rebuilt queue position;
- per transaction: an L1 transaction (``Deposit``, ``ForcedWithdrawal``) consumes an item in
  ``[queueStart, queueEnd)`` that exists on L1 and whose stored hash it matches; signatures
  are recovered here (``clearline.core.eip712``, on worker threads, in chunks) and the
  transaction is applied with ``clearline.core.apply``;
- after every chunk: the rebuilt state root equals the committed one. With chunks of more
  than one transaction the first bad root pins the chunk; the report names the chunk's last
  transaction (whose post-state the root commits to) and its first one;
- per batch end: the withdrawals root (``clearline.batcher.records``) and ``queueEnd``.

A transaction the core rejects is not by itself a mismatch (a rejection changes nothing, so
the roots decide); it is counted in ``rejected_txs`` because an honest batcher never posts one.

``verify(source, rollup_address, progress=...) -> VerifyReport``; ``main(argv)`` is the
``clearline verify --rpc URL --rollup ADDRESS`` command (exit status 0 ok, 1 mismatch,
2 error).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import operator
import os
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from clearline.batcher.records import tx_positions, withdrawal_records
from clearline.core import eip712
from clearline.core.apply import apply
from clearline.core.encoding import decode_tx
from clearline.core.state import Genesis, State
from clearline.core.txs import SIGNED_KINDS, Deposit, ForcedWithdrawal, MarkUpdate, MatchStep
from clearline.l1.batch_v3 import chunk_table_v3, decode_chunk_v3
from clearline.oracle.report import recover_reporters_ahead
from clearline.l1.formats import (BATCH_FORMAT_V3, QUEUE_DEPOSIT, QUEUE_FORCED_WITHDRAWAL, BatchFormatError,
                                  decode_batch, decode_batch_txs, deposit_item_hash, queue_item_hash,
                                  withdrawals_tree)

from .l1data import BatchCalldata, BatchRef, RollupReader

__all__ = ["Mismatch", "VerifyReport", "add_arguments", "main", "run", "verify"]


def _hex(v: Any) -> Any:
    return "0x" + v.hex() if isinstance(v, (bytes, bytearray)) else v


@dataclass(frozen=True)
class Mismatch:
    """The first commitment that L1 data does not reproduce.

    ``kind``: ``genesis`` | ``header_link`` | ``undecodable`` | ``root_count`` | ``queue_start``
    | ``queue_item`` | ``state_root`` | ``withdrawals_root`` | ``queue_end``. ``tx_index`` is
    the transaction's index in the batch (None for batch-level checks); ``expected`` is what
    the L1 data implies (the rebuilt value), ``committed`` what the batch committed."""

    kind: str
    batch: int
    tx_index: int | None
    expected: Any
    committed: Any
    detail: str = ""
    root_index: int | None = None
    chunk_first_tx: int | None = None

    def line(self) -> str:
        where = f"batch {self.batch}"
        if self.tx_index is not None:
            where += f", transaction {self.tx_index}"
            if self.root_index is not None:
                where += f" (state root #{self.root_index}"
                if self.chunk_first_tx is not None and self.chunk_first_tx != self.tx_index:
                    where += f", after transactions {self.chunk_first_tx}..{self.tx_index}"
                where += ")"
        elif self.root_index is not None:
            where += f", state root #{self.root_index}"
        text = f"MISMATCH {self.kind} at {where}: expected {_hex(self.expected)}, committed {_hex(self.committed)}"
        return text + (f" -- {self.detail}" if self.detail else "")

    def to_dict(self) -> dict:
        return {k: _hex(v) for k, v in asdict(self).items()}


@dataclass
class VerifyReport:
    rollup: str
    chain_id: int
    ok: bool
    mismatch: Mismatch | None
    last_batch: int  # on chain
    last_finalized_batch: int
    verified_batch: int  # last batch whose every commitment was reproduced
    batches_checked: int
    txs: int  # transactions replayed
    rejected_txs: int
    withdrawals: int
    queue_consumed: int  # rebuilt L1 queue position
    state_root: bytes  # rebuilt root after `verified_batch`
    accounts: int
    seconds: float  # whole run, RPC included
    replay_seconds: float  # fetching, decoding, recovering and applying (after the event scans)
    wait_seconds: float = 0.0  # of which this thread waited for data or signatures
    first_rejected: str | None = None
    per_batch: list[tuple[int, int]] = field(default_factory=list, repr=False)  # (batch, txs)

    @property
    def tx_per_s(self) -> float:
        """Rebuild speed: transactions replayed per second of the replay phase."""
        return self.txs / self.replay_seconds if self.replay_seconds > 0 else 0.0

    @property
    def apply_tx_per_s(self) -> float:
        """Transactions applied per second of this thread's own work (no waiting)."""
        busy = self.replay_seconds - self.wait_seconds
        return self.txs / busy if busy > 0 else 0.0

    def line(self) -> str:
        head = (f"verified {self.batches_checked} batches, {self.txs:,} transactions "
                f"({self.tx_per_s:,.0f} tx/s) of rollup {self.rollup} on chain {self.chain_id}")
        if self.ok:
            return (f"OK: {head}; every committed root matches. Last batch {self.last_batch}, finalized "
                    f"{self.last_finalized_batch}; state root 0x{self.state_root.hex()}")
        return f"FAIL: {head}; last good batch {self.verified_batch}. {self.mismatch.line()}"

    def to_dict(self) -> dict:
        d = {k: _hex(v) for k, v in asdict(self).items() if k not in ("mismatch", "per_batch")}
        d["mismatch"] = self.mismatch.to_dict() if self.mismatch else None
        d["tx_per_s"] = round(self.tx_per_s, 1)
        d["apply_tx_per_s"] = round(self.apply_tx_per_s, 1)
        return d


# ------------------------------------------------------------------------------ progress
class _Progress:
    """A rich bar on a terminal, plain lines (stderr) otherwise, a callable, or nothing."""

    def __init__(self, mode: Any, total_batches: int):
        self.total = total_batches
        self.fn: Callable | None = None
        self.bar = None
        self.t0 = time.perf_counter()
        self.last_line = 0.0
        if callable(mode):
            self.fn = mode
            mode = "callable"
        elif mode in (None, False, "none"):
            mode = "none"
        elif mode in ("auto", True):
            mode = "rich" if sys.stderr.isatty() else "plain"
        self.mode = mode
        if mode == "rich":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("verify"), BarColumn(), MofNCompleteColumn(), TextColumn("batches"),
                                TextColumn("{task.fields[txs]:,} tx, {task.fields[rate]:,.0f} tx/s"),
                                TimeElapsedColumn(), console=Console(stderr=True), transient=True)
            self.task = self.bar.add_task("verify", total=total_batches, txs=0, rate=0.0)
            self.bar.start()

    def update(self, batches: int, txs: int) -> None:
        now = time.perf_counter()
        rate = txs / max(now - self.t0, 1e-9)
        if self.mode == "callable":
            self.fn(batches, self.total, txs)
        elif self.mode == "rich":
            self.bar.update(self.task, completed=batches, txs=txs, rate=rate)
        elif self.mode == "plain" and (now - self.last_line >= 2.0 or batches == self.total):
            self.last_line = now
            print(f"verify: batch {batches}/{self.total}, {txs:,} transactions, {rate:,.0f} tx/s",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


# ------------------------------------------------------------------------------ pipeline
@dataclass
class _Prepared:
    ref: BatchRef
    calldata: BatchCalldata
    txs: list | None  # decoded transactions (None: the batch data does not decode)
    error: str | None  # why the batch data does not decode
    recovered: list = field(default_factory=list)  # (first index, future) of signer-recovery chunks
    error_tx: int | None = None  # the transaction at fault in data that does not decode
    # tx index -> a MarkUpdate's oracle reporters recovered with the signers (for ``apply``)
    reporters: dict = field(default_factory=dict)
    chunk_sizes: list | None = None  # transactions per chunk: a state root after each
    groups: list = field(default_factory=list)  # process mode, v3: futures of decoded chunk groups, in order


def _reporters(domain: eip712.Domain, txs: list) -> dict:
    """``{index in txs: RecoveredReporters}`` of the MarkUpdates in ``txs`` that carry oracle
    reports: recovered here, next to the signers, instead of on the applying thread."""
    return {i: recover_reporters_ahead(domain, tx.reports) for i, tx in enumerate(txs)
            if type(tx) is MarkUpdate and tx.reports}


def _recover_chunk(domain: eip712.Domain, txs: list) -> dict:
    """Thread mode: fill ``signer`` in place (None where the signature does not recover);
    returns the MarkUpdates' recovered reporters (``_reporters``)."""
    signed = SIGNED_KINDS
    recover = eip712.recover_signer
    for tx in txs:
        if isinstance(tx, signed):
            try:
                tx.signer = recover(domain, tx)
            except Exception:  # Rejected, or fields no signature can cover
                tx.signer = None  # apply rejects it as unsigned
    return _reporters(domain, txs)


_worker_domain: eip712.Domain | None = None


# Transactions travel back from the workers pickled. The default pickling of a slots
# dataclass calls its Python-level __getstate__ / __setstate__ per object (~4.4 us to pickle
# and ~3.1 us to unpickle a transaction, measured); reduced to ``(class, field values)`` they
# pickle in ~1.7 us and unpickle through the constructor in ~2.2 us (in the applying process).
# Registered in the workers only (it is how they pickle); tests/unit/test_watchtower_pickling.py
# pins that every transaction kind comes back equal.
_TX_CLASSES = (Deposit, ForcedWithdrawal, MatchStep) + tuple(SIGNED_KINDS)


def _fields_of(cls):
    """A getter of ``cls``'s field values as a tuple (``attrgetter`` of one name is no tuple)."""
    get = operator.attrgetter(*(f.name for f in dataclasses.fields(cls)))
    return get if len(dataclasses.fields(cls)) > 1 else (lambda tx: (get(tx),))


_TX_FIELDS = {cls: _fields_of(cls) for cls in _TX_CLASSES}


def _reduce_tx(tx) -> tuple:
    return type(tx), _TX_FIELDS[type(tx)](tx)


def _register_tx_reducers(pickler) -> None:
    """Make ``pickler`` (a ``ForkingPickler`` class) pickle transactions as ``_reduce_tx``
    (each class whose fields are all constructor arguments: so ``cls(*fields)`` rebuilds it)."""
    for cls in _TX_CLASSES:
        if all(f.init for f in dataclasses.fields(cls)):
            pickler.register(cls, _reduce_tx)


def _init_worker(chain_id: int, contract: bytes) -> None:
    global _worker_domain
    _worker_domain = eip712.Domain(chain_id, contract)
    from multiprocessing.reduction import ForkingPickler

    _register_tx_reducers(ForkingPickler)


def _signers(txs: list) -> list:
    signed = SIGNED_KINDS
    recover = eip712.recover_signer
    out: list = []
    for tx in txs:
        try:
            out.append(recover(_worker_domain, tx) if isinstance(tx, signed) else None)
        except Exception:  # the applying thread sees a missing signer and rejects the transaction
            out.append(None)
    return out


def _signers_chunk(payloads: list[bytes]) -> tuple[list, dict]:
    """Process mode, v1 data, in a worker: the recovered signer of each encoded transaction
    (None if it is unsigned, does not decode or does not recover), and the MarkUpdates'
    recovered reporters (``_reporters``). Only addresses (and the reports) travel back."""
    txs = []
    for p in payloads:
        try:
            txs.append(decode_tx(p))
        except Exception:  # the applying thread sees the same decode failure
            txs.append(None)
    return _signers(txs), _reporters(_worker_domain, txs)


def _decode_recover_v3(data: bytes, bounds: list, k: int) -> tuple[list, list, dict] | BatchFormatError:
    """Process mode, v3 data, in a worker: decode the chunks ``bounds`` (start, end) of
    ``data`` (a slice of the batch: v3 chunks decode on their own), recover each signer
    (None where it does not recover) and send the transactions back with ``signer`` set:
    unpickling them costs the applying process a quarter of decoding them; with them the
    chunks' sizes and the MarkUpdates' recovered reporters (``_reporters``). Data that does
    not decode comes back as its ``BatchFormatError`` (``tx_index`` counted from the group's
    first transaction)."""
    txs: list = []
    sizes: list = []
    try:
        for start, end in bounds:
            chunk = decode_chunk_v3(data, start, end, k, len(txs))
            txs.extend(chunk)
            sizes.append(len(chunk))
    except BatchFormatError as exc:
        return exc
    signed, recover = SIGNED_KINDS, eip712.recover_signer
    for tx in txs:
        if isinstance(tx, signed):
            try:
                tx.signer = recover(_worker_domain, tx)
            except Exception:  # the applying thread sees a missing signer and rejects the transaction
                tx.signer = None
    return txs, sizes, _reporters(_worker_domain, txs)


class _Undecodable(Exception):
    """A v3 chunk that a worker could not decode (``_Verifier.batch`` reports it)."""

    def __init__(self, error: BatchFormatError):
        super().__init__(str(error))
        self.error = error


def _prepare(reader: RollupReader, ref: BatchRef, domain: eip712.Domain, pool, chunk: int,
             processes: bool) -> _Prepared:
    """Fetch one batch's calldata, decode it and start recovering its signers. In process
    mode a v3 batch is only framed here (its chunk table checked): the workers decode groups
    of chunks and recover, and ``_Verifier.batch`` collects them (``_collect_groups``)."""
    cd = reader.batch_calldata(ref)
    k = ref.header.txs_per_root
    if processes and cd.txs[:1] == bytes((BATCH_FORMAT_V3,)):
        try:
            k2, bounds = chunk_table_v3(cd.txs)
        except BatchFormatError as exc:
            return _Prepared(ref, cd, None, str(exc), error_tx=exc.tx_index)
        if k2 != k:
            return _Prepared(ref, cd, None, f"chunks of up to {k2} transactions, but txsPerRoot is {k}")
        per_task = max(1, chunk // k)
        groups = []
        for g in range(0, len(bounds), per_task):
            group = bounds[g:g + per_task]
            lo, hi = group[0][0], group[-1][1]
            rel = [(a - lo, b - lo) for a, b in group]
            groups.append(pool.submit(_decode_recover_v3, cd.txs[lo:hi], rel, k))
        return _Prepared(ref, cd, [], None, chunk_sizes=[], groups=groups)
    try:
        batch = decode_batch(cd.txs)
    except BatchFormatError as exc:
        return _Prepared(ref, cd, None, str(exc), error_tx=exc.tx_index)
    txs = batch.txs
    if batch.txs_per_chunk is not None and batch.txs_per_chunk != k:
        return _Prepared(ref, cd, None, f"chunks of up to {batch.txs_per_chunk} transactions, but txsPerRoot is {k}")
    sizes = batch.chunk_sizes
    if sizes is None:  # v1: a root every txsPerRoot transactions
        sizes = [min(k, len(txs) - i) for i in range(0, len(txs), k)]
    if not processes:
        futures = [(i, pool.submit(_recover_chunk, domain, txs[i:i + chunk])) for i in range(0, len(txs), chunk)]
    else:
        raw = decode_batch_txs(cd.txs)
        futures = [(i, pool.submit(_signers_chunk, raw[i:i + chunk])) for i in range(0, len(raw), chunk)]
    return _Prepared(ref, cd, txs, None, futures, chunk_sizes=sizes)


def _collect_groups(prep: _Prepared) -> None:
    """Process mode, v3: wait for the workers' decoded chunk groups, in order, and put their
    transactions, chunk sizes and recovered reporters in ``prep``. Raises ``_Undecodable``
    (with the transaction's index in the batch) for a group that does not decode."""
    for future in prep.groups:
        result = future.result()
        lo = len(prep.txs)
        if isinstance(result, BatchFormatError):
            if result.tx_index is None:
                raise _Undecodable(result)
            msg = str(result).removeprefix(f"transaction {result.tx_index}: ")
            raise _Undecodable(BatchFormatError(msg, lo + result.tx_index))
        txs, sizes, reporters = result
        prep.txs.extend(txs)
        prep.chunk_sizes.extend(sizes)
        for i, rr in reporters.items():
            prep.reporters[lo + i] = rr
    prep.groups = []


def _fill_signers(prep: _Prepared, f) -> None:
    """Set ``signer`` on the transactions of one recovery chunk and note its recovered
    reporters; waits for it."""
    lo, future = f
    result = future.result()
    if isinstance(result, dict):  # thread mode: signers filled in place
        reporters = result
    else:
        signers, reporters = result
        for tx, s in zip(prep.txs[lo:lo + len(signers)], signers):
            if isinstance(tx, SIGNED_KINDS):
                tx.signer = s
    for i, rr in reporters.items():
        prep.reporters[lo + i] = rr


def _wait_signers(prep: _Prepared) -> None:
    """Wait for every recovery chunk of ``prep`` (``_Verifier.batch`` otherwise waits for
    each chunk only when it reaches it, so applying overlaps recovering)."""
    for f in prep.recovered:
        _fill_signers(prep, f)
    prep.recovered = []


class _Verifier:
    def __init__(self, reader: RollupReader, queue: dict, state: State):
        self.reader = reader
        self.queue = queue  # index -> (QueueItem, stored hash)
        self.state = state
        self.txs = 0
        self.rejected = 0
        self.first_rejected: str | None = None
        self.withdrawals = 0
        self.wait_seconds = 0.0  # waiting for recovered signers

    def _queue_check(self, number: int, j: int, tx, queue_end: int) -> Mismatch | None:
        q = tx.queue_index
        got = deposit_item_hash(tx) if type(tx) is Deposit else queue_item_hash(
            QUEUE_FORCED_WITHDRAWAL, q, tx.owner, tx.account, tx.amount)
        entry = self.queue.get(q)
        if entry is None:
            return Mismatch("queue_item", number, j, None, got, f"queue item {q} does not exist on L1")
        item, stored = entry
        if q >= queue_end:
            return Mismatch("queue_item", number, j, queue_end, q,
                            f"consumes queue item {q} at or beyond the batch's queueEnd")
        kind = QUEUE_DEPOSIT if type(tx) is Deposit else QUEUE_FORCED_WITHDRAWAL
        if item.kind != kind or got != stored:
            return Mismatch("queue_item", number, j, stored, got,
                            f"queue item {q}: the transaction does not match the L1 item hash")
        return None

    def batch(self, prep: _Prepared) -> Mismatch | None:
        h = prep.ref.header
        number = h.number
        state = self.state
        if prep.txs is None:
            return Mismatch("undecodable", number, prep.error_tx, "batch data format v3, v2 or v1", None,
                            prep.error or "")
        if prep.groups:
            tw = time.perf_counter()
            try:
                _collect_groups(prep)
            except _Undecodable as exc:
                return Mismatch("undecodable", number, exc.error.tx_index, "batch data format v3", None, str(exc))
            self.wait_seconds += time.perf_counter() - tw
        txs = prep.txs
        n = len(txs)
        k = h.txs_per_root
        roots = prep.calldata.state_roots
        sizes = prep.chunk_sizes
        want = max(1, len(sizes))
        if len(roots) != want:
            return Mismatch("root_count", number, None, want, len(roots),
                            f"{n} transactions in {len(sizes)} chunks of up to {k} need {want} roots")
        if h.queue_start != state.l1_queue_pos:
            return Mismatch("queue_start", number, None, state.l1_queue_pos, h.queue_start)
        records: list = []
        positions = tx_positions(sizes)
        l1_kinds = (Deposit, ForcedWithdrawal)
        pending = deque(prep.recovered)  # recovery chunks, in order: wait for each when reached
        reporters = prep.reporters  # filled in as the chunks are reached
        prep.recovered = []
        next_chunk = pending[0][0] if pending else n
        stepwise = prep.calldata.txs[:1] == bytes((BATCH_FORMAT_V3,))  # orders matched step by step
        j = 0
        for i, size in enumerate(sizes):
            first = j
            if size == 0:  # v3: one matching step of the order being matched
                r = apply(state, MatchStep(state.time_ms))
                if not r.ok:
                    self.rejected += 1
                    if self.first_rejected is None:
                        self.first_rejected = f"batch {number} chunk {i} (a matching step): {r}"
            for j in range(first, first + size):
                tx = txs[j]
                if j == next_chunk:
                    tw = time.perf_counter()
                    _fill_signers(prep, pending.popleft())
                    self.wait_seconds += time.perf_counter() - tw
                    next_chunk = pending[0][0] if pending else n
                if type(tx) in l1_kinds:
                    bad = self._queue_check(number, j, tx, h.queue_end)
                    if bad is not None:
                        return bad
                r = apply(state, tx, reporters.get(j)) if type(tx) is MarkUpdate else apply(state, tx, None, stepwise)
                if r.ok:
                    if r.events:
                        records.extend(withdrawal_records(state, r, positions[j]))
                else:
                    self.rejected += 1
                    if self.first_rejected is None:
                        self.first_rejected = f"batch {number} transaction {j}: {r}"
            j = first + size
            root = state.root()
            if root != roots[i]:
                return Mismatch("state_root", number, j - 1 if size else None, root, roots[i], root_index=i,
                                chunk_first_tx=first, detail="" if size else f"chunk {i}: a matching step")
        if not sizes:
            root = state.root()
            if root != roots[0]:
                return Mismatch("state_root", number, None, root, roots[0], "empty batch", root_index=0)
        self.txs += n
        wroot = withdrawals_tree(records).root()
        if wroot != h.withdrawals_root:
            return Mismatch("withdrawals_root", number, None, wroot, h.withdrawals_root,
                            f"{len(records)} withdrawals in the batch")
        self.withdrawals += len(records)
        if state.l1_queue_pos != h.queue_end:
            return Mismatch("queue_end", number, None, state.l1_queue_pos, h.queue_end)
        return None


def _genesis_check(reader: RollupReader) -> tuple[State | None, Mismatch | None]:
    g = reader.genesis()
    try:
        genesis = Genesis.from_json(g.config)
        state = State(genesis)
    except Exception as exc:  # anything a bad config can raise
        return None, Mismatch("genesis", 0, None, "a Genesis.to_json() config", None,
                              f"the genesis config does not decode: {exc.__class__.__name__}: {exc}")
    root = state.root()
    if root != g.state_root:
        return None, Mismatch("genesis", 0, None, root, g.state_root, "genesis state root")
    rollup = bytes.fromhex(reader.address[2:])
    if genesis.verifying_contract != rollup or genesis.chain_id != reader.chain_id:
        return None, Mismatch("genesis", 0, None, f"chain {reader.chain_id} rollup {reader.address}",
                              f"chain {genesis.chain_id} rollup 0x{genesis.verifying_contract.hex()}",
                              "the EIP-712 domain does not bind this rollup")
    return state, None


def _make_pool(mode: str, workers: int, domain: eip712.Domain, n_batches: int):
    """``(pool, processes?)``. ``auto``: worker processes when there are 2+ workers, 2+ CPUs
    and a chain long enough to repay their start (libsecp256k1 recovery through coincurve
    holds the GIL, measured: two threads recover no faster than one), else threads. Two
    batches are enough: v2 batches hold up to ``max_txs`` (1,000) transactions."""
    if mode == "auto":
        mode = "process" if workers > 1 and (os.cpu_count() or 1) > 1 and n_batches >= 2 else "thread"
    if mode == "process":
        # fork before this function starts any thread of its own; children only decode and recover
        pool = ProcessPoolExecutor(max(1, workers), mp_context=mp.get_context("fork"), initializer=_init_worker,
                                   initargs=(domain.chain_id, domain.verifying_contract))
        pool.submit(int).result()  # start the workers now
        return pool, True
    if mode != "thread":
        raise ValueError(f"mode must be auto, thread or process, got {mode!r}")
    return ThreadPoolExecutor(max(1, workers), thread_name_prefix="verify-sig"), False


def verify(source: Any, rollup_address: str | bytes, *, progress: Any = "auto", workers: int = 2,
           mode: str = "auto", from_block: int | None = None, chunk: int = 256,
           lookahead: int = 8) -> VerifyReport:
    """Rebuild from L1 data and check every commitment. ``source``: RPC URL, ``Web3`` or
    ``Chain``. ``progress``: "auto" (rich bar on a terminal, plain lines otherwise), "rich",
    "plain", "none"/None, or a callable ``(batches_done, batches_total, txs_done)``.
    ``mode``: where signatures are recovered: "thread", "process" or "auto" (see
    ``_make_pool``); one I/O thread fetches and decodes up to ``lookahead`` batches ahead
    while this thread applies. Raises ``L1DataError`` when the data cannot be read (that is
    not a mismatch)."""
    t0 = time.perf_counter()
    reader = RollupReader(source, rollup_address, from_block=from_block)
    last_batch = reader.last_batch()
    finalized = reader.last_finalized_batch()
    state, mismatch = _genesis_check(reader)
    verified_root = reader.genesis().state_root
    timing = {"replay": 0.0, "wait": 0.0}

    def report(v: _Verifier | None, verified: int, checked: int, per_batch) -> VerifyReport:
        st = v.state if v is not None else None
        return VerifyReport(
            rollup=reader.address, chain_id=reader.chain_id, ok=mismatch is None, mismatch=mismatch,
            last_batch=last_batch, last_finalized_batch=finalized, verified_batch=verified,
            batches_checked=checked, txs=v.txs if v else 0, rejected_txs=v.rejected if v else 0,
            withdrawals=v.withdrawals if v else 0, queue_consumed=st.l1_queue_pos if st else 0,
            state_root=verified_root, accounts=len(st.accounts) if st else 0,
            seconds=time.perf_counter() - t0, replay_seconds=timing["replay"],
            wait_seconds=timing["wait"] + (v.wait_seconds if v else 0.0),
            first_rejected=v.first_rejected if v else None, per_batch=per_batch)

    if mismatch is not None:
        return report(None, -1, 0, [])
    refs = reader.batch_refs(1) if last_batch else []
    queue = {item.index: (item, h) for item, h in reader.queue_items()}
    v = _Verifier(reader, queue, state)
    domain = state.domain
    sig_pool, processes = _make_pool(mode, workers, domain, len(refs))
    io_pool = ThreadPoolExecutor(1, thread_name_prefix="verify-io")
    bar = _Progress(progress, len(refs))
    window: deque = deque()
    it = iter(refs)
    verified, checked, per_batch = 0, 0, []
    t_replay = time.perf_counter()
    try:
        def fill() -> None:
            while len(window) < lookahead:
                ref = next(it, None)
                if ref is None:
                    return
                window.append(io_pool.submit(_prepare, reader, ref, domain, sig_pool, chunk, processes))

        fill()
        prev_hash = reader.genesis_header().hash()
        while window:
            tw = time.perf_counter()
            prep = window.popleft().result()
            fill()
            timing["wait"] += time.perf_counter() - tw
            checked += 1
            h = prep.ref.header
            if h.prev_header_hash != prev_hash:
                mismatch = Mismatch("header_link", h.number, None, prev_hash, h.prev_header_hash)
                break
            mismatch = v.batch(prep)
            if mismatch is not None:
                break
            prev_hash = prep.ref.header_hash
            verified = h.number
            verified_root = h.post_state_root
            per_batch.append((h.number, len(prep.txs)))
            bar.update(checked, v.txs)
    finally:
        timing["replay"] = time.perf_counter() - t_replay
        bar.close()
        for f in window:
            f.cancel()
        io_pool.shutdown(wait=True, cancel_futures=True)
        sig_pool.shutdown(wait=True, cancel_futures=True)
    return report(v, verified, checked, per_batch)


# ---------------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``verify`` options, for a subcommand parser (``clearline verify``)."""
    p.add_argument("--rpc", required=True, help="Ethereum JSON-RPC URL")
    p.add_argument("--rollup", required=True, help="Rollup contract address (0x...)")
    p.add_argument("--from-block", type=int, default=None, help="first block to scan for events (default 0)")
    p.add_argument("--workers", type=int, default=2, help="signature-recovery workers (default 2)")
    p.add_argument("--mode", choices=("auto", "process", "thread"), default="auto",
                   help="recover signatures in worker processes or threads (default auto)")
    p.add_argument("--progress", choices=("auto", "rich", "plain", "none"), default="auto",
                   help="progress display on stderr (auto: a bar on a terminal, lines otherwise)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def build_parser(prog: str = "clearline verify") -> argparse.ArgumentParser:
    return add_arguments(argparse.ArgumentParser(
        prog=prog, description="Rebuild a clearline rollup's state from L1 data alone and check every committed root."))


def run(args: argparse.Namespace) -> int:
    """Run ``verify`` for parsed ``args``; prints the report. Exit status: 0 every commitment
    matches, 1 a mismatch (the line names it), 2 the data could not be read."""
    try:
        rep = verify(args.rpc, args.rollup, progress=args.progress, workers=args.workers, mode=args.mode,
                     from_block=args.from_block)
    except Exception as exc:  # L1DataError, connection refused, bad address: not a verdict
        print(f"verify: error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rep.to_dict(), indent=2, sort_keys=True))
    else:
        print(rep.line())
    return 0 if rep.ok else 1


def main(argv: list[str] | None = None) -> int:
    """``clearline verify --rpc URL --rollup ADDRESS [--json] [--progress ...]``."""
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":  # python -m clearline.watchtower.verify --rpc ... --rollup ...
    raise SystemExit(main())
