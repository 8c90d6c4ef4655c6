"""Per-room and whole-home aggregates: today's count in the HOME's timezone, latest activity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from custom_components.hpoll.activity.log import HOME, ActivityLog
from custom_components.hpoll.activity.tracker import ActivityEvent, ActivityTracker

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def _log() -> ActivityLog:
    return ActivityLog(ActivityTracker(started_at=datetime(2026, 1, 1, tzinfo=UTC)), AMSTERDAM)


def test_counts_and_latest_per_room_and_home() -> None:
    log = _log()
    now = datetime(2026, 7, 28, 10, 0, tzinfo=UTC)
    events = [
        ActivityEvent("s1", "Kitchen", now - timedelta(minutes=3)),
        ActivityEvent("s2", None, now - timedelta(minutes=2), kind="area_motion"),
        ActivityEvent("g1", "Kitchen", now - timedelta(minutes=1), kind="room_motion"),
        ActivityEvent("s1", "Kitchen", now, ongoing=True),
    ]
    fresh = log.record(events, now)
    assert [e.sensor_id for e in fresh] == ["s1", "s2"]
    assert log.count_today("Kitchen", now) == 1
    assert log.count_today(HOME, now) == 2
    assert log.last == {HOME: now, "Kitchen": now}


def test_the_day_turns_at_the_homes_midnight() -> None:
    log = _log()
    before = datetime(2026, 7, 28, 21, 50, tzinfo=UTC)  # 23:50 in Amsterdam
    log.record([ActivityEvent("s1", "Hall", before)], before)
    assert log.count_today(HOME, before) == 1
    after = datetime(2026, 7, 28, 22, 10, tzinfo=UTC)  # 00:10 the next day there
    assert log.count_today(HOME, after) == 0
    # Seen after midnight, but it happened before: yesterday's, not today's.
    late = ActivityEvent("s2", "Hall", datetime(2026, 7, 28, 21, 55, tzinfo=UTC))
    assert log.record([late], after) == [late]
    assert log.count_today(HOME, after) == 0
    log.record([ActivityEvent("s1", "Hall", after)], after)
    assert log.count_today("Hall", after) == 1


def test_spring_forward_day_is_one_day() -> None:
    log = _log()
    # 2026-03-29: clocks jump from 02:00 to 03:00 in Amsterdam (UTC 01:00).
    times = [
        datetime(2026, 3, 28, 23, 30, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        datetime(2026, 3, 29, 21, 59, tzinfo=UTC),
    ]
    for when in times:
        log.record([ActivityEvent("s", "Hall", when)], when)
    assert log.count_today(HOME, times[-1]) == 3
    assert log.count_today(HOME, datetime(2026, 3, 29, 22, 0, tzinfo=UTC)) == 0


def test_export_and_restore() -> None:
    log = _log()
    now = datetime(2026, 7, 28, 10, 0, tzinfo=UTC)
    log.record([ActivityEvent("s1", "Kitchen", now)], now)
    restored = ActivityLog.restore(log.export(), timezone=AMSTERDAM, started_at=now)
    assert restored.count_today("Kitchen", now) == 1
    assert restored.last == log.last
    broken = ActivityLog.restore(
        {
            "day": "nope",
            "today": {"x": "1", 5: 2, "ok": 3},
            "last": {"a": "bad", "b": 1},
            "marks": [],
        },
        timezone=AMSTERDAM,
        started_at=now,
    )
    assert broken.day is None
    assert broken.today == {"ok": 3}
    assert broken.last == {}
    assert ActivityLog.restore(None, timezone=AMSTERDAM, started_at=now).today == {}
