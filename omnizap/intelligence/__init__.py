"""Sticker intelligence: classification, theme curation, rebuild of auto packs and ranking snapshots."""
