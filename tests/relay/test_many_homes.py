"""What changes when a relay watches many homes: statements that name more homes than one
statement may carry, planning off the serving loop, and its duration on /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
import threading
from types import SimpleNamespace
from typing import Any

from aiohttp import web
from cryptography.fernet import Fernet
import pytest
from sqlalchemy import Connection, event, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.admin import Admin
from relay.messages.document import Document, para
from relay.metrics import Metrics
from relay.notifications import visibility, worker
from relay.notifications.escalate import escalate, load_homes, load_watchers
from relay.notifications.outbox import Dispatcher, Message, enqueue_many
from relay.notifications.plan import (
    NotifySettings,
    _digest_caregivers,
    _told,
    plan,
    tell_acknowledged,
    tell_blind,
)
from relay.notifications.send import PRIVATE_ENV, Delivery
from relay.notifications.visibility import _close_reports, movements_after
from relay.secretbox import SecretBox
from relay.storage.db import create_engine, upgrade
from relay.storage.models import ATTEMPTS, BLIND_SPELLS, HOMES, NOTIFICATIONS, REPORTS

#: More than SQLite (32,766) and asyncpg (32,767) accept as parameters of one statement: the
#: homes of one tick after a regional outage.
MANY = 40_000


async def test_alert_fan_out_reads_more_homes_than_one_statement_may_name(
    engine: AsyncEngine,
) -> None:
    admin = Admin(engine, SecretBox(Fernet.generate_key()))
    home = await admin.add_home("Mum's flat", "Europe/Berlin")
    await admin.add_caregiver("Ann", "json://relay-test.example/")
    await admin.subscribe(home.id, "Ann", None, ["battery"])
    ids = {home.id} | {f"h_none_{n}" for n in range(MANY)}

    def read(connection: Connection) -> tuple[Any, Any, set[int]]:
        return (
            load_watchers(connection, ids),
            load_homes(connection, ids),
            _digest_caregivers(connection, set(range(MANY))),
        )

    async with engine.connect() as connection:
        watchers, homes, digests = await connection.run_sync(read)
    assert set(homes) == {home.id}
    assert homes[home.id].name == "Mum's flat"
    assert [w.name for w in watchers[home.id]] == ["Ann"]
    assert digests == set()


async def test_going_blind_in_more_homes_than_one_statement_may_name(engine: AsyncEngine) -> None:
    # A regional outage: the relay stops seeing tens of thousands of homes in one tick.
    spells = [
        SimpleNamespace(id=n, home_id=f"h_none_{n}", cause="stale", started_at=datetime.now(UTC))
        for n in range(MANY)
    ]
    async with engine.begin() as connection:
        told = await connection.run_sync(tell_blind, spells, datetime.now(UTC))
    assert told == 0  # no urgent alarm open in any of them, and no statement too long


async def test_planning_runs_beside_the_serving_loop_and_is_timed(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []

    def recording_plan(connection: Connection, *args: Any) -> Any:
        threads.append(threading.get_ident())
        return plan(connection, *args)

    monkeypatch.setattr(worker, "plan", recording_plan)
    metrics = Metrics()
    notifier = worker.Notifier(
        engine,
        Dispatcher(engine, SecretBox(Fernet.generate_key())),
        NotifySettings(),
        metrics=metrics,
    )
    notifier.start(0.2)
    try:
        for _ in range(200):
            if len(threads) >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await notifier.stop()
    assert len(threads) >= 2
    assert threading.get_ident() not in threads
    # A pass cut off by stop() started (recorded) but was never timed.
    lines = dict(line.rsplit(" ", 1) for line in metrics.render().splitlines() if " " in line)
    assert 1 <= int(lines["hpoll_plan_seconds_count"]) <= len(threads)
    assert lines['hpoll_plan_seconds_bucket{le="+Inf"}'] == lines["hpoll_plan_seconds_count"]
    assert float(lines["hpoll_plan_last_seconds"]) > 0


async def test_a_pass_that_hangs_shows_while_it_hangs(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # hpoll_plan_seconds only learns of a pass when it ends: one stuck on the database would
    # never show there. The running pass's age does.
    release = threading.Event()

    def hanging_plan(connection: Connection, *args: Any) -> Any:
        release.wait(10)
        return plan(connection, *args)

    monkeypatch.setattr(worker, "plan", hanging_plan)
    notifier = worker.Notifier(
        engine, Dispatcher(engine, SecretBox(Fernet.generate_key())), NotifySettings()
    )
    assert notifier.planning_for() == 0
    notifier.start(60)
    try:
        for _ in range(200):
            if notifier.planning_for() > 0.5:
                break
            await asyncio.sleep(0.05)
        hung_for = notifier.planning_for()
        release.set()
        for _ in range(200):
            if notifier.ticks:
                break
            await asyncio.sleep(0.05)
    finally:
        release.set()
        await notifier.stop()
    assert hung_for > 0.5
    assert notifier.ticks == 1
    assert notifier.planning_for() == 0


async def test_a_long_dispatch_claims_each_batch_at_its_own_time(engine: AsyncEngine) -> None:
    # Thousands of summaries take minutes to send; a claim dated at the start of the run could
    # expire while its message is still being sent, and another replica would send it again.
    box = SecretBox(Fernet.generate_key())
    admin = Admin(engine, box)
    home = await admin.add_home("Mum's flat", "Europe/Berlin")
    caregiver = await admin.add_caregiver("Ann", "json://relay-test.example/")
    start = datetime.now(UTC)
    messages = [
        Message(
            caregiver,
            home.id,
            "summary",
            f"k{n}",
            Document(f"Summary {n}", "normal", (para("All normal"),)),
            start,
        )
        for n in range(3)
    ]
    async with engine.begin() as connection:
        await connection.run_sync(enqueue_many, messages, start)

    async def slow(_url: str, _document: Document) -> Delivery:
        await asyncio.sleep(0.3)
        return Delivery(True, "delivered")

    sent = await Dispatcher(engine, box, sender=slow).run_once(start, batch=1)
    assert sent == 3
    async with engine.connect() as connection:
        times = sorted((await connection.execute(select(NOTIFICATIONS.c.sent_at))).scalars().all())
    assert times[0] >= start
    # Two batches are under way at a time: the third is claimed once the first is through.
    assert times[2] - times[0] >= timedelta(seconds=0.25)


async def _morning(
    engine: AsyncEngine, box: SecretBox, count: int, url: str = "json://relay-test.example/{n}"
) -> datetime:
    """``count`` summaries due now, each to its own caregiver (``url`` with its number) about
    its own home."""
    admin = Admin(engine, box)
    start = datetime.now(UTC)
    messages = []
    for n in range(count):
        home = await admin.add_home(f"Home {n}", "Europe/Berlin")
        caregiver = await admin.add_caregiver(f"Carer {n}", url.format(n=n))
        document = Document(f"Summary {n}", "normal", (para("All normal"),))
        messages.append(Message(caregiver, home.id, "summary", f"k{n}", document, start))
    async with engine.begin() as connection:
        await connection.run_sync(enqueue_many, messages, start)
    return start


async def test_the_next_batch_is_sent_while_one_waits_for_its_slowest_answer(
    engine: AsyncEngine,
) -> None:
    # The first message's service answers only once the third message (of the next batch) is
    # being sent: a batch at a time, it waits for nothing and times out.
    box = SecretBox(Fernet.generate_key())
    start = await _morning(engine, box, 4)
    third_sent = asyncio.Event()

    async def provider(url: str, _document: Document) -> Delivery:
        if url.endswith("/2"):
            third_sent.set()
        if url.endswith("/0"):
            try:
                await asyncio.wait_for(third_sent.wait(), 5)
            except TimeoutError:
                return Delivery(False, "no answer")
        return Delivery(True, "delivered")

    assert await Dispatcher(engine, box, sender=provider).run_once(start, batch=2) == 4


async def test_a_batch_of_messages_costs_a_few_statements_not_a_few_each(
    engine: AsyncEngine,
) -> None:
    # The 08:00 crowd: claiming, reading and recording one message at a time was about ten
    # statements a message, and the morning's summaries waited for the database.
    box = SecretBox(Fernet.generate_key())
    start = await _morning(engine, box, 40)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    async def fine(_url: str, _document: Document) -> Delivery:
        return Delivery(True, "delivered")

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        sent = await Dispatcher(engine, box, sender=fine).run_once(start, batch=40)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert sent == 40
    assert len(statements) <= 12, statements
    async with engine.connect() as connection:
        rows = (await connection.execute(select(NOTIFICATIONS.c.status))).scalars().all()
        attempts = await connection.scalar(select(func.count()).select_from(ATTEMPTS))
    assert rows == ["sent"] * 40
    assert attempts == 40


async def test_the_dispatcher_has_as_many_sends_in_flight_as_its_concurrency(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real provider answers in a fraction of a second, so a morning's throughput is the sends
    # in flight. Through Apprise's own pool (the CPUs + 4 threads for the whole process, 32 at
    # most) the dispatcher's 32 were six on two cores. The service here answers nobody until 40
    # wait at once: with fewer in flight, every send times out (Apprise's read timeout) and
    # fails.
    monkeypatch.setenv(PRIVATE_ENV, "1")
    wanted = 40
    waiting, everyone = 0, asyncio.Event()
    most = 0

    async def hold(request: web.Request) -> web.Response:
        nonlocal waiting, most
        await request.read()
        waiting += 1
        most = max(most, waiting)
        if waiting >= wanted:
            everyone.set()
        try:
            await asyncio.wait_for(everyone.wait(), 8)
        except TimeoutError:
            return web.json_response({}, status=503)
        finally:
            waiting -= 1
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/{tail:.*}", hold)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    box = SecretBox(Fernet.generate_key())
    start = await _morning(engine, box, wanted, f"json://127.0.0.1:{port}/{{n}}")
    dispatcher = Dispatcher(engine, box, concurrency=wanted)
    try:
        sent = await dispatcher.run_once(start, batch=wanted)
    finally:
        dispatcher.close()
        await runner.cleanup()
    assert most == wanted
    assert sent == wanted


async def test_two_dispatchers_claiming_batches_send_each_message_once(db_url: str) -> None:
    engines = [create_engine(db_url), create_engine(db_url)]
    await upgrade(engines[0])
    box = SecretBox(Fernet.generate_key())
    try:
        start = await _morning(engines[0], box, 60)
        delivered: list[str] = []

        async def slow(url: str, _document: Document) -> Delivery:
            await asyncio.sleep(0.01)
            delivered.append(url)
            return Delivery(True, "delivered")

        sent = await asyncio.gather(
            *(Dispatcher(e, box, sender=slow).run_once(start, batch=7) for e in engines)
        )
    finally:
        for e in engines:
            await e.dispose()
    assert sum(sent) == 60
    assert sorted(delivered) == sorted(f"json://relay-test.example/{n}" for n in range(60))


async def test_the_end_of_a_blind_spell_reads_only_that_homes_reports(
    engine: AsyncEngine,
) -> None:
    # When a home is heard from again, the gaps between the reports it sent meanwhile replace
    # its "no reports" spell. The read went through the unique index or every home's reports
    # since the spell began (115 ms at 600,000 reports, growing with the history kept; 500 homes
    # back after an outage held one planning pass for a minute): one index range now.
    home = await Admin(engine, SecretBox(Fernet.generate_key())).add_home("Flat", "Europe/Berlin")
    now = datetime.now(UTC)
    sent = [now - timedelta(minutes=m) for m in (30, 10, 0)]
    async with engine.begin() as connection:
        await connection.execute(
            insert(REPORTS),
            [
                {
                    "home_id": home.id,
                    "report_id": f"r{n}",
                    "sent_at": at,
                    "received_at": now,
                    "payload": "{}",
                }
                for n, at in enumerate(sent)
            ],
        )
    async with engine.begin() as connection:
        spell = (
            await connection.execute(
                insert(BLIND_SPELLS)
                .values(home_id=home.id, cause="reports", started_at=now - timedelta(minutes=40))
                .returning(BLIND_SPELLS.c.id, BLIND_SPELLS.c.home_id, BLIND_SPELLS.c.started_at)
            )
        ).one()
    async with engine.begin() as connection:
        close = connection.run_sync(_close_reports, [spell])
        plan = await _plan_of_read(engine, "reports", lambda: close)
    async with engine.connect() as connection:
        gaps = (
            await connection.execute(
                select(BLIND_SPELLS.c.started_at, BLIND_SPELLS.c.ended_at).order_by(
                    BLIND_SPELLS.c.started_at
                )
            )
        ).all()
    assert [tuple(gap) for gap in gaps] == [(sent[0], sent[1])]  # the only gap over 15 min
    assert "ix_reports_home_sent" in plan, plan


async def test_who_was_told_about_an_alert_is_read_by_index(engine: AsyncEngine) -> None:
    # Every tick asks it for the alarms it tells about; the outbox keeps every message sent.
    async with engine.begin() as connection:
        plan = await _plan_of_read(
            engine, "notifications", lambda: connection.run_sync(_told, [1, 2])
        )
    assert "ix_notifications_alert" in plan, plan


@pytest.mark.parametrize(
    "read",
    [
        lambda connection: escalate(connection, datetime.now(UTC), NotifySettings()),
        lambda connection: tell_acknowledged(connection, datetime.now(UTC)),
    ],
    ids=["escalate", "acknowledged"],
)
async def test_a_pass_reads_the_alerts_of_one_state_by_index(
    engine: AsyncEngine, read: Callable[[Connection], int]
) -> None:
    # Alerts are kept: each pass scanned all of them several times for the few going on.
    async with engine.begin() as connection:
        plan = await _plan_of_read(engine, "alerts", lambda: connection.run_sync(read))
    assert "ix_alerts_state_resolved" in plan, plan


async def test_the_movements_that_ended_silences_are_read_by_index(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    wanted = {n: (f"h{n}", now - timedelta(hours=n)) for n in range(3)}
    async with engine.begin() as connection:
        plan = await _plan_of_read(
            engine, "activity", lambda: connection.run_sync(movements_after, wanted)
        )
    assert plan.count("ix_activity_home_time") == 3, plan


async def _plan_of_read(
    engine: AsyncEngine, table_name: str, run: Callable[[], Awaitable[object]]
) -> str:
    """How the database reads ``table_name`` in the one statement ``run`` makes of it (on
    PostgreSQL without sequential scans: test tables are tiny)."""
    reads: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if f"FROM {table_name}" in statement:
            reads.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", grab)
    try:
        await run()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", grab)
    [(statement, parameters)] = reads
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            await connection.exec_driver_sql("SET enable_seqscan = off")
            explain = "EXPLAIN "
        else:
            explain = "EXPLAIN QUERY PLAN "
        return str((await connection.exec_driver_sql(explain + statement, parameters)).all())


async def test_a_pass_looks_only_at_homes_that_may_be_blind(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every pass read every home to find the few the relay cannot see (0.4 s at 100,000).
    admin = Admin(engine, SecretBox(Fernet.generate_key()))
    now = datetime.now(UTC)
    homes = [await admin.add_home(f"Home {n}", "Europe/Berlin") for n in range(30)]
    sent = {home.id: now for home in homes}
    sent[homes[0].id] = now - timedelta(hours=1)  # silent for an hour
    async with engine.begin() as connection:
        for home_id, at in sent.items():
            await connection.execute(
                update(HOMES).where(HOMES.c.id == home_id).values(last_report_sent_at=at)
            )
        await connection.execute(
            update(HOMES)
            .where(HOMES.c.id == homes[1].id)
            .values(bridge_reachable=False, bridge_offline_since=now)
        )
    judged: list[str] = []
    real = visibility.blindness

    def counting(home: Any, *args: Any) -> Any:
        judged.append(home.id)
        return real(home, *args)

    monkeypatch.setattr(visibility, "blindness", counting)
    async with engine.begin() as connection:
        opened = await connection.run_sync(visibility.track, now, now - timedelta(days=1))
    assert sorted((spell.home_id, spell.cause) for spell in opened) == sorted(
        [(homes[0].id, "reports"), (homes[1].id, "bridge")]
    )
    assert sorted(judged) == sorted([homes[0].id, homes[1].id])
    # The silent home reports again: its open spell brings it back into the next pass.
    async with engine.begin() as connection:
        await connection.execute(
            update(HOMES).where(HOMES.c.id == homes[0].id).values(last_report_sent_at=now)
        )
    judged.clear()
    async with engine.begin() as connection:
        await connection.run_sync(visibility.track, now, now - timedelta(days=1))
        still_open = await connection.scalar(
            select(func.count())
            .select_from(BLIND_SPELLS)
            .where(BLIND_SPELLS.c.ended_at.is_(None), BLIND_SPELLS.c.home_id == homes[0].id)
        )
    assert sorted(judged) == sorted([homes[0].id, homes[1].id])
    assert still_open == 0


async def test_a_regional_outage_opens_and_ends_in_a_few_statements(engine: AsyncEngine) -> None:
    # Every home stale at once: an alert, a blind spell and a message each were one statement
    # each (163 s of planning at 100,000 homes); now one for all of each.
    admin = Admin(engine, SecretBox(Fernet.generate_key()))
    homes = 30
    for n in range(homes):
        home = await admin.add_home(f"Home {n}", "Europe/Berlin")
        await admin.add_caregiver(f"Carer {n}", f"json://relay-test.example/{n}")
        await admin.subscribe(home.id, f"Carer {n}", None, ["stale", "inactivity"])
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        await connection.execute(
            update(HOMES).values(
                last_report_at=now - timedelta(hours=1),
                last_report_sent_at=now - timedelta(hours=1),
                watching_since=now - timedelta(days=1),
            )
        )
    inserts: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("INSERT INTO"):
            inserts.append(statement.split(maxsplit=3)[2])

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        async with engine.begin() as connection:
            result = await connection.run_sync(plan, now, NotifySettings())
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert sorted(e.kind for e in result.events) == ["stale"] * homes
    assert result.alert_messages == homes
    assert sorted(inserts) == ["alerts", "blind_spells", "notifications"]

    # The outage ends: every home sends what it queued (one report 50 minutes ago, one now).
    # Each spell is replaced by its home's real gap (after the report 50 minutes ago; the
    # 10 minutes before it are no gap), in a few statements for all homes.
    async with engine.begin() as connection:
        ids = (await connection.execute(select(HOMES.c.id))).scalars().all()
        await connection.execute(
            insert(REPORTS),
            [
                {
                    "home_id": home_id,
                    "report_id": f"{home_id}-{minutes}",
                    "sent_at": now - timedelta(minutes=minutes),
                    "received_at": now,
                    "payload": "{}",
                }
                for home_id in ids
                for minutes in (50, 0)
            ],
        )
        await connection.execute(update(HOMES).values(last_report_at=now, last_report_sent_at=now))
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        verb, table = statement.split(maxsplit=2)[:2]
        if "blind_spells" in statement or (verb, table) == ("UPDATE", "alerts"):
            statements.append(verb if "blind_spells" in statement else "UPDATE alerts")

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(plan, now + timedelta(minutes=1), NotifySettings())
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert statements.count("DELETE") == 1
    assert statements.count("INSERT") == 1
    assert statements.count("UPDATE alerts") == 1  # every stale alert clearing, at once
    async with engine.connect() as connection:
        spells = (
            await connection.execute(
                select(BLIND_SPELLS.c.started_at, BLIND_SPELLS.c.ended_at, BLIND_SPELLS.c.cause)
            )
        ).all()
    gap = (now - timedelta(minutes=50), now, "reports")
    assert [tuple(spell) for spell in spells] == [gap] * homes


async def test_a_hue_cloud_outage_ends_in_a_few_statements(engine: AsyncEngine) -> None:
    # Every home's integration reports its bridge unreachable while the Hue cloud is down, and
    # reachable when it is back: each bridge spell was ended by its own UPDATE.
    admin = Admin(engine, SecretBox(Fernet.generate_key()))
    for n in range(30):
        await admin.add_home(f"Home {n}", "Europe/Berlin")
    now = datetime.now(UTC)
    down = now - timedelta(minutes=30)
    async with engine.begin() as connection:
        await connection.execute(
            update(HOMES).values(
                last_report_at=now,
                last_report_sent_at=now,
                watching_since=now - timedelta(days=1),
                bridge_reachable=False,
                bridge_offline_since=down,
            )
        )
        await connection.run_sync(plan, now, NotifySettings())
    back = now + timedelta(minutes=1)
    async with engine.begin() as connection:
        await connection.execute(
            update(HOMES).values(
                last_report_at=back,
                last_report_sent_at=back,
                bridge_reachable=True,
                bridge_offline_since=None,
            )
        )
    updates: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("UPDATE blind_spells"):
            updates.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(plan, back, NotifySettings())
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert len(updates) == 1
    async with engine.connect() as connection:
        spells = (
            await connection.execute(
                select(BLIND_SPELLS.c.cause, BLIND_SPELLS.c.started_at, BLIND_SPELLS.c.ended_at)
            )
        ).all()
    assert [tuple(spell) for spell in spells] == [("bridge", down, back)] * 30
