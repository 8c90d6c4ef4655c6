"""The notification outbox: every message is written BEFORE it is sent and marked AFTER.

- ``enqueue`` inserts a message under a unique ``dedup_key`` (a summary's home, subscription and
  day; an alert's id and recipient): a second writer, or a second replica, inserts nothing.
- ``Dispatcher`` sends what is due. Each message is claimed first by a compare-and-swap
  (``UPDATE … WHERE id = ? AND status = 'pending' RETURNING …``: a row back means won), so two
  replicas never both send it. A claim expires: a replica that died mid-send leaves the message
  to be retried, never lost (the price: a message the provider took just before the crash is
  sent twice; exactly once is not possible across an external service without its help).
- Every attempt is recorded (``delivery_attempts``); failures back off (1 min doubling to 1 h)
  and give up after a day, counted. A caregiver whose URL keeps failing is flagged, and the next
  message to someone else about the same home says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
import logging
import time
from typing import Any

from sqlalchemy import Connection, Row, and_, case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..messages.document import Document, para, render_plain, stored_document, to_json
from ..messages.words import clean
from ..secretbox import SecretBox, SecretBoxError
from ..storage.models import ATTEMPTS, CAREGIVERS, NOTIFICATIONS, SUBSCRIPTIONS, insert_or_skip
from .send import Delivery, deliver

_LOGGER = logging.getLogger(__name__)

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
CLAIM_FOR = timedelta(minutes=5)
RETRY_FIRST = timedelta(minutes=1)
RETRY_MAX = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(days=1)
#: Failures in a row that flag a caregiver's channel as failing.
FAILING_AFTER = 3


type Sender = Callable[[str, Document], Awaitable[Delivery]]


@dataclass(frozen=True, slots=True)
class Message:
    """A message to put in the outbox."""

    caregiver_id: int
    home_id: str | None
    kind: str
    dedup_key: str
    document: Document
    due_at: datetime
    alert_id: int | None = None


def _row(message: Message, now: datetime) -> dict[str, Any]:
    return {
        "caregiver_id": message.caregiver_id,
        "home_id": message.home_id,
        "alert_id": message.alert_id,
        "kind": message.kind,
        "dedup_key": message.dedup_key[:200],
        "title": message.document.title[:300],
        "body": render_plain(message.document),
        "content": to_json(message.document),
        "status": PENDING,
        "created_at": now,
        "due_at": message.due_at,
        "attempts": 0,
    }


def enqueue_many(connection: Connection, messages: Sequence[Message], now: datetime) -> int:
    """Record messages (sync, inside the caller's transaction) in one batched statement;
    returns how many were new (a repeated ``dedup_key`` is skipped, not an error)."""
    if not messages:
        return 0
    statement = (
        insert_or_skip(connection.dialect.name, NOTIFICATIONS)
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(NOTIFICATIONS.c.id)
    )
    return len(connection.execute(statement, [_row(m, now) for m in messages]).all())


def enqueue(connection: Connection, message: Message, now: datetime) -> bool:
    """Record one message; False if it already exists."""
    return enqueue_many(connection, [message], now) == 1


def _retry_delay(attempts: int) -> timedelta:
    delay: timedelta = RETRY_FIRST * 2 ** max(0, attempts - 1)
    return min(RETRY_MAX, delay)


class Dispatcher:
    """Sends due messages, at most ``concurrency`` at a time (Apprise sends from threads)."""

    def __init__(
        self,
        engine: AsyncEngine,
        box: SecretBox | None,
        *,
        concurrency: int = 8,
        sender: Sender | None = None,
    ) -> None:
        """``sender`` defaults to Apprise (``send.deliver``: each service in its format)."""
        self.engine = engine
        self.box = box
        self._limit = asyncio.Semaphore(concurrency)
        self._send: Sender = sender or deliver
        self.sent = 0
        self.failed = 0
        self.gave_up = 0

    async def run_once(self, now: datetime, batch: int = 200) -> int:
        """Send everything due now, batch after batch (urgent alerts first); returns how many
        this replica sent successfully."""
        sent, started = 0, time.monotonic()
        while due := await self._due(now, batch):
            results = await asyncio.gather(*(self._claim_and_send(i, now) for i in due))
            sent += sum(results)
            # A morning's thousands of messages take minutes: each batch claims with the time
            # it is claimed at (a claim dated at the start could run out while being sent,
            # and another replica would send the message again).
            now += timedelta(seconds=time.monotonic() - started)
            started = time.monotonic()
        return sent

    async def _due(self, now: datetime, batch: int) -> list[int]:
        async with self.engine.begin() as connection:
            # Claims of a replica that died mid-send run out: those messages are due again.
            await connection.execute(
                update(NOTIFICATIONS)
                .where(NOTIFICATIONS.c.status == SENDING, NOTIFICATIONS.c.claimed_until < now)
                .values(status=PENDING)
            )
        urgent_first = case((NOTIFICATIONS.c.kind == "alert", 0), else_=1)
        async with self.engine.connect() as connection:
            due = await connection.scalars(
                select(NOTIFICATIONS.c.id)
                .where(NOTIFICATIONS.c.status == PENDING, NOTIFICATIONS.c.due_at <= now)
                .order_by(urgent_first, NOTIFICATIONS.c.due_at, NOTIFICATIONS.c.id)
                .limit(batch)
            )
            return list(due.all())

    async def _claim_and_send(self, notification_id: int, now: datetime) -> bool:
        # The limit covers the claim and the record too: a batch of 200 claimed at once held
        # every connection of the pool, and the reports' token lookups waited behind them.
        async with self._limit:
            return await self._claim_send_record(notification_id, now)

    async def _claim_send_record(self, notification_id: int, now: datetime) -> bool:
        async with self.engine.begin() as connection:
            # The compare-and-swap; RETURNING hands over the claimed row in the same statement.
            row = (
                await connection.execute(
                    update(NOTIFICATIONS)
                    .where(NOTIFICATIONS.c.id == notification_id, NOTIFICATIONS.c.status == PENDING)
                    .values(
                        status=SENDING,
                        claimed_until=now + CLAIM_FOR,
                        attempts=NOTIFICATIONS.c.attempts + 1,
                    )
                    .returning(*NOTIFICATIONS.c)
                )
            ).one_or_none()
            if row is None:
                return False  # another replica has it
            caregiver = (
                await connection.execute(
                    select(CAREGIVERS).where(CAREGIVERS.c.id == row.caregiver_id)
                )
            ).one()
            document = stored_document(row.title, row.body, row.content)
            note = await _failing_note(connection, row.home_id, row.caregiver_id)
            if note:
                document = document.with_blocks(para(note))
        result = await self._deliver(caregiver.apprise_url_encrypted, document)
        await self._record(row, caregiver, result, now)
        return result.ok

    async def _deliver(self, encrypted_url: bytes, document: Document) -> Delivery:
        if self.box is None:
            return Delivery(False, "no secret key: caregivers' URLs cannot be read")
        try:
            url = self.box.decrypt(encrypted_url)
        except SecretBoxError as err:
            return Delivery(False, str(err))
        try:
            return await self._send(url, document)
        except Exception as err:
            return Delivery(False, f"Apprise raised {type(err).__name__}")

    async def _record(
        self, row: Row[Any], caregiver: Row[Any], result: Delivery, now: datetime
    ) -> None:
        notification_id: int = row.id
        attempts: int = row.attempts  # already counted by the claim
        created_at: datetime = row.created_at
        caregiver_id: int = caregiver.id
        failures: int = caregiver.consecutive_failures
        async with self.engine.begin() as connection:
            await connection.execute(
                insert(ATTEMPTS).values(
                    notification_id=notification_id,
                    attempted_at=now,
                    ok=result.ok,
                    detail=result.detail[:500],
                )
            )
            if result.ok:
                self.sent += 1
                await connection.execute(
                    update(NOTIFICATIONS)
                    .where(NOTIFICATIONS.c.id == notification_id)
                    .values(status=SENT, sent_at=now, claimed_until=None, last_error=None)
                )
                await connection.execute(
                    update(CAREGIVERS)
                    .where(CAREGIVERS.c.id == caregiver_id)
                    .values(consecutive_failures=0, failing_since=None)
                )
                return
            self.failed += 1
            give_up = now - created_at >= GIVE_UP_AFTER
            if give_up:
                self.gave_up += 1
            _LOGGER.warning(
                "notification %d to caregiver %d failed (attempt %d%s): %s",
                notification_id,
                caregiver_id,
                attempts,
                ", giving up" if give_up else "",
                result.detail,
            )
            await connection.execute(
                update(NOTIFICATIONS)
                .where(NOTIFICATIONS.c.id == notification_id)
                .values(
                    status=FAILED if give_up else PENDING,
                    due_at=now + _retry_delay(attempts),
                    claimed_until=None,
                    last_error=result.detail[:500],
                )
            )
            flagged = failures + 1 >= FAILING_AFTER
            await connection.execute(
                update(CAREGIVERS)
                .where(CAREGIVERS.c.id == caregiver_id)
                .values(
                    consecutive_failures=CAREGIVERS.c.consecutive_failures + 1,
                    failing_since=func.coalesce(CAREGIVERS.c.failing_since, now)
                    if flagged
                    else CAREGIVERS.c.failing_since,
                )
            )


async def _failing_note(connection: AsyncConnection, home_id: str | None, caregiver_id: int) -> str:
    """'Messages to Ann are failing since …' for the other caregivers of the same home."""
    if home_id is None:
        return ""
    rows = (
        await connection.execute(
            select(CAREGIVERS.c.name, CAREGIVERS.c.failing_since)
            .join(SUBSCRIPTIONS, SUBSCRIPTIONS.c.caregiver_id == CAREGIVERS.c.id)
            .where(
                and_(
                    SUBSCRIPTIONS.c.home_id == home_id,
                    CAREGIVERS.c.id != caregiver_id,
                    CAREGIVERS.c.failing_since.isnot(None),
                )
            )
        )
    ).all()
    if not rows:
        return ""
    names = ", ".join(f"{clean(r.name)} (since {r.failing_since:%Y-%m-%d %H:%M} UTC)" for r in rows)
    return f"Note: messages to {names} keep failing; they may not know about this."
