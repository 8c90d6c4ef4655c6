"""Inactivity detection on a second, independent model of daily life (not bench/inactivity.py's).

Each simulated person lives in a home of rooms (hall, kitchen, living room, bathroom, bedroom;
some without a sensor) and moves from room to room (a semi-Markov walk whose room choice
follows the time of day: meals, an armchair, the bathroom, bed). Inside a room, movement comes
in bouts; each room's motion sensor turns on at a bout's start and off 10-40 s after its end,
and 2 % of bouts are missed. Nights in bed with bathroom trips through the hall; naps; outings
through the front door (the door's contact changes as the person leaves and comes back);
holidays; illness days (much slower, in bed or the armchair); bridge outages of hours; local
time in Europe/Berlin across a DST change. A poll every POLL_MINUTES sees, as the integration's
tracker does, only each sensor's latest change and its state at the poll (a sensor stuck on adds
nothing after its start).

Household types: napper (long naps most days), pet (a cat keeps to its favourite room, now and
then another), outings (out once or twice a day), no_door (no contact sensor: outings are
silence), holidays (a 3-7 day trip), homebody (rarely goes out). Each home gets INCIDENTS
incidents at random days and moments at home (a night one when the moment falls in bed: it
happens on a bathroom trip); from then on the person makes no more movement (the pet does).

Detectors, polled with what the poll saw:
  * fixed: 3 h without activity outside quiet hours 22:00-07:00, off after a door (the rule the
    integration had; implemented here on its own);
  * detector: custom_components/hpoll/activity/detector.py (with its 3 h safety net).
False alarms: alarm episodes that begin before the incident, per home-day watched. An alarm that
began before the incident and still stands at it stays a false alarm (it was one when it was
raised) and detects the incident at the first poll after it (the caregiver is being alerted
about the home while the person lies there); such incidents are counted apart.
Low-activity days: illness days the detector flagged ("low activity today") / all illness days,
and normal days it flagged.

Printed JSON keys:
  homes, days, incidents, seed, poll_minutes
  <detector>_{mean,median,p90}_minutes, <detector>_missed, <detector>_false_alarms_per_home_day,
  <detector>_night_mean_minutes, <detector>_night_incidents, <detector>_worst_type_ratio,
  <detector>_alarm_standing_at_incident (incidents an earlier alarm was still on at)
  (worst household type's mean / the overall mean), <detector>_<type>_mean_minutes,
  <detector>_<type>_false_alarms_per_home_day, low_days_found, low_days, low_days_false,
  speedup_mean (fixed mean / detector mean, the baseline in the same run)
A missed incident (not detected in 24 h) counts as 1440 min. Environment: BENCH_SEED,
BENCH_HOMES_PER_TYPE (default 8), BENCH_DAYS (default 42); BENCH_DEBUG=1 prints each
detector false alarm (with what the detector had learned by then: its night, sleep rooms, way
to bed, pet sensors) and each incident's outcome to stderr (never to the JSON line).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
import json
import os
from pathlib import Path
import random
import statistics
import sys
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from custom_components.hpoll.activity.detector import InactivityDetector  # noqa: E402
from custom_components.hpoll.activity.history import MINUTES_PER_SLOT, SLOTS_PER_DAY  # noqa: E402
from custom_components.hpoll.activity.tracker import ActivityEvent  # noqa: E402

ZONE = ZoneInfo("Europe/Berlin")
FIRST_DAY = datetime(2026, 3, 9, tzinfo=ZONE)  # a Monday; clocks go forward on March 29
POLL_MINUTES = int(os.environ.get("BENCH_POLL_MINUTES", "2"))
TYPES = ("napper", "pet", "outings", "no_door", "holidays", "homebody")
INCIDENTS = 2
SEED = int(os.environ.get("BENCH_SEED", "11"))
HOMES_PER_TYPE = int(os.environ.get("BENCH_HOMES_PER_TYPE", "8"))
DAYS = int(os.environ.get("BENCH_DAYS", "42"))
DEBUG = os.environ.get("BENCH_DEBUG") == "1"
#: BENCH_TRACE="<type> d<day> HH:MM" (an incident as BENCH_DEBUG names it; several: separated
#: by ";"): every poll from a few hours before that incident, to stderr.
TRACE = os.environ.get("BENCH_TRACE")
TRACE_BEFORE = timedelta(hours=float(os.environ.get("BENCH_TRACE_HOURS", "6")))
FIXED = timedelta(hours=3)
MISSED = 1440.0

#: Room -> (bout minutes low/high, still minutes median, still spread): how movement comes.
ROOMS = {
    "hall": (0.2, 0.6, 1.0, 0.3),
    "kitchen": (1.0, 4.0, 1.5, 0.8),
    "living": (0.3, 1.2, 9.0, 1.0),
    "bathroom": (1.0, 5.0, 2.0, 0.6),
    "bedroom": (0.5, 2.0, 4.0, 0.8),
}


@dataclass
class Home:
    """Who lives here, what the home can see."""

    kind: str
    wake: float
    bed: float
    sensors: set[str]
    door: bool
    pet_room: str | None
    #: room visits (room, start, end) and, per room, (start, end) of movement bouts.
    bouts: list[tuple[str, datetime, datetime]] = field(default_factory=list)
    doors: list[datetime] = field(default_factory=list)
    away: list[tuple[datetime, datetime]] = field(default_factory=list)
    asleep: list[tuple[datetime, datetime]] = field(default_factory=list)
    trips: list[tuple[datetime, datetime]] = field(default_factory=list)
    outages: list[tuple[datetime, datetime]] = field(default_factory=list)
    ill_days: set[int] = field(default_factory=set)


def _local(day: int, hours: float) -> datetime:
    """A local wall-clock time on day ``day``, as an aware UTC datetime."""
    midnight = (FIRST_DAY + timedelta(days=day)).replace(tzinfo=None)
    return (midnight + timedelta(hours=hours)).replace(tzinfo=ZONE).astimezone(UTC)


def _stay(
    rng: random.Random, home: Home, room: str, span: tuple[datetime, datetime], pace: float
) -> None:
    """Movement bouts in one room over ``span``."""
    start, end = span
    low, high, still, spread = ROOMS[room]
    t = start
    while t < end:
        length = timedelta(minutes=rng.uniform(low, high))
        home.bouts.append((room, t, min(t + length, end)))
        t += length + timedelta(minutes=rng.lognormvariate(0, spread) * still * pace)


def _room_at(rng: random.Random, hour: float) -> tuple[str, float]:
    """Where the person goes next at this hour, and for how long (minutes)."""
    meal = min(abs(hour - h) for h in (8.0, 12.5, 18.5))
    if meal < 0.6 and rng.random() < 0.6:
        return "kitchen", rng.uniform(10, 45)
    roll = rng.random()
    if roll < 0.12:
        return "bathroom", rng.uniform(3, 15)
    if roll < 0.22:
        return "kitchen", rng.uniform(3, 20)
    if roll < 0.30:
        return "bedroom", rng.uniform(5, 25)
    evening = hour >= 18.5
    return "living", rng.lognormvariate(0, 0.6) * (70 if evening else 40)


def simulate(rng: random.Random, kind: str) -> Home:
    """A home's DAYS days of life."""
    rooms = set(ROOMS)
    if rng.random() < 0.3:
        rooms.discard("bedroom")  # nobody puts a sensor where they sleep
    if rng.random() < 0.15:
        rooms.discard("bathroom")
    home = Home(
        kind,
        wake=rng.uniform(6.0, 8.5),
        bed=rng.uniform(21.5, 23.5),
        sensors=rooms,
        door=kind != "no_door",
        pet_room=rng.choice(["living", "kitchen"]) if kind == "pet" else None,
    )
    pace = rng.uniform(0.7, 1.4)
    holiday = set(range(start := rng.randrange(1, max(2, DAYS - 8)), start + rng.randint(3, 7)))
    if kind != "holidays":
        holiday = set()
    leave = _local(0, 0)
    for day in range(DAYS):
        ill = day not in holiday and rng.random() < 0.05
        if ill:
            home.ill_days.add(day)
        wake = _local(day, rng.gauss(home.wake, 0.4) + (1.5 if ill else 0))
        bed = _local(day, rng.gauss(home.bed, 0.4) - (1 if ill else 0))
        if day in holiday:
            if day - 1 not in holiday:
                leave = wake + timedelta(hours=2)
                home.doors.append(leave)
            if day + 1 not in holiday:
                back = wake + timedelta(hours=rng.uniform(4, 10))
                home.away.append((leave, back))
                home.doors.append(back)
                _stay(rng, home, "hall", (back, back + timedelta(minutes=1)), pace)
                _stay(rng, home, "living", (back + timedelta(minutes=1), bed), pace)
                home.asleep.append((bed, _local(day + 1, rng.gauss(home.wake, 0.4))))
            continue
        _night(rng, home, bed, _local(day + 1, rng.gauss(home.wake, 0.4)), pace)
        _awake(rng, home, (wake, bed), ill, pace, noon=_local(day, 12))
        if rng.random() < 0.03:  # the bridge or the internet goes down
            down = _local(day, rng.uniform(0, 22))
            home.outages.append((down, down + timedelta(hours=rng.uniform(1, 5))))
    home.bouts.sort(key=lambda bout: bout[1])
    return home


