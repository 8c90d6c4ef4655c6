"""When a local time of day happens, in a home's IANA timezone, across DST changes.

The rule, for a wall-clock time that a DST change makes odd:
- it does not exist (spring forward, 02:30 in Europe/Berlin): it happens as far after the jump as
  it was after the start of the gap (02:30 -> 03:30 summer time). Nothing is skipped.
- it happens twice (fall back, 01:30 in America/New_York): the FIRST time only. Nothing doubles.

Each occurrence belongs to exactly one local date, which is what makes "once per day" a key.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def parse_hhmm(value: str) -> time:
    """'08:00' -> time(8, 0)."""
    hours, _, minutes = value.partition(":")
    return time(int(hours), int(minutes))


def occurrence(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of ``at`` on local ``day`` (rule above)."""
    # fold=0 is the rule: the first of two, or (in a gap) the offset from before the jump.
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def next_occurrence(at: time, zone: ZoneInfo, after: datetime) -> tuple[date, datetime]:
    """The first (local date, UTC instant) of ``at`` strictly after ``after``."""
    day = after.astimezone(zone).date() - timedelta(days=1)
    while True:
        instant = occurrence(day, at, zone)
        if instant > after:
            return day, instant
        day += timedelta(days=1)


def local_day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a local date in UTC; 23 or 25 hours long on DST days."""
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def in_window(now: datetime, zone: ZoneInfo, start: time, end: time) -> bool:
    """Is ``now`` inside [start, end) of the local day (which may wrap midnight)?"""
    local = now.astimezone(zone).time()
    if start <= end:
        return start <= local < end
    return local >= start or local < end


def window_start(now: datetime, zone: ZoneInfo, start: time) -> datetime:
    """The latest time, at or before ``now``, that the local clock read ``start``."""
    day = now.astimezone(zone).date()
    instant = occurrence(day, start, zone)
    return instant if instant <= now else occurrence(day - timedelta(days=1), start, zone)


def window_end(now: datetime, zone: ZoneInfo, end: time) -> datetime:
    """The next time the local clock reads ``end`` (when quiet hours are over)."""
    return next_occurrence(end, zone, now)[1]
