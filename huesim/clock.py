"""Time sources: the simulator never reads the wall clock directly, so tests can travel in time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime:
        """The current time."""
        ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        """The current time."""
        return datetime.now(UTC)


class ManualClock:
    """Time that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 7, 28, 6, 0, tzinfo=UTC)

    def now(self) -> datetime:
        """The current time."""
        return self._now

    def advance(self, seconds: float) -> datetime:
        """Move forward by some seconds and return the new time."""
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to an absolute time."""
        self._now = when