def _night(rng: random.Random, home: Home, bed: datetime, end: datetime, pace: float) -> None:
    """Asleep, with bathroom trips through the hall."""
    home.asleep.append((bed, end))
    for _ in range(rng.choices((0, 1, 2), (0.3, 0.5, 0.2))[0]):
        trip = bed + (end - bed) * rng.uniform(0.15, 0.85)
        back = trip + timedelta(minutes=rng.uniform(4, 14))
        home.trips.append((trip, back))
        _stay(rng, home, "hall", (trip, trip + timedelta(minutes=0.5)), pace)
        _stay(rng, home, "bathroom", (trip + timedelta(minutes=0.5), back), pace)
        _stay(rng, home, "hall", (back, back + timedelta(minutes=0.4)), pace)
        _stay(
            rng, home, "bedroom", (back + timedelta(minutes=0.4), back + timedelta(minutes=1)), pace
        )


def _awake(
    rng: random.Random,
    home: Home,
    day: tuple[datetime, datetime],
    ill: bool,
    pace: float,
    *,
    noon: datetime,
) -> None:
    """From getting up to going to bed: rooms, a nap perhaps, outings through the door."""
    wake, bed = day
    nap: tuple[datetime, datetime] | None = None
    if (home.kind == "napper" and rng.random() < 0.85) or rng.random() < 0.2 or ill:
        nap_start = noon + timedelta(hours=rng.uniform(1.0, 3.0))
        long_nap = home.kind == "napper" or ill
        minutes = rng.uniform(60, 150) if long_nap else rng.uniform(30, 70)
        nap = (nap_start, nap_start + timedelta(minutes=minutes))
    rate = {"outings": 1.4, "homebody": 0.05}.get(home.kind, 0.35)
    count = 0 if ill else sum(1 for _ in range(3) if rng.random() < rate / 3)
    outings = sorted(rng.uniform(wake.astimezone(ZONE).hour + 1.0, 19.0) for _ in range(count))
    _stay(rng, home, "bedroom", (wake, wake + timedelta(minutes=5)), pace)
    t = wake + timedelta(minutes=5)
    while t < bed - timedelta(minutes=3):
        local_hour = t.astimezone(ZONE).hour + t.astimezone(ZONE).minute / 60
        if nap is not None and nap[0] <= t < nap[1]:
            t = nap[1]
            continue
        if outings and local_hour >= outings[0]:
            outings.pop(0)
            length = timedelta(hours=rng.uniform(1.0, 3.0 if home.kind == "outings" else 4.5))
            _stay(rng, home, "hall", (t, t + timedelta(minutes=1)), pace)
            leave = t + timedelta(minutes=1)
            back = leave + length
            home.doors += [leave, back]
            home.away.append((leave, back))
            _stay(rng, home, "hall", (back, back + timedelta(minutes=1)), pace)
            t = back + timedelta(minutes=1)
            continue
        room, minutes = _room_at(rng, local_hour)
        if ill:
            room, minutes = rng.choice(["living", "bedroom", "bedroom"]), minutes * 2.5
        end = min(bed - timedelta(minutes=3), t + timedelta(minutes=minutes))
        if nap is not None and t < nap[0] < end:
            end = nap[0]
        _stay(rng, home, "hall", (t, t + timedelta(minutes=0.3)), pace)
        _stay(rng, home, room, (t + timedelta(minutes=0.3), end), pace * (3 if ill else 1))
        t = end
    _stay(rng, home, "hall", (bed - timedelta(minutes=3), bed - timedelta(minutes=2)), pace)
    _stay(rng, home, "bedroom", (bed - timedelta(minutes=2), bed), pace)


