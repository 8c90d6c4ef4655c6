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
    Home,
    cat_owners_day,
    door,
    first_inactive,
    hall_only_day,
    hall_only_home,
    learned_home,
    motion,
    ordinary_day,
)

Life = Callable[[datetime], list[ActivityEvent]]
Poll = tuple[datetime, list[ActivityEvent], bool]


def restarted(detector: InactivityDetector) -> InactivityDetector:
    """The detector Home Assistant builds from its store after a restart (through JSON) right
    after the latest poll."""
    return InactivityDetector.restore(
        json.loads(json.dumps(detector.export())),
        detector.timezone,
        safety_net=detector.safety_net,
        quiet_hours=detector.quiet_hours,
        now=detector._previous_poll,
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


def running_on(detector: InactivityDetector) -> InactivityDetector:
    """A copy that runs on without a restart, but forgets what a restart forgets by design: it
    learns nothing of the silence in progress or of what the next poll brings, nor of lone
    movements just before (NOT_KEPT's learning-only state), reads the history as written
    (rounded alike), and derives nothing from it in advance (the night, the pet's sensors and
    the limits are cached per day or half hour as first computed, and derived again from the
    history at a restart). Any other difference is state in progress lost by the restart."""
    copied = copy.deepcopy(detector)
    copied.history = History.restore(json.loads(json.dumps(detector.history.export())))
    copied._cache.clear()
    copied._nights_key = copied._restless_key = None
    copied._blind_until, copied._resumed, copied._lone_recent = copied.last_at, True, []
    copied._way_back = None
    copied._gap_clean = copied._run_clean = copied._visit_clean = False
    return copied


def assert_restarts_change_nothing(
    detector: InactivityDetector, polls: list[Poll], *, learn: int, every: int
) -> int:
    """Feed ``polls`` to ``detector``; after the first ``learn`` of them, restart it at every
    ``every``-th poll while a copy runs on without a restart, feed both the next six hours'
    polls, and compare their verdicts at every poll. Returns the polls compared."""
    compared = 0
    for index, (now, events, reachable) in enumerate(polls):
        detector.observe(now, events, reachable=reachable)
        if index < learn or index % every:
            continue
        ran_on, restored = running_on(detector), restarted(detector)
        for later, due, up in polls[index + 1 :]:
            if later - now > timedelta(hours=6):
                break
            on = ran_on.observe(later, due, reachable=up)
            back = restored.observe(later, due, reachable=up)
            assert judged(back) == judged(on), later
            compared += 1
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
    assert compared > 30_000


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
    assert compared > 10_000


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


def test_a_corrupt_store_is_read_without_failing() -> None:
    """Times at the ends of ``datetime``'s range, a list where a mapping belongs, day keys
    that are digits but no numbers: dropped, and the restored detector polls and judges."""
    home = learned_home(3)
    stored = home.detector.export()
    times = [name.lstrip("_") for name, kind in KEPT.items() if kind == "time"]
    for extreme in ("0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00"):
        corrupt = {
            **stored,
            **dict.fromkeys(times, extreme),
            "seen": {"Hall": extreme},
            "busy_moves": {"Hall": [extreme]},
            "pending": {"sensor_id": "Hall", "at": extreme, "kind": "motion", "ongoing": False},
            "history": {**stored["history"], "wakes": {"²": 400}},
        }
        for zone in (UTC, bench.ZONE):
            detector = InactivityDetector.restore(corrupt, zone, now=home.now)
            assert detector.last_at is None
            assert detector._seen == {}
            detector.observe(home.now + POLL, [motion("Hall", home.now)])
            assert detector.verdict(home.now + POLL).last_activity == home.now
    for broken in ([1], {"history": [1]}, {"history": {"gaps": [1], "wakes": [2]}}):
        assert InactivityDetector.restore(broken, UTC).verdict(home.now).state == "unknown"  # type: ignore[arg-type]


def test_what_came_while_home_assistant_was_down_is_not_learned() -> None:
    """Home Assistant is down from 10:00 to 13:00; the first poll after it brings each
    sensor's latest change (the kitchen at 10:05, the living room at 12:00, the hall at
    12:55), not what came between: the silences between them are not learned, and the
    downtime is not counted as time watched. (A bridge outage of the same length learns
    nothing either.)"""
    home = learned_home(14)
    day = home.now
    home.run(
        day + timedelta(hours=10),
        [e for e in ordinary_day(day) if e.at <= day + timedelta(hours=10)],
    )
    gaps, profile = copy.deepcopy(home.detector.history.gaps.days), home.detector._profile
    watched = sum(profile(day).home_minutes)
    home.detector = restarted(home.detector)
    down = [(10, 5, "Kitchen"), (12, 0, "Living"), (12, 55, "Hall")]
    seen = [motion(room, day + timedelta(hours=h, minutes=m)) for h, m, room in down]
    home.now = day + timedelta(hours=13)
    home.detector.observe(home.now, seen)
    assert home.detector.history.gaps.days == gaps
    assert sum(home.detector._profile(day).home_minutes) == watched
    after = [motion("Kitchen", home.now + POLL), motion("Living", home.now + 10 * POLL)]
    home.run(day + timedelta(hours=13, minutes=20), after)
    assert home.detector.history.gaps.days != gaps  # watching again: learning again


def test_a_motion_sensor_the_bridge_cannot_reach_is_no_room_to_wait_for() -> None:
    """A home with a door and two motion sensors: the hall's, beside the door, and the living
    room's. The hall's battery died two days ago, and the bridge says it cannot reach it. The
    person goes out and comes back through the door, is seen once in the living room and
    falls: the return is seen (the one sensor still reached is the one room to wait for) and
    the fall caught, with or without a restart. While the bridge reaches both, one movement in
    the living room (a cat) ends no absence."""
    seen = ("Hall", "Living", "door")
    died = MONDAY + timedelta(days=10)
    lived = [
        e
        for n in range(12)
        for e in with_a_door(MONDAY + timedelta(days=n))
        if e.sensor_id in seen and (e.sensor_id != "Hall" or e.at < died)
    ]
    day = MONDAY + timedelta(days=12)
    morning = [motion("Living", day + timedelta(hours=7, minutes=m)) for m in range(0, 150, 10)]
    out, back = day + timedelta(hours=10), day + timedelta(hours=12)
    for restart in (False, True):
        for hall_reached in (False, True):
            home = Home()
            sensors = {"Living": True, "door": True}
            polls = minute_polls([*lived, *morning], MONDAY, day + timedelta(hours=9, minutes=30))
            for now, due, _ in polls:
                sensors["Hall"] = now < died + timedelta(hours=6) or hall_reached
                home.detector.observe(now, due, sensors=sensors)
            home.now = polls[-1][0]
            if restart:
                home.detector = restarted(home.detector)
            trip = [door(out), door(back), motion("Living", back + timedelta(minutes=2))]
            verdicts = []
            for now, due, _ in minute_polls(trip, home.now, day + timedelta(hours=18)):
                verdicts.append(home.detector.observe(now, due, sensors=sensors))
            alarm = first_inactive(verdicts)
            if hall_reached:
                assert alarm is None, restart
                assert verdicts[-1].away
            else:
                assert alarm is not None, restart
                assert alarm.since == back + timedelta(minutes=2)


def test_a_lone_sensor_run_goes_on_across_a_restart() -> None:
    """After a fall at 10:00 only the kitchen's sensor fires (a cat), every 25 minutes; Home
    Assistant restarts at noon. The lone run is still counted from the fall, and the alarm
    comes when it would have come without the restart."""
    day = MONDAY + timedelta(days=14)
    fall = day + timedelta(hours=10)
    before = [e for e in ordinary_day(day) if e.at <= fall]
    cat = [motion("Kitchen", fall + timedelta(minutes=m)) for m in range(15, 600, 25)]
    noon, alarms = fall + timedelta(hours=2), []
    for restart in (False, True):
        home = learned_home()
        home.run(noon, [e for e in before + cat if e.at <= noon])
        if restart:
            home.detector = restarted(home.detector)
        later = [e for e in cat if e.at > noon]
        alarms.append(first_inactive(home.run(fall + timedelta(hours=9), later)))
    assert alarms[0] is not None
    assert alarms[0].reason == "one_sensor"
    assert alarms[1] == alarms[0]


def test_a_return_seen_in_one_room_is_completed_across_a_restart() -> None:
    """Back from an outing through the door, the person is seen in the living room (the hall's
    sensor missed them); Home Assistant restarts; then the kitchen, the second room that tells
    someone is back, and a fall there. The return is complete and the fall caught as without
    the restart, not taken for an absence going on."""
    day = MONDAY + timedelta(days=14)
    out, back = day + timedelta(hours=14), day + timedelta(hours=17)
    morning = [e for e in with_a_door(day) if e.at <= out]
    alarms = []
    for restart in (False, True):
        home = lived_with_a_door()
        home.run(back + timedelta(minutes=5), [*morning, door(back), motion("Living", back + POLL)])
        assert home.verdict.away
        if restart:
            home.detector = restarted(home.detector)
        kitchen = motion("Kitchen", back + timedelta(minutes=10))
        alarms.append(first_inactive(home.run(back + timedelta(hours=6), [kitchen])))
    assert alarms[0] is not None
    assert alarms[0].since == back + timedelta(minutes=10)
    assert alarms[1] == alarms[0]


def lived_with_a_door(days: int = 14) -> Home:
    home = Home()
    lived = [e for n in range(days) for e in with_a_door(MONDAY + timedelta(days=n))]
    home.run(MONDAY + timedelta(days=days), lived)
    return home


def test_a_stored_future_is_dropped() -> None:
    """A store whose times lie ahead (a flipped digit: 2036 for 2026) would end no silence:
    every movement would be "reported late". Given the time of the restart, what lies after
    it is dropped: of the state in progress and of the history."""
    home = learned_home(3)
    stored = home.detector.export()
    ahead = (home.now + timedelta(days=3650)).isoformat()
    future_day = str(home.now.toordinal() + 3650)
    stored |= {"last_at": ahead, "up_day": home.now.toordinal() + 3650, "seen": {"Hall": ahead}}
    stored["history"]["wakes"][future_day] = 420.0
    detector = InactivityDetector.restore(stored, UTC, now=home.now)
    assert detector.last_at is None
    assert detector._up_day is None
    assert "Hall" not in detector._seen
    assert home.now.toordinal() + 3650 not in detector.history.wakes
    assert detector.history.wakes  # what was learned before stays
    fall = home.now + timedelta(hours=10)
    detector.observe(fall, [motion("Kitchen", fall - POLL)])
    later = fall + timedelta(hours=8)
    assert detector.observe(later, []).inactive
