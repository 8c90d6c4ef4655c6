"""Both inactivity benches run (tiny) and end with their one JSON line: they cannot rot."""

from __future__ import annotations

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