def _at_home_awake(home: Home, when: datetime) -> bool:
    return not any(a <= when < b for a, b in home.away) and not any(
        a <= when < b for a, b in home.asleep
    )


def pick_incident(rng: random.Random, home: Home) -> tuple[datetime, bool]:
    """A random moment at home (a night one falls on a bathroom trip); True when at night."""
    while True:
        day = rng.randrange(1, DAYS - 1)
        when = _local(day, rng.uniform(0, 24))
        if any(a <= when < b for a, b in home.away):
            continue
        if any(a <= when < b for a, b in home.asleep):
            trips = [trip for trip in home.trips if trip[0].date() in (when.date(),)]
            if not trips:
                continue
            start, end = rng.choice(trips)
            return start + (end - start) * rng.uniform(0.2, 0.9), True
        if _at_home_awake(home, when):
            return when, False


def sensor_changes(
    home: Home, incident: datetime, rng: random.Random
) -> list[tuple[datetime, str, bool]]:
    """(time, room, on) changes of every motion sensor, the person's until ``incident``."""
    changes: list[tuple[datetime, str, bool]] = []
    on_until: dict[str, datetime] = {}
    bouts = [
        (room, start, min(end, incident))
        for room, start, end in home.bouts
        if start < incident and room in home.sensors
    ]
    if home.pet_room is not None:
        t = FIRST_DAY.astimezone(UTC)
        end = incident + timedelta(hours=24)
        while t < end:
            t += timedelta(minutes=rng.expovariate(1 / 35))
            room = home.pet_room if rng.random() < 0.9 else rng.choice(sorted(home.sensors))
            bouts.append((room, t, t + timedelta(minutes=0.2)))
        bouts.sort(key=lambda bout: bout[1])
    for room, start, end in bouts:
        if rng.random() < 0.02:
            continue  # a missed detection
        hold = timedelta(seconds=rng.uniform(10, 40))
        if room in on_until and start <= on_until[room]:
            changes = [c for c in changes if not (c[1] == room and c[0] == on_until[room])]
        else:
            changes.append((start, room, True))
        on_until[room] = end + hold
        changes.append((on_until[room], room, False))
    changes.sort(key=lambda change: change[0])
    return changes


