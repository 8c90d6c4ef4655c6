"""The inactivity detector: learns only from completed gaps at home, tells away by a door not
followed by a motion start, follows the home's own morning, judges night visits per room, sees
through a lone sensor, and reports low-activity days apart from alarms."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, time, timedelta
import itertools

import pytest

from custom_components.hpoll.activity.detector import (
    ACTIVE,
    AWAY,
    DAY_PRIOR,
    INACTIVE,
    RESTING,
    UNKNOWN,
    InactivityDetector,
    Verdict,
)
from custom_components.hpoll.activity.history import ANY, DayProfile, History
from custom_components.hpoll.activity.tracker import ActivityEvent
from relay.schema import MAX_LIMIT_MINUTES, VERDICT_REASONS, VERDICT_STATES

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)
POLL = timedelta(minutes=1)


def motion(sensor: str, at: datetime, *, on: bool = True, seen: bool = False) -> ActivityEvent:
    """A motion change of the sensor in the room of the same name (``on``: a start; an end
    whose start a poll ``seen`` is ``ongoing``, as the tracker reports it)."""
    return ActivityEvent(sensor, sensor, at, "motion", ongoing=seen, motion_on=on)


def door(at: datetime) -> ActivityEvent:
    return ActivityEvent("door", "Hall", at, "contact")


class Home:
    """Feeds a detector poll by poll, each poll with the events since the previous one."""

    def __init__(self, **options: object) -> None:
        self.detector = InactivityDetector(UTC, **options)  # type: ignore[arg-type]
        self.now = MONDAY
        self.verdict: Verdict = self.detector.verdict(self.now)

    def run(
        self, until: datetime, events: Iterable[ActivityEvent] = (), *, reachable: bool = True
    ) -> list[Verdict]:
        pending = sorted(events, key=lambda e: e.at)
        seen = []
        while self.now < until:
            self.now += POLL
            due = [e for e in pending if e.at <= self.now]
            pending = pending[len(due) :]
            self.verdict = self.detector.observe(self.now, due, reachable=reachable)
            seen.append(self.verdict)
        return seen


def ordinary_day(day: datetime, *, wake: float = 7.0, bed: float = 22.5) -> list[ActivityEvent]:
    """Up at ``wake``, a movement every 20 minutes between rooms, a bathroom trip at 3:00
    through the hall, to bed through the hall into the bedroom."""
    events = []
    t = day + timedelta(hours=wake)
    rooms = ["Kitchen", "Hall", "Living"]
    i = 0
    while t < day + timedelta(hours=bed):
        events.append(motion(rooms[i % 3], t))
        i += 1
        t += timedelta(minutes=20 if i % 2 else 2)
    trip = day + timedelta(days=1, hours=3)
    events += [
        motion("Hall", trip),
        motion("Bathroom", trip + timedelta(minutes=1)),
        motion("Bathroom", trip + timedelta(minutes=6)),
        motion("Hall", trip + timedelta(minutes=8)),
        motion("Bedroom", trip + timedelta(minutes=9)),
    ]
    bedtime = day + timedelta(hours=bed)
    return [*events, motion("Hall", bedtime), motion("Bedroom", bedtime + timedelta(minutes=1))]


def learned_home(days: int = 14, **day: float) -> Home:
    """``days`` ordinary days lived (the last night's trip is left for the test)."""
    home = Home()
    starts = [MONDAY + timedelta(days=n) for n in range(days)]
    lived = [e for start in starts for e in ordinary_day(start, **day)]
    end = MONDAY + timedelta(days=days)
    home.run(end, [e for e in lived if e.at <= end])
    return home


def first_inactive(verdicts: Iterable[Verdict]) -> Verdict | None:
    return next((v for v in verdicts if v.inactive), None)


def minutes_to_alarm(verdicts: list[Verdict]) -> int | None:
    """Polls (minutes) from the start of a run to its first alarm."""
    return next((n + 1 for n, v in enumerate(verdicts) if v.inactive), None)


def test_a_silence_by_day_is_caught_and_does_not_feed_its_own_limit() -> None:
    home = learned_home()
    day = MONDAY + timedelta(days=14)
    before = [e for e in ordinary_day(day) if e.at <= day + timedelta(hours=10)]
    last = before[-1].at
    home.run(last, before)
    limit = home.detector._gap_limit(last, "Living")
    verdicts = home.run(last + timedelta(hours=6))
    alarm = first_inactive(verdicts)
    assert alarm is not None
    assert alarm.reason == "unusual_gap"
    assert alarm.since == last
    assert alarm.limit is not None
    # Caught within the home's own (learned) limit, well before the 3 h safety net.
    assert alarm.limit < timedelta(hours=2)
    assert not alarm.learning
    # Six hours of silence later the limit has not grown: the ongoing gap is not a sample.
    home.detector._cache.clear()
    assert home.detector._gap_limit(last, "Living") == limit


def test_a_day_out_is_away_and_never_learned() -> None:
    home = learned_home(8)
    day = MONDAY + timedelta(days=8)
    leave = day + timedelta(hours=10)
    # The hall's motion ends 20 s after the door closes: the one leaving, not someone inside.
    out = [motion("Hall", leave - timedelta(minutes=1)), door(leave)]
    out.append(motion("Hall", leave + timedelta(seconds=20), on=False, seen=True))
    home.run(leave + timedelta(hours=1), [e for e in ordinary_day(day) if e.at < leave] + out)
    assert (home.verdict.state, home.verdict.away, home.verdict.since) == (AWAY, True, leave)
    before = home.detector.history.gaps.per_day_maxima(20, ANY)
    back = leave + timedelta(hours=7)
    verdicts = home.run(back + timedelta(minutes=5), [door(back), motion("Hall", back)])
    assert first_inactive(verdicts) is None
    assert home.verdict.state == ACTIVE
    # Seven hours out are no gap of this home's: nothing that long was learned.
    assert max(home.detector.history.gaps.per_day_maxima(20, ANY)) == max(before)


def test_a_pet_in_one_room_does_not_end_an_absence() -> None:
    home = learned_home(8)
    leave = home.now + timedelta(hours=10)
    home.run(leave, [motion("Hall", leave - timedelta(minutes=1)), door(leave)])
    cat = [motion("Living", leave + timedelta(minutes=m)) for m in range(30, 300, 40)]
    home.run(leave + timedelta(hours=5), cat)
    assert home.verdict.state == AWAY


def test_the_morning_edge_follows_the_home() -> None:
    home = learned_home()
    day = MONDAY + timedelta(days=14)
    # Asleep at 8:00 is usual for nobody here (up at 7), but still within the margin.
    verdicts = home.run(day + timedelta(hours=7, minutes=30))
    assert {v.state for v in verdicts[-60:]} == {RESTING}
    alarm = first_inactive(home.run(day + timedelta(hours=12)))
    assert alarm is not None
    assert alarm.reason == "not_up"
    assert alarm.since is not None
    assert alarm.since.date() == (day - timedelta(days=1)).date()  # the night's last activity


def test_a_late_riser_is_not_alarmed_at_seven() -> None:
    home = learned_home(wake=9.5, bed=23.5)
    day = MONDAY + timedelta(days=14)
    trip = [e for e in ordinary_day(day - timedelta(days=1)) if e.at >= day]
    assert first_inactive(home.run(day + timedelta(hours=9, minutes=45), trip)) is None


def test_a_long_night_trip_is_not_the_wake_up() -> None:
    """A quarter of an hour in the bathroom before dawn, then back to bed: the day has not
    begun, so a person who then does not get up is "not up" at the usual margin, not left to
    the safety net hours later."""
    home = learned_home()
    day = MONDAY + timedelta(days=14)
    trip = day + timedelta(hours=5, minutes=30)
    steps = [("Hall", 0), *(("Bathroom", m) for m in (1, 5, 9, 13)), ("Hall", 15), ("Bedroom", 16)]
    events = [motion(room, trip + timedelta(minutes=m)) for room, m in steps]
    assert home.now == day
    verdicts = home.run(day + timedelta(hours=12), events)
    alarm = first_inactive(verdicts)
    assert alarm is not None
    assert alarm.reason == "not_up"
    assert (minutes_to_alarm(verdicts) or 0) < 10 * 60  # before the 3 h net after 07:00
    assert home.detector._cycle(trip)[0] not in home.detector.history.wakes


def test_a_long_bathroom_visit_at_night_is_caught() -> None:
    home = learned_home()
    day = MONDAY + timedelta(days=14)
    trip = day + timedelta(hours=3)
    home.run(trip + timedelta(minutes=2), [motion("Hall", trip), motion("Bathroom", trip)])
    alarm = first_inactive(home.run(trip + timedelta(hours=4)))
    assert alarm is not None
    assert (alarm.reason, alarm.since) == ("unusual_gap", trip)
    assert alarm.limit is not None
    assert alarm.limit <= timedelta(minutes=90)  # bathroom visits here last ten minutes


def test_sleep_after_a_night_visit_is_no_alarm() -> None:
    home = learned_home()
    day = MONDAY + timedelta(days=14)
    assert first_inactive(home.run(day + timedelta(hours=7, minutes=30), ordinary_day(day))) is None


def test_an_unseen_last_step_back_to_bed_is_no_alarm() -> None:
    """Back from the bathroom through the hall, the bedroom sensor misses the last steps: the
    hall is this home's way to bed, so the silence is judged as sleep (and the morning edge
    watches it). Getting up into the hall and staying there is still a night visit."""
    home = learned_home()
    assert home.detector.history.ways_to_bed() == {"Hall"}
    day = MONDAY + timedelta(days=14)
    trip = day + timedelta(hours=3)
    back = [motion("Hall", trip), motion("Bathroom", trip + timedelta(minutes=1))]
    back.append(motion("Hall", trip + timedelta(minutes=8)))
    morning = [e for e in ordinary_day(day) if e.at >= day + timedelta(hours=7)]
    assert first_inactive(home.run(day + timedelta(hours=8), back + morning)) is None
    night = day + timedelta(days=1, hours=3)
    home.run(night - timedelta(hours=1), ordinary_day(day))
    up = [motion("Bedroom", night - timedelta(minutes=1)), motion("Hall", night)]
    alarm = first_inactive(home.run(night + timedelta(hours=3), up))
    assert alarm is not None
    assert (alarm.reason, alarm.since) == ("unusual_gap", night)


def test_the_bedroom_firing_alone_after_a_night_trip_is_the_person_in_bed() -> None:
    """The hall missed the way back: only the bedroom, alone, says the bathroom visit is over.
    A sensor where the nights are slept, firing alone, is the person in bed, not a pet."""
    home = learned_home()
    day = MONDAY + timedelta(days=14)
    trip = day + timedelta(hours=3)
    steps = [("Hall", 0), ("Bathroom", 1), ("Bathroom", 6), ("Bedroom", 12), ("Bedroom", 90)]
    events = [motion(room, trip + timedelta(minutes=m)) for room, m in steps]
    events += [e for e in ordinary_day(day) if e.at >= day + timedelta(hours=7)]
    assert first_inactive(home.run(day + timedelta(hours=8), events)) is None


def test_a_lone_movement_at_night_is_the_person_where_no_pet_is_seen() -> None:
    """The bathroom has no sensor: a night trip is the hall alone, then nothing. Once the home
    is learned and no pet has shown, that lone movement is the person up, and a stay far
    longer than a night visit there is an alarm (not left to the morning)."""
    home = learned_home()
    assert not home.detector._pet_sensors()[1]
    night = MONDAY + timedelta(days=14, hours=3)
    alarm = first_inactive(home.run(night + timedelta(hours=3), [motion("Hall", night)]))
    assert alarm is not None
    assert (alarm.reason, alarm.since) == ("unusual_gap", night)


def test_a_lone_sensor_firing_for_hours_is_seen_through() -> None:
    home = learned_home()
    day = MONDAY + timedelta(days=14)
    fall = day + timedelta(hours=10)
    before = [e for e in ordinary_day(day) if e.at <= fall]
    cat = [motion("Kitchen", fall + timedelta(minutes=m)) for m in range(15, 600, 25)]
    alarm = first_inactive(home.run(fall + timedelta(hours=9), before + cat))
    assert alarm is not None
    assert alarm.reason == "one_sensor"
    assert alarm.since is not None
    assert alarm.since <= fall


def test_the_first_days_night_leans_on_the_prior() -> None:
    """Up at five on every other day: on the third or fourth day that is half the days known,
    yet the night does not end at five for it (the days are few, and the night leans on
    22:00-07:00 as the limits lean on their defaults); after four weeks of it, it does."""

    def lived(days: int) -> Home:
        home = Home()
        events = []
        for n in range(days):
            day = MONDAY + timedelta(days=n)
            events += ordinary_day(day)
            if n % 2:
                for minute in range(10, 90, 20):
                    early = day + timedelta(hours=5, minutes=minute)
                    events += [motion("Kitchen", early), motion("Hall", early + POLL)]
        end = MONDAY + timedelta(days=days)
        home.run(end, [e for e in events if e.at <= end])
        return home

    half_past_five = 11
    assert lived(4).detector._night(half_past_five)
    assert not lived(28).detector._night(half_past_five)


def test_a_late_risers_first_days_are_not_alarmed_at_seven() -> None:
    """Up at nine, in bed from 22:30 (the quietest half hour is midnight): the quiet
    07:00-09:00 is night from the third day on (the prior night only ever holds a half hour
    in the night, never keeps a quiet one out of it), and a turn in bed at 07:10 is followed
    by no `not_up` before getting up (the prior wake-up is not before its own clock time,
    09:30, five and a half hours from its own quietest hour, 04:00, not from midnight)."""
    home = learned_home(days=5, wake=9.0)
    day = MONDAY + timedelta(days=5)
    assert home.detector._night(15)  # 07:30
    until = day + timedelta(hours=9, minutes=30)
    events = [*ordinary_day(day, wake=9.0), motion("Bedroom", day + timedelta(hours=7, minutes=10))]
    verdicts = home.run(until, [e for e in events if e.at < until])
    assert first_inactive(verdicts) is None


def test_the_wake_prior_is_never_earlier_than_its_own_and_follows_a_day_sleeper(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before any wake-up is known, the morning edge is the prior's (up 330 min after the
    quietest half hour, plus two margins): from a quietest hour at midnight, not before the
    prior's own clock time (09:30, an edge at 11:00); from one by day (a night worker asleep
    from 07:00), 330 min after it, never a clock time of the night-time prior."""
    edges = {}
    for slot in (0, 8, 20):
        detector = InactivityDetector(UTC)
        monkeypatch.setattr(detector, "_quiet_slot", lambda slot=slot: slot)
        edges[slot] = detector._wake_due() + slot * 30
    assert edges == {0: 660, 8: 660, 20: 600 + 420}


def test_blind_while_the_bridge_is_unreachable() -> None:
    home = learned_home(3)
    verdicts = home.run(home.now + timedelta(hours=8), reachable=False)
    assert {(v.state, v.reason) for v in verdicts} == {(UNKNOWN, "unreachable")}


def test_learning_uses_priors_from_the_first_day() -> None:
    home = Home()
    start = MONDAY + timedelta(hours=8)
    home.run(start, [motion("Kitchen", start - timedelta(minutes=1))])
    alarm = first_inactive(home.run(start + timedelta(hours=4)))
    assert alarm is not None
    assert alarm.learning
    assert alarm.confidence < 0.2


def test_the_safety_net_counts_from_the_end_of_quiet_hours() -> None:
    home = Home(safety_net=timedelta(hours=1), quiet_hours=(time(22), time(7)))
    home.run(MONDAY + timedelta(hours=1), [motion("Hall", MONDAY + timedelta(minutes=30))])
    verdicts = home.run(MONDAY + timedelta(hours=8, minutes=30))
    nets = [v for v in verdicts if v.reason == "safety_net"]
    assert nets
    assert home.now - timedelta(minutes=30) <= MONDAY + timedelta(hours=8, minutes=1)


def test_a_day_of_little_activity_is_flagged_not_alarmed() -> None:
    home = learned_home()
    day = MONDAY + timedelta(days=14)
    # Ill: up late, a movement an hour between the same two rooms.
    slow = [
        motion("Living" if h % 2 else "Kitchen", day + timedelta(hours=h)) for h in range(9, 21)
    ]
    verdicts = home.run(day + timedelta(hours=20, minutes=30), slow)
    assert any(v.low_activity_today for v in verdicts)
    ordinary = learned_home()
    usual = ordinary.run(day + timedelta(hours=20), ordinary_day(day))
    assert not any(v.low_activity_today for v in usual)


def test_restore_keeps_what_was_learned() -> None:
    home = learned_home(8)
    restored = InactivityDetector.restore(home.detector.export(), UTC)
    when = MONDAY + timedelta(days=8, hours=10)
    assert restored._gap_limit(when, "Living") == home.detector._gap_limit(when, "Living")
    assert restored.history.wakes == home.detector.history.wakes
    broken = InactivityDetector.restore(
        {"history": {"gaps": {"x": 1, "3": {"99": {"*": 1}}}, "wakes": "no"}, "last_at": 5}, UTC
    )
    assert broken.last_at is None
    assert broken.history.gaps.days == {}


def test_the_relay_schema_knows_every_state_and_reason() -> None:
    assert set(VERDICT_STATES) == {ACTIVE, RESTING, AWAY, INACTIVE, UNKNOWN}
    from custom_components.hpoll.activity.detector import REASONS

    assert set(VERDICT_REASONS) == {*REASONS, "no_activity", "unreachable"}
    report = learned_home(2).verdict.as_report()
    assert report["limit_minutes"] is None or report["limit_minutes"] <= MAX_LIMIT_MINUTES


def cat(start: datetime, end: datetime, room: str = "Kitchen") -> list[ActivityEvent]:
    """A cat moving ``room``'s sensor alone every 25 minutes, day and night."""
    count = int((end - start) / timedelta(minutes=25))
    return [motion(room, start + timedelta(minutes=7 + 25 * n)) for n in range(count)]


