"""SQLite's file: the pragmas every connection gets, the guard against a file replaced or moved
while the relay runs, and plain-sqlite3 engines (the ingest writer's, the checkpoints').

Apart from :mod:`relay.storage.db` (migrations, async engines): the SQLite writer's interpreter
imports this, and alembic and SQLAlchemy's asyncio side were 11 MB of its memory.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any
import weakref

from sqlalchemy import create_engine as sa_create_engine, event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DisconnectionError

WAL_LIMIT_BYTES = 64 * 1024 * 1024


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL, ``synchronous=FULL`` (a report answered 202 survives a crash or a power cut),
    foreign keys, a busy timeout, and a WAL that shrinks back after a checkpoint."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # A checkpointed WAL shrinks back to this size instead of keeping its peak on disk.
    cursor.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
    cursor.close()


def file_identity(database: str) -> tuple[int, int] | None:
    """A database file's identity (device, inode); None when there is no such file."""
    try:
        found = os.stat(database)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


#: What a relay whose database file was swapped under it says until it is restarted.
FILE_REPLACED = (
    "the database file was replaced while the relay ran: restart the relay (a restore: stop "
    "it, remove the old -wal and -shm files, put the file in place, start it)"
)
FILE_MISSING = "the database file is missing"


class FileGuard:
    """The SQLite file an engine works on, as it was when the engine first opened it.

    A file put in its place while the relay runs (a restore) is never opened, nor written into
    by connections still open on the old one: they would write where nobody reads again, and
    the old file's WAL, left beside the new one, would be read into it (a malformed database).
    Once seen, that refusal stays until the relay restarts. A file moved away is refused while
    it is away (nothing is made in its place) and used again when the same file is back.

    Not caught: a file copied over the old one in place (same inode). Never do that to a
    database in use."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.file: tuple[int, int] | None = None
        self.replaced = False

    def check(self) -> None:
        """Raise (``sqlite3.OperationalError``) unless the file is the one first opened."""
        found = file_identity(self.database)
        if self.file is None:
            self.file = found
        elif found is not None and found != self.file:
            self.replaced = True
        if self.replaced:
            raise sqlite3.OperationalError(FILE_REPLACED)
        if found is None:
            raise sqlite3.OperationalError(FILE_MISSING)


_GUARDS: weakref.WeakKeyDictionary[Engine, FileGuard] = weakref.WeakKeyDictionary()


def guard_file(engine: Engine) -> FileGuard | None:
    """The engine's :class:`FileGuard` (made and hooked in once): it checks before every new
    connection (so the file is never made, nor a replaced one opened) and every checkout (so
    a pooled connection to a file since replaced or moved away is not handed out). None for
    databases that are not a plain file (in memory, ``file:`` URIs)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    if (guard := _GUARDS.get(engine)) is not None:
        return guard
    guard = _GUARDS[engine] = FileGuard(database)

    @event.listens_for(engine, "do_connect")
    def before_connecting(*_args: Any) -> None:
        guard.check()

    @event.listens_for(engine, "checkout")
    def handed_out(*_args: Any) -> None:
        try:
            guard.check()
        except sqlite3.OperationalError as err:
            raise DisconnectionError(str(err)) from err  # the pool drops it, connects anew

    return guard


def create_sync_sqlite_engine(url: URL) -> Engine:
    """A plain-sqlite3 engine on the same file and pragmas (for the ingest writer's thread),
    guarded (:func:`guard_file`)."""
    engine = sa_create_engine(
        url.set(drivername="sqlite"), connect_args={"timeout": 30, "check_same_thread": False}
    )
    event.listen(engine, "connect", sqlite_pragmas)
    guard_file(engine)
    return engine


def checkpoint_sqlite(engine: Engine) -> None:
    """Copy the WAL back into the database without blocking the writer (PASSIVE)."""
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
