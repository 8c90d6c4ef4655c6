"""Recovering activity that happened BETWEEN polls, from the bridge's own report times.

A motion sensor shows ``motion: true`` for only ~10 s after movement, so sampling its state once
a minute misses most activity. But the bridge keeps the time of the latest change of every
sensor (``motion_report.changed``, which moves when movement starts AND when it stops), of every
room and of the whole home (``grouped_motion``), of MotionAware areas, of every button press,
dial turn and door contact. Each time one of those moves past what we saw before, someone was
there at that time. The tracker remembers, per source, the newest time it has seen (its "mark"),
so a restart never counts anything twice; the marks are small and are persisted by the caller.

Activity is what the bridge's timestamps say, never the time of the poll: a motion sensor stuck
on (motion true, ``changed`` frozen) adds nothing after its start, and is flagged
(:meth:`ActivityTracker.stuck`). One movement is one event: its end, when the poll before saw
it start, only moves the latest activity on.

Sources without report times (older firmware) are sampled: a motion sensor's state (a rise from
off to on is one movement), and a button's ``last_event`` (a change between two polls is a press;
two presses of the same kind between polls, or a press between polls that repeats the previous
one, cannot be told apart and count once or not at all). Their events carry the poll time, the
only time there is.

Pure Python on top of the Snapshot: no Home Assistant here.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..hue import ConnectivityStatus, Device, Snapshot

#: Sources that stand for one sensor; room- and home-level motion repeat what those saw.
PRIMARY_KINDS = frozenset({"motion", "button", "rotary", "contact", "area_motion"})
MOTION_KINDS = frozenset({"motion", "room_motion", "home_motion", "area_motion"})
#: Motion on without a break for this long is a fault (a person moves, pauses, moves again).
STUCK_AFTER = timedelta(hours=2)


@dataclass(frozen=True, slots=True)
class ActivityEvent:
    """Someone was active: ``sensor_id`` (in ``room``, if known) reported something at ``at``.

    ``sampled`` events come from sensors without report times (old firmware): they only say
    that motion was on at the moment of the poll, and movement between polls is invisible.
    """

    sensor_id: str
    room: str | None
    at: datetime
    kind: str = "motion"
    sampled: bool = False
    #: The end of a movement whose start was already seen: moves the latest activity, is not
    #: counted again.
    ongoing: bool = False
    #: Seen on first sight of the source, from before we watched: tells "last activity" only.
    history: bool = False
    #: Motion sensors with report times: motion was on at the poll that saw this change (the
    #: change was a START); False: it was off (an END, perhaps after a start the poll missed,
    #: which ``ongoing`` tells).
    motion_on: bool | None = None

    @property
    def primary(self) -> bool:
        """True for a sensor's own new event (count these; grouped motion repeats them)."""
        return self.kind in PRIMARY_KINDS and not (self.ongoing or self.history)


@dataclass(frozen=True, slots=True)
class _Source:
    id: str
    kind: str
    room: str | None
    changed: datetime | None
    #: Motion on at this poll (motion sources).
    motion_on: bool = False
    #: For sources without report times: what they show at this poll (None: nothing yet).
    sampled: Hashable = None


def activity_source_ids(device: Device) -> list[str]:
    """The device's services that tell someone was there (motion, contact, buttons, dials)."""
    ids = [button.id for button in device.buttons] + [rotary.id for rotary in device.rotaries]
    if device.motion is not None and device.motion.enabled is not False:
        ids.append(device.motion.id)
    if device.contact is not None and device.contact.enabled is not False:
        ids.append(device.contact.id)
    return ids


#: A device in these states cannot tell the bridge what it sees.
_OUT_OF_REACH = frozenset({ConnectivityStatus.DISCONNECTED, ConnectivityStatus.CONNECTIVITY_ISSUE})


def source_states(snapshot: Snapshot) -> dict[str, bool]:
    """Every activity source the bridge lists now, and whether it can reach its device (a
    sensor whose battery died, or that lost its link, sees nothing however much goes on)."""
    states = {}
    for device in snapshot.devices.values():
        status = device.connectivity.status if device.connectivity else None
        for source in activity_source_ids(device):
            states[source] = status not in _OUT_OF_REACH
    for area in snapshot.area_motion.values():
        states[area.id] = area.enabled is not False
    return states


def _sources(snapshot: Snapshot) -> Iterator[_Source]:
    for device in snapshot.devices.values():
        # A device outside any room (a child of bridge_home) counts for the home.
        room_group = snapshot.rooms.get(device.room_id) if device.room_id else None
        room = room_group.name if room_group else None
        motion = device.motion
        if motion is not None and motion.enabled is not False:
            on = motion.motion is True
            if motion.has_report:
                yield _Source(motion.id, "motion", room, motion.changed, motion_on=on)
            else:
                yield _Source(motion.id, "motion", room, None, motion_on=on, sampled=on)
        for button in device.buttons:
            yield _Source(button.id, "button", room, button.updated, sampled=button.event)
        for rotary in device.rotaries:
            turn = (rotary.action, rotary.direction, rotary.steps)
            yield _Source(rotary.id, "rotary", room, rotary.updated, sampled=turn)
        if device.contact is not None and device.contact.enabled is not False:
            yield _Source(device.contact.id, "contact", room, device.contact.changed)
    for area in snapshot.area_motion.values():
        if area.enabled is False:
            continue
        room_group = snapshot.rooms.get(area.owner_id or "")
        on = area.motion is True
        if area.rtype == "grouped_motion" and room_group is not None:
            yield _Source(area.id, "room_motion", room_group.name, area.changed, motion_on=on)
        elif area.rtype == "grouped_motion":
            yield _Source(area.id, "home_motion", None, area.changed, motion_on=on)
        else:
            yield _Source(area.id, "area_motion", None, area.changed, motion_on=on)


