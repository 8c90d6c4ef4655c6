"""The whole relay at the size it claims: homes on PostgreSQL behind two replicas and HAProxy.

What runs (everything real, on this machine):
  * PostgreSQL from Debian (scripts/test-postgres.sh, fsync on, the settings README "Running
    for many homes" recommends), migrated by the relay;
  * two ``hpoll-relay serve`` replicas on it, behind HAProxy (Debian's package, installed when
    missing) started with deploy/haproxy.cfg exactly as committed, health-checked on /healthz;
  * Apprise (the relay's own sending) delivering json:// to a local sink, one URL per caregiver,
    answering in 50-250 ms as a provider's API does;
  * bench/scale_homes.py, a load generator that behaves like homes (see its docstring).

Sizes: ``BENCH_SCALE=full`` runs 100,000 homes (12,000 subscriptions due at one minute in
Europe/Berlin, offered 1,700 reports/s; ``BENCH_HOMES=N`` scales homes, crowd and rate to N
homes); the default is a small run (1,000 homes, a 5 s planning interval) that
``scripts/test`` runs through tests/relay/test_bench_scale.py to show the bench works.
``BENCH_WORKDIR=DIR`` keeps the replicas' and HAProxy's logs and the raw figures there.

The run, in order: the offered load (the homes at the target rate, 1,700 reports/s at full
size, for 40 s after a warm-up); then the timeline at a rate the replicas sustain (70 % of the
rate answered under the offered load, or the target when lower): replica 1 killed -9 and
restarted, the end of an outage, alerts opening and resolving, while the relay writes the
crowd's summaries ahead; the crowd's minute; a minute of homes after it. Then the closed loop
(the highest rate the replicas sustain: past it, planning shares the replicas with more ingest
than they can take, so its passes are reported apart), retention, a pg_dump, and the floors.

Compressed, because one machine with 2 cores hosts homes, balancer, replicas and database, and
the run lasts minutes, not days (say so with every figure):
  * registration is bulk (COPY into the relay's tables, tokens and encrypted Apprise URLs made
    by the relay's own functions), not 100,000 ``home add`` calls;
  * "the 08:00 crowd": 12,000 subscriptions at one wall-clock minute in Europe/Berlin; the
    minute is set once the replicas are up, as many passes ahead as the relay needs to write
    the crowd (``PLAN_AHEAD_PER_PASS`` a pass: the 11,000 of 12,000 beyond what the minute's
    own pass composes, ``PLAN_AT_ITS_TIME``, are written ahead, in the passes during the
    offered load and the timeline; the kill and the outage's end fall among
    them, ``morning_after_events`` says they did) and never sooner than ``morning_lead`` after
    the timeline's expected start (the relay treats every HH:MM alike), and their homes have a
    seeded day of activity to summarise;
  * in the timeline, when the replicas cannot sustain the target rate on this machine, the
    "active" homes report less often than once a minute (``timeline_report_interval_s``); the
    homes whose alerts are watched still report every minute, and planning and summaries run
    at full size;
  * alert thresholds are the per-home settings an operator can set (``home set``): 1 minute
    for stale, offline and inactivity instead of 30/60/180, active hours all day;
  * an outage is 20 queued reports per home (20 minutes), flushed when the outage ends;
  * database size per home per day is measured per report and per activity row and scaled to
    a day (16 active hours at a report a minute, 8 quiet hours of heartbeats); the retention
    job deletes a copy of the run's reports dated 31 days back, and its rate is scaled to the
    hourly prune at 100,000 homes.

Measured, one JSON line at the end (figures of the homes phase unless said otherwise):
  relay_max_rps, relay_max_p99_ms      closed loop through HAProxy to both replicas: the highest
                                       sustained rate
  offered_rps, report_interval_s       the offered load and the active homes' interval for it
  steady_rps, steady_p50_ms, steady_p99_ms, non_2xx_steady   answered reports/s, latency from
                                       the moment a home meant to send, non-2xx, at that load
  timeline_rps, timeline_report_interval_s, timeline_p50_ms, timeline_p99_ms   the timeline
  kill_p99_ms, flush_p99_ms            latency while a replica is down / while outage queues flush
  non_2xx, send_errors, failure_kinds  not 2xx / connection failures, whole run (each retried by
                                       the home, like the integration)
  lb_retries, lb_redispatches          what HAProxy retried on the other replica (before the
                                       closed loop)
  acked_reports, lost_reports          2xx answers to the homes (offered load, timeline), and of
                                       those and the closed loop's, not in the database (must be 0)
  unacked_at_end                       reports still waiting at a home when the run ended
  plan_ticks, plan_max_s, plan_median_s, plan_morning_s   planning passes at full size under the
                                       homes' load (the last: the longest of the passes that
                                       write the crowd ahead and the pass at its minute)
  plan_saturated_s                     the passes that ran while the closed loop drove the
                                       replicas past what they sustain (longest, each)
  morning_subscriptions, morning_delivered, morning_within_60s, morning_p50_s, morning_last_s
                                       the crowd's summaries: delivered (within 3 minutes),
                                       within 60 s, seconds from the slot to arrival
  morning_written_ahead                of those, how many were written before their minute
                                       (the pass at the minute composes PLAN_AT_ITS_TIME)
  messages_received, messages_sent_db, duplicate_messages   at the sink vs the outbox
  alerts_opened, alerts_resolved       per kind
  db_bytes_per_report, db_bytes_per_activity_row, db_mb_per_home_day, db_mb_total
  retention_rows, retention_s, retention_rows_per_s, retention_hourly_s_at_100k
  pg_dump_s, pg_dump_mb                a pg_dump -Fc of the database after the run
  replica_peak_rss_mb                  VmHWM of each replica process (the killed one, the one
                                       restarted in its place, the other)
  http_floor_rps                       the same closed loop to two bare aiohttp endpoints
                                       (bench/http_floor.py) behind the same HAProxy
  storage_floor_rps                    the relay's store_batch alone on the same PostgreSQL
  ratio_to_http_floor, ratio_to_storage_floor
  generator_cpu_s, load_avg            the load generator's CPU, the machine's load at start
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator, Sequence
import contextlib
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import json
import math
import os
from pathlib import Path
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import IO, Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import ClientError, ClientSession, web  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from bench.relay_ingest import create_database, storage_floor  # noqa: E402
from relay.admin import ALERT_KINDS  # noqa: E402
from relay.notifications.plan import PLAN_AHEAD_PER_PASS, PLAN_AT_ITS_TIME  # noqa: E402
from relay.notifications.schedule import next_occurrence, parse_hhmm  # noqa: E402
from relay.notifications.send import PRIVATE_ENV, validate_apprise_url  # noqa: E402
from relay.secretbox import SecretBox  # noqa: E402
from relay.storage.batch import bucket_start  # noqa: E402
from relay.storage.db import create_engine, upgrade  # noqa: E402
from relay.storage.models import (  # noqa: E402
    ACTIVITY,
    ALERTS,
    CAREGIVERS,
    HOME_TOKENS,
    HOMES,
    NOTIFICATIONS,
    SUBSCRIPTIONS,
)
from relay.storage.retention import prune  # noqa: E402
from relay.tokens import new_token, token_hash  # noqa: E402
from tests.relay.relay_process import free_port, serve_command  # noqa: E402
from tests.relay.sink import Sink  # noqa: E402

HAPROXY_CFG = ROOT / "deploy/haproxy.cfg"
#: The PostgreSQL settings README "Running for many homes" recommends (fsync stays on).
PG_SETTINGS = (
    "-c shared_buffers=512MB -c max_wal_size=4GB -c checkpoint_timeout=15min "
    "-c wal_compression=on -c synchronous_commit=on"
)
MORNING_ZONE = "Europe/Berlin"
ZONES = ("Europe/Berlin", "Europe/London", "Europe/Madrid", "America/New_York", "Asia/Tokyo")
ROOMS = ("Kitchen", "Living room", "Bedroom", "Hall")
#: Share of homes of each kind (the rest are "active"); see bench/scale_homes.py.
KINDS = {
    "silent": 0.005,
    "idle": 0.04,
    "battery": 0.01,
    "replaced": 0.01,
    "offline": 0.01,
    "outage": 0.005,
    "inactive": 0.005,
}
#: The per-home settings that compress the alerts' minutes (an operator's ``home set``).
SETTINGS = {
    "silent": {"stale_minutes": 1},
    "outage": {"stale_minutes": 1},
    "offline": {"offline_minutes": 1},
    "inactive": {"inactivity_minutes": 1, "active_start": "00:00", "active_end": "23:59"},
}
#: Reports a home sends a day: 16 active hours at one a minute, 8 quiet hours of heartbeats.
REPORTS_PER_DAY = 16 * 60 + 8 * 6
#: Activity rows a home adds a day: rooms with activity per 15-minute bucket over 16 hours
#: (the run's own average rooms per bucket is measured and used).
ACTIVE_BUCKETS_PER_DAY = 16 * 4


@dataclass(frozen=True)
class Size:
    """One run's dimensions and timeline (seconds from the start of each homes phase)."""

    name: str
    homes: int
    morning: int
    rate: float
    notify_seconds: float
    warmup: float
    offered_seconds: float
    kill_at: float
    down_for: float
    morning_lead: float
    flush_after_kill: float
    tail: float
    closed_seconds: float
    connections: int
    outage_reports: int


