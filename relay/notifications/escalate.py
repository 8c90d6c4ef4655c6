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
from .outbox import Message, enqueue_many
from .visibility import blindness, last_movements

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


def ack_links(
    connection: Connection,
    wanted: list[tuple[int, int]],
    now: datetime,
    settings: NotifySettings,
) -> dict[tuple[int, int], str]:
    """New acknowledgement links, by (alert, caregiver) of ``wanted`` (only their hashes are
    stored; IN_LIST a statement); none for a caregiver who has one already (they were told
    already), nor when the relay has no public address. A link names who acknowledged: it is
    sent to one caregiver only."""
    if not settings.public_url:
        return {}
    codes = {pair: secrets.token_urlsafe(16) for pair in wanted}
    created: set[tuple[int, int]] = set()
    for chunk in itertools.batched(codes.items(), IN_LIST):
        rows = connection.execute(
            insert_or_skip(connection.dialect.name, ACK_LINKS)
            .values(
                [
                    {
                        "alert_id": alert_id,
                        "caregiver_id": caregiver_id,
                        "code_hash": token_hash(code),
                        "created_at": now,
                    }
                    for (alert_id, caregiver_id), code in chunk
                ]
            )
            .on_conflict_do_nothing(index_elements=["alert_id", "caregiver_id"])
            .returning(ACK_LINKS.c.alert_id, ACK_LINKS.c.caregiver_id)
        )
        created.update((row.alert_id, row.caregiver_id) for row in rows)
    base = settings.public_url.rstrip("/")
    return {
        (alert_id, caregiver_id): f"{base}/api/v1/alerts/{alert_id}/ack?code={code}"
        for (alert_id, caregiver_id), code in codes.items()
        if (alert_id, caregiver_id) in created
    }


@dataclass(frozen=True, slots=True)
class Urgent:
    """An urgent alert to tell the caregiver at ``level`` of its ``chain`` about."""

    alert: AlertFacts
    #: Its ``homes`` row.
    home: Any
    chain: list[Watcher]
    level: int


def tell_urgent(
    connection: Connection, urgent: list[Urgent], *, now: datetime, settings: NotifySettings
) -> int:
    """The urgent messages, each to the caregiver at its level (with their own link); a few
    statements for all (the relay can see hundreds of homes fall silent in one tick)."""
    pairs = [(u.alert.alert_id, u.chain[u.level].caregiver_id) for u in urgent]
    links = ack_links(connection, pairs, now, settings)
    movements = last_movements(
        connection, {n: (u.home.id, u.alert.detail_time()) for n, u in enumerate(urgent)}
    )
    messages = []
    for n, (u, pair) in enumerate(zip(urgent, pairs, strict=True)):
        link = links.get(pair)
        if settings.public_url and link is None:
            continue  # this caregiver was told already (another replica, or a retry)
        alert = u.alert
        facts = UrgentFacts(
            home_facts(u.home),
            AlertFacts(
                alert.alert_id,
                alert.kind,
                alert.opened_at,
                alert.details,
                urgent=True,
                last_movement=movements.get(n),
            ),
            now,
            blindness(u.home, now),
            link,
            u.chain[u.level + 1].name if u.level + 1 < len(u.chain) else None,
            settings.escalate_after,
            u.level,
        )
        messages.append(
            Message(
                pair[1],
                u.home.id,
                "alert",
                f"alert:{alert.alert_id}:level:{u.level}",
                compose.urgent(facts),
                due_at=now,
                alert_id=alert.alert_id,
            )
        )
    return enqueue_many(connection, messages, now)


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
    urgent = []
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
        urgent.append(Urgent(AlertFacts.of(alert), homes[alert.home_id], chain, level))
    return tell_urgent(connection, urgent, now=now, settings=settings)
