"""The curation settings as one immutable value the pure planner can take (no Settings import there)."""

from __future__ import annotations

from dataclasses import dataclass

from omnizap.config import Settings

LEASE_NAME = "auto_theme_packs"


@dataclass(frozen=True)
class CurationPolicy:
    owner_jid: str = "omnizap-auto"
    publisher: str = "OmniZap Auto"
    visibility: str = "public"
    target_size: int = 30
    min_group_size: int = 12
    min_pack_items: int = 12
    ready_min_items: int = 20
    max_additions: int = 300
    max_removals: int = 120
    max_packs_per_theme: int = 10
    global_pack_limit: int = 300
    max_scan_assets: int = 0
    dedupe_similarity: float = 0.985
    nsfw_threshold: float = 0.7
    nsfw_suggestive_threshold: float = 0.4
    min_asset_edge: int = 192
    min_asset_area: int = 36_864
    min_asset_bytes: int = 6_144
    max_blurry_score: float = 0.82
    max_low_quality_score: float = 0.82
    entropy_threshold: float = 2.5
    entropy_weight: float = 0.09
    ambiguous_penalty: float = 0.06
    margin_bonus_weight: float = 0.12
    quality_weights: tuple[float, float, float, float] = (0.34, 0.24, 0.18, 0.24)
    min_candidate_score: float = 0.45
    centroid_margin: float = 0.0
    lease_seconds: int = 120

    @property
    def sensitive_threshold(self) -> float:
        """nsfw_score from which a sticker is sensitive: the original's NSFW branch starts at the
        lower of its two thresholds (§2.3), so a suggestive sticker never lands in a safe pack."""
        return min(self.nsfw_threshold, self.nsfw_suggestive_threshold)

    @classmethod
    def from_settings(cls, settings: Settings, *, pack_item_limit: int | None = None) -> CurationPolicy:
        item_limit = pack_item_limit or settings.sticker_pack_max_items
        target = min(settings.sticker_auto_pack_by_tags_target_size, item_limit)
        min_items = min(settings.sticker_auto_pack_by_tags_hard_min_pack_items, target)
        return cls(
            owner_jid=settings.sticker_auto_pack_owner_jid,
            publisher=settings.sticker_auto_pack_by_tags_publisher,
            visibility=settings.sticker_auto_pack_by_tags_visibility,
            target_size=target,
            # A volume never starts smaller than the size under which rebuild would retire it.
            min_group_size=max(
                min(settings.sticker_auto_pack_by_tags_hard_min_group_size, target), min_items
            ),
            min_pack_items=min_items,
            # As the original: ready needs at least the hard minimum and at most a full volume.
            ready_min_items=max(min_items, min(target, settings.sticker_auto_pack_by_tags_ready_min_items)),
            max_additions=settings.sticker_auto_pack_by_tags_max_additions_per_cycle,
            max_removals=settings.sticker_auto_pack_by_tags_max_removals_per_cycle,
            max_packs_per_theme=settings.sticker_auto_pack_by_tags_max_packs_per_theme,
            global_pack_limit=settings.sticker_auto_pack_by_tags_global_pack_limit,
            max_scan_assets=settings.sticker_auto_pack_by_tags_max_scan_assets,
            dedupe_similarity=settings.sticker_auto_pack_by_tags_dedupe_similarity_threshold,
            nsfw_threshold=settings.sticker_auto_pack_by_tags_nsfw_threshold,
            nsfw_suggestive_threshold=settings.sticker_auto_pack_by_tags_nsfw_suggestive_threshold,
            min_asset_edge=settings.sticker_auto_pack_by_tags_min_asset_edge,
            min_asset_area=settings.sticker_auto_pack_by_tags_min_asset_area,
            min_asset_bytes=settings.sticker_auto_pack_by_tags_min_asset_bytes,
            max_blurry_score=settings.sticker_auto_pack_by_tags_max_blurry_score,
            max_low_quality_score=settings.sticker_auto_pack_by_tags_max_low_quality_score,
            entropy_threshold=settings.sticker_auto_pack_by_tags_entropy_threshold,
            entropy_weight=settings.sticker_auto_pack_by_tags_entropy_weight,
            ambiguous_penalty=settings.sticker_auto_pack_by_tags_ambiguous_flag_penalty,
            margin_bonus_weight=settings.sticker_auto_pack_by_tags_margin_bonus_weight,
            quality_weights=(
                settings.sticker_auto_pack_by_tags_asset_quality_w1,
                settings.sticker_auto_pack_by_tags_asset_quality_w2,
                settings.sticker_auto_pack_by_tags_asset_quality_w3,
                settings.sticker_auto_pack_by_tags_asset_quality_w4,
            ),
            min_candidate_score=settings.sticker_auto_pack_by_tags_min_candidate_score,
            centroid_margin=settings.sticker_auto_pack_by_tags_centroid_margin,
            lease_seconds=settings.sticker_auto_pack_by_tags_lease_seconds,
        )
