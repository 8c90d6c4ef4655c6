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

Why a verdict is ``inactive`` (``reason``):
* ``unusual_gap``: the gap is longer than this home's gaps usually get when they begin at this
  time of day in this room (at night: how long a visit to the bathroom usually lasts);
* ``not_up``: the night has not ended: no sustained activity since the home's quietest hour,
  well past the time the home usually wakes up (the morning edge follows the home, not a clock);
* ``one_sensor``: only one sensor has fired for unusually long (a pet, or a sensor stuck on):
  the silence is judged as if that sensor were not there;
* ``safety_net``: the user's fixed threshold (outside the quiet hours, which it counts from the
  end of) was reached, whatever was learned.
A day with far less activity than usual is reported separately (``low_activity_today``), and
makes gaps that begin on such a day tolerated longer; it never raises an alarm by itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
import statistics
from typing import Any

from .history import (
    ANY,
    HISTORY_DAYS,
    MINUTES_PER_SLOT,
    SLOTS_PER_DAY,
    DayProfile,
    History,
    Stretches,
    quantile,
    shrink,
)
from .tracker import ActivityEvent

ACTIVE, RESTING, AWAY, INACTIVE, UNKNOWN = "active", "resting", "away", "inactive", "unknown"
#: Priors (minutes) while the history is short: day and night gaps, one-sensor runs.
DAY_PRIOR = 150.0
NIGHT_PRIOR = 600.0
RUN_PRIOR = 240.0
#: Coming back: motion this long before the door's last change is someone coming in.
RETURN_WINDOW = timedelta(minutes=1)
#: Presence is corroborated when two sensors fire within this.
CORROBORATE = timedelta(minutes=3)
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
#: A room whose night-time silences usually (median) last this long is where the night is slept.
SLEEP_GAP = 180.0
#: How long a night-time visit to a room may last before anything is learned about it.
VISIT_PRIOR = 120.0
#: Samples (days) before a room's nights are judged from its own history.
LEARNED_SAMPLES = 3
#: Half hours active on fewer than this share of days are the home's night.
NIGHT_SHARE = 0.35
#: Prior for the night when nothing is learned yet (local half hours 22:00-07:00).
PRIOR_NIGHT = frozenset([*range(44, 48), *range(14)])
#: Prior quietest half hour (04:00), and minutes from it to the usual first activity.
PRIOR_QUIET_SLOT = 8
PRIOR_WAKE = 330.0
#: The morning edge: usual (90th percentile) first activity plus at least this.
WAKE_MARGIN = 45.0
#: Sustained activity: this many events within WAKE_WINDOW minutes, spread over WAKE_SPAN.
WAKE_EVENTS = 3
WAKE_WINDOW = 45.0
WAKE_SPAN = 10.0
#: "Low activity today": at least this many hours watched today, this many days to compare.
LOW_HOURS = 4.0
LOW_DAYS = 5
LOW_FRACTION = 0.5
#: Gaps that begin on a low-activity day may last this much longer.
LOW_DAY_FACTOR = 1.6
#: Days of history for full confidence; below LEARNING_DAYS the verdict says "learning".
CONFIDENT_DAYS = 14
LEARNING_DAYS = 7
#: Steps longer than this between polls are not counted as time watched.
MAX_STEP = timedelta(minutes=15)
#: Kinds that only repeat what the sensors themselves saw.
_REPEATS = frozenset({"room_motion", "home_motion"})
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


def in_quiet_hours(local: time, start: time, end: time) -> bool:
    """Is the local time inside quiet hours? They may wrap midnight."""
    if start <= end:
        return start <= local < end
    return local >= start or local < end


