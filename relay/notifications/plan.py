"""What caregivers are sent, and when: summaries due, alerts opened or resolved, escalations.

Every tick (a minute) ``plan`` runs in ONE transaction: it decides what to say and writes it to
the outbox; then the dispatcher sends what is due. On PostgreSQL the transaction takes an
advisory lock, so of two replicas one plans at a time, and the other then sees its work; each
summary's slot is also claimed by a compare-and-swap on ``next_summary_due`` and every message
has a unique ``dedup_key``, so nothing is planned twice even without the lock.

Summaries missed while the relay was down are sent late (marked so), once: several missed days
fold into one message about the latest day. Alerts opened in one tick fold into one message per
caregiver, so a restart after a long outage is one message each, not a storm.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import hashlib
import itertools
import logging
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, or_, select, text, update

from ..storage.models import CAREGIVERS, HOMES, IN_LIST, NOTIFICATIONS, SUBSCRIPTIONS
from .alerting import AlertEvent, conditions, reconcile
from .escalate import Watcher, escalate, load_homes, load_watchers, urgent_body
from .outbox import Message, enqueue, enqueue_many
from .schedule import in_window, next_occurrence, occurrence, parse_hhmm, window_end
from .summary import Period, gather, render

_LOGGER = logging.getLogger(__name__)


#: A summary sent later than this after its time says it is late.
LATE_AFTER = timedelta(minutes=10)
#: Any 64-bit number that no other application on the same PostgreSQL uses.
PLAN_LOCK = 0x68706F6C6C


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """How the relay notifies (``HPOLL_RELAY_ESCALATE_MINUTES``, ``HPOLL_RELAY_PUBLIC_URL``)."""

    escalate_after: timedelta = timedelta(minutes=15)
    #: Where caregivers' acknowledgement links point; without it, acknowledge with the CLI.
    public_url: str | None = None


@dataclass(slots=True)
class PlanResult:
    """What one planning pass wrote to the outbox."""

    summaries: int = 0
    alert_messages: int = 0
    escalations: int = 0
    events: list[AlertEvent] = field(default_factory=list)


def plan(
    connection: Connection,
    now: datetime,
    settings: NotifySettings,
    listening_since: datetime | None = None,
) -> PlanResult:
    """Decide and record everything due at ``now`` (sync; one transaction via ``run_sync``)."""
    plan_lock(connection)
    result = PlanResult()
    result.summaries = plan_summaries(connection, now)
    found = conditions(connection, now, listening_since)
    result.events = reconcile(connection, found, now, settings.escalate_after)
    result.alert_messages = tell_about(connection, result.events, now, settings)
    result.escalations = escalate(connection, now, settings)
    return result


def plan_lock(connection: Connection) -> None:
    """On PostgreSQL, wait until no other replica plans (held to the end of the transaction;
    taking it again in the same transaction returns at once)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PLAN_LOCK})


# -- summaries -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _DueSummary:
    subscription_id: int
    caregiver_id: int
    period: Period
    day: str
    late: bool
    missed: int