def test_a_cat_moving_one_sensor_day_and_night_does_not_hide_a_fall() -> None:
    home = Home()
    end = MONDAY + timedelta(days=14)
    lived = [e for n in range(14) for e in ordinary_day(MONDAY + timedelta(days=n))]
    home.run(end, [e for e in [*lived, *cat(MONDAY, end)] if e.at <= end])
    # The kitchen fires alone at night as often as by day: something else than the person.
    assert home.detector._restless() == {"Kitchen"}
    fall = end + timedelta(hours=10)
    pet = cat(end, fall + timedelta(hours=6))
    home.run(fall, [e for e in [*ordinary_day(end), *pet] if e.at <= fall])
    verdicts = home.run(fall + timedelta(hours=6), [e for e in pet if e.at > fall])
    alarm, minutes = first_inactive(verdicts), minutes_to_alarm(verdicts)
    assert alarm is not None
    assert alarm.since is not None
    assert alarm.since <= fall
    # As soon as a silence of this home's: the cat's movements are not the person's.
    assert alarm.reason == "unusual_gap"
    assert minutes is not None
    assert minutes <= 100


def test_an_evening_silence_in_the_living_room_is_not_bedtime() -> None:
    home = learned_home()
    day = MONDAY + timedelta(days=14)
    fall = day + timedelta(hours=21, minutes=45)
    home.run(fall, [e for e in ordinary_day(day) if e.at <= fall])
    verdicts = home.run(day + timedelta(days=1))
    alarm, minutes = first_inactive(verdicts), minutes_to_alarm(verdicts)
    # Nights here begin in the bedroom; the living room's silences last minutes, also at night.
    assert home.detector.history.sleep_rooms() == {"Bedroom"}
    assert alarm is not None
    assert alarm.reason == "unusual_gap"
    assert alarm.since is not None
    assert alarm.since <= fall
    assert minutes is not None
    assert minutes <= 180