def polls(
    home: Home, changes: list[tuple[datetime, str, bool]], doors: list[datetime], end: datetime
) -> Iterator[tuple[datetime, list[ActivityEvent], bool]]:
    """What each poll sees: each sensor's latest change and state, as the tracker reports it."""
    t = FIRST_DAY.astimezone(UTC)
    state: dict[str, bool] = {}
    was_on: dict[str, bool] = {}
    latest: dict[str, datetime] = {}
    index = door_index = 0
    step = timedelta(minutes=POLL_MINUTES)
    # Sensors that changed since the last poll that reached the bridge, and the door's latest
    # change: a poll during an outage sees nothing, the next one that gets through sees each
    # sensor's latest change (the bridge keeps it), as the tracker would report it.
    moved: set[str] = set()
    door: datetime | None = None
    while t < end:
        t += step
        while index < len(changes) and changes[index][0] <= t:
            when, room, on = changes[index]
            state[room], latest[room] = on, when
            moved.add(room)
            index += 1
        while door_index < len(doors) and doors[door_index] <= t:
            door = doors[door_index]
            door_index += 1
        if any(a <= t < b for a, b in home.outages):
            yield t, [], False
            continue
        # As the tracker reports them: the latest change of each sensor that moved, whether
        # motion was on at the poll, and an end whose start a poll saw is the same movement.
        events = [
            ActivityEvent(
                f"m-{room}",
                room,
                latest[room],
                "motion",
                ongoing=was_on.get(room, False) and not state[room],
                motion_on=state[room],
            )
            for room in moved
        ]
        was_on = dict(state)
        if door is not None and home.door:
            events.append(ActivityEvent("front-door", "hall", door, "contact"))
        moved, door = set(), None
        yield t, events, True


