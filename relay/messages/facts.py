"""The plain data a message is composed from (no database, no formatting).

The notifier and the summary reader fill these; ``compose.py`` turns them into documents. An
alert's ``details`` are what its rule stored when it opened (``alerting.Condition.details``):

- ``inactivity``: ``since`` (last movement, ISO time); from a home's own activity check also
  ``reason`` (``unusual_gap``, ``not_up``, ``one_sensor``, ``safety_net``), ``limit_minutes``,
  ``learning``; ``quiet`` (far less activity than usual today): ``learning``;
- ``battery``: ``device``, ``room``, ``device_kind``, ``battery`` (% or None), ``state``;
- ``offline``: ``device``, ``room``, ``device_kind``, ``since``;
- ``stale``: ``since`` (the last report); ``bridge``: ``since`` (unreachable since).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class HomeFacts:
    """The home a message is about."""

    name: str
    zone: ZoneInfo


@dataclass(frozen=True, slots=True)
class Blindness:
    """Why the relay cannot see the home right now (None in ``Seeing`` means it can)."""

    #: "bridge" (the home says its Hue Bridge is unreachable) or "reports" (nothing arrives).
    cause: str
    since: datetime


@dataclass(frozen=True, slots=True)
class Movement:
    """A moment of movement and the room it was in."""

    at: datetime
    room: str | None


@dataclass(frozen=True, slots=True)
class AlertFacts:
    """An alert as caregivers hear of it: opened, still open, or over."""

    alert_id: int
    kind: str
    opened_at: datetime
    details: dict[str, Any]
    urgent: bool = False
    #: When the cause went away (None: still going on).
    ended_at: datetime | None = None
    acked_by: str | None = None
    acked_at: datetime | None = None
    #: Inactivity: the last movement before, and (resolved) the movement that ended it.
    last_movement: Movement | None = None
    new_movement: Movement | None = None

    @classmethod
    def of(cls, alert: Any, ended_at: datetime | None = None) -> AlertFacts:
        """The facts of an ``alerts`` row (ORM object or Core row)."""
        return cls(
            alert.id,
            alert.kind,
            alert.opened_at,
            dict(alert.details or {}),
            alert.urgent,
            ended_at,
            alert.acked_by,
            alert.acked_at,
        )

    def detail_time(self, key: str = "since") -> datetime | None:
        """A time stored in the details (ISO text), if any."""
        value = self.details.get(key)
        return datetime.fromisoformat(value) if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class UrgentFacts:
    """An urgent alert going to one caregiver."""

    home: HomeFacts
    alert: AlertFacts
    now: datetime
    blind: Blindness | None
    ack_url: str | None
    #: Who is told next, and after how long, if nobody acknowledges.
    next_in_line: str | None
    escalate_after: timedelta
    #: 0 for the first caregiver; n: nobody acknowledged for n x ``escalate_after``.
    level: int = 0


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """A device worth a line in a summary."""

    name: str
    room: str | None
    kind: str | None
    battery: int | None = None
    battery_state: str | None = None
    offline_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class BlindSpell:
    """A stretch of time the relay could not see the home."""

    cause: str
    start: datetime
    end: datetime | None


@dataclass(slots=True)
class SummaryFacts:
    """Everything one summary says; ``start``..``end`` is the period asked for."""

    home_id: str
    home: HomeFacts
    start: datetime
    end: datetime
    #: The first report ever (None: the home never reported).
    watching_since: datetime | None = None
    count: int = 0
    first: Movement | None = None
    last: Movement | None = None
    rooms: dict[str, int] = field(default_factory=dict)
    #: The longest time without movement while the relay could see.
    longest_quiet: tuple[datetime, datetime] | None = None
    batteries: list[DeviceFacts] = field(default_factory=list)
    offline: list[DeviceFacts] = field(default_factory=list)
    incidents: list[AlertFacts] = field(default_factory=list)
    blind_spells: list[BlindSpell] = field(default_factory=list)
    blind_now: Blindness | None = None
    last_report_at: datetime | None = None

    @property
    def seen_from(self) -> datetime | None:
        """Where the summary's own time begins: the period, or later if watching began later."""
        if self.watching_since is None or self.watching_since >= self.end:
            return None
        return max(self.start, self.watching_since)

    def unseen(self) -> timedelta:
        """How much of the watched period the relay could not see."""
        seen_from = self.seen_from
        if seen_from is None:
            return timedelta(0)
        total, cursor = timedelta(0), seen_from
        for spell in sorted(self.blind_spells, key=lambda s: s.start):
            start, end = max(spell.start, cursor), min(spell.end or self.end, self.end)
            if end > start:
                total += end - start
                cursor = end
        return total
