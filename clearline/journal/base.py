"""The journal: an append-only, sequence-numbered, hash-chained log of accepted inputs.

The sequencer appends every accepted input *before acknowledging it*, in group commits (many
entries per durable commit). Payloads are opaque bytes to the journal (in practice the ABI
encoding of a transaction); ``signer`` is derived data (the recovered 20-byte address, or
``b""`` for unsigned L1/operator inputs) stored so that replay need not recover signatures.

Hash chain
----------
Every entry carries the chain hash up to and including itself::

    hash_0 = 32 zero bytes                                      (ZERO_HASH)
    hash_n = keccak(hash_{n-1} || uint64_be(seq_n) || keccak(payload_n) || signer_n)

``seq`` runs 1, 2, 3, ... without gaps; ``signer_n`` is 0 or 20 bytes, so the preimage is 72 or
92 bytes and unambiguous. The chain depends only on the sequence of (payload, signer) pairs, not
on how they were grouped into commits. ``(seq, hash)`` of the last entry — ``head()`` — commits
to the whole log; a snapshot records the chain hash at its seq (``journal_hash``) so that a
state restored from it can be tied to exactly one log prefix.

Snapshots
---------
``save_snapshot(seq, state_blob, state_root)`` stores an opaque serialised state *after*
applying entries 1..seq (seq 0 = genesis state). Only the newest ``keep_snapshots`` (default 3)
are kept; older ones are pruned in the same transaction.

Meta
----
A small key → bytes store for write-once facts such as the genesis configuration. Writing a
different value for an existing key is an error unless ``overwrite=True``.

Backends implement :class:`Journal`; ``clearline.journal.sqlite.SQLiteJournal`` is the
embedded default. ``tests/journal_conformance.py`` is the behavioural contract every backend
must pass.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType

from clearline.core.hashing import keccak

__all__ = [
    "ZERO_HASH",
    "SIGNER_LENGTHS",
    "chain_link",
    "JournalEntry",
    "Snapshot",
    "Journal",
    "JournalError",
    "JournalCorrupt",
    "JournalClosed",
    "InvalidEntry",
    "EntryNotFound",
    "SnapshotBeyondHead",
    "SnapshotConflict",
    "MetaConflict",
]

ZERO_HASH = bytes(32)
SIGNER_LENGTHS = (0, 20)
MAX_SEQ = (1 << 64) - 1


def chain_link(prev_hash: bytes, seq: int, payload: bytes, signer: bytes) -> bytes:
    """One link of the chain: ``keccak(prev || uint64_be(seq) || keccak(payload) || signer)``."""
    return keccak(prev_hash + seq.to_bytes(8, "big") + keccak(payload) + signer)


# ----------------------------------------------------------------------------- errors


class JournalError(Exception):
    """Base class of every journal error (misuse, I/O failure, corruption)."""


class JournalCorrupt(JournalError):
    """The stored log does not satisfy its invariants. ``seq`` is the first bad seq (or None)."""

    def __init__(self, message: str, seq: int | None = None) -> None:
        super().__init__(message if seq is None else f"seq {seq}: {message}")
        self.seq = seq


class JournalClosed(JournalError):
    """An operation was attempted on a closed journal."""


class InvalidEntry(JournalError, ValueError):
    """An argument has the wrong type or shape (e.g. a signer that is not 0 or 20 bytes)."""


class EntryNotFound(JournalError, LookupError):
    """``entry(seq)`` for a seq that is not in the log."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"no journal entry with seq {seq}")
        self.seq = seq


class SnapshotBeyondHead(JournalError):
    """A snapshot was saved for a seq the log has not reached yet."""


class SnapshotConflict(JournalError):
    """A snapshot already exists for this seq with a different state root."""


class MetaConflict(JournalError):
    """A meta key already holds a different value (meta is write-once unless overwrite=True)."""


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class JournalEntry:
    seq: int
    payload: bytes
    signer: bytes
    hash: bytes


@dataclass(frozen=True, slots=True)
class Snapshot:
    seq: int
    state_blob: bytes
    state_root: bytes
    journal_hash: bytes

    def __repr__(self) -> str:  # the blob can be megabytes: keep reprs short
        return (
            f"Snapshot(seq={self.seq}, state_blob=<{len(self.state_blob)} bytes>, "
            f"state_root={self.state_root.hex()}, journal_hash={self.journal_hash.hex()})"
        )


# ----------------------------------------------------------------------------- helpers


