"""A batch that loses a deadlock or a serialization conflict (PostgreSQL, SQLSTATE 40P01 /
40001) to another transaction is written again, a bounded number of times; and such a loss
never takes the replica out of the load balancer (/healthz)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import json
import threading
from typing import Any

from aiohttp.test_utils import TestClient
import asyncpg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from relay import ingest
from relay.admin import Admin, NewHome
from relay.app import create_app
from relay.config import Settings
from relay.http.state import RELAY
from relay.storage.models import REPORTS

type Client = TestClient[Any, Any]


def _settings(db_url: str) -> Settings:
    return Settings(db_url=db_url, rate_per_second=10_000, rate_burst=10_000, notify_seconds=0)


async def _post(client: Client, home: NewHome, report: dict[str, Any]) -> int:
    async with client.post(
        "/api/v1/reports",
        data=json.dumps(report),
        headers={"Authorization": f"Bearer {home.token}", "Content-Type": "application/json"},
    ) as response:
        return response.status


async def _relay(
    aiohttp_client: Callable[..., Any], engine: AsyncEngine, db_url: str, admin: Admin, name: str
) -> tuple[Client, NewHome]:
    """A relay on ``engine`` (started now: settings the test patched before count) and a home
    named ``name`` reporting to it."""
    home = await admin.add_home(name, "Europe/Berlin")
    return await aiohttp_client(create_app(_settings(db_url), engine)), home


async def _stored(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(REPORTS)) or 0)


class _Lost(Exception):
    """What asyncpg's adapter carries for a transaction PostgreSQL rolled back."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__("deadlock detected")
        self.sqlstate = sqlstate


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
async def test_a_lost_conflict_is_written_again_a_bounded_number_of_times(
    aiohttp_client: Callable[..., Any],
    engine: AsyncEngine,
    db_url: str,
    admin: Admin,
    make_report: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    sqlstate: str,
) -> None:
    """Injected at the driver's level: a batch that loses once is stored (202); one that loses
    every time is tried 1 + CONFLICT_RETRIES times, then 503 — and /healthz stays 200, while a
    failure of the database itself still makes it 503."""
    monkeypatch.setattr(ingest, "CONFLICT_PAUSE", 0.0)
    monkeypatch.setattr("relay.http.views.PROBE_EVERY", 0.0)
    client, home = await _relay(aiohttp_client, engine, db_url, admin, "Conflicts")
    writer = client.app[RELAY].writer
    real = writer._store
    attempts = 0
    losses = 0

    async def losing(batch: list[ingest.Submission]) -> list[ingest.Outcome]:
        nonlocal attempts
        attempts += 1
        if attempts <= losses:
            raise DBAPIError("INSERT …", {}, _Lost(sqlstate))
        outcomes: list[ingest.Outcome] = await real(batch)
        return outcomes

    monkeypatch.setattr(writer, "_store", losing)
    losses = 1
    assert await _post(client, home, make_report(home.id)) == 202
    assert attempts == 2
    assert await _stored(engine) == 1

    attempts, losses = 0, 1_000
    assert await _post(client, home, make_report(home.id)) == 503
    assert attempts == 1 + ingest.CONFLICT_RETRIES
    assert await _stored(engine) == 1
    async with client.get("/healthz") as response:
        assert response.status == 200, await response.text()

    async def down(batch: list[ingest.Submission]) -> list[ingest.Outcome]:
        raise OperationalError("INSERT …", {}, ConnectionRefusedError("down"))

    monkeypatch.setattr(writer, "_store", down)
    assert await _post(client, home, make_report(home.id)) == 503
    async with client.get("/healthz") as response:
        assert response.status == 503


