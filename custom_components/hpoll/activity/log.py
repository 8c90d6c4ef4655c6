"""What the tracker's events add up to, per room and for the whole home: the latest activity and
today's count (the day of the home's timezone). Persisted with the tracker's marks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any

from .tracker import ActivityEvent, ActivityTracker, restore_times

#: The key of the whole home among the rooms.
HOME = ""


@dataclass
class ActivityLog:
    """Tracker + aggregates; ``record`` is called with every successful poll."""

    tracker: ActivityTracker
    timezone: tzinfo
    day: date | None = None
    today: dict[str, int] = field(default_factory=dict)
    last: dict[str, datetime] = field(default_factory=dict)

    def record(self, events: Iterable[ActivityEvent], now: datetime) -> list[ActivityEvent]:
        """Fold a poll's events in; return the new (primary) ones."""
        local_day = now.astimezone(self.timezone).date()
        if local_day != self.day:
            self.day = local_day
            self.today = {}
        fresh = []
        for event in events:
            for key in (HOME, event.room) if event.room else (HOME,):
                if key not in self.last or event.at > self.last[key]:
                    self.last[key] = event.at
            if not event.primary:
                continue
            fresh.append(event)
            # Activity from before local midnight (seen late) belongs to yesterday's count.
            if event.at.astimezone(self.timezone).date() == local_day:
                for key in (HOME, event.room) if event.room else (HOME,):
                    self.today[key] = self.today.get(key, 0) + 1
        return fresh

    def count_today(self, room: str, now: datetime) -> int:
        """Events today in a room ('' for the home); 0 once the day has turned."""
        if self.day != now.astimezone(self.timezone).date():
            return 0
        return self.today.get(room, 0)

    def export(self) -> dict[str, Any]:
        """JSON-ready state for HA's Store."""
        return {
            "marks": self.tracker.export(),
            "motion_on": self.tracker.export_motion_on(),
            "day": self.day.isoformat() if self.day else None,
            "today": dict(self.today),
            "last": {room: when.isoformat() for room, when in self.last.items()},
        }

    @classmethod
    def restore(
        cls, data: Mapping[str, Any] | None, *, timezone: tzinfo, started_at: datetime
    ) -> ActivityLog:
        """From what ``export`` wrote (anything unreadable is dropped, never fatal)."""
        data = data if isinstance(data, Mapping) else {}
        marks, motion_on = data.get("marks"), data.get("motion_on")
        tracker = ActivityTracker.restore(
            marks if isinstance(marks, dict) else {},
            started_at=started_at,
            motion_on=motion_on if isinstance(motion_on, dict) else {},
        )
        log = cls(tracker, timezone)
        try:
            log.day = date.fromisoformat(data["day"]) if data.get("day") else None
        except (TypeError, ValueError):
            log.day = None
        today = data.get("today")
        if isinstance(today, dict):
            log.today = {
                k: v for k, v in today.items() if isinstance(k, str) and isinstance(v, int)
            }
        last = data.get("last")
        if isinstance(last, dict):
            log.last.update(restore_times(last))
        return log
