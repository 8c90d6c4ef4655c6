"""The usual range: local hours on ordinary and DST days, percentiles, the band by a time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.admin import Admin
from relay.clock import utcnow
from relay.http.dashboard.usual import (
    MIN_DAYS,
    Band,
    HourGrid,
    UsualBands,
    band_from,
    percentile,
)
from relay.storage.models import HOMES

from .helpers import add_activity

BERLIN = ZoneInfo("Europe/Berlin")


def _at(day: date, hour: int, minute: int = 0, fold: int = 0) -> float:
    return datetime(
        day.year, day.month, day.day, hour, minute, tzinfo=BERLIN, fold=fold
    ).timestamp()


def test_hours_are_local_on_ordinary_and_dst_days() -> None:
    spring, autumn = date(2026, 3, 29), date(2026, 10, 25)  # Berlin's two changes in 2026
    grid = HourGrid(BERLIN, spring, 1)
    rows = [(_at(spring, 1, 30), 1), (_at(spring, 3, 30), 2), (_at(spring, 23, 59), 4)]
    hours = grid.fold(rows)[0]
    assert (hours[1], hours[2], hours[3], hours[23]) == (1, 0, 2, 4)  # 02:00 never happened
    grid = HourGrid(BERLIN, autumn, 1)
    rows = [(_at(autumn, 2, 30), 1), (_at(autumn, 2, 30, fold=1), 2), (_at(autumn, 3, 5), 4)]
    hours = grid.fold(rows)[0]
    assert (hours[2], hours[3]) == (3, 4)  # the repeated hour counts both times
    # Outside the days: left out.
    assert sum(map(sum, grid.fold([(_at(autumn, 0) - 1, 5)]))) == 0


def test_band_needs_a_week_and_takes_the_10th_to_90th_percentile() -> None:
    today = date(2026, 11, 30)
    days = [[0] * 24 for _ in range(28)]
    for offset, row in enumerate(days):
        row[8] = offset + 1  # 1 .. 28 movements at 08:00 on successive days
    assert band_from(days, today, since=today - timedelta(days=MIN_DAYS)) is None
    band = band_from(days, today, since=today - timedelta(days=60))
    assert band is not None
    assert band.days == 28
    assert band.daily == (percentile(list(range(1, 29)), 0.1), percentile(list(range(1, 29)), 0.9))
    assert band.daily == (3, 26)
    assert band.low[7] == 0  # nothing happens before 08:00 on any day


def test_band_by_a_time_of_day_interpolates_within_the_hour() -> None:
    band = Band(date(2026, 11, 30), tuple([0] * 8 + [10] * 16), tuple([0] * 8 + [20] * 16), 28)
    # By the end of 08:00-09:00 a usual day had 10-20 movements, none before.
    at = datetime(2026, 11, 30, 8, 30, tzinfo=UTC)
    assert band.by(at) == (5, 10)
    assert band.by(at.replace(hour=10)) == (10, 20)
    assert band.by(at.replace(hour=0, minute=0)) == (0, 0)


async def test_refresh_fills_every_home_and_retries_those_not_known(
    engine: AsyncEngine, admin: Admin
) -> None:
    home = (await admin.add_home("Mum's flat", "Europe/Berlin")).id
    bands = UsualBands(engine)
    now = utcnow()
    today = now.astimezone(BERLIN).date()
    for back in range(1, 29):
        day = today - timedelta(days=back)
        at = datetime(day.year, day.month, day.day, 9, 0, tzinfo=BERLIN).astimezone(UTC)
        await add_activity(engine, home, "Kitchen", at, back)
    assert await bands.refresh(now) == 1
    assert bands.get(home, today) is None  # added today: learning
    async with engine.begin() as connection:
        await connection.execute(update(HOMES).values(created_at=now - timedelta(days=40)))
    assert await bands.refresh(now) == 1  # not known yet: worked out again
    band = bands.get(home, today)
    assert band is not None
    assert band.daily == (3, 26)
    assert await bands.refresh(now) == 0  # known for today: left alone
