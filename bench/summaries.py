"""Composing the morning summaries of 10,000 homes with a week of data each.

Data: 10,000 homes (timezones from Europe/Berlin to Australia/Lord_Howe), 3 rooms each with
activity in ~40 % of the waking quarter-hours of the past 7 days (~5 M activity rows), 8 devices
each (some low, some offline), one caregiver and one 08:00 subscription each, all due at once.

Measured in a fresh child process (so its peak RSS is the composing alone, plus the
interpreter): ``plan_summaries`` (find what is due, claim each slot, read the facts of every
home, write every message to the outbox), dispatch excluded. The baseline, in the same run:
the same summaries composed one home at a time (a query set per home), on a sample of homes.

Printed JSON keys:
  homes, activity_rows, devices            data size
  <db>_seconds                             plan_summaries for all homes, wall clock
  <db>_peak_rss_mb                         peak RSS of the composing process
  <db>_summaries                           messages written (must equal homes)
  <db>_per_home_ms, <db>_baseline_per_home_ms   bulk vs one-home-at-a-time (sample)
  <db>_ratio_to_baseline                   per_home_ms / baseline_per_home_ms (lower is better)
Target: <db>_seconds <= 10 and <db>_peak_rss_mb <= 300 (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
import json
import os
from pathlib import Path
import random
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Connection, insert  # noqa: E402

from bench.relay_ingest import create_database, postgres  # noqa: E402
from relay.messages.compose import summary as compose_summary  # noqa: E402
from relay.notifications.plan import plan_summaries  # noqa: E402
from relay.notifications.schedule import next_occurrence, parse_hhmm  # noqa: E402
from relay.notifications.summary import Period, gather  # noqa: E402
from relay.storage.batch import bucket_start  # noqa: E402
from relay.storage.db import create_engine, upgrade  # noqa: E402
from relay.storage.models import (  # noqa: E402
    ActivityBucket,
    Caregiver,
    DeviceState,
    Home,
    Subscription,
    table,
)

HOMES = int(os.environ.get("BENCH_HOMES", "10000"))
SAMPLE = 300
ROOMS = ("Kitchen", "Living room", "Bedroom")
ZONES = ("Europe/Berlin", "Europe/London", "America/New_York", "Australia/Lord_Howe")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CHUNK = 250


def _home_rows(start: int, stop: int, rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {
        "homes": [],
        "caregivers": [],
        "subscriptions": [],
        "activity": [],
        "devices": [],
    }
    for n in range(start, stop):
        home_id, zone_name = f"h{n:05d}", ZONES[n % len(ZONES)]
        zone = ZoneInfo(zone_name)
        rows["homes"].append(
            {
                "id": home_id,
                "name": f"Home {n}",
                "timezone": zone_name,
                "created_at": NOW - timedelta(days=60),
                "last_report_at": NOW - timedelta(minutes=rng.choice((1, 1, 1, 300))),
                "bridge_reachable": rng.random() > 0.02,
                "bridge_offline_since": NOW - timedelta(hours=3),
            }
        )
        rows["caregivers"].append(
            {
                "id": n + 1,
                "name": f"Carer {n}",
                "apprise_url_encrypted": b"x",
                "created_at": NOW,
                "consecutive_failures": 0,
            }
        )
        # Due now: the slot was the last 08:00 before NOW in the home's time.
        slot = next_occurrence(parse_hhmm("08:00"), zone, NOW - timedelta(days=1))[1]
        rows["subscriptions"].append(
            {
                "home_id": home_id,
                "caregiver_id": n + 1,
                "summary_at": "08:00",
                "alert_kinds": [],
                "escalation_order": 0,
                "next_summary_due": slot if slot <= NOW else slot - timedelta(days=1),
            }
        )
        for device in range(8):
            rows["devices"].append(
                {
                    "home_id": home_id,
                    "device_id": f"d{device}",
                    "name": f"Sensor {device}",
                    "room": ROOMS[device % 3],
                    "kind": "motion_sensor",
                    "battery": rng.randint(1, 100),
                    "battery_state": rng.choice(("normal",) * 12 + ("low", "critical")),
                    "connectivity": "connected",
                    "offline_since": NOW - timedelta(hours=5) if rng.random() < 0.03 else None,
                    "updated_at": NOW,
                }
            )
        day = NOW - timedelta(days=7)
        quarter = bucket_start(day)
        while quarter < NOW:
            local_hour = quarter.astimezone(zone).hour
            if 7 <= local_hour < 22:
                for room in ROOMS:
                    if rng.random() < 0.4:
                        first = quarter + timedelta(seconds=rng.randint(0, 400))
                        rows["activity"].append(
                            {
                                "home_id": home_id,
                                "room": room,
                                "bucket_start": quarter,
                                "count": rng.randint(1, 6),
                                "first_at": first,
                                "last_at": first + timedelta(seconds=rng.randint(0, 480)),
                            }
                        )
            quarter += timedelta(minutes=15)
    return rows


def _fill(connection: Connection) -> dict[str, int]:
    rng = random.Random(7)
    counts = {"activity_rows": 0, "devices": 0}
    models = {
        "homes": Home,
        "caregivers": Caregiver,
        "subscriptions": Subscription,
        "devices": DeviceState,
        "activity": ActivityBucket,
    }
    for start in range(0, HOMES, CHUNK):
        rows = _home_rows(start, min(HOMES, start + CHUNK), rng)
        for name, model in models.items():
            connection.execute(insert(table(model)), rows[name])
        counts["activity_rows"] += len(rows["activity"])
        counts["devices"] += len(rows["devices"])
    return counts


async def prepare(db_url: str) -> dict[str, int]:
    """Migrate and fill one database."""
    engine = create_engine(db_url)
    await upgrade(engine)
    async with engine.begin() as connection:
        counts = await connection.run_sync(_fill)
    await engine.dispose()
    return counts


def _one_at_a_time(connection: Connection) -> float:
    """The baseline: a query set and a render per home."""
    started = time.perf_counter()
    for n in range(SAMPLE):
        zone = ZoneInfo(ZONES[n % len(ZONES)])
        end = next_occurrence(parse_hhmm("08:00"), zone, NOW - timedelta(days=1))[1]
        end = end if end <= NOW else end - timedelta(days=1)
        for fact in gather(connection, [Period(f"h{n:05d}", end - timedelta(days=1), end)]):
            compose_summary(fact, NOW)
    return (time.perf_counter() - started) / SAMPLE


def _peak_rss_mb() -> float:
    """This process's peak RSS. Not getrusage: Linux carries ru_maxrss over fork and exec, so a
    child would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def compose(db_url: str) -> dict[str, float]:
    """In the child process: the measured run, then the baseline (rolled back)."""
    engine = create_engine(db_url)
    async with engine.connect() as connection:
        transaction = await connection.begin()
        started = time.perf_counter()
        written = await connection.run_sync(plan_summaries, NOW)
        seconds = time.perf_counter() - started
        await transaction.rollback()
        peak = _peak_rss_mb()
        baseline = await connection.run_sync(_one_at_a_time)
    await engine.dispose()
    return {"seconds": seconds, "peak_rss_mb": peak, "summaries": written, "baseline": baseline}


