"""Retention: what the relay deletes, and when it may.

Raw reports go after the retention (``HPOLL_RELAY_RETENTION_DAYS``); the aggregates made of them
(device states, activity buckets) stay. Finished messages (sent, or given up) go after the same
retention with their delivery attempts, except those about an alert still open or acknowledged:
who was told about it is read again when it resolves. Pending messages never go.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..clock import utcnow
from .models import ALERTS, ATTEMPTS, NOTIFICATIONS, REPORTS

#: Message states that are over (relay/notifications/outbox.py).
FINISHED = ("sent", "failed")
#: Alert states in which the alert is still going on (relay/notifications/alerting.py).
GOING_ON = ("open", "acked")


@dataclass(frozen=True, slots=True)
class Pruned:
    """How many rows one prune deleted."""

    reports: int
    messages: int


async def prune(engine: AsyncEngine, retention_days: int, now: datetime | None = None) -> Pruned:
    """Delete what is older than the retention (one transaction per table)."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    async with engine.begin() as connection:
        reports = await connection.execute(delete(REPORTS).where(REPORTS.c.received_at < cutoff))
    old = (
        select(NOTIFICATIONS.c.id)
        .where(NOTIFICATIONS.c.created_at < cutoff, NOTIFICATIONS.c.status.in_(FINISHED))
        .where(
            NOTIFICATIONS.c.alert_id.is_(None)
            | NOTIFICATIONS.c.alert_id.not_in(
                select(ALERTS.c.id).where(ALERTS.c.state.in_(GOING_ON))
            )
        )
    )
    async with engine.begin() as connection:
        await connection.execute(delete(ATTEMPTS).where(ATTEMPTS.c.notification_id.in_(old)))
        messages = await connection.execute(
            delete(NOTIFICATIONS).where(NOTIFICATIONS.c.id.in_(old))
        )
    return Pruned(int(reports.rowcount or 0), int(messages.rowcount or 0))
