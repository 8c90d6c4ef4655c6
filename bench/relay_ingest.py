"""Report ingest throughput of a real relay process, against two floors measured in the same run.

wrk (Debian's package, one thread: plenty for these rates, and it leaves the second core to the
relay) drives 50 connections, each request a realistic report (the shared
example: 2 devices, 1 activity event, counters) from one of 50 homes, with a fresh report_id.
Measured:
  * the relay on SQLite (default settings: WAL, synchronous=FULL) and on PostgreSQL 15 (fsync on);
  * the HTTP floor: a bare aiohttp endpoint that only parses the same JSON (bench/http_floor.py);
  * the storage floor: the same rows written by the relay's batched executemany (store_batch,
    256 reports of one home a transaction), no HTTP, no validation; and store_batch at the
    shape the relay's writer meets in the run: 25 reports a transaction (50 connections come
    as two alternating halves: one half waits for its answers while the other's batch is
    written) from the 50 homes, whose devices, activity and home rows do not collapse into
    one row each as one home's do.

Printed JSON keys:
  connections, seconds_per_run         load shape (each run follows a 2 s unmeasured warm-up)
  http_floor_rps                       requests/s of the bare endpoint
  <db>_rps, <db>_p50_ms, <db>_p99_ms   relay throughput and latency (db: sqlite, postgres)
  <db>_non_2xx                         answers that were not 2xx (must be 0)
  <db>_stored                          reports in the database afterwards (the warm-up's and the
                                       measured run's requests, plus those in flight at the end)
  <db>_storage_floor_rps               reports/s through store_batch alone (256 reports of one
                                       home a transaction)
  <db>_storage_floor_relay_shape_rps   the same, 25 reports a transaction from the 50 homes
  <db>_ratio_to_http_floor             <db>_rps / http_floor_rps (ambition >= 0.3)
  sqlite_rps_runs, sqlite_p99_ms_runs  every SQLite run (the figures above are the median run's)
  sqlite_wal_peak_mb                   the largest the WAL file got during the median run
                                       (sampled every 50 ms, warm-up included)
  abuse_victim_p50_idle_ms             one home's sequential reports, p50, relay otherwise idle
  abuse_victim_p50_ms                  the same while ABUSERS clients (another process, at nice
                                       19: an attacker's CPU is not the relay's) send
                                       1.5 MB bodies with made-up tokens, floods of unknown
                                       tokens, and a valid home's malformed reports
  abuse_ratio                          abuse_victim_p50_ms / abuse_victim_p50_idle_ms (<= 3)
  abuse_victim_p90_idle_ms, abuse_victim_p90_ms   the same at p90
  abuse_requests_per_s                 abusers' requests answered per second meanwhile
Targets: sqlite_rps >= 2000 at 50 connections with sqlite_p99_ms <= 100, sqlite_wal_peak_mb
<= 64, abuse_ratio <= 3.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any
import uuid

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import ClientError, ClientSession  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from relay.admin import Admin  # noqa: E402
from relay.clock import utcnow  # noqa: E402
from relay.ingest import incoming  # noqa: E402
from relay.schema import decode_report  # noqa: E402
from relay.secretbox import SecretBox  # noqa: E402
from relay.storage.batch import store_batch  # noqa: E402
from relay.storage.db import create_engine, upgrade  # noqa: E402
from relay.storage.models import Report  # noqa: E402
from tests.relay.relay_process import free_port  # noqa: E402

CONNECTIONS = 50
HOMES = 50
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
#: This machine is shared and noisy: the SQLite relay run and the HTTP floor are repeated,
#: alternating, and the medians reported.
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
#: Every server gets this many seconds of the same load first, not measured.
WARMUP = 2
STORAGE_REPORTS = 20_000
#: The batches the relay's writer meets in the run: the connections come as two alternating
#: halves (one waits for its answers while the other's batch is written).
RELAY_SHAPE_BATCH = CONNECTIONS // 2


def template() -> str:
    """The shared example with placeholders wrk fills in."""
    report = json.loads((ROOT / "tests/fixtures/report_v1.json").read_text())
    report.update(home_id="__HOME__", report_id="__RID__", sent_at="__NOW__")
    report["bridge"]["id"] = "__HOME__"
    report["activity"][0]["at"] = "__NOW__"
    for device in report["devices"]:
        device["last_seen"] = "__NOW__" if device["last_seen"] else None
    return json.dumps(report)


async def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    """Until the server answers."""
    async with ClientSession() as session:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}")
            try:
                async with session.get(url):
                    return
            except ClientError:
                await asyncio.sleep(0.05)
    raise TimeoutError(url)


def wrk(port: int, env: dict[str, str], seconds: int = SECONDS) -> dict[str, Any]:
    """One wrk run against 127.0.0.1:port."""
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(ROOT / "bench/wrk_reports.lua"),
            f"http://127.0.0.1:{port}",
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(row for row in output.splitlines() if row.startswith("WRK_JSON "))
    figures: dict[str, Any] = json.loads(line.removeprefix("WRK_JSON "))
    figures["rps"] = figures["requests"] / figures["seconds"]
    return figures


async def prepare(db_url: str, workdir: Path) -> dict[str, str]:
    """Migrate, add the homes, write the files wrk reads."""
    engine = create_engine(db_url)
    await upgrade(engine)
    admin = Admin(engine, SecretBox.from_environment(workdir / "key", create=True))
    homes = [await admin.add_home(f"Home {n}", "Europe/Berlin") for n in range(HOMES)]
    await engine.dispose()
    tokens = workdir / "tokens.txt"
    tokens.write_text("".join(f"{h.id} {h.token}\n" for h in homes))
    body = workdir / "template.json"
    body.write_text(template())
    return {"BENCH_TOKENS": str(tokens), "BENCH_TEMPLATE": str(body)}


async def stored(db_url: str) -> int:
    """Reports in the database."""
    engine = create_engine(db_url)
    async with engine.connect() as connection:
        count = int(await connection.scalar(select(func.count()).select_from(Report)) or 0)
    await engine.dispose()
    return count


async def wal_peak(db_url: str, stop: asyncio.Event) -> float:
    """The largest size (MB) of a SQLite database's WAL file until ``stop``."""
    wal = db_url.split("///", 1)[1] + "-wal"
    peak = 0
    while not stop.is_set():
        with contextlib.suppress(OSError):
            peak = max(peak, os.stat(wal).st_size)  # a stat every 50 ms: never blocks long
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)
    return peak / 1024 / 1024


