"""HTTP metrics and queue depths: the original's names, labels and buckets, route groups, SLO
violation counting, multi-process aggregation, and queue depth gauges counted from real rows."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from omnizap.config import Settings
from omnizap.platform.db import Database
from omnizap.platform.db.schema import (
    domain_event_outbox,
    domain_event_outbox_dlq,
    sticker_asset,
    sticker_asset_reprocess_queue,
    sticker_worker_task_dlq,
    sticker_worker_task_queue,
)
from omnizap.platform.metrics import (
    HTTP_DURATION_BUCKETS_MS,
    QUEUE_DEPTH_LABELS,
    ROUTE_GROUPS,
    HttpMetrics,
    MetricsExposition,
    QueueDepthCollector,
    RouteGroupPaths,
    method_label,
    read_queue_depths,
    resolve_route_group,
    status_class,
)
from omnizap.platform.metrics.exposition import prepare_multiprocess_dir

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
ORIGINAL_BUCKETS = [5, 10, 20, 40, 75, 120, 200, 350, 500, 750, 1000, 2000, 5000, 10000]


def families(text: bytes | str) -> dict[str, object]:
    decoded = text.decode() if isinstance(text, bytes) else text
    return {family.name: family for family in text_string_to_metric_families(decoded)}


def samples(text: bytes | str) -> list[tuple[str, dict[str, str], float]]:
    decoded = text.decode() if isinstance(text, bytes) else text
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(decoded)
        for sample in family.samples
    ]


def single_process(slo_target_ms: float = 750) -> tuple[HttpMetrics, MetricsExposition]:
    registry = CollectorRegistry()
    metrics = HttpMetrics(service="omnizap", slo_target_ms=slo_target_ms, registry=registry)
    return metrics, MetricsExposition(own_registry=registry, multiprocess_dir=None)


def test_names_labels_and_buckets_are_the_originals():
    metrics, exposition = single_process()
    metrics.observe(route_group="catalog_api_public", method="get", status=200, duration_ms=3.2)
    text = exposition.render().decode()
    found = families(text)
    assert found["omnizap_http_requests"].type == "counter"  # exposed as omnizap_http_requests_total
    assert found["omnizap_http_request_duration_ms"].type == "histogram"
    assert found["omnizap_http_slo_violation"].type == "counter"
    assert "_created" not in text

    rows = samples(text)
    (request_labels,) = [labels for name, labels, _ in rows if name == "omnizap_http_requests_total"]
    assert request_labels == {
        "service": "omnizap",
        "route_group": "catalog_api_public",
        "method": "GET",
        "status_class": "2xx",
    }
    buckets = [labels["le"] for name, labels, _ in rows if name == "omnizap_http_request_duration_ms_bucket"]
    assert [float(value) for value in buckets[:-1]] == [float(b) for b in ORIGINAL_BUCKETS]
    assert buckets[-1] == "+Inf"
    assert list(HTTP_DURATION_BUCKETS_MS) == ORIGINAL_BUCKETS
    (slo_labels,) = [labels for name, labels, _ in rows if name == "omnizap_http_slo_violation_total"]
    assert set(slo_labels) == {"service", "route_group", "method"}


def test_histogram_puts_each_duration_in_the_right_bucket():
    metrics, exposition = single_process()
    for duration in (4.9, 5.0, 5.1, 740, 10001):
        metrics.observe(route_group="catalog_web", method="GET", status=200, duration_ms=duration)
    cumulative = {
        labels["le"]: value
        for name, labels, value in samples(exposition.render())
        if name == "omnizap_http_request_duration_ms_bucket"
    }
    assert cumulative["5.0"] == 2  # le is inclusive
    assert cumulative["10.0"] == 3
    assert cumulative["750.0"] == 4
    assert cumulative["10000.0"] == 4
    assert cumulative["+Inf"] == 5


def test_slo_violations_count_requests_at_or_above_the_target():
    metrics, exposition = single_process(slo_target_ms=750)
    for duration in (10, 749.99, 750, 751, 5000):
        metrics.observe(route_group="catalog_api_public", method="GET", status=200, duration_ms=duration)
    metrics.observe(route_group="marketplace_stats", method="GET", status=500, duration_ms=900)
    rows = samples(exposition.render())
    violations = {
        labels["route_group"]: value
        for name, labels, value in rows
        if name == "omnizap_http_slo_violation_total"
    }
    assert violations == {"catalog_api_public": 3, "marketplace_stats": 1}
    totals = {
        (labels["route_group"], labels["status_class"]): value
        for name, labels, value in rows
        if name == "omnizap_http_requests_total"
    }
    assert totals == {("catalog_api_public", "2xx"): 5, ("marketplace_stats", "5xx"): 1}


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("get", "GET"),
        ("HEAD", "HEAD"),
        (" post ", "POST"),
        ("options", "OPTIONS"),
        ("PROPFIND", "OTHER"),
        ("X" * 500, "OTHER"),
        ("DELETEDELETEDELETE", "OTHER"),
        ("", "UNKNOWN"),
    ],
)
def test_method_label_is_bounded(raw: str, label: str):
    assert method_label(raw) == label
    assert len(method_label(raw)) <= 12


def test_junk_methods_and_groups_do_not_add_series():
    metrics, exposition = single_process()
    for index in range(50):
        metrics.observe(route_group=f"evil-{index}", method=f"M{index}", status=200, duration_ms=1)
    rows = [
        labels for name, labels, _ in samples(exposition.render()) if name == "omnizap_http_requests_total"
    ]
    assert rows == [{"service": "omnizap", "route_group": "other", "method": "OTHER", "status_class": "2xx"}]


@pytest.mark.parametrize(
    ("status", "expected"),
    [(100, "1xx"), (204, "2xx"), (304, "3xx"), (404, "4xx"), (503, "5xx"), (0, "unknown")],
)
def test_status_class(status: int, expected: str):
    assert status_class(status) == expected


DEFAULT_PATHS = RouteGroupPaths()
ROUTE_TABLE = [
    ("/metrics", "metrics"),
    ("/metrics/anything", "metrics"),  # the original matched the metrics path as a prefix
    ("/sitemap.xml", "sitemap"),
    ("/api/marketplace/stats", "marketplace_stats"),
    ("/api/sticker-packs", "catalog_api_public"),
    ("/api/sticker-packs/stats", "catalog_api_public"),
    ("/api/sticker-packs/sunny-cats-a1b2c", "catalog_api_public"),
    ("/api/sticker-packs/sunny-cats-a1b2c/like", "catalog_api_public"),
    ("/api/sticker-packs/sunny-cats-a1b2c/stickers/abc.webp", "catalog_api_public"),
    ("/api/sticker-packs/auth/google/session", "catalog_api_auth"),
    ("/api/sticker-packs/me", "catalog_api_auth"),
    ("/api/sticker-packs/admin/session", "catalog_api_auth"),
    ("/api/sticker-packs/admin", "catalog_api_admin"),
    ("/api/sticker-packs/admin/packs/x", "catalog_api_admin"),
    ("/api/sticker-packs/create", "catalog_api_upload"),
    ("/api/sticker-packs/k/manage", "catalog_api_upload"),
    ("/api/sticker-packs/k/manage/cover", "catalog_api_upload"),
    ("/api/sticker-packs/k/finalize", "catalog_api_upload"),
    ("/api/sticker-packs/k/stickers-upload", "catalog_api_upload"),
    ("/api/sticker-packs/k/publish-state", "catalog_api_upload"),
    ("/api/sticker-packsfoo", "other"),
    ("/data", "catalog_data_asset"),
    ("/data/stickers/a/b.webp", "catalog_data_asset"),
    ("/user", "catalog_user_profile"),
    ("/user/", "catalog_user_profile"),
    ("/user/settings", "other"),
    ("/stickers", "catalog_web"),
    ("/stickers/", "catalog_web"),
    ("/stickers/sunny-cats-a1b2c", "catalog_web"),
    ("/", "catalog_web"),  # our addition: the home page is a catalog page
    ("/static/css/pages.css", "catalog_web"),  # our addition: the pages' own files
    ("/robots.txt", "other"),
    ("/healthz", "other"),
    ("/readyz", "other"),
    ("/api-docs", "other"),
    ("/api/other", "other"),
    ("/favicon.ico", "other"),
]


@pytest.mark.parametrize(("path", "group"), ROUTE_TABLE)
def test_route_group_table(path: str, group: str):
    assert resolve_route_group(path, DEFAULT_PATHS) == group
    assert group in ROUTE_GROUPS


def test_route_groups_follow_configured_paths():
    settings = Settings(
        _env_file=None,
        metrics_path="/internal/metrics",
        sticker_api_base_path="/v2/packs/",
        sticker_web_path="catalog",
        sticker_data_public_path="/files",
        user_profile_web_path="/me",
    )
    paths = RouteGroupPaths.from_settings(settings)
    assert resolve_route_group("/internal/metrics", paths) == "metrics"
    assert resolve_route_group("/metrics", paths) == "other"
    assert resolve_route_group("/v2/packs/abc", paths) == "catalog_api_public"
    assert resolve_route_group("/v2/packs/me", paths) == "catalog_api_auth"
    assert resolve_route_group("/api/sticker-packs", paths) == "other"
    assert resolve_route_group("/catalog/x", paths) == "catalog_web"
    assert resolve_route_group("/files/a.webp", paths) == "catalog_data_asset"
    assert resolve_route_group("/me", paths) == "catalog_user_profile"


def test_every_seed_route_group_is_known():
    seed = {
        "catalog_api_public",
        "catalog_api_auth",
        "catalog_api_admin",
        "catalog_api_upload",
        "catalog_web",
        "catalog_data_asset",
        "catalog_user_profile",
        "marketplace_stats",
        "metrics",
        "sitemap",
        "other",
    }
    assert set(ROUTE_GROUPS) == seed


def test_multiprocess_dir_is_refused_when_values_are_in_memory(tmp_path: Path):
    # This test process imported prometheus_client without PROMETHEUS_MULTIPROC_DIR.
    with pytest.raises(RuntimeError, match="PROMETHEUS_MULTIPROC_DIR"):
        MetricsExposition(own_registry=None, multiprocess_dir=tmp_path)


def test_prepare_multiprocess_dir_removes_only_metric_files(tmp_path: Path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"old")
    (folder / "notes.txt").write_text("keep me")
    prepare_multiprocess_dir(folder)
    assert sorted(path.name for path in folder.iterdir()) == ["notes.txt"]
    prepare_multiprocess_dir(tmp_path / "new" / "dir")
    assert (tmp_path / "new" / "dir").is_dir()


RECORDER = textwrap.dedent(
    """
    import sys
    from omnizap.platform.metrics import HttpMetrics
    metrics = HttpMetrics(service="omnizap", slo_target_ms=750, registry=None)
    for _ in range(int(sys.argv[1])):
        metrics.observe(route_group="catalog_api_public", method="GET", status=200, duration_ms=800)
    """
)
SCRAPER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from omnizap.platform.metrics import MetricsExposition
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    exposition = MetricsExposition(own_registry=None, multiprocess_dir=folder)
    sys.stdout.write(exposition.render().decode())
    """
)


