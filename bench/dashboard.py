"""The caregivers' dashboard at care-organisation scale: the Homes page of 2,000 homes and one
Home page with 28 days of activity, against a same-run floor.

Data (generated here, seeded): 2,000 homes in eight timezones, each with 6 devices (about one
home in ten with a low battery, one in fifteen with a device off the mesh, one in forty with its
bridge unreachable, one in twenty silent for hours), open alerts on one home in twelve (a third
of them acknowledged), and 28 days of activity in 3-4 rooms (a waking day of about 30
quarter-hours with movement) — about 2.5 M activity rows. An operator signs in and sees them all.

Measured in-process through the relay's real aiohttp application on a loopback socket, with
the usual-range cache warm (the relay fills it in the background): each page requested ROUNDS
times. ``server`` times are the relay's own per-request timing (its request log); ``client``
times are the full round trip. The floor, in the same run: the same HTML bytes served as a
static file by the same application (client round trip), so the ratio shows what the queries
and templates cost over sending the page at all.

Printed JSON keys:
  homes, activity_rows, homes_page_bytes, home_page_bytes
  homes_page_server_p95_ms, homes_page_client_p95_ms, homes_floor_client_p95_ms, homes_ratio
  home_page_server_p95_ms,  home_page_client_p95_ms,  home_floor_client_p95_ms,  home_ratio
  homes_page_cpu_p95_ms, home_page_cpu_p95_ms   CPU time of the process per request (server,
                             its database thread, the client): what the page costs whatever
                             else the machine is doing (wall times grow with the load)
  usual_refresh_seconds      filling the usual-range cache for every home (background work)
  load_1min                  the machine's load average at the end (2 cores here)
  ok                         homes_page_server_p95_ms <= 150 and home_page_server_p95_ms <= 100
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time as day_time, timedelta
import json
import logging
import os
from pathlib import Path
import random
import statistics
import sys
import tempfile
import time
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402
from sqlalchemy import Connection, insert  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from relay.app import create_app  # noqa: E402
from relay.config import Settings  # noqa: E402
from relay.http.dashboard.accounts import Accounts  # noqa: E402
from relay.http.dashboard.views import DASHBOARD  # noqa: E402
from relay.storage.db import create_engine, upgrade  # noqa: E402
from relay.storage.models import (  # noqa: E402
    ACTIVITY,
    ALERTS,
    CAREGIVERS,
    DEVICES,
    HOMES as HOMES_TABLE,
)
from relay.storage.sqlite_file import create_sync_sqlite_engine  # noqa: E402

HOMES = int(os.environ.get("BENCH_HOMES", "2000"))
DAYS = 28
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "40"))
LIMITS = {"homes": 150.0, "home": 100.0}
ZONES = (
    "Europe/Berlin",
    "Europe/London",
    "Europe/Amsterdam",
    "Europe/Madrid",
    "America/New_York",
    "America/Chicago",
    "Australia/Sydney",
    "Asia/Tokyo",
)
ROOMS = ("Kitchen", "Living room", "Bedroom", "Bathroom")
KINDS = ("motion", "motion", "motion", "contact", "button", "motion")


def _home(index: int, now: datetime, rng: random.Random) -> dict[str, Any]:
    silent = index % 20 == 7
    last_report = now - (timedelta(hours=rng.randint(2, 9)) if silent else timedelta(0))
    bridge_ok = index % 40 != 3
    return {
        "id": f"h_{index:06d}",
        "name": f"Home {index:04d} {rng.choice(['flat', 'house', 'cottage'])}",
        "timezone": ZONES[index % len(ZONES)],
        "created_at": now - timedelta(days=60),
        "last_report_at": last_report,
        "last_report_sent_at": last_report,
        "watching_since": now - timedelta(days=60),
        "bridge_reachable": bridge_ok,
        "bridge_offline_since": None if bridge_ok else now - timedelta(hours=1),
        "last_activity_at": None,
    }


def _devices(home_id: str, index: int, now: datetime, rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for number, kind in enumerate(KINDS):
        low = number == 0 and index % 10 == 4
        off = number == 1 and index % 15 == 2
        rows.append(
            {
                "home_id": home_id,
                "device_id": f"{home_id}-d{number}",
                "name": f"{ROOMS[number % len(ROOMS)]} {kind} {number}",
                "room": ROOMS[number % len(ROOMS)],
                "kind": kind,
                "battery": 6 if low else rng.randint(40, 100),
                "battery_state": "low" if low else "normal",
                "connectivity": "disconnected" if off else "connected",
                "last_seen": now - timedelta(minutes=rng.randint(1, 300)),
                "offline_since": now - timedelta(hours=2) if off else None,
                "updated_at": now,
            }
        )
    return rows


def _alert(home_id: str, index: int, now: datetime) -> dict[str, Any]:
    acked = index % 36 == 5
    return {
        "home_id": home_id,
        "kind": "inactivity",
        "subject": "",
        "state": "acked" if acked else "open",
        "opened_at": now - timedelta(minutes=40),
        "acked_at": now - timedelta(minutes=20) if acked else None,
        "acked_by": "Operator" if acked else None,
        "details": {"text": "no activity for 3 hours"},
        "urgent": True,
        "escalation_level": 0,
        "next_escalation_at": None if acked else now + timedelta(minutes=10),
    }


def _activity(
    home: dict[str, Any], index: int, now: datetime, rng: random.Random
) -> list[dict[str, Any]]:
    """A waking day of about 30 active quarter-hours, every day of the 28 and today so far."""
    zone = ZoneInfo(home["timezone"])
    today = now.astimezone(zone).date()
    rows = []
    for back in range(DAYS, -1, -1):
        start = datetime.combine(today - timedelta(days=back), day_time(7), zone).astimezone(UTC)
        for quarter in sorted(rng.sample(range(64), 30)):  # 07:00-23:00
            at = start + timedelta(minutes=15 * quarter)
            if at > home["last_report_at"]:
                continue
            rows.append(
                {
                    "home_id": home["id"],
                    "room": ROOMS[quarter % (3 + index % 2)],
                    "bucket_start": at,
                    "count": rng.randint(1, 6),
                    "first_at": at,
                    "last_at": at + timedelta(minutes=5),
                }
            )
    return rows


def generate(connection: Connection, now: datetime, rng: random.Random) -> int:
    """Fill a migrated database; returns the number of activity rows."""
    homes, devices, alerts, activity, rows = [], [], [], [], 0
    for index in range(HOMES):
        home = _home(index, now, rng)
        homes.append(home)
        devices += _devices(home["id"], index, now, rng)
        if index % 12 == 5:
            alerts.append(_alert(home["id"], index, now))
        days = _activity(home, index, now, rng)
        home["last_activity_at"] = max((row["last_at"] for row in days), default=None)
        activity += days
        if len(activity) > 100_000 or index == HOMES - 1:
            connection.execute(insert(HOMES_TABLE), homes)
            connection.execute(insert(ACTIVITY), activity)
            rows += len(activity)
            homes, activity = [], []
    connection.execute(insert(DEVICES), devices)
    connection.execute(insert(ALERTS), alerts)
    return rows


def p95(values: list[float]) -> float:
    """95th percentile (inclusive method), in milliseconds as given."""
    return round(statistics.quantiles(values, n=20, method="inclusive")[-1], 2)


class ServerTimes(logging.Handler):
    """The relay's own timing of each request (its JSON request log's ``ms``)."""

    def __init__(self) -> None:
        super().__init__()
        self.ms: dict[str, list[float]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "fields", None)
        if fields:
            self.ms.setdefault(fields["path"], []).append(float(fields["ms"]))


async def _timed(
    client: TestClient[Any, Any], path: str, cookie: str
) -> tuple[float, float, bytes]:
    """Round trip and this process's CPU time (server, its database thread and the client) in
    milliseconds, and the body."""
    started, cpu = time.perf_counter(), time.process_time()
    async with client.get(path, headers={"Cookie": cookie}) as response:
        body = await response.read()
        assert response.status == 200, (path, response.status)
    return (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000, body


async def measure(db_url: str, floor_dir: Path) -> dict[str, Any]:
    """Warm the cache, then time both pages and their static floors."""
    engine = create_engine(db_url)
    app = create_app(Settings(db_url=db_url, notify_seconds=0, log_every_request=True), engine)
    app.router.add_static("/floor/", floor_dir)
    times = ServerTimes()
    logging.getLogger("relay.http").addHandler(times)
    logging.getLogger("relay.http").setLevel(logging.INFO)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        accounts = Accounts(engine)
        operator = await accounts.caregiver_id("Operator")
        await accounts.set_role(operator, "operator")
        cookie = "hpoll_session=" + (await accounts.start_session(operator)).token
        started = time.perf_counter()
        await app[DASHBOARD].bands.refresh()
        refresh = time.perf_counter() - started
        result: dict[str, Any] = {"usual_refresh_seconds": round(refresh, 2)}
        for name, path in (("homes", "/"), ("home", "/homes/h_000001")):
            *_, page = await _timed(client, path, cookie)  # warm-up, and the floor's bytes
            (floor_dir / f"{name}.html").write_bytes(page)
            client_ms, cpu_ms, floor_ms = [], [], []
            for _ in range(ROUNDS):
                wall, cpu, _ = await _timed(client, path, cookie)
                client_ms.append(wall)
                cpu_ms.append(cpu)
                floor_ms.append((await _timed(client, f"/floor/{name}.html", cookie))[0])
            server = times.ms[path][1:]
            result |= {
                f"{name}_page_bytes": len(page),
                f"{name}_page_server_p95_ms": p95(server),
                f"{name}_page_cpu_p95_ms": p95(cpu_ms),
                f"{name}_page_client_p95_ms": p95(client_ms),
                f"{name}_floor_client_p95_ms": p95(floor_ms),
                f"{name}_ratio": round(p95(client_ms) / p95(floor_ms), 1),
            }
        return result
    finally:
        await client.close()
        await engine.dispose()


def main() -> None:
    """Generate, measure, print one JSON line."""
    rng = random.Random(14)
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        db_url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        engine = create_engine(db_url)
        asyncio.run(upgrade(engine))
        asyncio.run(engine.dispose())
        sync = create_sync_sqlite_engine(make_url(db_url))
        with sync.begin() as connection:
            rows = generate(connection, now, rng)
            connection.execute(
                insert(CAREGIVERS).values(
                    name="Operator", apprise_url_encrypted=b"-", consecutive_failures=0
                )
            )
        sync.dispose()
        floor = Path(folder) / "floor"
        floor.mkdir()
        result = asyncio.run(measure(db_url, floor))
    ok = (
        result["homes_page_server_p95_ms"] <= LIMITS["homes"]
        and result["home_page_server_p95_ms"] <= LIMITS["home"]
    )
    load = round(os.getloadavg()[0], 1)
    print(
        json.dumps({"homes": HOMES, "activity_rows": rows, **result, "load_1min": load, "ok": ok})
    )


if __name__ == "__main__":
    main()
