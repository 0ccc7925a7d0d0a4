"""PostgreSQL journal backend (the production backend), on psycopg 3.

Same semantics, hash chain and errors as :class:`clearline.journal.sqlite.SQLiteJournal`; the
behavioural contract is ``tests/journal_conformance.py``.

Durability
----------
Every ``append`` is one PostgreSQL transaction (a group commit: all rows sent in one pipelined
``executemany``, then COMMIT), and it returns only after the COMMIT has returned. The session
runs with ``synchronous_commit = on`` (the default; see ``synchronous_commit=``), so COMMIT
waits until the WAL record is flushed to disk — an acknowledged append survives a server crash
and a power loss, provided the *server* runs with ``fsync = on`` and ``full_page_writes = on``
(PostgreSQL's defaults; the server's fsync setting is read on open into
:attr:`PostgresJournal.server_fsync`, and a warning is logged if it is off). With synchronous replication configured, ``remote_apply`` / ``remote_write`` make
COMMIT wait for the standby too. ``off`` / ``local`` are accepted for throwaway setups only.
``save_snapshot`` and ``set_meta`` are also single committed transactions.

Serialisation and the chain
---------------------------
A one-row ``head`` table holds ``(seq, hash)`` of the last entry. ``append`` reads it with
``SELECT ... FOR UPDATE`` *inside* its transaction, computes the links with
:func:`clearline.journal.base.build_entries`, inserts the rows and updates the head row before
COMMIT. Any number of writers (threads, processes, hosts) therefore append strictly one after
another and can never fork the chain or leave a gap; a failed or interrupted transaction
leaves nothing behind. ``journal.seq`` is also the primary key, so a duplicate seq is
impossible even for a buggy writer. On open the journal checks that the head row, the last two
entries and the first seq agree (cheap); ``verify_chain`` recomputes everything.

Schema
------
All objects live in one PostgreSQL schema (``schema=``, default ``clearline``), created on
first open, so several journals can share a database::

    info(key text PRIMARY KEY, value text)        -- application = clearline-journal, version = 1
    head(id boolean PRIMARY KEY, seq bigint, hash bytea)            -- exactly one row
    journal(seq bigint PRIMARY KEY, payload bytea, signer bytea, hash bytea)
    snapshots(seq bigint PRIMARY KEY, state_blob bytea, state_root bytea, journal_hash bytea)
    meta(key text PRIMARY KEY, value bytea)

Seqs are ``bigint`` (up to 2**63-1, the same practical limit as SQLite's INTEGER).

The object is safe to share between threads (one connection guarded by a lock).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

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

try:  # psycopg is a dependency, but keep `import clearline.journal` working without it
    import psycopg
    from psycopg import sql
except ImportError:  # pragma: no cover - exercised only on a broken install
    psycopg = None  # type: ignore[assignment]
    sql = None  # type: ignore[assignment]

__all__ = ["PostgresJournal", "APPLICATION", "SCHEMA_VERSION", "DEFAULT_SCHEMA"]

APPLICATION = "clearline-journal"
SCHEMA_VERSION = 1
DEFAULT_SCHEMA = "clearline"
_SYNC_COMMIT = ("on", "remote_apply", "remote_write", "local", "off")
_READ_CHUNK = 4096
_PG_MAX_SEQ = (1 << 63) - 1

_SCHEMA = (
    "CREATE TABLE {s}.info (key text PRIMARY KEY, value text NOT NULL)",
    """CREATE TABLE {s}.head (
        id   boolean PRIMARY KEY DEFAULT true CHECK (id),
        seq  bigint NOT NULL CHECK (seq >= 0),
        hash bytea  NOT NULL CHECK (length(hash) = 32)
    )""",
    """CREATE TABLE {s}.journal (
        seq     bigint PRIMARY KEY CHECK (seq >= 1),
        payload bytea NOT NULL,
        signer  bytea NOT NULL,
        hash    bytea NOT NULL
    )""",
    """CREATE TABLE {s}.snapshots (
        seq          bigint PRIMARY KEY CHECK (seq >= 0),
        state_blob   bytea NOT NULL,
        state_root   bytea NOT NULL CHECK (length(state_root) = 32),
        journal_hash bytea NOT NULL CHECK (length(journal_hash) = 32)
    )""",
    "CREATE TABLE {s}.meta (key text PRIMARY KEY, value bytea NOT NULL)",
)


class PostgresJournal(Journal):
    """A :class:`Journal` in one schema of a PostgreSQL database.

    :param conninfo: a libpq connection string or ``postgresql://`` URI (without the journal's
        own parameters; :func:`clearline.journal.open_journal` strips those).
    :param schema: the PostgreSQL schema holding the tables (created if missing).
    :param keep_snapshots: how many of the newest snapshots to keep (>= 1).
    :param synchronous_commit: the session's ``synchronous_commit`` (``"on"`` = durable).
    :param verify_on_open: check the head row and the last link on open (cheap).
    :param connect_timeout: seconds to wait for the server when connecting.
    """

    def __init__(
        self,
        conninfo: str = "",
        *,
        schema: str = DEFAULT_SCHEMA,
        keep_snapshots: int = 3,
        synchronous_commit: str = "on",
        verify_on_open: bool = True,
        connect_timeout: float = 10.0,
    ) -> None:
        if psycopg is None:  # pragma: no cover
            raise JournalError("the postgres journal needs psycopg 3 (pip install 'psycopg[binary]')")
        sync = str(synchronous_commit).lower()
        if sync not in _SYNC_COMMIT:
            raise InvalidEntry(f"synchronous_commit must be one of {_SYNC_COMMIT}, got {synchronous_commit!r}")
        if type(keep_snapshots) is not int or keep_snapshots < 1:
            raise InvalidEntry(f"keep_snapshots must be an int >= 1, got {keep_snapshots!r}")
        if not isinstance(schema, str) or not schema or len(schema) > 63 or "\x00" in schema:
            raise InvalidEntry(f"schema must be a non-empty name of <= 63 characters, got {schema!r}")
        self.conninfo = conninfo
        self.schema = schema
        self.keep_snapshots = keep_snapshots
        self.synchronous_commit = sync
        self.server_fsync: bool | None = None
        self._lock = threading.RLock()
        self._conn: Any = None
        try:
            conn = psycopg.connect(
                conninfo,
                autocommit=True,
                connect_timeout=max(1, int(connect_timeout)),
            )
        except psycopg.Error as e:
            raise JournalError(f"cannot connect to the PostgreSQL journal database: {e}") from e
        try:
            self._conn = conn
            # a session setting (not the startup 'options' parameter, which some poolers reject
            # and which would clobber an 'options' given in the URL)
            try:
                conn.execute("SELECT set_config('synchronous_commit', %s, false)", (sync,))
            except psycopg.Error as e:
                raise JournalError(f"cannot set synchronous_commit: {e}") from e
            self._q = self._queries(conn)
            self._setup(conn)
            if verify_on_open:
                self._check_tail()
        except BaseException:
            conn.close()
            self._conn = None
            raise

    # ------------------------------------------------------------------ setup

    def _queries(self, conn: Any) -> dict[str, str]:
        s = sql.Identifier(self.schema).as_string(conn)
        q = {
            "head": f"SELECT seq, hash FROM {s}.head",
            "head_lock": f"SELECT seq, hash FROM {s}.head FOR UPDATE",
            "set_head": f"UPDATE {s}.head SET seq = %s, hash = %s",
            "insert": f"INSERT INTO {s}.journal (seq, payload, signer, hash) VALUES (%s, %s, %s, %s)",
            "entry": f"SELECT seq, payload, signer, hash FROM {s}.journal WHERE seq = %s",
            "hash_at": f"SELECT hash FROM {s}.journal WHERE seq = %s",
            "rows": (
                f"SELECT seq, payload, signer, hash FROM {s}.journal "
                "WHERE seq >= %s AND seq <= %s ORDER BY seq LIMIT %s"
            ),
            "tail": f"SELECT seq, payload, signer, hash FROM {s}.journal ORDER BY seq DESC LIMIT 2",
            "first": f"SELECT seq FROM {s}.journal ORDER BY seq LIMIT 1",
            "snap_root": f"SELECT state_root FROM {s}.snapshots WHERE seq = %s",
            "snap_put": (
                f"INSERT INTO {s}.snapshots (seq, state_blob, state_root, journal_hash) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (seq) DO UPDATE SET "
                "state_blob = EXCLUDED.state_blob, state_root = EXCLUDED.state_root, "
                "journal_hash = EXCLUDED.journal_hash"
            ),
            "snap_prune": (
                f"DELETE FROM {s}.snapshots WHERE seq NOT IN "
                f"(SELECT seq FROM {s}.snapshots ORDER BY seq DESC LIMIT %s)"
            ),
            "snap_latest": (
                f"SELECT seq, state_blob, state_root, journal_hash FROM {s}.snapshots "
                "ORDER BY seq DESC LIMIT 1"
            ),
            "snap_before": (
                f"SELECT seq, state_blob, state_root, journal_hash FROM {s}.snapshots "
                "WHERE seq <= %s ORDER BY seq DESC LIMIT 1"
            ),
            "snap_seqs": f"SELECT seq FROM {s}.snapshots ORDER BY seq",
            "meta_get": f"SELECT value FROM {s}.meta WHERE key = %s",
            "meta_lock": f"SELECT value FROM {s}.meta WHERE key = %s FOR UPDATE",
            "meta_put": (
                f"INSERT INTO {s}.meta (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ),
            "s": s,
        }
        return q

    def _setup(self, conn: Any) -> None:
        s = self._q["s"]
        try:
            with conn.transaction():
                # Serialise concurrent first opens of the same schema (CREATE ... IF NOT EXISTS
                # is not race-free in PostgreSQL).
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                    (f"clearline-journal-setup:{self.schema}",),
                )
                exists = conn.execute(
                    "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)
                ).fetchone()
                n_tables = conn.execute(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = %s", (self.schema,)
                ).fetchone()[0]
                if n_tables == 0:
                    if not exists:
                        conn.execute(f"CREATE SCHEMA {s}")
                    for stmt in _SCHEMA:
                        conn.execute(stmt.format(s=s))
                    conn.execute(
                        f"INSERT INTO {s}.info (key, value) VALUES ('application', %s), "
                        "('version', %s)",
                        (APPLICATION, str(SCHEMA_VERSION)),
                    )
                    conn.execute(f"INSERT INTO {s}.head (id, seq, hash) VALUES (true, 0, %s)", (ZERO_HASH,))
                else:
                    has_info = conn.execute(
                        "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'info'",
                        (self.schema,),
                    ).fetchone()
                    info = dict(conn.execute(f"SELECT key, value FROM {s}.info").fetchall()) if has_info else {}
                    if info.get("application") != APPLICATION:
                        raise JournalError(
                            f"schema {self.schema!r} holds tables but is not a clearline journal"
                        )
                    if info.get("version") != str(SCHEMA_VERSION):
                        raise JournalError(
                            f"schema {self.schema!r} has journal schema version "
                            f"{info.get('version')}, this code supports {SCHEMA_VERSION}"
                        )
            row = conn.execute("SELECT current_setting('fsync')").fetchone()
            self.server_fsync = row is not None and row[0] == "on"
            if not self.server_fsync:
                logging.getLogger(__name__).warning(
                    "PostgreSQL server runs with fsync=off: journal appends are not crash-safe"
                )
        except psycopg.Error as e:
            raise JournalError(f"cannot use schema {self.schema!r} as a journal: {e}") from e

    def _check_tail(self) -> None:
        q = self._q
        with self._lock:
            conn = self._c()
            try:
                head_row = conn.execute(q["head"]).fetchall()
                last = conn.execute(q["tail"]).fetchall()
                first = conn.execute(q["first"]).fetchone()
            except psycopg.Error as e:
                raise JournalCorrupt(f"cannot read journal tail: {e}") from e
        if len(head_row) != 1:
            raise JournalCorrupt(f"head table has {len(head_row)} rows, expected 1")
        head_seq, head_hash = head_row[0]
        if not last:
            if head_seq != 0 or bytes(head_hash) != ZERO_HASH:
                raise JournalCorrupt(f"head row says seq {head_seq} but the log is empty", 1)
            return
        if first[0] != 1:
            raise JournalCorrupt("log does not start at seq 1", 1)
        seq, payload, signer, stored = last[0]
        if (head_seq, bytes(head_hash)) != (seq, bytes(stored)):
            raise JournalCorrupt(f"head row (seq {head_seq}) does not match the last entry (seq {seq})", seq)
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

    def _c(self) -> Any:
        conn = self._conn
        if conn is None:
            raise JournalClosed(f"journal {self!r} is closed")
        return conn

    # ------------------------------------------------------------------ log

    def append(self, items: Sequence[tuple[bytes, bytes]]) -> list[JournalEntry]:
        if not isinstance(items, (list, tuple)):
            items = list(items)  # accept any iterable of pairs
        if not items:
            return []
        q = self._q
        with self._lock:
            conn = self._c()
            try:
                with conn.transaction():
                    head_seq, head_hash = conn.execute(q["head_lock"]).fetchone()
                    entries, rows = build_entries(bytes(head_hash), head_seq + 1, items)
                    if entries[-1].seq > _PG_MAX_SEQ:
                        raise InvalidEntry("journal seq would exceed 2**63-1")
                    with conn.cursor() as cur:
                        cur.executemany(q["insert"], rows)
                    conn.execute(q["set_head"], (entries[-1].seq, entries[-1].hash))
                # leaving the block committed (synchronous_commit: flushed to the WAL)
            except psycopg.Error as e:
                raise JournalError(f"append failed: {e}") from e
        return entries

    def head(self) -> tuple[int, bytes]:
        with self._lock:
            try:
                row = self._c().execute(self._q["head"]).fetchone()
            except psycopg.Error as e:
                raise JournalError(f"head failed: {e}") from e
        if row is None:
            raise JournalCorrupt("head row missing")
        return row[0], bytes(row[1])

    def entry(self, seq: int) -> JournalEntry:
        check_seq(seq)
        if seq > _PG_MAX_SEQ:
            raise EntryNotFound(seq)
        with self._lock:
            try:
                row = self._c().execute(self._q["entry"], (seq,)).fetchone()
            except psycopg.Error as e:
                raise JournalError(f"entry failed: {e}") from e
        if row is None:
            raise EntryNotFound(seq)
        return JournalEntry(*row)

    def _iter_rows(self, from_seq: int, to_seq: int) -> Iterator[tuple[int, bytes, bytes, bytes]]:
        # Keyset pagination: no cursor stays open between chunks, so appends, snapshots and
        # commits on this connection can interleave with a long replay.
        lo = from_seq
        hi = min(to_seq, _PG_MAX_SEQ)
        lock = self._lock
        query = self._q["rows"]
        while lo <= hi:
            with lock:
                try:
                    rows = self._c().execute(query, (lo, hi, _READ_CHUNK)).fetchall()
                except psycopg.Error as e:
                    raise JournalError(f"reading the journal failed: {e}") from e
            if not rows:
                return
            yield from rows
            if len(rows) < _READ_CHUNK:
                return
            lo = rows[-1][0] + 1

    # ------------------------------------------------------------------ snapshots

    def save_snapshot(self, seq: int, state_blob: bytes, state_root: bytes) -> Snapshot:
        seq, blob, root = check_snapshot_args(seq, state_blob, state_root)
        q = self._q
        with self._lock:
            conn = self._c()
            try:
                with conn.transaction():
                    # the head row lock serialises snapshot writers with each other (and with
                    # appends, for the few milliseconds a snapshot write takes)
                    head_seq, _ = conn.execute(q["head_lock"]).fetchone()
                    if seq == 0:
                        journal_hash = ZERO_HASH
                    else:
                        row = None if seq > head_seq else conn.execute(q["hash_at"], (seq,)).fetchone()
                        if row is None:
                            raise SnapshotBeyondHead(
                                f"snapshot at seq {seq} but the journal head is {head_seq}"
                            )
                        journal_hash = bytes(row[0])
                    old = conn.execute(q["snap_root"], (seq,)).fetchone()
                    refuse_snapshot_conflict(seq, None if old is None else bytes(old[0]), root)
                    conn.execute(q["snap_put"], (seq, blob, root, journal_hash))
                    conn.execute(q["snap_prune"], (self.keep_snapshots,))
            except psycopg.Error as e:
                raise JournalError(f"save_snapshot failed: {e}") from e
        return Snapshot(seq, blob, root, journal_hash)

    def _snapshot(self, query: str, params: tuple) -> Snapshot | None:
        with self._lock:
            try:
                row = self._c().execute(query, params).fetchone()
            except psycopg.Error as e:
                raise JournalError(f"reading snapshots failed: {e}") from e
        return None if row is None else Snapshot(row[0], bytes(row[1]), bytes(row[2]), bytes(row[3]))

    def latest_snapshot(self) -> Snapshot | None:
        return self._snapshot(self._q["snap_latest"], ())

    def snapshot_at_or_before(self, seq: int) -> Snapshot | None:
        check_seq(seq, "seq", 0)
        return self._snapshot(self._q["snap_before"], (min(seq, _PG_MAX_SEQ),))

    def snapshot_seqs(self) -> list[int]:
        with self._lock:
            try:
                rows = self._c().execute(self._q["snap_seqs"]).fetchall()
            except psycopg.Error as e:
                raise JournalError(f"reading snapshots failed: {e}") from e
        return [r[0] for r in rows]

    # ------------------------------------------------------------------ meta

    def set_meta(self, key: str, value: bytes, *, overwrite: bool = False) -> None:
        check_meta_key(key)
        if "\x00" in key:
            raise InvalidEntry("meta key must not contain NUL (PostgreSQL text)")
        value = as_bytes(value, "meta value")
        q = self._q
        with self._lock:
            conn = self._c()
            try:
                with conn.transaction():
                    # a per-key advisory lock serialises writers of the same key, including
                    # the first insert (FOR UPDATE cannot lock a row that does not exist yet)
                    conn.execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))",
                        (f"{self.schema}/{key}",),
                    )
                    old = conn.execute(q["meta_lock"], (key,)).fetchone()
                    if meta_needs_write(key, None if old is None else bytes(old[0]), value, overwrite):
                        conn.execute(q["meta_put"], (key, value))
            except psycopg.Error as e:
                raise JournalError(f"set_meta failed: {e}") from e

    def get_meta(self, key: str) -> bytes | None:
        if isinstance(key, str) and "\x00" in key:
            return None  # cannot have been stored
        with self._lock:
            try:
                row = self._c().execute(self._q["meta_get"], (key,)).fetchone()
            except psycopg.Error as e:
                raise JournalError(f"get_meta failed: {e}") from e
        return None if row is None else bytes(row[0])

    # ------------------------------------------------------------------ lifecycle

    @property
    def closed(self) -> bool:
        return self._conn is None

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else f"synchronous_commit={self.synchronous_commit}"
        return f"PostgresJournal(schema={self.schema!r}, {state})"
