"""Prometheus text exposition, hand-rolled: a few counters and one histogram."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
import itertools

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: A planning pass must stay well inside the notify interval (60 s).
PLAN_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class Histogram:
    """A Prometheus histogram of durations in seconds."""

    name: str
    help: str
    bounds: tuple[float, ...]
    #: Observations per bucket: above the previous bound, up to this one.
    counts: list[int] = field(init=False)
    sum: float = 0.0
    total: int = 0
    last: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.bounds)

    def observe(self, seconds: float) -> None:
        """One more observation (counted in its own bucket only: :meth:`lines` adds them up)."""
        self.last = seconds
        self.sum += seconds
        self.total += 1
        if (index := bisect.bisect_left(self.bounds, seconds)) < len(self.bounds):
            self.counts[index] += 1

    def lines(self) -> list[str]:
        """Its text exposition."""
        return [
            f"# HELP {self.name} {self.help}",
            f"# TYPE {self.name} histogram",
            *(
                f'{self.name}_bucket{{le="{bound}"}} {count}'
                for bound, count in zip(self.bounds, itertools.accumulate(self.counts), strict=True)
            ),
            f'{self.name}_bucket{{le="+Inf"}} {self.total}',
            f"{self.name}_sum {self.sum}",
            f"{self.name}_count {self.total}",
        ]


@dataclass
class Metrics:
    """Everything /metrics exposes."""

    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    db_errors: int = 0
    batches: int = 0
    connections_refused: int = 0
    latency: Histogram = field(
        default_factory=lambda: Histogram(
            "hpoll_ingest_seconds",
            "Time from request to answer for report ingest.",
            LATENCY_BUCKETS,
        )
    )
    plan: Histogram = field(
        default_factory=lambda: Histogram(
            "hpoll_plan_seconds",
            "Planning passes of this replica (summaries, alerts, escalations; lock wait excluded).",
            PLAN_BUCKETS,
        )
    )

    def observe_latency(self, seconds: float) -> None:
        """One ingest request took this long."""
        self.latency.observe(seconds)

    def render(self, extra: dict[str, float] | None = None) -> str:
        """The text format (version 0.0.4)."""
        lines = [
            "# HELP hpoll_reports_accepted_total Reports stored (202).",
            "# TYPE hpoll_reports_accepted_total counter",
            f"hpoll_reports_accepted_total {self.accepted}",
            "# HELP hpoll_reports_duplicate_total Reports already stored (repeated report_id).",
            "# TYPE hpoll_reports_duplicate_total counter",
            f"hpoll_reports_duplicate_total {self.duplicates}",
            "# HELP hpoll_reports_rejected_total Reports refused, by reason.",
            "# TYPE hpoll_reports_rejected_total counter",
        ]
        lines += [
            f'hpoll_reports_rejected_total{{reason="{reason}"}} {count}'
            for reason, count in sorted(self.rejected.items())
        ]
        lines += [
            "# HELP hpoll_db_errors_total Database errors while storing reports.",
            "# TYPE hpoll_db_errors_total counter",
            f"hpoll_db_errors_total {self.db_errors}",
            "# HELP hpoll_ingest_batches_total Transactions committed by the ingest writer.",
            "# TYPE hpoll_ingest_batches_total counter",
            f"hpoll_ingest_batches_total {self.batches}",
            "# HELP hpoll_connections_refused_total Connections answered 503 at once: as many"
            " connections open, or request handlers running, as the relay allows.",
            "# TYPE hpoll_connections_refused_total counter",
            f"hpoll_connections_refused_total {self.connections_refused}",
        ]
        lines += self.latency.lines() + self.plan.lines()
        lines += [
            "# HELP hpoll_plan_last_seconds The latest planning pass of this replica.",
            "# TYPE hpoll_plan_last_seconds gauge",
            f"hpoll_plan_last_seconds {self.plan.last}",
        ]
        for name, value in sorted((extra or {}).items()):
            lines += [f"# TYPE {name} gauge", f"{name} {value}"]
        return "\n".join(lines) + "\n"