async def test_a_batch_that_loses_a_real_deadlock_is_stored(
    aiohttp_client: Callable[..., Any],
    engine: AsyncEngine,
    db_url: str,
    admin: Admin,
    make_report: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A real PostgreSQL deadlock: another transaction holds the home's row and then asks for
    the device row the writer's batch has just upserted, while the batch waits for the home's
    row. PostgreSQL aborts the batch (the writer waited first, and the other transaction's
    deadlock_timeout is longer); the writer writes it again once the other is done: 202."""
    if not db_url.startswith("postgresql"):
        pytest.skip("a deadlock between two transactions needs PostgreSQL")
    client, home = await _relay(aiohttp_client, engine, db_url, admin, "Deadlock")
    assert await _post(client, home, make_report(home.id)) == 202  # its devices now exist
    url = make_url(db_url)
    other = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, database=url.database
    )
    try:
        await other.execute("SET deadlock_timeout = '30s'")  # the writer is the one aborted
        transaction = other.transaction()
        await transaction.start()
        await other.execute("UPDATE homes SET name = name WHERE id = $1", home.id)
        posted = asyncio.create_task(_post(client, home, make_report(home.id)))
        for _ in range(500):  # until the batch waits for the home's row
            waiting = await other.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if waiting:
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the batch never waited for the home's row")
        # Now this transaction waits for the batch's device row: a deadlock, which PostgreSQL
        # resolves after the batch's deadlock_timeout (1 s) by aborting the batch.
        await other.execute("UPDATE device_states SET name = name WHERE home_id = $1", home.id)
        await transaction.rollback()
        assert await posted == 202
    finally:
        await other.close()
    assert "lost a conflict" in caplog.text
    assert "40P01" in caplog.text
    assert await _stored(engine) == 2
    assert client.app[RELAY].writer.last_failure is None


async def _health(client: Client) -> tuple[int, str]:
    async with client.get("/healthz") as response:
        return response.status, await response.text()


async def test_a_stuck_or_dead_writer_shows_on_healthz_and_answers_its_batch(
    aiohttp_client: Callable[..., Any],
    engine: AsyncEngine,
    db_url: str,
    admin: Admin,
    make_report: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch the database holds (a lock nobody releases) makes /healthz fail after
    STUCK_AFTER; a writer that dies answers the batch it was writing (503, not a request left
    hanging) and /healthz says it is not running."""
    monkeypatch.setattr(ingest, "STUCK_AFTER", 0.2)
    monkeypatch.setattr("relay.http.views.PROBE_EVERY", 0.0)
    client, home = await _relay(aiohttp_client, engine, db_url, admin, "Stuck")
    writer = client.app[RELAY].writer
    real = writer._store
    released = threading.Event()

    async def held(batch: list[ingest.Submission]) -> list[ingest.Outcome]:
        await asyncio.to_thread(released.wait)  # in the writer's thread: the database holds it
        return await real(batch)

    monkeypatch.setattr(writer, "_store", held)
    posted = asyncio.create_task(_post(client, home, make_report(home.id)))
    await asyncio.sleep(0.5)
    status, body = await _health(client)
    assert status == 503
    assert "waited" in body
    released.set()
    assert await posted == 202
    assert (await _health(client))[0] == 200

    async def dying(batch: list[ingest.Submission]) -> list[ingest.Outcome]:
        raise asyncio.CancelledError

    monkeypatch.setattr(writer, "_store", dying)
    assert await asyncio.wait_for(_post(client, home, make_report(home.id)), 5) == 503
    status, body = await _health(client)
    assert status == 503
    assert "not running" in body
    assert await _stored(engine) == 1


async def test_a_writer_whose_connection_was_closed_writes_its_batch_again(
    aiohttp_client: Callable[..., Any],
    engine: AsyncEngine,
    db_url: str,
    admin: Admin,
    make_report: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PostgreSQL: the writer holds its connection between batches; one closed meanwhile (a
    server restart, an administrator) is replaced and the batch written on the new one."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the SQLite writer opens the file, it holds no server connection")
    client, home = await _relay(aiohttp_client, engine, db_url, admin, "Reconnect")
    assert await _post(client, home, make_report(home.id)) == 202  # the writer holds one now
    async with engine.connect() as connection:
        closed = await connection.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE pid <> pg_backend_pid() AND datname = current_database()"
            )
        )
    assert closed
    assert await _post(client, home, make_report(home.id)) == 202
    assert "reconnecting" in caplog.text
    assert await _stored(engine) == 2


async def test_a_batch_the_database_holds_is_answered_503_after_the_statement_timeout(
    aiohttp_client: Callable[..., Any],
    engine: AsyncEngine,
    db_url: str,
    admin: Admin,
    make_report: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL: a lock nobody releases holds the writer's batch; its requests are answered
    503 once a statement waited STATEMENT_TIMEOUT (not for as long as the lock is held), and
    the writer stores the next batch once the lock is gone."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writer waits for a lock at most its busy timeout")
    monkeypatch.setattr(ingest, "STATEMENT_TIMEOUT", 0.5)
    monkeypatch.setattr("relay.http.views.PROBE_EVERY", 0.0)
    client, home = await _relay(aiohttp_client, engine, db_url, admin, "Locked")
    async with engine.connect() as holder:
        await holder.execute(text("LOCK TABLE reports IN ACCESS EXCLUSIVE MODE"))
        answered = await asyncio.wait_for(_post(client, home, make_report(home.id)), 10)
        status, body = await _health(client)
        await holder.rollback()
    assert answered == 503
    assert status == 503
    assert "TimeoutError" in body
    assert await _post(client, home, make_report(home.id)) == 202
    assert (await _health(client))[0] == 200
    assert await _stored(engine) == 1
