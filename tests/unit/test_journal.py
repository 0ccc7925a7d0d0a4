"""SQLiteJournal: the backend conformance suite (file and :memory:) plus SQLite specifics."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

_TESTS = Path(__file__).resolve().parents[1]
for _p in (_TESTS.parent, _TESTS):  # repo root (clearline) and tests/ (journal_conformance)
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

pytest.register_assert_rewrite("journal_conformance")

from journal_conformance import JournalConformance, make_items, reference_chain  # noqa: E402

from clearline.core.hashing import keccak  # noqa: E402
from clearline.journal import (  # noqa: E402
    ZERO_HASH,
    Journal,
    JournalCorrupt,
    JournalError,
    SQLiteJournal,
    chain_link,
    open_journal,
)

# ---------------------------------------------------------------------------- conformance


def _raw_update(path: str, sql: str, params: tuple) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(sql, params)
    conn.close()


class TestSQLiteFileConformance(JournalConformance):
    supports_reopen = True

    @pytest.fixture
    def journal_factory(self, tmp_path):
        opened: list[Journal] = []

        def make(name: str = "main", **kwargs) -> Journal:
            j = SQLiteJournal(tmp_path / f"{name}.sqlite", **kwargs)
            opened.append(j)
            return j

        yield make
        for j in opened:
            j.close()

    def tamper_payload(self, journal, seq, payload):
        _raw_update(journal.path, "UPDATE journal SET payload = ? WHERE seq = ?", (payload, seq))


class TestSQLiteMemoryConformance(JournalConformance):
    supports_reopen = False

    @pytest.fixture
    def journal_factory(self):
        opened: list[Journal] = []

        def make(name: str = "main", **kwargs) -> Journal:
            j = SQLiteJournal(":memory:", **kwargs)
            opened.append(j)
            return j

        yield make
        for j in opened:
            j.close()

    def tamper_payload(self, journal, seq, payload):
        journal._conn.execute("UPDATE journal SET payload = ? WHERE seq = ?", (payload, seq))


# ---------------------------------------------------------------------------- hash chain


def test_chain_link_matches_documented_formula():
    payload, signer = b"\xde\xad\xbe\xef", bytes(range(20))
    expected = keccak(ZERO_HASH + (1).to_bytes(8, "big") + keccak(payload) + signer)
    assert chain_link(ZERO_HASH, 1, payload, signer) == expected
    # pinned vector: keccak-256 (not SHA3-256), big-endian uint64 seq
    assert keccak(b"") == bytes.fromhex(
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )
    with SQLiteJournal(":memory:") as j:
        (e,) = j.append([(payload, signer)])
    assert e.hash == expected


@settings(max_examples=30, deadline=None)
@given(
    items=st.lists(
        st.tuples(st.binary(max_size=64), st.sampled_from([b"", b"\x01" * 20, b"\xfe" * 20])),
        max_size=40,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=6),
)
def test_batching_never_changes_the_chain(items, cuts):
    bounds = sorted({0, len(items), *(c for c in cuts if c <= len(items))})
    with SQLiteJournal(":memory:") as j:
        for a, b in zip(bounds, bounds[1:]):
            j.append(items[a:b])
        entries = list(j.entries())
        assert [e.seq for e in entries] == list(range(1, len(items) + 1))
        assert [e.hash for e in entries] == reference_chain(items)
        assert j.verify_chain() == j.head()


# ---------------------------------------------------------------------------- file specifics


def test_file_is_wal_with_requested_synchronous(tmp_path):
    path = tmp_path / "j.sqlite"
    with SQLiteJournal(path) as j:
        assert j._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert j._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with SQLiteJournal(path, synchronous="normal") as j:
        assert j._conn.execute("PRAGMA synchronous").fetchone()[0] == 1
    with pytest.raises(JournalError):
        SQLiteJournal(path, synchronous="sometimes")
    with pytest.raises(JournalError):
        SQLiteJournal(path, keep_snapshots=0)


def test_reopen_file_gives_identical_entries_and_head(tmp_path):
    path = tmp_path / "j.sqlite"
    items = make_items(1000, seed=42, size=300)
    with SQLiteJournal(path) as j:
        for k in range(0, 1000, 250):
            j.append(items[k : k + 250])
        before = list(j.entries())
        head = j.head()
    with SQLiteJournal(path) as j:
        assert j.head() == head == (1000, reference_chain(items)[-1])
        assert list(j.entries()) == before
        assert j.verify_chain() == head


def test_raw_update_of_payload_names_the_seq(tmp_path):
    path = str(tmp_path / "j.sqlite")
    with SQLiteJournal(path) as j:
        j.append(make_items(100, seed=1))
    _raw_update(path, "UPDATE journal SET payload = ? WHERE seq = ?", (b"forged", 37))
    with SQLiteJournal(path) as j:  # the tail is intact, so open succeeds
        with pytest.raises(JournalCorrupt) as info:
            j.verify_chain()
        assert info.value.seq == 37


def test_raw_update_of_signer_or_hash_detected(tmp_path):
    path = str(tmp_path / "j.sqlite")
    with SQLiteJournal(path) as j:
        j.append(make_items(50, seed=2))
    _raw_update(path, "UPDATE journal SET signer = ? WHERE seq = ?", (b"\x07" * 20, 12))
    _raw_update(path, "UPDATE journal SET hash = ? WHERE seq = ?", (b"\x00" * 32, 30))
    with SQLiteJournal(path) as j:
        with pytest.raises(JournalCorrupt) as info:
            j.verify_chain()
        assert info.value.seq == 12
        with pytest.raises(JournalCorrupt) as info:
            j.verify_chain(13)
        assert info.value.seq == 30


def test_deleted_row_is_a_gap(tmp_path):
    path = str(tmp_path / "j.sqlite")
    with SQLiteJournal(path) as j:
        j.append(make_items(20, seed=3))
    _raw_update(path, "DELETE FROM journal WHERE seq = ?", (9,))
    with SQLiteJournal(path) as j:
        with pytest.raises(JournalCorrupt) as info:
            j.verify_chain()
        assert info.value.seq == 9
        with pytest.raises(JournalCorrupt) as info:
            list(j.entries())
        assert info.value.seq == 9
        assert [e.seq for e in j.entries(1, 8)] == list(range(1, 9))


def test_tampered_head_detected_on_open(tmp_path):
    path = str(tmp_path / "j.sqlite")
    with SQLiteJournal(path) as j:
        j.append(make_items(10, seed=4))
    _raw_update(path, "UPDATE journal SET payload = ? WHERE seq = ?", (b"forged", 10))
    with pytest.raises(JournalCorrupt) as info:
        SQLiteJournal(path)
    assert info.value.seq == 10
    with SQLiteJournal(path, verify_on_open=False) as j:  # opt-out, e.g. for forensics
        with pytest.raises(JournalCorrupt):
            j.verify_chain()


def test_gap_at_the_tail_detected_on_open(tmp_path):
    path = str(tmp_path / "j.sqlite")
    with SQLiteJournal(path) as j:
        j.append(make_items(10, seed=5))
    _raw_update(path, "DELETE FROM journal WHERE seq = ?", (9,))
    with pytest.raises(JournalCorrupt):
        SQLiteJournal(path)
    _raw_update(path, "DELETE FROM journal WHERE seq <= ?", (3,))
    with pytest.raises(JournalCorrupt):
        SQLiteJournal(path)


def test_refuses_foreign_files(tmp_path):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 200)
    with pytest.raises(JournalError):
        SQLiteJournal(garbage)
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="not a clearline journal"):
        SQLiteJournal(other)
    with pytest.raises(JournalError):
        SQLiteJournal(tmp_path / "no" / "such" / "dir" / "j.sqlite")


def test_second_connection_sees_appends(tmp_path):
    """Another reader (e.g. the batcher) can follow the sequencer's file."""
    path = tmp_path / "j.sqlite"
    with SQLiteJournal(path) as writer, SQLiteJournal(path) as reader:
        assert reader.head() == (0, ZERO_HASH)
        got = writer.append(make_items(10, seed=6))
        assert reader.head() == writer.head()
        assert list(reader.entries()) == got
        # and a second writer continues the same chain without gaps
        more = reader.append([(b"from-reader", b"")])
        assert more[0].seq == 11
        assert writer.verify_chain() == reader.head()