class Fixed:
    """The old rule, reimplemented: 3 h without activity outside 22:00-07:00, off after a door."""

    def __init__(self) -> None:
        self.last: datetime | None = None
        self.away = False

    def step(self, now: datetime, events: list[ActivityEvent], reachable: bool) -> bool:
        if not reachable:
            return False
        for event in sorted(events, key=lambda e: e.at):
            if self.last is None or event.at >= self.last:
                self.last = event.at
                self.away = event.kind == "contact"
        hour = now.astimezone(ZONE).hour
        quiet = hour >= 22 or hour < 7
        return self.last is not None and not quiet and not self.away and now - self.last >= FIXED


@dataclass
class Outcome:
    minutes: dict[str, float]
    false_alarms: dict[str, int]
    days: float
    night: bool
    low_found: int
    low_false: int
    low_days: int
    #: Per detector: 1 when an alarm that began before the incident still stood at it.
    standing: dict[str, int]


def run(home: Home, incident: datetime, night: bool, rng: random.Random) -> Outcome:
    """Both detectors through one home's life up to 24 h after the incident."""
    changes = sensor_changes(home, incident, rng)
    doors = [d for d in home.doors if d < incident]
    detector = InactivityDetector(ZONE, safety_net=FIXED, quiet_hours=(time(22), time(7)))
    fixed = Fixed()
    alarming = {"fixed": False, "detector": False}
    false_alarms = {"fixed": 0, "detector": 0}
    standing = {"fixed": 0, "detector": 0}
    found: dict[str, datetime] = {}
    caught = "nothing"  # which rule caught the incident, for BENCH_DEBUG
    low_days: set[int] = set()
    end = incident + timedelta(hours=24)
    for now, events, reachable in polls(home, changes, doors, end):
        verdict = detector.observe(now, events, reachable=reachable)
        if (
            TRACE
            and f"{home.kind} {_when(incident)}" in TRACE.split(";")
            and now > incident - TRACE_BEFORE
        ):
            _trace(now, events, verdict, detector)
        states = {"fixed": fixed.step(now, events, reachable), "detector": verdict.inactive}
        if verdict.low_activity_today and now < incident:
            low_days.add((now.astimezone(ZONE).date() - FIRST_DAY.date()).days)
        for name, on in states.items():
            if on and not alarming[name] and now < incident:
                false_alarms[name] += 1
                if DEBUG and name == "detector":
                    _debug_false_alarm(home, now, verdict, detector)
            elif on and now >= incident and name not in found:
                # An alarm on at the incident: new, or one that began before it and still
                # stands (counted above as the false alarm it was when it began, and as
                # standing, below); either way the caregiver is being alerted about this home
                # while the person lies there.
                found[name] = now
                standing[name] += alarming[name]
                if name == "detector":
                    limit = verdict.limit.total_seconds() / 60 if verdict.limit else None
                    caught = (
                        f"{verdict.reason} (limit {limit and round(limit)} min, "
                        f"{detector.history.learned_days()} days learned)"
                    )
            alarming[name] = on
    minutes = {
        name: min(MISSED, (found[name] - incident).total_seconds() / 60)
        if name in found
        else MISSED
        for name in alarming
    }
    days = (incident - FIRST_DAY).total_seconds() / 86400
    if DEBUG:
        print(
            f"INCIDENT {home.kind} night={night} at {_when(incident)} "
            f"detector {minutes['detector']:.0f} min fixed {minutes['fixed']:.0f} min "
            f"sensors {sorted(home.sensors)} door={home.door} pet={home.pet_room} "
            f"caught by {caught} where {_where(home, incident)}",
            file=sys.stderr,
        )
    ill = {d for d in home.ill_days if _local(d, 23) < incident}
    return Outcome(
        minutes,
        false_alarms,
        days,
        night,
        len(low_days & ill),
        len(low_days - ill),
        len(ill),
        standing,
    )


