"""The rollout gate: the SLO document's rule, its numbers in the verdict, and hostile report files."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from omnizap.cli.main import cli
from omnizap.platform.rollout import (
    ReportError,
    evaluate_rollout_gate,
    figures_from_report,
    format_verdict,
    read_report,
)


def make_report(p95: float = 100.0, error_rate: float = 0.0, **changes: Any) -> dict[str, Any]:
    """A report shaped like `omnizap loadtest` output."""
    report: dict[str, Any] = {
        "started_at": "2026-11-22T10:00:00.000Z",
        "ended_at": "2026-11-22T10:02:00.000Z",
        "base_url": "http://127.0.0.1:9102",
        "mode": "closed",
        "duration_seconds": 120.0,
        "concurrency": 200,
        "timeout_ms": 12000,
        "paths": ["/api/sticker-packs?limit=24&offset=0&sort=popular", "/api/sticker-packs/stats"],
        "requests_total": 500_000,
        "requests_success": 500_000,
        "requests_error": 0,
        "error_rate": error_rate,
        "client_errors": 0,
        "client_error_rate": 0.0,
        "throughput_rps": 4166.667,
        "latency_ms": {"p50": p95 / 3, "p90": p95 * 0.9, "p95": p95, "p99": p95 * 2, "max": p95 * 5},
        "by_status": {"200": 500_000},
        "slo": {"target_ms": 750, "p95_within_target": True},
        "sample_errors": [],
    }
    report.update(changes)
    return report


def gate(baseline: dict[str, Any], candidate: dict[str, Any], **options: Any):
    return evaluate_rollout_gate(
        figures_from_report(baseline, "baseline"), figures_from_report(candidate, "candidate"), **options
    )


def check(verdict: Any, name: str) -> Any:
    return next(item for item in verdict.checks if item.name == name)


# --- the rule ---------------------------------------------------------------------------------------


def test_p95_up_to_ten_percent_worse_and_errors_up_to_two_percent_pass():
    verdict = gate(make_report(p95=100.0), make_report(p95=110.0, error_rate=0.02))
    assert verdict.passed
    assert all(item.passed for item in verdict.checks)


def test_p95_more_than_ten_percent_worse_fails_and_says_by_how_much():
    verdict = gate(make_report(p95=100.0), make_report(p95=110.5))
    assert not verdict.passed
    p95 = check(verdict, "p95_regression")
    assert not p95.passed
    assert "100.00 ms -> 110.50 ms (+10.5%)" in p95.detail
    assert "110.00 ms" in p95.detail
    assert check(verdict, "error_rate").passed


def test_error_rate_above_two_percent_fails_even_when_faster():
    verdict = gate(make_report(p95=100.0), make_report(p95=50.0, error_rate=0.0201))
    assert not verdict.passed
    assert not check(verdict, "error_rate").passed
    assert check(verdict, "p95_regression").passed
    assert "2.01%" in check(verdict, "error_rate").detail


def test_thresholds_can_be_changed():
    baseline, candidate = make_report(p95=100.0), make_report(p95=119.0, error_rate=0.04)
    assert not gate(baseline, candidate).passed
    assert gate(baseline, candidate, max_p95_regression=0.2, max_error_rate=0.05).passed


def test_dropped_arrivals_of_an_open_model_run_count_against_the_error_budget():
    candidate = make_report(mode="open", open_model={"rate_rps": 500, "dropped_rate": 0.05})
    baseline = make_report(mode="open", open_model={"rate_rps": 500, "dropped_rate": 0.0})
    verdict = gate(baseline, candidate)
    assert not check(verdict, "error_rate").passed
    assert "dropped" in check(verdict, "error_rate").detail


def test_reports_of_different_runs_are_not_compared_unless_allowed():
    baseline = make_report()
    candidate = make_report(concurrency=40, paths=["/api/sticker-packs"])
    verdict = gate(baseline, candidate)
    assert not verdict.passed
    assert "concurrency 200 vs 40" in check(verdict, "same_parameters").detail
    relaxed = gate(baseline, candidate, require_same_parameters=False)
    assert relaxed.passed
    assert any("parameters differ" in note for note in relaxed.notes)


def test_a_much_shorter_window_is_a_different_run():
    verdict = gate(make_report(duration_seconds=120.0), make_report(duration_seconds=30.0))
    assert not check(verdict, "same_parameters").passed


def test_an_empty_report_cannot_pass():
    verdict = gate(make_report(), make_report(requests_total=0, error_rate=1.0))
    assert not verdict.passed
    assert not check(verdict, "measured").passed


def test_a_zero_baseline_p95_only_passes_a_zero_candidate():
    assert gate(make_report(p95=0.0), make_report(p95=0.0)).passed
    assert not gate(make_report(p95=0.0), make_report(p95=0.01)).passed


@given(
    baseline_p95=st.floats(0.01, 10_000, allow_nan=False),
    ratio=st.floats(0, 3, allow_nan=False),
    error_rate=st.floats(0, 1, allow_nan=False),
)
def test_verdict_matches_the_rule_for_any_numbers(baseline_p95: float, ratio: float, error_rate: float):
    candidate_p95 = baseline_p95 * ratio
    verdict = gate(make_report(p95=baseline_p95), make_report(p95=candidate_p95, error_rate=error_rate))
    expected = candidate_p95 <= baseline_p95 * 1.10 + 1e-9 and error_rate <= 0.02
    assert verdict.passed == expected


def test_the_verdict_text_names_the_failed_checks_and_the_backlog_condition():
    text = format_verdict(gate(make_report(p95=100.0), make_report(p95=200.0)))
    assert text.startswith("rollout gate: FAIL")
    assert "do not promote: failed p95_regression" in text
    assert "15 minutes" in text


def test_gate_refuses_nonsense_thresholds():
    with pytest.raises(ValueError, match="max_p95_regression"):
        gate(make_report(), make_report(), max_p95_regression=-0.1)
    with pytest.raises(ValueError, match="max_error_rate"):
        gate(make_report(), make_report(), max_error_rate=2)


# --- hostile reports --------------------------------------------------------------------------------


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    report = make_report()
    holder = report
    for key in path[:-1]:
        holder = holder[key]
    del holder[path[-1]]
    return report


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    report = copy.deepcopy(make_report())
    holder = report
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = value
    return report


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "JSON object"),
        ("a string", "JSON object"),
        (_without(("requests_total",)), "'requests_total' is missing"),
        (_without(("error_rate",)), "'error_rate' is missing"),
        (_without(("latency_ms",)), "'latency_ms'"),
        (_without(("latency_ms", "p95")), "'p95' is missing"),
        (_with(("latency_ms",), [1, 2]), "'latency_ms'"),
        (_with(("latency_ms", "p95"), "fast"), "must be a number"),
        (_with(("latency_ms", "p95"), -1), ">= 0"),
        (_with(("requests_total",), True), "must be a number"),
        (_with(("requests_total",), 10.5), "whole number"),
        (_with(("error_rate",), 3), "between 0 and 1"),
        (_with(("error_rate",), None), "missing"),
    ],
)
def test_reports_missing_or_mangled_fields_are_refused_with_the_field_name(data: Any, message: str):
    with pytest.raises(ReportError, match=message):
        figures_from_report(data, "candidate.json")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"{not json", "invalid JSON at line 1"),
        (b'{"requests_total": NaN}', "NaN"),
        (b'{"requests_total": Infinity}', "Infinity"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"[1, 2, 3]", "JSON object"),
    ],
)
def test_unusable_files_are_refused(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "report.json"
    path.write_bytes(content)
    with pytest.raises(ReportError, match=message):
        read_report(path)


def test_missing_file_and_directory_are_refused(tmp_path: Path):
    with pytest.raises(ReportError, match="file not found"):
        read_report(tmp_path / "nope.json")
    with pytest.raises(ReportError, match="directory"):
        read_report(tmp_path)


# --- the CLI -----------------------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, report: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(report))
    return str(path)


def run_gate(*args: str):
    return CliRunner().invoke(cli, ["rollout", "gate", *args], catch_exceptions=False)


def test_cli_passes_with_exit_zero_and_prints_the_numbers(tmp_path: Path):
    result = run_gate(
        "--baseline", _write(tmp_path, "a.json", make_report(p95=40.0)),
        "--candidate", _write(tmp_path, "b.json", make_report(p95=42.0, error_rate=0.001)),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "rollout gate: PASS" in result.stdout
    assert "40.00 ms -> 42.00 ms (+5.0%)" in result.stdout


def test_cli_fails_with_exit_one(tmp_path: Path):
    result = run_gate(
        "--baseline", _write(tmp_path, "a.json", make_report(p95=40.0)),
        "--candidate", _write(tmp_path, "b.json", make_report(p95=60.0)),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "rollout gate: FAIL" in result.stdout


def test_cli_json_output_and_custom_thresholds(tmp_path: Path):
    result = run_gate(
        "--baseline", _write(tmp_path, "a.json", make_report(p95=40.0)),
        "--candidate", _write(tmp_path, "b.json", make_report(p95=60.0, error_rate=0.04)),
        "--max-p95-regression", "0.6", "--max-error-rate", "0.05", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)
    assert verdict["verdict"] == "PASS"
    assert verdict["max_p95_regression"] == 0.6
    assert {item["name"] for item in verdict["checks"]} == {
        "measured",
        "p95_regression",
        "error_rate",
        "same_parameters",
    }


def test_cli_bad_input_exits_two_with_a_clear_message(tmp_path: Path):
    good = _write(tmp_path, "a.json", make_report())
    broken = tmp_path / "broken.json"
    broken.write_text('{"requests_total": 3,')

    missing = run_gate("--baseline", str(tmp_path / "absent.json"), "--candidate", good)
    assert missing.exit_code == 2
    assert "absent.json: file not found" in missing.stderr

    invalid = run_gate("--baseline", good, "--candidate", str(broken))
    assert invalid.exit_code == 2
    assert "broken.json: invalid JSON" in invalid.stderr

    incomplete = run_gate(
        "--baseline", good, "--candidate", _write(tmp_path, "c.json", {"requests_total": 3})
    )
    assert incomplete.exit_code == 2
    assert "'error_rate' is missing" in incomplete.stderr


@pytest.mark.parametrize("flag", [["--max-p95-regression", "-1"], ["--max-error-rate", "1.5"]])
def test_cli_refuses_out_of_range_thresholds(tmp_path: Path, flag: list[str]):
    good = _write(tmp_path, "a.json", make_report())
    result = run_gate("--baseline", good, "--candidate", good, *flag)
    assert result.exit_code == 2
    assert "Invalid value" in result.output


def test_cli_requires_both_reports():
    result = run_gate("--baseline", "a.json")
    assert result.exit_code == 2
    assert "--candidate" in result.output
