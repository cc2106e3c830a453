"""`omnizap rollout gate`: approve or refuse a rollout step from two load-test reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from omnizap.platform.rollout import (
    DEFAULT_MAX_ERROR_RATE,
    DEFAULT_MAX_P95_REGRESSION,
    ReportError,
    evaluate_rollout_gate,
    format_verdict,
    read_report,
)

EXIT_PASS, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2


@click.group("rollout")
def rollout() -> None:
    """Rollout gates comparing load-test reports (see docs/loadtest.md)."""


@rollout.command("gate")
@click.option(
    "--baseline",
    required=True,
    type=click.Path(path_type=Path),
    help="Report of the run before the change (omnizap loadtest --out).",
)
@click.option(
    "--candidate",
    required=True,
    type=click.Path(path_type=Path),
    help="Report of the same run after the change.",
)
@click.option(
    "--max-p95-regression",
    type=click.FloatRange(min=0, max=10),
    default=DEFAULT_MAX_P95_REGRESSION,
    show_default=True,
    help="Largest allowed p95 increase as a fraction (0.10 = 10%).",
)
@click.option(
    "--max-error-rate",
    type=click.FloatRange(min=0, max=1),
    default=DEFAULT_MAX_ERROR_RATE,
    show_default=True,
    help="Largest allowed candidate error rate as a fraction (0.02 = 2%).",
)
@click.option(
    "--allow-parameter-change",
    is_flag=True,
    help="Compare reports made with different paths, concurrency or load model.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
def gate(
    baseline: Path,
    candidate: Path,
    max_p95_regression: float,
    max_error_rate: float,
    allow_parameter_change: bool,
    as_json: bool,
) -> None:
    """Pass when the candidate's p95 is at most 10% worse than the baseline's and its error rate
    is at most 2% (the SLO document's rule). Exit code: 0 pass, 1 fail, 2 unusable input."""
    try:
        baseline_figures = read_report(baseline)
        candidate_figures = read_report(candidate)
    except ReportError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(EXIT_BAD_INPUT)
    verdict = evaluate_rollout_gate(
        baseline_figures,
        candidate_figures,
        max_p95_regression=max_p95_regression,
        max_error_rate=max_error_rate,
        require_same_parameters=not allow_parameter_change,
    )
    if as_json:
        click.echo(json.dumps(verdict.as_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(format_verdict(verdict))
    sys.exit(EXIT_PASS if verdict.passed else EXIT_FAIL)
