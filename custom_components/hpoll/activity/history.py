"""What the inactivity detector learned about ONE home, kept small and robust.

Only COMPLETED stretches are learned, and only those lived at home with the bridge reachable (the
detector decides what qualifies). Per local day and per half hour in which a stretch began, the
longest one is kept (per-day maxima: a rare long gap counts once, not once per poll), for the
whole home and per room of the activity that began it. A threshold is a high quantile of the
per-day maxima around that time of day, times a margin, shrunk toward a prior while the history
is short (a home is watched from its first day, not after weeks of learning).

Besides gaps: the daily "first activity" (wake) time, per-day activity profiles (which half hours
saw someone, and how much per hour at home) for "low activity today". Pure Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
import math
from typing import Any

SLOTS_PER_DAY = 48
MINUTES_PER_SLOT = 30
#: Days of history kept (older days are forgotten: a home's life changes).
HISTORY_DAYS = 28
QUANTILE = 0.9
MARGIN = 2.0
#: Weight of the prior, in days of history: after this many days the learned half dominates.
PRIOR_DAYS = 5.0
#: A room is where the night is slept when it began the night's longest silence this often.
SLEEP_SHARE = 0.2
#: ... and the way to bed is the room the person came from into it at least this often.
WAY_SHARE = 0.5
#: A sensor firing alone at night at least this share of its rate by day (and at least this
#: many times in the history) is restless: moved by something else than the person.
RESTLESS_RATIO = 0.5
#: ... and at least this share: a pet comes by now and then.
PET_VISIT_RATIO = 0.1
RESTLESS_EVENTS = 3
#: A person gets up once or twice a night; a pet moves a sensor more often than that.
RESTLESS_NIGHTLY = 2.0
#: A day is learned from once this many minutes of it were watched at home.
LEARNED_MINUTES = 180
#: The key for "any room" in the gap tables.
ANY = "*"


def _is_number(key: object) -> bool:
    """A stored day or half hour key (a corrupt store may hold any text)."""
    text = str(key)
    return text.isdecimal() and len(text) < 10


def quantile(values: Iterable[float], q: float) -> float:
    """Empirical quantile, linear between order statistics."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def shrink(samples: list[float], prior: float) -> float:
    """A high quantile of ``samples`` times the margin, pulled toward ``prior`` while few
    (a weighted geometric mean: durations are compared by ratio, not difference)."""
    if not samples:
        return prior
    learned = max(quantile(samples, QUANTILE) * MARGIN, 1.0)
    n = len(samples)
    return math.exp((n * math.log(learned) + PRIOR_DAYS * math.log(prior)) / (n + PRIOR_DAYS))


def _window(slot: int, width: int = 2) -> list[int]:
    return [(slot + offset) % SLOTS_PER_DAY for offset in range(-width, width + 1)]


@dataclass
class Stretches:
    """Per day: per start slot: per key, the longest completed stretch (minutes)."""

    days: dict[int, dict[int, dict[str, float]]] = field(default_factory=dict)

    def add(self, day: int, slot: int, keys: Iterable[str], minutes: float) -> None:
        """One completed stretch that began on ``day`` in ``slot``."""
        slots = self.days.setdefault(day, {})
        entry = slots.setdefault(slot, {})
        for key in keys:
            entry[key] = max(entry.get(key, 0.0), round(minutes, 1))

    def per_day_maxima(
        self, slot: int, key: str, width: int = 2, among: Iterable[int] | None = None
    ) -> list[float]:
        """For each day with a stretch beginning near ``slot`` (± ``width`` half hours, only
        those ``among`` if given) under ``key``: its longest."""
        found = []
        window = _window(slot, width)
        if among is not None:
            allowed = set(among)
            window = [s for s in window if s in allowed]
        for slots in self.days.values():
            values = [slots[s][key] for s in window if s in slots and key in slots[s]]
            if values:
                found.append(max(values))
        return found

    def forget_before(self, day: int, *, after: int | None = None) -> None:
        """Drop days older than ``day`` (and any ``after`` that one)."""
        for old in [d for d in self.days if d < day or (after is not None and d > after)]:
            del self.days[old]

    def export(self) -> dict[str, dict[str, dict[str, float]]]:
        """JSON-ready."""
        return {
            str(day): {str(slot): dict(entry) for slot, entry in slots.items()}
            for day, slots in self.days.items()
        }

    @classmethod
    def restore(cls, data: Any) -> Stretches:
        """From ``export`` (anything unreadable is dropped)."""
        stretches = cls()
        for day, slots in data.items() if isinstance(data, dict) else ():
            if not (_is_number(day) and isinstance(slots, dict)):
                continue
            for slot, entry in slots.items():
                if not (_is_number(slot) and isinstance(entry, dict)):
                    continue
                keys = {str(k): float(v) for k, v in entry.items() if isinstance(v, int | float)}
                if keys and 0 <= int(slot) < SLOTS_PER_DAY:
                    stretches.days.setdefault(int(day), {})[int(slot)] = keys
        return stretches