def plan_summaries(connection: Connection, now: datetime) -> int:
    """Write every summary that is due; returns how many."""
    rows = connection.execute(
        select(
            SUBSCRIPTIONS.c.id,
            SUBSCRIPTIONS.c.home_id,
            SUBSCRIPTIONS.c.caregiver_id,
            SUBSCRIPTIONS.c.summary_at,
            SUBSCRIPTIONS.c.next_summary_due,
            HOMES.c.timezone,
        )
        .join(HOMES, HOMES.c.id == SUBSCRIPTIONS.c.home_id)
        .where(SUBSCRIPTIONS.c.summary_at.isnot(None))
        .where(
            or_(
                SUBSCRIPTIONS.c.next_summary_due.is_(None),
                SUBSCRIPTIONS.c.next_summary_due <= now,
            )
        )
    ).all()
    zones: dict[str, ZoneInfo] = {}
    candidates: list[_DueSummary] = []
    moves: defaultdict[tuple[datetime | None, datetime], list[int]] = defaultdict(list)
    for row in rows:
        zone = zones.get(row.timezone) or zones.setdefault(row.timezone, ZoneInfo(row.timezone))
        at = parse_hhmm(row.summary_at)
        old = row.next_summary_due
        if old is None:  # new subscription: its first summary is the next one
            moves[(None, next_occurrence(at, zone, now)[1])].append(row.id)
            continue
        missed, slot = 0, old
        while (following := next_occurrence(at, zone, slot)[1]) <= now:
            missed, slot = missed + 1, following
        moves[(old, following)].append(row.id)
        day = slot.astimezone(zone).date()
        candidates.append(
            _DueSummary(
                row.id,
                row.caregiver_id,
                Period(row.home_id, occurrence(day - timedelta(days=1), at, zone), slot),
                day.isoformat(),
                now - slot > LATE_AFTER,
                missed,
            )
        )
    claimed = _claim_slots(connection, moves)
    due = [summary for summary in candidates if summary.subscription_id in claimed]
    facts = {(f.home_id, f.start, f.end): f for f in gather(connection, [d.period for d in due])}
    digests = _digest_caregivers(connection, {summary.caregiver_id for summary in due})
    messages: list[Message] = []
    bundles: defaultdict[int, list[tuple[_DueSummary, str, str]]] = defaultdict(list)
    for summary in due:
        fact = facts.get((summary.period.home_id, summary.period.start, summary.period.end))
        if fact is None:
            continue
        title, body = render(fact, now, late=summary.late, missed=summary.missed)
        if summary.caregiver_id in digests:
            bundles[summary.caregiver_id].append((summary, title, body))
            continue
        messages.append(
            Message(
                summary.caregiver_id,
                summary.period.home_id,
                "summary",
                f"summary:{summary.subscription_id}:{summary.day}",
                title,
                body,
                due_at=now,
            )
        )
    messages += [_digest(caregiver, parts, now) for caregiver, parts in bundles.items()]
    return enqueue_many(connection, messages, now)


def _digest_caregivers(connection: Connection, caregiver_ids: set[int]) -> set[int]:
    """The caregivers among ``caregiver_ids`` who want digests (IN_LIST at a time)."""
    digests: set[int] = set()
    for chunk in itertools.batched(sorted(caregiver_ids), IN_LIST):
        digests.update(
            connection.execute(
                select(CAREGIVERS.c.id).where(
                    CAREGIVERS.c.id.in_(chunk), CAREGIVERS.c.digest.is_(True)
                )
            ).scalars()
        )
    return digests


def _digest(caregiver_id: int, parts: list[tuple[_DueSummary, str, str]], now: datetime) -> Message:
    """Several homes' summaries as one message: the headlines first, then each home."""
    parts.sort(key=lambda part: part[1])
    attention = [title for _, title, _ in parts if "Needs attention" in title]
    count = len(parts)
    title = (
        f"{count} homes: all normal"
        if not attention
        else f"{count} homes: {len(attention)} need{'s' if len(attention) == 1 else ''} attention"
    )
    lines = [f"- {part_title}" for _, part_title, _ in parts]
    for _, part_title, body in parts:
        lines += ["", "---", f"## {part_title}", "", body]
    slots = ",".join(sorted(f"{s.subscription_id}:{s.day}" for s, _, _ in parts))
    key = hashlib.sha256(slots.encode()).hexdigest()[:32]
    return Message(
        caregiver_id, None, "summary", f"digest:{caregiver_id}:{key}", title, "\n".join(lines), now
    )


def _claim_slots(
    connection: Connection, moves: dict[tuple[datetime | None, datetime], list[int]]
) -> set[int]:
    """Move each subscription's next summary from old to new, if nobody else did (a
    compare-and-swap; RETURNING says which rows moved). Subscriptions sharing a timezone and a
    time share their old and new slot, so this is a few statements, not one per home."""
    column = SUBSCRIPTIONS.c.next_summary_due
    claimed: set[int] = set()
    for (old, new), ids in moves.items():
        for chunk in itertools.batched(ids, IN_LIST):
            claimed.update(
                connection.execute(
                    update(SUBSCRIPTIONS)
                    .where(SUBSCRIPTIONS.c.id.in_(chunk))
                    .where(column.is_(None) if old is None else column == old)
                    .values(next_summary_due=new)
                    .returning(SUBSCRIPTIONS.c.id)
                ).scalars()
            )
    return claimed