def as_bytes(value: object, what: str) -> bytes:
    """Accept bytes (fast path) or another bytes-like object; reject everything else."""
    if type(value) is bytes:
        return value  # type: ignore[return-value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise InvalidEntry(f"{what} must be bytes, got {type(value).__name__}")


def check_seq(seq: object, what: str = "seq", minimum: int = 1) -> int:
    if type(seq) is not int or not (minimum <= seq <= MAX_SEQ):  # bool is rejected too
        raise InvalidEntry(f"{what} must be an int in [{minimum}, 2**64-1], got {seq!r}")
    return seq


def check_snapshot_args(seq: object, state_blob: object, state_root: object) -> tuple[int, bytes, bytes]:
    """The arguments of ``save_snapshot``, checked the same way by every backend."""
    check_seq(seq, "seq", 0)
    blob = as_bytes(state_blob, "state_blob")
    root = as_bytes(state_root, "state_root")
    if len(root) != 32:
        raise InvalidEntry(f"state_root must be 32 bytes, got {len(root)}")
    return seq, blob, root  # type: ignore[return-value]


def refuse_snapshot_conflict(seq: int, stored_root: bytes | None, root: bytes) -> None:
    """A snapshot at a seq is immutable: the same root again is fine, another one is not."""
    if stored_root is not None and stored_root != root:
        raise SnapshotConflict(f"snapshot at seq {seq} exists with state root {stored_root.hex()}, "
                               f"refusing {root.hex()}")


def check_meta_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidEntry(f"meta key must be a non-empty str, got {key!r}")
    return key


def meta_needs_write(key: str, stored: bytes | None, value: bytes, overwrite: bool) -> bool:
    """Whether ``set_meta`` must write; raises ``MetaConflict`` for a different value without
    ``overwrite`` (the rule every backend shares)."""
    if stored is not None and stored != value and not overwrite:
        raise MetaConflict(f"meta key {key!r} already holds a different value (pass overwrite=True to replace it)")
    return stored != value


def build_entries(
    prev_hash: bytes, first_seq: int, items: Sequence[tuple[bytes, bytes]]
) -> tuple[list[JournalEntry], list[tuple[int, bytes, bytes, bytes]]]:
    """Validate ``items`` and compute their chain links starting after ``prev_hash``.

    Returns the entries and the matching ``(seq, payload, signer, hash)`` rows. Pure: shared by
    backends so every backend hashes identically.
    """
    entries: list[JournalEntry] = []
    rows: list[tuple[int, bytes, bytes, bytes]] = []
    h = prev_hash
    seq = first_seq
    if first_seq + len(items) - 1 > MAX_SEQ:
        raise InvalidEntry("journal seq would exceed 2**64-1")
    k = keccak
    for item in items:
        try:
            payload, signer = item
        except (TypeError, ValueError):
            raise InvalidEntry(f"items must be (payload, signer) pairs, got {item!r:.80}") from None
        if type(payload) is not bytes:
            payload = as_bytes(payload, "payload")
        if type(signer) is not bytes:
            signer = as_bytes(signer, "signer")
        if len(signer) != 20 and signer:
            raise InvalidEntry(f"signer must be 20 bytes or empty, got {len(signer)} bytes")
        h = k(h + seq.to_bytes(8, "big") + k(payload) + signer)
        entries.append(JournalEntry(seq, payload, signer, h))
        rows.append((seq, payload, signer, h))
        seq += 1
    return entries, rows


# ----------------------------------------------------------------------------- interface


