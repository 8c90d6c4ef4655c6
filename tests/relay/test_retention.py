"""Retention deletes old raw reports and finished messages, and nothing anyone still needs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from cryptography.fernet import Fernet
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.admin import Admin
from relay.secretbox import SecretBox
from relay.storage import retention
from relay.storage.models import ALERTS, ATTEMPTS, NOTIFICATIONS, REPORTS
from relay.storage.retention import prune

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=31)
RECENT = NOW - timedelta(days=29)


async def test_finished_messages_go_after_the_retention_unless_their_alert_goes_on(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "PRUNE_BATCH", 2)  # three to delete: two transactions
    admin = Admin(engine, SecretBox(Fernet.generate_key()))
    home = await admin.add_home("Mum's flat", "Europe/Berlin")
    caregiver = await admin.add_caregiver("Ann", "json://relay-test.example/")
    alert = {"home_id": home.id, "kind": "battery", "subject": "s", "opened_at": OLD}
    async with engine.begin() as connection:
        going_on = (
            await connection.execute(
                insert(ALERTS).values(**alert, state="open").returning(ALERTS.c.id)
            )
        ).scalar_one()
        over = (
            await connection.execute(
                insert(ALERTS).values(**alert, state="resolved").returning(ALERTS.c.id)
            )
        ).scalar_one()
        messages = {
            "old sent": (OLD, "sent", None),
            "old failed": (OLD, "failed", None),
            "old pending": (OLD, "pending", None),
            "old sending": (OLD, "sending", None),
            "recent sent": (RECENT, "sent", None),
            "old sent, alert going on": (OLD, "sent", going_on),
            "old sent, alert over": (OLD, "sent", over),
        }
        ids = {}
        for key, (created, status, alert_id) in messages.items():
            ids[key] = (
                await connection.execute(
                    insert(NOTIFICATIONS)
                    .values(
                        caregiver_id=caregiver,
                        home_id=home.id,
                        alert_id=alert_id,
                        kind="alert",
                        dedup_key=key,
                        title=key,
                        body=key,
                        status=status,
                        created_at=created,
                        due_at=created,
                        attempts=1,
                    )
                    .returning(NOTIFICATIONS.c.id)
                )
            ).scalar_one()
            await connection.execute(
                insert(ATTEMPTS).values(
                    notification_id=ids[key], attempted_at=created, ok=True, detail="ok"
                )
            )
    pruned = await prune(engine, 30, now=NOW)
    assert pruned.messages == 3
    async with engine.connect() as connection:
        kept = set((await connection.execute(select(NOTIFICATIONS.c.dedup_key))).scalars())
        attempts = set((await connection.execute(select(ATTEMPTS.c.notification_id))).scalars())
    assert kept == {"old pending", "old sending", "recent sent", "old sent, alert going on"}
    assert attempts == {ids[key] for key in kept}
    assert (await prune(engine, 30, now=NOW)).messages == 0


class _Crash(Exception):
    """The relay stopped in the middle of a prune."""


async def test_a_prune_cut_short_has_deleted_the_oldest_first(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reports arrive out of order (a home's queue flushed after an outage): the oldest rows are
    # not the first ones. A prune stopped after one batch must leave the newest of the old.
    monkeypatch.setattr(retention, "PRUNE_BATCH", 2)
    home = await Admin(engine, SecretBox(Fernet.generate_key())).add_home("Mum", "Europe/Berlin")
    received = [OLD - timedelta(hours=hours) for hours in range(5)] + [RECENT]
    async with engine.begin() as connection:
        for n, at in enumerate(received):
            await connection.execute(
                insert(REPORTS).values(
                    home_id=home.id, report_id=f"r{n}", sent_at=at, received_at=at, payload="{}"
                )
            )

    class CrashingAfterOneBatch:
        transactions = 0

        @asynccontextmanager
        async def begin(self) -> AsyncIterator[Any]:
            self.transactions += 1
            if self.transactions > 1:
                raise _Crash
            async with engine.begin() as connection:
                yield connection

    with pytest.raises(_Crash):
        await prune(cast(AsyncEngine, CrashingAfterOneBatch()), 30, now=NOW)
    async with engine.connect() as connection:
        left = set((await connection.execute(select(REPORTS.c.received_at))).scalars())
    assert left == {*received[:3], RECENT}  # the two oldest went first
    assert (await prune(engine, 30, now=NOW)).reports == 3