class ActivityTracker:
    """Turns successive snapshots into activity events, each counted once."""

    def __init__(
        self,
        *,
        started_at: datetime,
        marks: Mapping[str, datetime] | None = None,
        motion_on: Mapping[str, datetime] | None = None,
    ) -> None:
        """``started_at``: report times before this are history, not news (first poll)."""
        self._started_at = started_at
        self._marks: dict[str, datetime] = dict(marks or {})
        #: Motion sources on at the latest poll, and since when.
        self._motion_on: dict[str, datetime] = dict(motion_on or {})
        #: Sampled sources: what they showed at the latest poll.
        self._sampled: dict[str, Hashable] = {}
        #: The motion sensors (devices) of the latest poll: the ones that can be stuck.
        self._sensors: frozenset[str] = frozenset()

    @property
    def marks(self) -> Mapping[str, datetime]:
        """The newest time seen per source (persist these across restarts)."""
        return self._marks

    def update(self, snapshot: Snapshot, now: datetime) -> list[ActivityEvent]:
        """Activity since the previous snapshot, oldest first.

        A bridge clock running ahead of ours would put events in the future: they are placed at
        ``now`` (and still counted once, since the mark keeps the bridge's own time).
        """
        events: list[ActivityEvent] = []
        sources = list(_sources(snapshot))
        self._sensors = frozenset(source.id for source in sources if source.kind == "motion")
        for source in sources:
            if source.changed is None:
                event = self._sampled_event(source, now)
            else:
                event = self._reported_event(source, source.changed, now)
            if event is not None:
                events.append(event)
        events.sort(key=lambda event: event.at)
        return events

    def _reported_event(
        self, source: _Source, changed: datetime, now: datetime
    ) -> ActivityEvent | None:
        mark = self._marks.get(source.id)
        was_on = source.id in self._motion_on
        if source.motion_on:
            self._motion_on[source.id] = changed
        else:
            self._motion_on.pop(source.id, None)
        if mark is not None and changed <= mark:
            return None
        self._marks[source.id] = changed
        at = min(changed, now)
        if mark is None and changed <= self._started_at:
            return ActivityEvent(source.id, source.room, at, source.kind, history=True)
        # Movement that ends after a poll saw it start is the same movement.
        ended = source.kind in MOTION_KINDS and was_on and not source.motion_on
        state = source.motion_on if source.kind == "motion" else None
        return ActivityEvent(
            source.id, source.room, at, source.kind, ongoing=ended, motion_on=state
        )

    def _sampled_event(self, source: _Source, now: datetime) -> ActivityEvent | None:
        seen = source.id in self._sampled
        before = self._sampled.get(source.id)
        self._sampled[source.id] = source.sampled
        if source.kind in MOTION_KINDS:
            if not source.motion_on:
                self._motion_on.pop(source.id, None)
                return None
            if source.id in self._motion_on:
                return None  # still the same movement (or a sensor stuck on)
            self._motion_on[source.id] = now
        elif not seen or source.sampled is None or source.sampled == before:
            return None  # first sight (when, we cannot tell), or nothing new
        self._marks[source.id] = now
        return ActivityEvent(source.id, source.room, now, source.kind, sampled=True)

    def stuck(self, now: datetime) -> dict[str, datetime]:
        """Motion sensors on without a break for :data:`STUCK_AFTER`, and since when."""
        return {
            source: since
            for source, since in self._motion_on.items()
            if source in self._sensors and now - since >= STUCK_AFTER
        }

    def last_activity(self, device: Device, now: datetime) -> datetime | None:
        """The device's own latest activity (its sensors' newest marks), never after ``now``."""
        times = [self._marks[i] for i in activity_source_ids(device) if i in self._marks]
        return min(max(times), now) if times else None

    def export(self) -> dict[str, str]:
        """Marks as JSON-ready text."""
        return _export(self._marks)

    def export_motion_on(self) -> dict[str, str]:
        """Motion sources on, and since when, as JSON-ready text (persisted with the marks, so
        the end of a movement seen starting before a restart is not counted again)."""
        return _export(self._motion_on)

    @classmethod
    def restore(
        cls,
        data: Mapping[str, str],
        *,
        started_at: datetime,
        motion_on: Mapping[str, str] | None = None,
    ) -> ActivityTracker:
        """A tracker from exported marks (unreadable entries are dropped, never fatal)."""
        return cls(
            started_at=started_at,
            marks=restore_times(data),
            motion_on=restore_times(motion_on or {}),
        )


def _export(times: Mapping[str, datetime]) -> dict[str, str]:
    return {source: when.isoformat() for source, when in times.items()}


#: Years a stored time may fall in (one outside them is a corrupt store: near the ends of
#: ``datetime``'s range, arithmetic on it overflows).
PLAUSIBLE_YEARS = range(2000, 2200)


def restore_time(text: object) -> datetime | None:
    """An aware, plausible time from its ISO text; None when unreadable, naive or implausible."""
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None or when.year not in PLAUSIBLE_YEARS:
        return None
    return when


def restore_times(data: Mapping[str, object]) -> dict[str, datetime]:
    """Aware times from their ISO text by key; what is unreadable, naive or implausible is
    dropped."""
    times: dict[str, datetime] = {}
    for source, text in data.items():
        if (when := restore_time(text)) is not None:
            times[source] = when
    return times
