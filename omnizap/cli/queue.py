"""`omnizap queue`: see what waits, what failed for good, put dead letters back, clear old rows."""

from __future__ import annotations

import datetime as dt
import json
import re

import click

from omnizap.cli.common import AppContext, echo_json, fail, pass_app
from omnizap.platform.db.types import utcnow
from omnizap.platform.queue.protocol import Queue, QueueError, RetryPolicy
from omnizap.platform.queue.specs import OUTBOX, REPROCESS_QUEUE, TASK_QUEUE, QueueSpec

QUEUE_CHOICES: dict[str, QueueSpec] = {"tasks": TASK_QUEUE, "outbox": OUTBOX, "reprocess": REPROCESS_QUEUE}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_duration(text: str) -> dt.timedelta:
    """`90`, `90s`, `15m`, `12h`, `7d`, `2w` → timedelta; anything else is refused by example."""
    match = _DURATION.match(text.lower())
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration; use e.g. 90s, 15m, 12h, 7d or 2w")
    return dt.timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def _queue(app: AppContext, name: str) -> Queue:
    return Queue(
        app.runtime.database, QUEUE_CHOICES[name], retry=RetryPolicy.from_settings(app.runtime.settings)
    )


queue_option = click.option(
    "--queue",
    "queue_name",
    type=click.Choice(list(QUEUE_CHOICES)),
    default="tasks",
    show_default=True,
    help="tasks = sticker_worker_task_queue, outbox = domain_event_outbox, reprocess = reprocess queue.",
)


@click.group("queue")
def queue() -> None:
    """Inspect the task queue, the outbox and the reprocess queue, and their dead letters."""


@queue.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def status(app: AppContext, as_json: bool) -> None:
    """Rows per kind and status, the oldest waiting row, and dead letters not yet replayed."""
    report = {}
    for name in QUEUE_CHOICES:
        handle = _queue(app, name)
        oldest = handle.oldest_due()
        report[name] = {
            "table": handle.spec.table.name,
            "kinds": handle.status_counts(),
            "oldest_due_seconds": round((utcnow() - oldest).total_seconds(), 1) if oldest else None,
            "dead_letters": len(handle.dead_letters(limit=10_000)),
        }
    if as_json:
        echo_json(report)
        return
    for name, entry in report.items():
        waited = entry["oldest_due_seconds"]
        click.secho(f"{name} ({entry['table']})", bold=True)
        if not entry["kinds"]:
            click.echo("  empty")
        for kind, counts in sorted(entry["kinds"].items()):
            cells = "  ".join(
                f"{state}={counts.get(state, 0)}"
                for state in ("pending", "deferred", "processing", "failed", "completed")
            )
            click.echo(f"  {kind:<28} {cells}")
        oldest = "-" if waited is None else f"{waited:.0f} s ago"
        click.echo(f"  oldest due: {oldest}   dead letters: {entry['dead_letters']}")


@queue.group("dlq")
def dlq() -> None:
    """Dead letters: rows that failed on every attempt, with their last error."""


@dlq.command("list")
@queue_option
@click.option("--all", "include_replayed", is_flag=True, help="Include dead letters already replayed.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def dlq_list(app: AppContext, queue_name: str, include_replayed: bool, limit: int, as_json: bool) -> None:
    """List dead letters, newest first."""
    letters = _queue(app, queue_name).dead_letters(include_replayed=include_replayed, limit=limit)
    if as_json:
        echo_json(
            [
                {
                    "id": letter.id,
                    "ref_id": letter.ref_id,
                    "kind": letter.kind,
                    "attempts": letter.attempts,
                    "last_error": letter.last_error,
                    "failed_at": letter.failed_at.isoformat(),
                    "replayed_at": letter.replayed_at.isoformat() if letter.replayed_at else None,
                    "payload": letter.row.get("payload"),
                }
                for letter in letters
            ]
        )
        return
    if not letters:
        click.echo("no dead letters")
        return
    for letter in letters:
        replayed = f"  replayed {letter.replayed_at:%Y-%m-%d %H:%M}" if letter.replayed_at else ""
        error = (letter.last_error or "").splitlines()[0][:120] if letter.last_error else ""
        click.echo(
            f"{letter.id:>6}  {letter.kind:<24} row {letter.ref_id:<8} attempts {letter.attempts:<3}"
            f" failed {letter.failed_at:%Y-%m-%d %H:%M:%S}{replayed}  {error}"
        )


@dlq.command("replay")
@click.argument("ids", nargs=-1, required=True, type=int)
@queue_option
@pass_app
def dlq_replay(app: AppContext, ids: tuple[int, ...], queue_name: str) -> None:
    """Put dead letters (ids from `dlq list`) back in their queue with fresh attempts."""
    handle = _queue(app, queue_name)
    failed = False
    for letter_id in ids:
        try:
            row_id = handle.replay(letter_id)
        except QueueError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            failed = True
            continue
        click.echo(
            f"dead letter {letter_id} replayed: {handle.spec.table.name} row {row_id} is pending again"
        )
    if failed:
        raise SystemExit(1)


@queue.command("purge")
@queue_option
@click.option(
    "--older-than", default="7d", show_default=True, help="Age of completed rows to delete (e.g. 12h, 7d)."
)
@click.option("--dead-letters", is_flag=True, help="Also delete dead letters replayed before that age.")
@pass_app
def purge(app: AppContext, queue_name: str, older_than: str, dead_letters: bool) -> None:
    """Delete completed rows (never pending, running or failed ones)."""
    age = parse_duration(older_than)
    try:
        rows, letters = _queue(app, queue_name).purge(
            older_than=age, include_replayed_dead_letters=dead_letters
        )
    except QueueError as exc:
        fail(str(exc))
    click.echo(
        f"deleted {rows} completed row(s)"
        + (f" and {letters} replayed dead letter(s)" if dead_letters else "")
    )


@queue.command("enqueue")
@click.argument("task_type")
@click.option("--payload", default="{}", help="JSON object handed to the handler.")
@click.option("--priority", type=click.IntRange(1, 100), default=60, show_default=True)
@pass_app
def enqueue(app: AppContext, task_type: str, payload: str, priority: int) -> None:
    """Queue one task to run now: `omnizap queue enqueue curation_cycle`."""
    from omnizap.pipeline import task_handlers

    known = task_handlers(app.runtime.settings)
    if task_type not in known:
        fail(f"unknown task type {task_type!r}; known: {', '.join(sorted(known)) or 'none'}")
    try:
        values = json.loads(payload)
    except json.JSONDecodeError as exc:
        fail(f"--payload is not JSON ({exc.msg} at character {exc.pos}); e.g. --payload '{{\"full\": true}}'")
    if not isinstance(values, dict):
        fail("--payload must be a JSON object, e.g. '{}'")
    handle = _queue(app, "tasks")
    key = f"manual:{task_type}:{utcnow():%Y%m%d%H%M%S%f}"
    handle.enqueue(values={"task_type": task_type, "payload": values}, idempotency_key=key, priority=priority)
    click.echo(f"queued {task_type} (key {key})")
