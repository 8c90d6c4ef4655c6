"""Alerting reads only the homes some rule may hold for: never one condition fewer than judging
every home would find (both databases, homes in every state the rules look at)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import random
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.notifications.alerting import Condition, _may_hold, conditions, judge
from relay.storage.models import ACKED, ALERTS, DEVICES, HOMES, OPEN, RESOLVED

NOW = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
#: Around every default threshold (15, 30 minutes; 3 hours), on both sides, and far away.
AGES = [None, 0, 5, 14, 15, 16, 29, 30, 31, 59, 60, 61, 179, 180, 181, 600, 3000]
VERDICTS: list[Any] = [
    None,
    {},
    {"state": "ok"},
    {"state": "ok", "low_activity_today": True},
    {"state": "ok", "low_activity_today": False, "away": True},
    {"state": "ok", "low_activity_today": True, "away": True},
    {"state": "inactive", "since": (NOW - timedelta(hours=4)).isoformat(), "reason": "r"},
    {"state": "inactive"},
    {"state": "unknown"},
    {"state": "learning", "low_activity_today": False},
]


def _ago(rng: random.Random) -> datetime | None:
    minutes = rng.choice(AGES)
    return None if minutes is None else NOW - timedelta(minutes=minutes, seconds=rng.choice([0, 1]))


FINE: dict[str, Any] = {
    "timezone": "Europe/Berlin",
    "created_at": NOW - timedelta(days=3),
    "last_report_at": NOW - timedelta(seconds=30),
    "last_report_sent_at": NOW - timedelta(seconds=30),
    "last_activity_at": NOW - timedelta(minutes=10),
    "bridge_reachable": True,
    "bridge_offline_since": None,
    "verdict": {"state": "ok", "low_activity_today": False},
    "settings": None,
}


def _homes(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Homes where all is well but for one to three things, each near a threshold or not."""
    homes = []
    for n in range(count):
        home = {**FINE, "id": f"h{n}", "name": f"Home {n}"}
        for field in rng.sample(list(CHANGES), rng.choice([1, 2, 3])):
            home[field] = (
                _ago(rng)
                if field.startswith("last_") or field.endswith("_since")
                else rng.choice(CHANGES[field])
            )
        if home["bridge_reachable"] is not False:
            home["bridge_offline_since"] = None
        homes.append(home)
    return homes


CHANGES: dict[str, list[Any]] = {
    "timezone": ["America/New_York", "Asia/Tokyo"],
    "created_at": [NOW - timedelta(minutes=m) for m in (10, 40)],
    "last_report_at": [],
    "last_report_sent_at": [],
    "last_activity_at": [],
    "bridge_reachable": [None, False],
    "bridge_offline_since": [],
    "verdict": [*VERDICTS, None, None, None],  # often none: the fixed rule
    "settings": [{"stale_minutes": 5}, {"inactivity_minutes": 20}],
}


def _devices(rng: random.Random, homes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "home_id": home["id"],
            "device_id": f"d{n}",
            "name": f"Sensor {n}",
            "room": "Hall",
            "kind": "motion",
            "battery": 10,
            "battery_state": rng.choice([None, "normal", "low", "critical"]),
            "offline_since": _ago(rng),
            "updated_at": NOW,
        }
        for home in homes
        for n in range(rng.choice([0, 0, 0, 0, 1, 2]))
    ]


def _alerts(rng: random.Random, homes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "home_id": home["id"],
            "kind": rng.choice(["inactivity", "quiet", "stale", "battery", "bridge"]),
            "subject": "",
            "state": rng.choice([OPEN, ACKED, RESOLVED]),
            "opened_at": NOW - timedelta(hours=1),
            "urgent": False,
            "escalation_level": 0,
        }
        for home in homes
        if rng.random() < 0.1
    ]


def _every_home(connection: Connection, listening_since: datetime | None) -> list[Any]:
    troubled: dict[str, list[Any]] = {}
    for device in connection.execute(select(DEVICES)):
        troubled.setdefault(device.home_id, []).append(device)
    return [
        condition
        for home in connection.execute(select(HOMES))
        for condition in judge(home, troubled.get(home.id, []), NOW, listening_since)
    ]


async def test_the_homes_read_are_every_home_a_rule_holds_for(engine: AsyncEngine) -> None:
    rng = random.Random(20261130)
    homes = _homes(rng, 1500)
    async with engine.begin() as connection:
        await connection.execute(insert(HOMES), homes)
        await connection.execute(insert(DEVICES), _devices(rng, homes))
        await connection.execute(insert(ALERTS), alerts := _alerts(rng, homes))
    alerted = {a["home_id"] for a in alerts if a["state"] in (OPEN, ACKED)}

    def matters(condition: Condition) -> bool:
        """What reconcile acts on: a condition that opens an alert, or one of a home with an
        open alert (keeps it open; its absence resolves it)."""
        return not condition.hold_only or condition.home_id in alerted

    async with engine.connect() as connection:
        for listening_since in (None, NOW - timedelta(minutes=20)):
            read = await connection.run_sync(conditions, NOW, listening_since)
            everyone = await connection.run_sync(_every_home, listening_since)
            assert {repr(c) for c in read} <= {repr(c) for c in everyone}
            assert sorted(repr(c) for c in read if matters(c)) == sorted(
                repr(c) for c in everyone if matters(c)
            )
            kinds = {c.kind for c in everyone if not c.hold_only}
            assert kinds == {"stale", "bridge", "battery", "offline", "inactivity", "quiet"}
            assert any(c.hold_only and matters(c) for c in everyone)
            assert len(read) < len(everyone)  # some homes were not read


async def test_a_home_no_rule_holds_for_is_not_read(engine: AsyncEngine) -> None:
    fine = {
        "name": "Fine",
        "timezone": "Europe/Berlin",
        "created_at": NOW - timedelta(days=3),
        "last_report_at": NOW,
        "last_report_sent_at": NOW,
        "last_activity_at": NOW - timedelta(minutes=20),
        "bridge_reachable": True,
        "verdict": {"state": "ok", "low_activity_today": False},
    }
    async with engine.begin() as connection:
        await connection.execute(insert(HOMES), [{**fine, "id": f"f{n}"} for n in range(50)])
        await connection.execute(
            insert(HOMES),
            {**fine, "id": "quiet", "verdict": {"state": "ok", "low_activity_today": True}},
        )
    async with engine.connect() as connection:
        read = (await connection.execute(select(HOMES.c.id).where(_may_hold(NOW)))).scalars()
        found = await connection.run_sync(conditions, NOW, None)
    assert list(read) == ["quiet"]
    assert [(c.home_id, c.kind) for c in found] == [("quiet", "quiet")]