@dataclass
class DayProfile:
    """One local day: activity per hour, minutes at home (reachable) per hour, and the half
    hours that saw any activity (a bit mask)."""

    counts: list[int] = field(default_factory=lambda: [0] * 24)
    home_minutes: list[float] = field(default_factory=lambda: [0.0] * 24)
    active_slots: int = 0

    @property
    def watched(self) -> bool:
        """Watched at home long enough to be learned from."""
        return sum(self.home_minutes) >= LEARNED_MINUTES

    def rate(self, hours: slice) -> tuple[float, float]:
        """(activity count, minutes at home) over these hours of the day."""
        return float(sum(self.counts[hours])), sum(self.home_minutes[hours])

    def export(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "counts": self.counts,
            "home_minutes": [round(m, 1) for m in self.home_minutes],
            "active_slots": self.active_slots,
        }

    @classmethod
    def restore(cls, data: Any) -> DayProfile | None:
        """From ``export``; None when unreadable."""
        if not isinstance(data, dict):
            return None
        counts, minutes = data.get("counts"), data.get("home_minutes")
        if not (isinstance(counts, list) and isinstance(minutes, list)):
            return None
        if len(counts) != 24 or len(minutes) != 24:
            return None
        if not all(isinstance(v, int | float) for v in (*counts, *minutes)):
            return None
        slots = data.get("active_slots")
        return cls(
            [int(v) for v in counts],
            [float(v) for v in minutes],
            slots if isinstance(slots, int) else 0,
        )


