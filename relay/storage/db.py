"""Database engines and the migration check.

SQLite (the default, nothing to install) runs in WAL mode with foreign keys on, a busy timeout,
and ``synchronous=FULL``: a report acknowledged with 202 survives a crash or a power cut. Group
commit (see :mod:`relay.ingest`) pays for that fsync once per batch, not once per report.
PostgreSQL (``postgresql+asyncpg://``) is used as is.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from .sqlite_file import sqlite_pragmas

DEFAULT_URL = "sqlite+aiosqlite:///./hpoll-relay.db"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class NotMigratedError(RuntimeError):
    """The database schema is missing or older than this relay."""


def create_engine(url: str) -> AsyncEngine:
    """An async engine with the pragmas SQLite needs to be a safe default."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


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
