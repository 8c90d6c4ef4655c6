"""Two real relay processes on one database send each summary and each alert exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from cryptography.fernet import Fernet
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.admin import Admin
from relay.secretbox import SecretBox
from relay.storage.models import DeviceState, Home, Subscription, table
from tests.relay.relay_process import RelayProcess
from tests.relay.sink import running_sink

HOMES = 6


async def test_two_relays_one_database_every_message_once(engine: AsyncEngine, db_url: str) -> None:
    key = Fernet.generate_key()
    admin = Admin(engine, SecretBox(key))
    now = datetime.now(UTC)
    with running_sink() as sink:
        for n in range(HOMES):
            home = await admin.add_home(f"Home {n}", "Europe/Berlin")
            await admin.add_caregiver(f"Carer {n}", sink.url)
            await admin.subscribe(home.id, f"Carer {n}", "08:00", ["battery"])
            async with engine.begin() as connection:
                await connection.execute(
                    update(table(Home))
                    .where(table(Home).c.id == home.id)
                    .values(last_report_at=now, last_report_sent_at=now)
                )
                # Due a minute ago: both relays see it at their first tick.
                await connection.execute(
                    update(table(Subscription))
                    .where(table(Subscription).c.home_id == home.id)
                    .values(next_summary_due=now - timedelta(minutes=1))
                )
                await connection.execute(
                    insert(table(DeviceState)).values(
                        home_id=home.id,
                        device_id="d",
                        name="Hall",
                        room=None,
                        kind="motion_sensor",
                        battery=5,
                        battery_state="low",
                        connectivity="connected",
                        updated_at=now,
                    )
                )
        env = {"HPOLL_RELAY_SECRET_KEY": key.decode(), "HPOLL_RELAY_NOTIFY_SECONDS": "0.2"}
        relays = [RelayProcess(db_url, **env), RelayProcess(db_url, **env)]
        await asyncio.gather(*(relay.start() for relay in relays))
        try:
            for _ in range(200):
                if len(sink.received) >= 2 * HOMES:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.5)  # both keep ticking: nothing more may arrive
        finally:
            await asyncio.gather(*(relay.stop() for relay in relays))
    titles = sorted(message["title"] for message in sink.received)
    summaries = [t for t in titles if "Needs attention: no activity; 1 battery low" in t]
    alerts = [t for t in titles if t.endswith("battery low: Hall, 5 %")]
    assert len(summaries) == HOMES, titles
    assert len(alerts) == HOMES, titles
    assert len(titles) == 2 * HOMES
