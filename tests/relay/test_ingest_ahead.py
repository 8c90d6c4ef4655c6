"""The SQLite writer sends the next batch to its interpreter before answering the last one
(relay/ingest.py, ``_send_ahead``): no request is left unanswered, and a stuck batch ahead is
reported. Reproductions from a review."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from relay import ingest
from relay.admin import Admin, NewHome
from relay.ingest import IngestWriter, StorageError
from relay.metrics import Metrics
from relay.storage.batch import Incoming
from relay.storage.db import create_engine, upgrade
from relay.storage.models import REPORTS
from tests.relay import in_writer
from tests.relay.conftest import MakeIncoming


@pytest.fixture
async def home_and_writer(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[NewHome, IngestWriter, Any]]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}")
    await upgrade(engine)
    home = await Admin(engine).add_home("Ahead", "Europe/Berlin")
    writer = IngestWriter(engine, Metrics(), max_batch=getattr(request, "param", 4))
    writer.start()
    try:
        yield home, writer, engine
    finally:
        await asyncio.wait_for(writer.stop(), 30)
        await engine.dispose()


async def _all_pending(writer: IngestWriter, reports: list[Incoming]) -> list[asyncio.Task[Any]]:
    """Submit ``reports`` while the writer is held, so that they are all pending at once."""
    held = asyncio.create_task(writer.in_writer(time.sleep, 0.3))
    await asyncio.sleep(0.05)
    tasks = [asyncio.create_task(writer.submit(report)) for report in reports]
    await held
    return tasks


@pytest.mark.parametrize(
    ("home_and_writer", "count", "at"), [(4, 20, 3), (512, 1100, 500)], indirect=["home_and_writer"]
)
async def test_a_batch_halved_around_a_refused_report_leaves_no_request_unanswered(
    home_and_writer: tuple[NewHome, IngestWriter, Any],
    make_incoming: MakeIncoming,
    count: int,
    at: int,
) -> None:
    """Each committed half once sent the next batch ahead, over the one already ahead: that
    batch was committed and its requests never answered."""
    home, writer, engine = home_and_writer
    reports = make_incoming(home.id, count)
    await writer.in_writer(in_writer.refuse_report, reports[at].report_id)
    tasks = await _all_pending(writer, reports)
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
    assert isinstance(results[at], ingest.UnstorableError)
    assert results[:at] + results[at + 1 :] == ["stored"] * (count - 1)
    async with engine.connect() as connection:
        stored = await connection.scalar(select(func.count()).select_from(REPORTS))
    assert stored == count - 1


async def test_a_stuck_batch_sent_ahead_is_reported_by_the_probe(
    home_and_writer: tuple[NewHome, IngestWriter, Any],
    make_incoming: MakeIncoming,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ingest, "STUCK_AFTER", 1.0)
    home, writer, _ = home_and_writer
    reports = make_incoming(home.id, 8)
    await writer.in_writer(
        in_writer.slow_for, {reports[0].report_id: 0.5, reports[4].report_id: 4.0}
    )
    tasks = await _all_pending(writer, reports)
    await asyncio.sleep(0.2)  # the first batch is being written, the second waits
    first = asyncio.create_task(writer.probe())
    await asyncio.sleep(2.5)  # the second batch has been written for over STUCK_AFTER
    said = await asyncio.wait_for(writer.probe(), 3)
    assert said is not None
    assert "waited" in said
    assert await asyncio.wait_for(asyncio.gather(*tasks), 10) == ["stored"] * 8
    await first
    await writer.in_writer(in_writer.heal)


@pytest.mark.parametrize("home_and_writer", [3], indirect=True)
async def test_stopping_with_a_batch_ahead_answers_every_request(
    home_and_writer: tuple[NewHome, IngestWriter, Any],
    make_incoming: MakeIncoming,
) -> None:
    home, writer, _ = home_and_writer
    held = asyncio.create_task(writer.in_writer(time.sleep, 0.3))
    await asyncio.sleep(0.05)
    tasks = [asyncio.create_task(writer.submit(r)) for r in make_incoming(home.id, 20)]
    await asyncio.sleep(0)
    stopping = asyncio.create_task(writer.stop())
    await held
    await asyncio.wait_for(stopping, 20)
    assert await asyncio.wait_for(asyncio.gather(*tasks), 5) == ["stored"] * 20


async def test_a_call_that_exits_in_the_writer_costs_no_report(
    home_and_writer: tuple[NewHome, IngestWriter, Any],
    make_incoming: MakeIncoming,
) -> None:
    """A call that raises SystemExit in the writer's interpreter fails alone; the writer
    writes on and the probe says all is well."""
    import sys

    home, writer, _ = home_and_writer
    with pytest.raises(Exception, match="SystemExit"):
        await writer.in_writer(sys.exit, 3)
    assert await writer.submit(make_incoming(home.id, 1)[0]) == "stored"
    assert await writer.probe() is None
    await writer.stop()
    with pytest.raises(StorageError):
        await writer.submit(make_incoming(home.id, 1)[0])