FULL = Size("full", 100_000, 12_000, 1_700, 60, 10, 40, 45, 5, 120, 30, 30, 15, 64, 20)
SMALL = Size("small", 1_000, 150, 40, 5, 2, 5, 8, 2, 20, 4, 5, 3, 16, 5)
#: The timeline (kill, morning, outage) runs at this share of the rate the replicas answered
#: under the offered load, or at the offered rate when lower.
SUSTAINABLE = 0.7
#: What the run compresses to fit one machine and minutes (the module docstring says more).
COMPRESSED = (
    "registration by COPY; alert thresholds 1 minute; the crowd's minute set as many passes "
    "ahead as writing it ahead takes; in the timeline, the homes whose alerts are not watched "
    "report less often when the replicas cannot take the target rate; size per day scaled from "
    "the run; the prune measured on the run's reports dated back"
)
#: The crowd's minute is written at least this long (seconds) before a planning pass starts.
SET_BEFORE_GRID = 5.0
#: How long the Apprise sink takes to answer a message (seconds, uniformly between).
SINK_ANSWERS_IN = (0.05, 0.25)
#: Kinds that report once a minute whatever the rate (scale_homes.py): their alerts are watched.
WATCHED = ("battery", "replaced", "offline", "outage", "inactive")


# -- processes -------------------------------------------------------------------------------


