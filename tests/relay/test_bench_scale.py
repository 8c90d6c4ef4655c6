"""bench/scale.py works end to end at its small size: PostgreSQL, two relay replicas behind
HAProxy (deploy/haproxy.cfg), Apprise to a sink, homes, a replica killed and restarted.

Not a timing test: it checks what must hold at any speed (no report answered 2xx is missing,
every summary of the crowd arrives, the figures are all there).
"""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

from relay.notifications.plan import PLAN_AT_ITS_TIME

ROOT = Path(__file__).parents[2]


def test_scale_bench_runs_and_loses_nothing() -> None:
    done = subprocess.run(  # noqa: S603 (this interpreter, a file of the repository)
        [sys.executable, str(ROOT / "bench/scale.py")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["scale"] == "small"
    assert figures["acked_reports"] > 0
    assert figures["lost_reports"] == 0
    assert figures["morning_delivered"] == figures["morning_subscriptions"] > 0
    # The pass at the minute composes up to PLAN_AT_ITS_TIME; only a larger crowd's excess is
    # written before its minute.
    excess = figures["morning_subscriptions"] - PLAN_AT_ITS_TIME
    assert figures["morning_written_ahead"] == max(0, excess)
    assert figures["messages_received"] >= figures["messages_sent_db"] > 0
    assert figures["plan_ticks"] >= 2
    # The closed loop spans a point of the planning grid: passes ran while it saturated both.
    assert len(figures["plan_saturated_s"]) >= 1
    assert all(seconds > 0 for seconds in figures["plan_saturated_s"])
    assert {"battery", "inactivity"} <= set(figures["alerts_opened"])
    assert "inactivity" in figures["alerts_resolved"]
    assert len(figures["replica_peak_rss_mb"]) == 3  # the killed one, its restart, the other
    for key in (
        "relay_max_rps",
        "http_floor_rps",
        "storage_floor_rps",
        "retention_rows",
        "ratio_to_http_floor",
        "ratio_to_storage_floor",
    ):
        assert figures[key] > 0, key
