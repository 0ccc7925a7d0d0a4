"""Append-only, sequence-numbered, hash-chained log of accepted inputs, plus snapshots.

See :mod:`clearline.journal.base` for the hash chain and the interface, and
:mod:`clearline.journal.sqlite` for the embedded backend. ``open_journal(url)`` picks a backend:

- ``sqlite:///relative/path.sqlite``, ``sqlite:////absolute/path.sqlite`` (SQLAlchemy style:
  the path is everything after ``sqlite:///``), ``sqlite://`` or ``sqlite:///:memory:`` for an
  in-memory journal, or a bare filesystem path. Query parameters ``synchronous`` and
  ``keep_snapshots`` are passed on, e.g. ``sqlite:///j.sqlite?synchronous=NORMAL``.
- ``postgresql://[user[:password]@][host][:port]/dbname[?param=value&...]`` (also
  ``postgres://`` and ``postgresql+psycopg://``): the production backend,
  :class:`clearline.journal.postgres.PostgresJournal`. The journal's own query parameters
  ``schema`` (default ``clearline``; one schema per journal, so several share a database),
  ``keep_snapshots`` and ``synchronous_commit`` (default ``on``) are taken out; everything
  else goes to libpq, e.g. ``postgresql://clearline@db:5432/prod?schema=node1&sslmode=require``
  or ``postgresql:///prod?host=/run/postgresql`` for a unix socket.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qsl, urlencode

from clearline.journal.base import (
    ZERO_HASH,
    EntryNotFound,
    InvalidEntry,
    Journal,
    JournalClosed,
    JournalCorrupt,
    JournalEntry,
    JournalError,
    MetaConflict,
    Snapshot,
    SnapshotBeyondHead,
    SnapshotConflict,
    chain_link,
)
from clearline.journal.sqlite import SQLiteJournal

__all__ = [
    "Journal",
    "JournalEntry",
    "Snapshot",
    "JournalError",
    "JournalCorrupt",
    "JournalClosed",
    "InvalidEntry",
    "EntryNotFound",
    "SnapshotBeyondHead",
    "SnapshotConflict",
    "MetaConflict",
    "SQLiteJournal",
    "PostgresJournal",
    "open_journal",
    "chain_link",
    "ZERO_HASH",
]

_SQLITE_PARAMS = {"synchronous": str, "keep_snapshots": int}
_POSTGRES_PARAMS = {"schema": str, "keep_snapshots": int, "synchronous_commit": str}


def __getattr__(name: str) -> Any:  # lazy: psycopg is only imported when postgres is used
    if name == "PostgresJournal":
        from clearline.journal.postgres import PostgresJournal

        return PostgresJournal
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _open_postgres(url: str, rest: str, kwargs: dict[str, Any]) -> Journal:
    from clearline.journal.postgres import PostgresJournal

    rest, _, query = rest.partition("?")
    params: dict[str, Any] = {}
    passthrough: list[tuple[str, str]] = []
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        if key in _POSTGRES_PARAMS:
            try:
                params[key] = _POSTGRES_PARAMS[key](value)
            except ValueError:
                raise JournalError(f"bad value {value!r} for {key!r} in journal URL") from None
        else:
            passthrough.append((key, value))
    params.update(kwargs)
    conninfo = "postgresql://" + rest + ("?" + urlencode(passthrough) if passthrough else "")
    return PostgresJournal(conninfo, **params)


def open_journal(url: str | os.PathLike[str], **kwargs: Any) -> Journal:
    """Open (creating if needed) the journal named by ``url``; ``kwargs`` go to the backend."""
    url = os.fspath(url)
    scheme, sep, rest = url.partition("://")
    if not sep:  # a bare path (or ":memory:")
        return SQLiteJournal(url, **kwargs)
    scheme = scheme.lower()
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        return _open_postgres(url, rest, kwargs)
    if scheme != "sqlite":
        raise JournalError(f"unknown journal URL scheme {scheme!r} in {url!r}")
    rest, _, query = rest.partition("?")
    params: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        if key not in _SQLITE_PARAMS:
            raise JournalError(f"unknown sqlite journal parameter {key!r} in {url!r}")
        try:
            params[key] = _SQLITE_PARAMS[key](value)
        except ValueError:
            raise JournalError(f"bad value {value!r} for {key!r} in {url!r}") from None
    params.update(kwargs)
    if rest in ("", "/", "/:memory:"):
        return SQLiteJournal(":memory:", **params)
    if not rest.startswith("/"):
        raise JournalError(f"sqlite journal URL must look like sqlite:///path, got {url!r}")
    return SQLiteJournal(rest[1:], **params)
