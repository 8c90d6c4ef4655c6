"""Prometheus text exposition, hand-rolled: a few counters and one histogram."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class Metrics:
    """Everything /metrics exposes."""

    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    db_errors: int = 0
    batches: int = 0
    latency_counts: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    latency_sum: float = 0.0
    latency_total: int = 0

    def observe_latency(self, seconds: float) -> None:
        """One ingest request took this long."""
        self.latency_sum += seconds
        self.latency_total += 1
        for index, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.latency_counts[index] += 1

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
            "# HELP hpoll_ingest_seconds Time from request to answer for report ingest.",
            "# TYPE hpoll_ingest_seconds histogram",
        ]
        lines += [
            f'hpoll_ingest_seconds_bucket{{le="{bound}"}} {count}'
            for bound, count in zip(LATENCY_BUCKETS, self.latency_counts, strict=True)
        ]
        lines += [
            f'hpoll_ingest_seconds_bucket{{le="+Inf"}} {self.latency_total}',
            f"hpoll_ingest_seconds_sum {self.latency_sum}",
            f"hpoll_ingest_seconds_count {self.latency_total}",
        ]
        for name, value in sorted((extra or {}).items()):
            lines += [f"# TYPE {name} gauge", f"{name} {value}"]
        return "\n".join(lines) + "\n"