async def wait_http(url: str, process: subprocess.Popen[bytes] | None, seconds: float = 60) -> None:
    """Until ``url`` answers 200."""
    deadline = time.monotonic() + seconds
    async with ClientSession() as session:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{url}: the server exited with {process.returncode}")
            with contextlib.suppress(ClientError, OSError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise TimeoutError(url)


def say(what: str) -> None:
    """Progress on stderr (the JSON line is the only thing on stdout)."""
    print(f"[scale {time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a live process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class Replica:
    """One ``hpoll-relay serve`` process on a fixed port (so it can be restarted in place)."""

    def __init__(self, name: str, db_url: str, env: dict[str, str], logs: Path) -> None:
        self.name, self.db_url, self.env, self.logs = name, db_url, env, logs
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.rss: list[float] = []
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        with (self.logs / f"{self.name}-{self.starts}.log").open("wb") as log:
            self.process = subprocess.Popen(
                serve_command(self.db_url, self.port),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        await wait_http(f"http://127.0.0.1:{self.port}/healthz", self.process)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flushing."""
        assert self.process is not None
        self.rss.append(peak_rss_mb(self.process.pid))
        self.process.kill()
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.rss.append(peak_rss_mb(self.process.pid))
            self.process.terminate()
            self.process.wait(30)
            self.process = None


def ensure_haproxy() -> str:
    """Debian's haproxy, installed when missing (as scripts do for chromium and PostgreSQL)."""
    found = shutil.which("haproxy")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("haproxy is required: apt-get install haproxy")
    say("installing Debian's haproxy")
    subprocess.run(["apt-get", "update", "-qq"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "haproxy"],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        stdout=subprocess.DEVNULL,
    )
    return shutil.which("haproxy") or sys.exit("haproxy did not install")


@contextlib.contextmanager
def balancer(haproxy: str, backends: Sequence[int], logs: Path) -> Iterator[tuple[int, int]]:
    """HAProxy with deploy/haproxy.cfg as committed; yields (port, stats port)."""
    port, stats = free_port(), free_port()
    env = {
        **os.environ,
        "HPOLL_LB_BIND": f"127.0.0.1:{port}",
        "HPOLL_LB_STATS": f"127.0.0.1:{stats}",
        "HPOLL_RELAY_1": f"127.0.0.1:{backends[0]}",
        "HPOLL_RELAY_2": f"127.0.0.1:{backends[1]}",
    }
    with (logs / "haproxy.log").open("ab") as log:
        process = subprocess.Popen(
            [haproxy, "-db", "-f", str(HAPROXY_CFG)], env=env, stdout=log, stderr=log
        )
    try:
        yield port, stats
    finally:
        process.terminate()
        process.wait(10)


async def balancer_counters(stats_port: int) -> dict[str, float]:
    """The backend's retries and redispatches from HAProxy's Prometheus endpoint."""
    async with (
        ClientSession() as session,
        session.get(f"http://127.0.0.1:{stats_port}/metrics") as response,
    ):
        body = await response.text()
    wanted = {
        "haproxy_backend_retry_warnings_total": "lb_retries",
        "haproxy_backend_redispatch_warnings_total": "lb_redispatches",
    }
    found: dict[str, float] = {}
    for line in body.splitlines():
        name = line.split("{", 1)[0]
        if name in wanted and 'proxy="relays"' in line:
            found[wanted[name]] = float(line.rsplit(" ", 1)[1])
    return found


def start_postgres() -> tuple[str, str]:
    """A throw-away PostgreSQL with fsync on and the recommended settings."""
    out = subprocess.run(
        ["bash", str(ROOT / "scripts/test-postgres.sh"), "start"],
        env={**os.environ, "HPOLL_PG_FSYNC": "on", "HPOLL_PG_OPTS": PG_SETTINGS},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return out[0], out[1]


class RecordingSink(Sink):
    """The Apprise json:// sink, recording which caregiver's URL got what, and when; it answers
    after ``SINK_ANSWERS_IN`` (a provider's API takes that long: a sink answering at once hid
    that the relay had six sends in flight, not 32)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, str, str, str]] = []
        self._rng = random.Random(5)

    async def _handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        self.arrivals.append(
            (time.time(), request.path, str(payload.get("title")), str(payload.get("message")))
        )
        await asyncio.sleep(self._rng.uniform(*SINK_ANSWERS_IN))
        return web.json_response({})


# -- registration ----------------------------------------------------------------------------


def kinds_for(homes: int, rng: random.Random) -> list[str]:
    """Each home's kind, shuffled (the morning crowd gets its share of every kind)."""
    kinds: list[str] = []
    for kind, share in KINDS.items():
        kinds += [kind] * max(1, round(homes * share))
    kinds += ["active"] * (homes - len(kinds))
    rng.shuffle(kinds)
    return kinds


async def copy_rows(engine: AsyncEngine, table: str, rows: list[dict[str, Any]]) -> None:
    """COPY rows into a relay table (asyncpg's binary COPY: bulk registration)."""
    if not rows:
        return
    columns = list(rows[0])
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.copy_records_to_table(
            table, records=[tuple(row[c] for c in columns) for row in rows], columns=columns
        )


async def register(
    engine: AsyncEngine,
    size: Size,
    box: SecretBox,
    sink_port: int,
    homes_file: Path,
) -> dict[str, int]:
    """Every home, token, caregiver and subscription, and the crowd's day of activity (the
    crowd's minute is set by :func:`set_morning` once the run's timeline is known)."""
    rng = random.Random(16)
    now = datetime.now(UTC)
    kinds = kinds_for(size.homes, rng)
    zones = {name: ZoneInfo(name) for name in ZONES}
    validate_apprise_url(f"json://127.0.0.1:{sink_port}/c0")  # the relay's own check, once
    homes, tokens, caregivers, subscriptions, activity = [], [], [], [], []
    lines = []
    for n, kind in enumerate(kinds):
        home_id = f"h{n:06d}"
        morning = n < size.morning
        zone_name = MORNING_ZONE if morning else ZONES[n % len(ZONES)]
        token = new_token()
        lines.append(f"{home_id} {token} {kind}\n")
        inactive = kind == "inactive"
        homes.append(
            {
                "id": home_id,
                "name": f"Home {n}",
                "timezone": zone_name,
                "created_at": now - timedelta(days=60),
                "settings": json.dumps(SETTINGS[kind]) if kind in SETTINGS else None,
                "last_activity_at": now - timedelta(minutes=10) if inactive else None,
                "last_report_at": now if inactive else None,
                "last_report_sent_at": now if inactive else None,
                "watching_since": now - timedelta(days=60) if inactive else None,
            }
        )
        tokens.append({"home_id": home_id, "token_hash": token_hash(token), "created_at": now})
        path = f"/m{n}" if morning else f"/c{n}"
        caregivers.append(
            {
                "id": n + 1,
                "name": f"Carer {n}",
                "apprise_url_encrypted": box.encrypt(f"json://127.0.0.1:{sink_port}{path}"),
                "created_at": now,
                "consecutive_failures": 0,
                "digest": False,
            }
        )
        if morning:
            at, due = "08:00", now + timedelta(days=1)
        else:
            at = f"{rng.randrange(24):02d}:{rng.randrange(60):02d}"
            due = next_occurrence(parse_hhmm(at), zones[zone_name], now)[1]
        subscriptions.append(
            {
                "home_id": home_id,
                "caregiver_id": n + 1,
                "summary_at": at,
                "alert_kinds": json.dumps(list(ALERT_KINDS)),
                "escalation_order": 0,
                "next_summary_due": due,
            }
        )
        if morning:
            activity += day_of_activity(home_id, now, rng)
    await asyncio.to_thread(homes_file.write_text, "".join(lines))
    await copy_rows(engine, HOMES.name, homes)
    await copy_rows(engine, HOME_TOKENS.name, tokens)
    await copy_rows(engine, CAREGIVERS.name, caregivers)
    await copy_rows(engine, SUBSCRIPTIONS.name, subscriptions)
    await copy_rows(engine, ACTIVITY.name, activity)
    async with engine.connect() as connection:
        await connection.execute(text("SELECT setval('caregivers_id_seq', :n)"), {"n": size.homes})
        await connection.commit()
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("ANALYZE"))
    return dict(Counter(kinds))


async def set_morning(engine: AsyncEngine, morning: int, slot: datetime) -> str:
    """The crowd's summaries all due at ``slot``, its local HH:MM their time of day."""
    at = slot.astimezone(ZoneInfo(MORNING_ZONE)).strftime("%H:%M")
    async with engine.begin() as connection:
        await connection.execute(
            SUBSCRIPTIONS.update()
            .where(SUBSCRIPTIONS.c.caregiver_id <= morning)
            .values(summary_at=at, next_summary_due=slot)
        )
    return at


def day_of_activity(home_id: str, until: datetime, rng: random.Random) -> list[dict[str, Any]]:
    """The 24 hours before ``until``: rooms with activity in ~40 % of the waking quarters
    (what the crowd's summaries describe)."""
    rows = []
    start = bucket_start(until - timedelta(hours=24))
    for quarter in range(96):
        begin = start + timedelta(minutes=15 * quarter)
        if begin.astimezone(ZoneInfo(MORNING_ZONE)).hour < 7 or begin >= until:
            continue
        for room in ROOMS[:3]:
            if rng.random() < 0.4:
                first = begin + timedelta(seconds=rng.uniform(0, 400))
                rows.append(
                    {
                        "home_id": home_id,
                        "room": room,
                        "bucket_start": begin,
                        "count": rng.randint(1, 6),
                        "first_at": first,
                        "last_at": first + timedelta(seconds=rng.uniform(0, 480)),
                    }
                )
    return rows


# -- measuring -------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """The value below which ``share`` of ``values`` lie (nearest rank)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(share * len(ordered)))])


def window(figures: dict[str, Any], lo: float, hi: float) -> list[float]:
    """Latencies (ms) of the sends meant between ``lo`` and ``hi`` seconds."""
    return [
        latency
        for latency, second in zip(figures["latency_ms"], figures["latency_second"], strict=True)
        if lo <= second < hi
    ]


def metric(body: str, name: str) -> float:
    """One unlabelled value of a Prometheus text exposition (0 when absent)."""
    prefix = name + " "
    for line in body.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0


async def plan_observations(
    replicas: Sequence[Replica], seen: dict[tuple[str, int], int], out: list[tuple[float, float]]
) -> None:
    """New planning passes on each replica (each start of it apart) since the last look
    (when seen, its last pass's seconds)."""
    async with ClientSession() as session:
        for replica in replicas:
            if replica.process is None:
                continue
            port, key = replica.port, (replica.name, replica.starts)
            with contextlib.suppress(ClientError, OSError):
                async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                    body = await response.text()
                count = int(metric(body, "hpoll_plan_seconds_count"))
                if count > seen.get(key, 0):
                    seconds = metric(body, "hpoll_plan_last_seconds")
                    out.append((time.time(), seconds))
                    say(f"{replica.name} planned in {seconds:.2f} s")
                seen[key] = count


async def table_sizes(engine: AsyncEngine, since: datetime) -> dict[str, float]:
    """Bytes of the reports and activity tables (with indexes and TOAST), rows, database, and
    the rooms with activity per home and quarter hour since ``since``."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT pg_total_relation_size('reports'), pg_total_relation_size('activity'),"
                    " (SELECT count(*) FROM reports), (SELECT count(*) FROM activity),"
                    " pg_database_size(current_database()),"
                    " (SELECT count(*)::float"
                    "  / greatest(1, count(DISTINCT (home_id, bucket_start)))"
                    "  FROM activity WHERE bucket_start >= :since)"
                ),
                {"since": since},
            )
        ).one()
    names = ("reports_b", "activity_b", "reports", "activity", "db_b", "rooms_per_bucket")
    return dict(zip(names, map(float, row), strict=True))


async def lost_reports(engine: AsyncEngine, acked_file: Path) -> int:
    """Reports answered 2xx that the database does not hold."""
    acked = await asyncio.to_thread(acked_file.read_text)
    pairs = [tuple(line.split("\t")) for line in acked.splitlines()]
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.execute("CREATE TEMP TABLE acked (home_id text, report_id text)")
        await driver.copy_records_to_table("acked", records=pairs)
        missing = await driver.fetchval(
            "SELECT count(*) FROM acked a LEFT JOIN reports r"
            " ON r.report_id = a.report_id AND r.home_id = a.home_id WHERE r.id IS NULL"
        )
        await driver.execute("DROP TABLE acked")
    return int(missing)


async def retention(engine: AsyncEngine) -> dict[str, float]:
    """The relay's prune on a copy of the run's reports dated 31 days back."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO reports (home_id, report_id, sent_at, received_at, payload)"
                " SELECT home_id, gen_random_uuid()::text, sent_at - interval '31 days',"
                " received_at - interval '31 days', payload FROM reports"
            )
        )
    started = time.perf_counter()
    removed = (await prune(engine, 30)).reports
    seconds = time.perf_counter() - started
    rate = removed / seconds if seconds else 0.0
    hourly = 100_000 * REPORTS_PER_DAY / 24
    return {
        "retention_rows": removed,
        "retention_s": round(seconds, 2),
        "retention_rows_per_s": round(rate),
        "retention_hourly_s_at_100k": round(hourly / rate, 1) if rate else 0.0,
    }


def backup(url: str) -> dict[str, float]:
    """A ``pg_dump -Fc`` of the whole database (what README's nightly backup runs)."""
    parsed = make_url(url)
    pg_dump = Path(sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))[-1])
    with tempfile.NamedTemporaryFile(suffix=".dump") as target:
        started = time.perf_counter()
        subprocess.run(
            [
                str(pg_dump),
                "-Fc",
                "-h",
                str(parsed.host),
                "-p",
                str(parsed.port),
                "-U",
                str(parsed.username),
                "-f",
                target.name,
                str(parsed.database),
            ],
            check=True,
        )
        seconds = time.perf_counter() - started
        size = Path(target.name).stat().st_size
    return {"pg_dump_s": round(seconds, 1), "pg_dump_mb": round(size / 1e6, 1)}