def test_a_lone_movement_where_a_pet_comes_by_waits_for_a_second_sign() -> None:
    home = Home()
    end = MONDAY + timedelta(days=14)
    lived = [e for n in range(14) for e in ordinary_day(MONDAY + timedelta(days=n))]
    # A cat that visits the bathroom now and then, mostly at night; the kitchen is its own
    # place, moved night after night (what shows that a pet lives here).
    visits = [
        motion("Bathroom", MONDAY + timedelta(days=n, hours=1, minutes=30)) for n in range(14)
    ]
    visits += [
        motion("Kitchen", MONDAY + timedelta(days=n, hours=hour, minutes=10))
        for n in range(14)
        for hour in (0, 2, 4)
    ]
    home.run(end, [e for e in [*lived, *visits] if e.at <= end])
    fall = end + timedelta(hours=10)
    before = [e for e in ordinary_day(end) if e.at <= fall]
    once = motion("Bathroom", fall + timedelta(minutes=50))
    home.run(once.at + timedelta(minutes=5), [*before, once])
    assert home.detector.last_at is not None
    assert home.detector.last_at <= fall  # the silence did not end
    alarm = first_inactive(home.run(fall + timedelta(hours=6)))
    assert alarm is not None
    assert alarm.since is not None
    assert alarm.since <= fall
    # The same movement followed by a second one in that room is the person's.
    again = Home()
    again.run(end, [e for e in [*lived, *visits] if e.at <= end])
    twice = [once, motion("Bathroom", once.at + timedelta(minutes=4))]
    again.run(fall + timedelta(minutes=60), [*before, *twice])
    assert again.detector.last_at == twice[1].at


def test_a_movement_in_the_next_poll_vouches_for_a_lone_one() -> None:
    home = learned_home(3)
    trip = home.now + timedelta(hours=3)
    # The hall at 3:00, the bathroom two minutes later (the next poll): both the person's.
    home.run(
        trip + timedelta(minutes=5),
        [motion("Hall", trip), motion("Bathroom", trip + timedelta(minutes=2))],
    )
    assert not any("Hall" in sensors for sensors in home.detector.history.strays.values())


def test_sleep_rooms_and_restless_sensors_are_learned_from_counts() -> None:
    history = History()
    assert history.sleep_rooms() is None  # fewer than three nights: anywhere
    history.sleeps = {
        1: "Bedroom",
        2: "Bedroom",
        3: "Hall",
        4: "Bedroom",
        5: "Bedroom",
        6: "Living",
    }
    assert history.sleep_rooms() == {"Bedroom"}  # Hall and Living: 1 night in 6
    for day in range(1, 5):
        history.profiles[day] = DayProfile(home_minutes=[60.0] * 24)
        for _ in range(20):
            history.stray(day, "cat", night=True)
            history.stray(day, "cat", night=False)
        history.stray(day, "armchair", night=False)
        history.stray(day, "hall", night=True)
    # 8 hours of night: the cat alone as often at night as by day; one trip a night is a person.
    assert history.restless(8.0) == {"cat"}
    assert history.restless(8.0, 0.1, nightly=0.0) == {"cat", "hall"}
    history.ways = {1: "Hall", 2: "Hall", 3: "Bathroom"}
    assert history.ways_to_bed() == {"Hall"}  # the bathroom: 1 night in 3
    restored = History.restore(
        {
            **history.export(),
            "ways": {"4": 5, "x": "Hall", **{str(day): room for day, room in history.ways.items()}},
        }
    )
    assert (restored.sleeps, restored.strays) == (history.sleeps, history.strays)
    assert restored.ways == history.ways


def test_a_return_seen_by_one_lone_movement_ends_the_absence() -> None:
    home = Home()
    end = MONDAY + timedelta(days=14)
    lived = [e for n in range(14) for e in ordinary_day(MONDAY + timedelta(days=n))]
    # The hall moves alone now and then at night, in a home where a pet lives (the kitchen is
    # its place): a sensor the pet may visit, whose lone movements wait for a second sign.
    visits = [motion("Hall", MONDAY + timedelta(days=n, hours=1, minutes=30)) for n in range(14)]
    visits += [
        motion("Kitchen", MONDAY + timedelta(days=n, hours=hour, minutes=10))
        for n in range(14)
        for hour in (0, 2, 4)
    ]
    home.run(end, [e for e in [*lived, *visits] if e.at <= end])
    assert "Hall" in home.detector._pet_sensors()[1]
    leave = end + timedelta(hours=10)
    out = [motion("Hall", leave - timedelta(minutes=1)), door(leave)]
    home.run(leave + timedelta(minutes=5), out)
    assert home.verdict.state == AWAY
    # Back without a door change seen (it was taken as the leaving one, or missed): the hall
    # moves once, then nothing more (a fall). The absence ends and the silence is judged.
    back = leave + timedelta(hours=2)
    home.run(back + timedelta(minutes=5), [motion("Hall", back)])
    # ... and the hours away are no run of lone sensors: no alarm the moment they are back.
    assert (home.verdict.away, home.verdict.inactive, home.detector.last_at) == (False, False, back)
    assert first_inactive(home.run(back + timedelta(hours=8))) is not None


def outing_day(day: datetime, leave: float = 14.0, hours: float = 4.0) -> list[ActivityEvent]:
    """An ordinary day with an outing through the hall, in a home without a door sensor."""
    start, back = day + timedelta(hours=leave), day + timedelta(hours=leave + hours)
    inside = [e for e in ordinary_day(day) if not start <= e.at <= back]
    return sorted([*inside, motion("Hall", start), motion("Hall", back)], key=lambda e: e.at)


def test_without_a_door_sensor_learned_outings_do_not_trip_the_safety_net() -> None:
    home = Home()
    days = 10
    end = MONDAY + timedelta(days=days)
    lived = [e for n in range(days) for e in outing_day(MONDAY + timedelta(days=n))]
    home.run(end, [e for e in lived if e.at <= end])
    leave = end + timedelta(hours=14)
    home.run(leave + timedelta(minutes=1), [e for e in ordinary_day(end) if e.at < leave])
    home.run(leave + timedelta(minutes=2), [motion("Hall", leave + timedelta(minutes=1))])
    # Out for four and a half hours, as this home often is: no alarm, not even the net's.
    assert first_inactive(home.run(leave + timedelta(hours=4, minutes=30))) is None
    # A silence far longer than its outings is still caught, by the learned limit.
    alarm = first_inactive(home.run(leave + timedelta(hours=12)))
    assert alarm is not None
    assert alarm.reason == "unusual_gap"
    # While still learning, the net holds whatever was seen.
    early, second = Home(), MONDAY + timedelta(days=2)
    early.run(
        second + timedelta(hours=14, minutes=2),
        [e for e in lived if e.at < second]
        + [e for e in outing_day(second) if e.at <= second + timedelta(hours=14)],
    )
    alarm = first_inactive(early.run(second + timedelta(hours=17, minutes=5)))
    assert alarm is not None
    assert alarm.reason == "safety_net"


def test_while_learning_a_few_quiet_days_do_not_tighten_the_limits() -> None:
    home = learned_home(3)
    at = home.now + timedelta(hours=10)
    learned = home.detector.history.gaps.per_day_maxima(20, ANY)
    assert learned
    assert max(learned) < 60  # three days of short silences
    assert home.detector._gap_limit(at, "Living") == DAY_PRIOR


