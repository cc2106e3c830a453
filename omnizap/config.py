"""Every setting of OmniZap Stickers, read from the environment (and `.env`) once, here.

Names are the original OmniZap's environment variables so an operator's runbook keeps working.
Other modules receive a `Settings` object; none of them reads `os.environ` for configuration.
"""

from __future__ import annotations

import functools
import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

UNLIMITED_WORDS = {"0", "-1", "inf", "infinity", "unlimited", "sem-limite", "none"}
SECRET_MARKERS = ("SECRET", "PASSWORD", "TOKEN", "ACCESS_KEY")


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


class Settings(BaseSettings):
    """Effective configuration. Field names are the environment variable names, lowercased."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # --- database and files -------------------------------------------------------------------
    database_url: str = Field(
        "sqlite:///./data/omnizap.db", description="sqlite:///…, postgresql://…, mysql://…"
    )
    database_pool_size: int = Field(10, ge=1, le=200)
    sticker_storage_dir: Path = Field(Path("./data/stickers"), description="Root folder of sticker files")

    # --- stickers and packs (chat §1, §5, §8) ---------------------------------------------------
    sticker_pack_max_items: int = Field(30, ge=1, le=500)
    sticker_pack_max_packs_per_owner: int | None = Field(50, description="0/-1/inf/unlimited mean no limit")
    sticker_pack_max_sticker_bytes: int = Field(2 * 1024 * 1024, ge=64 * 1024)
    sticker_ingest_max_source_bytes: int = Field(
        20 * 1024 * 1024, ge=1024, description="Largest accepted input file"
    )
    sticker_ingest_max_pixels: int = Field(40_000_000, ge=10_000, description="Decompression-bomb guard")
    sticker_ingest_max_frames: int = Field(1_000, ge=1)
    sticker_ingest_max_video_seconds: float = Field(10.0, gt=0, le=10.0)
    sticker_pack_auto_collect_enabled: bool = True
    sticker_pack_auto_pack_name: str = "pack"
    sticker_default_pack_name: str = "OmniZap Stickers"
    sticker_default_publisher: str = "OmniZap"

    # --- chat bot core (chat §2-§5, §7; docs/chat.md) --------------------------------------------
    command_prefix: str = Field("/", min_length=1, max_length=8, description="Groups may override it")
    chat_locale: Literal["pt_BR", "en"] = Field("pt_BR", description="Reply language; chats may override")
    sticker_pack_rate_max_actions: int = Field(20, ge=1, description="Commands per window, per sender")
    sticker_pack_rate_window_ms: int = Field(60_000, ge=10_000, description="Fixed window, shared in the DB")
    sticker_pack_auto_collect_notify: bool = True
    sticker_pack_preview_lines: int = Field(20, ge=5, le=100)
    sticker_pack_fallback_send_limit: int = Field(30, ge=1, le=500)
    chat_sticker_input_max_bytes: int = Field(
        1024 * 1024, ge=64 * 1024, description="Largest media /sticker accepts (the original: 1 MiB)"
    )
    chat_convert_input_max_bytes: int = Field(2 * 1024 * 1024, ge=64 * 1024, description="/toimg input")
    chat_text_sticker_pack_name: str = "PackZoeira"
    chat_media_attempts: int = Field(3, ge=1, le=10, description="Tries per media download or send")
    chat_media_retry_base_seconds: float = Field(1.0, ge=0, le=60)
    whatsapp_login_trigger: str = "iniciar"
    whatsapp_login_base_url: str = Field("", description="Login link origin; empty: SITE_ORIGIN")
    whatsapp_login_path: str = "/login/"
    whatsapp_login_link_secret: str = Field("", description="HMAC key of login links; empty: unsigned")
    whatsapp_login_link_ttl_seconds: int = Field(900, ge=60, le=86_400)
    # `omnizap serve`'s consumers of `chat_message` (docs/chat.md, bench.chat_console): people wait
    # on these, so more than one runs and an idle one looks often (SQLite/MySQL have no NOTIFY).
    chat_worker_threads: int | None = Field(
        None, ge=1, le=16, description="chat_message consumers in `omnizap serve`; unset: CPU count (1-4)"
    )
    chat_worker_poll_interval_ms: int = Field(
        250, ge=20, le=10_000, description="How often an idle chat consumer checks the queue"
    )

    # --- WhatsApp export ---
    # The original had no export, so these are new names. Links are checked when a pack is exported
    # (a wrong one refuses the export by name) rather than here, so a typo never stops the server.
    sticker_export_default_emoji: str = Field(
        "🙂", description="Emoji for stickers with none in the pack or their metadata; empty: refuse them"
    )
    sticker_export_publisher_email: str = ""
    sticker_export_publisher_website: str = ""
    sticker_export_privacy_policy_website: str = ""
    sticker_export_license_agreement_website: str = ""
    sticker_export_android_play_store_link: str = Field("", description="A play.google.com link, or empty")
    sticker_export_ios_app_store_link: str = Field("", description="An itunes.apple.com link, or empty")

    # --- web / catalog (http §15) ---------------------------------------------------------------
    metrics_host: str = "0.0.0.0"
    metrics_port: int = Field(9102, ge=1, le=65535)
    metrics_path: str = "/metrics"
    http_slo_target_ms: int = Field(750, ge=50)
    sticker_loadtest_base_url: str = Field(
        "http://127.0.0.1:9102", description="Default --base-url of `omnizap loadtest`"
    )
    site_origin: str = "http://127.0.0.1:9102"
    sticker_web_path: str = "/stickers"
    sticker_api_base_path: str = "/api/sticker-packs"
    sticker_catalog_only_classified: bool = False
    sticker_web_list_limit: int = Field(24, ge=1, le=60)
    sticker_web_list_max_limit: int = Field(60, ge=1, le=100)
    sticker_catalog_list_cache_seconds: int = Field(90, ge=1, le=900)
    sticker_web_asset_cache_seconds: int = Field(2_592_000, ge=3600, le=31_536_000)
    sticker_sitemap_max_packs: int = Field(45_000, ge=100, le=50_000)
    sticker_interaction_dedupe_window_seconds: int = Field(1800, ge=1)
    sticker_interaction_rate_limit_per_minute: int = Field(60, ge=1)

    # --- catalog ---
    # Read service of the public catalog (omnizap.catalog; docs/catalog.md). Original names where the
    # original had the knob; the ranking generation, watcher and cursor settings are new.
    whatsapp_bot_number: str = Field(
        "", description="Bot phone (10-15 digits, country code first) for `whatsapp` links; empty: none"
    )
    sticker_web_whatsapp_message_template: str = "{{command_prefix}}pack send {{pack_key}}"
    sticker_creator_verified_publishers: str = Field("", description="Comma list of verified publishers")
    sticker_pack_age_decay_days: float = Field(45.0, gt=0)
    sticker_nsfw_explicit_threshold: float = Field(0.78, ge=0, le=1)
    sticker_nsfw_suggestive_threshold: float = Field(0.4, ge=0, le=1)
    sticker_drift_sensitivity: float = Field(1.0, ge=0.5, le=2.5)
    sticker_classification_tag_min_score: float = Field(0.2, ge=0, le=1)
    pack_classification_tag_min_score: float = Field(0.18, ge=0, le=1)
    classification_max_tags: int = Field(6, ge=1, le=10)
    sticker_catalog_pack_payload_cache_seconds: int = Field(300, ge=1, le=1800)
    sticker_catalog_creator_ranking_cache_seconds: int = Field(120, ge=1, le=900)
    home_marketplace_stats_cache_seconds: int = Field(45, ge=1, le=300)
    marketplace_global_stats_cache_seconds: int = Field(45, ge=1, le=300)
    readme_summary_cache_seconds: int = Field(1800, ge=1, le=21_600)
    sticker_sitemap_cache_seconds: int = Field(180, ge=1, le=3600)
    sticker_catalog_cache_max_entries: int = Field(4096, ge=16, le=1_000_000, description="Per process")
    sticker_catalog_ranking_refresh_seconds: int = Field(60, ge=5, le=3600)
    sticker_catalog_ranking_debounce_seconds: int = Field(10, ge=1, le=600)
    sticker_catalog_ranking_retention_seconds: int = Field(
        1800, ge=60, le=86_400, description="How long a ranking generation (and a cursor) stays usable"
    )
    sticker_catalog_ranking_build_timeout_seconds: int = Field(
        300, ge=10, le=3600, description="A builder silent this long is presumed dead"
    )
    sticker_catalog_invalidation_poll_ms: int = Field(1000, ge=50, le=60_000)
    sticker_catalog_outbox_gap_seconds: int = Field(
        120, ge=1, le=3600, description="How long a missing outbox id is awaited (late commits)"
    )
    sticker_catalog_cursor_secret: str = Field("", description="Cursor HMAC key; empty: from DATABASE_URL")

    # --- interactions and delivery ---
    # New names (the original had neither a client hash nor a download cache).
    sticker_interaction_client_key_secret: str = Field(
        "", description="HMAC key for hashed client addresses; empty: derived from DATABASE_URL"
    )
    sticker_whatsapp_download_cache_max_bytes: int = Field(
        64 * 1024 * 1024, ge=0, description="Memory for built WhatsApp zips per process; 0 turns it off"
    )

    # --- accounts and sign-in (http §7.1-7.3; docs/accounts.md) ---------------------------------
    # Original names for Google and the session TTL; the OIDC_*, login-link, rate-limit and timeout
    # knobs are new. OIDC_ISSUER_URL empty means Google (https://accounts.google.com); OIDC_CLIENT_ID/
    # _SECRET fall back to the STICKER_WEB_GOOGLE_* values.
    sticker_web_google_client_id: str = Field("", description="Google OAuth client id; empty: no Google")
    sticker_web_google_client_secret: str = Field("", description="Google OAuth client secret")
    sticker_web_google_session_ttl_ms: int = Field(604_800_000, ge=300_000, description="Session lifetime")
    oidc_issuer_url: str = Field("", description="Any OpenID Connect issuer; empty: Google")
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_scopes: str = "openid email profile"
    oidc_http_timeout_seconds: float = Field(5.0, gt=0, le=60)
    sticker_web_login_link_ttl_seconds: int = Field(900, ge=60, le=7 * 86_400)
    sticker_web_sign_in_rate_limit_per_minute: int = Field(10, ge=1, le=10_000)

    # --- http server ----------------------------------------------------------------------------
    metrics_enabled: bool = Field(True, description="Serve METRICS_PATH; the catalog is served either way")
    metrics_service_name: str = Field("omnizap", description="`service` label on every HTTP series")
    http_workers: int = Field(0, ge=0, le=256, description="Worker processes of `omnizap serve`; 0 = CPUs")
    # Empty by default: no proxy is trusted, so no client (not even a local process) can pick the
    # address its rate limit and dedupe are keyed by. Behind a reverse proxy, name the proxy.
    forwarded_allow_ips: str = Field(
        "",
        description="Proxies trusted for X-Forwarded-For/-Proto: comma list of IPs/CIDRs, or *; empty: none",
    )
    http_graceful_shutdown_seconds: int = Field(30, ge=1, le=3600, description="Wait for in-flight requests")
    # --- omnizap serve: worker supervision (crash recovery) -------------------------------------
    http_worker_healthcheck_timeout_seconds: int = Field(
        30,
        ge=1,
        le=600,
        description="How long an HTTP worker may take to answer its supervisor's ping, start-up "
        "included, before it counts as hung and is replaced (uvicorn's default, 5 s, kills "
        "workers that start slowly on a busy machine)",
    )
    http_max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest request body accepted")
    http_access_log: bool = Field(True, description="One log line per request")
    http_response_cache_entries: int = Field(1024, ge=0, le=100_000, description="Serialized bodies kept")
    http_response_cache_max_bytes: int = Field(64 * 1024 * 1024, ge=0, description="Per worker process")
    sticker_data_public_path: str = Field("/data", description="route_group catalog_data_asset")
    user_profile_web_path: str = Field("/user", description="route_group catalog_user_profile")
    prometheus_multiproc_dir: Path | None = Field(
        None, description="Metric files shared by worker processes; `omnizap serve` sets it"
    )

    # --- feature flags (pipeline §8) ------------------------------------------------------------
    feature_flag_cache_ttl_ms: int = Field(30_000, ge=0)
    # FEATURE_<NAME>=1|0 from the process environment: used only for flags without a table row.
    feature_env: dict[str, bool] = Field(default_factory=lambda: read_feature_environment(os.environ))

    # --- worker pipeline and queues (pipeline §6-7) ---------------------------------------------
    sticker_worker_classification_cadence_ms: int = Field(120_000, ge=1_000)
    sticker_worker_curation_cadence_ms: int = Field(180_000, ge=1_000)
    sticker_worker_rebuild_cadence_ms: int = Field(240_000, ge=1_000)
    sticker_worker_scheduler_interval_ms: int = Field(15_000, ge=100)
    sticker_worker_pipeline_poller_interval_ms: int = Field(4_000, ge=50)
    sticker_worker_pipeline_cohort_key: str = ""
    sticker_dedicated_worker_poll_interval_ms: int = Field(2_500, ge=50, le=60_000)
    sticker_dedicated_worker_max_tasks_per_tick: int = Field(1, ge=1, le=25)
    sticker_dedicated_worker_cohort_key: str = ""
    # 60, not the original's 900: a running task's lease (and the platform leases its job holds:
    # omnizap/platform/leases.py) is renewed every third of this, so it only bounds how long a
    # crashed worker's task and leases block the next worker.
    sticker_worker_task_lock_timeout_seconds: int = Field(
        60, ge=1, le=86_400, description="Crash recovery bound of tasks and their leases (renewed while held)"
    )
    sticker_worker_retry_base_seconds: float = Field(5.0, ge=0)
    sticker_worker_retry_max_seconds: float = Field(3600.0, ge=0)
    # The original's 900 s; the consumer renews its batch's leases while it works (a third of this),
    # so like the task lock above this only bounds how long a killed consumer's events wait.
    domain_event_outbox_lock_timeout_seconds: int = Field(
        60, ge=1, le=86_400, description="Crash recovery bound of outbox events (renewed while held)"
    )
    sticker_domain_event_consumer_poller_interval_ms: int = Field(2_000, ge=50)
    sticker_domain_event_consumer_cohort_key: str = ""
    # Which processes consume (pipeline §7.1-7.2, our fixes in docs/runbook.md): `omnizap serve` runs
    # the scheduler and an inline poller; `omnizap worker NAME` runs one dedicated consumer.
    sticker_worker_pipeline_enabled: bool = Field(True, description="Scheduler + inline poller in serve")
    sticker_worker_pipeline_inline_poller_enabled: bool = True
    sticker_worker_pipeline_inline_poller_force_enabled: bool = Field(
        False, description="Inline poller consumes every type, whatever the dedicated-workers flag says"
    )
    sticker_dedicated_workers_enabled: bool = True
    sticker_dedicated_worker_force_enabled: bool = Field(
        False, description="Dedicated workers consume whatever the dedicated-workers flag says"
    )
    sticker_domain_event_consumer_enabled: bool = True
    sticker_domain_event_consumer_batch_size: int = Field(50, ge=1, le=500)
    sticker_domain_event_consumer_window_seconds: float = Field(
        10.0, ge=1, le=600, description="Events within this window start one cycle task"
    )
    sticker_worker_completed_retention_hours: float = Field(
        168.0, ge=1, description="Completed task and event rows older than this are deleted"
    )
    sticker_object_storage_sync_cadence_ms: int = Field(300_000, ge=10_000)
    sticker_score_snapshot_refresh_interval_ms: int = Field(300_000, ge=1_000)
    sticker_score_snapshot_max_age_ms: int = Field(900_000, ge=1_000, description="Freshness bound on reads")
    # --- ranking refresh (new; docs/catalog.md "Rankings and score snapshots") ---
    # Ranking generations and score snapshots are built by the `ranking_refresh` task (targeted for
    # the packs outbox events name, full on the refresh cadence); API processes only adopt them.
    # True brings back building inside every API process, for deployments that run no task poller
    # at all (then STICKER_CATALOG_RANKING_REFRESH_SECONDS/_DEBOUNCE_SECONDS pace those builds).
    sticker_catalog_ranking_build_in_api: bool = Field(
        False, description="API processes build ranking generations themselves (no task pipeline)"
    )

    # --- theme curation and rebuild (pipeline §2-§3; docs/curation.md) --------------------------
    # STICKER_AUTO_PACK_BY_TAGS_* are the original's names and defaults unless the comment says
    # otherwise; the knobs marked "new" have no counterpart in the original.
    sticker_auto_pack_by_tags_enabled: bool = Field(True, description="curation_cycle does work")
    sticker_auto_pack_by_tags_rebuild_enabled: bool = Field(True, description="rebuild_cycle does work")
    sticker_auto_pack_owner_jid: str = Field(
        "omnizap-auto", description="System owner of theme packs (original: STICKER_AUTO_PACK_OWNER_JID)"
    )
    sticker_auto_pack_by_tags_publisher: str = "OmniZap Auto"
    sticker_auto_pack_by_tags_visibility: str = Field("public", pattern="^(public|unlisted|private)$")
    sticker_auto_pack_by_tags_target_size: int = Field(30, ge=5, le=30, description="Stickers per volume")
    sticker_auto_pack_by_tags_hard_min_group_size: int = Field(12, ge=1, le=30, description="To start one")
    sticker_auto_pack_by_tags_hard_min_pack_items: int = Field(12, ge=1, le=30, description="Else retired")
    sticker_auto_pack_by_tags_ready_min_items: int = Field(20, ge=1, le=30, description="ready/published")
    sticker_auto_pack_by_tags_max_additions_per_cycle: int = Field(300, ge=0, le=100_000)
    sticker_auto_pack_by_tags_max_removals_per_cycle: int = Field(120, ge=0, le=100_000)
    # Original default 1 (one pack per theme); volumes are the point here, so 10 (its clamp's top).
    sticker_auto_pack_by_tags_max_packs_per_theme: int = Field(10, ge=1, le=1000)
    sticker_auto_pack_by_tags_global_pack_limit: int = Field(300, ge=1, le=100_000)
    sticker_auto_pack_by_tags_max_scan_assets: int = Field(0, ge=0, description="0 = every classified asset")
    sticker_auto_pack_by_tags_dedupe_similarity_threshold: float = Field(0.985, gt=0, le=1)
    sticker_auto_pack_by_tags_nsfw_threshold: float = Field(0.7, ge=0, le=1)
    sticker_auto_pack_by_tags_nsfw_suggestive_threshold: float = Field(
        0.4, ge=0, le=1, description="nsfw_score from which a sticker goes only to sensitive packs"
    )
    sticker_auto_pack_by_tags_min_asset_edge: int = Field(192, ge=0)
    sticker_auto_pack_by_tags_min_asset_area: int = Field(36_864, ge=0)
    sticker_auto_pack_by_tags_min_asset_bytes: int = Field(6_144, ge=0)
    sticker_auto_pack_by_tags_max_blurry_score: float = Field(0.82, ge=0, le=1)
    sticker_auto_pack_by_tags_max_low_quality_score: float = Field(0.82, ge=0, le=1)
    sticker_auto_pack_by_tags_entropy_threshold: float = Field(2.5, gt=0, description="entropy scale")
    sticker_auto_pack_by_tags_entropy_weight: float = Field(0.09, ge=0, le=1)
    sticker_auto_pack_by_tags_ambiguous_flag_penalty: float = Field(0.06, ge=0, le=1)
    sticker_auto_pack_by_tags_margin_bonus_weight: float = Field(0.12, ge=0, le=1)
    sticker_auto_pack_by_tags_asset_quality_w1: float = Field(0.34, ge=0, le=1, description="confidence")
    sticker_auto_pack_by_tags_asset_quality_w2: float = Field(0.24, ge=0, le=1, description="1 - entropy")
    sticker_auto_pack_by_tags_asset_quality_w3: float = Field(0.18, ge=0, le=1, description="affinity")
    sticker_auto_pack_by_tags_asset_quality_w4: float = Field(0.24, ge=0, le=1, description="alignment")
    # new: the floor on the §2.4 score (the original admitted any theme score >= 0.12) and the
    # embedding check that the sticker sits nearer its own theme's centroid than any other's.
    sticker_auto_pack_by_tags_min_candidate_score: float = Field(0.45, ge=0, le=1.2)
    sticker_auto_pack_by_tags_centroid_margin: float = Field(
        0.0, ge=-2, le=2, description="own-theme centroid similarity minus the best other's must be >= -this"
    )
    sticker_auto_pack_by_tags_lease_seconds: int = Field(
        120, ge=10, le=3600, description="new: the auto_theme_packs lease, renewed after every write"
    )

    # --- classification and reprocess queue (pipeline §1; docs/intelligence.md) ----------------
    # Original names where the original had the knob. New: STICKER_CLASSIFIER_BACKEND (the original
    # had only the CLIP HTTP client; CLIP_CLASSIFIER_PROVIDER keeps its meaning, the provider name
    # stored on rows that service writes), the builtin model knobs and the NSFW/trend producers.
    clip_classifier_enabled: bool = Field(True, description="false: no classifier runs; assets stay pending")
    sticker_classifier_backend: Literal["builtin", "clip-http"] = Field(
        "builtin", description="builtin: offline models in the ml extra; clip-http: CLIP_CLASSIFIER_API_URL"
    )
    clip_classifier_api_url: str = "http://127.0.0.1:8008/classify"
    clip_classifier_timeout_ms: int = Field(3000, ge=500, le=120_000)
    clip_classifier_provider: str = Field("clip", description="`provider` stored on clip-http rows")
    clip_classifier_classification_version: str = Field(
        "", description="Overrides the classification version; a change re-queues old rows once"
    )
    clip_classifier_model_version: str = Field("", description="Fallback for the version (original name)")
    clip_classifier_nsfw_threshold: float | None = Field(
        None, ge=0, le=1, description="is_nsfw at or above; unset: 0.6 (and not sent to clip-http)"
    )
    sticker_classification_background_enabled: bool = True
    sticker_classification_background_concurrency: int | None = Field(
        None, description="Parallel clip-http requests / inference threads; unset: CPU count (1..16)"
    )
    sticker_classification_background_batch_size: int | None = Field(
        None, description="Assets per inference batch and database page; unset: 32 (1..300)"
    )
    sticker_classification_max_per_cycle: int = Field(
        1000, ge=0, le=100_000, description="Pending assets one cycle classifies at most"
    )
    sticker_classification_model_dir: Path | None = Field(
        None, description="Exported models and the label→theme matrix; unset: <data dir>/models"
    )
    sticker_classification_keyframes: int = Field(3, ge=1, le=3, description="Frames of an animated sticker")
    sticker_classification_input_size: int = Field(224, ge=128, le=320, description="Image model input, px")
    sticker_reprocess_queue_enabled: bool = True
    sticker_reprocess_max_per_cycle: int | None = Field(
        None, description="Reprocess rows one cycle handles; unset: the batch size (0..300)"
    )
    sticker_reprocess_model_upgrade_scan_limit: int = Field(350, ge=0, le=2000)
    sticker_reprocess_low_confidence_scan_limit: int = Field(250, ge=0, le=2000)
    sticker_reprocess_low_confidence_threshold: float = Field(0.65, ge=0, le=1)
    sticker_reprocess_low_confidence_margin: float = Field(0.1, ge=0, le=1)
    sticker_reprocess_low_confidence_stale_hours: float = Field(48.0, ge=0, le=24 * 365)
    sticker_reprocess_nsfw_review_scan_limit: int = Field(200, ge=0, le=2000)
    sticker_reprocess_nsfw_review_min: float = Field(0.4, ge=0, le=1, description="Borderline band start")
    sticker_reprocess_nsfw_review_max: float = Field(0.78, ge=0, le=1, description="Borderline band end")
    sticker_reprocess_nsfw_public_threshold: float = Field(
        0.25, ge=0, le=1, description="Review stickers of public, non-sensitive packs from this score"
    )
    sticker_reprocess_trend_scan_limit: int = Field(200, ge=0, le=2000)
    sticker_reprocess_trend_horizon_hours: float = Field(24.0, gt=0, le=240)
    sticker_reprocess_trend_baseline_days: float = Field(7.0, ge=2, le=60)
    sticker_reprocess_trend_min_events: int = Field(20, ge=1, description="Interactions in the horizon")
    sticker_reprocess_trend_ratio: float = Field(
        3.0, ge=1, description="Horizon rate ÷ baseline daily rate that counts as a jump"
    )

    # --- object storage (pipeline §9) -----------------------------------------------------------
    # The original's names, plus (new) retries, multipart, health probe, sync batch and signed links.
    # Enabled iff STICKER_OBJECT_STORAGE_ENABLED and a bucket is set; delivery then also needs the
    # `enable_object_storage_delivery` flag for the viewer (docs/delivery.md).
    sticker_object_storage_enabled: bool = False
    sticker_object_storage_provider: str = Field("s3", description="Only s3 (any S3-compatible store)")
    sticker_object_storage_bucket: str = ""
    sticker_object_storage_region: str = "us-east-1"
    sticker_object_storage_endpoint: str = Field("", description="e.g. http://127.0.0.1:9000; empty: AWS")
    sticker_object_storage_force_path_style: bool = True
    sticker_object_storage_access_key_id: str = Field("", description="Empty (with the secret): AWS chain")
    sticker_object_storage_secret_access_key: str = ""
    sticker_object_storage_cdn_base_url: str = Field(
        "", description="Unsigned mode only: redirect to <CDN>/<object key>"
    )
    sticker_object_storage_key_prefix: str = "stickers"
    sticker_object_storage_upload_on_write: bool = Field(
        True, description="Upload new stickers through the sync task (off: only `omnizap storage backfill`)"
    )
    sticker_object_storage_signed_url_enabled: bool = True
    sticker_object_storage_signed_url_ttl_seconds: int = 300
    sticker_object_storage_upload_timeout_ms: int = Field(10_000, ge=1_000)
    sticker_object_storage_max_attempts: int = Field(
        4, ge=1, le=10, description="Tries per request (exponential backoff with jitter between them)"
    )
    sticker_object_storage_multipart_threshold_bytes: int = Field(
        8 * 1024 * 1024, ge=5 * 1024 * 1024, description="Files this large go up in parts of this size"
    )
    sticker_object_storage_health_check_interval_ms: int = Field(
        5_000, ge=100, le=600_000, description="How often each process re-probes the store"
    )
    sticker_object_storage_health_check_timeout_ms: int = Field(1_000, ge=50, le=30_000)
    sticker_object_storage_sync_batch_size: int = Field(100, ge=1, le=5_000, description="Per sync task")
    sticker_asset_url_signing_secret: str = Field(
        "", description="HMAC key of shareable expiring sticker links; empty: signed links are off"
    )
    sticker_asset_signed_link_ttl_seconds: int = Field(
        3600, ge=60, le=604_800, description="Default lifetime of a signed link (`omnizap storage sign-url`)"
    )

    # --- chat networks (transports; docs/chat-networks.md) ---------------------------------------
    # A network's webhook is mounted by `omnizap serve` only when all of its settings below are set.
    whatsapp_cloud_phone_number_id: str = Field("", description="Cloud API phone number id")
    whatsapp_cloud_token: str = Field("", description="Cloud API access token (system user token)")
    whatsapp_cloud_app_secret: str = Field("", description="Meta app secret: checks X-Hub-Signature-256")
    whatsapp_cloud_verify_token: str = Field("", description="Answer to Meta's webhook verify handshake")
    whatsapp_graph_api_base_url: str = Field("https://graph.facebook.com", description="Graph API origin")
    whatsapp_webhook_path: str = "/webhooks/whatsapp"
    telegram_bot_token: str = Field("", description="Bot API token from @BotFather")
    telegram_webhook_secret: str = Field(
        "",
        pattern=r"^[A-Za-z0-9_-]{0,256}$",
        description="setWebhook's secret_token (1-256 of A-Z a-z 0-9 _ -); the webhook is off without it",
    )
    telegram_webhook_path: str = "/webhooks/telegram"
    telegram_api_base_url: str = Field("https://api.telegram.org", description="Bot API origin")
    chat_media_download_attempts: int = Field(3, ge=1, le=10, description="Tries per media download")
    chat_media_download_timeout_seconds: float = Field(30.0, gt=0, le=600)
    whatsapp_web_session_dir: Path | None = Field(
        None, description="neonize session folder; default <data dir>/whatsapp-web"
    )

    # --- logging --------------------------------------------------------------------------------
    log_level: str = "INFO"
    log_format: str = Field("json", description="json or text")

    @field_validator("sticker_pack_max_packs_per_owner", mode="before")
    @classmethod
    def _parse_pack_limit(cls, value: Any) -> int | None:
        if value is None:
            return None
        text = str(value).strip().lower()
        if text in UNLIMITED_WORDS:
            return None
        try:
            number = int(text)
        except ValueError as exc:
            raise ValueError(f"expected a whole number or 'unlimited', got {value!r}") from exc
        return number if number > 0 else None

    @field_validator("sticker_object_storage_signed_url_ttl_seconds", mode="after")
    @classmethod
    def _clamp_signed_url_ttl(cls, value: int) -> int:
        return int(_clamp(value, 60, 3600))

    @field_validator("whatsapp_bot_number", mode="after")
    @classmethod
    def _check_bot_number(cls, value: str) -> str:
        # "+55 11 99999-0000" is how people write numbers; wa.me wants the bare digits.
        digits = re.sub(r"[\s()+.-]", "", value)
        if digits and not re.fullmatch(r"[0-9]{10,15}", digits):
            raise ValueError(
                f"WHATSAPP_BOT_NUMBER must be the bot's phone number with its country code, 10-15 "
                f"digits (e.g. 5511999990000), got {value!r}; leave it empty to hide the WhatsApp links"
            )
        return digits

    @field_validator("log_format", mode="after")
    @classmethod
    def _check_log_format(cls, value: str) -> str:
        if value not in {"json", "text"}:
            raise ValueError("LOG_FORMAT must be 'json' or 'text'")
        return value

    @property
    def chat_consumers(self) -> int:
        """CHAT_WORKER_THREADS, else one per CPU this process may use, 1-4 (the work is mostly Pillow
        and libwebp, which release the GIL)."""
        if self.chat_worker_threads is not None:
            return self.chat_worker_threads
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cpus = os.cpu_count() or 1
        return max(1, min(4, cpus))

    @property
    def data_dir(self) -> Path:
        return self.sticker_storage_dir.parent

    @property
    def whatsapp_web_session_path(self) -> Path:
        return self.whatsapp_web_session_dir or self.data_dir / "whatsapp-web"

    @property
    def classification_concurrency(self) -> int:
        """STICKER_CLASSIFICATION_BACKGROUND_CONCURRENCY, else the CPU count, clamped to 1..16."""
        value = self.sticker_classification_background_concurrency or os.cpu_count() or 1
        return int(_clamp(value, 1, 16))

    @property
    def classification_batch_size(self) -> int:
        """STICKER_CLASSIFICATION_BACKGROUND_BATCH_SIZE, else 32, clamped to 1..300.

        The original defaulted to concurrency × 2, which starves batched inference (4 images a batch on
        two cores); 32 keeps the image models busy and a page of database work short."""
        return int(_clamp(self.sticker_classification_background_batch_size or 32, 1, 300))

    @property
    def reprocess_max_per_cycle(self) -> int:
        value = self.sticker_reprocess_max_per_cycle
        return int(_clamp(self.classification_batch_size if value is None else value, 0, 300))

    @property
    def classification_model_dir(self) -> Path:
        return self.sticker_classification_model_dir or self.data_dir / "models"

    @property
    def classification_nsfw_threshold(self) -> float:
        threshold = self.clip_classifier_nsfw_threshold
        return 0.6 if threshold is None else threshold

    def masked(self) -> dict[str, Any]:
        """Effective settings as ENV_NAME → value, with secrets and passwords in URLs masked."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            env_name = name.upper()
            if any(marker in env_name for marker in SECRET_MARKERS) and value:
                value = "********"
            elif env_name == "DATABASE_URL":
                value = mask_url_password(str(value))
            elif isinstance(value, Path):
                value = str(value)
            shown[env_name] = value
        return shown


