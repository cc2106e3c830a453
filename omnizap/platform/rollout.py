"""The rollout gate: compare a candidate's load-test report with the baseline's.

The SLO document's rule (observability/sticker-catalog-slo.md §5): capture a baseline, apply the
change, run the same load again, and approve only if p95 did not get worse by more than 10% and the
error rate stays at or below 2%. The third condition there (queue backlog back to normal within
15 minutes) is not in a load-test report; it is watched by the `OmniZapQueueBacklogGrowing` alert.

Everything here is pure: reports in, verdict out. Reading files and printing live in the CLI.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MAX_P95_REGRESSION = 0.10
DEFAULT_MAX_ERROR_RATE = 0.02
MAX_REPORT_BYTES = 50 * 1024 * 1024
DURATION_TOLERANCE = 0.10  # reports' elapsed windows may differ by this much and count as "the same"


class ReportError(ValueError):
    """A report file or object that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class ReportFigures:
    """The numbers the gate reads from one load-test report."""

    source: str
    requests_total: int
    error_rate: float
    p95_ms: float
    p99_ms: float | None = None
    throughput_rps: float | None = None
    dropped_rate: float = 0.0
    slo_target_ms: float | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    duration_seconds: float | None = None


@dataclass(frozen=True)
class GateCheck:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    checks: list[GateCheck]
    notes: list[str]
    baseline: ReportFigures
    candidate: ReportFigures
    max_p95_regression: float
    max_error_rate: float

    @property
    def failed_checks(self) -> list[GateCheck]:
        return [check for check in self.checks if not check.passed]

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "verdict": "PASS" if self.passed else "FAIL",
            "max_p95_regression": self.max_p95_regression,
            "max_error_rate": self.max_error_rate,
            "checks": [asdict(check) for check in self.checks],
            "notes": list(self.notes),
            "baseline": asdict(self.baseline),
            "candidate": asdict(self.candidate),
        }