def armchair_morning(day: datetime) -> list[ActivityEvent]:
    """Up at 7 and about for 40 minutes, then the armchair, still until half past nine."""
    steps = [("Bedroom", 0), ("Hall", 1), ("Kitchen", 3), ("Hall", 20), ("Kitchen", 22)]
    steps += [("Kitchen", 38), ("Hall", 40), ("Living", 42)]
    morning = [motion(room, day + timedelta(hours=7, minutes=m)) for room, m in steps]
    rest = [e for e in ordinary_day(day) if e.at >= day + timedelta(hours=9, minutes=30)]
    return morning + rest


def armchair_home() -> Home:
    """A home that learned two weeks of armchair mornings."""
    home = Home()
    for n in range(14):
        start = MONDAY + timedelta(days=n)
        home.run(start + timedelta(days=1), armchair_morning(start))
    return home


def test_someone_up_and_still_in_the_armchair_is_not_taken_as_not_up() -> None:
    """Out of bed at 7 and into the armchair after a few minutes: too little to be the day's
    sustained start, yet the night is over (the latest presence is in the living room, by
    day): the silence is judged by this home's long morning silences, not as "not up"."""
    home = armchair_home()
    assert home.detector.history.sleep_rooms() == {"Bedroom"}
    day = MONDAY + timedelta(days=14)
    steps_up = (("Bedroom", 0), ("Hall", 1), ("Living", 3))
    up = [motion(room, day + timedelta(hours=7, minutes=m)) for room, m in steps_up]
    assert first_inactive(home.run(day + timedelta(hours=9, minutes=30), up)) is None
    alarm = first_inactive(home.run(day + timedelta(hours=13)))
    assert alarm is not None
    assert alarm.reason == "unusual_gap"


def test_someone_seen_up_stays_up_across_a_restart() -> None:
    """Up at 7 and into the armchair, then Home Assistant restarts: the day's "someone was up"
    is restored with what was learned, so the armchair's silence is still no "not up"."""
    home = armchair_home()
    day = MONDAY + timedelta(days=14)
    steps_up = (("Bedroom", 0), ("Hall", 1), ("Living", 3))
    up = [motion(room, day + timedelta(hours=7, minutes=m)) for room, m in steps_up]
    assert first_inactive(home.run(day + timedelta(hours=7, minutes=10), up)) is None
    home.detector = InactivityDetector.restore(home.detector.export(), UTC)
    verdicts = home.run(day + timedelta(hours=9, minutes=30))
    assert [v.reason for v in verdicts if v.inactive] == []


def test_lone_night_movements_are_no_pet_where_none_lives() -> None:
    """The bathroom has no sensor: every night trip is the hall alone, there and back. With no
    sensor moved night after night (no pet living here), the hall is no pet's place: a night
    stay beyond the hall is caught as a night visit, not left to the morning."""
    home = Home()
    for n in range(14):
        start = MONDAY + timedelta(days=n)
        lived = [e for e in ordinary_day(start) if e.at < start + timedelta(days=1)]
        trip = start + timedelta(days=1, hours=3)
        lived += [motion("Hall", trip), motion("Bedroom", trip + timedelta(minutes=12))]
        home.run(start + timedelta(days=1, hours=4), lived)
    # The hall alone at night, once a night, and never by day: as a pet coming by would be.
    assert "Hall" in home.detector.history.restless(8.0, 0.1, nightly=0.0)
    assert home.detector._pet_sensors()[:2] == (frozenset(), frozenset())
    night = home.now.replace(hour=3) + timedelta(days=1)
    home.run(night - timedelta(minutes=1))
    alarm = first_inactive(home.run(night + timedelta(hours=4), [motion("Hall", night)]))
    assert alarm is not None
    assert (alarm.reason, alarm.since) == ("unusual_gap", night)
    assert alarm.limit is not None
    assert alarm.limit <= timedelta(minutes=90)


def test_the_end_of_a_movement_in_the_room_left_behind_does_not_move_the_person_back() -> None:
    """Back from the bathroom: the hall starts seeing movement, and only then the bathroom's
    sensor goes quiet (its 10-40 s hold). The person is in the hall on the way to bed, not
    back in the bathroom: no night-visit alarm for the bathroom."""
    home = learned_home()
    day = MONDAY + timedelta(days=14)
    trip = day + timedelta(hours=3)
    events = [motion("Hall", trip), motion("Bathroom", trip + timedelta(minutes=1))]
    back = trip + timedelta(minutes=8)
    events += [motion("Hall", back), motion("Hall", back + timedelta(seconds=30), on=False)]
    events.append(motion("Bathroom", back + timedelta(seconds=30), on=False, seen=True))
    morning = [e for e in ordinary_day(day) if e.at >= day + timedelta(hours=7)]
    assert first_inactive(home.run(day + timedelta(hours=8), events + morning)) is None


def cat_home(room: str, days: int = 14, burst: int = 1) -> Home:
    """Ordinary days with a cat moving ``room`` every 37 minutes, day and night (``burst``
    times, three minutes apart)."""
    home = Home()
    end = MONDAY + timedelta(days=days)
    lived = [e for n in range(days) for e in ordinary_day(MONDAY + timedelta(days=n))]
    cat = [
        motion(room, MONDAY + timedelta(minutes=m + 3 * k))
        for m in range(5, days * 1440, 37)
        for k in range(burst)
    ]
    home.run(end, [e for e in sorted([*lived, *cat], key=lambda e: e.at) if e.at <= end])
    assert home.detector._restless() == {room}
    return home


def test_the_cat_stirring_as_the_person_goes_to_bed_is_not_the_person() -> None:
    """The person goes to bed through the hall; two minutes later the cat moves its kitchen.
    A movement elsewhere just BEFORE does not make the cat's the person's: the person is in
    bed, and the night passes without an alarm."""
    home = cat_home("Kitchen")
    day = home.now
    bed = day + timedelta(hours=22, minutes=30)
    evening = [e for e in ordinary_day(day) if e.at <= bed + timedelta(minutes=1)]
    home.run(bed + timedelta(minutes=2), evening)
    stir = motion("Kitchen", bed + timedelta(minutes=3))
    home.run(bed + timedelta(minutes=4), [stir])
    assert home.detector.last_at == bed + timedelta(minutes=1)
    morning = [motion("Bedroom", day + timedelta(days=1, hours=7))]
    assert first_inactive(home.run(day + timedelta(days=1, hours=7, minutes=5), morning)) is None


def test_a_person_in_the_cats_room_stays_there() -> None:
    """Two hours in the cat's living room, moving every eight minutes: the visit lasts as
    long as that sensor keeps moving, so no silence is imagined; once the person is seen in
    the hall, the cat's movements there are no visit any more."""
    home = cat_home("Living")
    day = home.now
    start = day + timedelta(hours=13)
    sit = [e for e in ordinary_day(day) if e.at < start - timedelta(minutes=5)]
    sit += [motion("Hall", start), motion("Living", start + timedelta(minutes=1))]
    sit += [motion("Living", start + timedelta(minutes=m)) for m in range(9, 120, 8)]
    assert first_inactive(home.run(start + timedelta(hours=2), sit)) is None
    assert home.detector.last_at == sit[-1].at
    out = start + timedelta(hours=2)
    home.run(out + timedelta(minutes=1), [motion("Hall", out)])
    home.run(out + timedelta(minutes=10), [motion("Living", out + timedelta(minutes=6))])
    assert home.detector.last_at == out


def test_a_night_trip_there_and_back_is_one_lone_stay() -> None:
    """A bathroom without a sensor: each night the hall moves alone on the way there, once
    more, and again on the way back. That is one trip a night, the person's, not a pet moving
    the hall night after night."""
    home = Home()
    for n in range(14):
        start = MONDAY + timedelta(days=n)
        lived = [e for e in ordinary_day(start) if e.at < start + timedelta(days=1)]
        trip = start + timedelta(days=1, hours=3)
        lived += [motion("Hall", trip + timedelta(minutes=m)) for m in (0, 4, 11)]
        lived.append(motion("Bedroom", trip + timedelta(minutes=16)))
        home.run(start + timedelta(days=1, hours=4), lived)
    assert home.detector._restless() == frozenset()
    night = home.now.replace(hour=3) + timedelta(days=1)
    home.run(night - timedelta(minutes=1))
    alarm = first_inactive(home.run(night + timedelta(hours=4), [motion("Hall", night)]))
    assert alarm is not None
    assert (alarm.reason, alarm.since) == ("unusual_gap", night)


def test_someone_up_then_back_in_bed_is_judged_by_the_day_limit() -> None:
    """Up at 7 for breakfast, back to bed ten minutes later (an ill day): the night ended when
    the kitchen saw the person, so the silence in the bedroom is a day silence of this home's
    (long mornings here), not "not up"."""
    home = armchair_home()
    day = MONDAY + timedelta(days=14)
    steps = (("Bedroom", 0), ("Hall", 1), ("Kitchen", 3), ("Hall", 8), ("Bedroom", 10))
    up = [motion(room, day + timedelta(hours=7, minutes=m)) for room, m in steps]
    assert first_inactive(home.run(day + timedelta(hours=9, minutes=30), up)) is None
    alarm = first_inactive(home.run(day + timedelta(hours=13)))
    assert alarm is not None
    assert alarm.reason == "unusual_gap"


