"""The homes of bench/scale.py: a load generator that behaves like Hue homes pushing reports.

Run as ``python bench/scale_homes.py CONFIG.json`` (bench/scale.py writes the config); prints
``started EPOCH`` when its clock starts and writes its figures to the config's ``out`` file.

Modes:
  * ``homes`` (open loop): every home follows its own schedule whatever the relays answer, so
    a slow relay shows as latency, not as a politely lower rate. Latency is measured from the
    moment the home meant to send (coordinated omission corrected). Kinds of home:
      active    a report every ``interval`` seconds, with the minute's activity
      idle      a heartbeat every 10 minutes, no activity
    (every other kind reports at least once a minute, whatever ``interval`` is: their alerts
    are watched)
      silent    never reports
      battery   active; one sensor's battery is low
      replaced  like battery until ``replace_at``, then the battery is new (alert resolves)
      offline   active; one device is off the Zigbee mesh
      outage    nothing until ``flush_at``, then its queue (``outage_reports`` reports, one a
                minute before the outage ended) one after the other, as the integration's push
                queue sends it, then active
      inactive  reports without activity until ``resume_at``, then with activity
    A failed send (connection error, 5xx, 429) is retried like the integration does: the same
    report (same ``report_id``, same bytes) after 10 s x 0.5-1.0 (or the relay's Retry-After).
  * ``max`` (closed loop): ``connections`` senders each send the next active home's report as
    soon as the previous was answered; the rate the server sustains.

The HTTP client is a lean keep-alive HTTP/1.1 client on asyncio streams (aiohttp's client costs
several times more CPU per request, CPU the relays need on this machine).
"""

from __future__ import annotations

import array
import asyncio
import bisect
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import heapq
import json
from pathlib import Path
import random
import resource
import sys
import time
from typing import Any
import uuid

HEARTBEAT = 600.0
MINUTE = 60.0
RETRY_FIRST = 10.0
ROOMS = ("Kitchen", "Living room", "Bedroom", "Hall")
TICK = 0.01


@dataclass(slots=True)
class Home:
    """One home as the relay knows it."""

    id: str
    token: str
    kind: str
    rng: random.Random
    head: bytes = b""
    #: Still sending its outage queue: no regular report until it is through.
    flushing: bool = False


@dataclass(slots=True)
class Send:
    """One report on its way (resent unchanged until a 2xx)."""

    home: Home
    report_id: str
    body: bytes
    intended: float
    attempt: int = 0
    done: asyncio.Future[None] | None = None


@dataclass
class Figures:
    """What was seen, per second of the run (by the second the send was meant)."""

    latency_ms: array.array[float] = field(default_factory=lambda: array.array("f"))
    latency_second: array.array[int] = field(default_factory=lambda: array.array("i"))
    failures: list[tuple[int, str]] = field(default_factory=list)
    acked: list[tuple[str, str]] = field(default_factory=list)
    #: The second each new report was meant to go (retries not counted): the offered load.
    offered_second: array.array[int] = field(default_factory=lambda: array.array("i"))
    retries: int = 0
    sent: int = 0

    def ok(self, send: Send, now: float) -> None:
        self.latency_ms.append((now - send.intended) * 1000)
        self.latency_second.append(int(send.intended))
        self.acked.append((send.home.id, send.report_id))

    def failed(self, send: Send, what: str) -> None:
        self.failures.append((int(send.intended), what))


def iso(moment: datetime) -> str:
    """ISO 8601 with the UTC offset, as the integration sends it."""
    return moment.isoformat()


def devices(home: Home, now: datetime, battery_low: bool) -> list[dict[str, Any]]:
    """Two motion sensors, a dimmer switch and a lamp."""
    seen = iso(now - timedelta(seconds=home.rng.randint(5, 50)))
    return [
        {
            "id": f"{home.id}-m1",
            "name": "Hallway sensor",
            "room": "Hall",
            "kind": "motion_sensor",
            "battery": 4 if battery_low else 87,
            "battery_state": "low" if battery_low else "normal",
            "connectivity": "connected",
            "last_seen": seen,
        },
        {
            "id": f"{home.id}-m2",
            "name": "Kitchen sensor",
            "room": "Kitchen",
            "kind": "motion_sensor",
            "battery": 64,
            "battery_state": "normal",
            "connectivity": "connected",
            "last_seen": seen,
        },
        {
            "id": f"{home.id}-sw",
            "name": "Bedroom dimmer",
            "room": "Bedroom",
            "kind": "switch",
            "battery": 91,
            "battery_state": "normal",
            "connectivity": None,
            "last_seen": None,
        },
        {
            "id": f"{home.id}-l1",
            "name": "Living room lamp",
            "room": "Living room",
            "kind": "light",
            "battery": None,
            "battery_state": None,
            "connectivity": "disconnected" if home.kind == "offline" else "connected",
            "last_seen": None,
        },
    ]


