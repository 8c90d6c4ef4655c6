"""A relay's notification side under a clock the test moves: real database, real Apprise, and a
local HTTP sink that records what caregivers would receive."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
import uuid

from sqlalchemy import func, insert, or_, update
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.admin import Admin
from relay.notifications.outbox import Dispatcher
from relay.notifications.plan import NotifySettings, PlanResult
from relay.notifications.worker import Notifier
from relay.secretbox import SecretBox
from relay.storage.batch import bucket_start
from relay.storage.models import ActivityBucket, DeviceState, Home, Report, table
from tests.relay.sink import Sink


@dataclass
class Clock:
    """The time the notifier believes it is."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when.astimezone(UTC)

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Relay:
    """Admin, clock and notifier of one relay on one database."""

    engine: AsyncEngine
    box: SecretBox
    clock: Clock
    settings: NotifySettings = field(default_factory=NotifySettings)

    def __post_init__(self) -> None:
        self.admin = Admin(self.engine, self.box)
        self.notifier = self.replica(self.engine)

    def replica(self, engine: AsyncEngine) -> Notifier:
        """Another relay process's notifier on the same database (same secret key)."""
        return Notifier(engine, Dispatcher(engine, self.box), self.settings, clock=self.clock)

    async def tick(self) -> PlanResult:
        return await self.notifier.tick()

    async def at(self, when: datetime) -> PlanResult:
        """Move the clock and tick."""
        self.clock.set(when)
        return await self.tick()

    async def home(self, name: str = "Mum", timezone: str = "Europe/Berlin") -> str:
        """A home that reports (now) and has had activity (now)."""
        home = await self.admin.add_home(name, timezone)
        await self.reported(home.id)
        return home.id

    async def caregiver(
        self,
        name: str,
        sink: Sink,
        home_id: str,
        *,
        summary_at: str | None = None,
        kinds: tuple[str, ...] = ("inactivity", "quiet", "battery", "offline", "stale", "bridge"),
        order: int = 0,
    ) -> None:
        """A caregiver whose messages go to ``sink``, subscribed to a home."""
        await self.admin.add_caregiver(name, sink.url + f"?name={name}")
        await self.admin.subscribe(home_id, name, summary_at, list(kinds), order)

    async def reported(self, home_id: str, at: datetime | None = None, **values: Any) -> None:
        """A report sent at ``at`` (default now) and received now, and the home's state as
        ingest would store it (the bridge's state in ``values``)."""
        sent = at or self.clock.now
        async with self.engine.begin() as connection:
            await connection.execute(
                insert(table(Report)).values(
                    home_id=home_id,
                    report_id=str(uuid.uuid4()),
                    sent_at=sent,
                    received_at=self.clock.now,
                    payload="{}",
                )
            )
            await connection.execute(
                update(table(Home))
                .where(table(Home).c.id == home_id)
                .values(
                    last_report_at=sent,
                    last_report_sent_at=sent,
                    watching_since=func.coalesce(table(Home).c.watching_since, sent),
                    **values,
                )
            )

    async def activity(
        self, home_id: str, at: datetime, room: str = "Kitchen", count: int = 1
    ) -> None:
        """Movement in a room at a moment (one 15-minute bucket)."""
        async with self.engine.begin() as connection:
            await connection.execute(
                insert(table(ActivityBucket)).values(
                    home_id=home_id,
                    room=room,
                    bucket_start=bucket_start(at.astimezone(UTC)),
                    count=count,
                    first_at=at,
                    last_at=at,
                )
            )
            # As ingest keeps it: the newest activity of the home.
            homes = table(Home)
            await connection.execute(
                update(homes)
                .where(homes.c.id == home_id)
                .where(or_(homes.c.last_activity_at.is_(None), homes.c.last_activity_at < at))
                .values(last_activity_at=at)
            )

    async def device(self, home_id: str, device_id: str = "d1", **values: Any) -> None:
        """A device's latest state (created, or changed)."""
        devices = table(DeviceState)
        row = {
            "name": "Hall sensor",
            "room": "Hall",
            "kind": "motion_sensor",
            "battery": 80,
            "battery_state": "normal",
            "connectivity": "connected",
            "offline_since": None,
            "updated_at": self.clock.now,
            **values,
        }
        async with self.engine.begin() as connection:
            changed = await connection.execute(
                update(devices)
                .where(devices.c.home_id == home_id, devices.c.device_id == device_id)
                .values(row)
            )
            if not changed.rowcount:
                await connection.execute(
                    insert(devices).values(home_id=home_id, device_id=device_id, **row)
                )


def messages(sink: Sink) -> list[tuple[str, str]]:
    """(title, body) of everything the sink received, in order."""
    return [(m["title"], m["message"]) for m in sink.received]