def test_the_person_alone_in_a_bedroom_a_pet_also_visits_is_in_bed() -> None:
    """The cat lives in the kitchen and now and then comes by the bedroom too. The person
    goes to bed through the hall (the bedroom's sensor misses the last steps) and moves in
    bed at dawn, alone, twice. The bedroom is not the cat's own place: a lone movement there,
    confirmed, is the person in bed, and the night is judged as sleep, not as a run of lone
    sensors since the hall."""
    days = 14
    home = Home()
    end = MONDAY + timedelta(days=days)
    lived = [e for n in range(days) for e in ordinary_day(MONDAY + timedelta(days=n))]
    cat = [motion("Kitchen", MONDAY + timedelta(minutes=m)) for m in range(5, days * 1440, 37)]
    cat += [
        motion("Bedroom", MONDAY + timedelta(days=n, hours=hour))
        for n in range(days)
        for hour in (2.5, 14.5)
    ]
    home.run(end, [e for e in sorted([*lived, *cat], key=lambda e: e.at) if e.at <= end])
    restless, visited, _ = home.detector._pet_sensors()
    assert restless == {"Kitchen"}
    assert "Bedroom" in visited
    day = end
    evening = [e for e in ordinary_day(day) if e.at < day + timedelta(hours=22)]
    bedtime = [("Living", 29), ("Hall", 30)]
    evening += [motion(room, day + timedelta(hours=22, minutes=m)) for room, m in bedtime]
    dawn = day + timedelta(days=1, hours=6, minutes=30)
    in_bed = [motion("Bedroom", dawn), motion("Bedroom", dawn + timedelta(minutes=5))]
    verdicts = home.run(dawn + timedelta(minutes=15), [*evening, *in_bed])
    assert home.detector.last_at == dawn + timedelta(minutes=5)
    assert [(v.reason, v.since) for v in verdicts if v.inactive] == []


def cat_owners_day(day: datetime, bedroom: bool = True) -> list[ActivityEvent]:
    """An ordinary day, going to bed from the living room (``bedroom``: whether that room has
    a sensor)."""
    lived = [*ordinary_day(day), motion("Living", day + timedelta(hours=22, minutes=29))]
    return sorted((e for e in lived if bedroom or e.sensor_id != "Bedroom"), key=lambda e: e.at)


def visited_home(days: int = 14, *, bedroom: bool = True) -> Home:
    """Ordinary days with a cat: its kitchen every 37 minutes, day and night, and now and then
    (at 1:30 and 14:30) the bathroom and the hall. ``bedroom``: whether it has a sensor."""
    home = Home()
    end = MONDAY + timedelta(days=days)
    lived = [e for n in range(days) for e in cat_owners_day(MONDAY + timedelta(days=n), bedroom)]
    cat = [motion("Kitchen", MONDAY + timedelta(minutes=m)) for m in range(5, days * 1440, 37)]
    cat += [
        motion(room, MONDAY + timedelta(days=n, hours=hour, minutes=offset))
        for n in range(days)
        for hour in (1.5, 14.5)
        for room, offset in (("Bathroom", 0), ("Hall", 20))
    ]
    home.run(end, [e for e in sorted([*lived, *cat], key=lambda e: e.at) if e.at <= end])
    restless, visited, _ = home.detector._pet_sensors()
    assert restless == {"Kitchen"}
    assert {"Bathroom", "Hall"} <= visited
    return home


def test_a_visit_ends_when_the_person_arrives_elsewhere() -> None:
    """The person passes the hall into the living room; five minutes later the cat passes the
    hall. The hall's visit ended when the living room saw the person arrive: the cat's
    movement there continues nothing and waits for a second sign."""
    home = visited_home()
    day = home.now
    start = day + timedelta(hours=10)
    before = [e for e in ordinary_day(day) if e.at < start - timedelta(minutes=5)]
    walk = [motion("Hall", start), motion("Living", start + timedelta(minutes=1))]
    home.run(start + timedelta(minutes=2), [*before, *walk])
    home.run(start + timedelta(minutes=7), [motion("Hall", start + timedelta(minutes=6))])
    assert home.detector.last_at == start + timedelta(minutes=1)
    assert home.detector._last_room == "Living"


def test_back_to_bed_where_the_bedroom_has_no_sensor_is_the_person() -> None:
    """No sensor in the bedroom, a cat that comes by the hall: back from the bathroom at
    night the person passes the hall once, four minutes after the bathroom's last movement.
    That lone movement is the person going back to bed, not a pet: the bathroom's visit is
    over (and not learned as hours long)."""
    home = visited_home(bedroom=False)
    assert home.detector.history.sleep_rooms() == {"Hall"}
    day = home.now
    evening = [e for e in cat_owners_day(day, bedroom=False) if e.at < day + timedelta(days=1)]
    home.run(day + timedelta(hours=23), evening)
    trip = day + timedelta(days=1, hours=3)
    steps = [motion("Hall", trip)]
    steps += [motion("Bathroom", trip + timedelta(minutes=m)) for m in (1, 6, 11)]
    back = motion("Hall", trip + timedelta(minutes=15))
    verdicts = home.run(trip + timedelta(hours=3), [*steps, back])
    assert home.detector.last_at == back.at
    assert [v.reason for v in verdicts if v.inactive] == []


def test_without_a_door_a_daily_nap_does_not_loosen_the_morning() -> None:
    """No door sensor; a two-hour nap in the living room every afternoon. A fall in the living
    room at 8:30 is caught by the morning's own limit, not the afternoon nap's."""
    home = Home()
    days = 14
    end = MONDAY + timedelta(days=days)

    def napping_day(day: datetime) -> list[ActivityEvent]:
        nap, up = day + timedelta(hours=14), day + timedelta(hours=16)
        inside = [e for e in ordinary_day(day) if not nap <= e.at <= up]
        return sorted([*inside, motion("Living", nap), motion("Living", up)], key=lambda e: e.at)

    lived = [e for n in range(days) for e in napping_day(MONDAY + timedelta(days=n))]
    home.run(end, [e for e in lived if e.at <= end])
    fall = end + timedelta(hours=8, minutes=30)
    morning = [e for e in ordinary_day(end) if e.at < fall - timedelta(minutes=5)]
    walk = [motion("Hall", fall - timedelta(minutes=1)), motion("Living", fall)]
    alarm = first_inactive(home.run(fall + timedelta(hours=4), [*morning, *walk]))
    assert alarm is not None
    assert alarm.since == fall
    assert alarm.reason == "unusual_gap"
    assert alarm.limit is not None
    assert alarm.limit < timedelta(hours=2)


def night_in_a_visited_home() -> tuple[Home, datetime]:
    """A home a cat comes by (``visited_home``, the bedroom with a sensor), its evening lived
    up to 23:00; and 3:00 the next night, when the person goes to the bathroom."""
    home = visited_home()
    day = home.now
    evening = [e for e in cat_owners_day(day) if e.at < day + timedelta(days=1)]
    home.run(day + timedelta(hours=23), evening)
    return home, day + timedelta(days=1, hours=3)


def test_a_pet_crossing_the_hall_does_not_end_a_fall_in_the_bathroom() -> None:
    """The bedroom has a sensor; a cat comes by the hall. At 3:00 the person goes to the
    bathroom and falls there; six minutes later the cat crosses the hall. That is not the
    person going back to bed: the bathroom's silence is caught at night, within the hour."""
    home, trip = night_in_a_visited_home()
    fall = trip + timedelta(minutes=6)
    steps = [motion("Hall", trip), motion("Bathroom", trip + timedelta(minutes=1))]
    steps += [motion("Bathroom", fall), motion("Hall", fall + timedelta(minutes=6))]
    alarm = first_inactive(home.run(fall + timedelta(hours=1), steps))
    assert alarm is not None
    assert alarm.since is not None
    assert trip <= alarm.since <= fall


def test_a_dimmer_does_not_keep_a_home_away_after_its_return() -> None:
    """A door in the hall, one motion sensor in the living room and a dimmer pressed in the
    morning. Back from an outing, the person moves in the living room: the home is back (the
    dimmer is no second room to wait for), and a fall then is caught."""
    home = Home()
    left = MONDAY + timedelta(hours=10)
    dimmer = ActivityEvent("dimmer", None, MONDAY + timedelta(hours=8), "button")
    home.run(
        left + timedelta(hours=1), [dimmer, motion("Living", left - timedelta(hours=1)), door(left)]
    )
    assert home.verdict.away
    back = left + timedelta(hours=2)
    home.run(
        back + timedelta(minutes=5), [door(back), motion("Living", back + timedelta(minutes=1))]
    )
    assert not home.verdict.away
    assert first_inactive(home.run(back + timedelta(hours=8))) is not None


def test_a_button_beside_the_only_motion_sensor_vouches_for_nothing() -> None:
    """One motion sensor for the home and a dimmer switch pressed every morning: every
    movement is the person's (nothing else moves to vouch for it), so a fall at 11:00 is
    caught at the learned limit, long before the safety net."""
    home = Home()
    days = 14
    end = MONDAY + timedelta(days=days)

    def day_with_a_dimmer(day: datetime) -> list[ActivityEvent]:
        moves = [
            ActivityEvent("Living", "Living", e.at, "motion", motion_on=True)
            for e in ordinary_day(day)
        ]
        return [*moves, ActivityEvent("dimmer", None, day + timedelta(hours=8), "button")]

    lived = sorted(
        (e for n in range(days) for e in day_with_a_dimmer(MONDAY + timedelta(days=n))),
        key=lambda e: e.at,
    )
    home.run(end, [e for e in lived if e.at <= end])
    fall = end + timedelta(hours=11)
    morning = [e for e in day_with_a_dimmer(end) if e.at < fall]
    alarm = first_inactive(home.run(fall + timedelta(hours=4), morning))
    assert alarm is not None
    assert alarm.reason == "unusual_gap"
    assert alarm.limit is not None
    assert alarm.limit < timedelta(hours=2)