def test_multiprocess_mode_adds_up_every_process(tmp_path: Path):
    folder = prepare_multiprocess_dir(tmp_path / "metrics")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    for count in (3, 4):  # two recording processes that have both exited
        subprocess.run([sys.executable, "-c", RECORDER, str(count)], env=env, check=True, timeout=60)
    scraped = subprocess.run(
        [sys.executable, "-c", SCRAPER], env=env, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    rows = samples(scraped)
    totals = [value for name, _, value in rows if name == "omnizap_http_requests_total"]
    assert totals == [7]
    violations = [value for name, _, value in rows if name == "omnizap_http_slo_violation_total"]
    assert violations == [7]
    counts = [value for name, _, value in rows if name == "omnizap_http_request_duration_ms_count"]
    assert counts == [7]


# --- queue depths ------------------------------------------------------------------------------------
def _asset(connection: object, asset_id: str) -> None:
    connection.execute(  # type: ignore[attr-defined]
        sticker_asset.insert().values(
            id=asset_id, owner_jid="o@s.whatsapp.net", sha256=asset_id.ljust(64, "0"), size_bytes=10,
            storage_path=f"o/{asset_id}.webp",
        )
    )  # fmt: skip


def _seed_queues(database: Database) -> None:
    tasks = ["pending"] * 3 + ["processing"] * 2 + ["failed"] + ["completed"] * 4
    events = ["pending"] * 5 + ["processing"] + ["failed"] * 2 + ["completed"] * 3
    reprocess = ["pending"] * 2 + ["processing"] + ["completed"]
    with database.transaction() as connection:
        connection.execute(
            sticker_worker_task_queue.insert(),
            [
                {
                    "task_type": "classification",
                    "idempotency_key": f"t{i}",
                    "status": status,
                    "scheduled_at": NOW,
                }
                for i, status in enumerate(tasks)
            ],
        )
        connection.execute(
            domain_event_outbox.insert(),
            [
                {
                    "event_type": "PACK_CHANGED",
                    "aggregate_type": "pack",
                    "aggregate_id": str(i),
                    "idempotency_key": f"e{i}",
                    "status": status,
                    "available_at": NOW,
                }
                for i, status in enumerate(events)
            ],
        )
        for index in range(len(reprocess)):
            _asset(connection, f"asset-{index}")
        connection.execute(
            sticker_asset_reprocess_queue.insert(),
            [
                {"asset_id": f"asset-{i}", "reason": "MODEL_UPGRADE", "status": status, "scheduled_at": NOW}
                for i, status in enumerate(reprocess)
            ],
        )
        dead = {"attempts": 5, "max_attempts": 5, "priority": 50, "failed_at": NOW}
        connection.execute(
            sticker_worker_task_dlq.insert(),
            [
                {**dead, "task_id": 900 + i, "task_type": "classification", "replayed_at": replayed}
                for i, replayed in enumerate([None, None, NOW])
            ],
        )
        connection.execute(
            domain_event_outbox_dlq.insert(),
            [
                {
                    **dead,
                    "outbox_event_id": 800 + i,
                    "event_type": "PACK_CHANGED",
                    "aggregate_type": "pack",
                    "aggregate_id": "x",
                }
                for i in range(4)
            ],
        )


def test_queue_depths_are_counted_from_rows(db: Database):
    assert read_queue_depths(db) == dict.fromkeys(QUEUE_DEPTH_LABELS, 0)
    _seed_queues(db)
    depths = read_queue_depths(db)
    assert depths == {
        "sticker_worker_tasks_pending": 3,
        "sticker_worker_tasks_processing": 2,
        "sticker_worker_tasks_failed": 1,
        "domain_event_outbox_pending": 5,
        "domain_event_outbox_processing": 1,
        "domain_event_outbox_failed": 2,
        "sticker_reprocess_pending": 2,
        "sticker_reprocess_processing": 1,
        "sticker_reprocess_failed": 0,
        "sticker_worker_task_dlq": 2,  # the replayed dead letter no longer counts
        "domain_event_outbox_dlq": 4,
        "sticker_reprocess_dlq": 0,
    }


def test_queue_depth_gauges_in_the_exposition(db: Database):
    _seed_queues(db)
    _, exposition = single_process()
    text = exposition.render([QueueDepthCollector(db)])
    rows = samples(text)
    gauges = {labels["queue"]: value for name, labels, value in rows if name == "omnizap_queue_depth"}
    assert set(gauges) == set(QUEUE_DEPTH_LABELS)
    assert gauges["domain_event_outbox_pending"] == 5 and gauges["sticker_worker_task_dlq"] == 2
    assert [value for name, _, value in rows if name == "omnizap_queue_depth_scrape_ok"] == [1]
    # the labels the alert rules and dashboard select on are all present
    for pattern_suffix in ("_pending", "_processing", "_failed", "_dlq"):
        assert any(label.endswith(pattern_suffix) for label in gauges)


def test_unreachable_database_is_reported_not_raised(tmp_path: Path):
    unmigrated = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        _, exposition = single_process()
        rows = samples(exposition.render([QueueDepthCollector(unmigrated)]))
    finally:
        unmigrated.dispose()
    assert [value for name, _, value in rows if name == "omnizap_queue_depth_scrape_ok"] == [0]
    assert not [name for name, _, _ in rows if name == "omnizap_queue_depth"]
