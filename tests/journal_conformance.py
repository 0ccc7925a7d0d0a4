"""Backend conformance suite for :class:`clearline.journal.Journal`.

Every journal backend must pass these tests. To run them against a backend, subclass
:class:`JournalConformance` in a ``test_*.py`` module under a ``Test…`` name and provide a
``journal_factory`` fixture::

    class TestSQLiteFile(JournalConformance):
        @pytest.fixture
        def journal_factory(self, tmp_path):
            opened = []
            def make(name="main", **kwargs):
                j = SQLiteJournal(tmp_path / f"{name}.sqlite", **kwargs)
                opened.append(j)
                return j
            yield make
            for j in opened:
                j.close()

Factory contract: ``make(name="main", **kwargs) -> Journal``. Within one test, calls with the
same ``name`` open the *same* underlying store (that is how reopen is tested), different names
give independent, initially empty stores. ``kwargs`` are backend options; the suite only uses
``keep_snapshots``. A backend that cannot reopen (e.g. in-memory) sets
``supports_reopen = False`` and then must return a fresh store on every call.

Optionally override :meth:`JournalConformance.tamper_payload` (raw, backend-specific write that
bypasses the journal) to enable the tamper-detection tests.

The module is named so that pytest does not collect it by itself; register it for assertion
rewriting (``pytest.register_assert_rewrite("journal_conformance")``) before importing it.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable

import pytest

from clearline.core.hashing import keccak
from clearline.journal import (
    ZERO_HASH,
    EntryNotFound,
    InvalidEntry,
    Journal,
    JournalClosed,
    JournalCorrupt,
    JournalEntry,
    MetaConflict,
    Snapshot,
    SnapshotBeyondHead,
    SnapshotConflict,
)

Factory = Callable[..., Journal]


def reference_chain(
    items: list[tuple[bytes, bytes]], prev: bytes = ZERO_HASH, first_seq: int = 1
) -> list[bytes]:
    """The hash chain written out from the spec, independently of the journal code."""
    out = []
    for i, (payload, signer) in enumerate(items):
        seq = first_seq + i
        prev = keccak(prev + seq.to_bytes(8, "big") + keccak(payload) + signer)
        out.append(prev)
    return out


def make_items(n: int, seed: int = 0, size: int = 100) -> list[tuple[bytes, bytes]]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        payload = rng.randbytes(rng.randint(0, size))
        signer = rng.randbytes(20) if i % 3 else b""
        items.append((payload, signer))
    return items


def append_in_batches(j: Journal, items, sizes) -> list[JournalEntry]:
    out: list[JournalEntry] = []
    pos = 0
    for size in sizes:
        out.extend(j.append(items[pos : pos + size]))
        pos += size
    if pos < len(items):
        out.extend(j.append(items[pos:]))
    return out


def root(i: int) -> bytes:
    return keccak(b"root" + i.to_bytes(8, "big"))


class JournalConformance:
    supports_reopen: bool = True

    def tamper_payload(self, journal: Journal, seq: int, payload: bytes) -> None:
        """Overwrite the stored payload of ``seq`` behind the journal's back."""
        pytest.skip("backend provides no raw tamper hook")

    def _reopen(self, factory: Factory, j: Journal, **kwargs) -> Journal:
        if not self.supports_reopen:
            pytest.skip("backend cannot reopen")
        j.close()
        return factory(**kwargs)

    # ------------------------------------------------------------------ empty journal

    def test_empty(self, journal_factory: Factory) -> None:
        j = journal_factory()
        assert j.head() == (0, ZERO_HASH)
        assert list(j.entries()) == []
        assert j.verify_chain() == (0, ZERO_HASH)
        assert j.latest_snapshot() is None
        assert j.snapshot_at_or_before(10) is None
        assert j.snapshot_seqs() == []
        assert j.get_meta("genesis") is None
        with pytest.raises(EntryNotFound):
            j.entry(1)
        assert j.append([]) == []
        assert j.head() == (0, ZERO_HASH)

    # ------------------------------------------------------------------ append / read

    def test_append_roundtrip(self, journal_factory: Factory) -> None:
        j = journal_factory()
        items = make_items(250, seed=1)
        sizes = [1, 7, 100, 42]
        got = append_in_batches(j, items, sizes)
        hashes = reference_chain(items)
        assert [e.seq for e in got] == list(range(1, 251))
        assert [(e.payload, e.signer) for e in got] == items
        assert [e.hash for e in got] == hashes
        assert list(j.entries()) == got
        assert j.head() == (250, hashes[-1])
        for seq in (1, 2, 8, 108, 150, 250):
            assert j.entry(seq) == got[seq - 1]
        with pytest.raises(EntryNotFound):
            j.entry(251)
        assert j.verify_chain() == (250, hashes[-1])

    def test_entry_types(self, journal_factory: Factory) -> None:
        j = journal_factory()
        (e,) = j.append([(bytearray(b"abc"), memoryview(b"\x11" * 20))])
        for got in (e, j.entry(1), next(j.entries())):
            assert isinstance(got, JournalEntry)
            assert type(got.payload) is bytes and got.payload == b"abc"
            assert type(got.signer) is bytes and got.signer == b"\x11" * 20
            assert type(got.hash) is bytes and len(got.hash) == 32
            assert type(got.seq) is int
        with pytest.raises(AttributeError):
            e.seq = 5  # type: ignore[misc]

    def test_hash_chain_independent_of_batching(self, journal_factory: Factory) -> None:
        items = make_items(120, seed=2)
        heads = []
        for k, sizes in enumerate(([120], [1] * 120, [3, 50, 1, 66], [119])):
            j = journal_factory(f"b{k}")
            append_in_batches(j, items, sizes)
            heads.append(j.head())
        assert len(set(heads)) == 1
        assert heads[0] == (120, reference_chain(items)[-1])

    def test_empty_and_large_payloads(self, journal_factory: Factory) -> None:
        j = journal_factory()
        big = os.urandom(1 << 20)
        items = [(b"", b""), (big, b"\x01" * 20), (b"\x00", b"")]
        got = j.append(items)
        assert [(e.payload, e.signer) for e in j.entries()] == items
        assert got[-1].hash == reference_chain(items)[-1]
        j.verify_chain()

    def test_invalid_items_append_nothing(self, journal_factory: Factory) -> None:
        j = journal_factory()
        j.append([(b"ok", b"")])
        before = j.head()
        bad_batches = [
            [(b"a", b""), (b"b", b"\x01" * 19)],  # signer of the wrong length
            [(b"a", b""), (b"b", b"\x01" * 32)],
            [(b"a", b""), ("text", b"")],  # not bytes
            [(b"a", b""), (b"b", None)],
            [(b"a", b""), (b"b",)],  # not a pair
            [(b"a", b""), b"xy"],
        ]
        for batch in bad_batches:
            with pytest.raises(InvalidEntry):
                j.append(batch)  # type: ignore[arg-type]
            assert j.head() == before
        assert [e.seq for e in j.entries()] == [1]
        assert j.append([(b"next", b"")])[0].seq == 2
        j.verify_chain()

    def test_entries_ranges(self, journal_factory: Factory) -> None:
        j = journal_factory()
        got = j.append(make_items(50, seed=3))
        assert list(j.entries(10, 20)) == got[9:20]
        assert list(j.entries(10)) == got[9:]
        assert list(j.entries(50, 50)) == got[49:]
        assert list(j.entries(40, 1000)) == got[39:]  # clamped to head
        assert list(j.entries(51)) == []
        assert list(j.entries(30, 29)) == []
        assert list(j.entries(1, 0)) == []
        for bad in (0, -1, 1.5, "1", True):
            with pytest.raises(InvalidEntry):
                j.entries(bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidEntry):
            j.entries(1, -1)

    def test_entries_streams_and_bound_is_fixed_at_call(self, journal_factory: Factory) -> None:
        j = journal_factory()
        n = 10_000  # spans several read chunks
        items = [(i.to_bytes(4, "big"), b"") for i in range(n)]
        for k in range(0, n, 1000):
            j.append(items[k : k + 1000])
        it = j.entries()
        seen = 0
        for e in it:
            seen += 1
            assert e.seq == seen and e.payload == items[seen - 1][0]
            if seen in (1, 5000):  # appends interleaved with the iteration
                j.append([(b"late", b"")])
        assert seen == n  # entries() stops at the head it saw when called
        assert j.head()[0] == n + 2
        assert [e.payload for e in j.entries(n + 1)] == [b"late", b"late"]
        assert j.verify_chain()[0] == n + 2

    def test_concurrent_appends_from_threads(self, journal_factory: Factory) -> None:
        j = journal_factory()
        errors: list[BaseException] = []

        def worker(tid: int) -> None:
            try:
                for b in range(20):
                    j.append([(bytes([tid, b, k]), b"") for k in range(10)])
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        entries = list(j.entries())
        assert [e.seq for e in entries] == list(range(1, 801))
        assert sorted(e.payload for e in entries) == sorted(
            bytes([t, b, k]) for t in range(4) for b in range(20) for k in range(10)
        )
        # each batch stayed contiguous
        for start in range(0, 800, 10):
            assert len({e.payload[:2] for e in entries[start : start + 10]}) == 1
        assert j.verify_chain() == j.head()

    # ------------------------------------------------------------------ verify_chain

    def test_verify_chain_from_seq(self, journal_factory: Factory) -> None:
        j = journal_factory()
        got = j.append(make_items(30, seed=4))
        head = (30, got[-1].hash)
        assert j.verify_chain(1) == head
        assert j.verify_chain(17) == head
        assert j.verify_chain(30) == head
        assert j.verify_chain(31) == head  # nothing left to check
        with pytest.raises(InvalidEntry):
            j.verify_chain(32)
        with pytest.raises(InvalidEntry):
            j.verify_chain(0)

    def test_tampered_payload_detected(self, journal_factory: Factory) -> None:
        j = journal_factory()
        j.append(make_items(40, seed=5))
        self.tamper_payload(j, 17, b"evil")
        with pytest.raises(JournalCorrupt) as info:
            j.verify_chain()
        assert info.value.seq == 17
        assert "17" in str(info.value)
        with pytest.raises(JournalCorrupt) as info:
            j.verify_chain(10)
        assert info.value.seq == 17
        # the chain after the tampered entry is still internally consistent
        assert j.verify_chain(18)[0] == 40

    # ------------------------------------------------------------------ snapshots

    def test_snapshots_save_latest_at_or_before(self, journal_factory: Factory) -> None:
        j = journal_factory()
        got = j.append(make_items(100, seed=6))
        s0 = j.save_snapshot(0, b"genesis", root(0))
        assert s0 == Snapshot(0, b"genesis", root(0), ZERO_HASH)
        s50 = j.save_snapshot(50, b"state@50", root(50))
        assert s50 == Snapshot(50, b"state@50", root(50), got[49].hash)
        assert j.latest_snapshot() == s50
        s80 = j.save_snapshot(80, b"state@80" * 1000, root(80))
        assert j.latest_snapshot() == s80
        assert j.snapshot_at_or_before(100) == s80
        assert j.snapshot_at_or_before(80) == s80
        assert j.snapshot_at_or_before(79) == s50
        assert j.snapshot_at_or_before(49) == s0
        assert j.snapshot_at_or_before(0) == s0
        assert j.snapshot_seqs() == [0, 50, 80]
        assert "bytes" in repr(s80) and len(repr(s80)) < 300

    def test_snapshot_pruning(self, journal_factory: Factory) -> None:
        j = journal_factory(keep_snapshots=2)
        j.append(make_items(20, seed=7))
        for seq in (2, 4, 6, 8):
            j.save_snapshot(seq, b"s%d" % seq, root(seq))
        assert j.snapshot_seqs() == [6, 8]
        assert j.snapshot_at_or_before(5) is None
        j.save_snapshot(3, b"old", root(3))  # older than the kept ones: pruned at once
        assert j.snapshot_seqs() == [6, 8]

    def test_snapshot_default_keeps_three(self, journal_factory: Factory) -> None:
        j = journal_factory()
        j.append(make_items(10, seed=8))
        for seq in range(1, 11):
            j.save_snapshot(seq, b"x", root(seq))
        assert j.snapshot_seqs() == [8, 9, 10]

    def test_snapshot_misuse(self, journal_factory: Factory) -> None:
        j = journal_factory()
        j.append(make_items(10, seed=9))
        j.save_snapshot(5, b"five", root(5))
        with pytest.raises(SnapshotBeyondHead):
            j.save_snapshot(11, b"future", root(11))
        with pytest.raises(SnapshotConflict):
            j.save_snapshot(5, b"other", root(6))
        with pytest.raises(InvalidEntry):
            j.save_snapshot(6, b"x", b"short")
        with pytest.raises(InvalidEntry):
            j.save_snapshot(-1, b"x", root(0))
        with pytest.raises(InvalidEntry):
            j.save_snapshot(6, "text", root(6))  # type: ignore[arg-type]
        assert j.snapshot_seqs() == [5]
        assert j.latest_snapshot() == Snapshot(5, b"five", root(5), j.entry(5).hash)
        # same root again replaces the blob (e.g. a re-encoding of the same state)
        j.save_snapshot(5, b"five-v2", root(5))
        assert j.latest_snapshot().state_blob == b"five-v2"
        # once the log reaches the seq, the snapshot is accepted
        j.append([(b"eleven", b"")])
        assert j.save_snapshot(11, b"s11", root(11)).journal_hash == j.head()[1]

    # ------------------------------------------------------------------ meta

    def test_meta(self, journal_factory: Factory) -> None:
        j = journal_factory()
        j.set_meta("genesis", b"\x01\x02")
        j.set_meta("genesis", b"\x01\x02")  # same value: fine
        assert j.get_meta("genesis") == b"\x01\x02"
        with pytest.raises(MetaConflict):
            j.set_meta("genesis", b"\x03")
        assert j.get_meta("genesis") == b"\x01\x02"
        j.set_meta("genesis", b"\x03", overwrite=True)
        assert j.get_meta("genesis") == b"\x03"
        j.set_meta("empty", b"")
        assert j.get_meta("empty") == b""
        assert j.get_meta("missing") is None
        with pytest.raises(InvalidEntry):
            j.set_meta("", b"x")
        with pytest.raises(InvalidEntry):
            j.set_meta("k", "text")  # type: ignore[arg-type]

    # ------------------------------------------------------------------ lifecycle

    def test_close_and_context_manager(self, journal_factory: Factory) -> None:
        with journal_factory() as j:
            j.append([(b"a", b"")])
            assert not j.closed
        assert j.closed
        j.close()  # idempotent
        for call in (
            lambda: j.append([(b"b", b"")]),
            j.head,
            lambda: j.entry(1),
            lambda: list(j.entries()),
            j.verify_chain,
            lambda: j.save_snapshot(1, b"", root(1)),
            j.latest_snapshot,
            lambda: j.set_meta("k", b"v"),
            lambda: j.get_meta("k"),
        ):
            with pytest.raises(JournalClosed):
                call()

    def test_reopen_identical(self, journal_factory: Factory) -> None:
        j = journal_factory()
        got = append_in_batches(j, make_items(300, seed=10), [100, 1, 199])
        j.save_snapshot(150, b"s150", root(150))
        j.save_snapshot(300, b"s300", root(300))
        j.set_meta("genesis", b"cfg")
        head = j.head()
        j2 = self._reopen(journal_factory, j)
        assert j2.head() == head
        assert list(j2.entries()) == got
        assert j2.verify_chain() == head
        assert j2.snapshot_seqs() == [150, 300]
        assert j2.latest_snapshot() == Snapshot(300, b"s300", root(300), head[1])
        assert j2.get_meta("genesis") == b"cfg"
        # appending continues the same chain
        more = make_items(5, seed=11)
        j2.append(more)
        all_items = make_items(300, seed=10) + more
        assert j2.head() == (305, reference_chain(all_items)[-1])
        j3 = self._reopen(journal_factory, j2)
        assert j3.verify_chain() == (305, reference_chain(all_items)[-1])

    def test_reopen_keep_snapshots_applies(self, journal_factory: Factory) -> None:
        j = journal_factory(keep_snapshots=5)
        j.append(make_items(6, seed=12))
        for seq in range(1, 6):
            j.save_snapshot(seq, b"", root(seq))
        j2 = self._reopen(journal_factory, j, keep_snapshots=2)
        assert j2.snapshot_seqs() == [1, 2, 3, 4, 5]  # nothing pruned until the next save
        j2.save_snapshot(6, b"", root(6))
        assert j2.snapshot_seqs() == [5, 6]
