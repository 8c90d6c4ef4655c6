"""The notification outbox: every message is written BEFORE it is sent and marked AFTER.

- ``enqueue_many`` inserts messages, each under a unique ``dedup_key`` (a summary's home,
  subscription and day; an alert's id and recipient): a second writer, or a second replica,
  inserts nothing.
- ``Dispatcher`` sends what is due. Each message is claimed first by a compare-and-swap
  (``UPDATE … WHERE id IN (…) AND status = 'pending' RETURNING …``, a batch at a time: a row
  back means won), so two replicas never both send it. A claim expires: a replica that died
  mid-send leaves the message to be retried, never lost (the price: a message the provider took
  just before the crash is sent twice; exactly once is not possible across an external service
  without its help).
- Every attempt is recorded (``delivery_attempts``); failures back off (1 min doubling to 1 h)
  and give up after a day, counted. A caregiver whose URL keeps failing is flagged, and the next
  message to someone else about the same home says so.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
import itertools
import logging
import time
from typing import Any

from sqlalchemy import Connection, Row, case, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..messages.document import Document, para, render_plain, stored_document, to_json
from ..messages.words import clean
from ..secretbox import SecretBox, SecretBoxError
from ..storage.models import (
    ATTEMPTS,
    CAREGIVERS,
    FAILED,
    IN_LIST,
    NOTIFICATIONS,
    PENDING,
    SENDING,
    SENT,
    SUBSCRIPTIONS,
    insert_or_skip,
)
from .send import Delivery, deliver

_LOGGER = logging.getLogger(__name__)

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


def _retry_delay(attempts: int) -> timedelta:
    delay: timedelta = RETRY_FIRST * 2 ** max(0, attempts - 1)
    return min(RETRY_MAX, delay)


@dataclass(frozen=True, slots=True)
class _Claimed:
    """A message this replica claimed, with what sending it needs."""

    row: Row[Any]
    caregiver: Row[Any]
    document: Document


@dataclass(slots=True)
class _Sending:
    """A claimed batch whose sends are under way."""

    claimed: list[_Claimed]
    #: When it was claimed (its attempts and sends are recorded at that time).
    now: datetime
    results: asyncio.Future[list[Delivery]]

    @classmethod
    def start(
        cls,
        claimed: list[_Claimed],
        now: datetime,
        deliver_one: Callable[[_Claimed], Awaitable[Delivery]],
    ) -> _Sending:
        return cls(claimed, now, asyncio.gather(*(deliver_one(item) for item in claimed)))


class Dispatcher:
    """Sends due messages, batch after batch: one statement claims a batch, a few read what it
    needs, Apprise sends at most ``concurrency`` at a time (each in a thread of the
    dispatcher's own pool of that many: relay/notifications/send.py), and one transaction
    records every outcome. A message costs a share of about six statements, not ten of its own
    (the morning's thousands of summaries: bench/scale.py)."""

    def __init__(
        self,
        engine: AsyncEngine,
        box: SecretBox | None,
        *,
        concurrency: int = 32,
        sender: Sender | None = None,
    ) -> None:
        """``sender`` defaults to Apprise (``send.deliver``: each service in its format)."""
        self.engine = engine
        self.box = box
        self._limit = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        #: The threads Apprise sends in (made on first use, let go by :meth:`close`).
        self._pool: ThreadPoolExecutor | None = None
        self._send: Sender = sender or self.send
        self.sent = 0
        self.failed = 0
        self.gave_up = 0

    async def send(self, url: str, document: Document) -> Delivery:
        """Send one message now through Apprise, in a thread of this dispatcher's pool (the
        outbox's messages, and a caregiver's test message from the dashboard)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="hpoll-send")
        return await deliver(url, document, self._pool)

    def close(self) -> None:
        """Let the sending threads go (a send still running finishes in its thread); the next
        send makes new ones."""
        if (pool := self._pool) is not None:
            self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)

    async def run_once(self, now: datetime, batch: int = 200) -> int:
        """Send everything due now, batch after batch (urgent alerts first); returns how many
        this replica sent successfully.

        The next batch is claimed while one is being sent, and its sends take the places the
        first one's free (the ``concurrency`` limit is shared by both): no send waits for a
        batch's slowest answer or for its recording. (A batch at a time, with a provider that
        answers in 50-250 ms, 12,000 summaries took 61 s; bench/scale.py.)"""
        sent, started = 0, time.monotonic()
        in_flight: list[_Sending] = []
        try:
            claimed = await self._claim(now, batch)
            while claimed:
                in_flight.append(_Sending.start(claimed, now, self._deliver_one))
                if len(in_flight) > 1:  # the batch before: its sends are the first to end
                    sent += await self._finish(in_flight[0])
                    del in_flight[0]
                # A morning's thousands of messages take minutes: each batch claims with the
                # time it is claimed at (a claim dated at the start could run out while being
                # sent, and another replica would send the message again).
                now += timedelta(seconds=time.monotonic() - started)
                started = time.monotonic()
                claimed = await self._claim(now, batch)
            for sending in in_flight:
                sent += await self._finish(sending)
        except Exception:
            # The database failed meanwhile: the sends under way still end, and are recorded
            # if the database lets them be (else their claims run out and they are retried).
            for sending in in_flight:
                with contextlib.suppress(Exception):
                    await self._finish(sending)
            raise
        return sent

    async def _finish(self, sending: _Sending) -> int:
        """Wait for a batch's sends and record them; how many went out."""
        results = await sending.results
        await self._record(sending.claimed, results, sending.now)
        return sum(result.ok for result in results)

    async def _claim(self, now: datetime, batch: int) -> list[_Claimed]:
        """Claim up to ``batch`` due messages by one compare-and-swap, committed before any is
        sent: the first due are read (on PostgreSQL skipping rows another replica is claiming
        right now), then ``UPDATE … WHERE id IN (…) AND status = 'pending' RETURNING``: rows
        another replica claimed meanwhile fall out."""
        urgent_first = case((NOTIFICATIONS.c.kind == "alert", 0), else_=1)
        async with self.engine.begin() as connection:
            # Claims of a replica that died mid-send run out: those messages are due again.
            await connection.execute(
                update(NOTIFICATIONS)
                .where(NOTIFICATIONS.c.status == SENDING, NOTIFICATIONS.c.claimed_until < now)
                .values(status=PENDING)
            )
            due = (
                await connection.scalars(
                    select(NOTIFICATIONS.c.id)
                    .where(NOTIFICATIONS.c.status == PENDING, NOTIFICATIONS.c.due_at <= now)
                    .order_by(urgent_first, NOTIFICATIONS.c.due_at, NOTIFICATIONS.c.id)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not due:
                return []
            claims = (
                await connection.execute(
                    update(NOTIFICATIONS)
                    .where(NOTIFICATIONS.c.id.in_(due), NOTIFICATIONS.c.status == PENDING)
                    .values(
                        status=SENDING,
                        claimed_until=now + CLAIM_FOR,
                        attempts=NOTIFICATIONS.c.attempts + 1,
                    )
                    .returning(*NOTIFICATIONS.c)
                )
            ).all()
            if not claims:
                return []
            rows = sorted(claims, key=lambda row: (row.kind != "alert", row.due_at, row.id))
            caregivers = {
                caregiver.id: caregiver
                for caregiver in await connection.execute(
                    select(
                        CAREGIVERS.c.id,
                        CAREGIVERS.c.apprise_url_encrypted,
                        CAREGIVERS.c.consecutive_failures,
                    ).where(CAREGIVERS.c.id.in_({row.caregiver_id for row in rows}))
                )
            }
            failing = await _failing(connection, {row.home_id for row in rows} - {None})
        claimed = []
        for row in rows:
            document = stored_document(row.title, row.body, row.content)
            others = [f for f in failing.get(row.home_id, ()) if f[0] != row.caregiver_id]
            if others:
                document = document.with_blocks(para(_failing_note(others)))
            claimed.append(_Claimed(row, caregivers[row.caregiver_id], document))
        return claimed

    async def _deliver_one(self, item: _Claimed) -> Delivery:
        async with self._limit:
            return await self._deliver(item.caregiver.apprise_url_encrypted, item.document)

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
        self, claimed: Sequence[_Claimed], results: Sequence[Delivery], now: datetime
    ) -> None:
        """Every outcome of a batch in one transaction: the attempts in one statement, the sent
        messages in another, and the caregivers whose failures they end in a third."""
        delivered = [item for item, result in zip(claimed, results, strict=True) if result.ok]
        async with self.engine.begin() as connection:
            await connection.execute(
                insert(ATTEMPTS),
                [
                    {
                        "notification_id": item.row.id,
                        "attempted_at": now,
                        "ok": result.ok,
                        "detail": result.detail[:500],
                    }
                    for item, result in zip(claimed, results, strict=True)
                ],
            )
            if delivered:
                self.sent += len(delivered)
                await connection.execute(
                    update(NOTIFICATIONS)
                    .where(NOTIFICATIONS.c.id.in_([item.row.id for item in delivered]))
                    .values(status=SENT, sent_at=now, claimed_until=None, last_error=None)
                )
                await connection.execute(
                    update(CAREGIVERS)
                    .where(
                        CAREGIVERS.c.id.in_({item.caregiver.id for item in delivered}),
                        or_(
                            CAREGIVERS.c.consecutive_failures != 0,
                            CAREGIVERS.c.failing_since.isnot(None),
                        ),
                    )
                    .values(consecutive_failures=0, failing_since=None)
                )
            for item, result in zip(claimed, results, strict=True):
                if not result.ok:
                    await self._record_failure(connection, item, result, now)

    async def _record_failure(
        self, connection: AsyncConnection, item: _Claimed, result: Delivery, now: datetime
    ) -> None:
        """A failed send (rare: one at a time): retried later, or given up after a day; the
        caregiver's channel flagged after a few failures in a row."""
        notification_id: int = item.row.id
        attempts: int = item.row.attempts  # already counted by the claim
        caregiver_id: int = item.caregiver.id
        self.failed += 1
        give_up = now - item.row.created_at >= GIVE_UP_AFTER
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
        flagged = item.caregiver.consecutive_failures + 1 >= FAILING_AFTER
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


async def _failing(
    connection: AsyncConnection, home_ids: set[str]
) -> dict[str, list[tuple[int, str, datetime]]]:
    """For each home, the caregivers subscribed to it whose messages keep failing (id, name,
    since), IN_LIST homes a statement."""
    found: defaultdict[str, list[tuple[int, str, datetime]]] = defaultdict(list)
    for chunk in itertools.batched(sorted(home_ids), IN_LIST):
        for row in await connection.execute(
            select(
                SUBSCRIPTIONS.c.home_id,
                CAREGIVERS.c.id,
                CAREGIVERS.c.name,
                CAREGIVERS.c.failing_since,
            )
            .join(SUBSCRIPTIONS, SUBSCRIPTIONS.c.caregiver_id == CAREGIVERS.c.id)
            .where(SUBSCRIPTIONS.c.home_id.in_(chunk), CAREGIVERS.c.failing_since.isnot(None))
            .order_by(CAREGIVERS.c.id)
        ):
            found[row.home_id].append((row.id, row.name, row.failing_since))
    return found


def _failing_note(others: Sequence[tuple[int, str, datetime]]) -> str:
    """'Messages to Ann are failing since …' for the other caregivers of the same home."""
    names = ", ".join(f"{clean(name)} (since {at:%Y-%m-%d %H:%M} UTC)" for _, name, at in others)
    return f"Note: messages to {names} keep failing; they may not know about this."
