"""Recovering activity that happened BETWEEN polls, from the bridge's own report times.

A motion sensor shows ``motion: true`` for only ~10 s after movement, so sampling its state once
a minute misses most activity. But the bridge keeps the time of the latest change of every
sensor (``motion_report.changed``, which moves when movement starts AND when it stops), of every
room and of the whole home (``grouped_motion``), of MotionAware areas, of every button press,
dial turn and door contact. Each time one of those moves past what we saw before, someone was
there at that time. The tracker remembers, per source, the newest time it has seen (its "mark"),
so a restart never counts anything twice; the marks are small and are persisted by the caller.

Pure Python on top of the Snapshot: no Home Assistant here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from ..hue import Snapshot

#: Sources that stand for one sensor; room- and home-level motion repeat what those saw.
PRIMARY_KINDS = frozenset({"motion", "button", "rotary", "contact", "area_motion"})


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
    #: Motion is still on at the poll: presence now, not a new event (not counted).
    ongoing: bool = False
    #: Seen on first sight of the source, from before we watched: tells "last activity" only.
    history: bool = False
    #: Motion sensors with report times: motion was on at the poll that saw this change (the
    #: change was a START); False: it was off (an END, perhaps after a start the poll missed).
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
    #: For sensors without report times: the motion state at this poll.
    sampled_motion: bool | None = None
    #: Motion on at this poll (sources with report times).
    motion_on: bool = False


def _sources(snapshot: Snapshot) -> Iterator[_Source]:
    for device in snapshot.devices.values():
        room_group = snapshot.rooms.get(device.room_id) if device.room_id else None
        room = room_group.name if room_group else None
        motion = device.motion
        if motion is not None and motion.enabled is not False:
            if motion.has_report:
                yield _Source(
                    motion.id, "motion", room, motion.changed, motion_on=motion.motion is True
                )
            else:
                yield _Source(motion.id, "motion", room, None, sampled_motion=motion.motion)
        for button in device.buttons:
            yield _Source(button.id, "button", room, button.updated)
        for rotary in device.rotaries:
            yield _Source(rotary.id, "rotary", room, rotary.updated)
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
        self, *, started_at: datetime, marks: Mapping[str, datetime] | None = None
    ) -> None:
        """``started_at``: report times before this are history, not news (first poll)."""
        self._started_at = started_at
        self._marks: dict[str, datetime] = dict(marks or {})

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
        for source in _sources(snapshot):
            if source.changed is None:
                if source.sampled_motion:
                    events.append(ActivityEvent(source.id, source.room, now, source.kind, True))
                continue
            mark = self._marks.get(source.id)
            at = min(source.changed, now)
            state = source.motion_on if source.kind == "motion" else None
            if source.changed > (mark if mark is not None else self._started_at):
                events.append(
                    ActivityEvent(source.id, source.room, at, source.kind, motion_on=state)
                )
            elif mark is None:
                events.append(ActivityEvent(source.id, source.room, at, source.kind, history=True))
            if mark is None or source.changed > mark:
                self._marks[source.id] = source.changed
            if source.motion_on and source.changed <= now:
                # Motion has been on since ``changed`` without a pause: someone is there now,
                # which a stretch of continuous movement longer than the poll would otherwise hide.
                events.append(
                    ActivityEvent(
                        source.id, source.room, now, source.kind, ongoing=True, motion_on=state
                    )
                )
        events.sort(key=lambda event: event.at)
        return events

    def export(self) -> dict[str, str]:
        """Marks as JSON-ready text."""
        return {source: when.isoformat() for source, when in self._marks.items()}

    @classmethod
    def restore(cls, data: Mapping[str, str], *, started_at: datetime) -> ActivityTracker:
        """A tracker from exported marks (unreadable entries are dropped, never fatal)."""
        marks: dict[str, datetime] = {}
        for source, text in data.items():
            try:
                when = datetime.fromisoformat(text)
            except (TypeError, ValueError):
                continue
            if when.tzinfo is not None:
                marks[source] = when
        return cls(started_at=started_at, marks=marks)