def through_the_hall(into: str) -> tuple[Home, datetime, list[ActivityEvent]]:
    """A home a cat comes by (``visited_home``), the next morning: the person passes the hall
    at 10:00 into ``into``, and the hall's movement ENDS a minute later (seen in the next
    poll). The home, 10:00, and the day's events up to that end (not yet run)."""
    home = visited_home()
    day = home.now
    start = day + timedelta(hours=10)
    before = [e for e in ordinary_day(day) if e.at < start - timedelta(minutes=5)]
    walk = [motion("Hall", start), motion(into, start + timedelta(minutes=1))]
    walk.append(motion("Hall", start + timedelta(minutes=2), on=False, seen=True))
    return home, start, [*before, *walk]


def test_the_end_of_a_movement_elsewhere_does_not_end_a_visit() -> None:
    """The person passes the hall into the bathroom (where the cat also comes by); the hall's
    movement ends; eight minutes after arriving the person moves in the bathroom again. The
    end says nobody arrived in the hall: the bathroom visit goes on, and that movement is the
    person's, not a lone one held as the cat's."""
    home, start, events = through_the_hall("Bathroom")
    again = motion("Bathroom", start + timedelta(minutes=9))
    home.run(again.at + timedelta(minutes=1), [*events, again])
    assert home.detector.last_at == again.at
    assert home.detector._last_room == "Bathroom"


def test_the_end_of_a_movement_in_the_room_left_renews_no_visit_there() -> None:
    """The person passes the hall into the living room; the hall's movement ends; nine
    minutes after that the cat passes the hall. The hall's end renewed no visit there (the
    person had left it): the cat's movement is a lone one, not the person's."""
    home, start, events = through_the_hall("Living")
    cat_passing = motion("Hall", start + timedelta(minutes=11))
    home.run(cat_passing.at + timedelta(minutes=1), [*events, cat_passing])
    assert home.detector.last_at != cat_passing.at
    assert home.detector._last_room == "Living"


def test_the_bedroom_going_quiet_vouches_for_no_pet_elsewhere() -> None:
    """The person goes to bed through the hall; a minute later the cat moves its kitchen, and
    in the same poll the bedroom's movement ENDS (its start was seen before). That end says the
    person settled in bed, not that someone came from the kitchen: the cat's movement is not
    the person's, and the night passes without an alarm."""
    home = cat_home("Kitchen")
    day = home.now
    bed = day + timedelta(hours=22, minutes=30)
    evening = [e for e in ordinary_day(day) if e.at <= bed + timedelta(minutes=1)]
    home.run(bed + timedelta(minutes=2), evening)
    stir = motion("Kitchen", bed + timedelta(minutes=2, seconds=10))
    settled = motion("Bedroom", bed + timedelta(minutes=2, seconds=40), on=False, seen=True)
    home.run(bed + timedelta(minutes=3), [stir, settled])
    assert home.detector._last_room == "Bedroom"
    morning = [motion("Bedroom", day + timedelta(days=1, hours=7))]
    assert first_inactive(home.run(day + timedelta(days=1, hours=7, minutes=5), morning)) is None


def sitting_with_the_cat(start: datetime, hours: float) -> list[ActivityEvent]:
    """Into the cat's living room through the hall at ``start``, then movements there alone,
    in pauses of 3 to 13 minutes (a book, a nap in the armchair): the visit lapses in every
    pause over ten minutes."""
    events = [motion("Hall", start), motion("Living", start + timedelta(minutes=1))]
    t, pauses = start + timedelta(minutes=1), (13, 4, 6, 3, 12, 5, 4, 11)
    n = 0
    while t < start + timedelta(hours=hours):
        t += timedelta(minutes=pauses[n % len(pauses)])
        events.append(motion("Living", t))
        n += 1
    return events


def test_someone_sitting_in_the_pets_room_is_seen_there() -> None:
    """The cat keeps the living room. The person sits there, moving every few minutes, now and
    then pausing for more than ten: far more often than the cat alone moves it (its nights say
    how often), so it is someone there, and two and a half hours raise no alarm. A whole
    afternoon with only that sensor moving is also what a cat upset beside a fallen person
    looks like: there the lone-sensor limit speaks, counted from the person's coming in."""
    home = cat_home("Living")
    day = home.now
    start = day + timedelta(hours=12)
    morning = [e for e in ordinary_day(day) if e.at < start - timedelta(minutes=5)]
    sit = sitting_with_the_cat(start, 5)
    verdicts = home.run(start + timedelta(hours=2, minutes=30), [*morning, *sit])
    assert [v.reason for v in verdicts if v.inactive] == []
    assert home.detector.last_at is not None
    assert home.now - home.detector.last_at <= timedelta(minutes=30)
    later = first_inactive(home.run(start + timedelta(hours=5), sit))
    assert later is not None
    assert later.reason == "one_sensor"


def test_a_busy_pet_does_not_hide_a_fall_elsewhere() -> None:
    """The person falls in the bathroom; an hour later the cat has a lively half hour in the
    living room, as busy as a person there. The person was last seen in the bathroom: the
    cat's place says nothing of them, and the fall is caught at the bathroom's limit."""
    home = cat_home("Living")
    day = home.now
    fall = day + timedelta(hours=10)
    morning = [e for e in ordinary_day(day) if e.at < fall - timedelta(minutes=5)]
    pet = [motion("Living", fall + timedelta(minutes=60 + 5 * k)) for k in range(7)]
    verdicts = home.run(fall + timedelta(hours=4), [*morning, motion("Bathroom", fall), *pet])
    alarm = first_inactive(verdicts)
    assert alarm is not None
    assert alarm.reason == "unusual_gap"
    assert alarm.since is not None
    assert alarm.since <= fall + timedelta(minutes=1)


def test_an_upset_pet_beside_a_fall_in_its_room_does_not_hide_it() -> None:
    """The person falls in the cat's living room and the cat, upset, moves it every three
    minutes, busier than any person sitting there: only that sensor moves, and the lone-sensor
    limit, counted from the person's coming in, raises the alarm."""
    home = cat_home("Living")
    day = home.now
    start = day + timedelta(hours=12)
    fall = start + timedelta(hours=1)
    morning = [e for e in ordinary_day(day) if e.at < start - timedelta(minutes=5)]
    sit = [e for e in sitting_with_the_cat(start, 1) if e.at <= fall]
    pet = [motion("Living", fall + timedelta(minutes=2 + 3 * k)) for k in range(200)]
    verdicts = home.run(fall + timedelta(hours=4), [*morning, *sit, *pet])
    alarm = first_inactive(verdicts)
    assert alarm is not None
    assert alarm.reason == "one_sensor"


def test_a_busy_pet_does_not_hide_a_fall_in_its_room() -> None:
    """A cat that plays in its living room in bursts: five movements in twelve minutes, every
    37 minutes, day and night. The person sits there, then falls: the cat alone goes on at
    its own pace, which its nights taught (a burst is no person here), so the fall is caught,
    not renewed at every burst."""
    home = cat_home("Living", burst=5)
    day = home.now
    start = day + timedelta(hours=12)
    fall = start + timedelta(hours=1)
    morning = [e for e in ordinary_day(day) if e.at < start - timedelta(minutes=5)]
    sit = [e for e in sitting_with_the_cat(start, 1) if e.at <= fall]
    pet = [
        motion("Living", fall + timedelta(minutes=m + 3 * k))
        for m in range(2, 600, 37)
        for k in range(5)
    ]
    verdicts = home.run(fall + timedelta(hours=6), [*morning, *sit, *pet])
    alarm = first_inactive(verdicts)
    assert alarm is not None
    assert alarm.since is not None
    assert alarm.since <= fall


def test_restore_keeps_how_often_the_pet_moves() -> None:
    home = cat_home("Living")
    restored = InactivityDetector.restore(home.detector.export(), UTC)
    assert restored._pet_sensors() == home.detector._pet_sensors()
    assert "Living" in restored._pet_sensors()[2]
    broken = History.restore({"moves": {"3": {"Living": -1, "Hall": 2}, "x": {}, "4": 5}})
    assert broken.moves == {3: {"Hall": 2}}


def test_a_pet_passing_after_a_night_fall_leaves_the_visit_judged() -> None:
    """The bedroom has a sensor; a cat comes by the hall. At 3:00 the person passes the hall
    into the bathroom and falls there at once; ten minutes later the cat crosses the hall.
    That movement, perhaps the cat's, does not make the night unjudged: the bathroom's visit
    is caught at its night limit, not at the morning."""
    home, trip = night_in_a_visited_home()
    fall = trip + timedelta(minutes=1)
    steps = [
        motion("Hall", trip),
        motion("Bathroom", fall),
        motion("Hall", fall + timedelta(minutes=11)),
    ]
    alarm = first_inactive(home.run(trip + timedelta(hours=3), steps))
    assert alarm is not None
    assert (alarm.reason, alarm.since) == ("unusual_gap", fall)


