"""Daily summaries: what one home's period (one summary to the next) adds up to, in plain words.

``gather`` reads many homes at once (a few set-wide queries, not a query per home), so composing
the morning summaries of 10,000 homes stays in seconds (bench/summaries.py). ``render`` is pure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import itertools
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Float, cast, func, or_, select

from ..storage.models import ACTIVITY, DEVICES, HOMES, IN_LIST

#: A home that has not reported for this long is news in itself.
STALE_AFTER = timedelta(hours=2)
#: Activity buckets are 15 minutes long (relay/ingest.py).
BUCKET = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Period:
    """A summary to write: this home, this stretch of time."""

    home_id: str
    start: datetime
    end: datetime


@dataclass(slots=True)
class DeviceIssue:
    """A device worth a line: low battery, or offline since when."""

    name: str
    room: str | None
    battery: int | None = None
    battery_state: str | None = None
    offline_since: datetime | None = None


@dataclass(slots=True)
class HomePeriod:
    """Everything one summary says."""

    home_id: str
    name: str
    zone: ZoneInfo
    start: datetime
    end: datetime
    count: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    rooms: dict[str, int] = field(default_factory=dict)
    longest_quiet: tuple[datetime, datetime] | None = None
    batteries: list[DeviceIssue] = field(default_factory=list)
    offline: list[DeviceIssue] = field(default_factory=list)
    last_report_at: datetime | None = None
    bridge_offline_since: datetime | None = None


def _epoch(connection: Connection, column: Any) -> Any:
    """A timestamp as seconds since 1970 (UTC), as SQL: a float is all the arithmetic needs,
    and reading floats is several times cheaper than reading timestamps."""
    if connection.dialect.name == "sqlite":
        return (func.julianday(column) - 2440587.5) * 86400.0
    return cast(func.extract("epoch", column), Float)  # not NUMERIC: no Decimal per value


def gather(connection: Connection, periods: Sequence[Period]) -> list[HomePeriod]:
    """The facts of every period (sync: run it with ``run_sync``).

    Homes are read in chunks, a few statements per chunk, never a query per home.
    """
    if not periods:
        return []
    homes: dict[str, Any] = {}
    devices: defaultdict[str, list[Any]] = defaultdict(list)
    for chunk in itertools.batched(sorted({p.home_id for p in periods}), IN_LIST):
        for row in connection.execute(select(HOMES).where(HOMES.c.id.in_(chunk))):
            homes[row.id] = row
        for row in connection.execute(
            select(DEVICES)
            .where(DEVICES.c.home_id.in_(chunk))
            .where(
                or_(
                    DEVICES.c.battery_state.in_(("low", "critical")),
                    DEVICES.c.offline_since.isnot(None),
                )
            )
            .order_by(DEVICES.c.name)
        ):
            devices[row.home_id].append(row)
    facts: dict[tuple[str, datetime, datetime], HomePeriod] = {}
    zones: dict[str, ZoneInfo] = {}
    for period in periods:
        home = homes.get(period.home_id)
        if home is None:
            continue
        zone = zones.get(home.timezone) or zones.setdefault(home.timezone, ZoneInfo(home.timezone))
        fact = HomePeriod(
            home.id,
            home.name,
            zone,
            period.start,
            period.end,
            last_report_at=home.last_report_at,
            bridge_offline_since=home.bridge_offline_since
            if home.bridge_reachable is False
            else None,
        )
        for row in devices.get(home.id, ()):
            if row.battery_state in ("low", "critical"):
                fact.batteries.append(
                    DeviceIssue(row.name, row.room, row.battery, row.battery_state)
                )
            if row.offline_since is not None:
                fact.offline.append(
                    DeviceIssue(row.name, row.room, offline_since=row.offline_since)
                )
        facts[(home.id, period.start, period.end)] = fact
    by_window: defaultdict[tuple[datetime, datetime], list[str]] = defaultdict(list)
    for home_id, start, end in facts:
        by_window[(start, end)].append(home_id)
    for (start, end), home_ids in by_window.items():
        for chunk in itertools.batched(sorted(home_ids), IN_LIST):
            _add_activity(connection, facts, chunk, start, end)
    return list(facts.values())


def _add_activity(
    connection: Connection,
    facts: dict[tuple[str, datetime, datetime], HomePeriod],
    home_ids: Sequence[str],
    start: datetime,
    end: datetime,
) -> None:
    """Counts per room, first and last activity, and the longest gap, of homes sharing a period.

    One ordered read of the buckets (about 70 a home and day) as plain numbers; the longest gap
    is the largest step from the end of everything so far (all rooms) to the next start.
    """
    rows = connection.execute(
        select(
            ACTIVITY.c.home_id,
            ACTIVITY.c.room,
            ACTIVITY.c.count,
            _epoch(connection, ACTIVITY.c.first_at),
            _epoch(connection, ACTIVITY.c.last_at),
        )
        .where(
            ACTIVITY.c.home_id.in_(home_ids),
            ACTIVITY.c.bucket_start >= start - BUCKET,
            ACTIVITY.c.bucket_start < end,
            ACTIVITY.c.last_at >= start,
            ACTIVITY.c.first_at < end,
        )
        .order_by(ACTIVITY.c.home_id, ACTIVITY.c.first_at)
    ).tuples()
    spans: dict[str, _Span] = {}
    for home_id, room, count, first, last in rows:
        span = spans.get(home_id)
        if span is None:
            span = spans[home_id] = _Span(facts[(home_id, start, end)], float(first))
        span.add(room or "", count, float(first), float(last))
    for span in spans.values():
        span.finish()


class _Span:
    """One home's buckets, read in order of their first movement."""

    __slots__ = ("fact", "first", "last", "quiet")

    def __init__(self, fact: HomePeriod, first: float) -> None:
        self.fact = fact
        self.first = self.last = first
        # Before anything happened, the home was quiet since the period began.
        self.quiet = (fact.start.timestamp(), first)

    def add(self, room: str, count: int, first: float, last: float) -> None:
        if first - self.last > self.quiet[1] - self.quiet[0]:
            self.quiet = (self.last, first)
        self.last = max(self.last, last)
        self.fact.count += count
        self.fact.rooms[room] = self.fact.rooms.get(room, 0) + count

    def finish(self) -> None:
        fact, end = self.fact, self.fact.end.timestamp()
        if end - self.last > self.quiet[1] - self.quiet[0]:
            self.quiet = (self.last, end)
        fact.first_at, fact.last_at = _at(self.first), _at(self.last)
        if self.quiet[1] > self.quiet[0]:
            fact.longest_quiet = (_at(self.quiet[0]), _at(self.quiet[1]))


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(round(seconds, 3), UTC)


