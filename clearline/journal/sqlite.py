"""SQLite journal backend (the embedded default).

One file, WAL mode, one SQLite transaction per ``append`` (a group commit: a prepared
``executemany`` of all rows, then COMMIT). With ``synchronous="FULL"`` (the default) the WAL is
fsync'd at every COMMIT, so an acknowledged append survives a process crash and a power loss;
``"NORMAL"`` survives process crashes only, ``"OFF"`` is for throwaway tests. SQLite
transactions are all-or-nothing, so a crash can never leave a torn batch; on open the journal
still recomputes the last link (cheap) to catch a damaged file early. ``verify_chain`` does the
full recomputation.

Schema (``PRAGMA application_id`` = 0x434C4A4C "CLJL", ``PRAGMA user_version`` = 1)::

    journal(seq INTEGER PRIMARY KEY, payload BLOB, signer BLOB, hash BLOB)
    snapshots(seq INTEGER PRIMARY KEY, state_blob BLOB, state_root BLOB, journal_hash BLOB)
    meta(key TEXT PRIMARY KEY, value BLOB)

The object is safe to share between threads (one connection guarded by a lock). Other
processes may open the same file concurrently to read (WAL); appends from several processes
are serialised by SQLite's write lock and stay gap-free because the head is re-read inside each
write transaction.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence

from clearline.journal.base import (
    ZERO_HASH,
    EntryNotFound,
    InvalidEntry,
    Journal,
    JournalClosed,
    JournalCorrupt,
    JournalEntry,
    JournalError,
    Snapshot,
    SnapshotBeyondHead,
    as_bytes,
    build_entries,
    chain_link,
    check_meta_key,
    check_seq,
    check_snapshot_args,
    meta_needs_write,
    refuse_snapshot_conflict,
)

__all__ = ["SQLiteJournal", "APPLICATION_ID", "SCHEMA_VERSION"]

APPLICATION_ID = 0x434C4A4C  # "CLJL"
SCHEMA_VERSION = 1
_SYNC_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
_READ_CHUNK = 4096
_PAGE_SIZE = 16384
_WAL_SIZE_LIMIT = 64 * 1024 * 1024  # truncate the WAL file back to this after checkpoints

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS journal (
        seq     INTEGER PRIMARY KEY,
        payload BLOB NOT NULL,
        signer  BLOB NOT NULL,
        hash    BLOB NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS snapshots (
        seq          INTEGER PRIMARY KEY,
        state_blob   BLOB NOT NULL,
        state_root   BLOB NOT NULL CHECK (length(state_root) = 32),
        journal_hash BLOB NOT NULL CHECK (length(journal_hash) = 32)
    )""",
    """CREATE TABLE IF NOT EXISTS meta (
        key   TEXT PRIMARY KEY,
        value BLOB NOT NULL
    ) WITHOUT ROWID""",
)

_INSERT = "INSERT INTO journal (seq, payload, signer, hash) VALUES (?, ?, ?, ?)"
_HEAD = "SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1"
_ROWS = (
    "SELECT seq, payload, signer, hash FROM journal WHERE seq >= ? AND seq <= ? "
    "ORDER BY seq LIMIT ?"
)