def generator(
    config: dict[str, Any], workdir: Path, name: str
) -> tuple[subprocess.Popen[str], float]:
    """Start bench/scale_homes.py; returns it and its start (epoch seconds)."""
    path = workdir / f"{name}.json"
    path.write_text(json.dumps(config))
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench/scale_homes.py"), str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    stdout: IO[str] | None = process.stdout
    assert stdout is not None
    line = stdout.readline()
    if not line.startswith("started "):
        raise RuntimeError("the load generator did not start")
    return process, float(line.split()[1])


async def closed_loop(
    port: int, homes_file: Path, size: Size, workdir: Path, name: str
) -> dict[str, Any]:
    """The rate a server sustains through the balancer (closed loop)."""
    config = {
        "mode": "max",
        "port": port,
        "homes_file": str(homes_file),
        "seconds": size.closed_seconds,
        "connections": size.connections,
        "interval": 60,
        "events": {"replace_at": 0, "resume_at": 0, "flush_at": 0},
        "outage_reports": 0,
        "seed": hash(name) % 1000,
        "acked_file": str(workdir / f"{name}.acked"),
        "out": str(workdir / f"{name}.out"),
    }
    process, started = generator(config, workdir, name)
    await asyncio.to_thread(process.wait)
    figures: dict[str, Any] = json.loads((workdir / f"{name}.out").read_text())
    return {
        "started": started,
        "rps": len(figures["latency_ms"]) / figures["seconds"],
        "p99_ms": percentile(figures["latency_ms"], 0.99),
        "failures": len(figures["failures"]),
    }