TRUE_WORDS = {"1", "true", "yes", "y", "on"}
FALSE_WORDS = {"0", "false", "no", "n", "off"}


def read_feature_environment(environ: Mapping[str, str]) -> dict[str, bool]:
    """`FEATURE_<NAME>` variables as flag name → bool; values that are not a yes/no word are ignored."""
    found: dict[str, bool] = {}
    for key, raw in environ.items():
        if not key.upper().startswith("FEATURE_") or key.upper() == "FEATURE_FLAG_CACHE_TTL_MS":
            continue
        word = raw.strip().lower()
        if word in TRUE_WORDS or word in FALSE_WORDS:
            found[key[len("FEATURE_") :].lower()] = word in TRUE_WORDS
    return found


def mask_url_password(url: str) -> str:
    """Hide the password part of `scheme://user:password@host/...`."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user, colon, _password = credentials.partition(":")
    return f"{scheme}://{user}{':********' if colon else ''}@{host}"


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return Settings()


def reset_settings_cache() -> None:
    """Forget the cached settings (tests and `omnizap` subcommands that change the environment)."""
    get_settings.cache_clear()


def cohort_key(explicit: str) -> str:
    """A stable identity for this process's rollout cohort: explicit key, else host name, else pid."""
    return explicit or socket.gethostname() or f"pid-{os.getpid()}"
