"""Local times of day across DST changes: nothing skipped, nothing doubled."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from relay.notifications.schedule import (
    in_window,
    local_day_bounds,
    next_occurrence,
    occurrence,
    window_end,
    window_start,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("zone", "day", "at", "expected"),
    [
        # Spring forward: 02:30 does not exist; it happens an hour (the jump) later, 03:30.
        (BERLIN, date(2026, 3, 29), time(2, 30), utc(2026, 3, 29, 1, 30)),
        (NEW_YORK, date(2026, 3, 8), time(2, 30), utc(2026, 3, 8, 7, 30)),
        # Lord Howe jumps by 30 minutes at 02:00: 02:15 becomes 02:45 summer time.
        (LORD_HOWE, date(2026, 10, 4), time(2, 15), utc(2026, 10, 3, 15, 45)),
        # Fall back: the hour happens twice; the first one counts.
        (BERLIN, date(2026, 10, 25), time(2, 30), utc(2026, 10, 25, 0, 30)),
        (NEW_YORK, date(2026, 11, 1), time(1, 30), utc(2026, 11, 1, 5, 30)),
        (LORD_HOWE, date(2026, 4, 5), time(1, 45), utc(2026, 4, 4, 14, 45)),
        # Ordinary days.
        (BERLIN, date(2026, 7, 1), time(8, 0), utc(2026, 7, 1, 6, 0)),
        (BERLIN, date(2026, 12, 1), time(8, 0), utc(2026, 12, 1, 7, 0)),
    ],
)
def test_occurrence_rule(zone: ZoneInfo, day: date, at: time, expected: datetime) -> None:
    assert occurrence(day, at, zone) == expected


@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK, LORD_HOWE])
@pytest.mark.parametrize("at", [time(0, 0), time(1, 30), time(2, 15), time(2, 30), time(8, 0)])
def test_once_per_local_day_through_a_whole_year(zone: ZoneInfo, at: time) -> None:
    """Every local date of 2026 gets exactly one occurrence, in order, none skipped."""
    after = datetime(2026, 1, 1, tzinfo=zone).astimezone(UTC) - timedelta(seconds=1)
    days = []
    while True:
        day, instant = next_occurrence(at, zone, after)
        if day.year > 2026:
            break
        assert instant > after
        days.append(day)
        after = instant
    assert days == [date(2026, 1, 1) + timedelta(days=n) for n in range(365)]


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        (BERLIN, date(2026, 3, 29), 23),
        (BERLIN, date(2026, 10, 25), 25),
        (NEW_YORK, date(2026, 11, 1), 25),
        (LORD_HOWE, date(2026, 10, 4), 23.5),
        (LORD_HOWE, date(2026, 4, 5), 24.5),
        (BERLIN, date(2026, 7, 1), 24),
    ],
)
def test_local_days_can_be_short_or_long(zone: ZoneInfo, day: date, hours: float) -> None:
    start, end = local_day_bounds(day, zone)
    assert (end - start).total_seconds() / 3600 == hours


def test_windows_that_wrap_midnight() -> None:
    night = (time(22, 0), time(7, 0))
    assert in_window(utc(2026, 7, 1, 21, 0), BERLIN, *night)  # 23:00 local
    assert in_window(utc(2026, 7, 1, 4, 0), BERLIN, *night)  # 06:00 local
    assert not in_window(utc(2026, 7, 1, 10, 0), BERLIN, *night)
    assert window_end(utc(2026, 7, 1, 21, 0), BERLIN, time(7, 0)) == utc(2026, 7, 2, 5, 0)
    assert window_start(utc(2026, 7, 1, 4, 0), BERLIN, time(7, 0)) == utc(2026, 6, 30, 5, 0)
    assert window_start(utc(2026, 7, 1, 6, 0), BERLIN, time(7, 0)) == utc(2026, 7, 1, 5, 0)