# -- the run ---------------------------------------------------------------------------------


class ScaleRun:
    """One run: its processes, its timeline, its figures."""

    def __init__(self, size: Size, workdir: Path) -> None:
        self.size, self.workdir = size, workdir
        self.homes_file = workdir / "homes.txt"
        self.result: dict[str, Any] = {
            "scale": size.name,
            "homes": size.homes,
            "load_avg": [round(load, 2) for load in os.getloadavg()],
            "compressed": COMPRESSED,
        }
        self.haproxy = ensure_haproxy()
        # The sink listens on loopback, which the relay refuses as a caregiver's target unless
        # the operator allows private targets (the bench's registration checks URLs too).
        os.environ[PRIVATE_ENV] = "1"
        self.sink = RecordingSink()
        self.replicas: list[Replica] = []
        #: (when seen, seconds) of every planning pass of both replicas.
        self.plans: list[tuple[float, float]] = []
        self.slot_epoch = self.morning_set = self.crowd_passes_from = 0.0
        #: When the closed loop ran (epoch seconds).
        self.closed_loop_from = self.closed_loop_to = 0.0

    async def run(self) -> dict[str, Any]:
        """Everything, in order."""
        pg_url, pg_dir = start_postgres()
        self.sink.start()
        try:
            engine = create_engine(await create_database(pg_url, "scale"))
            try:
                await self.relays(engine)
                say("retention, backup")
                self.result |= await retention(engine)
                self.result |= await asyncio.to_thread(backup, engine.url.render_as_string(False))
            finally:
                for replica in self.replicas:
                    replica.stop()
                await engine.dispose()
            await self.floors(pg_url)
        finally:
            self.sink.stop()
            subprocess.run(
                ["bash", str(ROOT / "scripts/test-postgres.sh"), "stop", pg_dir], check=False
            )
        return self.result

    async def relays(self, engine: AsyncEngine) -> None:
        """Register, start the replicas and the balancer; the offered load, the timeline at a
        rate the replicas sustain, then the closed loop."""
        await upgrade(engine)
        say(f"registering {self.size.homes} homes")
        key = Fernet.generate_key()
        started = time.perf_counter()
        kinds = await register(engine, self.size, SecretBox(key), self.sink.port, self.homes_file)
        self.result["register_s"] = round(time.perf_counter() - started, 1)
        self.result["home_kinds"] = kinds
        env = {
            **os.environ,
            "HPOLL_RELAY_SECRET_KEY": key.decode(),
            "HPOLL_RELAY_NOTIFY_SECONDS": str(self.size.notify_seconds),
            "HPOLL_RELAY_TRUSTED_PROXIES": "127.0.0.1",
        }
        url = engine.url.render_as_string(hide_password=False)
        self.replicas = [Replica(f"relay{n}", url, env, self.workdir) for n in (1, 2)]
        await asyncio.gather(*(replica.start() for replica in self.replicas))
        say("replicas up")
        await self.set_crowd(engine)
        say(f"the crowd's summaries at {self.result['morning_at_local']}")
        phase_start = datetime.now(UTC)
        before = await table_sizes(engine, phase_start)
        with balancer(self.haproxy, [r.port for r in self.replicas], self.workdir) as ports:
            await wait_http(f"http://127.0.0.1:{ports[0]}/healthz", None)
            watching = asyncio.create_task(self.watch_plans())
            try:
                offered = await self.offered(ports[0], kinds)
                rate = min(self.size.rate, SUSTAINABLE * self.result["steady_rps"])
                timeline = await self.timeline(ports[0], kinds, rate)
                self.result |= await balancer_counters(ports[1])
                say("homes done; waiting for the morning crowd's summaries")
                await self.morning_done(engine)
                await self.saturated(ports[0])
            finally:
                watching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watching
            after = await table_sizes(engine, bucket_start(phase_start))
            self.result |= await messages(engine, self.sink, self.slot_epoch, self.size.morning)
            self.result["lost_reports"] = sum(
                [
                    await lost_reports(engine, self.workdir / f"{name}.acked")
                    for name in ("offered", "timeline", "relay")
                ]
            )
        failures = Counter(what for _, what in offered["failures"] + timeline["failures"])
        self.result |= self.plan_figures() | {
            "non_2xx": sum(n for what, n in failures.items() if what.isdigit()),
            "send_errors": sum(n for what, n in failures.items() if not what.isdigit()),
            "failure_kinds": dict(failures),
            "acked_reports": len(offered["latency_ms"]) + len(timeline["latency_ms"]),
            "unacked_at_end": offered["unacked_at_end"] + timeline["unacked_at_end"],
            "generator_cpu_s": round(offered["cpu_seconds"] + timeline["cpu_seconds"], 1),
        }
        for replica in self.replicas:
            replica.stop()
        self.result["replica_peak_rss_mb"] = [rss for r in self.replicas for rss in r.rss]
        self.result |= db_figures(before, after)

    async def saturated(self, lb_port: int) -> None:
        """The closed loop through the balancer (the highest rate the replicas sustain) across
        a planning pass's start, and until the passes that ran meanwhile are through."""
        await self.drained()
        # Its first third spans a point of the planning grid: the passes there run saturated.
        grid, span = self.size.notify_seconds, self.size.closed_seconds
        if (to_next := grid - time.time() % grid) > span / 3:
            await asyncio.sleep(to_next - span / 3)
        say("closed loop through the balancer to the replicas")
        closed = await closed_loop(lb_port, self.homes_file, self.size, self.workdir, "relay")
        self.closed_loop_from, self.closed_loop_to = closed["started"], time.time()
        self.result["relay_max_rps"] = round(closed["rps"], 1)
        self.result["relay_max_p99_ms"] = round(closed["p99_ms"], 1)
        self.result["relay_max_failures"] = closed["failures"]
        async with ClientSession() as session:
            for _ in range(int(2 * self.size.notify_seconds)):
                running = 0.0
                for replica in self.replicas:
                    with contextlib.suppress(ClientError, OSError):
                        async with session.get(f"http://127.0.0.1:{replica.port}/metrics") as r:
                            running += metric(await r.text(), "hpoll_plan_running_seconds")
                if not running:
                    break
                await asyncio.sleep(1.0)
        await asyncio.sleep(1.5)  # watch_plans looks each second

    def plan_figures(self) -> dict[str, Any]:
        """The planning passes under the homes' load, and those during the closed loop."""
        # A pass is seen up to a second after it ended (watch_plans looks each second): one
        # ran saturated if it began before the loop ended and surely ended after it began.
        saturated = [
            (seen, seconds)
            for seen, seconds in self.plans
            if seen - seconds < self.closed_loop_to and seen - 1 > self.closed_loop_from
        ]
        homes_load = [observed for observed in self.plans if observed not in saturated]
        return {
            "plan_ticks": len(homes_load),
            "plan_max_s": round(max((s for _, s in homes_load), default=0.0), 2),
            "plan_median_s": round(statistics.median([s for _, s in homes_load] or [0.0]), 2),
            "plan_morning_s": round(
                max(
                    (
                        seconds
                        for seen, seconds in homes_load
                        if self.crowd_passes_from
                        < seen
                        <= self.slot_epoch + self.size.notify_seconds
                    ),
                    default=0.0,
                ),
                2,
            ),
            "plan_saturated_s": [round(seconds, 2) for _, seconds in saturated],
        }

    def homes_config(
        self, name: str, lb_port: int, seconds: float, interval: float
    ) -> dict[str, Any]:
        """A homes-mode generator run; its events far away (the timeline sets them)."""
        return {
            "mode": "homes",
            "port": lb_port,
            "homes_file": str(self.homes_file),
            "seconds": seconds,
            "interval": interval,
            "connections": self.size.connections * 2,
            "events": {"replace_at": 1e9, "resume_at": 1e9, "flush_at": 1e9},
            "outage_reports": self.size.outage_reports,
            "seed": len(name),
            "acked_file": str(self.workdir / f"{name}.acked"),
            "out": str(self.workdir / f"{name}.out"),
        }

    async def offered(self, lb_port: int, kinds: dict[str, int]) -> dict[str, Any]:
        """The offered load (1,700 reports/s at full size: 100,000 homes a report a minute)."""
        size = self.size
        interval = active_interval(kinds, size.rate)
        self.result["report_interval_s"] = round(interval, 1)
        seconds = size.warmup + size.offered_seconds
        say(f"offered load: {size.rate:.0f} reports/s for {seconds:.0f} s")
        config = self.homes_config("offered", lb_port, seconds, interval)
        process, _ = generator(config, self.workdir, "offered")
        await asyncio.to_thread(process.wait)
        figures: dict[str, Any] = json.loads((self.workdir / "offered.out").read_text())
        lo, hi = size.warmup, size.warmup + size.offered_seconds
        steady = window(figures, lo, hi)
        offered = sum(1 for second in figures["offered_second"] if lo <= second < hi)
        self.result |= {
            "offered_rps": round(offered / (hi - lo), 1),
            "steady_rps": round(len(steady) / (hi - lo), 1),
            "steady_p50_ms": round(percentile(steady, 0.5), 1),
            "steady_p99_ms": round(percentile(steady, 0.99), 1),
            "non_2xx_steady": sum(
                1 for second, what in figures["failures"] if what.isdigit() and lo <= second < hi
            ),
        }
        return figures

    async def watch_plans(self) -> None:
        """Every planning pass of the replicas, looked for each second (until cancelled)."""
        seen: dict[tuple[str, int], int] = {}
        while True:
            await plan_observations(self.replicas, seen, self.plans)
            await asyncio.sleep(1.0)

    async def set_crowd(self, engine: AsyncEngine) -> None:
        """The crowd's minute: on the planning grid, after the passes that write the crowd
        ahead (the minute is the first grid point after ``lead``: that many passes start
        between), and ``morning_lead`` after the timeline's expected start (the offered load
        takes up to about twice its measuring time, with its warm-up)."""
        size = self.size
        grid = size.notify_seconds
        ahead = math.ceil(max(0, size.morning - PLAN_AT_ITS_TIME) / PLAN_AHEAD_PER_PASS) * grid
        before_timeline = 2 * (size.warmup + size.offered_seconds)
        lead = max(ahead, before_timeline + size.morning_lead)
        if (to_next := grid - time.time() % grid) < min(SET_BEFORE_GRID, grid / 2):
            # A pass starting before the crowd's minute is written would miss the crowd: the
            # minute is set after that pass has started instead (and counted from there).
            await asyncio.sleep(to_next + 0.5)
        self.morning_set = time.time()
        self.slot_epoch = (int((self.morning_set + lead) / grid) + 1) * grid
        self.crowd_passes_from = self.slot_epoch - ahead  # the first that writes it ahead
        at = await set_morning(engine, size.morning, datetime.fromtimestamp(self.slot_epoch, UTC))
        self.result["morning_at_local"] = f"{at} {MORNING_ZONE}"

    async def timeline(self, lb_port: int, kinds: dict[str, int], rate: float) -> dict[str, Any]:
        """The homes at ``rate``: the kill and restart of replica 1, an outage's queues flushed
        after it, then homes until a minute after the crowd's summaries were due."""
        size = self.size
        flush_at = size.kill_at + size.down_for + size.flush_after_kill
        seconds = max(flush_at + size.tail, self.slot_epoch + size.notify_seconds - time.time())
        # Did the kill and the outage's end fall before the crowd's minute, as meant?
        self.result["morning_after_events"] = self.slot_epoch - time.time() >= flush_at + size.tail
        interval = active_interval(kinds, rate)
        config = self.homes_config("timeline", lb_port, seconds, interval)
        config["events"] = {
            "replace_at": size.kill_at / 2,
            "resume_at": size.kill_at,
            "flush_at": flush_at,
        }
        say(
            f"timeline at {rate:.0f} reports/s for {config['seconds']:.0f} s; "
            f"the crowd's summaries at {self.result['morning_at_local']}"
        )
        process, started = generator(config, self.workdir, "timeline")
        killed = False
        while process.poll() is None:
            if not killed and time.time() - started >= size.kill_at:
                self.replicas[0].kill()
                say("replica 1 killed (SIGKILL)")
                killed = True
                await asyncio.sleep(size.down_for)
                await self.replicas[0].start()
            await asyncio.sleep(1.0)
        figures: dict[str, Any] = json.loads((self.workdir / "timeline.out").read_text())
        everything = window(figures, 0, figures["seconds"])
        kill = window(figures, size.kill_at, size.kill_at + size.down_for + 10)
        flush = window(figures, flush_at, flush_at + size.tail)
        self.result |= {
            "timeline_report_interval_s": round(interval, 1),
            "timeline_rps": round(len(everything) / figures["seconds"], 1),
            "timeline_p50_ms": round(percentile(everything, 0.5), 1),
            "timeline_p99_ms": round(percentile(everything, 0.99), 1),
            "kill_p99_ms": round(percentile(kill, 0.99), 1),
            "flush_p99_ms": round(percentile(flush, 0.99), 1),
        }
        return figures

    async def drained(self) -> None:
        """Until the replicas' writers have stored what an overload left queued (a minute at
        most): the next measurement starts from an idle relay."""
        async with ClientSession() as session:
            for _ in range(120):
                pending = 0
                for replica in self.replicas:
                    with contextlib.suppress(ClientError, OSError, ValueError):
                        async with session.get(f"http://127.0.0.1:{replica.port}/healthz") as r:
                            pending += int((await r.json()).get("pending_reports", 0))
                if not pending:
                    return
                await asyncio.sleep(0.5)

    async def morning_done(self, engine: AsyncEngine) -> None:
        """Until the crowd's summaries are sent (at most 3 minutes after their slot), then a
        little longer: a message sent twice would show by then."""
        sent = (
            select(func.count())
            .select_from(NOTIFICATIONS)
            .where(
                NOTIFICATIONS.c.kind == "summary",
                NOTIFICATIONS.c.caregiver_id <= self.size.morning,
                NOTIFICATIONS.c.status == "sent",
            )
        )
        for _ in range(int(max(0.0, self.slot_epoch + 180 - time.time()))):
            async with engine.connect() as connection:
                if (await connection.scalar(sent) or 0) >= self.size.morning:
                    break
            await asyncio.sleep(1)
        await asyncio.sleep(min(10.0, self.size.notify_seconds))

    async def floors(self, pg_url: str) -> None:
        """The HTTP floor behind the same balancer, the storage floor on the same PostgreSQL."""
        say("floors")
        floor_ports = [free_port(), free_port()]
        floors = [
            subprocess.Popen([sys.executable, str(ROOT / "bench/http_floor.py"), str(port)])
            for port in floor_ports
        ]
        try:
            for port in floor_ports:
                await wait_http(f"http://127.0.0.1:{port}/healthz", None)
            with balancer(self.haproxy, floor_ports, self.workdir) as (lb_port, _):
                await wait_http(f"http://127.0.0.1:{lb_port}/healthz", None)
                floor = await closed_loop(
                    lb_port, self.homes_file, self.size, self.workdir, "floor"
                )
        finally:
            for process in floors:
                process.terminate()
                process.wait()
        result = self.result
        result["http_floor_rps"] = round(floor["rps"], 1)
        result["storage_floor_rps"] = round(
            await storage_floor(await create_database(pg_url, "floor"), self.workdir), 1
        )
        result["ratio_to_http_floor"] = round(result["relay_max_rps"] / result["http_floor_rps"], 3)
        result["ratio_to_storage_floor"] = round(
            result["relay_max_rps"] / result["storage_floor_rps"], 3
        )