class Journal(ABC):
    """The journal interface. See the module docstring for the hash chain.

    Concrete backends implement the abstract methods; ``entries`` and ``verify_chain`` are
    provided here on top of ``_iter_rows`` (backends may override them for speed).
    """

    keep_snapshots: int

    # -- log -----------------------------------------------------------------------

    @abstractmethod
    def append(self, items: Sequence[tuple[bytes, bytes]]) -> list[JournalEntry]:
        """Atomically append ``(payload, signer)`` pairs, assigning the next seqs.

        When this returns the entries are durable (per the backend's durability setting);
        a crash before that leaves none of them. ``append([])`` is a no-op returning ``[]``.
        """

    @abstractmethod
    def head(self) -> tuple[int, bytes]:
        """``(seq, hash)`` of the last entry; ``(0, ZERO_HASH)`` when empty."""

    @abstractmethod
    def entry(self, seq: int) -> JournalEntry:
        """The entry with this seq; raises :class:`EntryNotFound`."""

    @abstractmethod
    def _iter_rows(self, from_seq: int, to_seq: int) -> Iterator[tuple[int, bytes, bytes, bytes]]:
        """Stream ``(seq, payload, signer, hash)`` rows with from_seq <= seq <= to_seq, in order,
        in bounded memory (chunks), tolerating appends interleaved with the iteration."""

    def entries(self, from_seq: int = 1, to_seq: int | None = None) -> Iterator[JournalEntry]:
        """Stream entries ``from_seq..to_seq`` (inclusive) in seq order, in bounded memory.

        The upper bound is fixed when this is called: ``to_seq=None`` means the head at call
        time, and a ``to_seq`` beyond the head is clamped to it. A missing seq inside the range
        raises :class:`JournalCorrupt`.
        """
        check_seq(from_seq, "from_seq")
        head_seq = self.head()[0]
        hi = head_seq if to_seq is None else min(check_seq(to_seq, "to_seq", 0), head_seq)
        return self._entries(from_seq, hi)

    def _entries(self, lo: int, hi: int) -> Iterator[JournalEntry]:
        expected = lo
        entry_cls = JournalEntry
        for row in self._iter_rows(lo, hi):
            if row[0] != expected:
                raise JournalCorrupt("entry missing (gap in the log)", expected)
            expected += 1
            yield entry_cls(*row)
        if expected <= hi:
            raise JournalCorrupt("entry missing (gap in the log)", expected)

    def verify_chain(self, from_seq: int = 1) -> tuple[int, bytes]:
        """Recompute the chain from ``from_seq`` to the head; return the recomputed head.

        Starts from the stored hash of ``from_seq - 1`` (ZERO_HASH for 1). Raises
        :class:`JournalCorrupt` naming the first seq whose stored hash (or seq, or signer)
        does not match.
        """
        check_seq(from_seq, "from_seq")
        head_seq, _ = self.head()
        if from_seq > head_seq + 1:
            raise InvalidEntry(f"from_seq {from_seq} is beyond head + 1 ({head_seq + 1})")
        h = ZERO_HASH if from_seq == 1 else self.entry(from_seq - 1).hash
        expected = from_seq
        k = keccak
        for seq, payload, signer, stored in self._iter_rows(from_seq, head_seq):
            if seq != expected:
                raise JournalCorrupt("entry missing (gap in the log)", expected)
            if len(signer) != 20 and signer:
                raise JournalCorrupt(f"signer has {len(signer)} bytes", seq)
            h = k(h + seq.to_bytes(8, "big") + k(payload) + signer)
            if h != stored:
                raise JournalCorrupt(
                    f"hash mismatch: stored {bytes(stored).hex()}, recomputed {h.hex()}", seq
                )
            expected += 1
        if expected <= head_seq:
            raise JournalCorrupt("entry missing (gap in the log)", expected)
        return head_seq, h

    # -- snapshots -----------------------------------------------------------------

    @abstractmethod
    def save_snapshot(self, seq: int, state_blob: bytes, state_root: bytes) -> Snapshot:
        """Durably store the state after applying entries 1..seq (0 <= seq <= head).

        Raises :class:`SnapshotBeyondHead` for seq > head and :class:`SnapshotConflict` if a
        snapshot at seq exists with a different state root (same root: replaced). Prunes all
        but the newest ``keep_snapshots`` snapshots.
        """

    @abstractmethod
    def latest_snapshot(self) -> Snapshot | None:
        """The snapshot with the highest seq, or None."""

    @abstractmethod
    def snapshot_at_or_before(self, seq: int) -> Snapshot | None:
        """The snapshot with the highest seq <= ``seq``, or None."""

    @abstractmethod
    def snapshot_seqs(self) -> list[int]:
        """The seqs of the stored snapshots, ascending."""

    # -- meta ----------------------------------------------------------------------

    @abstractmethod
    def set_meta(self, key: str, value: bytes, *, overwrite: bool = False) -> None:
        """Durably store ``key → value``. Same value again: no-op. Different value:
        :class:`MetaConflict` unless ``overwrite``."""

    @abstractmethod
    def get_meta(self, key: str) -> bytes | None:
        """The value for ``key`` or None."""

    # -- lifecycle -----------------------------------------------------------------

    @abstractmethod
    def close(self) -> None:
        """Release resources. Idempotent; later operations raise :class:`JournalClosed`."""

    @property
    @abstractmethod
    def closed(self) -> bool: ...

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
