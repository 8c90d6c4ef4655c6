"""The token directory: which home a token belongs to, from memory, in step with the database."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from unittest.mock import patch

import pytest
from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.admin import Admin
from relay.http.directory import OUTAGE_GRACE_SECONDS, TokenDirectory
from relay.storage.db import create_engine
from relay.storage.models import HOME_TOKENS, HOMES
from relay.tokens import token_hash


class Statements:
    """Counts the statements about tokens (the generation counter, the tokens table)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.count += "token" in statement


def later(seconds: float) -> Any:
    return patch("relay.http.directory.time.monotonic", return_value=time.monotonic() + seconds)


async def test_valid_tokens_are_answered_from_memory_until_the_table_changes(
    engine: AsyncEngine, admin: Admin
) -> None:
    home = await admin.add_home("Mum's flat", "Europe/London")
    directory = TokenDirectory(engine, max_age=10)
    statements = Statements(engine)
    for _ in range(50):
        assert await directory.home(token_hash(home.token)) == home.id
    assert statements.count == 2  # the generation and the one load
    with later(11):  # a check is due: the generation is read, the unchanged table is not
        assert await directory.home(token_hash(home.token)) == home.id
    assert statements.count == 3
    assert len(directory) == 1


async def test_a_new_token_is_found_on_its_first_request_and_a_removed_home_is_forgotten(
    engine: AsyncEngine, admin: Admin
) -> None:
    directory = TokenDirectory(engine, max_age=10)
    assert await directory.home(token_hash("hpr_nobody")) is None
    home = await admin.add_home("Dad's house", "America/New_York")
    # Created after the directory's last check: the miss waits for the next one.
    assert await directory.home(token_hash(home.token)) == home.id
    await admin.remove_home(home.id)  # its tokens go with it (no revocation stamp)
    with later(11):
        assert await directory.home(token_hash(home.token)) is None


async def test_a_revoked_token_works_at_most_max_age(engine: AsyncEngine, admin: Admin) -> None:
    home = await admin.add_home("Gran's", "Europe/Berlin")
    directory = TokenDirectory(engine, max_age=10)
    assert await directory.home(token_hash(home.token)) == home.id
    await admin.revoke_tokens(home.id)
    assert await directory.home(token_hash(home.token)) == home.id  # not yet checked again
    with later(11):
        assert await directory.home(token_hash(home.token)) is None


async def test_through_an_outage_known_tokens_work_for_a_while_and_unknown_ones_fail(
    engine: AsyncEngine, admin: Admin
) -> None:
    home = await admin.add_home("Aunt's", "Europe/Paris")
    directory = TokenDirectory(engine, max_age=10)
    assert await directory.home(token_hash(home.token)) == home.id
    directory.engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        with later(60):
            assert await directory.home(token_hash(home.token)) == home.id
            with pytest.raises(ConnectionError):
                await directory.home(token_hash("hpr_never_seen"))
        with later(OUTAGE_GRACE_SECONDS + 1), pytest.raises(ConnectionError):
            await directory.home(token_hash(home.token))
    finally:
        await directory.engine.dispose()
    directory.engine = engine
    with later(OUTAGE_GRACE_SECONDS + 2):  # the database is back: so is the directory
        assert await directory.home(token_hash(home.token)) == home.id


async def test_with_max_age_zero_every_request_checks_and_a_revocation_is_immediate(
    engine: AsyncEngine, admin: Admin
) -> None:
    home = await admin.add_home("Uncle's", "Europe/Rome")
    directory = TokenDirectory(engine, max_age=0)
    assert await directory.home(token_hash(home.token)) == home.id
    await admin.revoke_tokens(home.id)
    assert await directory.home(token_hash(home.token)) is None


async def test_changes_committed_out_of_order_are_all_seen(
    engine: AsyncEngine, db_url: str, admin: Admin
) -> None:
    """A token added in a transaction that commits after a later one (and after a removal)
    is still found, and the removed home's token refused: the counter's bumps are ordered as
    the commits are."""
    removed = await admin.add_home("Moving out", "Europe/Madrid")
    directory = TokenDirectory(engine, max_age=10)
    assert await directory.home(token_hash(removed.token)) == removed.id
    slow_engine = create_engine(db_url)
    try:
        async with slow_engine.begin() as slow:
            await slow.execute(insert(HOMES).values(id="slow", name="Slow", timezone="UTC"))
            await slow.execute(
                insert(HOME_TOKENS).values(home_id="slow", token_hash=token_hash("hpr_slow"))
            )
            later_home = asyncio.create_task(admin.add_home("Quick", "UTC"))
            await asyncio.sleep(0.2)  # the quick one waits for the slow one's lock
            with later(11):  # a check meanwhile sees neither
                assert await directory.home(token_hash(removed.token)) == removed.id
        quick = await later_home
        await admin.remove_home(removed.id)
    finally:
        await slow_engine.dispose()
    with later(22):
        assert await directory.home(token_hash("hpr_slow")) == "slow"
        assert await directory.home(token_hash(quick.token)) == quick.id
        assert await directory.home(token_hash(removed.token)) is None


async def test_a_failed_check_asks_for_fresh_connections(engine: AsyncEngine, admin: Admin) -> None:
    recovered = 0

    async def recover() -> None:
        nonlocal recovered
        recovered += 1

    directory = TokenDirectory(
        create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none"), 10, recover
    )
    try:
        with pytest.raises(ConnectionError):
            await directory.home(token_hash("hpr_never_seen"))
    finally:
        await directory.engine.dispose()
    assert recovered == 1
