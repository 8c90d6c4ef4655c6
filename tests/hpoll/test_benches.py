"""Both inactivity benches run (tiny) and end with their one JSON line: they cannot rot."""

from __future__ import annotations

from datetime import UTC, timedelta
import json
from pathlib import Path
import runpy

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize(
    ("bench", "size"),
    [
        ("inactivity.py", {"BENCH_HOMES": "2", "BENCH_DAYS": "9"}),
        (
            "inactivity_life.py",
            {"BENCH_HOMES_PER_TYPE": "1", "BENCH_DAYS": "9", "BENCH_POLL_MINUTES": "10"},
        ),
    ],
)
def test_inactivity_bench_runs_small(
    bench: str,
    size: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in size.items():
        monkeypatch.setenv(name, value)
    runpy.run_path(str(BENCH / bench), run_name="__main__")
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for detector in ("fixed", "detector"):
        assert figures[f"{detector}_mean_minutes"] > 0
        assert 0 <= figures[f"{detector}_missed"] <= figures["incidents"]
    assert figures["speedup_mean"] > 0


def test_the_life_bench_sees_after_an_outage_what_changed_during_it() -> None:
    """The bridge keeps each sensor's latest change: the first poll that reaches it again
    reports the movement and the door made while it was unreachable (the tracker would)."""
    life = runpy.run_path(str(BENCH / "inactivity_life.py"))
    start = life["FIRST_DAY"].astimezone(UTC)
    home = life["Home"]("homebody", 7.0, 22.0, {"hall"}, True, None)
    home.outages.append((start + timedelta(minutes=5), start + timedelta(minutes=30)))
    moved, door = start + timedelta(minutes=10), start + timedelta(minutes=12)
    polls = list(life["polls"](home, [(moved, "hall", True)], [door], start + timedelta(hours=1)))
    assert all(not events for _, events, reachable in polls if not reachable)
    back = next(events for at, events, reachable in polls if reachable and at > moved)
    assert sorted((event.kind, event.at) for event in back) == [
        ("contact", door),
        ("motion", moved),
    ]
