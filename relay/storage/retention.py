"""Retention: what the relay deletes, and when it may.

Raw reports go after the retention (``HPOLL_RELAY_RETENTION_DAYS``); the aggregates made of them
(device states, activity buckets) stay. Finished messages (sent, or given up) go after the same
retention with their delivery attempts, except those about an alert still open or acknowledged:
who was told about it is read again when it resolves. Pending messages never go.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, ColumnElement, Table, and_, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..clock import utcnow
from .models import ALERTS, FAILED, GOING_ON, NOTIFICATIONS, REPORTS, SENT

#: Messages that are over.
FINISHED = (SENT, FAILED)


#: Rows per deleting transaction: the first prune after an upgrade, or after the relay was down
#: for days, deletes millions, and on SQLite a transaction holds the only write lock (ingest
#: would wait for all of it). Each batch is the oldest rows, read by the time column's index:
#: unordered, PostgreSQL read the table from its start for each batch, through the rows the
#: batches before had deleted (not yet vacuumed), 1.4-2x slower at a million rows.
PRUNE_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class Pruned:
    """How many rows one prune deleted."""

    reports: int
    messages: int


async def prune(engine: AsyncEngine, retention_days: int, now: datetime | None = None) -> Pruned:
    """Delete what is older than the retention (``PRUNE_BATCH`` rows a transaction; a message's
    delivery attempts go with it: ON DELETE CASCADE)."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    reports = await _delete(engine, REPORTS, REPORTS.c.received_at, cutoff)
    about_an_alert_going_on = exists().where(
        ALERTS.c.id == NOTIFICATIONS.c.alert_id, ALERTS.c.state.in_(GOING_ON)
    )
    messages = await _delete(
        engine,
        NOTIFICATIONS,
        NOTIFICATIONS.c.created_at,
        cutoff,
        NOTIFICATIONS.c.status.in_(FINISHED),
        ~about_an_alert_going_on,
    )
    return Pruned(reports, messages)


async def _delete(
    engine: AsyncEngine,
    table: Table,
    dated: Column[datetime],
    cutoff: datetime,
    *also: ColumnElement[bool],
) -> int:
    """Delete ``table``'s rows ``dated`` before ``cutoff`` where every clause of ``also``
    holds, the oldest ``PRUNE_BATCH`` at a time."""
    removed = 0
    old = and_(dated < cutoff, *also)
    batch = select(table.c.id).where(old).order_by(dated).limit(PRUNE_BATCH).scalar_subquery()
    while True:
        async with engine.begin() as connection:
            result = await connection.execute(delete(table).where(table.c.id.in_(batch)))
        removed += int(result.rowcount or 0)
        if (result.rowcount or 0) < PRUNE_BATCH:
            return removed