@dataclass
class History:
    """Everything learned (persisted by the caller through ``export``/``restore``)."""

    gaps: Stretches = field(default_factory=Stretches)
    #: Stretches during which only ONE sensor fired (a pet, a stuck sensor, or an armchair).
    runs: Stretches = field(default_factory=Stretches)
    #: Per day (of the home's own day, from its quietest hour): the local time (minutes after
    #: midnight) of the first sustained activity.
    wakes: dict[int, float] = field(default_factory=dict)
    profiles: dict[int, DayProfile] = field(default_factory=dict)
    #: Per night (the local day it began): the room of the presence before its longest silence,
    #: where the night is slept.
    sleeps: dict[int, str] = field(default_factory=dict)
    #: Per day, per sensor: [at night, by day] events that fired ALONE and outside a visit a
    #: sure presence began (a pet's; a person's movements come in corroborated sequences).
    strays: dict[int, dict[str, list[int]]] = field(default_factory=dict)
    #: Per night: the room the person came from into the room where that night was slept (the
    #: way to bed: its last step may go unseen).
    ways: dict[int, str] = field(default_factory=dict)
    #: Per night (the local day it began), per sensor: lone movements at night, each one
    #: (``strays`` counts a stay once): how often a pet alone moves its own place.
    moves: dict[int, dict[str, int]] = field(default_factory=dict)

    def sleep_rooms(self) -> set[str] | None:
        """Rooms where this home's nights are slept: those that began its longest night-time
        silence on at least a fifth of the nights (None while fewer than 3 nights are known)."""
        if len(self.sleeps) < 3:
            return None
        counts: dict[str, int] = {}
        for room in self.sleeps.values():
            counts[room] = counts.get(room, 0) + 1
        return {room for room, n in counts.items() if n >= SLEEP_SHARE * len(self.sleeps)}

    def ways_to_bed(self) -> set[str]:
        """The room through which this home usually goes to bed: the one it came from into
        the night's room on at least half of the nights (none while fewer than 3 are known)."""
        if len(self.ways) < 3:
            return set()
        counts: dict[str, int] = {}
        for room in self.ways.values():
            counts[room] = counts.get(room, 0) + 1
        return {room for room, n in counts.items() if n >= WAY_SHARE * len(self.ways)}

    def stray(self, day: int, sensor: str, *, night: bool) -> None:
        """A lone event of ``sensor`` outside any visit, on ``day``."""
        counts = self.strays.setdefault(day, {}).setdefault(sensor, [0, 0])
        counts[0 if night else 1] += 1

    def move(self, night: int, sensor: str) -> None:
        """A lone movement of ``sensor`` in ``night`` (every one, not once a stay)."""
        sensors = self.moves.setdefault(night, {})
        sensors[sensor] = sensors.get(sensor, 0) + 1

    def night_rate(self, sensor: str, night_hours: float) -> float | None:
        """Lone movements of ``sensor`` per minute of the night, over the nights on which any
        lone movement was seen (a night with none does not count, so the rate errs high): how
        often a pet alone moves it, the person sleeping. None while fewer than 3 such nights."""
        if len(self.moves) < RESTLESS_EVENTS or not 0 < night_hours < 24:
            return None
        moves = sum(sensors.get(sensor, 0) for sensors in self.moves.values())
        return moves / (len(self.moves) * night_hours * 60)

    def restless(
        self, night_hours: float, ratio: float = RESTLESS_RATIO, nightly: float = RESTLESS_NIGHTLY
    ) -> frozenset[str]:
        """Sensors that fire alone at night at least ``ratio`` times as often as by day, and
        ``nightly`` times a night (at least RESTLESS_EVENTS times): with the defaults, about as
        often, and more than a person's trips at night, so what moves them is not the person,
        who sleeps then (a pet). ``night_hours``: how many hours of the day are the night."""
        days = self.learned_days()
        if days < 1 or not 0 < night_hours < 24:
            return frozenset()
        totals: dict[str, list[int]] = {}
        for sensors in self.strays.values():
            for sensor, (night, day) in sensors.items():
                total = totals.setdefault(sensor, [0, 0])
                total[0] += night
                total[1] += day
        return frozenset(
            sensor
            for sensor, (night, day) in totals.items()
            if night >= max(RESTLESS_EVENTS, nightly * days)
            and night / night_hours >= ratio * day / (24 - night_hours)
        )

    def learned_days(self) -> int:
        """Days with at least three hours at home watched."""
        return sum(1 for p in self.profiles.values() if p.watched)

    def days_version(self) -> tuple[int, int]:
        """Changes with each new day (and each day forgotten): what is derived from the
        complete days is derived again then."""
        return len(self.profiles), max(self.profiles, default=0)

    def complete_days(self) -> list[DayProfile]:
        """The learned days before the latest one (today, whose later half hours are yet to
        come: counted in, they would look quiet)."""
        latest = max(self.profiles, default=None)
        return [
            profile for day, profile in self.profiles.items() if day != latest and profile.watched
        ]

    def active_fraction(self) -> list[float] | None:
        """Per half hour: on what share of the complete learned days someone was active (None
        while < 3)."""
        days = self.complete_days()
        if len(days) < 3:
            return None
        return [
            sum(1 for p in days if p.active_slots >> slot & 1) / len(days)
            for slot in range(SLOTS_PER_DAY)
        ]

    def forget_before(self, day: int, *, after: int | None = None) -> None:
        """Keep ``HISTORY_DAYS`` (and nothing of days ``after`` one that has not yet come: a
        corrupt store)."""
        self.gaps.forget_before(day, after=after)
        self.runs.forget_before(day, after=after)
        for table in (self.wakes, self.profiles, self.sleeps, self.strays, self.ways, self.moves):
            for old in [d for d in table if d < day or (after is not None and d > after)]:
                del table[old]

    def export(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "gaps": self.gaps.export(),
            "runs": self.runs.export(),
            "wakes": {str(day): round(m, 1) for day, m in self.wakes.items()},
            "profiles": {str(day): p.export() for day, p in self.profiles.items()},
            "sleeps": {str(day): room for day, room in self.sleeps.items()},
            "strays": {str(day): sensors for day, sensors in self.strays.items()},
            "ways": {str(day): room for day, room in self.ways.items()},
            "moves": {str(day): sensors for day, sensors in self.moves.items()},
        }

    @classmethod
    def restore(cls, data: Mapping[str, Any] | None) -> History:
        """From ``export`` (anything unreadable is dropped, never fatal)."""
        data = data if isinstance(data, Mapping) else {}
        history = cls(Stretches.restore(data.get("gaps")), Stretches.restore(data.get("runs")))
        wakes = data.get("wakes")
        for day, minutes in wakes.items() if isinstance(wakes, dict) else ():
            if _is_number(day) and isinstance(minutes, int | float):
                history.wakes[int(day)] = float(minutes)
        profiles = data.get("profiles")
        for day, raw in profiles.items() if isinstance(profiles, dict) else ():
            profile = DayProfile.restore(raw)
            if _is_number(day) and profile is not None:
                history.profiles[int(day)] = profile
        sleeps = data.get("sleeps")
        for day, room in sleeps.items() if isinstance(sleeps, dict) else ():
            if _is_number(day) and isinstance(room, str):
                history.sleeps[int(day)] = room
        ways = data.get("ways")
        for day, room in ways.items() if isinstance(ways, dict) else ():
            if _is_number(day) and isinstance(room, str):
                history.ways[int(day)] = room
        moves = data.get("moves")
        for day, sensors in moves.items() if isinstance(moves, dict) else ():
            if _is_number(day) and isinstance(sensors, dict):
                history.moves[int(day)] = {
                    str(sensor): n for sensor, n in sensors.items() if type(n) is int and n >= 0
                }
        strays = data.get("strays")
        for day, sensors in strays.items() if isinstance(strays, dict) else ():
            if not (_is_number(day) and isinstance(sensors, dict)):
                continue
            for sensor, counts in sensors.items():
                if (
                    isinstance(counts, list)
                    and len(counts) == 2
                    and all(isinstance(n, int) and n >= 0 for n in counts)
                ):
                    history.strays.setdefault(int(day), {})[str(sensor)] = list(counts)
        return history
