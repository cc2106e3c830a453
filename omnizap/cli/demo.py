"""`omnizap demo seed`: fill the database with a realistic demo catalog (see docs/demo.md).

A progress bar on stderr while it works (like `omnizap sticker import`), a summary on stdout at the
end (`--json` for a machine-readable one). Ctrl-C stops between transactions, reports what was
written, and exits with 130.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from omnizap.catalog.demo.plan import MAX_PACKS, MIN_STICKERS, WHATSAPP_MAX_STICKERS
from omnizap.catalog.demo.seeder import DemoSeeder, ProgressCallback, SeedOptions, SeedReport
from omnizap.cli.common import AppContext, pass_app

INTERRUPTED_EXIT_CODE = 130  # the shell's code for "stopped by SIGINT"
DEFAULT_JOBS = max(1, min(os.cpu_count() or 1, 4))


def _check_packs(_ctx: click.Context, _param: click.Parameter, value: int) -> int:
    if value < 1:
        raise click.BadParameter(f"give at least 1 pack, got {value}.")
    if value > MAX_PACKS:
        raise click.BadParameter(
            f"at most {MAX_PACKS:,} packs per run, got {value:,}. For a bigger catalog run the command "
            "again with another --seed (each seed has its own owners)."
        )
    return value


def _check_stickers(_ctx: click.Context, _param: click.Parameter, value: int | None) -> int | None:
    if value is not None and not MIN_STICKERS <= value <= WHATSAPP_MAX_STICKERS:
        raise click.BadParameter(
            f"a WhatsApp pack holds {MIN_STICKERS} to {WHATSAPP_MAX_STICKERS} stickers, got {value}; "
            f"give a number from {MIN_STICKERS} to {WHATSAPP_MAX_STICKERS}."
        )
    return value


@click.group("demo")
def demo() -> None:
    """Generate a realistic demo catalog: stickers, packs, owners and engagement history."""


@demo.command("seed")
@click.option(
    "--packs", type=int, required=True, callback=_check_packs, help=f"Packs to make (1–{MAX_PACKS:,})."
)
@click.option(
    "--stickers-per-pack",
    "max_stickers",
    type=int,
    default=None,
    callback=_check_stickers,
    help="Largest pack (3–30, default 30 or STICKER_PACK_MAX_ITEMS if lower). Sizes vary from 3 up to it; "
    "about 8% of the packs are full.",
)
@click.option("--seed", "seed_value", type=int, default=1, show_default=True, help="Same seed, same catalog.")
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already has any pack.")
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    default=DEFAULT_JOBS,
    show_default=True,
    help="Processes converting the sticker pool.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@pass_app
def seed(
    app: AppContext,
    packs: int,
    max_stickers: int | None,
    seed_value: int,
    if_empty: bool,
    jobs: int,
    as_json: bool,
) -> None:
    """Make a demo catalog of --packs packs from generated stickers.

    About 75% public, 15% unlisted, 10% private; about 12% animated (a pack is never mixed); created
    over the past 180 days; engagement counters and 14 days of interaction events with a long tail
    and a few trending packs. Stickers go through the normal import pipeline.
    """
    runtime = app.runtime
    options = SeedOptions(packs=packs, max_stickers=max_stickers, seed=seed_value, jobs=jobs)
    with _progress() as progress:
        seeder = DemoSeeder(runtime.database, runtime.storage, runtime.settings, progress=progress)
        if if_empty:
            existing = seeder.existing_pack_count()
            if existing:
                _skipped(existing, as_json)
                return
        seeder.validate(options)  # refuse settings-dependent problems before any work
        report = seeder.seed(options)
    _print_summary(report, as_json)
    if report.interrupted:
        raise SystemExit(INTERRUPTED_EXIT_CODE)


def _skipped(existing: int, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"skipped": True, "existing_packs": existing}))
        return
    noun = "pack" if existing == 1 else "packs"
    click.echo(
        f"demo seed skipped: the database already has {existing:,} {noun} and --if-empty leaves it alone "
        "(run without --if-empty to add demo packs anyway)."
    )


@contextmanager
def _progress() -> Iterator[ProgressCallback]:
    """A bar per phase (stickers, then packs) on stderr; yields the seeder's progress callback."""
    columns = (
        TextColumn("[bold]{task.description:<8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    console = Console(stderr=True)
    # Not a terminal (CI logs, pipes): no bar at all, the summary says everything.
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        tasks: dict[str, TaskID] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=total)
            progress.update(tasks[phase], completed=done, total=total)

        yield update


def _print_summary(report: SeedReport, as_json: bool) -> None:
    summary = report.to_dict()
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
        return
    by_visibility: dict[str, Any] = summary["packs_by_visibility"]
    lines = []
    if report.interrupted:
        lines.append(
            f"interrupted after {report.packs_written:,} of {report.packs_planned:,} packs in "
            f"{report.elapsed_seconds:.1f} s: every pack written is complete (stickers, items, outbox "
            "event); the others were not started."
        )
    else:
        lines.append(
            f"demo catalog: {report.packs_written:,} packs in {report.elapsed_seconds:.1f} s "
            f"(seed {report.seed})"
        )
    lines += [
        f"  packs       {report.packs_written:,}: public {by_visibility['public']:,}, unlisted "
        f"{by_visibility['unlisted']:,}, private {by_visibility['private']:,}; {report.animated_packs:,} "
        f"animated, {report.complete_packs:,} complete ({report.complete_size} stickers)",
        f"  stickers    {summary['stickers']:,} distinct ({report.stickers_created:,} new, "
        f"{report.stickers_reused:,} already stored), {report.pack_items:,} pack items",
        f"  owners      {summary['owners']:,}",
        f"  engagement  {report.engagement_rows:,} packs with counters, {report.interaction_events:,} "
        f"interaction events in the last 14 days, {report.trending_packs:,} trending",
        f"  time        stickers {report.sticker_seconds:.1f} s, packs and engagement "
        f"{report.pack_seconds:.1f} s",
    ]
    click.echo("\n".join(lines))