def _number(data: Mapping[str, Any], key: str, source: str, *, optional: bool = False) -> float | None:
    if key not in data or data[key] is None:
        if optional:
            return None
        raise ReportError(f"{source}: field '{key}' is missing; is this a report from `omnizap loadtest`?")
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReportError(f"{source}: field '{key}' must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ReportError(f"{source}: field '{key}' must be a finite number >= 0, got {value!r}")
    return float(value)


def figures_from_report(data: Any, source: str = "report") -> ReportFigures:
    """Check a parsed report and take the gate's figures from it; `ReportError` says what is wrong."""
    if not isinstance(data, Mapping):
        raise ReportError(f"{source}: a load-test report is a JSON object, got {type(data).__name__}")
    total = _number(data, "requests_total", source)
    assert total is not None
    if total != int(total):
        raise ReportError(f"{source}: field 'requests_total' must be a whole number, got {total}")
    error_rate = _number(data, "error_rate", source)
    assert error_rate is not None
    if error_rate > 1:
        raise ReportError(f"{source}: field 'error_rate' is a fraction between 0 and 1, got {error_rate}")
    latency = data.get("latency_ms")
    if not isinstance(latency, Mapping):
        raise ReportError(f"{source}: field 'latency_ms' (with p95) is missing or not an object")
    p95 = _number(latency, "p95", f"{source} latency_ms")
    assert p95 is not None
    open_model = data.get("open_model")
    dropped_rate = 0.0
    if isinstance(open_model, Mapping):
        dropped_rate = _number(open_model, "dropped_rate", f"{source} open_model", optional=True) or 0.0
    slo = data.get("slo")
    slo_target = (
        _number(slo, "target_ms", f"{source} slo", optional=True) if isinstance(slo, Mapping) else None
    )
    parameters = {
        "paths": data.get("paths"),
        "concurrency": data.get("concurrency"),
        "mode": data.get("mode", "closed"),
        "rate_rps": open_model.get("rate_rps") if isinstance(open_model, Mapping) else None,
    }
    return ReportFigures(
        source=source,
        requests_total=int(total),
        error_rate=error_rate,
        p95_ms=p95,
        p99_ms=_number(latency, "p99", f"{source} latency_ms", optional=True),
        throughput_rps=_number(data, "throughput_rps", source, optional=True),
        dropped_rate=dropped_rate,
        slo_target_ms=slo_target,
        parameters=parameters,
        duration_seconds=_number(data, "duration_seconds", source, optional=True),
    )


def read_report(path: Path) -> ReportFigures:
    """Read and check a report file written by `omnizap loadtest --out` (or the original script)."""
    source = str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ReportError(f"{source}: file not found") from None
    except OSError as exc:
        raise ReportError(f"{source}: cannot read ({exc.strerror})") from None
    if path.is_dir():
        raise ReportError(f"{source}: is a directory, not a report file")
    if size > MAX_REPORT_BYTES:
        raise ReportError(f"{source}: {size} bytes is too large for a load-test report")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ReportError(f"{source}: not UTF-8 text; is this a JSON report?") from None
    except OSError as exc:
        raise ReportError(f"{source}: cannot read ({exc.strerror})") from None
    if not text.strip():
        raise ReportError(f"{source}: the file is empty")
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except ValueError as exc:
        raise ReportError(f"{source}: {exc}") from None
    return figures_from_report(data, source)


def _reject_constant(name: str) -> float:
    raise ValueError(f"invalid JSON: {name} is not a number JSON allows")


def _percent(value: float) -> str:
    return f"{value * 100:.2f}%"


def evaluate_rollout_gate(
    baseline: ReportFigures,
    candidate: ReportFigures,
    *,
    max_p95_regression: float = DEFAULT_MAX_P95_REGRESSION,
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE,
    require_same_parameters: bool = True,
) -> GateVerdict:
    """Apply the SLO document's rule and return every check with its numbers."""
    if not math.isfinite(max_p95_regression) or max_p95_regression < 0:
        raise ValueError(f"max_p95_regression must be >= 0 (0.10 means 10%), got {max_p95_regression}")
    if not 0 <= max_error_rate <= 1:
        raise ValueError(f"max_error_rate must be between 0 and 1 (0.02 means 2%), got {max_error_rate}")
    checks: list[GateCheck] = []
    notes: list[str] = []

    empty = [figures.source for figures in (baseline, candidate) if figures.requests_total == 0]
    checks.append(
        GateCheck(
            "measured",
            not empty,
            f"no requests in {', '.join(empty)}: nothing to compare"
            if empty
            else f"baseline {baseline.requests_total} and candidate {candidate.requests_total} requests",
        )
    )

    allowed_p95 = baseline.p95_ms * (1 + max_p95_regression)
    if baseline.p95_ms > 0:
        change = f"{(candidate.p95_ms / baseline.p95_ms - 1) * 100:+.1f}%"
    else:
        change = "baseline p95 is 0"
    p95_ok = candidate.p95_ms <= allowed_p95 + 1e-9
    checks.append(
        GateCheck(
            "p95_regression",
            p95_ok,
            f"p95 {baseline.p95_ms:.2f} ms -> {candidate.p95_ms:.2f} ms ({change}); "
            f"allowed up to +{max_p95_regression * 100:.1f}% = {allowed_p95:.2f} ms",
        )
    )

    error_ok = candidate.error_rate <= max_error_rate
    detail = (
        f"candidate error rate {_percent(candidate.error_rate)} (5xx + timeouts), "
        f"allowed <= {_percent(max_error_rate)}; baseline {_percent(baseline.error_rate)}"
    )
    if candidate.dropped_rate:
        error_ok = error_ok and candidate.dropped_rate <= max_error_rate
        detail += f"; dropped (not sent in time) {_percent(candidate.dropped_rate)}"
    checks.append(GateCheck("error_rate", error_ok, detail))

    differences = _parameter_differences(baseline, candidate)
    if require_same_parameters:
        checks.append(
            GateCheck(
                "same_parameters",
                not differences,
                "; ".join(differences) + " (rerun with the same flags, or pass --allow-parameter-change)"
                if differences
                else "same paths, concurrency and load model",
            )
        )
    elif differences:
        notes.append("parameters differ: " + "; ".join(differences))

    if baseline.throughput_rps and candidate.throughput_rps is not None:
        notes.append(
            f"throughput {baseline.throughput_rps:.1f} -> {candidate.throughput_rps:.1f} req/s "
            f"({(candidate.throughput_rps / baseline.throughput_rps - 1) * 100:+.1f}%)"
        )
    if baseline.p99_ms is not None and candidate.p99_ms is not None:
        notes.append(f"p99 {baseline.p99_ms:.2f} ms -> {candidate.p99_ms:.2f} ms")
    if candidate.slo_target_ms is not None and candidate.p95_ms > candidate.slo_target_ms:
        notes.append(f"candidate p95 is above its own SLO target of {candidate.slo_target_ms:g} ms")
    notes.append(
        "not in a load-test report: the queue backlog must be back to normal within 15 minutes "
        "(alert OmniZapQueueBacklogGrowing, omnizap_queue_depth)"
    )
    return GateVerdict(
        passed=all(check.passed for check in checks),
        checks=checks,
        notes=notes,
        baseline=baseline,
        candidate=candidate,
        max_p95_regression=max_p95_regression,
        max_error_rate=max_error_rate,
    )


def _parameter_differences(baseline: ReportFigures, candidate: ReportFigures) -> list[str]:
    differences = []
    for name in ("paths", "concurrency", "mode", "rate_rps"):
        before = baseline.parameters.get(name)
        after = candidate.parameters.get(name)
        if before is not None and after is not None and before != after:
            differences.append(f"{name} {before!r} vs {after!r}")
    before_duration, after_duration = baseline.duration_seconds, candidate.duration_seconds
    longest = max(before_duration or 0.0, after_duration or 0.0)
    if (
        before_duration
        and after_duration
        and abs(after_duration - before_duration) > DURATION_TOLERANCE * longest
    ):
        differences.append(f"duration {before_duration:g} s vs {after_duration:g} s")
    return differences


def format_verdict(verdict: GateVerdict) -> str:
    """A human-readable verdict: one line per check with its numbers, then notes."""
    lines = [f"rollout gate: {'PASS' if verdict.passed else 'FAIL'}"]
    width = max(len(check.name) for check in verdict.checks)
    for check in verdict.checks:
        lines.append(f"  {'ok  ' if check.passed else 'FAIL'}  {check.name.ljust(width)}  {check.detail}")
    if not verdict.passed:
        reasons = ", ".join(check.name for check in verdict.failed_checks)
        lines.append(f"  do not promote: failed {reasons}")
    for note in verdict.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)