# -- words -----------------------------------------------------------------------------------


def _clock(when: datetime, zone: ZoneInfo) -> str:
    return when.astimezone(zone).strftime("%H:%M")


def _when(when: datetime, zone: ZoneInfo, now: datetime) -> str:
    local, today = when.astimezone(zone), now.astimezone(zone).date()
    if local.date() == today:
        return local.strftime("%H:%M")
    if local.date() == today - timedelta(days=1):
        return "yesterday " + local.strftime("%H:%M")
    return local.strftime("%a %d %b %H:%M")


def span_words(delta: timedelta) -> str:
    """'45 min', '3 h', '4 h 05 min'."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"


def _device(issue: DeviceIssue) -> str:
    return f"{issue.name} ({issue.room})" if issue.room else issue.name


def concerns(fact: HomePeriod, now: datetime) -> list[str]:
    """What needs attention, most serious first (empty: all normal)."""
    zone = fact.zone
    found = []
    if fact.last_report_at is None or now - fact.last_report_at > STALE_AFTER:
        since = f"since {_when(fact.last_report_at, zone, now)}" if fact.last_report_at else "ever"
        found.append(f"no reports {since}")
    if fact.bridge_offline_since is not None:
        found.append(f"bridge unreachable since {_when(fact.bridge_offline_since, zone, now)}")
    if fact.count == 0:
        found.append("no activity")
    critical = [b for b in fact.batteries if b.battery_state == "critical"]
    if critical:
        found.append(
            f"{len(critical)} battery critical"
            if len(critical) == 1
            else f"{len(critical)} batteries critical"
        )
    low = len(fact.batteries) - len(critical)
    if low:
        found.append("1 battery low" if low == 1 else f"{low} batteries low")
    if fact.offline:
        found.append(
            "1 device offline" if len(fact.offline) == 1 else f"{len(fact.offline)} devices offline"
        )
    return found


def render(
    fact: HomePeriod, now: datetime, *, late: bool = False, missed: int = 0
) -> tuple[str, str]:
    """(title, Markdown body) of one summary."""
    zone = fact.zone
    problems = concerns(fact, now)
    headline = "All normal" if not problems else "Needs attention: " + "; ".join(problems)
    title = f"{fact.name}: {headline}"
    if late:
        title = "[late] " + title
    lines = [f"**{headline}**", ""]
    day = f"{_when(fact.start, zone, now)} to {_when(fact.end, zone, now)} ({zone.key})"
    lines.append(f"Period: {day}")
    if late:
        lines.append(
            f"This summary was due at {_when(fact.end, zone, now)} and is sent late: "
            "the relay was not running then."
        )
    if missed:
        lines.append(
            f"{missed} earlier summar{'y was' if missed == 1 else 'ies were'} not sent while "
            "the relay was down; this one covers the latest day."
        )
    lines += ["", "**Activity**"]
    if fact.count and fact.first_at and fact.last_at:
        busiest, busiest_count = max(fact.rooms.items(), key=lambda item: item[1])
        lines.append(
            f"- {fact.count} movement{'' if fact.count == 1 else 's'}, "
            f"first {_clock(fact.first_at, zone)}, "
            f"last {_clock(fact.last_at, zone)}"
        )
        lines.append(f"- Busiest room: {busiest or 'unknown room'} ({busiest_count})")
    else:
        lines.append("- No activity at all in this period")
    if fact.longest_quiet is not None:
        quiet_start, quiet_end = fact.longest_quiet
        lines.append(
            f"- Longest quiet spell: {_clock(quiet_start, zone)} to {_clock(quiet_end, zone)} "
            f"({span_words(quiet_end - quiet_start)})"
        )
    lines += ["", "**Devices**"]
    if not fact.batteries and not fact.offline:
        lines.append("- All devices connected, no low batteries")
    for issue in fact.batteries:
        level = f"{issue.battery} %" if issue.battery is not None else "level unknown"
        lines.append(f"- Battery {issue.battery_state}: {_device(issue)}, {level}")
    for issue in fact.offline:
        assert issue.offline_since is not None
        lines.append(f"- Offline since {_when(issue.offline_since, zone, now)}: {_device(issue)}")
    lines += ["", "**Reporting**"]
    if fact.last_report_at is None:
        lines.append("- This home has never reported")
    else:
        lines.append(f"- Last report {_when(fact.last_report_at, zone, now)}")
    if fact.bridge_offline_since is not None:
        lines.append(
            f"- The Hue bridge is unreachable since {_when(fact.bridge_offline_since, zone, now)}"
        )
    return title, "\n".join(lines)
