"""Scripted days of a home, played through the relay's real planner on a real database, with
the ground truth of what happened kept beside it (for checking the summaries' numbers).

Times are whole minutes of the home's local time; the planner ticks every 15 minutes and at
each scripted moment (and a minute after it), as a relay's one-minute tick would see them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from relay.storage.models import Home, Notification, table
from tests.relay.notify_harness import Relay

ZONE = ZoneInfo("Europe/Berlin")
TICK = timedelta(minutes=15)
#: Never called: scripted days read what the planner wrote to the outbox.
NOWHERE = "json://relay-test.example/"


def local(day: int, hhmm: str) -> datetime:
    """A UTC moment from a day of July 2026 (30 = Tuesday 30 June) and a local HH:MM."""
    hours, minutes = (int(part) for part in hhmm.split(":"))
    date = datetime(2026, 6, 30, tzinfo=ZONE) + timedelta(days=day - 30 if day >= 30 else day)
    return date.replace(hour=hours, minute=minutes).astimezone(UTC)


def _next_tick(after: datetime) -> datetime:
    return after + TICK - timedelta(seconds=after.timestamp() % TICK.total_seconds())


@dataclass
class Truth:
    """What really happened (the script's own record, not the relay's)."""

    first_report: datetime | None = None
    movements: list[tuple[datetime, str, int]] = field(default_factory=list)
    #: Times the relay could not see: (start, end or None).
    blind: list[tuple[datetime, datetime | None]] = field(default_factory=list)


@dataclass
class ScriptedHome:
    """One home played through a relay: reports, movements, devices, outages, ticks."""

    relay: Relay
    home_id: str
    truth: Truth = field(default_factory=Truth)
    reporting: bool = False
    bridge_down_since: datetime | None = None
    ticked_to: datetime | None = None

    @classmethod
    async def create(cls, relay: Relay, name: str, created: datetime) -> ScriptedHome:
        """A home added (at ``created``) that has not reported yet."""
        home = await relay.admin.add_home(name, ZONE.key)
        async with relay.engine.begin() as connection:
            homes = table(Home)
            await connection.execute(
                update(homes).where(homes.c.id == home.id).values(created_at=created)
            )
        relay.clock.set(created)
        return cls(relay, home.id, ticked_to=created)

    async def caregiver(self, name: str, *, summary_at: str | None, order: int) -> None:
        """A caregiver of this home (every alert kind)."""
        await self.relay.admin.add_caregiver(name, NOWHERE + f"?to={name}")
        kinds = ["inactivity", "quiet", "battery", "offline", "stale", "bridge"]
        await self.relay.admin.subscribe(self.home_id, name, summary_at, kinds, order)

    async def _report(self, at: datetime) -> None:
        values: dict[str, Any] = {"bridge_reachable": self.bridge_down_since is None}
        values["bridge_offline_since"] = self.bridge_down_since
        await self.relay.reported(self.home_id, at, **values)

    async def _tick(self, at: datetime) -> None:
        self.relay.clock.set(at)
        if self.reporting:
            await self._report(at)
        await self.relay.notifier.plan()

    async def until(self, moment: datetime) -> None:
        """Let time pass to ``moment``: a report and a planning tick every 15 minutes."""
        assert self.ticked_to is not None
        at = self.ticked_to
        while (at := _next_tick(at)) <= moment:
            await self._tick(at)
        self.ticked_to = moment

    async def at(
        self, moment: datetime, action: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Run up to ``moment``, do ``action`` there, then tick then and a minute later."""
        await self.until(moment)
        self.relay.clock.set(moment)
        if action is not None:
            await action()
        await self._tick(moment)
        later = moment + timedelta(minutes=1)
        await self.until(later)
        if _next_tick(moment) != later:
            await self._tick(later)

    # -- what happens in the home ------------------------------------------------------------

    async def starts_reporting(self, moment: datetime) -> None:
        async def start() -> None:
            self.reporting = True
            if self.truth.first_report is None:
                self.truth.first_report = moment
            elif self.truth.blind and self.truth.blind[-1][1] is None:
                self.truth.blind[-1] = (self.truth.blind[-1][0], moment)

        await self.at(moment, start)

    async def stops_reporting(self, moment: datetime) -> None:
        """The home's Home Assistant goes down: nothing more arrives (its last report at
        ``moment``)."""

        async def stop() -> None:
            await self._report(moment)
            self.reporting = False
            self.truth.blind.append((moment, None))

        await self.at(moment, stop)

    async def moves(self, moment: datetime, room: str, count: int = 1) -> None:
        async def move() -> None:
            await self.relay.activity(self.home_id, moment, room=room, count=count)
            self.truth.movements.append((moment, room, count))

        await self.at(moment, move)

    async def bridge(self, moment: datetime, *, up: bool) -> None:
        async def change() -> None:
            if up:
                self.bridge_down_since = None
                self.truth.blind[-1] = (self.truth.blind[-1][0], moment)
            else:
                self.bridge_down_since = moment
                self.truth.blind.append((moment, None))

        await self.at(moment, change)

    async def devices(self, moment: datetime, **changes: dict[str, Any]) -> None:
        """Devices (by id) change, all in one report."""

        async def change() -> None:
            for device_id, values in changes.items():
                await self.relay.device(self.home_id, device_id, **values)

        await self.at(moment, change)

    async def acknowledges(self, moment: datetime, caregiver: str) -> None:
        """The caregiver presses the button in their own urgent message."""

        async def press() -> None:
            document = await self.latest_urgent_to(caregiver)
            url = next(b["url"] for b in document["blocks"] if "button" in b)
            alert_id = int(url.split("/alerts/")[1].split("/")[0])
            code = url.rpartition("code=")[2]
            await self.relay.admin.acknowledge(alert_id, code=code, now=moment)

        await self.at(moment, press)

    async def latest_urgent_to(self, caregiver: str) -> dict[str, Any]:
        notifications = table(Notification)
        caregivers = {c.name: c.id for c in await self.relay.admin.list_caregivers()}
        async with self.relay.engine.connect() as connection:
            content = await connection.scalar(
                select(notifications.c.content)
                .where(
                    notifications.c.caregiver_id == caregivers[caregiver],
                    notifications.c.kind == "alert",
                )
                .order_by(notifications.c.id.desc())
                .limit(1)
            )
        assert isinstance(content, dict)
        return content


