"""A Home Assistant restart in the middle of a silence: the restored detector judges it as the
detector that ran on would have, and reads the next movement the same way."""

from __future__ import annotations

from collections.abc import Callable
import copy
from datetime import UTC, datetime, timedelta
import json
import random

import pytest

from bench import inactivity_life as bench
from custom_components.hpoll.activity.detector import (
    KEPT,
    NOT_KEPT,
    InactivityDetector,
    Verdict,
)
from custom_components.hpoll.activity.history import History
from custom_components.hpoll.activity.tracker import ActivityEvent
from tests.hpoll.test_detector import (
    MONDAY,
    POLL,
    cat_owners_day,
    first_inactive,
    hall_only_day,
    hall_only_home,
    motion,
    ordinary_day,
)

Life = Callable[[datetime], list[ActivityEvent]]
Poll = tuple[datetime, list[ActivityEvent], bool]


def restarted(detector: InactivityDetector) -> InactivityDetector:
    """The detector Home Assistant builds from its store after a restart (through JSON)."""
    return InactivityDetector.restore(
        json.loads(json.dumps(detector.export())),
        detector.timezone,
        safety_net=detector.safety_net,
        quiet_hours=detector.quiet_hours,
    )


def test_every_attribute_is_either_kept_across_a_restart_or_said_not_to_be() -> None:
    """A new piece of state must be put in KEPT or NOT_KEPT: what is forgotten is decided."""
    attributes = set(vars(InactivityDetector(UTC)))
    assert not KEPT.keys() & NOT_KEPT
    assert attributes == KEPT.keys() | NOT_KEPT


def test_a_restart_after_getting_up_at_night_still_judges_the_night_trip() -> None:
    """The hall is where the nights are slept (neither bedroom nor bathroom has a sensor). At
    3:00 the person gets up and falls on the way; Home Assistant restarts two minutes later.
    The silence is still judged as a night trip, caught within the hour, not left to morning."""
    home, trip = hall_only_home(14)
    up = [motion("Hall", trip), motion("Hall", trip + timedelta(seconds=40), on=False, seen=True)]
    home.run(trip + timedelta(minutes=2), up)
    home.detector = restarted(home.detector)
    alarm = first_inactive(home.run(trip + timedelta(hours=3)))
    assert alarm is not None
    assert (alarm.reason, alarm.since) == ("unusual_gap", trip + timedelta(seconds=40))
    assert alarm.limit is not None
    assert alarm.limit <= timedelta(hours=1)


def judged(verdict: Verdict) -> tuple[object, ...]:
    return (
        verdict.state,
        verdict.since,
        verdict.reason,
        verdict.limit,
        verdict.away,
        verdict.low_activity_today,
        verdict.last_activity,
    )


def learned(detector: InactivityDetector) -> tuple[object, ...]:
    """What the detector learned, but how long it watched."""
    history = detector.history
    return (
        history.gaps.days,
        history.runs.days,
        history.wakes,
        history.sleeps,
        history.ways,
        history.strays,
        history.moves,
    )


def running_on(detector: InactivityDetector) -> InactivityDetector:
    """A copy that runs on without a restart. It reads the history as written (rounded alike)
    and derives nothing from it in advance (limits are cached per half hour as first
    computed): any difference is the state in progress."""
    copied = copy.deepcopy(detector)
    copied.history = History.restore(json.loads(json.dumps(detector.history.export())))
    copied._cache.clear()
    copied._nights_key = copied._restless_key = None
    return copied


def assert_restarts_change_nothing(
    detector: InactivityDetector, polls: list[Poll], *, learn: int, every: int
) -> int:
    """Feed ``polls`` to ``detector``; after the first ``learn`` of them, restart it at every
    ``every``-th poll while a copy runs on without a restart, and feed both what follows: until
    either learns something the other cannot (the restored detector never learns the silence
    across the restart) both give the same verdict at every poll; after it, for a while, both
    see the person at the same moment in the same room. Returns the polls compared."""
    compared = 0
    for index, (now, events, reachable) in enumerate(polls):
        detector.observe(now, events, reachable=reachable)
        if index < learn or index % every:
            continue
        ran_on, restored = running_on(detector), restarted(detector)
        after = None
        for later, due, up in polls[index + 1 : index + 1 + 12 * 60]:
            on = ran_on.observe(later, due, reachable=up)
            back = restored.observe(later, due, reachable=up)
            if after is None and learned(restored) == learned(ran_on):
                assert judged(back) == judged(on), later
                compared += 1
                continue
            after = after or later
            assert (back.last_activity, back.away) == (on.last_activity, on.away), later
            assert restored._last_room == ran_on._last_room, later
            if later - after > timedelta(minutes=30):
                break
    return compared


