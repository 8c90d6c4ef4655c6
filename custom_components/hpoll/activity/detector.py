"""The home's ONE inactivity detector: is the silence now unusual for this home?

Fed the tracker's events at every poll (and whether the bridge could be read), it keeps the
current gap (since the latest presence), learns from completed gaps only (the ongoing one never
feeds its own threshold), and gives a ``Verdict``: state, since when, why, how much it has
learned, and whether the person is out. Home Assistant's entities, the report to the relay and
so the caregivers' alerts all carry this one verdict.

What counts:
* presence: a motion START, a button, a dial, a door, MotionAware; a motion END only says the
  movement stopped, so after a door it is not taken as someone still being there (the hall's
  motion-off arrives 10-30 s after the door closes);
* away: a door event not followed by a new motion start (a motion end counts when the sensor
  was off at a poll after the door) in the door's room or in two rooms (a pet keeps to its
  places), nor by a button. Silence while away is not alarmed, and is not learned from;
* blind: while the bridge cannot be read nothing is known; gaps that overlap such time are not
  learned from.
* pets: a lone motion (no other sensor within minutes, no visit of that sensor going on) is
  learned per sensor at night and by day, lone motions of one sensor within STAY counted once
  (one stay: an armchair, a trip there and back); a sensor moved alone at night about as often
  as by day is a pet's and its lone motions are no presence. Its motion just AFTER a movement
  elsewhere (the pet stirring as the person goes to bed) waits for a second sign: that sensor
  again within minutes (the person's visit there begins, and lasts while it keeps moving,
  until the person is seen elsewhere), or another sensor after it. Where such a pet lives and
  only comes by another sensor, a lone motion there is presence once a second sign follows
  (without one, lone motions at night are the person's: a hall on the way to a bathroom
  without a sensor). By day, the pet's own place moving far more often than its pet alone
  moves it at night is someone sitting there. Where no pet has shown (from PET_DAYS on), lone
  movements in the room the person next comes out through (the hall passed alone on the way
  to a bedroom without a sensor, and again in the morning) were the person's: the night's
  silence, from which the rooms where the nights are slept are learned, began there; lone
  movements elsewhere (a cat too rare to be learned as one) say nothing of where;
* the room of the latest presence: a motion END in a room the person left (another sensor
  started seeing movement since this one's began) does not move the person back there.

Why a verdict is ``inactive`` (``reason``):
* ``unusual_gap``: the gap is longer than this home's gaps usually get when they begin at this
  time of day in this room (at night: how long a visit to the bathroom usually lasts, or how
  long the night stays quiet after getting up where it is slept: a night trip's way out,
  where that room's sensor sees only the way to a bed beyond it, never the bed: its night
  movements come back in the same room within minutes, no restless turning after, and no
  night trip comes back into it from another room, as one does to a bedroom with a sensor);
* ``not_up``: the night has not ended: no sustained activity since the home's quietest hour,
  well past the time the home usually wakes up (the morning edge follows the home, not a clock),
  and nobody was seen up that day (by day, outside the rooms where the nights are slept and the
  way to them);
* ``one_sensor``: only one sensor has fired for unusually long (a pet, or a sensor stuck on):
  the silence is judged as if that sensor were not there;
* ``safety_net``: the user's fixed threshold (outside the quiet hours, which it counts from the
  end of) was reached, whatever was learned; only in a home without a door sensor, once
  learned, a silence as long as its outings usually are is left to the learned limit.
A day with far less activity than usual is reported separately (``low_activity_today``), and
makes gaps that begin on such a day tolerated longer; it never raises an alarm by itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
import itertools
import math
import statistics
from typing import Any

from . import persist
from .history import (
    ANY,
    HISTORY_DAYS,
    MINUTES_PER_SLOT,
    PET_VISIT_RATIO,
    PRIOR_DAYS,
    SLOTS_PER_DAY,
    DayProfile,
    History,
    Stretches,
    quantile,
    shrink,
)
from .tracker import ActivityEvent

ACTIVE, RESTING, AWAY, INACTIVE, UNKNOWN = "active", "resting", "away", "inactive", "unknown"
#: Priors (minutes) while the history is short: day gaps, one-sensor runs.
DAY_PRIOR = 150.0
RUN_PRIOR = 240.0
#: Coming back: motion this long before the door's last change is someone coming in.
RETURN_WINDOW = timedelta(minutes=1)
#: Presence is corroborated when two sensors fire within this.
CORROBORATE = timedelta(minutes=3)
#: A lone event this soon after the same sensor's previous presence continues that visit (a
#: person's movements in one room come every few minutes; a visit begins with a sure event).
CONTINUE = timedelta(minutes=10)
#: Lone movements kept per room between two visits, to learn where the night began.
LONE_WAYS_KEPT = 32
#: Lone movements of one sensor no further apart than this are one stay (counted once when
#: learning which sensors a pet moves): a person in an armchair moves alone every few
#: minutes, a trip to a bathroom without a sensor passes the hall there and back.
STAY = timedelta(minutes=20)
#: By day, a pet's own place that moves as often within BUSY as its pet alone (at its night
#: rate) would only by a chance of BUSY_CHANCE is someone there (see ``_busy``).
BUSY = timedelta(minutes=30)
BUSY_CHANCE = 0.01
#: Lone sensors are weaker evidence than silence: their runs get this extra margin.
RUN_MARGIN = 1.5
#: Never alarm on shorter gaps, whatever the history says.
MIN_GAP = 60.0
MIN_NIGHT_GAP = 45.0
#: By day, gaps that began within ± this many half hours count (a home without a door: more).
DAY_WIDTH = 2
NO_DOOR_WIDTH = 6
#: At night: gaps from a room are looked up ± this many half hours (night visits are rare).
NIGHT_WIDTH = 6
#: How long a night-time visit to a room may last before anything is learned about it.
VISIT_PRIOR = 120.0
#: Nights a home must show getting up in a room where its nights are slept (see ``_up_limit``)
#: before a silence after getting up there is judged at all.
UP_NIGHTS = 3
#: The gap tables' key of the silences that began with getting up in a room (+ its name).
UP = "up:"
#: ... and of those of them that a new movement in the same room ended within STAY (+ its
#: name): the way back of a trip there and back.
BACK = "back:"
#: The key of the night trips that came back into a room where the nights are slept from
#: another room (+ its name): that room's sensor sees the bed (see ``_up_limit``).
INTO = "into:"
#: Half hours active on fewer than this share of days are the home's night.
NIGHT_SHARE = 0.35
#: Prior for the night when nothing is learned yet (local half hours 22:00-07:00).
PRIOR_NIGHT = frozenset([*range(44, 48), *range(14)])
#: Prior quietest half hour (04:00), and minutes from it to the usual first activity.
PRIOR_QUIET_SLOT = 8
PRIOR_WAKE = 330.0
#: The morning edge: usual (90th percentile) first activity plus at least this.
WAKE_MARGIN = 45.0
#: Sustained activity: at least this many events, none more than WAKE_PAUSE minutes after the
#: one before, spread over WAKE_SPAN minutes (a night trip to the bathroom is over sooner).
WAKE_EVENTS = 3
WAKE_PAUSE = 30.0
WAKE_SPAN = 30.0
#: "Low activity today": at least this many hours watched today, this many days to compare.
LOW_HOURS = 4.0
LOW_DAYS = 5
LOW_FRACTION = 0.5
#: Gaps that begin on a low-activity day may last this much longer.
LOW_DAY_FACTOR = 1.6
#: A pet shows within this many days (its places move alone every night): before, a lone
#: movement at night may be a pet's.
PET_DAYS = 3
#: Days of history for full confidence; below LEARNING_DAYS the verdict says "learning".
CONFIDENT_DAYS = 14
LEARNING_DAYS = 7
#: Steps longer than this between polls are not counted as time watched.
MAX_STEP = timedelta(minutes=15)
#: Kinds that only repeat what the sensors themselves saw.
_REPEATS = frozenset({"room_motion", "home_motion"})
#: Kinds a motion sensor (or a MotionAware area) reports.
_MOTION = frozenset({"motion", "area_motion"})
#: Reasons in the order they are reported when several hold.
REASONS = ("unusual_gap", "not_up", "one_sensor", "safety_net")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the detector says about the home now."""

    state: str
    #: Start of the current state's evidence: the silence's start, the door, the last activity.
    since: datetime | None
    #: Why ``inactive`` (one of REASONS), or why ``unknown`` ("no_activity" / "unreachable").
    reason: str | None
    #: How long the current silence may last before it is unusual (None when not judged).
    limit: timedelta | None
    learning: bool
    #: 0..1: how much of a full history (CONFIDENT_DAYS) the thresholds rest on.
    confidence: float
    away: bool
    low_activity_today: bool
    last_activity: datetime | None

    @property
    def inactive(self) -> bool:
        """An alarm."""
        return self.state == INACTIVE

    def as_report(self) -> dict[str, Any]:
        """The ``verdict`` object of a report (JSON-ready; relay/schema.py checks it)."""
        return {
            "state": self.state,
            "since": self.since.isoformat() if self.since else None,
            "reason": self.reason,
            "limit_minutes": round(self.limit.total_seconds() / 60) if self.limit else None,
            "learning": self.learning,
            "confidence": round(self.confidence, 2),
            "away": self.away,
            "low_activity_today": self.low_activity_today,
            "last_activity": self.last_activity.isoformat() if self.last_activity else None,
        }


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def _rarely_reached(rate: float) -> int:
    """How many movements within BUSY (the latest one included) a pet that moves ``rate``
    times a minute at random reaches only by a chance of BUSY_CHANCE (Poisson)."""
    mean = rate * _minutes(BUSY)
    term = total = math.exp(-mean)
    others = 0
    while 1 - total > BUSY_CHANCE:
        others += 1
        term *= mean / others
        total += term
    return others + 2