@dataclass(frozen=True, slots=True)
class Written:
    """One message in the outbox, in planning order."""

    caregiver: str
    kind: str
    content: dict[str, Any]


async def outbox(relay: Relay) -> list[Written]:
    """Everything the planner wrote, oldest first."""
    caregivers = {c.id: c.name for c in await relay.admin.list_caregivers()}
    notifications = table(Notification)
    async with relay.engine.connect() as connection:
        rows = await connection.execute(
            select(
                notifications.c.caregiver_id, notifications.c.kind, notifications.c.content
            ).order_by(notifications.c.id)
        )
        return [Written(caregivers[r.caregiver_id], r.kind, r.content) for r in rows]


# -- the scripts -------------------------------------------------------------------------------


async def ordinary_two_days(relay: Relay) -> ScriptedHome:
    """Watching begins on a Tuesday afternoon; Wednesday brings low batteries, a sensor that is
    away for a minute, an inactivity alarm during which the bridge goes down (escalated, then
    acknowledged by the second caregiver), and an hour without reports; summaries at 08:00."""
    home = await ScriptedHome.create(relay, "Mum's flat", local(30, "14:25"))
    await home.caregiver("Ann", summary_at="08:00", order=0)
    await home.caregiver("Ben", summary_at=None, order=1)
    await home.starts_reporting(local(30, "14:32"))
    await home.moves(local(30, "14:40"), "Kitchen")
    await home.moves(local(30, "15:10"), "Living room", 2)
    await home.moves(local(30, "17:00"), "Living room")
    await home.moves(local(30, "18:30"), "Kitchen", 3)
    await home.moves(local(30, "20:15"), "Living room")
    await home.moves(local(30, "22:05"), "Bathroom")
    await home.moves(local(1, "07:12"), "Bedroom")
    await home.moves(local(1, "07:30"), "Kitchen")
    await home.until(local(1, "08:05"))  # the first summary
    low = {"name": "Hall sensor", "room": "Hallway", "kind": "motion_sensor"}
    dimmer = {"name": "Bedroom dimmer", "room": "Bedroom", "kind": "switch"}
    await home.devices(
        local(1, "09:00"),
        hall={**low, "battery": 12, "battery_state": "low"},
        dimmer={**dimmer, "battery": 3, "battery_state": "critical"},
    )
    bath = {"name": "Bathroom sensor", "room": "Bathroom", "kind": "motion_sensor"}
    away = local(1, "09:30")
    await home.devices(away, bath={**bath, "connectivity": "disconnected", "offline_since": away})
    await home.devices(local(1, "09:31"), bath={**bath, "connectivity": "connected"})
    await home.moves(local(1, "10:15"), "Kitchen")
    await home.until(local(1, "13:15"))  # three hours without movement: the alarm
    await home.bridge(local(1, "13:16"), up=False)
    await home.until(local(1, "13:32"))  # escalated to Ben; the bridge alert
    await home.acknowledges(local(1, "13:34"), "Ben")
    await home.bridge(local(1, "13:50"), up=True)
    await home.moves(local(1, "13:52"), "Hallway")
    await home.moves(local(1, "15:30"), "Kitchen")
    await home.stops_reporting(local(1, "16:00"))
    await home.starts_reporting(local(1, "17:10"))
    await home.moves(local(1, "18:00"), "Kitchen")
    await home.moves(local(1, "18:20"), "Living room")
    await home.moves(local(1, "20:00"), "Living room")
    await home.moves(local(1, "21:50"), "Bathroom")
    await home.moves(local(2, "07:05"), "Bedroom")
    await home.until(local(2, "08:05"))  # the second summary
    return home


HOSTILE_HOME = "Mum's <b>flat</b> &amp; co"
HOSTILE_ROOM = "[Tap here to acknowledge](http://evil.example/phish)"
HOSTILE_DEVICE = "<script>alert(1)</script>"
HOSTILE_SWITCH = "**Hall** _switch_ `x` &lt;"


async def hostile_names(relay: Relay) -> ScriptedHome:
    """A home whose names try to become links, tags, entities and emphasis in every format."""
    home = await ScriptedHome.create(relay, HOSTILE_HOME, local(30, "20:00"))
    await home.caregiver("Ann", summary_at="08:00", order=0)
    await home.caregiver("Ben <i>", summary_at=None, order=1)
    await home.starts_reporting(local(30, "21:00"))
    await home.moves(local(30, "21:30"), HOSTILE_ROOM)
    sensor = {"name": HOSTILE_DEVICE, "room": HOSTILE_ROOM, "kind": "motion_sensor"}
    switch = {"name": HOSTILE_SWITCH, "room": "*Hall*", "kind": "switch"}
    since = local(30, "22:00")
    await home.devices(
        since,
        s={**sensor, "battery": 9, "battery_state": "low"},
        w={**switch, "connectivity": "disconnected", "offline_since": since},
    )
    await home.moves(local(1, "07:40"), HOSTILE_ROOM)
    await home.until(local(1, "10:45"))  # the alarm
    await home.moves(local(1, "11:00"), HOSTILE_ROOM)
    await home.until(local(2, "08:05"))
    return home
