"""The migrations build exactly the schema the models describe, and go down and up again."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.storage.db import alembic_config, current_revision, head_revision, upgrade
from relay.storage.models import Base


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [
        diff
        for diff in compare_metadata(context, Base.metadata)
        # SQLite cannot tell a server default's spelling apart; types and columns still count.
        if not (isinstance(diff, list) and diff and diff[0][0] == "modify_default")
    ]


async def test_migrated_schema_matches_the_models(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await connection.run_sync(_differences) == []


async def test_downgrade_to_nothing_and_up_again(engine: AsyncEngine) -> None:
    def run(connection: Connection, target: str, down: bool) -> None:
        config = alembic_config(str(engine.url))
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, target)

    async with engine.begin() as connection:
        await connection.run_sync(run, "0001", True)
    assert await current_revision(engine) == "0001"
    async with engine.begin() as connection:
        await connection.run_sync(run, "base", True)
    assert await current_revision(engine) is None
    await upgrade(engine)
    assert await current_revision(engine) == head_revision() == "0009"
