"""Tallying results and writing the load-test report.

The report keeps the original script's field names, rounding and percentile rule so reports from
either tool can be compared, with two deliberate differences: 4xx responses are reported apart
(`client_errors`) instead of counting as successes, and an open-model run adds `open_model`.
"""

from __future__ import annotations

import collections
import math
from array import array
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PERCENTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
SAMPLE_ERRORS_KEPT = 10
NETWORK_ERROR_STATUS = 0  # by_status key of timeouts and connection errors, as in the original


def percentile(sorted_values: array | list[float], quantile: float) -> float:
    """The original's rule: value at index floor((n - 1) * q) of the ascending list; 0 when empty."""
    if not sorted_values:
        return 0.0
    if not 0.0 <= quantile <= 1.0:
        raise ValueError(f"quantile must be between 0 and 1, got {quantile}")
    return float(sorted_values[math.floor((len(sorted_values) - 1) * quantile)])


def latency_summary(latencies_ms: array | list[float]) -> dict[str, float]:
    """`{p50, p90, p95, p99, max}` in milliseconds, rounded to 2 decimals."""
    ordered = sorted(latencies_ms)
    summary = {name: round(percentile(ordered, q), 2) for name, q in PERCENTILES.items()}
    summary["max"] = round(float(ordered[-1]), 2) if ordered else 0.0
    return summary


def classify_status(status: int) -> str:
    """`error` for 5xx and network failures (status 0), `client_error` for 4xx, else `success`."""
    if status == NETWORK_ERROR_STATUS or status >= 500:
        return "error"
    if 400 <= status < 500:
        return "client_error"
    return "success"


@dataclass
class Tally:
    """Everything counted during a run. Latencies are kept in full (8 bytes each): a 2-minute run at
    10,000 requests/s is 9.6 MB, and exact percentiles beat bucketed ones for a report people compare."""

    latencies_ms: array = field(default_factory=lambda: array("d"))
    by_status: collections.Counter[int] = field(default_factory=collections.Counter)
    sample_errors: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=SAMPLE_ERRORS_KEPT)
    )

    def record(self, path: str, status: int, latency_ms: float, error: str | None = None) -> None:
        self.latencies_ms.append(latency_ms)
        self.by_status[status] += 1
        if classify_status(status) == "error":
            reason = error or f"HTTP {status}"
            self.sample_errors.append({"path": path, "status_code": status, "error": reason})

    @property
    def total(self) -> int:
        return len(self.latencies_ms)

    def count(self, kind: str) -> int:
        return sum(n for status, n in self.by_status.items() if classify_status(status) == kind)


@dataclass
class OpenModelStats:
    """Arrivals of a fixed-rate run: every scheduled request is either sent or dropped."""

    rate_rps: float
    late_threshold_ms: float
    scheduled: int = 0
    sent: int = 0
    dropped: int = 0
    late: int = 0
    max_send_lag_ms: float = 0.0
    service_latencies_ms: array = field(default_factory=lambda: array("d"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "rate_rps": self.rate_rps,
            "scheduled": self.scheduled,
            "sent": self.sent,
            "dropped": self.dropped,
            "dropped_rate": _ratio(self.dropped, self.scheduled, empty=0.0),
            "late": self.late,
            "late_threshold_ms": self.late_threshold_ms,
            "max_send_lag_ms": round(self.max_send_lag_ms, 2),
            "latency_measured_from": "scheduled_send_time",
            "service_latency_ms": latency_summary(self.service_latencies_ms),
        }


def _ratio(part: int, whole: int, *, empty: float) -> float:
    return round(part / whole, 6) if whole else empty


def build_report(
    *,
    base_url: str,
    paths: list[str],
    concurrency: int,
    timeout_ms: float,
    slo_ms: float,
    max_error_rate: float,
    started_at: datetime,
    ended_at: datetime,
    elapsed_seconds: float,
    tally: Tally,
    open_model: OpenModelStats | None = None,
    generator_cpu_seconds: float | None = None,
) -> dict[str, Any]:
    """The JSON report. Field names and rounding follow the original script (pipeline §10)."""
    total = tally.total
    errors = tally.count("error")
    client_errors = tally.count("client_error")
    latency = latency_summary(tally.latencies_ms)
    error_rate = _ratio(errors, total, empty=1.0)
    dropped_rate = _ratio(open_model.dropped, open_model.scheduled, empty=0.0) if open_model else 0.0
    p95_ok = total > 0 and latency["p95"] <= slo_ms
    errors_ok = error_rate <= max_error_rate and dropped_rate <= max_error_rate
    report: dict[str, Any] = {
        "started_at": _iso(started_at),
        "ended_at": _iso(ended_at),
        "base_url": base_url,
        "mode": "open" if open_model else "closed",
        "duration_seconds": round(elapsed_seconds, 3),
        "concurrency": concurrency,
        "timeout_ms": timeout_ms,
        "paths": list(paths),
        "requests_total": total,
        "requests_success": tally.count("success"),
        "requests_error": errors,
        "error_rate": error_rate,
        "client_errors": client_errors,
        "client_error_rate": _ratio(client_errors, total, empty=0.0),
        "throughput_rps": round(total / elapsed_seconds, 3) if elapsed_seconds > 0 else 0.0,
        "latency_ms": latency,
        "by_status": {str(status): tally.by_status[status] for status in sorted(tally.by_status)},
        "slo": {
            "target_ms": slo_ms,
            "p95_within_target": p95_ok,
            "max_error_rate": max_error_rate,
            "error_rate_within_target": errors_ok,
            "passed": p95_ok and errors_ok,
        },
        "sample_errors": list(tally.sample_errors),
    }
    if open_model is not None:
        report["open_model"] = open_model.as_dict()
    if generator_cpu_seconds is not None and elapsed_seconds > 0:
        utilisation = generator_cpu_seconds / elapsed_seconds
        report["generator"] = {
            "cpu_seconds": round(generator_cpu_seconds, 3),
            "cpu_utilization": round(utilisation, 3),
            # One event loop uses at most one core; near 100% the generator, not the server, limits.
            # Runs under a second are all start-up cost and say nothing either way.
            "saturated": utilisation >= 0.9 and elapsed_seconds >= 1.0,
        }
    return report


def exit_code_for(report: dict[str, Any]) -> int:
    """The original's contract: 2 when nothing was measured, 0 when the SLO holds, else 1."""
    if not report.get("requests_total"):
        return 2
    return 0 if report["slo"]["passed"] else 1


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
