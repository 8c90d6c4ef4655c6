"""The learned 'unusually quiet' baseline: silent while learning, per time of day, away-aware."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from custom_components.hpoll.activity.baseline import (
    LEARNING_DAYS,
    MIN_THRESHOLD,
    QuietBaseline,
    quantile,
)

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)


def _learn(baseline: QuietBaseline, days: int, morning_gap: int, evening_gap: int) -> None:
    """Days where mornings have short gaps and evenings long ones (minutes)."""
    for day in range(days):
        t = MONDAY + timedelta(days=day)
        last = t
        while t < MONDAY + timedelta(days=day + 1):
            gap = morning_gap if t.hour < 12 else evening_gap
            if (t - last) >= timedelta(minutes=gap):
                last = t
            baseline.observe(t, last)
            t += timedelta(minutes=5)


def test_quantile() -> None:
    assert quantile([1, 2, 3, 4, 5], 0.5) == 3
    assert quantile([1, 2, 3, 4, 5], 1.0) == 5
    assert quantile([0, 10], 0.25) == 2.5


def test_silent_while_learning() -> None:
    baseline = QuietBaseline(UTC)
    _learn(baseline, LEARNING_DAYS - 1, 10, 60)
    now = MONDAY + timedelta(days=LEARNING_DAYS, hours=9)
    assert baseline.threshold(now) is None
    assert baseline.unusually_quiet(now, now - timedelta(hours=10), away=False) is None


def test_thresholds_follow_the_time_of_day() -> None:
    baseline = QuietBaseline(UTC)
    _learn(baseline, 21, 10, 90)
    morning = MONDAY + timedelta(days=21, hours=9)
    evening = MONDAY + timedelta(days=21, hours=19)
    morning_limit, evening_limit = baseline.threshold(morning), baseline.threshold(evening)
    assert morning_limit is not None
    assert evening_limit is not None
    assert morning_limit == MIN_THRESHOLD  # busy mornings: the floor applies
    assert evening_limit > timedelta(minutes=120)  # 90-minute evening gaps are normal
    assert baseline.unusually_quiet(morning, morning - timedelta(minutes=70), away=False)
    assert not baseline.unusually_quiet(evening, evening - timedelta(minutes=70), away=False)
    assert baseline.unusually_quiet(morning, morning - timedelta(hours=5), away=True) is False
    assert baseline.unusually_quiet(morning, None, away=False) is None


def test_export_restore() -> None:
    baseline = QuietBaseline(UTC)
    _learn(baseline, 8, 10, 60)
    restored = QuietBaseline.restore(baseline.export(), UTC)
    now = MONDAY + timedelta(days=8, hours=9)
    assert restored.threshold(now) == baseline.threshold(now)
    broken = QuietBaseline.restore({"samples": {"x": [1], "3": ["a", 2]}, "days": ["no"]}, UTC)
    assert dict(broken.samples) == {3: broken.samples[3]}
    assert list(broken.samples[3]) == [2.0]
    assert broken.days == set()
    baseline.observe(now, None)  # nothing to learn before any activity
