"""`omnizap intel curate` and `omnizap intel rebuild`: one theme curation or rebuild cycle, now.

The commands are defined here and attached to the `intel` group (omnizap/cli/intelligence.py).
Each runs the same cycle as the worker task (`curation_cycle`, `rebuild_cycle`), under the same
`auto_theme_packs` lease, and prints a summary; `--dry-run` prints what the cycle would change
and writes nothing; `--json` prints the summary (and with --dry-run the plan) as one JSON object.
Exit status: 0 when the cycle ran (or had nothing to do), 2 when the other cycle held the lease.
"""

from __future__ import annotations

from typing import Any

import click

from omnizap.cli.common import AppContext, echo_json, fail, pass_app
from omnizap.intelligence.curation.applier import LeaseLost
from omnizap.intelligence.curation.cycle import CycleKind, run_cycle

_SUMMARY_FIELDS = (
    ("scanned", "rows read"),
    ("candidates", "unpacked shareable candidates"),
    ("accepted", "candidates that fit"),
    ("added", "stickers added"),
    ("removed", "misfits removed"),
    ("released", "stickers released"),
    ("packs_created", "packs created"),
    ("packs_updated", "packs updated"),
    ("packs_retired", "packs retired"),
)
_PLANNED_FIELDS = (
    ("planned_additions", "stickers to add"),
    ("planned_removals", "misfits to remove"),
    ("planned_new_packs", "packs to create"),
    ("planned_pack_edits", "packs to edit"),
    ("planned_retirements", "packs to retire"),
)


def _print_plan(plan: dict[str, Any]) -> None:
    for new in plan["new_packs"]:
        click.echo(f"  create  {new['name']}  ({len(new['stickers'])} stickers)")
    for edit in plan["edits"]:
        parts = []
        if edit["add"]:
            parts.append(f"+{len(edit['add'])}")
        if edit["remove"]:
            reasons: dict[str, int] = {}
            for removal in edit["remove"]:
                reasons[removal["reason"]] = reasons.get(removal["reason"], 0) + 1
            parts.append("-" + ",".join(f"{count} {reason}" for reason, count in sorted(reasons.items())))
        if edit["rename"]:
            parts.append(f"rename to {edit['rename']!r}")
        parts.append(f"-> {edit['pack_status']}")
        click.echo(
            f"  edit    {edit['theme_key']} vol. {edit['volume']} ({edit['pack_id']}): {' '.join(parts)}"
        )
    for retired in plan["retirements"]:
        click.echo(
            f"  retire  {retired['theme_key']} vol. {retired['volume']} ({retired['pack_id']}): "
            f"{retired['reason']}, releases {retired['released']} stickers"
        )


def _print_summary(summary: dict[str, Any]) -> None:
    click.echo(f"{summary['cycle']} cycle: {summary['status']} in {summary['duration_ms']:.0f} ms")
    if summary["status"] == "busy":
        click.echo(f"  the other cycle holds the lease ({summary.get('lease_holder')}); nothing changed")
        return
    if summary["status"] == "disabled":
        click.echo("  disabled by STICKER_AUTO_PACK_BY_TAGS_(REBUILD_)ENABLED")
        return
    fields = _PLANNED_FIELDS if summary["dry_run"] else _SUMMARY_FIELDS
    for key, label in fields:
        if key in summary:
            click.echo(f"  {label}: {summary[key]}")
    if summary.get("removed_by_reason"):
        shown = ", ".join(f"{reason} {count}" for reason, count in summary["removed_by_reason"].items())
        click.echo(f"  removed by reason: {shown}")
    if summary.get("skipped"):
        shown = ", ".join(f"{reason} {count}" for reason, count in summary["skipped"].items())
        click.echo(f"  left out: {shown}")


def _run(app: AppContext, kind: CycleKind, dry_run: bool, as_json: bool) -> None:
    runtime = app.runtime
    try:
        summary = run_cycle(kind, database=runtime.database, settings=runtime.settings, dry_run=dry_run)
    except LeaseLost as exc:
        fail(f"{exc}; what was written before stays consistent, run the command again")
    if as_json:
        echo_json(summary)
    else:
        if dry_run:
            click.echo("would change (dry run, nothing written):")
            _print_plan(summary["plan"])
        _print_summary(summary)
    if summary["status"] == "busy":
        raise SystemExit(2)


_dry_run = click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
_json = click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")


@click.command("curate")
@_dry_run
@_json
@pass_app
def curate(app: AppContext, dry_run: bool, as_json: bool) -> None:
    """Fill auto theme packs from classified, unpacked, shareable stickers (one curation cycle)."""
    _run(app, "curation", dry_run, as_json)


@click.command("rebuild")
@_dry_run
@_json
@pass_app
def rebuild(app: AppContext, dry_run: bool, as_json: bool) -> None:
    """Remove misfits from auto theme packs and retire undersized ones (one rebuild cycle)."""
    _run(app, "rebuild", dry_run, as_json)
