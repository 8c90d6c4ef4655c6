"""Urgent alerts go down a chain of caregivers: who watches a home and in which order, what an
urgent message says, and the next caregiver told when nobody acknowledged in time."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
import itertools
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select, update

from ..storage.models import ALERTS, CAREGIVERS, HOMES, IN_LIST, SUBSCRIPTIONS
from .alerting import OPEN, AlertEvent
from .outbox import Message, enqueue

if TYPE_CHECKING:
    from .plan import NotifySettings


@dataclass(frozen=True, slots=True)
class Watcher:
    caregiver_id: int
    name: str
    kinds: frozenset[str]
    order: int
    quiet: tuple[str, str] | None


def load_watchers(connection: Connection, home_ids: set[str]) -> dict[str, list[Watcher]]:
    """Who watches each home, in escalation order (homes read IN_LIST at a time: a tick after
    a regional outage can concern more homes than a statement may have parameters)."""
    found: defaultdict[str, list[Watcher]] = defaultdict(list)
    for chunk in itertools.batched(sorted(home_ids), IN_LIST):
        rows = connection.execute(
            select(
                SUBSCRIPTIONS.c.home_id,
                SUBSCRIPTIONS.c.alert_kinds,
                SUBSCRIPTIONS.c.escalation_order,
                CAREGIVERS.c.id,
                CAREGIVERS.c.name,
                CAREGIVERS.c.quiet_start,
                CAREGIVERS.c.quiet_end,
            )
            .join(CAREGIVERS, CAREGIVERS.c.id == SUBSCRIPTIONS.c.caregiver_id)
            .where(SUBSCRIPTIONS.c.home_id.in_(chunk))
            .order_by(SUBSCRIPTIONS.c.escalation_order, CAREGIVERS.c.id)
        )
        for row in rows:
            quiet = (row.quiet_start, row.quiet_end) if row.quiet_start and row.quiet_end else None
            found[row.home_id].append(
                Watcher(
                    row.id, row.name, frozenset(row.alert_kinds or ()), row.escalation_order, quiet
                )
            )
    return found


def load_homes(connection: Connection, home_ids: set[str]) -> dict[str, tuple[str, ZoneInfo]]:
    """Each home's name and timezone (IN_LIST homes a statement)."""
    zones: dict[str, ZoneInfo] = {}
    homes: dict[str, tuple[str, ZoneInfo]] = {}
    for chunk in itertools.batched(sorted(home_ids), IN_LIST):
        rows = connection.execute(
            select(HOMES.c.id, HOMES.c.name, HOMES.c.timezone).where(HOMES.c.id.in_(chunk))
        )
        for row in rows:
            zone = zones.get(row.timezone) or zones.setdefault(row.timezone, ZoneInfo(row.timezone))
            homes[row.id] = (row.name, zone)
    return homes


def urgent_body(event: AlertEvent, settings: NotifySettings, next_in_line: str | None) -> str:
    lines = [event.text[:1].upper() + event.text[1:] + "."]
    lines.append("")
    if settings.public_url and event.ack_code:
        link = f"{settings.public_url.rstrip('/')}/api/v1/alerts/{event.alert_id}/ack"
        lines.append(f"Acknowledge (I am looking into it): {link}?code={event.ack_code}")
    lines.append(f"Or on the relay: `hpoll-relay ack {event.alert_id}`")
    if next_in_line:
        minutes = int(settings.escalate_after.total_seconds() // 60)
        lines.append(f"If nobody acknowledges within {minutes} min, {next_in_line} is told.")
    return "\n".join(lines)


def escalate(connection: Connection, now: datetime, settings: NotifySettings) -> int:
    """Tell the next caregiver in line about urgent alerts nobody acknowledged in time."""
    rows = connection.execute(
        select(ALERTS).where(
            ALERTS.c.state == OPEN,
            ALERTS.c.urgent.is_(True),
            ALERTS.c.next_escalation_at <= now,
        )
    ).all()
    if not rows:
        return 0
    home_ids = {row.home_id for row in rows}
    watchers, homes = load_watchers(connection, home_ids), load_homes(connection, home_ids)
    written = 0
    for alert in rows:
        chain = [w for w in watchers.get(alert.home_id, ()) if alert.kind in w.kinds]
        level = alert.escalation_level + 1
        more = level < len(chain)
        moved = connection.execute(
            update(ALERTS)
            .where(ALERTS.c.id == alert.id, ALERTS.c.escalation_level == alert.escalation_level)
            .values(
                escalation_level=level if more else alert.escalation_level,
                next_escalation_at=now + settings.escalate_after if more else None,
            )
        )
        if moved.rowcount != 1 or not more:
            continue
        name = homes[alert.home_id][0]
        text_ = str((alert.details or {}).get("text", alert.kind))
        event = AlertEvent(
            alert.id, alert.home_id, alert.kind, text_, True, True, ack_code=alert.ack_code
        )
        minutes = int(settings.escalate_after.total_seconds() // 60) * level
        after = chain[level + 1].name if level + 1 < len(chain) else None
        written += enqueue(
            connection,
            Message(
                chain[level].caregiver_id,
                alert.home_id,
                "alert",
                f"alert:{alert.id}:level:{level}",
                f"URGENT {name}: {text_} (nobody has acknowledged for {minutes} min)",
                urgent_body(event, settings, after),
                due_at=now,
                alert_id=alert.id,
            ),
            now,
        )
    return written