def hall_only_day(day: datetime) -> list[ActivityEvent]:
    """``ordinary_day`` where only the hall, the kitchen and the living room have sensors: to
    bed from the living room through the hall into a bedroom without one, and at 3:00 a night
    trip through the hall to a bathroom without one and back eight minutes later."""
    kept = [e for e in ordinary_day(day) if e.room not in ("Bathroom", "Bedroom")]
    return [*kept, motion("Living", day + timedelta(hours=22, minutes=29))]


def hall_only_home(days: int) -> tuple[Home, datetime]:
    """``days`` of ``hall_only_day``, and the next evening lived up to 3:00 the night after."""
    home = Home()
    end = MONDAY + timedelta(days=days)
    lived = [e for n in range(days) for e in hall_only_day(MONDAY + timedelta(days=n))]
    home.run(end, [e for e in lived if e.at <= end])
    assert home.detector.history.sleep_rooms() == {"Hall"}
    trip = end + timedelta(days=1, hours=3)
    evening = [e for e in [*lived, *hall_only_day(end)] if end < e.at < trip]
    home.run(trip - timedelta(minutes=1), evening)
    return home, trip


def test_a_fall_on_a_night_trip_through_the_hall_where_the_night_is_slept_is_caught() -> None:
    """Neither bedroom nor bathroom has a sensor, so the hall is where the nights are slept
    and a night trip is one movement there and one back. Getting up (a hall movement after
    the night's silence there, its end seen at the next poll) and then nothing is a fall on
    the way: caught within the hour, not at the morning; the same trip with its way back is
    sleep until the morning."""
    home, trip = hall_only_home(14)
    up = [motion("Hall", trip), motion("Hall", trip + timedelta(seconds=40), on=False, seen=True)]
    alarm = first_inactive(home.run(trip + timedelta(hours=3), up))
    assert alarm is not None
    assert (alarm.reason, alarm.since) == ("unusual_gap", trip + timedelta(seconds=40))
    assert alarm.limit is not None
    assert alarm.limit <= timedelta(hours=1)

    home, trip = hall_only_home(14)
    back = motion("Hall", trip + timedelta(minutes=8))
    verdicts = home.run(trip + timedelta(hours=3, minutes=55), [*up, back])
    assert [v.reason for v in verdicts if v.inactive] == []


def test_where_no_pet_lives_the_hall_passed_alone_to_bed_is_where_the_night_is_slept() -> None:
    """Neither bedroom nor bathroom has a sensor, and no pet lives here. Each evening the
    living room is left at about 22:00 and twenty minutes later the person passes the hall,
    alone (no other sensor within minutes), to bed; at 3:00 the hall again, to the bathroom
    and back. Once the nights show no pet (from the third day), those lone movements are the
    person's as much as any visit: the nights are slept beyond the hall, and the living room,
    where each day begins, is no place where they are slept (the first nights, learned before
    a pet could show, weigh less than a fifth of the history after two weeks)."""
    home = Home()
    lived = []
    for n in range(16):
        day = MONDAY + timedelta(days=n)
        bedtime = day + timedelta(hours=22)
        lived += [
            e
            for e in ordinary_day(day, bed=22.0)
            if e.room not in ("Bathroom", "Bedroom") and e.at != bedtime
        ]
        lived.append(motion("Hall", bedtime + timedelta(minutes=20)))
    home.run(MONDAY + timedelta(days=16), lived)
    assert home.detector._restless() == frozenset()
    assert home.detector.history.sleep_rooms() == {"Hall"}


def test_a_home_with_no_pet_after_three_days_has_its_lone_night_movements_judged() -> None:
    """Four days lived, no pet seen. At night the hall misses the person on the way to the
    bathroom, where they fall: the bathroom's lone movement is the person (a pet would have
    shown by now), so the fall is caught at the first week's cautious limit, not at the
    morning."""
    home = learned_home(4)
    trip = home.now + timedelta(days=1, hours=3)
    evening = [e for e in ordinary_day(home.now) if e.at < trip]
    home.run(trip - timedelta(minutes=1), evening)
    verdicts = home.run(trip + timedelta(hours=3, minutes=55), [motion("Bathroom", trip)])
    alarm = first_inactive(verdicts)
    assert alarm is not None
    assert alarm.learning
    assert (alarm.reason, alarm.since) == ("unusual_gap", trip)


def test_a_pets_movements_are_counted_per_night() -> None:
    """A cat moves the kitchen through one night, before and after midnight: that is one
    night of its movements (per calendar day it was two, and its rate half)."""
    home = Home()
    evening = MONDAY + timedelta(hours=21)
    cat = [motion("Kitchen", MONDAY + timedelta(hours=23, minutes=40 * k)) for k in range(10)]
    home.run(MONDAY + timedelta(days=1, hours=8), [motion("Hall", evening), *cat])
    assert home.detector.history.moves == {MONDAY.toordinal(): {"Kitchen": 10}}


def test_a_passage_no_poll_saw_begin_does_not_take_the_person_from_the_room_left_behind() -> None:
    """The living room's sensor sees the evening from 21:30; at 21:50 something crosses the
    hall so briefly that no poll sees it begin; at 22:05 the living room goes quiet (a fall).
    A passage a quarter of an hour earlier says nothing of where the person is now: the
    silence is the living room's, caught that evening, not judged as the way to bed."""
    home = learned_home()
    day = home.now
    evening = [e for e in ordinary_day(day) if e.at < day + timedelta(hours=21, minutes=20)]
    home.run(day + timedelta(hours=21, minutes=20), evening)
    steps = [
        motion("Living", day + timedelta(hours=21, minutes=30)),
        motion("Hall", day + timedelta(hours=21, minutes=50, seconds=30), on=False),
        motion("Living", day + timedelta(hours=22, minutes=5, seconds=30), on=False, seen=True),
    ]
    verdicts = home.run(day + timedelta(days=1, hours=2), steps)
    assert home.detector._last_room == "Living"
    assert minutes_to_alarm(verdicts) is not None


def test_a_turn_in_bed_is_no_getting_up_where_the_bedroom_has_a_sensor() -> None:
    """The bedroom's sensor sees the person get out of bed before each night's trip (the
    silence after it ends in the hall). One night they only turn over at 5:00 and sleep on
    until 7:00: the bedroom's silence is bed, not a night trip's way out."""
    home = Home()
    days = [MONDAY + timedelta(days=n) for n in range(15)]
    lived = [
        e
        for day in days
        for e in [*ordinary_day(day), motion("Bedroom", day + timedelta(days=1, hours=2.98))]
    ]
    test = days[-1] + timedelta(days=1)
    home.run(
        test + timedelta(hours=4, minutes=59),
        [e for e in lived if e.at < test + timedelta(hours=2)],
    )
    morning = [e for e in ordinary_day(test) if e.at < test + timedelta(hours=9)]
    verdicts = home.run(
        test + timedelta(hours=9), [motion("Bedroom", test + timedelta(hours=5)), *morning]
    )
    assert first_inactive(verdicts) is None


def test_a_silence_after_getting_up_leaves_the_safety_net_on_without_a_door_sensor() -> None:
    """A hall-only home without a door sensor whose person gets up at 4:00 every night and
    is next seen in the hall at 8:29: the silences after getting up are long (hours). One
    night the hall sees them get up at 4:00, then nothing: that silence's limit is no
    outing's, and the user's safety net (an hour after the quiet hours) still holds."""

    home = Home(safety_net=timedelta(hours=1))
    days = [MONDAY + timedelta(days=n) for n in range(15)]
    up, back = timedelta(hours=4), timedelta(hours=8, minutes=29)
    lived = [e for day in days for e in hall_only_day(day) if e.at - e.at.replace(hour=0) >= back]
    lived += [motion("Hall", day + at) for day in days[1:] for at in (up, back)]
    test = days[-1] + timedelta(days=1)
    home.run(test + timedelta(hours=3), [e for e in lived if e.at < test + timedelta(hours=3)])
    alarm = first_inactive(
        home.run(test + timedelta(hours=12), [motion("Hall", test + timedelta(hours=4))])
    )
    assert alarm is not None
    assert alarm.reason == "safety_net"


def test_a_lone_night_movement_on_the_way_to_bed_is_sleep_in_the_first_week() -> None:
    """Four days lived, no pet seen yet. At 2:00 the hall (the way to bed) sees a lone
    movement, then the night is quiet until the morning: in the first week that is no visit
    judged (a pet not shown yet, the person seen on the way back to bed), no alarm at 4:00."""
    home = learned_home(4)
    day = home.now
    home.run(
        day + timedelta(days=1), [e for e in ordinary_day(day) if e.at < day + timedelta(days=1)]
    )
    lone = motion("Hall", day + timedelta(days=1, hours=2))
    verdicts = home.run(day + timedelta(days=1, hours=6, minutes=59), [lone])
    assert home.detector.history.ways_to_bed() == {"Hall"}
    assert first_inactive(verdicts) is None


