"""A cookie-keeping client per person, and data for the dashboard's tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
import re
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.clock import utcnow
from relay.http.dashboard.accounts import Accounts
from relay.storage.models import ACTIVITY, ALERTS, DEVICES, HOMES

type Client = TestClient[Any, Any]
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Page:
    """One answer."""

    status: int
    text: str
    headers: Any
    location: str | None


@dataclass
class Browser:
    """A person with their own cookies on a shared test client (whose jar is a dummy)."""

    client: Client
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str = ""

    def _headers(self) -> dict[str, str]:
        jar = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return {"Cookie": jar} if jar else {}

    def _keep(self, response: Any) -> None:
        for name, morsel in response.cookies.items():
            if morsel.value and morsel["max-age"] != "0":
                self.cookies[name] = morsel.value
            else:
                self.cookies.pop(name, None)

    async def get(self, path: str) -> Page:
        """GET without following redirects; remembers the page's CSRF token."""
        async with self.client.get(
            path, headers=self._headers(), allow_redirects=False
        ) as response:
            text = await response.text()
            self._keep(response)
            if found := _CSRF.search(text):
                self.csrf = found.group(1)
            return Page(response.status, text, response.headers, response.headers.get("Location"))

    async def post(self, path: str, data: dict[str, str] | None = None, csrf: bool = True) -> Page:
        """POST a form (with the last page's CSRF token unless told not to)."""
        form = {**(data or {}), **({"csrf": self.csrf} if csrf else {})}
        async with self.client.post(
            path, data=form, headers=self._headers(), allow_redirects=False
        ) as response:
            text = await response.text()
            self._keep(response)
            return Page(response.status, text, response.headers, response.headers.get("Location"))

    async def sign_in(self, engine: AsyncEngine, caregiver_id: int) -> Page:
        """Through a one-time link, as a caregiver would."""
        token, _ = await Accounts(engine).create_link(caregiver_id)
        await self.get(f"/signin/{token}")
        return await self.post(f"/signin/{token}")


async def add_activity(
    engine: AsyncEngine, home_id: str, room: str, at: datetime, count: int = 1
) -> None:
    """One 15-minute activity bucket (as ingest keeps them) and the home's newest activity."""
    start = at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0)
    async with engine.begin() as connection:
        await connection.execute(
            ACTIVITY.insert().values(
                home_id=home_id, room=room, bucket_start=start, count=count, first_at=at, last_at=at
            )
        )
        await connection.execute(
            HOMES.update().where(HOMES.c.id == home_id).values(last_activity_at=at)
        )


async def reported(engine: AsyncEngine, home_id: str, ago: timedelta = timedelta(0)) -> None:
    """The home reported ``ago`` (bridge reachable)."""
    async with engine.begin() as connection:
        await connection.execute(
            HOMES.update()
            .where(HOMES.c.id == home_id)
            .values(last_report_at=utcnow() - ago, bridge_reachable=True)
        )


async def add_device(engine: AsyncEngine, home_id: str, **values: Any) -> None:
    """A device state row (defaults: a connected motion sensor at 80 %)."""
    row = {
        "device_id": values.get("name", "d") + "-id",
        "name": "Hall sensor",
        "room": "Hall",
        "kind": "motion",
        "battery": 80,
        "battery_state": "normal",
        "connectivity": "connected",
        "updated_at": utcnow(),
        **values,
    }
    async with engine.begin() as connection:
        await connection.execute(DEVICES.insert().values(home_id=home_id, **row))


async def open_alert(
    engine: AsyncEngine, home_id: str, kind: str = "inactivity", urgent: bool = True
) -> int:
    """An open alert escalating in 15 minutes."""
    now = utcnow()
    async with engine.begin() as connection:
        alert_id = await connection.scalar(
            ALERTS.insert()
            .values(
                home_id=home_id,
                kind=kind,
                subject="",
                state="open",
                opened_at=now,
                details={"text": "no activity for 3 hours"},
                urgent=urgent,
                escalation_level=0,
                next_escalation_at=now + timedelta(minutes=15),
            )
            .returning(ALERTS.c.id)
        )
    assert alert_id is not None
    return int(alert_id)
