"""Relay fixtures: a fresh, migrated database per test on SQLite AND on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
import copy
from datetime import UTC, datetime
import json
import os
from pathlib import Path
from typing import Any
import uuid

import asyncpg
from cryptography.fernet import Fernet
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.admin import Admin
from relay.ingest import incoming
from relay.schema import decode_report
from relay.secretbox import SecretBox
from relay.storage.batch import Incoming
from relay.storage.db import create_engine, upgrade

EXAMPLE = Path(__file__).parents[1] / "fixtures" / "report_v1.json"
POSTGRES_URL = os.environ.get("HPOLL_TEST_POSTGRES_URL")
ADMIN_TOKEN = "admin-secret-token"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """In CI, a test that needs PostgreSQL must never be skipped silently."""
    if os.environ.get("CI") and not POSTGRES_URL:
        raise pytest.UsageError(
            "CI run without HPOLL_TEST_POSTGRES_URL: PostgreSQL tests would be skipped"
        )


async def _fresh_postgres_database() -> str:
    assert POSTGRES_URL is not None
    url = make_url(POSTGRES_URL)
    name = f"t_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, database=url.database
    )
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(autouse=True)
def _secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A relay on PostgreSQL needs an explicit key: every test's relay gets a fresh one (tests
    of key files and of its absence remove it)."""
    monkeypatch.setenv("HPOLL_RELAY_SECRET_KEY", Fernet.generate_key().decode())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL nobody else uses: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}"
    if POSTGRES_URL is None:
        pytest.skip("no PostgreSQL (scripts/test starts one and sets HPOLL_TEST_POSTGRES_URL)")
    return await _fresh_postgres_database()


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated engine."""
    engine = create_engine(db_url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def admin(engine: AsyncEngine) -> Admin:
    """Admin operations with a throw-away secret key."""
    return Admin(engine, SecretBox(Fernet.generate_key()))


def load_example() -> dict[str, Any]:
    """The shared report example (also used by the integration's tests)."""
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return data


@pytest.fixture
def make_report() -> Callable[..., dict[str, Any]]:
    """A valid report for a home, fresh report_id, sent now (fields overridable)."""

    def build(home_id: str, **changes: Any) -> dict[str, Any]:
        report = copy.deepcopy(load_example())
        report["home_id"] = home_id
        report["report_id"] = str(uuid.uuid4())
        report["sent_at"] = datetime.now(UTC).isoformat()
        report["activity"][0]["at"] = datetime.now(UTC).isoformat()
        report.update(changes)
        return report

    return build


type MakeIncoming = Callable[[str, int], list[Incoming]]


@pytest.fixture
def make_incoming(make_report: Callable[..., dict[str, Any]]) -> MakeIncoming:
    """``count`` valid reports of a home as the ingest writer takes them (``incoming``)."""

    def build(home_id: str, count: int) -> list[Incoming]:
        bodies = [json.dumps(make_report(home_id)) for _ in range(count)]
        return [incoming(home_id, body, decode_report(body)) for body in bodies]

    return build
