"""'Unusually quiet' for THIS home at THIS time of day, learned from its own history.

Gaps between activity are bursty and heavy-tailed, so no Poisson tail: for every half hour of the
day (weekdays and weekends apart) the baseline keeps the longest gap reached in that half hour on
earlier days, and the present gap is unusual when it passes a high empirical quantile of those
(with a margin). Mornings full of activity get short thresholds, evenings in an armchair long
ones, and nights need no quiet hours. Silent while learning. Pure Python; persisted by the caller.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

SLOTS_PER_DAY = 48
#: Samples kept per half hour: about three months of that kind of day.
MAX_SAMPLES = 90
QUANTILE = 0.98
MARGIN = 1.5
#: Short gaps are never news, whatever the history says.
MIN_THRESHOLD = timedelta(minutes=60)
LEARNING_DAYS = 7


def _slot(local: datetime) -> int:
    weekend = SLOTS_PER_DAY if local.weekday() >= 5 else 0
    return weekend + local.hour * 2 + local.minute // 30


def quantile(values: list[float], q: float) -> float:
    """Empirical quantile, linear between order statistics."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class QuietBaseline:
    """Per-half-hour samples of the longest gap (seconds), and the days learned."""

    timezone: tzinfo
    samples: dict[int, deque[float]] = field(default_factory=dict)
    days: set[date] = field(default_factory=set)
    _open: tuple[date, int] | None = None
    _open_max: float = 0.0

    def observe(self, now: datetime, last_activity: datetime | None) -> None:
        """Call at every poll. The longest gap reached in each half hour becomes its sample:
        an alarm can fire anywhere in the half hour, so that is what it must be unusual against.
        """
        if last_activity is None:
            return
        local = now.astimezone(self.timezone)
        key = (local.date(), _slot(local))
        gap = max(0.0, (now - last_activity).total_seconds())
        if key == self._open:
            self._open_max = max(self._open_max, gap)
            return
        if self._open is not None:
            self.days.add(self._open[0])
            samples = self.samples.setdefault(self._open[1], deque(maxlen=MAX_SAMPLES))
            samples.append(self._open_max)
        self._open, self._open_max = key, gap

    def threshold(self, now: datetime) -> timedelta | None:
        """How long a gap must be to be unusual now; None while still learning."""
        if len(self.days) < LEARNING_DAYS:
            return None
        slot = _slot(now.astimezone(self.timezone))
        base = slot - slot % SLOTS_PER_DAY
        values: list[float] = []
        for offset in (-1, 0, 1):  # neighbouring half hours smooth a thin history
            values.extend(self.samples.get(base + (slot - base + offset) % SLOTS_PER_DAY, ()))
        if len(values) < LEARNING_DAYS:
            return None
        return max(MIN_THRESHOLD, timedelta(seconds=quantile(values, QUANTILE) * MARGIN))

    def unusually_quiet(
        self, now: datetime, last_activity: datetime | None, away: bool
    ) -> bool | None:
        """True when the present gap is unusual here and now; None while learning or before
        any activity; never when the last thing that happened was the door (``away``)."""
        limit = self.threshold(now)
        if limit is None or last_activity is None:
            return None
        if away:
            return False
        return now - last_activity > limit

    def export(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {
            "samples": {str(slot): list(values) for slot, values in self.samples.items()},
            "days": sorted(day.isoformat() for day in self.days),
        }

    @classmethod
    def restore(cls, data: Mapping[str, Any] | None, timezone: tzinfo) -> QuietBaseline:
        """From ``export`` (anything unreadable is dropped)."""
        baseline = cls(timezone)
        samples = (data or {}).get("samples")
        for slot, values in samples.items() if isinstance(samples, dict) else ():
            if str(slot).isdigit() and isinstance(values, list):
                numbers = [float(v) for v in values if isinstance(v, int | float)]
                baseline.samples[int(slot)] = deque(numbers[-MAX_SAMPLES:], maxlen=MAX_SAMPLES)
        for text in (data or {}).get("days") or ():
            try:
                baseline.days.add(date.fromisoformat(text))
            except (TypeError, ValueError):
                continue
        return baseline