def active_interval(kinds: dict[str, int], rate: float) -> float:
    """How often the "active" homes report so that all homes offer ``rate`` reports/s (the
    watched kinds as often, at least once a minute; the idle every 10 minutes)."""
    watched = sum(kinds.get(kind, 0) for kind in WATCHED)
    spare = rate - kinds.get("idle", 0) / 600
    together = (kinds["active"] + watched) / spare if spare > 0 else 3600.0
    if together <= 60:
        return together
    spare -= watched / 60
    return kinds["active"] / spare if spare > 0 else 3600.0


async def messages(
    engine: AsyncEngine, sink: RecordingSink, slot_epoch: float, morning: int
) -> dict[str, Any]:
    """What the caregivers got: the crowd's summaries, duplicates, alerts."""
    arrivals = list(sink.arrivals)
    async with engine.connect() as connection:
        crowd_summaries = {
            (f"/m{row.caregiver_id - 1}", row.title)
            for row in await connection.execute(
                select(NOTIFICATIONS.c.caregiver_id, NOTIFICATIONS.c.title).where(
                    NOTIFICATIONS.c.kind == "summary", NOTIFICATIONS.c.caregiver_id <= morning
                )
            )
        }
        sent_db = await connection.scalar(
            select(func.count()).select_from(NOTIFICATIONS).where(NOTIFICATIONS.c.status == "sent")
        )
        alerts = (
            await connection.execute(
                select(ALERTS.c.kind, ALERTS.c.state, func.count()).group_by(
                    ALERTS.c.kind, ALERTS.c.state
                )
            )
        ).all()
        ahead = await connection.scalar(
            select(func.count())
            .select_from(NOTIFICATIONS)
            .where(
                NOTIFICATIONS.c.kind == "summary",
                NOTIFICATIONS.c.caregiver_id <= morning,
                NOTIFICATIONS.c.created_at < datetime.fromtimestamp(slot_epoch, UTC),
            )
        )
    crowd = sorted(
        at - slot_epoch for at, path, title, _ in arrivals if (path, title) in crowd_summaries
    )
    keys = Counter((path, title, body) for _, path, title, body in arrivals)
    return {
        "morning_subscriptions": morning,
        "morning_delivered": len(crowd),
        "morning_within_60s": sum(1 for delay in crowd if delay <= 60),
        "morning_p50_s": round(percentile(crowd, 0.5), 1),
        "morning_last_s": round(crowd[-1], 1) if crowd else None,
        "morning_written_ahead": int(ahead or 0),
        "messages_received": len(arrivals),
        "messages_sent_db": int(sent_db or 0),
        "duplicate_messages": sum(n - 1 for n in keys.values() if n > 1),
        "alerts_opened": _alert_counts(alerts, opened=True),
        "alerts_resolved": _alert_counts(alerts, opened=False),
    }