def start_relay(db_url: str, port: int, **env: str) -> subprocess.Popen[bytes]:
    """``hpoll-relay serve`` in its own process, rate limits out of the way."""
    return subprocess.Popen(
        [sys.executable, "-m", "relay", "--db", db_url, "serve", "--port", str(port)],
        env={
            **os.environ,
            "HPOLL_RELAY_RATE": "1000000",
            "HPOLL_RELAY_BURST": "1000000",
            "HPOLL_RELAY_NOTIFY_SECONDS": "0",  # ingest is measured here
            **env,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def relay_run(name: str, db_url: str, workdir: Path) -> dict[str, Any]:
    """Serve the relay in its own process and load it."""
    env = await prepare(db_url, workdir)
    port = free_port()
    server = start_relay(db_url, port)
    stop = asyncio.Event()
    sampler = asyncio.create_task(wal_peak(db_url, stop)) if name == "sqlite" else None
    try:
        await wait_healthy(f"http://127.0.0.1:{port}/healthz", server)
        # wrk blocks: in a thread, so that the WAL keeps being sampled meanwhile.
        await asyncio.to_thread(wrk, port, env, WARMUP)  # caches and the WAL settle; unmeasured
        figures = await asyncio.to_thread(wrk, port, env)
    finally:
        stop.set()
        server.terminate()
        server.wait()
    extra = {f"{name}_wal_peak_mb": round(await sampler, 1)} if sampler is not None else {}
    return extra | {
        f"{name}_rps": round(figures["rps"], 1),
        f"{name}_p50_ms": round(figures["p50_ms"], 2),
        f"{name}_p99_ms": round(figures["p99_ms"], 2),
        f"{name}_non_2xx": figures["non_2xx"] + figures["socket_errors"],
        f"{name}_stored": await stored(db_url),
        f"{name}_requests": figures["requests"],
    }


async def http_floor(workdir: Path) -> float:
    """Requests/s of the bare parsing endpoint."""
    env = {
        "BENCH_TOKENS": str(workdir / "tokens.txt"),
        "BENCH_TEMPLATE": str(workdir / "template.json"),
    }
    port = free_port()
    server = subprocess.Popen([sys.executable, str(ROOT / "bench/http_floor.py"), str(port)])
    try:
        await wait_healthy(f"http://127.0.0.1:{port}/", server)
        wrk(port, env, WARMUP)
        return float(wrk(port, env)["rps"])
    finally:
        server.terminate()
        server.wait()


async def storage_floor(db_url: str, workdir: Path, batch_size: int = 256, homes: int = 1) -> float:
    """Reports/s through store_batch, ``batch_size`` a transaction from ``homes`` homes (each
    report from the next home in turn), no HTTP."""
    engine = create_engine(db_url)
    await upgrade(engine)
    admin = Admin(engine, SecretBox.from_environment(workdir / "key2", create=True))
    home_ids = [(await admin.add_home(f"Floor {n}", "Europe/Berlin")).id for n in range(homes)]
    batches = []
    for start in range(0, STORAGE_REPORTS, batch_size):
        batch = []
        for number in range(start, min(start + batch_size, STORAGE_REPORTS)):
            home_id = home_ids[number % homes]
            text = (
                template()
                .replace("__HOME__", home_id)
                .replace("__RID__", str(uuid.uuid4()))
                .replace("__NOW__", utcnow().isoformat())
            )
            report = decode_report(text)
            batch.append(incoming(home_id, text, report))
        batches.append(batch)
    started = time.perf_counter()
    for batch in batches:
        async with engine.begin() as connection:
            await connection.run_sync(store_batch, batch, utcnow())
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return STORAGE_REPORTS / elapsed


# -- abuse: another home's latency while strangers and a broken home hammer the relay -------------

ABUSERS = int(os.environ.get("BENCH_ABUSERS", "100"))
#: 0: big bodies with made-up tokens, 1: made-up tokens, 2: a valid home's malformed reports.
KINDS = [int(kind) for kind in os.environ.get("BENCH_ABUSE_KINDS", "012")]
#: Each phase's victim is a fresh home sending this many reports, one after another: within
#: the default burst (120), so the relay's own per-home limit stays the production one.
VICTIM_REPORTS = 100
BIG_BODY = 1_500_000


async def victim_latency(url: str, home_id: str, token: str) -> list[float]:
    """Latencies (ms, sorted) of one home's reports, sent one after another."""
    body = template().replace("__HOME__", home_id)
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "X-Forwarded-For": "198.51.100.7",
    }
    times = []
    async with ClientSession() as session:
        for _ in range(VICTIM_REPORTS):
            data = body.replace("__RID__", str(uuid.uuid4())).replace(
                "__NOW__", utcnow().isoformat()
            )
            started = time.perf_counter()
            async with session.post(f"{url}/api/v1/reports", data=data, headers=headers) as answer:
                await answer.read()
                if answer.status != 202:
                    raise RuntimeError(f"victim got {answer.status}")
            times.append((time.perf_counter() - started) * 1000)
    return sorted(times)


async def abuse(url: str, seconds: float, home_id: str, token: str) -> None:
    """The abusers (run in their own process): big bodies with made-up tokens, floods of unknown
    tokens, a valid home's malformed reports; each client from its own address."""
    big = b"[" + b"1," * (BIG_BODY // 2 - 1) + b"1]"
    deadline = time.monotonic() + seconds
    answered = 0
    stop = asyncio.Event()  # SIGINT: finish the requests in flight, then say how many
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)

    async def client(number: int) -> None:
        nonlocal answered
        address = f"203.0.113.{number % 250 + 1}"
        async with ClientSession() as session:
            while time.monotonic() < deadline and not stop.is_set():
                kind = KINDS[number % len(KINDS)]
                headers = {"Content-Type": "application/json", "X-Forwarded-For": address}
                if kind == 2:
                    headers["Authorization"] = f"Bearer {token}"
                    data = b'{"schema": 1, "home_id": "' + home_id.encode() + b'", "x": ' + big
                else:
                    headers["Authorization"] = f"Bearer hpr_{uuid.uuid4().hex}"
                    data = big if kind == 0 else b"{}"
                with contextlib.suppress(ClientError, OSError):
                    async with session.post(
                        f"{url}/api/v1/reports", data=data, headers=headers
                    ) as answer:
                        await answer.read()
                        answered += 1

    await asyncio.gather(*(client(n) for n in range(ABUSERS)))
    print(answered, flush=True)


async def abuse_run(workdir: Path) -> dict[str, Any]:
    """Victim p50 idle, then under abuse, on one SQLite relay behind a (pretend) proxy."""
    db_url = f"sqlite+aiosqlite:///{workdir / 'abuse.db'}"
    await prepare(db_url, workdir)
    homes = [line.split() for line in (workdir / "tokens.txt").read_text().splitlines()]
    broken = homes[0]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_relay(
        db_url,
        port,
        HPOLL_RELAY_TRUSTED_PROXIES="127.0.0.1",
        HPOLL_RELAY_RATE="2",  # the production per-home limits
        HPOLL_RELAY_BURST="120",
    )
    try:
        await wait_healthy(f"{url}/healthz", server)
        await victim_latency(url, *homes[1])  # warm-up
        idle = await victim_latency(url, *homes[2])
        # The abusers run at the lowest CPU priority: a real attacker uses their own machines;
        # on this one, at equal priority, the figure would be the two processes' fight for
        # the same cores, not what the abuse costs the relay.
        abusers = await asyncio.create_subprocess_exec(
            *(sys.executable, __file__, "--abuse", url, "120", *broken),
            stdout=asyncio.subprocess.PIPE,
            preexec_fn=lambda: os.nice(19),
        )
        await asyncio.sleep(2)  # the abuse is in full swing
        started = time.monotonic()
        loaded = await victim_latency(url, *homes[3])
        loaded_seconds = time.monotonic() - started
        if abusers.returncode is None:
            abusers.send_signal(signal.SIGINT)
        out, _ = await abusers.communicate()
    finally:
        server.terminate()
        server.wait()
    p50_idle, p50_loaded = statistics.median(idle), statistics.median(loaded)
    answered = out.split()
    return {
        "abusers": ABUSERS,
        "abuse_victim_p50_idle_ms": round(p50_idle, 2),
        "abuse_victim_p50_ms": round(p50_loaded, 2),
        "abuse_victim_p90_idle_ms": round(idle[len(idle) * 9 // 10], 2),
        "abuse_victim_p90_ms": round(loaded[len(loaded) * 9 // 10], 2),
        "abuse_ratio": round(p50_loaded / p50_idle, 2),
        "abuse_requests_per_s": round(int(answered[-1]) / loaded_seconds, 1) if answered else None,
    }


def postgres() -> tuple[str, str] | None:
    """A PostgreSQL with fsync on, or None when it cannot be started here."""
    try:
        out = subprocess.run(
            ["bash", str(ROOT / "scripts/test-postgres.sh"), "start"],
            env={**os.environ, "HPOLL_PG_FSYNC": "on"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    except subprocess.CalledProcessError:
        return None
    return out[0], out[1]


async def create_database(admin_url: str, name: str) -> str:
    """A fresh database on the benchmark server."""
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    connection = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, database=url.database
    )
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    return url.set(database=name).render_as_string(hide_password=False)


async def main() -> None:
    """Every measurement, one JSON line at the end."""
    if shutil.which("wrk") is None:
        sys.exit("wrk is required: apt-get install wrk")
    figures: dict[str, Any] = {"connections": CONNECTIONS, "seconds_per_run": SECONDS}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        runs, floors = [], []
        for repeat in range(REPEATS):
            runs.append(
                await relay_run("sqlite", f"sqlite+aiosqlite:///{work / f'r{repeat}.db'}", work)
            )
            floors.append(await http_floor(work))
        runs.sort(key=lambda run: run["sqlite_rps"])
        figures |= runs[len(runs) // 2]
        figures["sqlite_rps_runs"] = [run["sqlite_rps"] for run in runs]
        figures["sqlite_p99_ms_runs"] = sorted(run["sqlite_p99_ms"] for run in runs)
        figures["http_floor_rps"] = round(statistics.median(floors), 1)
        figures["sqlite_storage_floor_rps"] = round(
            await storage_floor(f"sqlite+aiosqlite:///{work / 'floor.db'}", work), 1
        )
        figures["sqlite_storage_floor_relay_shape_rps"] = round(
            await storage_floor(
                f"sqlite+aiosqlite:///{work / 'shape.db'}", work, RELAY_SHAPE_BATCH, HOMES
            ),
            1,
        )
        figures |= await abuse_run(work)
        pg = postgres()
        if pg is not None:
            try:
                figures |= await relay_run("postgres", await create_database(pg[0], "bench"), work)
                figures["postgres_storage_floor_rps"] = round(
                    await storage_floor(await create_database(pg[0], "floor"), work), 1
                )
                figures["postgres_storage_floor_relay_shape_rps"] = round(
                    await storage_floor(
                        await create_database(pg[0], "shape"), work, RELAY_SHAPE_BATCH, HOMES
                    ),
                    1,
                )
            finally:
                subprocess.run(
                    ["bash", str(ROOT / "scripts/test-postgres.sh"), "stop", pg[1]], check=False
                )
    for name in ("sqlite", "postgres"):
        if f"{name}_rps" in figures:
            figures[f"{name}_ratio_to_http_floor"] = round(
                figures[f"{name}_rps"] / figures["http_floor_rps"], 3
            )
            print(
                f"{name:9s} {figures[f'{name}_rps']:8.0f} reports/s  p50 "
                f"{figures[f'{name}_p50_ms']:6.1f} ms  p99 {figures[f'{name}_p99_ms']:6.1f} ms  "
                f"storage floor {figures[f'{name}_storage_floor_rps']:8.0f}/s "
                f"({figures[f'{name}_storage_floor_relay_shape_rps']:.0f}/s at the relay's shape)"
            )
    print(f"HTTP floor {figures['http_floor_rps']:8.0f} requests/s")
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--abuse"]:
        asyncio.run(abuse(sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5]))
    else:
        asyncio.run(main())