def minute_polls(events: list[ActivityEvent], start: datetime, end: datetime) -> list[Poll]:
    """A poll every minute from ``start`` to ``end``, each with the events since the last."""
    polls, now = [], start
    pending = sorted((e for e in events if start < e.at <= end), key=lambda e: e.at)
    while now < end:
        now += POLL
        due = [e for e in pending if e.at <= now]
        pending = pending[len(due) :]
        polls.append((now, due, True))
    return polls


def with_a_cat(day: datetime) -> list[ActivityEvent]:
    """``cat_owners_day`` and a cat moving the kitchen every 37 minutes, day and night."""
    cat = [motion("Kitchen", day + timedelta(minutes=m)) for m in range(5, 1440, 37)]
    return sorted([*cat_owners_day(day), *cat], key=lambda e: e.at)


def with_a_door(day: datetime) -> list[ActivityEvent]:
    """``ordinary_day`` with an afternoon out: through the hall and the door at 14:00, back
    through the door and the hall at 17:00."""
    out, back = day + timedelta(hours=14), day + timedelta(hours=17)
    lived = [e for e in ordinary_day(day) if not out <= e.at <= back]
    lived += [motion("Hall", out), ActivityEvent("door", "Hall", out + POLL, "contact")]
    lived += [ActivityEvent("door", "Hall", back, "contact"), motion("Hall", back + POLL)]
    return sorted(lived, key=lambda e: e.at)


@pytest.mark.parametrize("life", [ordinary_day, hall_only_day, with_a_cat, with_a_door])
def test_a_restart_at_any_moment_judges_the_silence_in_progress_as_before(life: Life) -> None:
    """Homes with a bedroom sensor, with neither bedroom nor bathroom seen, with a cat, with a
    door and an afternoon out: 14 days learned, then a restart every 20 minutes of a day and
    a half, each compared with a copy that ran on."""
    days = 14
    events = [e for n in range(days + 2) for e in life(MONDAY + timedelta(days=n))]
    polls = minute_polls(events, MONDAY, MONDAY + timedelta(days=days, hours=36))
    compared = assert_restarts_change_nothing(
        InactivityDetector(UTC), polls, learn=days * 1440, every=20
    )
    assert compared > 1_000


@pytest.mark.parametrize("kind", bench.TYPES)
def test_a_restart_in_the_second_benchs_homes_judges_as_before(kind: str) -> None:
    """One home of each household type of bench/inactivity_life.py's life model (naps, pets,
    outings, no door sensor, holidays, bridge outages, 2 % missed movements, 2-minute polls
    that see each sensor's latest change), 14 days learned, then a restart every half hour
    of a day and a half."""
    rng = random.Random(f"restart {kind}")
    home = bench.simulate(rng, kind)
    end = bench.FIRST_DAY + timedelta(days=15, hours=12)
    changes = bench.sensor_changes(home, end, rng)
    polls = list(bench.polls(home, changes, [d for d in home.doors if d < end], end))
    learn = next(i for i, poll in enumerate(polls) if poll[0] >= end - timedelta(hours=36))
    detector = InactivityDetector(bench.ZONE, safety_net=bench.FIXED)
    compared = assert_restarts_change_nothing(detector, polls, learn=learn, every=15)
    assert compared > 300


def test_an_unreadable_state_in_progress_is_dropped() -> None:
    broken = InactivityDetector.restore(
        {
            "last_at": "2026-03-02T10:00:00+00:00",
            "last_up": "yes",
            "sure_at": 5,
            "seen": {"Hall": "never", "Kitchen": "2026-03-02T09:58:00+00:00"},
            "pending": {"sensor_id": 3},
            "cycle_events": ["x"],
            "night_longest": {"x": 1, "739": 300},
            "doors": "door",
        },
        UTC,
    )
    assert broken.last_at == datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert broken._last_up is False
    assert broken._sure_at is None
    assert broken._seen == {"Kitchen": datetime(2026, 3, 2, 9, 58, tzinfo=UTC)}
    assert broken._pending is None
    assert broken._cycle_events == []
    assert broken._night_longest == {739: 300.0}
    assert broken._doors == set()