def _alert_counts(rows: Sequence[Any], *, opened: bool) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for kind, state, n in rows:
        if opened or state == "resolved":
            counts[kind] += int(n)
    return dict(counts)


def db_figures(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """Bytes per report and per activity row, scaled to a home's day."""
    reports = after["reports"] - before["reports"]
    rows = after["activity"] - before["activity"]
    per_report = (after["reports_b"] - before["reports_b"]) / reports if reports else 0.0
    per_row = (after["activity_b"] - before["activity_b"]) / rows if rows else 0.0
    per_day = (
        per_report * REPORTS_PER_DAY + per_row * after["rooms_per_bucket"] * ACTIVE_BUCKETS_PER_DAY
    )
    return {
        "db_bytes_per_report": round(per_report),
        "db_bytes_per_activity_row": round(per_row),
        "db_rooms_per_quarter_hour": round(after["rooms_per_bucket"], 2),
        "db_mb_per_home_day": round(per_day / 1e6, 3),
        "db_mb_total": round(after["db_b"] / 1e6, 1),
    }


def main() -> None:
    """Run at the size BENCH_SCALE says (small by default; BENCH_HOMES scales the full run's
    homes, crowd and rate to another number of homes); one JSON line at the end."""
    size = FULL if os.environ.get("BENCH_SCALE") == "full" else SMALL
    if homes := int(os.environ.get("BENCH_HOMES", "0")):
        share = homes / size.homes
        size = dataclasses.replace(
            size, homes=homes, morning=round(size.morning * share), rate=size.rate * share
        )
    keep = os.environ.get("BENCH_WORKDIR")  # logs and figures stay there (for a look after)
    with tempfile.TemporaryDirectory(prefix="hpoll-scale-") as tmp:
        workdir = Path(keep or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(ScaleRun(size, workdir).run())
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