class InactivityDetector:
    """One per home. ``observe`` at every poll; ``verdict`` any time after."""

    def __init__(
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
        #: The latest CORROBORATED presence (two sensors within CORROBORATE), and its room:
        #: a pet, or a sensor stuck on, fires alone.
        self._sure_at: datetime | None = None
        self._sure_room: str | None = None
        self._run_clean = False
        #: Each sensor's latest presence, and which sensors are doors.
        self._seen: dict[str, datetime] = {}
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
        self.away = False
        self.reachable = True
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

    # --- feeding ---------------------------------------------------------------------------

    def observe(
        self, now: datetime, events: Iterable[ActivityEvent], *, reachable: bool = True
    ) -> Verdict:
        """Fold in one poll: its events (oldest first) and whether the bridge was read."""
        self.reachable = reachable
        if self.watching_since is None:
            self.watching_since = now
        if not reachable:
            self._blind_until = now
            self._gap_clean = self._run_clean = False
            self._previous_poll = now
            return self.verdict(now)
        if self._previous_poll is not None and not self.away:
            step = min(now - self._previous_poll, MAX_STEP)
            if step > timedelta(0):
                local = now.astimezone(self.timezone)
                self._profile(local).home_minutes[local.hour] += _minutes(step)
        self._poll_before, self._previous_poll = self._previous_poll, now
        for event in sorted(events, key=lambda e: e.at):
            self._event(event, now)
        self.history.forget_before(now.astimezone(self.timezone).toordinal() - HISTORY_DAYS)
        return self.verdict(now)

    def _event(self, event: ActivityEvent, now: datetime) -> None:
        if event.kind in _REPEATS:
            return
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
            self._gap_clean = self._run_clean = False
            return
        if self.away:
            if not self._back(event):
                return  # the leaver's own motion ending, "still on" from before the door, a pet
            self.away, self._back_at = False, event.at
            self._back_by_door = self._door_returning
        self._presence(event, count=not event.ongoing)

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
        # Two rooms, or as many as the home can show when it has a single motion sensor.
        return len(self._back_sensors) >= min(2, len(self._seen.keys() - self._doors))

    def _presence(self, event: ActivityEvent, *, count: bool) -> None:
        at = event.at
        if count:
            self._count(event)
        if self.last_at is not None and at < self.last_at:
            return  # reported late: counted, but the silence had already ended
        if self.last_at is not None and self._gap_clean and at > self.last_at:
            self._learn(self.history.gaps, self.last_at, at, (ANY, self._last_room or "?"))
        if self._corroborated(event):
            if self._sure_at is not None and self._run_clean and at > self._sure_at:
                room = self._sure_room or "?"
                self._learn(self.history.runs, self._sure_at, at, (ANY, room))
            self._sure_at, self._sure_room, self._run_clean = at, event.room, True
        self._seen[event.sensor_id] = at
        self.last_at, self._last_room = at, event.room
        blind = self._blind_until is not None and at <= self._blind_until
        self._gap_clean = not (self.away or blind)
        self._run_clean = self._run_clean and self._gap_clean
        self._gap_low_day = self._low_activity(at)

    def _slot(self, when: datetime) -> int:
        local = when.astimezone(self.timezone)
        return (local.hour * 60 + local.minute) // MINUTES_PER_SLOT

    def _sure(self, at: datetime) -> bool:
        """Was the presence at ``at`` corroborated by another sensor?"""
        return self._sure_at is not None and at - self._sure_at <= CORROBORATE

    def _corroborated(self, event: ActivityEvent) -> bool:
        """Is this surely a person: a door, a button, a dial, or motion that another motion
        sensor saw within CORROBORATE (or in a home with a single motion sensor)?"""
        if event.kind not in {"motion", "area_motion"}:
            return True
        others = self._seen.keys() - {event.sensor_id} - self._doors
        if not others:
            return True
        return any(abs(event.at - self._seen[other]) <= CORROBORATE for other in others)

    def _learn(
        self, table: Stretches, start: datetime, end: datetime, keys: tuple[str, ...]
    ) -> None:
        day = start.astimezone(self.timezone).toordinal()
        table.add(day, self._slot(start), keys, _minutes(end - start))

    def _profile(self, local: datetime) -> DayProfile:
        return self.history.profiles.setdefault(local.toordinal(), DayProfile())

    def _count(self, event: ActivityEvent) -> None:
        at = event.at
        local = at.astimezone(self.timezone)
        profile = self._profile(local)
        profile.counts[local.hour] += 1
        if self._corroborated(event):
            # The home's rhythm (its night) from corroborated presence: a pet is up all night.
            profile.active_slots |= 1 << self._slot(at)
        day, minute = self._cycle(at)
        if day != self._cycle_day:
            self._cycle_day, self._cycle_events = day, []
        if day in self.history.wakes:
            return
        # The first activity of a SUSTAINED stretch after the quietest hour is the wake-up.
        self._cycle_events = [m for m in self._cycle_events if minute - m <= WAKE_WINDOW] + [minute]
        first = self._cycle_events[0]
        if len(self._cycle_events) >= WAKE_EVENTS and minute - first >= WAKE_SPAN:
            # Kept as the local time of day: the quietest hour may move as more is learned.
            self.history.wakes[day] = (first + self._quiet_slot() * MINUTES_PER_SLOT) % 1440

    # --- what was learned --------------------------------------------------------------------

    def _quiet_slot(self) -> int:
        key = ("quiet", len(self.history.profiles))
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
        key = ("night", len(self.history.profiles))
        if self._nights_key != key:
            self._nights_key = key
            share = self.history.active_fraction()
            if share is None:
                self._nights = PRIOR_NIGHT
            else:
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
                limit = max(shrink(samples, prior) * margin, MIN_GAP)
                # Begun in the day, and the night comes before it would be unusual: bedtime.
                ahead = next(
                    (k for k in range(1, SLOTS_PER_DAY) if self._night((slot + k) % SLOTS_PER_DAY)),
                    None,
                )
                to_night = None if ahead is None else ahead * MINUTES_PER_SLOT - local.minute % 30
                if ahead is not None and to_night is not None and to_night < limit:
                    # The night comes first: bedtime, unless this room is not where it is slept.
                    night_slot = (slot + ahead) % SLOTS_PER_DAY
                    visit = self._night_limit(table, night_slot, room, margin)
                    limit = -1.0 if visit < 0 else max(limit, to_night + visit)
                self._cache[key] = limit
        value = self._cache[key]
        return None if value < 0 else value

    def _night_limit(self, table: Stretches, slot: int, room: str | None, margin: float) -> float:
        """How long a visit to ``room`` lasts at night; -1 where the night is slept (the room
        where night-time silences are usually long, or any room before anything is learned)."""
        samples = table.per_day_maxima(slot, room or "?", NIGHT_WIDTH)
        if len(samples) >= LEARNED_SAMPLES and statistics.median(samples) < SLEEP_GAP:
            return max(shrink(samples, VISIT_PRIOR) * margin, MIN_NIGHT_GAP)
        if len(samples) >= LEARNED_SAMPLES or self.history.learned_days() < LEARNING_DAYS:
            return -1.0
        return VISIT_PRIOR  # a room hardly ever visited at night

    def _wake_due(self) -> float:
        """Minutes into the home's day by which it is usually up, plus a margin."""
        key = ("wake", len(self.history.wakes), len(self.history.profiles), self._quiet_slot())
        if key not in self._cache:
            quiet = self._quiet_slot() * MINUTES_PER_SLOT
            wakes = [(wake - quiet) % 1440 for wake in self.history.wakes.values()]
            if len(wakes) >= 2:
                spread = quantile(wakes, 0.9) - quantile(wakes, 0.1)
                learned = quantile(wakes, 0.9) + max(WAKE_MARGIN, spread / 2)
            else:
                learned = PRIOR_WAKE + WAKE_MARGIN
            weight = len(wakes)
            self._cache[key] = (weight * learned + 3 * (PRIOR_WAKE + 2 * WAKE_MARGIN)) / (
                weight + 3
            )
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
        limit = self._gap_limit(last, self._last_room)
        if limit is not None and self._night(self._slot(last)) and not self._sure(last):
            limit = None  # a lone event in the night (a pet, a turn in bed) is not a visit
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
        ):
            found["not_up"] = (last, gap - (minute - due))
        sure = self._sure_at
        if sure is not None and last - sure > CORROBORATE:
            # Only lone sensors have fired since ``sure``, for longer than usual.
            run_limit = self._run_limit(sure, self._sure_room)
            if run_limit is not None and _minutes(now - sure) > run_limit * factor:
                found["one_sensor"] = (sure, run_limit * factor)
        if self.safety_net is not None and self._net_reached(now, last):
            found["safety_net"] = (last, _minutes(self.safety_net))
        for reason in REASONS:
            if reason in found:
                since, minutes = found[reason]
                return verdict(INACTIVE, since, reason, minutes)
        resting = not woken or self._night(self._slot(last))
        state = RESTING if resting and gap >= MIN_NIGHT_GAP else ACTIVE
        return verdict(state, last, None, None if limit is None else limit * factor)

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
        """JSON-ready state (the history and the current gap)."""

        def iso(when: datetime | None) -> str | None:
            return when.isoformat() if when else None

        return {
            "history": self.history.export(),
            "last_at": iso(self.last_at),
            "last_room": self._last_room,
            "door_at": iso(self.door_at),
            "away": self.away,
            "door_room": self._door_room,
            "doors": sorted(self._doors),
            "watching_since": iso(self.watching_since),
        }

    @classmethod
    def restore(
        cls,
        data: Mapping[str, Any] | None,
        timezone: tzinfo,
        *,
        safety_net: timedelta | None = timedelta(hours=3),
        quiet_hours: tuple[time, time] = (time(22), time(7)),
    ) -> InactivityDetector:
        """From ``export``. The silence after a restart is not learned from (we were not
        watching all of it); anything unreadable is dropped, never fatal."""
        data = data or {}
        history = History.restore(data.get("history"))
        detector = cls(timezone, safety_net=safety_net, quiet_hours=quiet_hours, history=history)

        def when(key: str) -> datetime | None:
            try:
                value = datetime.fromisoformat(str(data.get(key)))
            except ValueError:
                return None
            return value if value.tzinfo is not None else None

        detector.last_at, detector.door_at = when("last_at"), when("door_at")
        detector.watching_since = when("watching_since")
        detector._blind_until = detector.last_at
        for attribute, key in (
            ("_last_room", "last_room"),
            ("_door_room", "door_room"),
        ):
            value = data.get(key)
            setattr(detector, attribute, value if isinstance(value, str) else None)
        detector.away = data.get("away") is True and detector.door_at is not None
        doors = data.get("doors")
        if isinstance(doors, list):
            detector._doors = {door for door in doors if isinstance(door, str)}
        return detector
