"""Reports waiting for the relay: in order, bounded, and honest about anything it had to shed.

While the relay is unreachable reports pile up. Rather than dropping whole reports when the
bound is reached, the two oldest waiting reports are merged: the newer one's device states
supersede the older one's, and their activity is concatenated. Activity is only shed when one
merged report would carry more than ``max_activity`` events, and then the OLDEST events go,
counted in ``activity_dropped`` (sent to the relay in every report's counters) and logged.

The report at the head may be in flight (or may have arrived with its answer lost), so once it
has been attempted it is never merged: its report_id must stay what the relay may have stored.
No Home Assistant here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
import logging
from typing import Any

LOGGER = logging.getLogger(__name__)


#: At one report a minute, four hours of a busy home; quiet periods send one per heartbeat.
MAX_REPORTS = 240
#: Keeps a merged report far below the relay's body limit (~150 bytes per event).
MAX_ACTIVITY_PER_REPORT = 2_000

COUNTER_KEYS = ("reports_compacted", "activity_dropped", "reports_rejected", "reports_delivered")


@dataclass
class QueuedReport:
    """One report (JSON-ready) and how often sending it was tried."""

    report: dict[str, Any]
    attempts: int = 0


class ReportQueue:
    """FIFO of reports with merge-on-overflow and loss counters."""

    def __init__(
        self, max_reports: int = MAX_REPORTS, max_activity: int = MAX_ACTIVITY_PER_REPORT
    ) -> None:
        """``max_reports`` >= 3: the head and two mergeable reports behind it."""
        if max_reports < 3:
            raise ValueError("max_reports must be at least 3")
        self.max_reports = max_reports
        self.max_activity = max_activity
        self._items: deque[QueuedReport] = deque()
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_KEYS, 0)

    def __len__(self) -> int:
        """Reports waiting (including one in flight)."""
        return len(self._items)

    def __iter__(self) -> Iterator[QueuedReport]:
        """Oldest first."""
        return iter(self._items)

    @property
    def head(self) -> QueuedReport | None:
        """The next report to send."""
        return self._items[0] if self._items else None

    @property
    def oldest_sent_at(self) -> str | None:
        """When the oldest waiting report was made (how far behind the relay is)."""
        return self._items[0].report["sent_at"] if self._items else None

    def append(self, report: dict[str, Any]) -> None:
        """Queue a report; merge the oldest waiting ones while over the bound."""
        self._items.append(QueuedReport(report))
        while len(self._items) > self.max_reports:
            self._merge_oldest()

    def remove(self, item: QueuedReport, *, delivered: bool) -> None:
        """Take a report out once the relay stored it (or refused it for good)."""
        self._items.remove(item)
        self.counters["reports_delivered" if delivered else "reports_rejected"] += 1

    def _merge_oldest(self) -> None:
        index = 1 if self._items[0].attempts else 0
        older, newer = self._items[index], self._items[index + 1]
        activity = older.report["activity"] + newer.report["activity"]
        if (excess := len(activity) - self.max_activity) > 0:
            self.counters["activity_dropped"] += excess
            LOGGER.warning(
                "Relay queue full: dropped the %d oldest activity events (%d in all so far)",
                excess,
                self.counters["activity_dropped"],
            )
            activity = activity[excess:]
        newer.report["activity"] = activity
        del self._items[index]
        if self.counters["reports_compacted"] == 0:
            LOGGER.warning(
                "Relay queue full (%d reports): merging the oldest waiting reports; "
                "their activity is kept, their device states are superseded",
                self.max_reports,
            )
        self.counters["reports_compacted"] += 1

    def export(self) -> dict[str, Any]:
        """JSON-ready state for HA's Store."""
        return {
            "reports": [{"report": i.report, "attempts": i.attempts} for i in self._items],
            "counters": dict(self.counters),
        }

    @classmethod
    def restore(cls, stored: dict[str, Any] | None, **limits: int) -> ReportQueue:
        """The queue as exported; an unreadable store gives an empty queue, never a crash."""
        queue = cls(**limits)
        if not isinstance(stored, dict):
            return queue
        counters = stored.get("counters")
        if isinstance(counters, dict):
            for key in COUNTER_KEYS:
                if isinstance(value := counters.get(key), int):
                    queue.counters[key] = value
        for item in stored.get("reports") or ():
            if isinstance(item, dict) and isinstance(item.get("report"), dict):
                queue._items.append(QueuedReport(item["report"], int(item.get("attempts", 0))))
        return queue