def _when(at: datetime) -> str:
    local = at.astimezone(ZONE)
    return f"d{(local.date() - FIRST_DAY.date()).days} {local:%H:%M}"


def _where(home: Home, at: datetime) -> str:
    """Where the person was at ``at`` (the simulator's truth), for BENCH_DEBUG."""
    if any(a <= at < b for a, b in home.away):
        return "away"
    state = "asleep" if any(a <= at < b for a, b in home.asleep) else "awake"
    if any(a <= at < b for a, b in home.trips):
        state = "night trip"
    recent = [bout for bout in home.bouts if bout[1] <= at][-3:]
    seen = ", ".join(
        f"{room} {_when(start)}-{end.astimezone(ZONE):%H:%M}" for room, start, end in recent
    )
    return f"{state}; last bouts: {seen}"


def _debug_false_alarm(
    home: Home, now: datetime, verdict: object, detector: InactivityDetector
) -> None:
    v = verdict  # a Verdict
    print(
        f"FALSE {home.kind} at {_when(now)} reason={getattr(v, 'reason', None)} "
        f"since={_when(getattr(v, 'since', now) or now)} limit={getattr(v, 'limit', None)} "
        f"learning={getattr(v, 'learning', None)} last_room={detector._last_room} "
        f"sensors={sorted(home.sensors)} door={home.door} pet={home.pet_room} "
        f"truth: {_where(home, now)}",
        file=sys.stderr,
    )
    # What the detector had learned then: its night (half hours), where the nights are slept
    # and the way there, the sensors a pet moves / comes by, and the latest presence.
    spans: list[list[int]] = []
    for slot in (s for s in range(SLOTS_PER_DAY) if detector._night(s)):
        if spans and slot == spans[-1][1] + 1:
            spans[-1][1] = slot
        else:
            spans.append([slot, slot])

    def clock(slot: int) -> str:
        return f"{slot * MINUTES_PER_SLOT // 60:02d}:{slot * MINUTES_PER_SLOT % 60:02d}"

    night = ",".join(f"{clock(first)}-{clock(last + 1)}" for first, last in spans)
    restless, visited, _ = detector._pet_sensors()
    sure = detector._sure_at
    print(
        f"  state: night={night or '-'} sleep={detector.history.sleep_rooms()} "
        f"ways={detector.history.ways_to_bed()} pet={sorted(restless)} "
        f"visited={sorted(visited)} lone={detector._last_lone} came_from={detector._came_from} "
        f"sure={_when(sure) if sure else None} days={detector.history.learned_days()}",
        file=sys.stderr,
    )


def _trace(
    now: datetime, events: list[ActivityEvent], verdict: object, detector: InactivityDetector
) -> None:
    seen = " ".join(
        f"{e.sensor_id}{'+' if e.motion_on else '-'}{'o' if e.ongoing else ''}"
        f"@{e.at.astimezone(ZONE):%H:%M:%S}"
        for e in sorted(events, key=lambda e: e.at)
    )
    print(
        f"  {_when(now)} {seen:60s} -> {getattr(verdict, 'state', '')} "
        f"{getattr(verdict, 'reason', '')} last={detector._last_room} "
        f"limit={getattr(verdict, 'limit', None)} lone={detector._last_lone}",
        file=sys.stderr,
    )


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]