def report(home: Home, sent: datetime, active: bool, battery_low: bool, seq: int) -> Send:
    """One report of ``home`` as of ``sent`` (UTC)."""
    report_id = str(uuid.UUID(int=home.rng.getrandbits(128), version=4))
    activity = (
        [
            {
                "room": room,
                "sensor_id": f"{home.id}-{room[:3].lower()}",
                "at": iso(sent - timedelta(seconds=home.rng.uniform(1, 59))),
            }
            for room in home.rng.sample(ROOMS, home.rng.randint(1, 3))
        ]
        if active
        else []
    )
    body = json.dumps(
        {
            "schema": 1,
            "home_id": home.id,
            "report_id": report_id,
            "sent_at": iso(sent),
            "bridge": {
                "id": f"bridge-{home.id}",
                "name": "Hue Bridge",
                "reachable": True,
                "time_zone": "Europe/Berlin",
                "offline_since": None,
            },
            "devices": devices(home, sent, battery_low),
            "activity": activity,
            "counters": {"activity_today": seq * 2, "polls": seq, "poll_failures": 0},
        },
        separators=(",", ":"),
    ).encode()
    head = home.head + str(len(body)).encode() + b"\r\n\r\n"
    return Send(home, report_id, head + body, 0.0)


#: A connection idle longer than this is not reused: the balancer may be closing it (its
#: keep-alive lasts 2 s), and a request sent into that close is reset. A home, sending once a
#: minute, opens a new connection each time anyway.
IDLE_REUSE = 1.0


