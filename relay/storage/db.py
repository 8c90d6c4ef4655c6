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


def _watch_file(engine: Engine, database: str | None) -> None:
    """Never hand out a pooled connection whose database file has been replaced (a restore
    from a backup while the relay runs) or removed since it was opened: it would go on reading
    and writing the file that was there, and what it wrote would never be seen. The pool opens
    a fresh one instead."""
    if not database or database == ":memory:":
        return

    def opened(_dbapi_connection: Any, record: Any) -> None:
        record.info["file"] = file_identity(database)

    def checked_out(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if file_identity(database) != record.info.get("file"):
            raise DisconnectionError("the database file was replaced or removed")

    event.listen(engine, "connect", opened)
    event.listen(engine, "checkout", checked_out)


def create_engine(url: str) -> AsyncEngine:
    """An async engine with the pragmas SQLite needs to be a safe default."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        _watch_file(engine.sync_engine, parsed.database)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def create_sync_sqlite_engine(url: URL) -> Engine:
    """A plain-sqlite3 engine on the same file and pragmas (for the ingest writer's thread),
    which never creates the file."""
    engine = sa_create_engine(
        url.set(drivername="sqlite"), connect_args={"timeout": 30, "check_same_thread": False}
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    _watch_file(engine, url.database)
    never_create(engine)
    return engine


def never_create(engine: Engine) -> None:
    """A SQLite engine that never makes its database file: 'db upgrade' makes it; one gone
    while the relay runs is not made again, empty, beside the WAL of the one that was there
    (its queries fail instead, and /healthz says so)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return

    @event.listens_for(engine, "do_connect")
    def refuse_missing(*_args: Any) -> None:
        if file_identity(database) is None:
            raise sqlite3.OperationalError("the database file was replaced or removed")


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