def in_quiet_hours(local: time, start: time, end: time) -> bool:
    """Is the local time inside quiet hours? They may wrap midnight."""
    if start <= end:
        return start <= local < end
    return local >= start or local < end


class InactivityDetector:
    """One per home. ``observe`` at every poll; ``verdict`` any time after."""

    def __init__(  # noqa: PLR0915 (one statement per piece of state, each told where it is set)
        self,
        timezone: tzinfo,
        *,
        safety_net: timedelta | None = timedelta(hours=3),
        quiet_hours: tuple[time, time] = (time(22), time(7)),
        history: History | None = None,
    ) -> None:
        """``safety_net``: the user's fixed threshold (None: off); its ``quiet_hours``."""
        self.timezone = timezone
        self.safety_net = safety_net
        self.quiet_hours = quiet_hours
        self.history = history or History()
        self.last_at: datetime | None = None
        self._last_room: str | None = None
        self._last_sensor: str | None = None
        #: The latest CORROBORATED presence (two sensors within CORROBORATE), and its room:
        #: a pet, or a sensor stuck on, fires alone.
        self._sure_at: datetime | None = None
        self._sure_room: str | None = None
        self._run_clean = False
        #: Each sensor's latest presence that belonged to a visit (sure, or continuing one).
        self._visit_at: dict[str, datetime] = {}
        #: The latest presence may have been a pet's: a lone movement outside any visit, a sensor
        #: a pet moves, or one only such a sensor vouched for. At night that is no visit.
        #: ... and ``_last_up``: it was someone getting up at night where the nights are slept
        #: (the silence before it was judged as bed): see ``_up_limit``.
        self._last_lone = self._last_up = self._turned = False
        #: The latest presence of a night trip: someone seen since a silence judged as bed, each
        #: presence within STAY of the one before, not yet back where the nights are slept.
        self._trip_at: datetime | None = None
        #: A way back after getting up where the nights are slept (a movement in that room within
        #: STAY): its BACK key (day, slot, keys, minutes), added once what comes next is no
        #: restless turning (see ``_learn_trip``).
        self._way_back: tuple[int, int, list[str], float] | None = None
        #: Per night: the longest silence between visits so far (its room: that night's sleep).
        self._night_longest: dict[int, float] = {}
        #: The latest presence that was not a lone movement, its room, and whether the silence
        #: since it was watched at home throughout.
        self._visit_last: tuple[datetime, str] | None = None
        #: The room of the latest presence in another room than the latest one (where the person
        #: came from: on the way back from the bathroom, or from the living room to bed).
        self._came_from: str | None = None
        #: ... as it was at the latest visit (``_visit_last``).
        self._visit_from: str | None = None
        self._visit_clean = False
        #: Where no pet shows: per room, the room the person came from into it and the lone
        #: movements there since the latest visit (see ``_way_to_bed``) ...
        self._lone_ways: dict[str, tuple[str | None, list[datetime]]] = {}
        #: ... and the latest lone movements, each within CORROBORATE of the one before.
        self._lone_chain: list[tuple[datetime, str]] = []
        #: Each sensor's latest presence, and which sensors are doors.
        self._seen: dict[str, datetime] = {}
        #: The motion sensors seen (buttons, dials and doors vouch for no movement).
        self._motion_sensors: set[str] = set()
        #: Each motion sensor's latest movement START (where the person went last).
        self._started: dict[str, datetime] = {}
        self._doors: set[str] = set()
        self.door_at: datetime | None = None
        self._door_room: str | None = None
        #: The latest door came while away: someone coming in.
        self._door_returning = False
        #: When the latest absence ended, and whether its door had been seen by then.
        self._back_at: datetime | None = None
        self._back_by_door = False
        #: Sensors that moved since the door (while away): two rooms mean someone is back.
        self._back_sensors: set[str] = set()
        #: The first poll watched: a day that began before it cannot say "not up yet".
        self.watching_since: datetime | None = None
        #: The latest of the home's days (see ``_cycle``) on which someone was seen up.
        self._up_day: int | None = None
        #: Away (a door, not followed by a return); ``_resumed``: restored after a restart and
        #: not yet polled (the first poll brings what happened while Home Assistant was down).
        self.away = self._resumed = False
        self.reachable = True
        #: The sensors the bridge listed at the latest poll, and whether it reached each one
        #: (None: not told).
        self._sensors: Mapping[str, bool] | None = None
        #: Nothing was seen up to here (the bridge was unreachable, or before we watched).
        self._blind_until: datetime | None = None
        self._gap_clean = False
        self._gap_low_day = False
        self._previous_poll: datetime | None = None
        #: The poll before the one being folded in.
        self._poll_before: datetime | None = None
        self._cycle_day: int | None = None
        self._cycle_events: list[float] = []
        self._cache: dict[tuple[Any, ...], float] = {}
        self._nights: frozenset[int] = PRIOR_NIGHT
        self._nights_key: tuple[Any, ...] | None = None
        self._restless_key: tuple[Any, ...] | None = None
        #: The poll being folded in (a movement is corroborated by another in the same poll).
        self._batch: list[ActivityEvent] = []
        #: A lone movement waiting for a second sign before it is taken as the person's.
        self._pending: ActivityEvent | None = None
        #: Lone movements that another sensor may still vouch for (see ``_count_strays``).
        self._lone_recent: list[ActivityEvent] = []
        #: Each sensor's latest lone movement (counted or not: see ``_count_strays``).
        self._stray_at: dict[str, datetime] = {}
        #: Where a lone movement since the latest presence was (perhaps the person, going to
        #: bed where no sensor sees it): the silence gets the more lenient of both rooms' limits.
        #: ... and ``_turned``: one came in another room within minutes of the latest presence
        #: (the person may have turned there rather than gone to bed: see ``_room_limit``).
        self._moved_room: str | None = None
        #: (restless sensors, pet-visited ones, per restless sensor how many movements within
        #: BUSY are more than its pet makes alone): see ``_pet_sensors``.
        self._restless_set: tuple[frozenset[str], frozenset[str], dict[str, int]] = (
            frozenset(),
            frozenset(),
            {},
        )
        #: Each restless sensor's recent lone movements (within BUSY).
        self._busy_moves: dict[str, list[datetime]] = {}

    # --- feeding ---------------------------------------------------------------------------

    def observe(
        self,
        now: datetime,
        events: Iterable[ActivityEvent],
        *,
        reachable: bool = True,
        sensors: Mapping[str, bool] | None = None,
    ) -> Verdict:
        """Fold in one poll: its events (oldest first), whether the bridge was read, and (when
        known) every sensor it lists with whether it can reach it."""
        self.reachable = reachable
        if sensors is not None:
            self._sensors = sensors
        if self.watching_since is None:
            self.watching_since = now
        if not reachable:
            self._blind_until = now
            self._gap_clean = self._run_clean = self._visit_clean = False
            self._previous_poll = now
            return self.verdict(now)
        if self._resumed:
            # The first poll after a restart brings, at once, each sensor's latest change
            # while Home Assistant was down, not what came between: nothing of it is learned,
            # and the downtime was not watched.
            self._resumed = False
            self._blind_until = now
        elif self._previous_poll is not None and not self.away:
            step = min(now - self._previous_poll, MAX_STEP)
            if step > timedelta(0):
                local = now.astimezone(self.timezone)
                self._profile(local).home_minutes[local.hour] += _minutes(step)
        self._poll_before, self._previous_poll = self._previous_poll, now
        self._batch = sorted(events, key=lambda e: e.at)
        for event in self._batch:
            self._event(event, now)
        self._batch = []
        self._count_strays(now)
        self.history.forget_before(now.astimezone(self.timezone).toordinal() - HISTORY_DAYS)
        return self.verdict(now)

    def _event(self, event: ActivityEvent, now: datetime) -> None:
        if event.kind in _REPEATS:
            return
        if event.kind in _MOTION:
            self._motion_sensors.add(event.sensor_id)
        if event.history:
            # From before we watched: where the silence started, never a sample.
            if self.last_at is None or event.at > self.last_at:
                self._blind_until = max(event.at, self._blind_until or event.at)
                self._presence(event, count=False)
            return
        if event.kind == "contact":
            self._doors.add(event.sensor_id)
            self._presence(event, count=True)
            back = self._back_at
            if (
                back is not None
                and not self._back_by_door
                and abs(event.at - back) <= RETURN_WINDOW
            ):
                return  # the door that whoever just came in closed behind them (seen late)
            self._door_returning = self.away
            self.door_at, self.away = event.at, True
            self._door_room = event.room
            self._back_sensors = set()
            self._gap_clean = self._run_clean = self._visit_clean = False
            return
        self._lone_recent = [
            lone
            for lone in self._lone_recent
            if lone.sensor_id == event.sensor_id or abs(event.at - lone.at) > CORROBORATE
        ]
        stray = self._stray(event)
        restless = self._restless()
        pending = self._pending
        # A visit to the pet's own place: entered just after a movement elsewhere, and that
        # sensor moves again within minutes.
        visit = (
            pending is not None
            and pending.sensor_id == event.sensor_id
            and pending.sensor_id in restless
            and self._confirms(event, pending)
        )
        busy = stray and event.sensor_id in restless and not visit and self._busy(event)
        if stray and event.sensor_id in restless and not visit and not busy:
            return  # moved by something else than the person (a pet): no presence, no return
        self._pending = None
        if pending is not None and self._confirms(event, pending):
            other = event.sensor_id != pending.sensor_id
            self._person(pending, stray=not (other or visit), sure=other)
            stray = stray and not visit
        elif (
            not self.away
            and not busy
            and (
                (stray and event.sensor_id in self._pet_sensors()[1])
                or (event.sensor_id in restless and not self._vouched(event))
            )
            and not self._back_to_bed(event)
        ):
            # Where a pet comes by, one lone movement is not yet a person: it is when a second
            # one follows in that room, or another sensor within minutes. Not while away: there
            # ``_back`` judges it (the door's room, or two rooms), and an absence that nothing
            # can end would hide a fall after a return the door did not tell.
            # In the pet's own place, the person's movement elsewhere just BEFORE says nothing
            # (the pet stirs as the person goes to bed): a later one, or a visit, must vouch.
            self._pending, self._moved_room = event, event.room or "?"
            self._turned = self._turned or (
                self.last_at is not None
                and event.room != self._last_room
                and timedelta(0) <= event.at - self.last_at <= CORROBORATE
            )
            return
        # A busy pet's place is the person still there; not as sure as two sensors: the
        # lone-sensor limit counts on from the person's coming in (a pet upset beside a fallen
        # person moves its place as busily).
        self._person(event, stray=stray and not busy)

    def _busy(self, event: ActivityEvent) -> bool:
        """Is a pet's own place, by day and at home, moving far more often than the pet alone
        moves it (its lone movements at night, when the person sleeps, say how often: within
        BUSY, this many only by a chance of BUSY_CHANCE)? Then someone is there: the person
        sitting in the pet's room, whose visit lapsed in a pause of more than CONTINUE. Only
        where the person was last seen (or is about to be): a pet lively in its place says
        nothing of a person who went elsewhere (a fall in the bathroom would wait for the pet
        to calm down). A pet upset beside a person fallen in its room moves as busily: the
        lone-sensor limit, counted from the person's coming in, still holds there."""
        moves = self._busy_moves.setdefault(event.sensor_id, [])
        if not event.ongoing:
            moves.append(event.at)
        moves[:] = [at for at in moves if timedelta(0) <= event.at - at <= BUSY]
        need = self._pet_sensors()[2].get(event.sensor_id)
        return (
            need is not None
            and len(moves) >= need
            and not self.away
            and (event.room or "?") in (self._last_room or "?", self._moved_room)
            and not self._night(self._slot(event.at))
        )

    def _back_to_bed(self, event: ActivityEvent) -> bool:
        """Is this lone movement the person going back to bed: at night, in a room where the
        nights are slept, minutes after the person was seen in another room (back from the
        bathroom; where the bedroom has no sensor, the night's room is the hall and the way
        back one movement there)? Not the way to bed where the bedroom has a sensor: a pet
        crossing the hall would end a bathroom visit that a fall has made long."""
        sleep = self.history.sleep_rooms()
        if not sleep or self.last_at is None or not self._night(self._slot(event.at)):
            return False
        room, last = event.room or "?", self._last_room or "?"
        return (
            room in sleep
            and last not in sleep
            and room != last
            and timedelta(0) <= event.at - self.last_at <= CONTINUE
        )

    def _vouched(self, event: ActivityEvent) -> bool:
        """Is a movement of a sensor a pet moves the person's: it continues a visit there, or
        another sensor (not a pet's) moves at the same time or within minutes after it (in
        this poll: the person went on to another room)?"""
        visit = self._visit_at.get(event.sensor_id)
        if visit is not None and timedelta(0) <= event.at - visit <= CONTINUE:
            return True
        restless = self._restless()
        return any(
            other.sensor_id != event.sensor_id
            and other.sensor_id not in restless
            and other.kind in _MOTION
            and timedelta(0) <= other.at - event.at <= CORROBORATE
            and not self._ended_before(other, event.at)
            for other in self._batch
        )

    def _confirms(self, event: ActivityEvent, pending: ActivityEvent) -> bool:
        """Does ``event`` make the pending lone movement a person's?"""
        if event.sensor_id == pending.sensor_id:
            return timedelta(0) <= event.at - pending.at <= CONTINUE
        return abs(event.at - pending.at) <= CORROBORATE and not self._ended_before(
            event, pending.at
        )

    def _ended_before(self, event: ActivityEvent, at: datetime) -> bool:
        """Is ``event`` only the end of a movement that a poll saw begin before ``at``? It
        says that movement stopped (10-40 s later), not that someone arrived after ``at``:
        the bedroom going quiet as the person settles in bed vouches for no pet's movement
        elsewhere a minute before."""
        began = self._started.get(event.sensor_id)
        return (
            event.kind == "motion"
            and event.motion_on is False
            and event.ongoing
            and began is not None
            and began <= at
        )

    def _person(self, event: ActivityEvent, *, stray: bool, sure: bool | None = None) -> None:
        """Motion taken as the person's."""
        if self.away:
            if not self._back(event):
                return  # the leaver's own motion ending, "still on" from before the door, a pet
            self.away, self._back_at = False, event.at
            self._back_by_door = self._door_returning
            # Time away is no run of lone sensors: whoever came back starts a new one.
            self._sure_at, self._sure_room, self._run_clean = event.at, event.room, False
        restless = self._restless()
        previous = self._visit_at.get(event.sensor_id)
        continuing = previous is not None and timedelta(0) <= event.at - previous <= CONTINUE
        # Vouched for by continuing a visit or by another sensor, which must not be a pet's.
        self._last_lone = (
            stray
            or event.sensor_id in restless
            or not (continuing or self._corroborated(event, exclude=restless))
        )
        if not stray:
            # A visit begins with a sure movement and lasts while that sensor keeps moving
            # within minutes; where a pet roams or comes by, it ends when the person is seen
            # going elsewhere (the pet staying behind, or passing by later, does not prolong
            # it), and the end of a movement in a room the person has left continues none.
            if self._room_of(event) == event.room:
                self._visit_at[event.sensor_id] = event.at
            if event.motion_on is not False and self._corroborated(event, exclude=restless):
                pets = restless | self._pet_sensors()[1]
                for sensor in pets & self._visit_at.keys() - {event.sensor_id}:
                    del self._visit_at[sensor]
        self._presence(event, count=not event.ongoing, stray=stray, sure=sure)

    def _stray(self, event: ActivityEvent) -> bool:
        """A motion event that fired alone and continues no visit (counted per sensor, at
        night and by day, to learn which sensors a pet moves)."""
        if event.kind not in _MOTION or self._corroborated(event):
            return False
        visit = self._visit_at.get(event.sensor_id)
        if visit is not None and timedelta(0) <= event.at - visit <= CONTINUE:
            return False
        if not (event.ongoing or self.away):
            self._lone_recent.append(event)
        return True

    def _count_strays(self, now: datetime) -> None:
        """Lone movements no other sensor followed within CORROBORATE (a later poll may bring
        the bathroom after the hall) are learned as strays, per sensor, at night and by day."""
        for event in [e for e in self._lone_recent if now - e.at > CORROBORATE]:
            self._lone_recent.remove(event)
            previous = self._stray_at.get(event.sensor_id)
            self._stray_at[event.sensor_id] = event.at
            day = event.at.astimezone(self.timezone).toordinal()
            night = self._night(self._slot(event.at))
            if night:
                # Per night (the local day it began), not per calendar day, which would count
                # each night twice while there are few: the pet's rate, halved.
                evening = event.at.astimezone(self.timezone) - timedelta(hours=12)
                self.history.move(evening.toordinal(), event.sensor_id)
            if previous is not None and timedelta(0) <= event.at - previous <= STAY:
                continue  # the same stay (a person still in the armchair, a trip there and back)
            self.history.stray(day, event.sensor_id, night=night)

    def _petless(self) -> bool:
        """Has the home shown, over PET_DAYS, that no pet moves its sensors?"""
        return self.history.learned_days() >= PET_DAYS and not self._restless()

    def _restless(self) -> frozenset[str]:
        """Sensors a pet moves (see ``History.restless``), learned once a day."""
        return self._pet_sensors()[0]

    def _pet_sensors(self) -> tuple[frozenset[str], frozenset[str], dict[str, int]]:
        """(sensors a pet moves, sensors a pet visits now and then, per sensor a pet moves the
        movements within BUSY that its pet alone rarely reaches), learned once a day."""
        key = (len(self.history.profiles), max(self.history.profiles, default=0))
        if self._restless_key != key:
            self._restless_key = key
            night_hours = sum(1 for s in range(SLOTS_PER_DAY) if self._night(s)) / 2
            restless = self.history.restless(night_hours)
            # A pet comes by other sensors only where one shows it lives here, moving its own
            # places night after night: without it, lone movements at night are the person's
            # (the hall on a night trip to a bathroom without a sensor, a turn in bed).
            visits = (
                self.history.restless(night_hours, PET_VISIT_RATIO, nightly=0.0)
                if restless
                else frozenset()
            )
            rates = {sensor: self.history.night_rate(sensor, night_hours) for sensor in restless}
            busy = {sensor: _rarely_reached(rate) for sensor, rate in rates.items() if rate}
            self._restless_set = (restless, visits, busy)
        return self._restless_set

    def _back(self, event: ActivityEvent) -> bool:
        """Does this event, while away, say someone is home again? A button or a dial; a
        motion START after the door (or a motion end well after it) in the door's room, or in
        a second room: whoever comes in passes the door, a pet keeps to its own places."""
        door = self.door_at or event.at
        if self._door_returning:
            # The door changes twice (open, close) and the poll sees the close: whoever came
            # in may have moved before it.
            door -= RETURN_WINDOW
        if event.kind in ("button", "rotary"):
            return event.at > door
        if event.ongoing or event.at <= door:
            return False
        if event.kind == "motion" and event.motion_on is False:
            # An end whose start no poll saw (not ``ongoing``): it started after the poll
            # before, which must have come after the door.
            before = self._poll_before
            if before is None or before < door:
                return False
        if event.room is not None and event.room == self._door_room:
            return True
        self._back_sensors.add(event.sensor_id)
        # Two rooms, or as many as the home can show when it has a single motion sensor (a
        # dimmer beside it, pressed now and then, is no second room to wait for) or a single
        # one the bridge still lists and reaches (the others' batteries died, or they were
        # removed: no room to wait for).
        motion = self._seen.keys() & self._motion_sensors
        if self._sensors is not None:
            motion = {sensor for sensor in motion if self._sensors.get(sensor)}
        return len(self._back_sensors) >= min(2, len(motion))

    def _presence(
        self, event: ActivityEvent, *, count: bool, stray: bool = False, sure: bool | None = None
    ) -> None:
        """Someone was there at ``event.at`` (``stray``: a lone movement outside any visit;
        ``sure``: two sensors saw it, found by ``_corroborated`` unless given)."""
        at = event.at
        if count:
            self._count(event, stray=stray)
        if self.last_at is not None and at < self.last_at:
            return  # reported late: counted, but the silence had already ended
        way_back, self._way_back = self._way_back, None
        if self.last_at is not None and self._gap_clean and at > self.last_at:
            self._learn(self.history.gaps, self.last_at, at, self._last_room or "?")
            self._learn_trip(event, self.last_at, way_back)
        if not stray and self._visit_last is not None and self._visit_clean:
            self._learn_night(self._visit_last, event)
        # The silence that this presence ends was judged as bed.
        in_bed = self.last_at is not None and self._room_limit(self.last_at) is None
        corroborated = self._corroborated(event) if sure is None else sure
        if not corroborated and in_bed and self._last_sensor not in self._pet_sensors()[1]:
            # The first movement after a night in bed (not after a pet's movement, where a room
            # stands for the bed that has no sensor): whoever it is starts a new run of lone
            # sensors (the night was judged as sleep; it is no run).
            self._sure_at, self._sure_room, self._run_clean = at, event.room, False
        if corroborated:
            if self._sure_at is not None and self._run_clean and at > self._sure_at:
                self._learn(self.history.runs, self._sure_at, at, self._sure_room or "?")
            self._sure_at, self._sure_room, self._run_clean = at, event.room, True
        self._seen[event.sensor_id] = at
        room = self._room_of(event)
        # Someone out of bed: at night, the first presence after a silence judged as bed.
        risen = (
            in_bed
            and self.last_at is not None
            and _minutes(at - self.last_at) >= MIN_NIGHT_GAP
            and self._night(self._slot(at))
        )
        # Getting up: in the same room, one where the nights are slept (where the bedroom has
        # no sensor, the hall on the way to a bathroom without one; from the armchair to bed
        # is no getting up). The end of that movement, seen at the next poll, is still the
        # getting up.
        ending = event.ongoing and event.motion_on is False and event.sensor_id == self._last_sensor
        self._last_up = (self._last_up and ending) or (
            risen
            and room == self._last_room
            and (room or "?") in (self.history.sleep_rooms() or ())
        )
        self._follow_trip(event, risen=risen)
        if self._last_room is not None and self._last_room != room:
            self._came_from = self._last_room
        self.last_at, self._last_room, self._moved_room, self._turned = at, room, None, False
        self._last_sensor = event.sensor_id
        blind = self._blind_until is not None and at <= self._blind_until
        self._gap_clean = not (self.away or blind)
        if not stray:
            self._visit_last, self._visit_clean = (at, event.room or "?"), self._gap_clean
            self._visit_from, self._lone_ways, self._lone_chain = self._came_from, {}, []
        elif self._petless():
            if self._lone_chain and at - self._lone_chain[-1][0] > CORROBORATE:
                self._lone_chain = []
            self._lone_chain.append((at, event.room or "?"))
            times = self._lone_ways.setdefault(event.room or "?", (self._came_from, []))[1]
            if len(times) >= LONE_WAYS_KEPT:
                del times[1]  # the first and the latest ones tell the night
            times.append(at)
        self._visit_clean = self._visit_clean and self._gap_clean
        self._run_clean = self._run_clean and self._gap_clean
        self._gap_low_day = self._low_activity(at)
        if not stray and self._up_elsewhere(at):
            self._up_day = self._cycle(at)[0]

    def _learn_night(self, visit: tuple[datetime, str], event: ActivityEvent) -> None:
        """The silence between the latest ``visit`` and this one (``event``), watched at home
        throughout, perhaps the night's (``_learn_sleep``). Between visits: a pet's movements do
        not cut it in pieces; lone movements on the way to bed do (``_way_to_bed``)."""
        start, room = visit
        way = self._way_to_bed(event)
        if way is None:
            self._learn_sleep(start, room, event.at, self._visit_from)
            return
        way_room, came_from, times = way
        self._learn_sleep(start, room, times[0], self._visit_from)
        for begin, end in itertools.pairwise([*times, event.at]):
            self._learn_sleep(begin, way_room, end, came_from)

    def _way_to_bed(self, event: ActivityEvent) -> tuple[str, str | None, list[datetime]] | None:
        """Where no pet shows, were lone movements since the latest visit the person on the way
        to a bed beyond them that has no sensor (the hall passed alone at bedtime, and on the
        night's trips)? So they were when the person, seen again now (``event``, a visit), came
        out through their room: the movements that lead to this one, each within CORROBORATE
        of the next, began there, and that room moved alone before them. Then: that room, the
        room the person came from into it, and the times it moved alone before; else None. A
        lone movement in a room the person does not come out of says nothing (a cat too rare
        to be learned as one, moving the kitchen at night while the person sleeps in a bedroom
        with a sensor)."""
        chain = self._lone_chain
        if chain and event.at - chain[-1][0] <= CORROBORATE:
            began, rooms = chain[0][0], [chain[0][1]]
        else:
            # This room, or one whose movement this poll saw only as its end (no poll saw it
            # begin: perhaps before this one, the hall passed on the way to the bathroom).
            began, rooms = event.at, [event.room or "?"]
            rooms += [
                other.room or "?"
                for other in self._batch
                if other.kind in _MOTION
                and other.motion_on is False
                and not other.ongoing
                and timedelta(0) <= other.at - event.at <= CORROBORATE
            ]
        best: tuple[str, str | None, list[datetime]] | None = None
        for room in rooms:
            came_from, times = self._lone_ways.get(room, (None, []))
            before = [at for at in times if at < began]
            if before and (best is None or before[0] < best[2][0]):
                best = (room, came_from, before)
        return best

    def _learn_trip(
        self,
        event: ActivityEvent,
        last: datetime,
        way_back: tuple[int, int, list[str], float] | None,
    ) -> None:
        """The night trips' keys in the gap tables, as ``event`` ends the silence since
        ``last`` (watched at home throughout); ``way_back``: one waiting to be told from
        restless turning by what comes next."""
        at, gaps = event.at, self.history.gaps
        day = last.astimezone(self.timezone).toordinal()
        minutes = _minutes(at - last)
        if way_back is not None and event.ongoing and event.sensor_id == self._last_sensor:
            self._way_back = way_back  # the way back's own end
        elif way_back is not None and (at - last >= STAY or event.room != self._last_room):
            # The night went quiet again (the person back in bed), or the next movement came
            # elsewhere (the morning's first, close to a dawn trip): not restless turning,
            # which moves the same room again within minutes.
            gaps.add(*way_back)
        if self._last_up:
            # Only the room's own keys: how long a night is left quiet after getting up, and
            # (BACK, once the next movement is no restless turning) whether a new movement in that
            # room ended it within STAY: the way back of a trip, not the next turn in bed, which
            # comes when it comes, nor restless turning. New: its start, or its end where no poll
            # saw it start (a pass through the hall in seconds), not the end of the getting up.
            room, slot = self._last_room or "?", self._slot(last)
            gaps.add(day, slot, [UP + room], minutes)
            new = not event.ongoing
            if event.room == self._last_room and new and at - last <= STAY:
                self._way_back = (day, slot, [BACK + room], minutes)
        if self._into_bed(event):
            gaps.add(day, self._slot(at), [INTO + (event.room or "?")], minutes)

    def _follow_trip(self, event: ActivityEvent, *, risen: bool) -> None:
        """A night trip begins with someone out of bed (``risen``), goes on while presences
        follow within STAY at night, and ends back where the nights are slept from another
        room (``_into_bed``)."""
        at = event.at
        if risen:
            self._trip_at = at
        elif self._trip_at is not None and not self._into_bed(event):
            on_trip = self._night(self._slot(at)) and timedelta(0) <= at - self._trip_at <= STAY
            self._trip_at = at if on_trip else None
        else:
            self._trip_at = None

    def _into_bed(self, event: ActivityEvent) -> bool:
        """Is this presence a night trip coming back from another room into a room where the
        nights are slept (through the hall back into the bedroom)? That room's sensor sees the
        bed, not only the way to it."""
        trip, room = self._trip_at, event.room or "?"
        return (
            trip is not None
            and timedelta(0) <= event.at - trip <= STAY
            and room != (self._last_room or "?")
            and room in (self.history.sleep_rooms() or ())
            and self._night(self._slot(event.at))
        )

    def _room_of(self, event: ActivityEvent) -> str | None:
        """The room the person is in after ``event``. A motion END says only that movement
        stopped there (10-40 s after it did): when another sensor STARTED seeing movement after
        this one's movement began, the person left for that room, whose own end may come first
        (the hall's brief passage ends before the bathroom left behind goes quiet)."""
        if event.kind != "motion" or event.motion_on is not False:
            if event.motion_on:
                self._started[event.sensor_id] = event.at
            return event.room
        # This movement began at its seen start, or after the poll before (none seen).
        began = self._started.get(event.sensor_id) if event.ongoing else self._poll_before
        if began is None or self._last_room == event.room:
            return event.room
        later = [
            (start, sensor)
            for sensor, start in self._started.items()
            if sensor != event.sensor_id and began < start <= event.at
        ]
        if not later or self._last_sensor != max(later)[1]:
            return event.room
        return self._last_room

    def _room_limit(self, last: datetime, *, up: bool = True) -> float | None:
        """Minutes the silence since the latest presence (at ``last``) may last, judged by the
        rooms the person may be in: None when that is in bed at night (``up``: or after
        getting up there, as long as the night usually stays quiet then: ``_up_limit``)."""
        limit = self._gap_limit(last, self._last_room)
        if limit is None and up and self._last_up:
            limit = self._up_limit(last)
        if limit is not None and self._moved_room is not None:
            # Perhaps the person, perhaps a pet moved there since: the more lenient of both.
            moved = self._gap_limit(last, self._moved_room)
            limit = None if moved is None else max(limit, moved)
        bed = self._bed_bound()
        if limit is not None and bed is not None and not self._turned:
            # On the way to bed: as lenient as a silence that began there. Not when a movement
            # came in another room within minutes (where a pet lives, so perhaps the pet's):
            # the person may have turned there, and the bedroom's own sensor, which sees
            # nearly every way to bed, saw nothing (the cat's room entered from the hall in the
            # evening).
            in_bed = self._gap_limit(last, bed)
            limit = None if in_bed is None else max(limit, in_bed)
        return limit

    def _up_limit(self, start: datetime) -> float | None:
        """How long the night may stay quiet after someone got up where it is slept (at ``start``):
        as long as it usually does after getting up there, once UP_NIGHTS nights show it and most of
        them came back (BACK: a movement in that room within STAY, no restless turning after it),
        and trips came back into that room from another one on fewer than half of them (None
        otherwise: bed; a share, not a count: a glass of water in the kitchen now and then does not
        switch the rule off). Where the bedroom has no sensor and the bathroom none, a night trip is
        one movement in the hall there and one back: a fall on the way is a hall movement that
        nothing follows, and the rest of the night is sleep only once the person is back. Where the
        bedroom has its own sensor, a movement there is a turn in bed as often as getting up: its
        sensor sees the bed, which the nights' trips come back to through the hall (``_into_bed``);
        the silences after a turn end when they end (the next turn, the morning), after restless
        turning the night is not yet quiet: no rule."""
        slot, room = self._slot(start), self._last_room or "?"
        key = ("up", start.astimezone(self.timezone).toordinal(), slot, room)
        if key not in self._cache:
            gaps = self.history.gaps
            samples = gaps.per_day_maxima(slot, UP + room, NIGHT_WIDTH)
            back = len(gaps.per_day_maxima(slot, BACK + room, NIGHT_WIDTH))
            into = len(gaps.per_day_maxima(slot, INTO + room, NIGHT_WIDTH))
            self._cache[key] = (
                max(self._shrink(samples, VISIT_PRIOR), MIN_NIGHT_GAP)
                if back >= UP_NIGHTS
                and 2 * back > len(samples)
                and 2 * into < len(samples)
                and self._night(slot)
                else -1.0
            )
        value = self._cache[key]
        return None if value < 0 else value

    def _bed_bound(self) -> str | None:
        """A room where the nights are slept that the person may have gone on to unseen (its
        sensor missed the last steps, or saw them too briefly for a poll): the latest presence
        was in the room through which this home goes to bed, coming from elsewhere in the
        home, not from bed (that is someone getting up)."""
        room, sleep = self._last_room or "?", self.history.sleep_rooms()
        if not sleep or room in sleep or self._came_from in (None, *sleep):
            return None
        return min(sleep) if room in self.history.ways_to_bed() else None

    def _slot(self, when: datetime) -> int:
        local = when.astimezone(self.timezone)
        return (local.hour * 60 + local.minute) // MINUTES_PER_SLOT

    def _corroborated(self, event: ActivityEvent, exclude: frozenset[str] = frozenset()) -> bool:
        """Is this surely a person: a door, a button, a dial, or motion that another motion
        sensor saw within CORROBORATE (or in a home with a single motion sensor: a button or
        a dial beside it vouches for nothing, it is pressed too seldom)?"""
        if event.kind not in _MOTION:
            return True
        others = (self._seen.keys() & self._motion_sensors) - {event.sensor_id}
        if not others:
            return True
        others -= exclude
        if any(abs(event.at - self._seen[other]) <= CORROBORATE for other in others):
            return True
        # The same poll may hold the other sensor's later change (the poll sees the hall's end
        # after the bathroom's start), or a lone movement may be waiting for this one.
        pending = [self._pending] if self._pending is not None else []
        return any(
            other.sensor_id != event.sensor_id
            and other.sensor_id not in self._doors | exclude
            and other.kind in _MOTION
            and abs(event.at - other.at) <= CORROBORATE
            for other in [*self._batch, *pending]
        )

    def _learn(self, table: Stretches, start: datetime, end: datetime, room: str) -> None:
        """A completed stretch, for its room; for the whole home, only its part before the
        night (a silence that runs into the night is bedtime: how long the day's silences
        last says nothing about the night's sleep)."""
        day, slot = start.astimezone(self.timezone).toordinal(), self._slot(start)
        minutes = _minutes(end - start)
        table.add(day, slot, [room], minutes)
        to_night = self._to_night(start)
        table.add(day, slot, [ANY], minutes if to_night is None else min(minutes, to_night))

    def _learn_sleep(
        self, start: datetime, room: str, end: datetime, came_from: str | None
    ) -> None:
        """The longest silence of each night began where that night was slept (``room``,
        entered from ``came_from``: the way to bed)."""
        minutes = _minutes(end - start)
        to_night = self._to_night(start)
        if to_night is None or to_night >= minutes:
            return  # a silence of the day
        middle = (start + (end - start) / 2 - timedelta(hours=12)).astimezone(self.timezone)
        night = middle.toordinal()
        if minutes > self._night_longest.get(night, 0.0):
            self._night_longest[night] = minutes
            self.history.sleeps[night] = room
            if came_from is not None and came_from != room:
                self.history.ways[night] = came_from
            else:
                self.history.ways.pop(night, None)

    def _to_night(self, start: datetime) -> float | None:
        """Minutes from ``start`` to the home's next night (0 in it; None: no night known)."""
        local = start.astimezone(self.timezone)
        slot = self._slot(start)
        ahead = next(
            (k for k in range(SLOTS_PER_DAY) if self._night((slot + k) % SLOTS_PER_DAY)), None
        )
        if ahead is None:
            return None
        if ahead == 0:
            return 0.0
        return ahead * MINUTES_PER_SLOT - local.minute % 30 - local.second / 60

    def _profile(self, local: datetime) -> DayProfile:
        return self.history.profiles.setdefault(local.toordinal(), DayProfile())

    def _count(self, event: ActivityEvent, *, stray: bool) -> None:
        at = event.at
        local = at.astimezone(self.timezone)
        profile = self._profile(local)
        profile.counts[local.hour] += 1
        if not stray:
            # The home's rhythm (its night) from visits, not lone movements: a pet is up all
            # night.
            profile.active_slots |= 1 << self._slot(at)
        day, minute = self._cycle(at)
        if day != self._cycle_day:
            self._cycle_day, self._cycle_events = day, []
        if day in self.history.wakes or stray:
            return  # a pet's lone movements wake nobody
        # The first activity of a SUSTAINED stretch after the quietest hour is the wake-up; a
        # night trip (the bathroom, back to bed, then silence) is not.
        if self._cycle_events and minute - self._cycle_events[-1] > WAKE_PAUSE:
            self._cycle_events = []
        self._cycle_events.append(minute)
        first = self._cycle_events[0]
        if len(self._cycle_events) >= WAKE_EVENTS and minute - first >= WAKE_SPAN:
            # Kept as the local time of day: the quietest hour may move as more is learned.
            self.history.wakes[day] = (first + self._quiet_slot() * MINUTES_PER_SLOT) % 1440

    # --- what was learned --------------------------------------------------------------------

    def _quiet_slot(self) -> int:
        key = ("quiet", *self.history.days_version())
        if key not in self._cache:
            share = self.history.active_fraction()
            if share is None:
                self._cache[key] = PRIOR_QUIET_SLOT
            else:
                sums = [
                    sum(share[(s + k) % SLOTS_PER_DAY] for k in range(-2, 3))
                    for s in range(SLOTS_PER_DAY)
                ]
                self._cache[key] = min(range(SLOTS_PER_DAY), key=sums.__getitem__)
        return int(self._cache[key])

    def _cycle(self, when: datetime) -> tuple[int, float]:
        """(day, minutes into it) of the home's own day, which begins at its quietest hour."""
        shifted = when.astimezone(self.timezone) - timedelta(
            minutes=self._quiet_slot() * MINUTES_PER_SLOT
        )
        return shifted.toordinal(), shifted.hour * 60 + shifted.minute + shifted.second / 60

    def _night(self, slot: int) -> bool:
        """Is this half hour in the home's night: the stretch around its quietest hour in
        which someone is rarely active (a nap after lunch is not a night)?"""
        key = ("night", *self.history.days_version())
        if self._nights_key != key:
            self._nights_key = key
            share = self.history.active_fraction()
            if share is None:
                self._nights = PRIOR_NIGHT
            else:
                # While the history is short, the prior night's half hours are pulled toward
                # quiet (fading as the four weeks fill): on the third or fourth day a cat
                # taken for a visit, or a trip at the same hour, is every other day. Never
                # toward activity: a late riser's quiet 07:00-09:00 is night from the start.
                days = len(self.history.complete_days())
                weight = PRIOR_DAYS * max(0.0, 1 - days / HISTORY_DAYS)
                share = [
                    value * days / (days + weight) if half_hour in PRIOR_NIGHT else value
                    for half_hour, value in enumerate(share)
                ]
                quiet = self._quiet_slot()
                found = {quiet} if share[quiet] < NIGHT_SHARE else set()
                for step in (1, -1):
                    at = (quiet + step) % SLOTS_PER_DAY
                    # A half hour with a regular bathroom trip does not end the night.
                    while (
                        found
                        and at not in found
                        and (
                            share[at] < NIGHT_SHARE
                            or share[(at + step) % SLOTS_PER_DAY] < NIGHT_SHARE
                        )
                    ):
                        found.add(at)
                        at = (at + step) % SLOTS_PER_DAY
                self._nights = frozenset(found)
        return slot in self._nights

    def _gap_limit(self, start: datetime, room: str | None) -> float | None:
        """Minutes a silence that began at ``start`` after activity in ``room`` may last; None
        when it is the night's sleep (the morning edge judges that)."""
        return self._limit(self.history.gaps, start, room, DAY_PRIOR, 1.0)

    def _run_limit(self, start: datetime, room: str | None) -> float | None:
        """The same for the time since the latest corroborated presence, while lone sensors
        fire (at least as long as a silence may last)."""
        gap = self._gap_limit(start, room)
        if gap is None:
            return None
        run = self._limit(self.history.runs, start, room, max(gap, RUN_PRIOR), RUN_MARGIN)
        return None if run is None else max(run, gap)

    def _limit(
        self, table: Stretches, start: datetime, room: str | None, prior: float, margin: float
    ) -> float | None:
        local = start.astimezone(self.timezone)
        slot = (local.hour * 60 + local.minute) // MINUTES_PER_SLOT
        key = (id(table), local.toordinal(), slot, room, prior, bool(self._doors))
        if key not in self._cache:
            if self._night(slot):
                self._cache[key] = self._night_limit(table, slot, room, margin)
            else:
                # By day, the whole home's: which room a nap or an armchair evening begins in
                # varies too much to learn per room.
                # Without a door sensor, outings are silences too: the whole morning or
                # afternoon's longest ones count, so the limits grow with them.
                width = DAY_WIDTH if self._doors else NO_DOOR_WIDTH
                samples = table.per_day_maxima(slot, ANY, width)
                limit = max(self._shrink(samples, prior) * margin, MIN_GAP)
                to_night = self._to_night(start)
                if to_night is not None and to_night < limit:
                    # The night comes first: bedtime where the night is slept; elsewhere the
                    # night's part is judged as a night-time visit to that room.
                    night_slot = (slot + math.ceil(to_night / MINUTES_PER_SLOT)) % SLOTS_PER_DAY
                    visit = self._night_limit(table, night_slot, room, margin)
                    limit = -1.0 if visit < 0 else max(limit, to_night + visit)
                self._cache[key] = limit
        value = self._cache[key]
        return None if value < 0 else value

    def _shrink(self, samples: list[float], prior: float) -> float:
        """The learned limit; while the home is still being learned (LEARNING_DAYS), never
        tighter than the prior: a few days' quiet life says little about the next silence."""
        learned = shrink(samples, prior)
        return max(learned, prior) if self.history.learned_days() < LEARNING_DAYS else learned

    def _night_limit(self, table: Stretches, slot: int, room: str | None, margin: float) -> float:
        """How long a visit to ``room`` lasts at night; -1 where the night is slept (the room
        that began the night's longest silence on enough nights; any room until 3 nights are
        known)."""
        sleep = self.history.sleep_rooms()
        if sleep is None or (room or "?") in sleep:
            return -1.0
        samples = table.per_day_maxima(slot, room or "?", NIGHT_WIDTH)
        return max(self._shrink(samples, VISIT_PRIOR) * margin, MIN_NIGHT_GAP)

    def _wake_due(self) -> float:
        """Minutes into the home's day by which it is usually up, plus a margin."""
        quiet_slot = self._quiet_slot()
        key = ("wake", *self.history.days_version(), len(self.history.wakes), quiet_slot)
        if key not in self._cache:
            quiet = quiet_slot * MINUTES_PER_SLOT
            wakes = [(wake - quiet) % 1440 for wake in self.history.wakes.values()]
            # Up by 09:30 (the prior wake, from the prior quietest hour, 04:00): where the
            # learned quietest hour is earlier in the night (midnight), that clock time is
            # later than PRIOR_WAKE from it, and wins; never earlier, nor outside the prior
            # night (someone who sleeps by day: PRIOR_WAKE after their quietest hour).
            prior = PRIOR_WAKE
            if quiet_slot in PRIOR_NIGHT:
                clock = (PRIOR_QUIET_SLOT * MINUTES_PER_SLOT + PRIOR_WAKE - quiet) % 1440
                prior = max(prior, clock)
            if len(wakes) >= 2:
                spread = quantile(wakes, 0.9) - quantile(wakes, 0.1)
                learned = quantile(wakes, 0.9) + max(WAKE_MARGIN, spread / 2)
            else:
                learned = prior + WAKE_MARGIN
            weight = len(wakes)
            self._cache[key] = (weight * learned + 3 * (prior + 2 * WAKE_MARGIN)) / (weight + 3)
        return self._cache[key]

    def _low_activity(self, now: datetime) -> bool:
        local = now.astimezone(self.timezone)
        today = self.history.profiles.get(local.toordinal())
        wakes = sorted(self.history.wakes.values())
        if today is None or len(wakes) < LOW_DAYS:
            return False
        # Counted from the hour the home usually wakes up: the night says nothing.
        hours = slice(int(statistics.median(wakes) // 60), local.hour + 1)
        count, minutes = today.rate(hours)
        if minutes < LOW_HOURS * 60:
            return False
        key = ("usual", local.toordinal(), hours.start, hours.stop)
        if key not in self._cache:
            rates = []
            for day, profile in self.history.profiles.items():
                past_count, past_minutes = profile.rate(hours)
                if day != local.toordinal() and past_minutes >= LOW_HOURS * 60:
                    rates.append(past_count / past_minutes)
            self._cache[key] = statistics.median(rates) if len(rates) >= LOW_DAYS else -1.0
        usual = self._cache[key]
        return usual > 0 and count / minutes < LOW_FRACTION * usual

    # --- the verdict -------------------------------------------------------------------------

    def verdict(self, now: datetime) -> Verdict:
        """The state of the home at ``now``."""
        days = self.history.learned_days()
        low = self.reachable and self._low_activity(now)

        def verdict(
            state: str, since: datetime | None, reason: str | None, limit: float | None
        ) -> Verdict:
            return Verdict(
                state,
                since,
                reason,
                None if limit is None else timedelta(minutes=limit),
                learning=days < LEARNING_DAYS,
                confidence=min(1.0, days / CONFIDENT_DAYS),
                away=self.away,
                low_activity_today=low,
                last_activity=self.last_at,
            )

        if len(self._cache) > 4096:
            self._cache.clear()
        last = self.last_at
        if last is None or not self.reachable:
            reason = "no_activity" if last is None else "unreachable"
            return verdict(UNKNOWN, None, reason, None)
        if self.away:
            return verdict(AWAY, self.door_at, None, None)
        factor = LOW_DAY_FACTOR if self._gap_low_day else 1.0
        gap = _minutes(now - last)
        limit = self._room_limit(last)
        bed = self._bed_bound()
        pets = self._pet_sensors()[1]
        # A lone movement at night (a pet, a turn in bed) is no visit while the home is learned
        # (``_lone_judged``: from PET_DAYS outside the way to bed) and where a pet is seen; in
        # a home without one it is the person (whose bathroom, say, has no sensor). One since
        # then that is perhaps a pet's only makes the silence as lenient as that room's
        # (``_room_limit``): the cat passing the kitchen after a fall in the bathroom leaves
        # that visit judged.
        lone = self._last_lone and (not self._lone_judged(days) or bool(pets))
        if limit is not None and self._night(self._slot(last)) and lone:
            limit = None
        found: dict[str, tuple[datetime, float]] = {}
        if limit is not None and gap > limit * factor:
            found["unusual_gap"] = (last, limit * factor)
        day, minute = self._cycle(now)
        woken = day in self.history.wakes
        due = self._wake_due()
        began = now - timedelta(minutes=minute)  # the home's day began (its quietest hour)
        watched = self.watching_since is not None and self.watching_since <= began
        if (
            watched
            and not woken
            and minute > due
            and last < began + timedelta(minutes=due)
            and gap >= MIN_GAP * factor
            and self._up_day != day
        ):
            found["not_up"] = (last, gap - (minute - due))
        sure = self._sure_at
        if sure is not None and last - sure > CORROBORATE:
            # Only lone sensors have fired since ``sure``, for longer than usual.
            run_limit = self._run_limit(sure, self._sure_room)
            # A sleep room's lone sensor is the person in bed unless it is a pet's own place:
            # where a pet only comes by, a lone movement was taken as presence only once a
            # second sign confirmed it (a pet's passing by is one movement).
            in_bed_room = (
                self._last_room
                if self._last_room in (self.history.sleep_rooms() or ())
                and self._last_sensor not in self._restless()
                else bed
            )
            if run_limit is not None and in_bed_room is not None:
                # The lone sensor is where the nights are slept, or on the way there: the
                # person may be in bed.
                in_bed = self._run_limit(sure, in_bed_room)
                run_limit = None if in_bed is None else max(run_limit, in_bed)
            if run_limit is not None and _minutes(now - sure) > run_limit * factor:
                found["one_sensor"] = (sure, run_limit * factor)
        if (
            self.safety_net is not None
            and self._net_reached(now, last)
            and not self._unseen_outing(days, limit, factor, last)
        ):
            found["safety_net"] = (last, _minutes(self.safety_net))
        for reason in REASONS:
            if reason in found:
                since, minutes = found[reason]
                return verdict(INACTIVE, since, reason, minutes)
        resting = not woken or self._night(self._slot(last))
        state = RESTING if resting and gap >= MIN_NIGHT_GAP else ACTIVE
        return verdict(state, last, None, None if limit is None else limit * factor)

    def _lone_judged(self, days: int) -> bool:
        """Is a lone movement at night in a home without a pet the person, after ``days`` of
        history? Once learned, yes; from PET_DAYS (a pet shows by then), only once the rooms
        where the nights are slept are known and the movement is neither in one of them nor
        on the way there (a turn in bed, the hall on the way to bed: sleep all the same)."""
        if days >= LEARNING_DAYS:
            return True
        room, sleep = self._last_room or "?", self.history.sleep_rooms()
        return (
            days >= PET_DAYS
            and bool(sleep)
            and room not in (sleep or ())
            and room not in self.history.ways_to_bed()
        )

    def _up_elsewhere(self, at: datetime) -> bool:
        """Is the latest presence (at ``at``) someone up: by day, in a room where this home's
        nights are not slept, nor on the way there? Then the night has ended for this day,
        however little moved since (a slow morning, an ill day in bed after breakfast): its
        silences are judged by their own limits, never as "not up"."""
        sleep = self.history.sleep_rooms()
        return (
            sleep is not None
            and (self._last_room or "?") not in sleep
            and self._bed_bound() is None
            and not self._night(self._slot(at))
        )

    def _unseen_outing(self, days: int, limit: float | None, factor: float, last: datetime) -> bool:
        """In a home without a door sensor, outings are silences no door tells: once learned
        (past LEARNING_DAYS), a silence whose learned limit is longer than the safety net (this
        home's silences beginning at this time of day last that long: its outings) is judged
        by that limit alone, as an absence after a door would be. The silences after getting
        up at night are no outings: their limit (``_up_limit``) never stands in for the net."""
        assert self.safety_net is not None
        if limit is not None and self._last_up:
            limit = self._room_limit(last, up=False)
        return (
            not self._doors
            and days >= LEARNING_DAYS
            and limit is not None
            and limit * factor > _minutes(self.safety_net)
        )

    def _net_reached(self, now: datetime, last: datetime) -> bool:
        """The user's fixed rule: that long without activity outside quiet hours, counted from
        their end at the earliest (a night's sleep is not inactivity)."""
        assert self.safety_net is not None
        local = now.astimezone(self.timezone)
        start, end = self.quiet_hours
        if start == end:  # no quiet hours
            return now - last >= self.safety_net
        if in_quiet_hours(local.time(), start, end):
            return False
        ended = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
        if ended > local:
            ended -= timedelta(days=1)
        return now - max(last, ended) >= self.safety_net

    # --- persistence -------------------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """JSON-ready state: the history and the state in progress (``KEPT``)."""
        return {"history": self.history.export(), **persist.write(KEPT, self)}

    @classmethod
    def restore(
        cls,
        data: Mapping[str, Any] | None,
        timezone: tzinfo,
        *,
        safety_net: timedelta | None = timedelta(hours=3),
        quiet_hours: tuple[time, time] = (time(22), time(7)),
        now: datetime | None = None,
    ) -> InactivityDetector:
        """From ``export``, at ``now`` (Home Assistant's start). The silence after a restart is
        not learned from (we were not watching all of it); anything unreadable, or (given
        ``now``) later than it, as a corrupt store may hold, is dropped, never fatal."""
        data = dict(data) if isinstance(data, Mapping) else {}
        history = History.restore(data.get("history"))
        latest = None if now is None else now + MAX_STEP
        if latest is not None:
            today = latest.astimezone(timezone).toordinal()
            history.forget_before(today - HISTORY_DAYS, after=today + 1)
        detector = cls(timezone, safety_net=safety_net, quiet_hours=quiet_hours, history=history)
        persist.read(KEPT, detector, data, latest)
        detector._blind_until = detector.last_at
        detector._resumed = True
        detector.away = detector.away and detector.door_at is not None
        return detector


#: What a restart keeps besides the history (attribute: kind, see ``persist``): the silence in
#: progress is judged after it as before (where and how the person was last seen: getting up at
#: night, a lone movement, on the way to bed; a lone sensor's run; an absence; a wake-up under
#: way; someone seen up today), and the next movement is read as it would have been (which
#: sensors saw what last, a visit going on, a lone movement waiting for a second sign, the
#: latest poll: what the first poll after the restart sees happened since; a pet's recent
#: lone movements, counted as its place being busy).
KEPT: dict[str, str] = {
    "last_at": "time",
    "_last_room": "str",
    "_last_sensor": "str",
    "_last_lone": "bool",
    "_last_up": "bool",
    "_trip_at": "time",
    "_turned": "bool",
    "_moved_room": "str",
    "_came_from": "str",
    "_gap_low_day": "bool",
    "_sure_at": "time",
    "_sure_room": "str",
    "_visit_at": "times",
    "_seen": "times",
    "_started": "times",
    "_motion_sensors": "texts",
    "_pending": "event",
    "_night_longest": "per_night",
    "door_at": "time",
    "away": "bool",
    "_door_room": "str",
    "_doors": "texts",
    "_door_returning": "bool",
    "_back_at": "time",
    "_back_by_door": "bool",
    "_back_sensors": "texts",
    "watching_since": "time",
    "_up_day": "day",
    "_cycle_day": "day",
    "_cycle_events": "numbers",
    "_previous_poll": "time",
    "_stray_at": "times",
    "_busy_moves": "time_lists",
}
#: What a restart does not keep: settings, the history (kept on its own), what is derived from
#: it (caches, the night, the pet's sensors: derived again from the history at the restart),
#: the poll in progress and what each poll tells anew (the sensors the bridge lists), and
#: what only serves learning (the silence across a restart, and
#: what the first poll after it brings, are never learned).
NOT_KEPT = frozenset(
    {
        "timezone",
        "safety_net",
        "quiet_hours",
        "history",
        "_cache",
        "_nights",
        "_nights_key",
        "_restless_key",
        "_restless_set",
        "reachable",
        "_batch",
        "_poll_before",
        "_blind_until",
        "_gap_clean",
        "_run_clean",
        "_visit_clean",
        "_visit_last",
        "_visit_from",
        "_lone_ways",
        "_lone_chain",
        "_lone_recent",
        "_way_back",
        "_resumed",
        "_sensors",
    }
)