def measure(name: str, db_url: str) -> dict[str, Any]:
    """Run ``compose`` in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, __file__, "--compose", db_url],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"composing on {name} failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    per_home = result["seconds"] / HOMES * 1000
    return {
        f"{name}_seconds": round(result["seconds"], 2),
        f"{name}_peak_rss_mb": round(result["peak_rss_mb"], 1),
        f"{name}_summaries": result["summaries"],
        f"{name}_per_home_ms": round(per_home, 3),
        f"{name}_baseline_per_home_ms": round(result["baseline"] * 1000, 3),
        f"{name}_ratio_to_baseline": round(per_home / (result["baseline"] * 1000), 3),
    }


async def main() -> None:
    """Both databases; one JSON line at the end."""
    figures: dict[str, Any] = {"homes": HOMES}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'summaries.db'}"
        started = time.perf_counter()
        figures |= await prepare(url)
        print(
            f"sqlite: {HOMES} homes generated in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        figures |= measure("sqlite", url)
    pg = postgres()
    if pg is not None:
        try:
            url = await create_database(pg[0], "summaries")
            await prepare(url)
            figures |= measure("postgres", url)
        finally:
            subprocess.run(
                ["bash", str(ROOT / "scripts/test-postgres.sh"), "stop", pg[1]], check=False
            )
    print(json.dumps(figures))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--compose"]:
        print(json.dumps(asyncio.run(compose(sys.argv[2]))))
    else:
        asyncio.run(main())
