"""How a listed pack appears in list bodies (http §2.2): `pack_entries` turns index records into
entries with their signals and classification facts, `by_ranking` is the ranking order key."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from omnizap.catalog import repository as repo
from omnizap.catalog.classification import empty_facts
from omnizap.catalog.derive import facts_from_scores, signals_from_scores
from omnizap.catalog.index import PackRecord
from omnizap.catalog.shapes import Links, pack_summary, with_classification
from omnizap.platform.db import Database


def by_ranking(record: PackRecord) -> tuple[float, dt.datetime, str]:
    return (record.ranking_score, record.updated_at, record.id)


def pack_entries(database: Database, links: Links, records: Sequence[PackRecord]) -> list[dict[str, Any]]:
    """List entries (http §2.2) for records, with signals and facts from the snapshot."""
    wanted = [record.id for record in records if record.live is None]
    scores: dict[str, Any] = {}
    if wanted:
        with database.read() as connection:
            rows = repo.snapshot_rows(connection, wanted, with_scores=True)
        scores = {pack_id: row.get("scores_json") for pack_id, row in rows.items()}
    entries = []
    for record in records:
        if record.live is not None:
            signals: dict[str, Any] | None = record.live.signals
            facts = record.live.facts
        else:
            signals = signals_from_scores(scores.get(record.id))
            facts = facts_from_scores(scores.get(record.id)) or empty_facts(record.sticker_count)
        summary = pack_summary(
            links,
            pack_id=record.id,
            pack_key=record.pack_key,
            name=record.name,
            publisher=record.publisher,
            description=record.description,
            visibility=record.visibility,
            status=record.status,
            sticker_count=record.sticker_count,
            cover_sticker_id=record.cover_sticker_id,
            created_at=record.created_at,
            updated_at=record.updated_at,
            counters={
                "open_count": record.open_count,
                "like_count": record.like_count,
                "dislike_count": record.dislike_count,
                "updated_at": record.engagement_updated_at,
            },
            signals=signals,
            manual_tags=record.manual_tags,
        )
        entries.append(
            with_classification(summary, facts.summary(record.manual_tags), record.tags, record.nsfw_level)
        )
    return entries
