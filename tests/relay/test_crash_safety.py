"""SIGKILL the relay while homes post: every acknowledged report survives, none is doubled."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout
import pytest
from sqlalchemy import func, select

from relay.admin import Admin
from relay.secretbox import SecretBox
from relay.storage.db import create_engine, upgrade
from relay.storage.models import Report
from tests.relay.relay_process import RelayProcess

REPORTS = 400
WORKERS = 16
KILL_AFTER = 120


async def test_sigkill_loses_nothing_acknowledged(
    tmp_path: Path, make_report: Callable[..., dict[str, Any]]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}"
    engine = create_engine(url)
    await upgrade(engine)
    home = await Admin(engine, SecretBox.from_environment(tmp_path / "k", create=True)).add_home(
        "Crash home", "Europe/Berlin"
    )
    reports = [make_report(home.id) for _ in range(REPORTS)]
    acknowledged: set[str] = set()
    relay = RelayProcess(url)
    await relay.start()
    killed = asyncio.Event()
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for report in reports:
        queue.put_nowait(report)
    headers = {"Authorization": f"Bearer {home.token}"}

    async def worker(session: ClientSession) -> None:
        while not queue.empty():
            report = queue.get_nowait()
            try:
                async with session.post(
                    f"{relay.url}/api/v1/reports", json=report, headers=headers
                ) as response:
                    if response.status in (200, 202):
                        acknowledged.add(report["report_id"])
                        if len(acknowledged) >= KILL_AFTER and not killed.is_set():
                            relay.kill()
                            killed.set()
            except (ClientError, TimeoutError):
                pass  # not acknowledged: the client will send it again

    async with ClientSession(timeout=ClientTimeout(total=10)) as session:
        await asyncio.gather(*(worker(session) for _ in range(WORKERS)))
    assert killed.is_set()
    assert relay.process is not None
    await relay.process.wait()
    survivors = set(await _ids(engine))
    assert acknowledged <= survivors, "a report answered 2xx was lost in the crash"

    # The client retries everything it is unsure about (and, to be hard on the relay, also
    # everything that was acknowledged): all of it must end up stored exactly once.
    await relay.start()
    async with ClientSession(timeout=ClientTimeout(total=30)) as session:
        statuses = await asyncio.gather(
            *(
                _post_status(session, f"{relay.url}/api/v1/reports", report, headers)
                for report in reports
            )
        )
    await relay.stop()
    assert set(statuses) <= {200, 202}
    assert statuses.count(202) == REPORTS - len(survivors)
    ids = await _ids(engine)
    assert len(ids) == REPORTS
    assert set(ids) == {r["report_id"] for r in reports}
    async with engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(Report)) == REPORTS
    await engine.dispose()


async def _ids(engine: Any) -> list[str]:
    async with engine.connect() as connection:
        return list((await connection.scalars(select(Report.report_id))).all())


async def _post_status(
    session: ClientSession, url: str, report: dict[str, Any], headers: dict[str, str]
) -> int:
    async with session.post(url, json=report, headers=headers) as response:
        return response.status


@pytest.fixture(autouse=True)
def _no_secret_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HPOLL_RELAY_SECRET_KEY", raising=False)