def test_failed_commit_leaves_nothing(tmp_path):
    """An append that fails inside the transaction rolls back completely."""
    path = tmp_path / "j.sqlite"
    with SQLiteJournal(path) as j:
        j.append([(b"a", b"")])
        # make the next insert fail half-way: a trigger aborts on a particular payload
        j._conn.execute(
            "CREATE TEMP TRIGGER boom BEFORE INSERT ON journal WHEN NEW.payload = x'FF' "
            "BEGIN SELECT RAISE(ABORT, 'boom'); END"
        )
        with pytest.raises(JournalError, match="boom"):
            j.append([(b"b", b""), (b"c", b""), (b"\xff", b""), (b"d", b"")])
        assert j.head()[0] == 1
        assert not j._conn.in_transaction
        j._conn.execute("DROP TRIGGER boom")
        assert [e.seq for e in j.append([(b"b", b"")])] == [2]
        j.verify_chain()


# ---------------------------------------------------------------------------- open_journal


def test_open_journal_urls(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    absolute = tmp_path / "abs.sqlite"
    cases = [
        (f"sqlite:///{absolute}", str(absolute)),  # sqlite:////abs/path
        ("sqlite:///rel.sqlite", "rel.sqlite"),
        (str(tmp_path / "bare.sqlite"), str(tmp_path / "bare.sqlite")),
        (tmp_path / "pathlike.sqlite", str(tmp_path / "pathlike.sqlite")),
        ("sqlite://", ":memory:"),
        ("sqlite:///:memory:", ":memory:"),
        (":memory:", ":memory:"),
    ]
    for url, path in cases:
        with open_journal(url) as j:
            assert isinstance(j, SQLiteJournal)
            assert j.path == path
            j.append([(b"x", b"")])
    assert (tmp_path / "rel.sqlite").exists() and absolute.exists()

    with open_journal("sqlite:///q.sqlite?synchronous=NORMAL&keep_snapshots=7") as j:
        assert j.synchronous == "NORMAL" and j.keep_snapshots == 7
    with open_journal("sqlite:///q.sqlite", keep_snapshots=4) as j:
        assert j.keep_snapshots == 4


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_open_journal_postgres_urls_reach_the_backend(scheme):
    # the backend itself is tested against a real server in
    # tests/integration/test_journal_postgres.py; here: no server listens -> a clean JournalError
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(JournalError, match="cannot connect to the PostgreSQL journal"):
        open_journal(f"{scheme}://user@127.0.0.1:{port}/clearline?connect_timeout=2")


@pytest.mark.parametrize(
    "url",
    [
        "mysql://localhost/db",
        "sqlite://host/path.sqlite",
        "sqlite:///x.sqlite?color=blue",
        "sqlite:///x.sqlite?keep_snapshots=many",
    ],
)
def test_open_journal_rejects_bad_urls(url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(JournalError):
        open_journal(url)
