"""Database engines and the migration check.

SQLite (the default, nothing to install) runs in WAL mode with foreign keys on, a busy timeout,
and ``synchronous=FULL``: a report acknowledged with 202 survives a crash or a power cut. Group
commit (see :mod:`relay.ingest`) pays for that fsync once per batch, not once per report.
PostgreSQL (``postgresql+asyncpg://``) is used as is.
"""

from __future__ import annotations

import os
from pathlib import Path
import sqlite3
from typing import Any
import weakref

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine as sa_create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

WAL_LIMIT_BYTES = 64 * 1024 * 1024
DEFAULT_URL = "sqlite+aiosqlite:///./hpoll-relay.db"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class NotMigratedError(RuntimeError):
    """The database schema is missing or older than this relay."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
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


def create_engine(url: str) -> AsyncEngine:
    """An async engine with the pragmas SQLite needs to be a safe default."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def create_sync_sqlite_engine(url: URL) -> Engine:
    """A plain-sqlite3 engine on the same file and pragmas (for the ingest writer's thread),
    guarded (:func:`guard_file`)."""
    engine = sa_create_engine(
        url.set(drivername="sqlite"), connect_args={"timeout": 30, "check_same_thread": False}
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    guard_file(engine)
    return engine


def checkpoint_sqlite(engine: Engine) -> None:
    """Copy the WAL back into the database without blocking the writer (PASSIVE)."""
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    """Alembic configuration for this package's migrations and a database URL."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest migration this relay ships."""
    head = ScriptDirectory.from_config(alembic_config(DEFAULT_URL)).get_current_head()
    assert head is not None
    return head


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (``hpoll-relay db upgrade``)."""

    def run(connection: Connection) -> None:
        config = alembic_config(str(engine.url))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The schema revision the database is at (None when never migrated)."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)


async def require_current_schema(engine: AsyncEngine) -> None:
    """Refuse to run on a database that is not migrated to this relay's schema."""
    current, head = await current_revision(engine), head_revision()
    if current != head:
        state = "has no hpoll schema" if current is None else f"is at revision {current}"
        raise NotMigratedError(
            f"the database {state}, this relay needs {head}: run 'hpoll-relay db upgrade' first"
        )