def main() -> None:
    """Every household type, both detectors, a table and one JSON line."""
    rng = random.Random(SEED)
    outcomes: dict[str, list[Outcome]] = {kind: [] for kind in TYPES}
    for kind in TYPES:
        for _ in range(HOMES_PER_TYPE):
            home = simulate(rng, kind)
            chosen = [pick_incident(rng, home) for _ in range(INCIDENTS)]
            for incident, at_night in chosen:
                outcomes[kind].append(run(home, incident, at_night, rng))
    every = [o for kind in TYPES for o in outcomes[kind]]
    figures: dict[str, float | int | str] = {
        "homes": HOMES_PER_TYPE * len(TYPES),
        "days": DAYS,
        "incidents": len(every),
        "seed": SEED,
        "poll_minutes": POLL_MINUTES,
    }
    for name in ("fixed", "detector"):
        minutes = [o.minutes[name] for o in every]
        night = [o.minutes[name] for o in every if o.night]
        home_days = sum(o.days for o in every)
        mean = statistics.mean(minutes)
        figures[f"{name}_mean_minutes"] = round(mean, 1)
        figures[f"{name}_median_minutes"] = round(statistics.median(minutes), 1)
        figures[f"{name}_p90_minutes"] = round(_p90(minutes), 1)
        missed = sum(1 for m in minutes if m >= MISSED)
        figures[f"{name}_missed"] = missed
        figures[f"{name}_false_alarms_per_home_day"] = round(
            sum(o.false_alarms[name] for o in every) / home_days, 3
        )
        figures[f"{name}_alarm_standing_at_incident"] = sum(o.standing[name] for o in every)
        figures[f"{name}_night_incidents"] = len(night)
        figures[f"{name}_night_mean_minutes"] = round(statistics.mean(night), 1) if night else 0
        print(
            f"{name:9s} all       detected {len(minutes) - missed}/"
            f"{len(minutes)}  mean {mean:6.1f}  median {figures[f'{name}_median_minutes']:6.1f}  "
            f"p90 {figures[f'{name}_p90_minutes']:6.1f}  false/home-day "
            f"{figures[f'{name}_false_alarms_per_home_day']:.3f}  night: {len(night)} incidents, "
            f"mean {figures[f'{name}_night_mean_minutes']}"
        )
        worst = 0.0
        for kind in TYPES:
            rows = outcomes[kind]
            kind_minutes = [o.minutes[name] for o in rows]
            kind_night = [o.minutes[name] for o in rows if o.night]
            kind_mean = statistics.mean(kind_minutes)
            worst = max(worst, kind_mean / mean if mean else 0.0)
            false_rate = sum(o.false_alarms[name] for o in rows) / sum(o.days for o in rows)
            figures[f"{name}_{kind}_mean_minutes"] = round(kind_mean, 1)
            figures[f"{name}_{kind}_false_alarms_per_home_day"] = round(false_rate, 3)
            print(
                f"{name:9s} {kind:9s} detected {sum(1 for m in kind_minutes if m < MISSED)}/"
                f"{len(kind_minutes)}  mean {kind_mean:6.1f}  median "
                f"{statistics.median(kind_minutes):6.1f}  p90 {_p90(kind_minutes):6.1f}  "
                f"false/home-day {false_rate:.3f}  night: {len(kind_night)} incidents"
                + (f", mean {statistics.mean(kind_night):.1f}" if kind_night else "")
            )
        figures[f"{name}_worst_type_ratio"] = round(worst, 2)
    ill_total = sum(o.low_days for o in every)
    figures["low_days"] = ill_total
    figures["low_days_found"] = sum(o.low_found for o in every)
    figures["low_days_false"] = sum(o.low_false for o in every)
    print(
        f"low activity today: {figures['low_days_found']} flagged of {ill_total} illness days "
        f"(over both incident runs), {figures['low_days_false']} ordinary days flagged"
    )
    figures["speedup_mean"] = round(
        float(figures["fixed_mean_minutes"]) / float(figures["detector_mean_minutes"]), 2
    )
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
