"""Urgent alerts go down a chain of caregivers: who watches a home and in which order, the
urgent message (with each caregiver's own acknowledgement link), and the next caregiver told
when nobody acknowledged in time."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
import itertools
import secrets
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select, update

from ..messages import compose
from ..messages.facts import AlertFacts, HomeFacts, UrgentFacts
from ..storage.models import (
    ACK_LINKS,
    ALERTS,
    CAREGIVERS,
    HOMES,
    IN_LIST,
    OPEN,
    SUBSCRIPTIONS,
    insert_or_skip,
)
from ..tokens import token_hash
from .outbox import Message, enqueue
from .visibility import blindness, last_movement

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


def load_homes(connection: Connection, home_ids: set[str]) -> dict[str, Any]:
    """The ``homes`` rows of these homes (IN_LIST homes a statement)."""
    return {
        row.id: row
        for chunk in itertools.batched(sorted(home_ids), IN_LIST)
        for row in connection.execute(select(HOMES).where(HOMES.c.id.in_(chunk)))
    }


def home_facts(home: Any) -> HomeFacts:
    """What a message needs of a ``homes`` row."""
    return HomeFacts(home.name, ZoneInfo(home.timezone))


def ack_link(
    connection: Connection,
    alert_id: int,
    caregiver_id: int,
    now: datetime,
    settings: NotifySettings,
) -> str | None:
    """A new acknowledgement link of this caregiver for this alert (only its hash is stored);
    None when the caregiver already has one (they were told already) or the relay has no
    public address. The link names who acknowledged: it is sent to one caregiver only."""
    if not settings.public_url:
        return None
    code = secrets.token_urlsafe(16)
    created = connection.execute(
        insert_or_skip(connection.dialect.name, ACK_LINKS)
        .values(
            alert_id=alert_id, caregiver_id=caregiver_id, code_hash=token_hash(code), created_at=now
        )
        .on_conflict_do_nothing(index_elements=["alert_id", "caregiver_id"])
        .returning(ACK_LINKS.c.id)
    ).first()
    if created is None:
        return None
    return f"{settings.public_url.rstrip('/')}/api/v1/alerts/{alert_id}/ack?code={code}"


def tell_urgent(
    connection: Connection,
    alert: AlertFacts,
    home: Any,
    chain: list[Watcher],
    *,
    level: int,
    now: datetime,
    settings: NotifySettings,
) -> int:
    """The urgent message to the caregiver at ``level`` of the chain (with their own link)."""
    caregiver = chain[level]
    link = ack_link(connection, alert.alert_id, caregiver.caregiver_id, now, settings)
    if settings.public_url and link is None:
        return 0  # this caregiver was told already (another replica, or a retry)
    since = alert.detail_time()
    facts = UrgentFacts(
        home_facts(home),
        AlertFacts(
            alert.alert_id,
            alert.kind,
            alert.opened_at,
            alert.details,
            urgent=True,
            last_movement=last_movement(connection, home.id, since),
        ),
        now,
        blindness(home, now),
        link,
        chain[level + 1].name if level + 1 < len(chain) else None,
        settings.escalate_after,
        level,
    )
    return enqueue(
        connection,
        Message(
            caregiver.caregiver_id,
            home.id,
            "alert",
            f"alert:{alert.alert_id}:level:{level}",
            compose.urgent(facts),
            due_at=now,
            alert_id=alert.alert_id,
        ),
        now,
    )


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
        facts = AlertFacts.of(alert)
        home = homes[alert.home_id]
        written += tell_urgent(
            connection, facts, home, chain, level=level, now=now, settings=settings
        )
    return written
