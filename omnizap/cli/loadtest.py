"""`omnizap loadtest`: load-test the catalog with the original script's flags and report.

The engine lives in `omnizap.platform.loadtest`; this module only parses flags, shows progress on
stderr, prints the JSON report on stdout and writes it to `--out`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from omnizap.cli.common import AppContext, pass_app
from omnizap.platform.loadtest import (
    DEFAULT_MAX_ERROR_RATE,
    DEFAULT_PATHS,
    LoadTestConfig,
    Target,
    check_request_path,
    exit_code_for,
    run_load_test,
)

# The original script's minimums (pipeline §10).
MIN_DURATION_SECONDS = 5
MIN_TIMEOUT_MS = 1000
MIN_SLO_MS = 50


def parse_paths(value: str | None) -> tuple[str, ...]:
    """Comma-separated request paths; each must start with '/' (commas inside a path: %2C)."""
    if value is None:
        return DEFAULT_PATHS
    paths = tuple(part.strip() for part in value.split(",") if part.strip())
    if not paths:
        raise click.BadParameter(
            "no path given; example: --paths '/api/sticker-packs,/api/sticker-packs/stats'"
        )
    for path in paths:
        try:
            check_request_path(path)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return paths


def _check_out_path(out: Path | None) -> None:
    """Fail before a long run, not after it, when the report cannot be written."""
    if out is None:
        return
    if out.exists() and out.is_dir():
        raise click.BadParameter(f"{out} is a directory; give a file name", param_hint="--out")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise click.BadParameter(f"folder {parent} does not exist; create it first", param_hint="--out")
    if not os.access(parent, os.W_OK):
        raise click.BadParameter(f"folder {parent} is not writable", param_hint="--out")


def write_report(report: dict[str, Any], out: Path) -> None:
    """Write the report with a trailing newline, atomically: a crash never leaves half a file."""
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent if str(out.parent) else ".")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _say(message: str) -> None:
    click.echo(f"[loadtest] {message}", err=True)


@click.command("loadtest")
@click.option(
    "--base-url",
    default=None,
    help="Server to test. Default: STICKER_LOADTEST_BASE_URL (http://127.0.0.1:9102).",
)
@click.option(
    "--duration-seconds",
    type=click.FloatRange(min=MIN_DURATION_SECONDS),
    default=30.0,
    show_default=True,
    help="Length of the measuring window.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1, max=10_000),
    default=20,
    show_default=True,
    help="Connections (closed model: workers sending back-to-back).",
)
@click.option(
    "--timeout-ms",
    type=click.IntRange(min=MIN_TIMEOUT_MS),
    default=12_000,
    show_default=True,
    help="Per-request timeout; a timeout counts as an error (status 0).",
)
@click.option(
    "--slo-ms",
    type=click.IntRange(min=MIN_SLO_MS),
    default=None,
    help="p95 target in ms. Default: HTTP_SLO_TARGET_MS (750).",
)
@click.option(
    "--paths", default=None, help="Comma-separated paths. Default: the catalog's list, stats and creators."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the JSON report to this file.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True, max=1_000_000),
    default=None,
    help="Open model: send this many requests per second on a fixed schedule (latency counted "
    "from the scheduled time), instead of the closed model.",
)
@click.option(
    "--max-requests",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many requests even if the window is not over.",
)
@click.option(
    "--max-error-rate",
    type=click.FloatRange(min=0, max=1),
    default=DEFAULT_MAX_ERROR_RATE,
    show_default=True,
    help="Highest error rate (5xx + timeouts + connection errors) that still passes.",
)
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
@pass_app
def loadtest(
    app: AppContext,
    base_url: str | None,
    duration_seconds: float,
    concurrency: int,
    timeout_ms: int,
    slo_ms: int | None,
    paths: str | None,
    out: Path | None,
    rate: float | None,
    max_requests: int | None,
    max_error_rate: float,
    quiet: bool,
) -> None:
    """Load-test the catalog and print a JSON report (p50/p90/p95/p99, error rate, throughput).

    Errors are 5xx answers, timeouts and connection failures; 4xx answers are reported apart as
    client_errors. Exit code: 0 when p95 <= --slo-ms and the error rate <= --max-error-rate,
    1 when not, 2 when no request could be made.
    """
    settings = app.runtime.settings
    chosen_url = (base_url or settings.sticker_loadtest_base_url).strip()
    try:
        target = Target.parse(chosen_url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--base-url") from None
    request_paths = parse_paths(paths)
    _check_out_path(out)
    config = LoadTestConfig(
        base_url=target.url,
        paths=request_paths,
        duration_seconds=duration_seconds,
        concurrency=concurrency,
        timeout_ms=timeout_ms,
        slo_ms=slo_ms if slo_ms is not None else settings.http_slo_target_ms,
        max_error_rate=max_error_rate,
        rate=rate,
        max_requests=max_requests,
    )
    if not quiet:
        _say(f"base_url={target.url}")
        model = f" rate={rate:g}/s" if rate else ""
        _say(
            f"duration_seconds={duration_seconds:g} concurrency={concurrency}{model} "
            f"paths={','.join(request_paths)}"
        )
    report = run_load_test(config, progress=None if quiet else _progress_line)
    click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    if out is not None:
        write_report(report, out)
        if not quiet:
            _say(f"report_written={out}")
    _warn_about(report)
    sys.exit(exit_code_for(report))


def _progress_line(snapshot: dict[str, Any]) -> None:
    _say(
        f"t={snapshot['elapsed_seconds']:.0f}s requests={snapshot['requests_total']} "
        f"errors={snapshot['requests_error']}"
    )


def _warn_about(report: dict[str, Any]) -> None:
    generator = report.get("generator") or {}
    if generator.get("saturated"):
        _say(
            "warning: the load generator used a whole CPU core, so throughput_rps may be the "
            "generator's limit rather than the server's; for latency figures prefer --rate below it"
        )
    if report.get("client_error_rate", 0) > 0.02:
        _say(
            f"warning: {report['client_errors']} answers were 4xx (client errors); check --paths "
            "and --base-url"
        )
    dropped = (report.get("open_model") or {}).get("dropped", 0)
    if dropped:
        _say(f"warning: {dropped} scheduled requests were not sent in time (dropped); raise --concurrency")
    if not report.get("requests_total"):
        _say("error: no request was made")
