"""The SQL read models the views show (reads only; the write path is :mod:`relay.ingest`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..clock import utcnow
from ..storage.models import ActivityBucket, Caregiver, DeviceState, Home, Notification


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def home_status(engine: AsyncEngine, home_id: str) -> dict[str, Any] | None:
    """The JSON view of a home: bridge, devices, today's activity so far."""
    homes, devices, activity = Home.__table__, DeviceState.__table__, ActivityBucket.__table__
    async with engine.connect() as connection:
        home = (await connection.execute(select(homes).where(homes.c.id == home_id))).first()
        if home is None:
            return None
        rows = (
            await connection.execute(
                select(devices).where(devices.c.home_id == home_id).order_by(devices.c.name)
            )
        ).all()
        since = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        today = await connection.scalar(
            select(func.coalesce(func.sum(activity.c.count), 0)).where(
                activity.c.home_id == home_id, activity.c.bucket_start >= since
            )
        )
        last_activity = await connection.scalar(
            select(func.max(activity.c.last_at)).where(activity.c.home_id == home_id)
        )
    return {
        "id": home.id,
        "name": home.name,
        "timezone": home.timezone,
        "last_report_at": _iso(home.last_report_at),
        "bridge": {
            "reachable": home.bridge_reachable,
            "offline_since": _iso(home.bridge_offline_since),
        },
        "counters": home.counters or {},
        "activity": {"since_utc_midnight": int(today or 0), "last_at": _iso(last_activity)},
        "devices": [
            {
                "id": row.device_id,
                "name": row.name,
                "room": row.room,
                "kind": row.kind,
                "battery": row.battery,
                "battery_state": row.battery_state,
                "connectivity": row.connectivity,
                "offline_since": _iso(row.offline_since),
                "last_seen": _iso(row.last_seen),
                "updated_at": _iso(row.updated_at),
            }
            for row in rows
        ],
    }


async def notification_gauges(engine: AsyncEngine) -> dict[str, float]:
    """The outbox's state for /metrics: pending and failed messages, failing caregivers."""
    async with engine.connect() as connection:
        return {
            "hpoll_notifications_pending": (
                await connection.scalar(
                    select(func.count()).where(Notification.status == "pending")
                )
                or 0
            ),
            "hpoll_notifications_failed": (
                await connection.scalar(select(func.count()).where(Notification.status == "failed"))
                or 0
            ),
            "hpoll_caregivers_failing": (
                await connection.scalar(
                    select(func.count()).where(Caregiver.failing_since.isnot(None))
                )
                or 0
            ),
        }