# -- alerts ----------------------------------------------------------------------------------


def tell_about(
    connection: Connection, events: list[AlertEvent], now: datetime, settings: NotifySettings
) -> int:
    """Outbox messages for this tick's alert events; returns how many."""
    if not events:
        return 0
    home_ids = {event.home_id for event in events}
    watchers, homes = load_watchers(connection, home_ids), load_homes(connection, home_ids)
    written = 0
    folded: defaultdict[int, list[tuple[AlertEvent, Watcher]]] = defaultdict(list)
    for event in events:
        name, _zone = homes[event.home_id]
        chain = [w for w in watchers.get(event.home_id, ()) if event.kind in w.kinds]
        if event.urgent and event.opened:
            if chain:
                written += enqueue(
                    connection,
                    Message(
                        chain[0].caregiver_id,
                        event.home_id,
                        "alert",
                        f"alert:{event.alert_id}:level:0",
                        f"URGENT {name}: {event.text}",
                        urgent_body(event, settings, chain[1].name if len(chain) > 1 else None),
                        due_at=now,
                        alert_id=event.alert_id,
                    ),
                    now,
                )
            continue
        if event.urgent:  # resolved: everybody who was told hears the good news
            told = connection.execute(
                select(NOTIFICATIONS.c.caregiver_id)
                .where(NOTIFICATIONS.c.alert_id == event.alert_id)
                .distinct()
            ).scalars()
            for caregiver_id in told:
                written += enqueue(
                    connection,
                    Message(
                        caregiver_id,
                        event.home_id,
                        "resolved",
                        f"alert:{event.alert_id}:resolved:{caregiver_id}",
                        f"Resolved {name}: activity again",
                        f"Resolved: {event.text} is over; there is activity again.",
                        due_at=now,
                        alert_id=event.alert_id,
                    ),
                    now,
                )
            continue
        for watcher in chain:
            folded[watcher.caregiver_id].append((event, watcher))
    for caregiver_id, items in folded.items():
        written += enqueue(connection, _folded_message(caregiver_id, items, homes, now), now)
    return written


#: What a caregiver can do about each kind of alert (said when it opens).
ADVICE = {
    "battery": "Replace the battery soon: the sensor stops reporting when it runs out.",
    "offline": "Check that the device has power and is within range of the bridge or a lamp.",
    "stale": "Check the home's internet connection and its Home Assistant.",
    "bridge": "Check that the Hue bridge has power and its network cable is in.",
    "quiet": "It may be nothing; a call to check in is a good idea.",
}


def _folded_message(
    caregiver_id: int,
    items: list[tuple[AlertEvent, Watcher]],
    homes: dict[str, tuple[str, ZoneInfo]],
    now: datetime,
) -> Message:
    """One message with every non-urgent change of this tick for one caregiver."""
    lines = []
    for event, _watcher in items:
        name = homes[event.home_id][0]
        state = "" if event.opened else "resolved: "
        lines.append(f"- {name}: {state}{event.text}")
        if event.opened and event.kind in ADVICE:
            lines.append(f"  {ADVICE[event.kind]}")
    first, watcher = items[0]
    name, zone = homes[first.home_id]
    if len(items) == 1:
        title = f"{name}: {'' if first.opened else 'resolved: '}{first.text}"
    else:
        names = sorted({homes[e.home_id][0] for e, _ in items})
        title = f"{len(items)} changes: {', '.join(names)}"
    due = now
    if watcher.quiet is not None:
        start, end = parse_hhmm(watcher.quiet[0]), parse_hhmm(watcher.quiet[1])
        if in_window(now, zone, start, end):
            due = window_end(now, zone, end)  # not urgent: it waits for the morning
    ids = ",".join(str(e.alert_id) + ("o" if e.opened else "r") for e, _ in items)
    return Message(
        caregiver_id,
        first.home_id,
        "alerts",
        f"alerts:{caregiver_id}:{ids}",
        title,
        "\n".join(lines),
        due_at=due,
        alert_id=first.alert_id if len(items) == 1 else None,
    )
