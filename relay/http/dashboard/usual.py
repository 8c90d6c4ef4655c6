"""A home's usual activity: how much it had by each hour of the day on its last 28 days.

For the Homes page ("34 so far, usual by now 20-40") and the Home page's daily band. The band
of a home is worked out once per home and local date (past days do not change) and kept in
memory; a background pass fills it for every home in chunks, so the Homes page never scans
weeks of activity while a caregiver waits.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
import contextlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
import itertools
import logging
import math
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay.clock import utcnow
from relay.notifications.summary import _epoch as epoch_seconds
from relay.storage.models import ACTIVITY, HOMES

_LOGGER = logging.getLogger(__name__)
DAYS = 28
#: Fewer days of history than this and the home is still "learning": no band.
MIN_DAYS = 7
#: Homes per read: small enough that folding one chunk holds the event loop only briefly.
CHUNK = 25
REFRESH_EVERY = timedelta(minutes=10)


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of a local day (a day starting in a DST gap starts when it can)."""
    return datetime.combine(day, time(0), zone)


def percentile(values: Sequence[int], fraction: float) -> int:
    """Nearest-rank percentile of sorted values."""
    return values[min(len(values) - 1, max(0, math.ceil(fraction * len(values)) - 1))]


@dataclass(frozen=True, slots=True)
class Band:
    """The usual range (10th to 90th percentile) of activity by the end of each local hour."""

    day: date
    low: tuple[int, ...]
    high: tuple[int, ...]
    days: int

    def by(self, moment: datetime) -> tuple[int, int]:
        """The usual range by this local time (linear within the hour)."""
        hour, fraction = moment.hour, (moment.minute * 60 + moment.second) / 3600
        low_before = self.low[hour - 1] if hour else 0
        high_before = self.high[hour - 1] if hour else 0
        return (
            round(low_before + (self.low[hour] - low_before) * fraction),
            round(high_before + (self.high[hour] - high_before) * fraction),
        )

    @property
    def daily(self) -> tuple[int, int]:
        """The usual range of a whole day."""
        return self.low[-1], self.high[-1]


def epoch(connection: AsyncConnection, column: Any) -> Any:
    """A timestamp column as seconds since 1970 (floats read far faster than timestamps)."""
    sync = connection.sync_connection
    assert sync is not None
    return epoch_seconds(sync, column)


def from_epoch(seconds: float | None) -> datetime | None:
    """Back from epoch seconds to an aware UTC time."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


class HourGrid:
    """The local hours of ``days`` days from ``first_day`` in a zone, as UTC instants, to
    fold activity (epoch seconds) into counts per local day and hour. On the day clocks
    spring forward the missing hour stays empty; on the day they fall back the repeated hour
    counts twice as long."""

    def __init__(self, zone: ZoneInfo, first_day: date, days: int) -> None:
        self.days = days
        self.starts = [
            datetime.combine(first_day + timedelta(days=offset), time(hour), zone).timestamp()
            for offset in range(days)
            for hour in range(24)
        ]
        self.end = local_midnight(first_day + timedelta(days=days), zone).timestamp()

    def fold(self, rows: Iterable[tuple[float, int]]) -> list[list[int]]:
        """Counts per local day and hour (rows outside the days are left out)."""
        flat = [0] * (24 * self.days)
        starts, first, end = self.starts, self.starts[0], self.end
        for at, count in rows:
            if first <= at < end:
                flat[bisect.bisect_right(starts, at) - 1] += count
        return [flat[day * 24 : day * 24 + 24] for day in range(self.days)]


def band_from(grid: list[list[int]], today: date, since: date) -> Band | None:
    """The band from the days before ``today``: only whole days after the home was added."""
    first = today - timedelta(days=len(grid))
    rows = [
        list(itertools.accumulate(hours))
        for offset, hours in enumerate(grid)
        if first + timedelta(days=offset) > since
    ]
    if len(rows) < MIN_DAYS:
        return None
    low, high = [], []
    for hour in range(24):
        values = sorted(row[hour] for row in rows)
        low.append(percentile(values, 0.1))
        high.append(percentile(values, 0.9))
    return Band(today, tuple(low), tuple(high), len(rows))


class UsualBands:
    """Bands per home for the home's current local date, filled in the background."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._bands: dict[str, Band | None] = {}
        self._days: dict[str, date] = {}
        self._task: asyncio.Task[None] | None = None

    def get(self, home_id: str, today: date) -> Band | None:
        """The cached band of the home for its local ``today`` (None: learning or not known)."""
        return self._bands.get(home_id) if self._days.get(home_id) == today else None

    def put(self, home_id: str, today: date, band: Band | None) -> None:
        """Remember a band worked out elsewhere (the Home page reads the same 28 days)."""
        self._bands[home_id], self._days[home_id] = band, today

    async def refresh(self, now: datetime | None = None) -> int:
        """Work out the bands missing for today, every home (and again those not known yet:
        a new home, or one whose history arrived late); how many were worked out."""
        now = now or utcnow()
        async with self._engine.connect() as connection:
            homes = (
                await connection.execute(select(HOMES.c.id, HOMES.c.timezone, HOMES.c.created_at))
            ).all()
        stale = [
            (home.id, ZoneInfo(home.timezone), home.created_at)
            for home in homes
            if self.get(home.id, now.astimezone(ZoneInfo(home.timezone)).date()) is None
        ]
        for chunk in itertools.batched(stale, CHUNK):
            await self._refresh_chunk(chunk, now)
            await asyncio.sleep(0)  # let page requests through between chunks
        return len(stale)

    async def _refresh_chunk(
        self, chunk: Sequence[tuple[str, ZoneInfo, datetime]], now: datetime
    ) -> None:
        earliest = min(
            local_midnight(now.astimezone(zone).date() - timedelta(days=DAYS), zone)
            for _, zone, _ in chunk
        )
        rows: dict[str, list[tuple[float, int]]] = defaultdict(list)
        async with self._engine.connect() as connection:
            result = await connection.execute(
                select(
                    ACTIVITY.c.home_id, epoch(connection, ACTIVITY.c.bucket_start), ACTIVITY.c.count
                ).where(
                    ACTIVITY.c.home_id.in_([home_id for home_id, _, _ in chunk]),
                    ACTIVITY.c.bucket_start >= earliest,
                )
            )
            for home_id, at, count in result:
                rows[home_id].append((at, count))
        grids: dict[tuple[str, date], HourGrid] = {}
        for home_id, zone, created in chunk:
            today = now.astimezone(zone).date()
            grid = grids.get((zone.key, today))
            if grid is None:
                grid = grids[zone.key, today] = HourGrid(zone, today - timedelta(days=DAYS), DAYS)
            hours = grid.fold(rows.get(home_id, []))
            self.put(home_id, today, band_from(hours, today, created.astimezone(zone).date()))

    def start(self) -> None:
        """Keep the bands filled until stopped."""
        self._task = asyncio.create_task(self._forever())

    async def _forever(self) -> None:
        while True:
            try:
                await self.refresh()
            except SQLAlchemyError as err:
                _LOGGER.error("usual activity refresh failed: %s", type(err).__name__)
            await asyncio.sleep(REFRESH_EVERY.total_seconds())

    async def stop(self) -> None:
        """Stop the background pass."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