def test_a_person_back_in_the_cats_room_from_the_hall_is_not_taken_to_bed() -> None:
    """The cat keeps the living room, and the home goes to bed through the hall. Late in the
    evening the person steps into the hall and back into the living room (its movement seconds
    after the hall's, perhaps the cat's), and falls there; the bedroom's own sensor saw nothing.
    The silence is not judged as bed (which would wait for the morning) but by the rooms the
    person may be in: an alarm before midnight's first hours are over."""
    home = cat_home("Living")
    day = home.now
    evening = day + timedelta(hours=21)
    lived = [e for e in ordinary_day(day) if e.at < evening - timedelta(minutes=30)]
    sit = [motion("Hall", evening), motion("Living", evening + timedelta(seconds=30))]
    sit += [motion("Living", evening + timedelta(minutes=m)) for m in (8, 15)]
    turn = evening + timedelta(minutes=45)
    back = [motion("Hall", turn), motion("Living", turn + timedelta(seconds=20))]
    cat_after = [motion("Living", turn + timedelta(minutes=m)) for m in range(40, 12 * 60, 37)]
    home.run(turn + timedelta(minutes=2), [*lived, *sit, *back])
    assert home.detector._bed_bound() == "Bedroom"
    verdicts = home.run(turn + timedelta(hours=12), cat_after)
    alarm = first_inactive(verdicts)
    assert alarm is not None
    assert alarm.reason == "unusual_gap"
    assert alarm.since == turn
    minutes = minutes_to_alarm(verdicts)  # counted from two minutes after the turn
    assert minutes is not None
    assert minutes + 2 <= 4 * 60


def turning_home(turns: tuple[float, ...], *, trips: bool, on: bool) -> tuple[Home, datetime]:
    """15 days of ``ordinary_day`` (the bedroom has its own sensor; ``trips``: the 3:00 trip
    through the hall and back into the bedroom, or none), the person turning over in bed at
    ``turns`` (hours after midnight) every night, each turn seen by a poll as it began
    (``on``) or too brief for that: only its end. Lived up to 3:59 after the last night's
    trip."""
    home = Home()
    days = [MONDAY + timedelta(days=n) for n in range(15)]
    lived = []
    for day in days:
        night = day + timedelta(days=1)
        trip = (night + timedelta(hours=3), night + timedelta(hours=4))
        lived += [e for e in ordinary_day(day) if trips or not trip[0] <= e.at < trip[1]]
        lived += [motion("Bedroom", night + timedelta(hours=h), on=on) for h in turns]
    test = days[-1] + timedelta(days=1)
    home.run(test + timedelta(hours=3, minutes=59), [e for e in lived if e.at < test])
    assert home.detector.history.sleep_rooms() == {"Bedroom"}
    return home, test


def test_turns_in_bed_are_no_trips_where_the_bedroom_has_a_sensor() -> None:
    """The bedroom's own sensor sees the person turn over in bed at night, as the start of a
    movement or, when it is too brief for a poll, only its end. One night they turn over once
    at 4:00 and sleep on until 7:00: no alarm, however their nights went before. A second
    turn ten minutes after the first is no way back where the nights' trips come back into
    the bedroom through the hall (its sensor sees the bed); in a home with no night trips,
    neither is a turn half an hour after the one before (a trip's way back comes within
    minutes), nor restless turning (after a way back the night goes quiet again: the person
    is back in bed)."""
    cases = {"through the hall": (1.0, 1.0 + 10 / 60), "later": (1.0, 1.5)}
    cases["restless"] = (1.0, 1.0 + 10 / 60, 1.0 + 20 / 60)
    for (case, turns), on in itertools.product(cases.items(), (True, False)):
        home, test = turning_home(turns, trips=case == "through the hall", on=on)
        morning = [e for e in ordinary_day(test) if e.at < test + timedelta(hours=9)]
        turn = motion("Bedroom", test + timedelta(hours=4), on=on)
        verdicts = home.run(test + timedelta(hours=9), [turn, *morning])
        assert first_inactive(verdicts) is None, (case, on)


def night_trip_fall(day_of: Callable[[datetime], list[ActivityEvent]], hour: float) -> Verdict:
    """14 days of ``day_of``, the next evening, then a fall on the night trip at ``hour`` (a
    hall movement, its end seen at the next poll, then nothing): the first alarm after it."""
    home = Home()
    end = MONDAY + timedelta(days=14)
    lived = [e for n in range(14) for e in day_of(MONDAY + timedelta(days=n))]
    home.run(end, [e for e in lived if e.at <= end])
    trip = end + timedelta(days=1, hours=hour)
    home.run(trip - timedelta(minutes=1), [e for e in [*lived, *day_of(end)] if end < e.at < trip])
    up = [motion("Hall", trip), motion("Hall", trip + timedelta(seconds=40), on=False, seen=True)]
    alarm = first_inactive(home.run(trip + timedelta(hours=6), up))
    assert alarm is not None
    assert alarm.since == trip + timedelta(seconds=40)
    return alarm


def test_a_few_night_trips_by_the_kitchen_leave_the_trip_rule_on() -> None:
    """A hall-only home whose trip goes by the kitchen for a glass of water on 3 nights of 14
    (back into the hall from another room, as a trip into a bedroom with a sensor would come):
    still a hall-only home, whose fall on the way is caught within the hour."""

    def day_of(day: datetime) -> list[ActivityEvent]:
        lived = hall_only_day(day)
        if (day - MONDAY).days in (2, 6, 10):
            trip = day + timedelta(days=1, hours=3)
            lived = [e for e in lived if not trip <= e.at < trip + timedelta(minutes=30)]
            water = [("Hall", 0), ("Kitchen", 2), ("Hall", 8)]
            lived += [motion(room, trip + timedelta(minutes=m)) for room, m in water]
        return lived

    alarm = night_trip_fall(day_of, 3)
    assert alarm.limit is not None
    assert alarm.limit <= timedelta(hours=1)


def test_a_dawn_trip_close_to_waking_is_learned_as_a_trip() -> None:
    """A hall-only home whose one trip comes at 5:30, eight minutes there and back, and whose
    morning begins at 6:15: the way back is followed by the morning, not by a quiet night, and
    is still a way back; a fall on that trip is caught within the hour."""

    def day_of(day: datetime) -> list[ActivityEvent]:
        lived = [e for e in ordinary_day(day, wake=6.25) if e.room not in ("Bathroom", "Bedroom")]
        trip = day + timedelta(days=1, hours=5.5)
        night = day + timedelta(days=1, hours=2.9)
        lived = [e for e in lived if not night <= e.at < night + timedelta(minutes=36)]
        bedtime = motion("Living", day + timedelta(hours=22, minutes=29))
        return [*lived, bedtime, motion("Hall", trip), motion("Hall", trip + timedelta(minutes=8))]

    alarm = night_trip_fall(day_of, 5.5)
    assert alarm.limit is not None
    assert alarm.limit <= timedelta(hours=1)


def test_a_way_back_too_brief_for_a_poll_is_still_a_way_back() -> None:
    """A hall-only home whose way back from the bathroom passes the hall in seconds, between
    two polls: the poll sees only the end of that movement, not its start. It is a new
    movement all the same (its start was never seen), so the nights are learned as trips there
    and back, and a fall on the way is caught within the hour."""

    def day_of(day: datetime) -> list[ActivityEvent]:
        back = day + timedelta(days=1, hours=3, minutes=8)
        lived = [e for e in hall_only_day(day) if e.at != back]
        return [*lived, motion("Hall", back, on=False)]

    alarm = night_trip_fall(day_of, 3)
    assert alarm.limit is not None
    assert alarm.limit <= timedelta(hours=1)


def test_a_cat_too_rare_to_be_learned_makes_no_room_where_the_nights_are_slept() -> None:
    """A cat moves the kitchen alone once a night at 22:50 (and once by day): too rarely to be
    learned as a pet's place. The person sleeps in a bedroom with a sensor, or in a hall-only
    home beyond the hall, and comes out through it each morning, never through the kitchen.
    The cat's movement is no way to bed: the kitchen is no room where the nights are slept,
    and a fall there at 22:00, the cat passing at 22:50, is caught by its lone-sensor run
    within three hours, not left to the morning."""
    for day_of in (ordinary_day, hall_only_day):
        cat = []
        for n in range(16):
            day = MONDAY + timedelta(days=n)
            cat += [motion("Kitchen", day + timedelta(hours=h)) for h in (14, 22 + 50 / 60)]
        end = MONDAY + timedelta(days=14)
        lived = [e for n in range(14) for e in day_of(MONDAY + timedelta(days=n))]
        home = Home()
        home.run(end, [e for e in [*lived, *cat] if e.at <= end])
        assert home.detector._restless() == frozenset()
        assert "Kitchen" not in (home.detector.history.sleep_rooms() or ())
        fall = end + timedelta(hours=22)
        evening = [e for e in day_of(end) if e.at < fall - timedelta(minutes=1)]
        home.run(fall, [e for e in [*evening, *cat] if end < e.at < fall])
        home.run(fall + timedelta(minutes=1), [motion("Kitchen", fall)])
        later = home.run(fall + timedelta(hours=12), [e for e in cat if e.at > fall])
        minutes = minutes_to_alarm(later)
        assert minutes is not None
        assert minutes <= 180, day_of.__name__