class Connection:
    """One keep-alive HTTP/1.1 connection (reopened when the server closes it)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0.0

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def exchange(self, request: bytes) -> tuple[int, float | None]:
        """Send one request; its status and Retry-After (raises OSError-likes on failure)."""
        if self.writer is not None and time.monotonic() - self.used > IDLE_REUSE:
            await self.close()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(request)
        line = await self.reader.readline()
        if not line:
            raise ConnectionResetError("closed before answering")
        status = int(line.split(b" ", 2)[1])
        length, close, retry_after = -1, False, None
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and b"close" in value.lower():
                close = True
            elif name == b"retry-after":
                retry_after = float(value)
        if length > 0:
            await self.reader.readexactly(length)
        elif length < 0:
            await self.reader.read()
            close = True
        if close:
            await self.close()
        self.used = time.monotonic()
        return status, retry_after


class Load:
    """Runs the homes (or the closed loop) and keeps the figures."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.host, self.port = "127.0.0.1", int(config["port"])
        self.figures = Figures()
        self.queue: asyncio.Queue[Send] = asyncio.Queue()
        self.retry_heap: list[tuple[float, int, Send]] = []
        self.homes: list[Home] = []
        seed = int(config.get("seed", 1))
        for n, line in enumerate(Path(config["homes_file"]).read_text().splitlines()):
            home_id, token, kind = line.split()
            home = Home(home_id, token, kind, random.Random(seed * 1_000_003 + n))
            home.head = (
                b"POST /api/v1/reports HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer "
                + token.encode()
                + b"\r\nContent-Type: application/json\r\nContent-Length: "
            )
            self.homes.append(home)
        self.start = 0.0
        self.wall_start = 0.0
        self.seq = 0
        self.inflight = 0
        self.max_inflight = 0

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def wall(self, at: float) -> datetime:
        """The wall-clock time of run second ``at``."""
        return datetime.fromtimestamp(self.wall_start + at, UTC)

    # -- sending ----------------------------------------------------------------------------

    async def sender(self) -> None:
        connection = Connection(self.host, self.port)
        while True:
            send = await self.queue.get()
            await self.attempt(connection, send)

    async def attempt(self, connection: Connection, send: Send) -> bool:
        self.figures.sent += 1
        send.attempt += 1
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            status, retry_after = await connection.exchange(send.body)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as err:
            await connection.close()
            self.figures.failed(send, type(err).__name__)
            self.retry(send, None)
            return False
        finally:
            self.inflight -= 1
        if 200 <= status < 300:
            self.figures.ok(send, self.elapsed())
            if send.done is not None:
                send.done.set_result(None)
            return True
        self.figures.failed(send, str(status))
        if status in (400, 401, 403, 409, 413, 415, 422):
            # Refused for good: the integration drops it (and the bench counts it).
            if send.done is not None:
                send.done.set_result(None)
            return False
        self.retry(send, retry_after)
        return False

    def retry(self, send: Send, retry_after: float | None) -> None:
        self.figures.retries += 1
        delay = retry_after or RETRY_FIRST * (2 ** (send.attempt - 1)) * random.uniform(0.5, 1.0)
        heapq.heappush(self.retry_heap, (self.elapsed() + min(delay, 600.0), id(send), send))

    def submit(self, home: Home, at: float, active: bool) -> Send:
        self.seq += 1
        low = home.kind == "battery" or (
            home.kind == "replaced" and at < self.config["events"]["replace_at"]
        )
        send = report(home, self.wall(at), active, low, self.seq)
        send.intended = at
        self.figures.offered_second.append(int(at))
        self.queue.put_nowait(send)
        return send

    # -- the homes --------------------------------------------------------------------------

    async def flush_queue(self, home: Home, flush_at: float) -> None:
        """An outage ends: the queued reports go one after the other, oldest first."""
        await asyncio.sleep(max(0.0, flush_at - self.elapsed()))
        home.flushing = True
        count = int(self.config["outage_reports"])
        for k in range(count, 0, -1):
            send = report(
                home,
                self.wall(flush_at) - timedelta(minutes=k),
                True,
                False,
                self.seq,
            )
            send.intended = max(flush_at, self.elapsed())
            self.figures.offered_second.append(int(send.intended))
            send.done = asyncio.get_running_loop().create_future()
            self.queue.put_nowait(send)
            await send.done
        home.flushing = False

    async def run_homes(self) -> None:
        seconds = float(self.config["seconds"])
        interval = float(self.config["interval"])
        periods = {"active": interval, "idle": HEARTBEAT}
        watched = min(MINUTE, interval)
        events = self.config["events"]
        rng = random.Random(7)
        # Each home's phase in its period; sorted, so each tick finds who is due by bisect.
        periodic = {
            kind: sorted(
                (rng.uniform(0, periods.get(kind, watched)), n)
                for n, home in enumerate(self.homes)
                if home.kind == kind
            )
            for kind in {h.kind for h in self.homes} - {"silent"}
        }
        keys = {kind: [phase for phase, _ in phases] for kind, phases in periodic.items()}
        flushers: list[asyncio.Task[None]] = []
        previous = 0.0
        while (now := self.elapsed()) < seconds:
            for kind, phases in periodic.items():
                period = periods.get(kind, watched)
                if kind == "outage" and now >= events["flush_at"] and not flushers:
                    flushers = [
                        asyncio.create_task(
                            self.flush_queue(self.homes[n], events["flush_at"] + rng.uniform(0, 5))
                        )
                        for _, n in phases
                    ]
                for lo, hi in _windows(previous, now, period):
                    first = bisect.bisect_right(keys[kind], lo)
                    for index in range(first, bisect.bisect_right(keys[kind], hi)):
                        home = self.homes[phases[index][1]]
                        at = (previous // period) * period + phases[index][0]
                        at = at if at > previous else at + period
                        if kind == "outage" and (at < events["flush_at"] or home.flushing):
                            continue
                        active = kind not in ("idle",) and (
                            kind != "inactive" or at >= events["resume_at"]
                        )
                        self.submit(home, at, active)
            while self.retry_heap and self.retry_heap[0][0] <= now:
                _, _, send = heapq.heappop(self.retry_heap)
                self.queue.put_nowait(send)
            previous = now
            await asyncio.sleep(TICK)
        # Let what is queued and in flight finish (a home's queue keeps its reports).
        for _ in range(600):
            if not (self.queue.qsize() or self.inflight):
                break
            await asyncio.sleep(0.05)
        for task in flushers:
            task.cancel()

    async def run_max(self) -> None:
        seconds = float(self.config["seconds"])
        active = [h for h in self.homes if h.kind == "active"]

        async def loop(worker: int) -> None:
            connection = Connection(self.host, self.port)
            n = worker
            while (now := self.elapsed()) < seconds:
                home = active[n % len(active)]
                n += int(self.config["connections"])
                self.seq += 1
                send = report(home, self.wall(now), True, False, self.seq)
                send.intended = now
                await self.attempt(connection, send)
            await connection.close()

        await asyncio.gather(*(loop(w) for w in range(int(self.config["connections"]))))

    async def run(self) -> dict[str, Any]:
        self.start = time.monotonic()
        self.wall_start = time.time()
        print(f"started {self.wall_start}", flush=True)
        senders = []
        if self.config["mode"] == "homes":
            senders = [
                asyncio.create_task(self.sender()) for _ in range(int(self.config["connections"]))
            ]
            await self.run_homes()
        else:
            await self.run_max()
        for task in senders:
            task.cancel()
        return self.summary()

    def summary(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        figures = self.figures
        Path(self.config["acked_file"]).write_text(
            "".join(f"{home}\t{rid}\n" for home, rid in figures.acked)
        )
        return {
            "wall_start": self.wall_start,
            "seconds": self.elapsed(),
            "sent": figures.sent,
            "acked": len(figures.acked),
            "retries": figures.retries,
            "unacked_at_end": self.queue.qsize() + len(self.retry_heap),
            "latency_ms": list(figures.latency_ms),
            "latency_second": list(figures.latency_second),
            "offered_second": list(figures.offered_second),
            "failures": figures.failures,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "max_inflight": self.max_inflight,
        }


def _windows(previous: float, now: float, period: float) -> list[tuple[float, float]]:
    """The phase ranges (lo, hi] that (previous, now] covers, modulo ``period``."""
    lo, hi = previous % period, now % period
    if now - previous >= period:
        return [(-1.0, period)]
    if lo <= hi:
        return [(lo, hi)]
    return [(lo, period), (-1.0, hi)]


def main() -> None:
    """Run one load as configured; figures to the config's ``out`` file."""
    config = json.loads(Path(sys.argv[1]).read_text())
    figures = asyncio.run(Load(config).run())
    Path(config["out"]).write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
