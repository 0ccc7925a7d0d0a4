"""The batcher: replays the journal into its own replica state and posts L1 batches.

What a batch is (format in ``clearline.l1``): the next journal entries, in journal order,
as batch data format v3 (``clearline.l1.batch_v3``: batch_v2's compact transactions in
chunks of at most ``txs_per_root``, each Order / Replace / MarkUpdate / OperatorAction /
Withdraw / Transfer / ForcedWithdrawal / SetMarginMode / SetAccountFlags alone in its chunk,
an order's chunk followed by one empty chunk per matching step; the journal payloads are the
canonical ``encode_tx`` bytes, which v3 decodes back exactly); the core state root after every
chunk (``batch_v3.chunk_sizes``: a chunk ends after ``txs_per_root`` transactions and right
before and after each transaction that must be alone; the replica replays orders in step mode,
``clearline.core.order_steps``, and takes a root after each step), one root for an empty
batch; the root of the batch's withdrawal records (``records.withdrawal_records``: user
withdrawals and served forced withdrawals, in transaction order); and the queue end (the
replica's ``l1_queue_pos`` after the batch). Batches cover the journal without gaps or
overlaps: batch ``n`` holds entries ``last_seq(n - 1) + 1 .. last_seq(n)``.

The replica
-----------
The batcher never touches the sequencer's ``State``: it replays the journal itself with the
same ``core.apply`` (using the journaled signers), so the roots it commits are recomputed,
not copied. A journal entry that the core now rejects halts it (``BatcherError``).

Crash and retry safety: the chain is the truth
----------------------------------------------
Before building a batch, ``sync()`` reads the Rollup's ``lastBatch`` and that header's stored
hash. If they are not the batch the batcher last posted (a restart; a crash after sending;
an L1 transaction dropped or reorged away; a timeout whose fate is unknown), it resumes from
the chain: it takes the header of ``lastBatch`` from its ``BatchAppended`` event, finds the
journal seq that batch ends at, rebuilds the replica up to that seq and checks that its root
is the header's ``postStateRoot``. So the next batch is always ``lastBatch + 1`` and starts
right after what the chain holds: no duplicate, no gap. A failed or unknown send only marks
the batcher out of sync; the next call resyncs. The Rollup itself refuses a repeated or
skipped number, so even two sends racing (one that timed out but is mined later, and its
rebuilt successor) cannot both land: the loser reverts and the next sync adopts the winner,
whatever its content.

Batch number -> last journal seq: stored in the journal's meta *and* derivable. After each
confirmed append the batcher writes ``batcher.batch.<n>`` = ``{"first_seq", "last_seq",
"header_hash", "txs"}`` (JSON, overwritten if a number is re-posted after a drop). The record
is used only if its ``header_hash`` is the chain's header of batch ``n``; otherwise (a crash
between the L1 append and the meta write, a lost meta row) the mapping is derived from L1:
``last_seq(n) = last_seq(n - 1) + number of transactions in batch n's calldata``, walking back
to the newest batch with a valid record (or genesis, seq 0), and checked by hashing the
journal's entries for that range into the header's ``txsHash`` (``formats.batch_data_hash``). A journal that does not
reproduce the chain's batches is an error, never silently skipped.

Other meta rows: ``batcher.withdrawals.<n>`` (the batch's withdrawal records as JSON
``[[account, owner hex, amount], ...]``, for claims; used only if they reproduce the chain's
``withdrawalsRoot`` of batch ``n``, else recomputed by replay) and ``batcher.snapshot`` (the
replica after a posted batch, every ``snapshot_every`` batches: a JSON header line ``{seq,
batch, root, journal_hash}`` + ``State.to_blob()``; used only if its seq is not beyond the
chain's batch and the journal's hash at that seq matches), which shortens the replay after a
restart. Nothing else is stored; the in-memory state is disposable.

When to post
------------
``post_pending(now_ms)`` posts at most one batch, when one of these holds: ``max_txs``
entries are pending; the pending entries fill ``max_bytes`` of batch data (120,000 by
default, under the 128 KiB transaction size limit of common L1 node pools); the oldest
pending entry's ``time_ms`` is ``max_delay_ms`` or more before ``now_ms``; or the oldest L1
queue item not consumed on chain reaches ``deadline_margin`` seconds before its forced
deadline (so a forced withdrawal that the sequencer served is committed in time). A batch also
stops at the first chunk end at or past ``max_roots`` state roots (``MAX_ROOTS``, 256): a fraud
proof carries all of its batch's chunk hashes and roots; the rest waits for the next batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from clearline.core.encoding import decode_tx
from clearline.core.errors import InvariantBroken
from clearline.core.state import Genesis, State
from clearline.journal import Journal, JournalEntry
from clearline.l1.batch_v2 import tx_size_bound
from clearline.l1.batch_v3 import BATCH_FORMAT_V3, chunk_sizes, payload_must_be_alone, steps_after
from clearline.l1.formats import (BATCH_FORMAT_V1, BatchFormatError, BatchHeader, WithdrawalRecord, batch_data_hash,
                                  decode_batch, encode_batch, encode_batch_txs, withdrawals_tree)
from clearline.sequencer.recovery import GENESIS_KEY, replay
from clearline.watchtower.l1data import L1DataError, RollupReader

from .records import withdrawal_records

__all__ = ["BatchPlan", "Batcher", "BatcherError", "Claim", "PostResult"]

META_PREFIX = "batcher"
MAX_WITHDRAWALS = 1 << 16  # leaves of the depth-16 withdrawal tree


class BatcherError(RuntimeError):
    """The journal, the replica and the chain disagree, or the configuration is wrong. The
    batcher must not post until a person looks."""


@dataclass
class BatchPlan:
    """A built, not yet posted batch (the replica is already advanced past it)."""

    number: int
    prev_header_hash: bytes
    first_seq: int
    last_seq: int
    data: bytes  # batch data, format v3
    state_roots: list[bytes]
    txs_per_root: int
    queue_start: int
    queue_end: int
    withdrawals: list[WithdrawalRecord]
    withdrawals_root: bytes

    @property
    def n_txs(self) -> int:
        return self.last_seq - self.first_seq + 1 if self.last_seq >= self.first_seq else 0

    @property
    def post_state_root(self) -> bytes:
        return self.state_roots[-1]

    def append_args(self) -> dict:
        """Keyword arguments for ``L1Client.append_batch`` (besides ``txs`` and ``state_roots``)."""
        return dict(queue_end=self.queue_end, withdrawals=self.withdrawals,
                    txs_per_root=self.txs_per_root, number=self.number, prev_header_hash=self.prev_header_hash)


@dataclass
class PostResult:
    number: int
    header: BatchHeader
    tx_hash: bytes
    gas_used: int
    n_txs: int
    first_seq: int
    last_seq: int
    data_bytes: int
    n_roots: int
    n_withdrawals: int
    reason: str  # count | bytes | age | deadline | flush


@dataclass
class Claim:
    """Everything ``L1Client.claim_withdrawal`` needs for one withdrawal record."""

    header: BatchHeader
    index: int
    record: WithdrawalRecord
    siblings: list[bytes] = field(repr=False)


# At most about this many state roots (chunks) a batch: a fraud proof carries every chunk hash
# and every root of its batch (64 bytes a chunk), and with orders and their matching steps each in
# a chunk of their own a batch of 1,000 transactions has ~1,500 (~96 KB of proof calldata, over
# 3M gas). Cut at the first chunk end at or past it (an order's steps stay in its batch).
MAX_ROOTS = 256


class Batcher:
    """Posts the journal to the Rollup as batches. ``client`` must send as the sequencer."""

    def __init__(self, journal: Journal, client, genesis: Genesis | None = None, *, txs_per_root: int = 16,
                 max_txs: int = 1_000, max_bytes: int = 120_000, max_delay_ms: int = 2_000,
                 deadline_margin: int | None = None, snapshot_every: int = 16, max_roots: int = MAX_ROOTS):
        if not (0 < txs_per_root < 1 << 32):
            raise ValueError("txs_per_root must be a positive uint32")
        if not (0 < max_txs <= MAX_WITHDRAWALS):
            raise ValueError(f"max_txs must be in 1..{MAX_WITHDRAWALS}")
        self.journal = journal
        self.client = client
        self.reader = RollupReader(client.chain, client.deployment.rollup,
                                   from_block=client.deployment.block_number)
        self.genesis = self._load_genesis(genesis)
        self.txs_per_root = txs_per_root
        self.max_txs = max_txs
        self.max_roots = max_roots
        self.max_bytes = max_bytes
        self.max_delay_ms = max_delay_ms
        forced_deadline = client.deployment.forced_deadline
        self.deadline_margin = forced_deadline // 2 if deadline_margin is None else deadline_margin
        self.snapshot_every = snapshot_every
        genesis_root = State(self.genesis).root()
        if client.header_hash(0) != BatchHeader.genesis(genesis_root).hash():
            raise BatcherError("the genesis state root differs from the Rollup's batch 0")
        # replica: state after `last_seq`, the end of batch `batch` (header `header`)
        self.state: State | None = None
        self.last_seq = 0
        self.batch = -1
        self.header: BatchHeader | None = None
        self.synced = False
        self._advanced = False  # the replica holds a built batch that is not confirmed on chain
        self._headers: dict[int, BatchHeader] = {}  # committed headers seen (posted or read)
        self._refs: dict = {}  # chain batch refs read since the last resync
        self._sizes: dict[int, int] = {}  # journal seq -> bound of its v2 size (pending entries)
        self.posted: list[PostResult] = []

    # -- genesis -------------------------------------------------------------------------
    def _load_genesis(self, genesis: Genesis | None) -> Genesis:
        stored = self.journal.get_meta(GENESIS_KEY)
        if stored is None:
            if genesis is None:
                raise BatcherError("the journal has no genesis and none was given")
            return genesis
        if genesis is not None and genesis.to_json() != stored:
            raise BatcherError("the journal was started from a different genesis")
        return Genesis.from_json(stored)

    # -- meta ----------------------------------------------------------------------------
    def _meta_json(self, key: str) -> Any:
        raw = self.journal.get_meta(f"{META_PREFIX}.{key}")
        return None if raw is None else json.loads(raw)

    def _set_meta_json(self, key: str, value: Any) -> None:
        self.journal.set_meta(f"{META_PREFIX}.{key}", json.dumps(value, sort_keys=True).encode(), overwrite=True)

    def _save_snapshot(self) -> None:
        entry_hash = self.journal.entry(self.last_seq).hash.hex() if self.last_seq else ""
        head = json.dumps({"seq": self.last_seq, "batch": self.batch, "root": self.state.root().hex(),
                           "journal_hash": entry_hash}, sort_keys=True).encode()
        self.journal.set_meta(f"{META_PREFIX}.snapshot", head + b"\n" + self.state.to_blob(), overwrite=True)

    def _load_snapshot(self, max_seq: int) -> tuple[State, int] | None:
        raw = self.journal.get_meta(f"{META_PREFIX}.snapshot")
        if raw is None:
            return None
        head_raw, _, blob = raw.partition(b"\n")
        head = json.loads(head_raw)
        seq = head["seq"]
        if seq > max_seq or seq > self.journal.head()[0]:
            return None
        if seq and self.journal.entry(seq).hash.hex() != head["journal_hash"]:
            return None  # a different journal: do not trust it
        state = State.from_blob(blob)
        if state.root().hex() != head["root"]:
            raise BatcherError(f"the batcher snapshot at seq {seq} does not reproduce its root")
        return state, seq

    # -- chain ---------------------------------------------------------------------------
    def _chain_header(self, number: int) -> BatchHeader:
        """Header of chain batch ``number`` (cached if its hash is the one the Rollup stores)."""
        if number == 0:
            return self.reader.genesis_header()
        h = self._headers.get(number)
        if h is not None and self.client.header_hash(number) == h.hash():
            return h
        (ref,) = self.reader.batch_refs(number=number)
        self._headers[number] = ref.header
        return ref.header

    def _chain_headers(self, start: int, last: int) -> list[BatchHeader]:
        """Headers ``start..last`` as committed: from the cache when its newest one is the
        stored hash of ``last`` (the others then follow by their prevHeaderHash links)."""
        cached = [self._headers.get(n) for n in range(start, last + 1)]
        linked = all(cached) and all(b.prev_header_hash == a.hash() for a, b in zip(cached, cached[1:]))
        if linked and cached and self.client.header_hash(last) == cached[-1].hash():
            return cached
        refs = self.reader.batch_refs(start)
        for r in refs:
            self._headers[r.number] = r.header
        return [r.header for r in refs if r.number <= last]

    def sync(self) -> bool:
        """Make sure the replica ends exactly where the chain's last batch ends; resync from
        the chain if not. Returns True if a resync was needed."""
        chain_last = self.client.last_batch()
        if (self.synced and not self._advanced and chain_last == self.batch
                and self.client.header_hash(chain_last) == self.header.hash()):
            return False
        self._resync(chain_last)
        return True

    def _ref(self, number: int):
        """The chain's ``BatchRef`` of batch ``number`` (its event, matched to the stored hash)."""
        ref = self._refs.get(number)
        if ref is None:
            try:
                (ref,) = self.reader.batch_refs(number=number)
            except (L1DataError, ValueError) as exc:
                raise BatcherError(f"cannot read L1 batch {number}: {exc}") from None
            self._refs[number] = ref
            self._headers[number] = ref.header
        return ref

    def _resync(self, chain_last: int) -> None:
        self.synced = False
        self._refs = {}  # the chain may have changed: read again what is needed
        header = self._ref(chain_last).header if chain_last else self.reader.genesis_header()
        last_seq = self._seq_of(chain_last)
        head = self.journal.head()[0]
        if last_seq > head:
            raise BatcherError(f"L1 batch {chain_last} ends at journal seq {last_seq}, beyond the journal head {head}")
        # rebuild the replica up to last_seq: keep the in-memory one if it is behind and clean
        if self.state is not None and not self._advanced and self.last_seq <= last_seq:
            state, seq = self.state, self.last_seq
        else:
            snap = self._load_snapshot(last_seq)
            state, seq = snap if snap is not None else (State(self.genesis), 0)
        if last_seq > seq:
            try:
                replay(state, self.journal.entries(seq + 1, last_seq))
            except InvariantBroken as exc:
                raise BatcherError(str(exc)) from None
        if state.root() != header.post_state_root:
            raise BatcherError(f"the journal up to seq {last_seq} does not reproduce the post-state root of "
                               f"L1 batch {chain_last}")
        self.state, self.last_seq, self.batch, self.header = state, last_seq, chain_last, header
        self._advanced = False
        self.synced = True

    def _seq_of(self, number: int) -> int:
        """Journal seq at which chain batch ``number`` ends (see the module docstring)."""
        missing: list[int] = []
        n, seq = number, 0
        while n > 0:
            rec = self._meta_json(f"batch.{n}")
            if rec is not None and rec["header_hash"] == self._ref(n).header_hash.hex():
                seq = rec["last_seq"]
                break
            missing.append(n)
            n -= 1
        for n in reversed(missing):  # derive forward from L1 calldata
            ref = self._ref(n)
            try:
                cd = self.reader.batch_calldata(ref)
            except L1DataError as exc:
                raise BatcherError(str(exc)) from None
            try:
                batch = decode_batch(cd.txs)
            except BatchFormatError as exc:
                raise BatcherError(f"L1 batch {n} does not decode: {exc}") from None
            count = len(batch.txs)
            head = self.journal.head()[0]
            if seq + count > head:
                raise BatcherError(f"L1 batch {n} ends at journal seq {seq + count}, beyond the journal head {head}"
                                   " (a different or truncated journal)")
            payloads = [e.payload for e in self.journal.entries(seq + 1, seq + count)] if count else []
            if batch.version == BATCH_FORMAT_V1:  # posted by an older batcher
                again = encode_batch_txs(payloads)
            else:
                again = encode_batch([decode_tx(p) for p in payloads], batch.txs_per_chunk,
                                     steps_after(batch.chunk_sizes) if batch.version == BATCH_FORMAT_V3 else None)
            if batch_data_hash(again) != ref.header.txs_hash:
                raise BatcherError(f"L1 batch {n} is not journal entries {seq + 1}..{seq + count}: the journal "
                                   "and the chain disagree")
            self._set_meta_json(f"batch.{n}", {"first_seq": seq + 1, "last_seq": seq + count,
                                               "header_hash": ref.header_hash.hex(), "txs": count})
            seq += count
        return seq

    # -- building ------------------------------------------------------------------------
    def pending_entries(self) -> list[JournalEntry]:
        """Journal entries after the last posted batch, up to one batch's worth (``max_txs``
        entries and ``max_bytes`` of batch data -- the orders' matching steps, 4 bytes of chunk
        table each and known only when the batch is built, come on top; at least one entry if
        any is pending)."""
        head = self.journal.head()[0]
        if head <= self.last_seq:
            return []
        out, size = [], 11  # version byte and two varints at most
        sizes = self._sizes
        in_chunk, k = 0, self.txs_per_root  # transactions in the current chunk (batch_v3.chunk_sizes)
        for e in self.journal.entries(self.last_seq + 1, min(head, self.last_seq + self.max_txs)):
            n = sizes.get(e.seq)
            if n is None:
                n = sizes[e.seq] = tx_size_bound(decode_tx(e.payload))
            operator = payload_must_be_alone(e.payload)
            if operator or in_chunk == 0 or in_chunk == k:
                n += 4  # a new chunk: its end offset in the table
                in_chunk = 0
            in_chunk = k if operator else in_chunk + 1  # nothing joins an operator's chunk
            size += n
            if out and size > self.max_bytes:
                break
            out.append(e)
        for seq in [s for s in sizes if s <= self.last_seq]:
            del sizes[seq]
        return out

    def due(self, entries: list[JournalEntry], now_ms: int) -> str | None:
        """Why the pending ``entries`` should be posted now (None: wait)."""
        if not entries:
            return None
        if len(entries) >= self.max_txs:
            return "count"
        if self.last_seq + len(entries) < self.journal.head()[0]:
            return "bytes"  # more is pending than one batch holds
        if now_ms - decode_tx(entries[0].payload).time_ms >= self.max_delay_ms:
            return "age"
        if self._deadline_near():
            return "deadline"
        return None

    def _deadline_near(self) -> bool:
        pos = self.header.queue_end
        if self.client.queue_length() <= pos:
            return False
        _, t = self.client.queue_item(pos)
        return self.client.chain.now() >= t + self.client.deployment.forced_deadline - self.deadline_margin

    def build(self, entries: list[JournalEntry] | None = None) -> BatchPlan | None:
        """Apply the next entries to the replica and return the batch (not posted). The
        replica stays advanced: post it with ``post`` (or the next ``sync`` rebuilds).
        Without ``entries``, syncs with the chain first and takes ``pending_entries()``."""
        if entries is None:
            self.sync()
            entries = self.pending_entries()
        if not entries:
            return None
        if entries[0].seq != self.last_seq + 1:
            raise BatcherError(f"entries start at seq {entries[0].seq}, expected {self.last_seq + 1}")
        state, k = self.state, self.txs_per_root
        self._advanced = True
        queue_start = state.l1_queue_pos
        txs, steps, roots, records = _replay_batch(state, entries, k, self.max_roots)
        entries = entries[:len(txs)]
        return BatchPlan(
            number=self.batch + 1, prev_header_hash=self.header.hash(), first_seq=entries[0].seq,
            last_seq=entries[-1].seq, data=encode_batch(txs, k, steps), state_roots=roots,
            txs_per_root=k, queue_start=queue_start, queue_end=state.l1_queue_pos, withdrawals=records,
            withdrawals_root=withdrawals_tree(records).root())

    # -- posting -------------------------------------------------------------------------
    def post(self, plan: BatchPlan, reason: str = "flush") -> PostResult:
        """Append ``plan`` (built on the current replica) to the Rollup and record it."""
        if not self._advanced or plan.number != self.batch + 1 or plan.first_seq != self.last_seq + 1:
            raise BatcherError(f"batch {plan.number} was not built on the current replica")
        try:
            r = self.client.append_batch(plan.data, plan.state_roots, **plan.append_args())
        except BaseException:
            self.synced = False  # the append may or may not have landed: the next sync decides
            raise
        header: BatchHeader = r.value
        if (header.number, header.post_state_root, header.queue_end) != (plan.number, plan.post_state_root,
                                                                         plan.queue_end):
            self.synced = False
            raise BatcherError(f"batch {plan.number}: the committed header is not the one built")
        if plan.withdrawals:
            self._set_meta_json(f"withdrawals.{plan.number}",
                                [[w.account_id, w.owner.hex(), w.amount, w.chunk, w.tx_index] for w in plan.withdrawals])
        self._set_meta_json(f"batch.{plan.number}", {"first_seq": plan.first_seq, "last_seq": plan.last_seq,
                                                     "header_hash": header.hash().hex(), "txs": plan.n_txs})
        self.batch, self.header, self.last_seq = plan.number, header, plan.last_seq
        self._headers[plan.number] = header
        self._advanced = False
        if self.snapshot_every and plan.number % self.snapshot_every == 0:
            self._save_snapshot()
        result = PostResult(plan.number, header, r.tx_hash, r.gas_used, plan.n_txs, plan.first_seq, plan.last_seq,
                            len(plan.data), len(plan.state_roots), len(plan.withdrawals), reason)
        self.posted.append(result)
        return result

    def post_pending(self, now_ms: int) -> PostResult | None:
        """Post at most one batch if one is due (see the module docstring)."""
        self.sync()
        entries = self.pending_entries()
        reason = self.due(entries, now_ms)
        if reason is None:
            return None
        return self.post(self.build(entries), reason)

    def flush(self) -> list[PostResult]:
        """Post everything pending now, in as many batches as it takes."""
        out = []
        while True:
            plan = self.build()
            if plan is None:
                return out
            out.append(self.post(plan, "flush"))

    def pending(self) -> int:
        """Journal entries not yet in a posted batch (after a sync)."""
        self.sync()
        return self.journal.head()[0] - self.last_seq

    # -- finalization and claims ---------------------------------------------------------------
    def finalize_ready(self) -> list[int]:
        """Finalize every batch whose challenge period is over; returns their numbers."""
        start = self.client.last_finalized_batch() + 1
        last = self.client.last_batch()
        if last < start:
            return []
        now = self.client.chain.now()
        period = self.client.deployment.challenge_period
        ready = [h for h in self._chain_headers(start, last) if h.l1_timestamp + period <= now]
        if not ready:
            return []
        self.client.finalize(ready)
        return [h.number for h in ready]

    def withdrawals(self, number: int) -> list[WithdrawalRecord]:
        """The withdrawal records of chain batch ``number``: the meta row if it reproduces the
        committed withdrawals root (a row left by a dropped batch of the same number does
        not), else recomputed by replaying the journal."""
        header = self._chain_header(number)
        rows = self._meta_json(f"withdrawals.{number}") or []
        records = [WithdrawalRecord(row[0], bytes.fromhex(row[1]), *row[2:]) for row in rows if len(row) == 5]
        if withdrawals_tree(records).root() == header.withdrawals_root:
            return records
        self._refs = {}
        lo, hi = self._seq_of(number - 1) + 1, self._seq_of(number)
        state = State(self.genesis)
        if lo > 1:
            replay(state, self.journal.entries(1, lo - 1))
        records = _replay_batch(state, list(self.journal.entries(lo, hi)), header.txs_per_root, None)[3]
        if withdrawals_tree(records).root() != header.withdrawals_root:
            raise BatcherError(f"batch {number}: the journal's withdrawals do not match the committed root")
        return records

    def claims(self, number: int, owner: bytes | None = None) -> list[Claim]:
        """Claims (with proofs) for the withdrawals of batch ``number``, optionally of one owner."""
        records = self.withdrawals(number)
        tree = withdrawals_tree(records)
        header = self._chain_header(number)
        return [Claim(header, i, r, tree.proof(i)) for i, r in enumerate(records)
                if owner is None or r.owner == owner]


