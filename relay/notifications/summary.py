"""Daily summaries: what one home's period (one summary to the next) adds up to, as facts.

``gather`` reads many homes at once (a few set-wide queries, not a query per home), so composing
the morning summaries of 10,000 homes stays in seconds (bench/summaries.py); the words are
``relay.messages.compose.summary``. A summary speaks only of time the relay could see: from the
home's first report on, without its blind spells (bridge unreachable, no reports), which end a
quiet spell instead of lengthening it. Devices and reporting are judged with the alert rules'
own thresholds (``HomeRules``), so a summary never calls something a problem that the alerts do
not, or the other way round.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
import itertools
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Float, cast, func, or_, select

from ..messages.facts import AlertFacts, BlindSpell, DeviceFacts, HomeFacts, Movement, SummaryFacts
from ..storage.models import ACTIVITY, ALERTS, BLIND_SPELLS, DEVICES, HOMES, IN_LIST
from .alerting import HomeRules
from .visibility import BUCKET, blindness


@dataclass(frozen=True, slots=True)
class Period:
    """A summary to write: this home, this stretch of time."""

    home_id: str
    start: datetime
    end: datetime


def _epoch(connection: Connection, column: Any) -> Any:
    """A timestamp as seconds since 1970 (UTC), as SQL: a float is all the arithmetic needs,
    and reading floats is several times cheaper than reading timestamps."""
    if connection.dialect.name == "sqlite":
        return (func.julianday(column) - 2440587.5) * 86400.0
    return cast(func.extract("epoch", column), Float)  # not NUMERIC: no Decimal per value


def gather(connection: Connection, periods: Sequence[Period]) -> list[SummaryFacts]:
    """The facts of every period (one written ahead of its time ends when it is written); sync:
    run it with ``run_sync``. Homes are read in chunks, a few statements per chunk, never one
    per home."""
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
    facts: dict[tuple[str, datetime, datetime], SummaryFacts] = {}
    zones: dict[str, ZoneInfo] = {}
    for period in periods:
        home = homes.get(period.home_id)
        if home is None:
            continue
        zone = zones.get(home.timezone) or zones.setdefault(home.timezone, ZoneInfo(home.timezone))
        fact = SummaryFacts(
            home.id,
            HomeFacts(home.name, zone),
            period.start,
            period.end,
            watching_since=home.watching_since,
            blind_now=blindness(home, period.end),
            last_report_at=home.last_report_sent_at,
        )
        rules = HomeRules.from_settings(home.settings)
        for row in devices.get(home.id, ()):
            if row.battery_state in ("low", "critical"):
                fact.batteries.append(
                    DeviceFacts(row.name, row.room, row.kind, row.battery, row.battery_state)
                )
            offline = row.offline_since
            if offline is not None and period.end - offline >= rules.offline_after:
                fact.offline.append(
                    DeviceFacts(row.name, row.room, row.kind, offline_since=row.offline_since)
                )
        facts[(home.id, period.start, period.end)] = fact
    by_window: defaultdict[tuple[datetime, datetime], list[str]] = defaultdict(list)
    for home_id, start, end in facts:
        by_window[(start, end)].append(home_id)
    for (start, end), home_ids in by_window.items():
        for chunk in itertools.batched(sorted(home_ids), IN_LIST):
            _add_incidents(connection, facts, chunk, start, end)
            _add_activity(connection, facts, chunk, start, end)
    return list(facts.values())


def _add_incidents(
    connection: Connection,
    facts: dict[tuple[str, datetime, datetime], SummaryFacts],
    home_ids: Sequence[str],
    start: datetime,
    end: datetime,
) -> None:
    """Alerts and blind spells that overlap the period, oldest first."""
    for row in connection.execute(
        select(ALERTS)
        .where(
            ALERTS.c.home_id.in_(home_ids),
            ALERTS.c.opened_at < end,
            or_(ALERTS.c.resolved_at.is_(None), ALERTS.c.resolved_at >= start),
        )
        .order_by(ALERTS.c.opened_at, ALERTS.c.id)
    ):
        ended = row.clear_since or row.resolved_at
        over = ended if row.resolved_at is not None and ended < end else None
        facts[(row.home_id, start, end)].incidents.append(AlertFacts.of(row, over))
    for row in connection.execute(
        select(BLIND_SPELLS)
        .where(
            BLIND_SPELLS.c.home_id.in_(home_ids),
            BLIND_SPELLS.c.started_at < end,
            or_(BLIND_SPELLS.c.ended_at.is_(None), BLIND_SPELLS.c.ended_at > start),
        )
        .order_by(BLIND_SPELLS.c.started_at, BLIND_SPELLS.c.id)
    ):
        spell_end = row.ended_at if row.ended_at is not None and row.ended_at < end else None
        facts[(row.home_id, start, end)].blind_spells.append(
            BlindSpell(row.cause, row.started_at, spell_end)
        )


def _add_activity(
    connection: Connection,
    facts: dict[tuple[str, datetime, datetime], SummaryFacts],
    home_ids: Sequence[str],
    start: datetime,
    end: datetime,
) -> None:
    """Counts per room, first and last movement, and the longest quiet spell the relay saw, of
    homes sharing a period: one ordered read of the buckets (about 70 a home and day) as plain
    numbers."""
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
            fact = facts[(home_id, start, end)]
            if fact.seen_from is None:
                continue
            span = spans[home_id] = _Span(fact)
        span.add(room or "", count, float(first), float(last))
    for home_id in home_ids:
        fact = facts[(home_id, start, end)]
        if fact.seen_from is not None:
            (spans.get(home_id) or _Span(fact)).finish()


class _Span:
    """One home's buckets, read in order of their first movement. The quiet spell is the
    largest step from the end of everything so far (all rooms, and blind spells, which end a
    quiet spell instead of lengthening it) to the next start, within the watched time."""

    __slots__ = ("blind", "edge", "fact", "first", "latest", "quiet", "until")

    def __init__(self, fact: SummaryFacts) -> None:
        seen_from = fact.seen_from
        assert seen_from is not None
        self.fact = fact
        #: The end of the period.
        self.until = fact.end.timestamp()
        self.first: tuple[float, str] | None = None
        self.latest: tuple[float, str] | None = None
        #: The end of everything so far: movement, a blind spell, or where watching began.
        self.edge = seen_from.timestamp()
        self.quiet = (0.0, 0.0)
        self.blind = sorted(
            (spell.start.timestamp(), (spell.end or fact.end).timestamp())
            for spell in fact.blind_spells
        )

    def _quiet_until(self, moment: float) -> None:
        """Close quiet spells up to ``moment``, stepping over blind spells on the way."""
        while self.blind and self.blind[0][0] < moment:
            blind_start, blind_end = self.blind.pop(0)
            self._gap(blind_start)
            self.edge = max(self.edge, blind_end)
        self._gap(moment)

    def _gap(self, until: float) -> None:
        if until - self.edge > self.quiet[1] - self.quiet[0]:
            self.quiet = (self.edge, until)

    def add(self, room: str, count: int, first: float, last: float) -> None:
        fact = self.fact
        self._quiet_until(first)
        self.edge = max(self.edge, last)
        if self.first is None:
            self.first = (first, room)
        if self.latest is None or last >= self.latest[0]:
            self.latest = (last, room)
        fact.count += count
        fact.rooms[room] = fact.rooms.get(room, 0) + count

    def finish(self) -> None:
        fact = self.fact
        self._quiet_until(self.until)
        if self.first is not None and self.latest is not None:
            fact.first = Movement(_at(self.first[0]), self.first[1] or None)
            fact.last = Movement(_at(self.latest[0]), self.latest[1] or None)
        if self.quiet[1] > self.quiet[0]:
            fact.longest_quiet = (_at(self.quiet[0]), _at(self.quiet[1]))


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(round(seconds, 3), UTC)
