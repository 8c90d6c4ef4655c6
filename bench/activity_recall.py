"""How much of a day's activity each way of polling sees, against the simulator's ground truth.

A seeded, realistic day (night sleep with a bathroom trip, bursts of activity separated by
heavy-tailed quiet periods, moving between rooms) is played by the Hue cloud simulator. The
monitor polls it over loopback HTTP with the Hue Remote API client at 60, 300 and 900 s, once
with polls at a random phase (what HA's coordinator does today: its schedule starts whenever
the entry was set up) and once aligned to the interval grid, 0.5 s after each multiple (not yet
implemented in the coordinator). A 5-minute window "had activity" when some movement happened
in it. Detected by:
  (a) naive polling: some motion sensor's current state is "motion" at a poll in the window;
  (b) hpoll's ActivityTracker: some activity event (report time) falls in the window.

Printed JSON keys:
  windows_with_activity        ground-truth 5-minute windows with movement
  naive_recall_<s>             fraction of those windows (a) detects, poll interval s seconds
  tracker_recall_<s>           fraction (b) detects
  tracker_false_windows_<s>    windows (b) marks that had no movement (report times of movement
                               ends fall up to ~10 s after the last movement)
  ratio_<s>                    tracker_recall / naive_recall (the baseline in the same run)
  ..._aligned                  the same with polls aligned to the interval grid
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
import random
import sys

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import ClientSession  # noqa: E402
from aiohttp.test_utils import TestServer  # noqa: E402

from custom_components.hpoll.activity.tracker import ActivityTracker  # noqa: E402
from custom_components.hpoll.hue import HueRemoteClient  # noqa: E402
from huesim import HueCloudSimulator, ManualClock, MotionEvent, create_app  # noqa: E402

WINDOW = timedelta(minutes=5)
DAY_START = datetime(2026, 7, 28, 6, 0, tzinfo=UTC)
SEED = 20261123
INTERVALS = (60, 300, 900)
CLIENT = ("recall", "secret")
KEY = "recall-key"


def plan_day(sensors: list[str], rng: random.Random) -> list[tuple[str, datetime, float]]:
    """(sensor, start, seconds) movements for 24 h from 06:00: awake bursts, quiet gaps, night."""
    movements: list[tuple[str, datetime, float]] = []
    t = DAY_START + timedelta(minutes=rng.uniform(30, 90))  # gets up
    bedtime = DAY_START + timedelta(hours=17)  # 23:00
    room = rng.choice(sensors)
    while t < bedtime:
        burst_end = t + timedelta(minutes=rng.uniform(5, 60))
        while t < burst_end:
            movements.append((room, t, rng.uniform(2, 40)))
            t += timedelta(seconds=rng.expovariate(1 / 60) + 5)
            if rng.random() < 0.2:
                room = rng.choice(sensors)
        # Quiet periods are heavy-tailed: mostly minutes, sometimes hours.
        t += timedelta(minutes=min(240, rng.lognormvariate(2.8, 1.0)))
    night_trip = bedtime + timedelta(hours=rng.uniform(2, 5))
    movements += [
        (rng.choice(sensors), night_trip + timedelta(seconds=20 * i), 5) for i in range(6)
    ]
    return movements


def truth_windows(movements: list[MotionEvent]) -> set[datetime]:
    """5-minute windows in which some movement happened."""
    windows: set[datetime] = set()
    for movement in movements:
        window = window_of(movement.start)
        while window <= movement.end:
            windows.add(window)
            window += WINDOW
    return windows


def window_of(when: datetime) -> datetime:
    """The 5-minute window a moment falls in."""
    return DAY_START + WINDOW * ((when - DAY_START) // WINDOW)


async def play(
    interval: int, rng_seed: int, aligned: bool
) -> tuple[set[datetime], set[datetime], set[datetime]]:
    """One day at one poll interval: (truth, naive detections, tracker detections).

    ``aligned``: polls land 0.5 s (a cloud round trip) after each multiple of the interval, so
    they split the day exactly where the 5-minute windows do; otherwise at a random phase.
    """
    clock = ManualClock(DAY_START)
    sim = HueCloudSimulator.from_fixture(clock, clients=dict([CLIENT]), app_keys={KEY})
    sensors = [m["id"] for m in sim.world.of_type("motion")]
    sim.world.settle_motion(DAY_START - timedelta(hours=1))
    for sensor, start, seconds in plan_day(sensors, random.Random(rng_seed)):
        sim.world.move(sensor, start, seconds)
    token = str(sim.oauth.issue_for_tests(CLIENT[0])["access_token"])
    server = TestServer(create_app(sim), host="127.0.0.1")
    await server.start_server()

    async def access() -> str:
        return token

    naive: set[datetime] = set()
    tracked: set[datetime] = set()
    phase = timedelta(
        seconds=0.5 if aligned else random.Random(rng_seed + interval).uniform(0, interval)
    )
    async with ClientSession() as session:
        client = HueRemoteClient(session, access, KEY, base_url=str(server.make_url("")))
        tracker = ActivityTracker(started_at=DAY_START)
        now = DAY_START + phase
        end = DAY_START + timedelta(days=1)
        while now < end:
            clock.set(now)
            snapshot = await client.get_resources()
            if any(
                d.motion and d.motion.rtype == "motion" and d.motion.motion
                for d in snapshot.devices.values()
            ):
                naive.add(window_of(now))
            # First-sight "history" events only date what happened before we watched.
            tracked.update(
                window_of(event.at) for event in tracker.update(snapshot, now) if not event.history
            )
            now += timedelta(seconds=interval)
    await server.close()
    return truth_windows(sim.world.movements), naive, tracked


async def main() -> None:
    """Every interval, one table, one JSON line."""
    figures: dict[str, float | int] = {}
    print(f"{'poll':>6} {'phase':>8} {'windows':>8} {'naive':>8} {'tracker':>8} {'false':>6}")
    for aligned in (False, True):
        suffix = "_aligned" if aligned else ""
        for interval in INTERVALS:
            truth, naive, tracked = await play(interval, SEED, aligned)
            naive_recall = len(naive & truth) / len(truth)
            tracker_recall = len(tracked & truth) / len(truth)
            figures["windows_with_activity"] = len(truth)
            figures[f"naive_recall_{interval}{suffix}"] = round(naive_recall, 4)
            figures[f"tracker_recall_{interval}{suffix}"] = round(tracker_recall, 4)
            figures[f"tracker_false_windows_{interval}{suffix}"] = len(tracked - truth)
            figures[f"ratio_{interval}{suffix}"] = (
                round(tracker_recall / naive_recall, 2) if naive_recall else 0
            )
            print(
                f"{interval:>5}s {'aligned' if aligned else 'random':>8} {len(truth):>8} "
                f"{naive_recall:>8.1%} {tracker_recall:>8.1%} {len(tracked - truth):>6}"
            )
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    asyncio.run(main())