def _replay_batch(state: State, entries: list[JournalEntry], k: int,
                  max_roots: int | None) -> tuple[list, list[int], list[bytes], list]:
    """Replay ``entries`` as batch data v3 carries them (orders in step mode): ``(txs, steps,
    roots, records)`` -- the transactions, the matching steps after each, the state root after
    each chunk (a step's empty chunk included) and the withdrawal records with their positions
    (chunk, index in it). With ``max_roots``, stops at the first chunk end at or past that many
    roots (``txs`` is then a prefix of the entries'). ``BatcherError`` if the journal does not
    replay."""
    sizes = chunk_sizes([e.payload for e in entries], k, payload_must_be_alone)
    ends, total = set(), 0  # transactions done when a root is taken: after each chunk
    for size in sizes:
        total += size
        ends.add(total)
    txs: list = []
    steps: list[int] = []
    roots: list[bytes] = []
    records: list[WithdrawalRecord] = []
    at = [0, 0]  # the chunk (steps counted) and the index in it of the next transaction

    def after(entry, tx, receipt) -> None:
        txs.append(tx)
        steps.append(0)
        if receipt.events:
            records.extend(withdrawal_records(state, receipt, (at[0], at[1])))
        at[1] += 1
        if len(txs) in ends:
            roots.append(state.root())
            at[0] += 1
            at[1] = 0

    def step(receipt) -> None:
        roots.append(state.root())
        at[0] += 1
        steps[-1] += 1

    def feed():
        for e in entries:
            if max_roots is not None and len(roots) >= max_roots and at[1] == 0:
                return  # a chunk end with the batch's roots taken: the rest goes to the next batch
            yield e

    try:
        replay(state, feed(), on_tx=after, on_step=step, stepwise=True)  # as recovery and the watchtower
    except InvariantBroken as e:
        raise BatcherError(str(e)) from e
    if len(txs) < len(entries):
        sizes = chunk_sizes([e.payload for e in entries[:len(txs)]], k, payload_must_be_alone)
    if chunk_sizes(txs, k) != sizes:
        raise BatcherError("the journal payloads' kinds are not their transactions' (chunk cut differs)")
    return txs, steps, roots, records