class SQLiteJournal(Journal):
    """A :class:`Journal` in one SQLite file (or ``":memory:"``).

    :param path: file path (created if missing; its directory must exist) or ``":memory:"``.
    :param synchronous: SQLite ``synchronous`` pragma: ``"FULL"`` (durable), ``"NORMAL"``,
        ``"OFF"`` or ``"EXTRA"``.
    :param keep_snapshots: how many of the newest snapshots to keep (>= 1).
    :param verify_on_open: recompute the last link on open (cheap) and check the log starts
        at seq 1.
    :param timeout: seconds to wait for another process's write lock.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        synchronous: str = "FULL",
        *,
        keep_snapshots: int = 3,
        verify_on_open: bool = True,
        timeout: float = 10.0,
    ) -> None:
        sync = str(synchronous).upper()
        if sync not in _SYNC_MODES:
            raise InvalidEntry(f"synchronous must be one of {_SYNC_MODES}, got {synchronous!r}")
        if type(keep_snapshots) is not int or keep_snapshots < 1:
            raise InvalidEntry(f"keep_snapshots must be an int >= 1, got {keep_snapshots!r}")
        self.path = os.fspath(path)
        self.synchronous = sync
        self.keep_snapshots = keep_snapshots
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._checkpointer: threading.Thread | None = None
        self._stop = threading.Event()
        try:
            conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise JournalError(f"cannot open journal {self.path!r}: {e}") from e
        try:
            self._conn = conn
            self._setup(conn, sync)
            if verify_on_open:
                self._check_tail()
        except BaseException:
            conn.close()
            self._conn = None
            raise
        if self._is_file():
            self._checkpointer = threading.Thread(target=self._checkpoint_loop, args=(timeout,),
                                                  name="journal-checkpoint", daemon=True)
            self._checkpointer.start()

    def _is_file(self) -> bool:
        return self.path != ":memory:" and not self.path.startswith("file::memory:")

    def _checkpoint_loop(self, timeout: float) -> None:
        """Copy the WAL into the database file off the append path.

        SQLite's automatic checkpoint runs inside whichever commit crosses the threshold,
        which turned into 3-8 ms stalls of the appending (acknowledging) thread. Here it is
        disabled and a passive checkpoint runs every 200 ms on this thread's own connection;
        SQLite releases the GIL while it copies and syncs. Durability is unchanged: every
        append is already synced to the WAL before it returns.
        """
        try:
            conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            return
        try:
            while not self._stop.wait(0.2):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    pass  # busy or closing: the next round retries
        finally:
            conn.close()

    # ------------------------------------------------------------------ setup

    def _setup(self, conn: sqlite3.Connection, sync: str) -> None:
        try:
            if self.path != ":memory:" and not self.path.startswith("file::memory:"):
                # Only takes effect on a new file (before WAL mode writes the header): larger
                # pages suit ~0.5 kB rows written in long sequential runs (fewer page writes
                # and checkpoints). Existing files keep their page size.
                conn.execute(f"PRAGMA page_size={_PAGE_SIZE}")
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise JournalError(f"could not enable WAL mode (got {mode!r})")
            conn.execute(f"PRAGMA synchronous={sync}")
            conn.execute(f"PRAGMA journal_size_limit={_WAL_SIZE_LIMIT}")
            if self.path != ":memory:" and not self.path.startswith("file::memory:"):
                conn.execute("PRAGMA wal_autocheckpoint=0")  # see _checkpoint_loop
            conn.execute("BEGIN IMMEDIATE")
            try:
                app_id = conn.execute("PRAGMA application_id").fetchone()[0]
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                n_tables = conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                ).fetchone()[0]
                if app_id == 0 and version == 0 and n_tables == 0:
                    for stmt in _SCHEMA:
                        conn.execute(stmt)
                    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                elif app_id != APPLICATION_ID:
                    raise JournalError(
                        f"{self.path!r} is an SQLite database but not a clearline journal "
                        f"(application_id={app_id:#x})"
                    )
                elif version != SCHEMA_VERSION:
                    raise JournalError(
                        f"{self.path!r} has journal schema version {version}, "
                        f"this code supports {SCHEMA_VERSION}"
                    )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as e:
            raise JournalCorrupt(f"cannot use {self.path!r} as a journal: {e}") from e

    def _check_tail(self) -> None:
        with self._lock:
            conn = self._c()
            try:
                last = conn.execute(
                    "SELECT seq, payload, signer, hash FROM journal ORDER BY seq DESC LIMIT 2"
                ).fetchall()
                first = conn.execute("SELECT seq FROM journal ORDER BY seq LIMIT 1").fetchone()
            except sqlite3.DatabaseError as e:
                raise JournalCorrupt(f"cannot read journal tail: {e}") from e
        if not last:
            return
        if first[0] != 1:
            raise JournalCorrupt("log does not start at seq 1", 1)
        seq, payload, signer, stored = last[0]
        if len(last) == 2:
            prev_seq, _, _, prev_hash = last[1]
            if prev_seq != seq - 1:
                raise JournalCorrupt("entry missing (gap in the log)", prev_seq + 1)
        else:
            prev_hash = ZERO_HASH
            if seq != 1:  # pragma: no cover - implied by the first-seq check
                raise JournalCorrupt("entry missing (gap in the log)", 1)
        if len(signer) not in (0, 20) or chain_link(prev_hash, seq, payload, signer) != stored:
            raise JournalCorrupt("head hash does not match its recomputed link", seq)

    def _c(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            raise JournalClosed(f"journal {self.path!r} is closed")
        return conn

    # ------------------------------------------------------------------ log

    def append(self, items: Sequence[tuple[bytes, bytes]]) -> list[JournalEntry]:
        if not isinstance(items, (list, tuple)):
            items = list(items)  # accept any iterable of pairs
        if not items:
            return []
        with self._lock:
            conn = self._c()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    row = conn.execute(_HEAD).fetchone()
                    head_seq, head_hash = (0, ZERO_HASH) if row is None else row
                    entries, rows = build_entries(head_hash, head_seq + 1, items)
                    conn.executemany(_INSERT, rows)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as e:
                raise JournalError(f"append failed: {e}") from e
        return entries

    def head(self) -> tuple[int, bytes]:
        with self._lock:
            row = self._c().execute(_HEAD).fetchone()
        return (0, ZERO_HASH) if row is None else (row[0], row[1])

    def entry(self, seq: int) -> JournalEntry:
        check_seq(seq)
        with self._lock:
            row = (
                self._c()
                .execute("SELECT seq, payload, signer, hash FROM journal WHERE seq = ?", (seq,))
                .fetchone()
            )
        if row is None:
            raise EntryNotFound(seq)
        return JournalEntry(*row)

    def _iter_rows(self, from_seq: int, to_seq: int) -> Iterator[tuple[int, bytes, bytes, bytes]]:
        # Keyset pagination: no statement stays open between chunks, so appends, snapshots
        # and commits on this connection can interleave with a long replay.
        lo = from_seq
        lock = self._lock
        while lo <= to_seq:
            with lock:
                rows = self._c().execute(_ROWS, (lo, to_seq, _READ_CHUNK)).fetchall()
            if not rows:
                return
            yield from rows
            if len(rows) < _READ_CHUNK:
                return
            lo = rows[-1][0] + 1

    # ------------------------------------------------------------------ snapshots

    def save_snapshot(self, seq: int, state_blob: bytes, state_root: bytes) -> Snapshot:
        seq, blob, root = check_snapshot_args(seq, state_blob, state_root)
        with self._lock:
            conn = self._c()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if seq == 0:
                        journal_hash = ZERO_HASH
                    else:
                        row = conn.execute(
                            "SELECT hash FROM journal WHERE seq = ?", (seq,)
                        ).fetchone()
                        if row is None:
                            head_seq = (conn.execute(_HEAD).fetchone() or (0,))[0]
                            raise SnapshotBeyondHead(
                                f"snapshot at seq {seq} but the journal head is {head_seq}"
                            )
                        journal_hash = row[0]
                    old = conn.execute(
                        "SELECT state_root FROM snapshots WHERE seq = ?", (seq,)
                    ).fetchone()
                    refuse_snapshot_conflict(seq, None if old is None else old[0], root)
                    conn.execute(
                        "INSERT OR REPLACE INTO snapshots (seq, state_blob, state_root, "
                        "journal_hash) VALUES (?, ?, ?, ?)",
                        (seq, blob, root, journal_hash),
                    )
                    conn.execute(
                        "DELETE FROM snapshots WHERE seq NOT IN "
                        "(SELECT seq FROM snapshots ORDER BY seq DESC LIMIT ?)",
                        (self.keep_snapshots,),
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as e:
                raise JournalError(f"save_snapshot failed: {e}") from e
        return Snapshot(seq, blob, root, journal_hash)

    def _snapshot_where(self, where: str, params: tuple) -> Snapshot | None:
        with self._lock:
            row = (
                self._c()
                .execute(
                    "SELECT seq, state_blob, state_root, journal_hash FROM snapshots "
                    f"{where} ORDER BY seq DESC LIMIT 1",
                    params,
                )
                .fetchone()
            )
        return None if row is None else Snapshot(*row)

    def latest_snapshot(self) -> Snapshot | None:
        return self._snapshot_where("", ())

    def snapshot_at_or_before(self, seq: int) -> Snapshot | None:
        check_seq(seq, "seq", 0)
        return self._snapshot_where("WHERE seq <= ?", (seq,))

    def snapshot_seqs(self) -> list[int]:
        with self._lock:
            rows = self._c().execute("SELECT seq FROM snapshots ORDER BY seq").fetchall()
        return [r[0] for r in rows]

    # ------------------------------------------------------------------ meta

    def set_meta(self, key: str, value: bytes, *, overwrite: bool = False) -> None:
        check_meta_key(key)
        value = as_bytes(value, "meta value")
        with self._lock:
            conn = self._c()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    old = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
                    if meta_needs_write(key, None if old is None else old[0], value, overwrite):
                        conn.execute(
                            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value)
                        )
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as e:
                raise JournalError(f"set_meta failed: {e}") from e

    def get_meta(self, key: str) -> bytes | None:
        with self._lock:
            row = self._c().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    # ------------------------------------------------------------------ lifecycle

    @property
    def closed(self) -> bool:
        return self._conn is None

    def close(self) -> None:
        self._stop.set()
        if self._checkpointer is not None:
            self._checkpointer.join()
            self._checkpointer = None
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            conn.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else f"synchronous={self.synchronous}"
        return f"SQLiteJournal({self.path!r}, {state})"
