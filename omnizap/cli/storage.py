"""`omnizap storage`: the object store next to local disk — status, backfill, verify, signed links.

Reports are one JSON object on stdout; progress bars go to stderr (off with --no-progress or when
stderr is not a terminal). Exit code 1 when something needs the operator (failed uploads, missing
or corrupt objects or files); configuration problems are one `error:` line.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from omnizap.cli.common import AppContext, echo_json, fail, pass_app
from omnizap.delivery.links import MAX_TTL_SECONDS, MIN_TTL_SECONDS, SignedLinks
from omnizap.delivery.objects import REDIRECT_FLAG
from omnizap.delivery.sync import AssetFile, ObjectSync
from omnizap.platform.storage import (
    ObjectStorageConfigError,
    S3Storage,
    StorageError,
    StoreUnavailable,
    object_storage,
)


@click.group("storage")
def storage() -> None:
    """Object storage (S3-compatible): status, backfill and verify; signed sticker links."""


def _store(app: AppContext) -> S3Storage:
    try:
        store = object_storage(app.runtime.settings)
    except ObjectStorageConfigError as exc:
        fail(str(exc))
    if store is None:
        fail(
            "object storage is off: set STICKER_OBJECT_STORAGE_ENABLED=true, STICKER_OBJECT_STORAGE_BUCKET "
            "and (for a non-AWS store) STICKER_OBJECT_STORAGE_ENDPOINT"
        )
    return store


def _sync(app: AppContext, store: S3Storage, workers: int = 1) -> ObjectSync:
    runtime = app.runtime
    return ObjectSync(runtime.database, runtime.storage, store, workers=workers)


@contextlib.contextmanager
def _progress(label: str, total: int, enabled: bool) -> Iterator[Callable[[AssetFile, str], None]]:
    console = Console(file=sys.stderr)
    if not enabled or not console.is_terminal:
        yield lambda _asset, _outcome: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(label, total=total)
        yield lambda _asset, _outcome: progress.advance(task)


@storage.command("status")
@pass_app
def status(app: AppContext) -> None:
    """Configuration, whether the store answers, how many stickers are uploaded, and the flag."""
    store = _store(app)
    config = store.config
    report: dict[str, object] = {
        "endpoint": config.endpoint or "AWS S3",
        "bucket": config.bucket,
        "region": config.region,
        "key_prefix": config.key_prefix,
        "signed_urls": config.signed_urls,
        "signed_url_ttl_seconds": config.signed_url_ttl_seconds,
        "cdn_base_url": config.cdn_base_url or None,
    }
    try:
        store.probe()
        report["reachable"] = True
    except StorageError as exc:
        report["reachable"], report["error"] = False, str(exc)
    report.update(_sync(app, store).status())
    decision = app.runtime.flags.decide(REDIRECT_FLAG)
    report["flag"] = {
        "name": REDIRECT_FLAG,
        "source": decision.source,
        "rollout_percent": decision.rollout_percent,
        "on_for_everyone": decision.enabled and decision.rollout_percent in (None, 100),
    }
    echo_json(report)
    if not report["reachable"]:
        raise SystemExit(1)


@storage.command("backfill")
@click.option("--batch-size", default=200, show_default=True, type=click.IntRange(1, 5000))
@click.option("--limit", default=None, type=click.IntRange(1), help="Stop after this many stickers.")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(1, 32), help="Parallel uploads.")
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr.")
@pass_app
def backfill(app: AppContext, batch_size: int, limit: int | None, workers: int, progress: bool) -> None:
    """Upload every sticker file not yet in the object store, verifying hashes before and after.

    Resumable: each sticker is recorded as soon as its upload is verified, so after an interruption
    (Ctrl-C, crash, store outage) run it again and it continues with the rest. Local files are
    never changed or removed."""
    store = _store(app)
    sync = _sync(app, store, workers)
    pending = sync.pending_for_backfill()
    total = pending if limit is None else min(limit, pending)
    try:
        with _progress("uploading", total, progress) as advance:
            report = sync.backfill(batch_size=batch_size, limit=limit, on_item=advance)
    except StoreUnavailable as exc:
        fail(f"{exc}; what was uploaded so far is recorded: run the backfill again when the store is back")
    except KeyboardInterrupt:
        fail("interrupted; what was uploaded so far is recorded: run the backfill again to continue", 130)
    echo_json({"pending_before": pending, **report.to_dict()})
    if report.has_problems:
        raise SystemExit(1)


@storage.command("verify")
@click.option("--deep", is_flag=True, help="Download every object and hash it (slow; default: HEAD).")
@click.option(
    "--repair",
    is_flag=True,
    help="Upload missing or corrupt objects again from disk; restore lost local files from the store.",
)
@click.option("--orphans", is_flag=True, help="Also list objects no sticker refers to (never deleted).")
@click.option("--limit", default=None, type=click.IntRange(1), help="Check only this many stickers.")
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr.")
@pass_app
def verify(
    app: AppContext, deep: bool, repair: bool, orphans: bool, limit: int | None, progress: bool
) -> None:
    """Report stickers whose object is missing or corrupt (or whose local file is)."""
    store = _store(app)
    sync = _sync(app, store)
    total = sync.status()["assets"]
    try:
        with _progress("verifying", total if limit is None else min(total, limit), progress) as advance:
            report = sync.verify(deep=deep, repair=repair, limit=limit, on_item=advance)
            result = report.to_dict()
            if orphans:
                found = sync.orphans()
                result["orphans"] = len(found)
                result["orphan_keys"] = found[:100]
    except StoreUnavailable as exc:
        fail(str(exc))
    echo_json(result)
    if report.has_problems:
        raise SystemExit(1)


@storage.command("sign-url")
@click.argument("pack_key")
@click.argument("sticker_id")
@click.option(
    "--ttl",
    "ttl_seconds",
    default=None,
    type=click.IntRange(MIN_TTL_SECONDS, MAX_TTL_SECONDS),
    help="Seconds the link works (default STICKER_ASSET_SIGNED_LINK_TTL_SECONDS).",
)
@pass_app
def sign_url(app: AppContext, pack_key: str, sticker_id: str, ttl_seconds: int | None) -> None:
    """Print a link to one sticker that works until it expires, even if the pack is private."""
    settings = app.runtime.settings
    links = SignedLinks(settings.sticker_asset_url_signing_secret)
    link = links.sign(pack_key, sticker_id, ttl_seconds or settings.sticker_asset_signed_link_ttl_seconds)
    api = "/" + settings.sticker_api_base_path.strip("/")
    origin = settings.site_origin.rstrip("/")
    url = f"{origin}{api}/{link.pack_key}/stickers/{link.sticker_id}.webp?{link.query()}"
    echo_json({"url": url, "expires": link.expires})
