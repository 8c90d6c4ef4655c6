"""Time to detect that someone stopped moving, and false alarms, for two detectors.

Simulated: many home-months of daily life with a rhythm: a busy morning routine, a calmer late
morning, lunch, an afternoon nap on most days, an evening in an armchair with long still spells,
bed and a night-time bathroom trip most nights. Each home has its own hours and pace; activity
comes in bursts with heavy-tailed gaps. Some days the person goes out: the front door, hours of
silence, the door again. Some days the bridge is unreachable for hours: nothing may be alarmed
then (the integration's entities are unavailable). On the last day of each home-month, at a
random waking moment, an incident: nobody moves any more. Detectors are evaluated every 5 minutes:
  * fixed: no activity for 3 h outside quiet hours 22:00-07:00 (the rule the integration had,
    which also stays off after a door; implemented here as the baseline);
  * detector: custom_components/hpoll/activity/detector.py, the integration's one detector
    (learned from the home's own completed gaps, watching from the first day, with its 3 h
    safety net). This life has no rooms: each activity is a motion start of one sensor that
    sees the whole home; the door is a contact event.
False alarms: alarm episodes that start before the incident. Local time = UTC here.

Printed JSON keys:
  homes, days_per_home, incidents, seed
  <detector>_mean_minutes, <detector>_p90_minutes  time to detect (fixed, detector); an incident
                                                   not detected within 24 h counts as 24 h
  <detector>_missed                                incidents not detected within 24 h
  <detector>_false_alarms_per_home_day             over the days each detector is active
  speedup_mean                                     fixed_mean_minutes / detector_mean_minutes
Published anchor (CASAS homes): Wilhelm & Wahl, Sensors 2024, ~323 min mean time to detect at
0.09 false alarms per day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import json
import os
from pathlib import Path
import random
import statistics
import sys

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from custom_components.hpoll.activity.detector import InactivityDetector  # noqa: E402
from custom_components.hpoll.activity.tracker import ActivityEvent  # noqa: E402

HOMES = int(os.environ.get("BENCH_HOMES", "80"))
DAYS = int(os.environ.get("BENCH_DAYS", "35"))
STEP = timedelta(minutes=5)
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
FIXED = timedelta(hours=3)
SEED = int(os.environ.get("BENCH_SEED", "7"))


@dataclass
class Life:
    """One home-month: activity times, which of them are the door, and the incident."""

    events: list[datetime]
    doors: set[datetime]
    incident: datetime
    #: Bridge unreachable: nothing is known, so nothing may be alarmed (entities unavailable).
    outages: list[tuple[datetime, datetime]]


def _phase(
    rng: random.Random,
    start: datetime,
    end: datetime,
    *,
    busy_minutes: float,
    gap_median: float,
    gap_sigma: float,
) -> list[datetime]:
    """Bursts of activity (an event every ~1.5 min) for ~busy_minutes, then lognormal gaps."""
    events: list[datetime] = []
    t = start
    while t < end:
        burst_end = t + timedelta(minutes=rng.expovariate(1 / busy_minutes))
        while t < min(burst_end, end):
            events.append(t)
            t += timedelta(minutes=rng.expovariate(1 / 1.5))
        t += timedelta(minutes=rng.lognormvariate(0, gap_sigma) * gap_median)
    return events


def simulate(rng: random.Random) -> Life:
    """A home-month with its own rhythm, days out, and an incident on the last day."""
    wake_h, bed_h = rng.uniform(6.3, 8.0), rng.uniform(21.5, 23.3)
    pace = rng.uniform(0.7, 1.4)  # a slower or livelier person
    events: list[datetime] = []
    doors: set[datetime] = set()
    outages: list[tuple[datetime, datetime]] = []
    last_day = START + timedelta(days=DAYS - 1)
    incident = last_day + timedelta(hours=rng.uniform(wake_h + 0.5, bed_h - 1.0))
    for day in range(DAYS):
        midnight = START + timedelta(days=day)

        def at(hours: float, midnight: datetime = midnight) -> datetime:
            return midnight + timedelta(hours=hours)

        wake, bed = at(rng.gauss(wake_h, 0.3)), at(rng.gauss(bed_h, 0.3))
        if rng.random() < 0.7:
            trip = at(rng.uniform(1.5, 5))
            events += [trip + timedelta(minutes=i) for i in range(3)]
        nap = rng.random() < 0.6
        phases = [
            (wake, wake + timedelta(hours=1.5), 25, 3, 0.5),  # morning routine
            (wake + timedelta(hours=1.5), at(12), 15, 12 * pace, 0.8),  # late morning
            (at(12), at(13.3), 20, 4, 0.5),  # lunch
            (at(13.3), at(18.5), 12, 14 * pace, 0.8),  # afternoon
            (at(18.5), bed, 6, 22 * pace, 0.6),  # armchair evening
        ]
        for start, end, busy, gap, sigma in phases:
            events += _phase(rng, start, end, busy_minutes=busy, gap_median=gap, gap_sigma=sigma)
        if nap:  # an afternoon nap: a long, normal silence
            nap_start = at(rng.uniform(13.5, 14.5))
            nap_end = nap_start + timedelta(minutes=rng.uniform(45, 110))
            events = [e for e in events if not nap_start < e < nap_end]
        if day < DAYS - 1 and rng.random() < 0.08:  # the bridge or the internet goes down
            down = midnight + timedelta(hours=rng.uniform(0, 20))
            outages.append((down, down + timedelta(hours=rng.uniform(1, 6))))
        if day < DAYS - 1 and rng.random() < 0.12:  # goes out
            leave = wake + timedelta(hours=rng.uniform(1.5, 7))
            back = leave + timedelta(hours=rng.uniform(1.5, 7))
            events = [e for e in events if not leave <= e <= back] + [leave, back]
            doors |= {leave, back}
    return Life(sorted(e for e in events if e < incident), doors, incident, outages)


def _fixed(last: datetime | None, t: datetime, away: bool) -> bool:
    """The old fixed rule: 3 h without activity outside quiet hours, not after a door."""
    quiet = t.hour >= 22 or t.hour < 7
    return last is not None and not quiet and not away and t - last >= FIXED


def evaluate(life: Life) -> dict[str, tuple[float, int, int]]:
    """Per detector: (minutes to detect, false alarm episodes, days it was active)."""
    detector = InactivityDetector(UTC, safety_net=FIXED)
    last: datetime | None = None
    away = False
    index = 0
    alarming = {"fixed": False, "detector": False}
    false_alarms = {"fixed": 0, "detector": 0}
    detected: dict[str, datetime] = {}
    t, end = START, life.incident + timedelta(hours=24)
    while t < end:
        events: list[ActivityEvent] = []
        while index < len(life.events) and life.events[index] <= t:
            last = life.events[index]
            away = last in life.doors  # the old rule: the latest event was the door
            if away:
                events.append(ActivityEvent("door", "Hall", last, "contact"))
            else:  # this life model has no rooms: one motion sensor sees the whole home
                events.append(ActivityEvent("motion", "Home", last, "motion", motion_on=True))
            index += 1
        if any(down <= t < up for down, up in life.outages):
            # Blind: what happens now is only seen (through report times) when it ends.
            detector.observe(t, [], reachable=False)
            alarming = {"fixed": False, "detector": False}
            t += STEP
            continue
        verdict = detector.observe(t, events)
        states = {"fixed": _fixed(last, t, away), "detector": verdict.inactive}
        for name, on in states.items():
            if on and not alarming[name]:
                if t < life.incident:
                    false_alarms[name] += 1
                else:
                    detected.setdefault(name, t)
            alarming[name] = on
        t += STEP
    return {
        name: (
            (detected[name] - life.incident).total_seconds() / 60 if name in detected else 1440,
            false_alarms[name],
            DAYS,
        )
        for name in ("fixed", "detector")
    }


def main() -> None:
    """All homes, a table, one JSON line."""
    rng = random.Random(SEED)
    results = [evaluate(simulate(rng)) for _ in range(HOMES)]
    figures: dict[str, float | int] = {
        "homes": HOMES,
        "days_per_home": DAYS,
        "incidents": HOMES,
        "seed": SEED,
    }
    for name in ("fixed", "detector"):
        minutes = [result[name][0] for result in results]
        days = sum(result[name][2] for result in results)
        figures[f"{name}_mean_minutes"] = round(statistics.mean(minutes), 1)
        figures[f"{name}_p90_minutes"] = round(statistics.quantiles(minutes, n=10)[-1], 1)
        figures[f"{name}_missed"] = sum(1 for m in minutes if m >= 1440)
        figures[f"{name}_false_alarms_per_home_day"] = round(
            sum(result[name][1] for result in results) / days, 3
        )
        print(
            f"{name:8s} time to detect: mean {figures[f'{name}_mean_minutes']:6.1f} min, p90 "
            f"{figures[f'{name}_p90_minutes']:6.1f} min, missed {figures[f'{name}_missed']}; "
            f"false alarms {figures[f'{name}_false_alarms_per_home_day']}/home-day"
        )
    figures["speedup_mean"] = round(
        float(figures["fixed_mean_minutes"]) / float(figures["detector_mean_minutes"]), 2
    )
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
