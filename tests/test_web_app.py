"""The web app end to end (FastAPI TestClient, real catalog service, every database engine): routing,
error shapes, 404/405, request ids, security headers, conditional GETs, readiness, sitemap/robots,
hostile query parameters, body limits, access logs and metrics."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import media_factory as mf
import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from omnizap.config import Settings
from omnizap.core.packs.service import PackService
from omnizap.core.stickers.service import StickerService
from omnizap.platform.db import Database
from omnizap.runtime import Runtime
from omnizap.web.app import create_app

OWNER = "5511977776666@s.whatsapp.net"
API = "/api/sticker-packs"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
DATA_VERSION_DEADLINE_SECONDS = 30


def make_settings(database_url: str, folder: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "sticker_storage_dir": folder / "stickers",
        "sticker_pack_auto_collect_enabled": False,
        "site_origin": "http://stickers.test",
        **overrides,
    }
    return Settings(_env_file=None, **values)


def seed(runtime: Runtime) -> dict[str, Any]:
    stickers = StickerService(runtime.database, runtime.storage, runtime.settings)
    packs = PackService(runtime.database, runtime.settings)

    def sticker(seed_value: int) -> str:
        image = mf.encode_image(mf.graphic_image(96, 96, seed_value), "PNG")
        return stickers.ingest(image, owner_jid=OWNER).asset.id

    return {
        "sunny": packs.create_pack(
            OWNER, "Sunny Cats", publisher="Ana", initial_sticker_ids=[sticker(1), sticker(2)]
        ),
        "office": packs.create_pack(OWNER, "Office Memes", publisher="Bea", initial_sticker_ids=[sticker(3)]),
        "unlisted": packs.create_pack(
            OWNER, "Quiet Corner", publisher="Caio", visibility="unlisted", initial_sticker_ids=[sticker(4)]
        ),
        "private": packs.create_pack(
            OWNER, "Private Drafts", publisher="Caio", visibility="private", initial_sticker_ids=[sticker(5)]
        ),
    }


@pytest.fixture
def site(db: Database, tmp_path: Path) -> Iterator[SimpleNamespace]:
    settings = make_settings(db.url.render_as_string(hide_password=False), tmp_path)
    runtime = Runtime(settings)
    packs = seed(runtime)
    access_log = io.StringIO()
    app = create_app(runtime, access_log_stream=access_log)
    with TestClient(app) as client:
        yield SimpleNamespace(
            client=client, app=app, runtime=runtime, packs=packs, access_log=access_log, settings=settings
        )
    runtime.close()


def error_of(response: Any) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"].isupper()
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


# --- routing -----------------------------------------------------------------------------------------
def test_list_shows_listed_packs_only(site: SimpleNamespace):
    response = site.client.get(API)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    keys = {entry["pack_key"] for entry in response.json()["data"]}
    assert keys == {site.packs["sunny"].pack_key, site.packs["office"].pack_key}


def test_detail_of_public_and_unlisted_packs_and_404_for_private(site: SimpleNamespace):
    for name in ("sunny", "unlisted"):
        response = site.client.get(f"{API}/{site.packs[name].pack_key}")
        assert response.status_code == 200, response.text
        assert response.json()["data"]["pack_key"] == site.packs[name].pack_key
    for key in (site.packs["private"].pack_key, "no-such-pack-zzzzz"):
        response = site.client.get(f"{API}/{key}")
        assert response.status_code == 404
        assert error_of(response)["code"] == "PACK_NOT_FOUND"


@pytest.mark.parametrize("segment", ["stats", "creators", "intents", "readme-summary"])
def test_reserved_segments_are_not_pack_keys(site: SimpleNamespace, segment: str):
    response = site.client.get(f"{API}/{segment}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "data" in response.json()


def test_readme_markdown_and_marketplace_stats(site: SimpleNamespace):
    markdown = site.client.get(f"{API}/readme-markdown")
    assert markdown.status_code == 200
    assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    assert markdown.text.endswith("\n")
    stats = site.client.get("/api/marketplace/stats")
    assert stats.status_code == 200
    assert "data" not in stats.json()  # flat, as in the original


def test_head_answers_headers_of_get_without_body(site: SimpleNamespace):
    get = site.client.get(f"{API}/stats")
    head = site.client.head(f"{API}/stats")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-length"] == str(len(get.content))


# --- errors, 404 and 405 -----------------------------------------------------------------------------
def test_unknown_paths_get_the_404_of_their_area(site: SimpleNamespace):
    api = site.client.get("/api/nothing-here")
    assert api.status_code == 404 and error_of(api)["code"] == "NOT_FOUND"
    nested = site.client.get(f"{API}/a/b/c/d")
    assert nested.status_code == 404 and error_of(nested)["code"] == "NOT_FOUND"
    trailing = site.client.get(f"{API}/")
    assert trailing.status_code == 404 and error_of(trailing)["code"] == "NOT_FOUND"
    web = site.client.get("/stickers/one/two")
    assert web.status_code == 404 and web.headers["content-type"].startswith("text/html")
    assert "Page not found" in web.text
    other = site.client.get("/wp-login.php")
    assert other.status_code == 404 and other.headers["content-type"].startswith("text/plain")
    assert other.text == "Not Found"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"{API}/stats"),
        ("DELETE", f"{API}/some-pack-aaaaa"),
        ("PUT", API),
        ("POST", "/api/marketplace/stats"),
    ],
)
def test_wrong_methods_are_405_with_allow(site: SimpleNamespace, method: str, path: str):
    response = site.client.request(method, path)
    assert response.status_code == 405
    assert error_of(response)["code"] == "METHOD_NOT_ALLOWED"
    allowed = {part.strip() for part in response.headers["allow"].split(",")}
    assert "GET" in allowed and method not in allowed


def test_domain_errors_map_to_their_status(site: SimpleNamespace):
    from omnizap.core.errors import NotAllowed, PackLimitReached

    def refuse() -> None:
        raise NotAllowed("You may not do that.")

    def full() -> None:
        raise PackLimitReached("Too many packs.", details={"retry_after_seconds": 12.2})

    site.app.add_api_route("/api/test/refuse", refuse)
    site.app.add_api_route("/api/test/full", full)
    refused = site.client.get("/api/test/refuse")
    assert refused.status_code == 403
    assert error_of(refused) == {"code": "NOT_ALLOWED", "message": "You may not do that."}
    limited = site.client.get("/api/test/full")
    assert limited.status_code == 409 and error_of(limited)["code"] == "PACK_LIMIT_REACHED"
    assert limited.headers["retry-after"] == "12"


def test_unexpected_errors_are_500_without_details_and_logged_with_the_request_id(
    site: SimpleNamespace, caplog: pytest.LogCaptureFixture
):
    def explode() -> None:
        raise RuntimeError("database password is hunter2 at /srv/omnizap/secret.db")

    site.app.add_api_route("/api/test/explode", explode)
    with caplog.at_level(logging.ERROR):
        response = site.client.get("/api/test/explode", headers={"X-Request-Id": "trace-500"})
    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "INTERNAL_ERROR"
    assert "hunter2" not in response.text and "/srv" not in response.text
    assert response.headers["x-request-id"] == "trace-500"
    logged = [record for record in caplog.records if record.exc_info and "hunter2" in str(record.exc_info[1])]
    assert logged and logged[0].request_id == "trace-500"


def test_validation_errors_name_the_parameter(site: SimpleNamespace):
    response = site.client.get(f"{API}/{'k' * 161}")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "INVALID_INPUT" and "packKey" in error["message"]


def test_request_bodies_are_size_limited(site: SimpleNamespace):
    key = site.packs["sunny"].pack_key
    limit = site.settings.http_max_body_bytes
    response = site.client.post(f"{API}/{key}/like", content=b"x" * (limit + 1))
    assert response.status_code == 413
    assert error_of(response)["code"] == "PAYLOAD_TOO_LARGE"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while the route reads it
        for _ in range(limit // 1000 + 2):
            yield b"y" * 1000

    async def echo(request: Request) -> dict[str, int]:
        return {"length": len(await request.body())}

    site.app.add_api_route("/api/test/echo", echo, methods=["POST"])
    streamed = site.client.post("/api/test/echo", content=chunks())
    assert streamed.status_code == 413 and error_of(streamed)["code"] == "PAYLOAD_TOO_LARGE"
    small = site.client.post("/api/test/echo", content=b"z" * 100)
    assert small.status_code == 200 and small.json() == {"length": 100}


# --- request ids -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (b"abc-123_x.y:z", "abc-123_x.y:z"),
        (b"a" * 10_240, "a" * 120),
        (b"  spaced id\t<script>  ", "spacedidscript"),
        ("r\u00e9qu\u00eate-\u4e2d\u6587-42".encode(), "rqute--42"),
        (b"\xff\xfe\x80", None),
        (b"%%%%", None),
    ],
)
def test_request_id_is_sanitized_or_generated(site: SimpleNamespace, sent: bytes, expected: str | None):
    response = site.client.get("/healthz", headers=[(b"X-Request-Id", sent)])
    shown = response.headers["x-request-id"]
    if expected is None:
        assert re.match(UUID_PATTERN, shown), shown
    else:
        assert shown == expected


def test_every_answer_has_a_request_id(site: SimpleNamespace):
    pages = site.client.get("/stickers")
    assert pages.status_code == 200
    static = site.client.get("/static/css/pages.css")
    assert static.status_code == 200
    answers = [
        site.client.get("/nope"),
        site.client.get("/api/nope"),
        site.client.post(f"{API}/stats"),
        site.client.get("/metrics"),
        site.client.get("/sitemap.xml"),
        site.client.get("/robots.txt"),
        site.client.get(f"{API}?limit=abc"),
        pages,
        static,
    ]
    ids = [answer.headers.get("x-request-id") for answer in answers]
    assert all(ids), ids
    assert len(set(ids)) == len(ids)  # one per request


# --- security headers ----------------------------------------------------------------------------------
def test_security_headers_on_api_pages_and_files(site: SimpleNamespace):
    api = site.client.get(API)
    assert api.headers["x-content-type-options"] == "nosniff"
    assert api.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert api.headers["x-frame-options"] == "DENY"
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert api.headers["x-robots-tag"] == "noindex, nofollow"
    assert "strict-transport-security" not in api.headers  # SITE_ORIGIN is http here
    error = site.client.get("/api/nope")
    assert error.headers["x-robots-tag"] == "noindex, nofollow" and error.headers["x-frame-options"] == "DENY"

    page = site.client.get("/stickers")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp  # the pages' own CSP is kept
    assert page.headers["x-frame-options"] == "DENY" and "x-robots-tag" not in page.headers
    static = site.client.get("/static/css/pages.css")
    assert static.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in static.headers["content-security-policy"]
    docs = site.client.get("/api-docs")
    assert docs.status_code == 200
    assert "script-src 'self'" in docs.headers["content-security-policy"]
    assert "unsafe-inline" not in docs.headers["content-security-policy"]
    assert "https://" not in docs.text  # the UI's files are served here, not by a CDN
    for asset in re.findall(r'(?:src|href)="(/api-docs/assets/[^"]+)"', docs.text):
        assert site.client.get(asset).status_code == 200, asset
    assert site.client.get("/api-docs/assets/../../etc/passwd").status_code == 404


def test_hsts_only_for_an_https_origin(db: Database, tmp_path: Path):
    settings = make_settings(
        db.url.render_as_string(hide_password=False), tmp_path, site_origin="https://stickers.example"
    )
    runtime = Runtime(settings)
    try:
        with TestClient(create_app(runtime)) as client:
            response = client.get("/healthz")
    finally:
        runtime.close()
    assert response.headers["strict-transport-security"].startswith("max-age=")


# --- conditional GETs --------------------------------------------------------------------------------
def test_etag_and_304(site: SimpleNamespace):
    for path in (
        f"{API}?limit=24&offset=0&sort=popular",
        f"{API}/{site.packs['sunny'].pack_key}",
        f"{API}/stats",
    ):
        first = site.client.get(path)
        etag = first.headers["etag"]
        assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
        again = site.client.get(path)
        assert again.headers["etag"] == etag and again.content == first.content
        for condition in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            cached = site.client.get(path, headers={"If-None-Match": condition})
            assert cached.status_code == 304, (path, condition)
            assert cached.content == b"" and cached.headers["etag"] == etag
            assert cached.headers["x-request-id"]
        stale = site.client.get(path, headers={"If-None-Match": '"not-the-tag"'})
        assert stale.status_code == 200 and stale.content == first.content
    reordered = site.client.get(f"{API}?sort=popular&offset=0&limit=24")
    assert (
        reordered.headers["etag"] == site.client.get(f"{API}?limit=24&offset=0&sort=popular").headers["etag"]
    )


def _wait_for_new_data_version(site: SimpleNamespace, before: Any) -> None:
    deadline = time.monotonic() + DATA_VERSION_DEADLINE_SECONDS
    while site.app.state.catalog.data_version() == before:
        if time.monotonic() > deadline:
            pytest.fail("the catalog's data_version did not move after a pack changed")
        time.sleep(0.05)


def test_an_edit_changes_the_etag_once_the_data_version_moves(site: SimpleNamespace):
    key = site.packs["sunny"].pack_key
    list_first = site.client.get(API)
    detail_first = site.client.get(f"{API}/{key}")
    version = site.app.state.catalog.data_version()
    PackService(site.runtime.database, site.settings).rename(OWNER, key, "Sunny Dogs")
    _wait_for_new_data_version(site, version)
    detail = site.client.get(f"{API}/{key}", headers={"If-None-Match": detail_first.headers["etag"]})
    assert detail.status_code == 200
    assert detail.json()["data"]["name"] == "Sunny Dogs"
    assert detail.headers["etag"] != detail_first.headers["etag"]
    listing = site.client.get(API, headers={"If-None-Match": list_first.headers["etag"]})
    assert listing.status_code == 200
    assert "Sunny Dogs" in {entry["name"] for entry in listing.json()["data"]}


def test_a_counted_like_reaches_the_detail(site: SimpleNamespace):
    key = site.packs["office"].pack_key
    before = site.client.get(f"{API}/{key}")
    version = site.app.state.catalog.data_version()
    liked = site.client.post(f"{API}/{key}/like", headers={"X-Viewer-Key": "viewer-one"})
    assert liked.status_code == 200, liked.text
    _wait_for_new_data_version(site, version)
    after = site.client.get(f"{API}/{key}", headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    engagement = after.json()["data"]["engagement"]
    assert engagement["like_count"] == before.json()["data"]["engagement"]["like_count"] + 1


# --- readiness and health ----------------------------------------------------------------------------
def test_health_and_readiness_on_a_migrated_database(site: SimpleNamespace):
    assert site.client.get("/healthz").json() == {"status": "ok"}
    ready = site.client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


def test_readiness_fails_on_a_database_that_is_not_migrated(tmp_path: Path):
    settings = make_settings(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path)
    runtime = Runtime(settings)
    try:
        client = TestClient(create_app(runtime))  # no lifespan: the catalog cannot start on no schema
        health = client.get("/healthz")
        ready = client.get("/readyz")
    finally:
        runtime.close()
    assert health.status_code == 200
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable" and "migrate" in body["reason"]
    assert "omnizap " not in ready.text and str(tmp_path) not in ready.text  # public: no command, no path


def test_readiness_fails_when_the_database_is_unreachable(tmp_path: Path):
    settings = make_settings("postgresql://nobody:secret-pw@127.0.0.1:9/none", tmp_path)
    runtime = Runtime(settings)
    try:
        ready = TestClient(create_app(runtime)).get("/readyz")
    finally:
        runtime.close()
    assert ready.status_code == 503
    assert "unreachable" in ready.json()["reason"] and "secret-pw" not in ready.text


# --- sitemap and robots ------------------------------------------------------------------------------
def test_sitemap_lists_listed_packs_only(site: SimpleNamespace):
    response = site.client.get("/sitemap.xml")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/xml; charset=utf-8"
    text = response.text
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert "<loc>http://stickers.test/</loc>" in text and "<loc>http://stickers.test/stickers</loc>" in text
    for name in ("sunny", "office"):
        assert f"<loc>http://stickers.test/stickers/{site.packs[name].pack_key}</loc>" in text
    for name in ("unlisted", "private"):
        assert site.packs[name].pack_key not in text
    assert text.count("<lastmod>") == text.count("<url>") == 4
    import xml.etree.ElementTree as ElementTree

    ElementTree.fromstring(response.content)  # well-formed


def test_robots_txt(site: SimpleNamespace):
    response = site.client.get("/robots.txt")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert "User-agent: *" in lines and "Allow: /" in lines and "Disallow: /api/" in lines
    assert "Sitemap: http://stickers.test/sitemap.xml" in lines


# --- hostile query parameters --------------------------------------------------------------------------
HOSTILE_QUERIES = [
    {"q": "x" * 10_000},
    {"q": "\x00\x01\x1b[31m<script>alert(1)</script>"},
    {"q": "'; DROP TABLE sticker_pack; --"},
    {"q": "%00%ff%fe"},
    {"q": "\U0001f600" * 500},
    {"limit": "-1"},
    {"limit": "0"},
    {"limit": "abc"},
    {"limit": "99999999999999999999"},
    {"limit": "1e3"},
    {"limit": "61"},
    {"offset": "-5"},
    {"offset": "9" * 40},
    {"cursor": "garbage!!"},
    {"cursor": "A" * 5000},
    {"sort": "DROP TABLE"},
    {"sort": "x" * 1000},
    {"categories": "," * 1000},
    {"categories": ",".join(f"tag{i}" for i in range(500))},
    {"theme": "\x00"},
    {"intent": "nope"},
    {"nsfw": "everything"},
]


@pytest.mark.parametrize("params", HOSTILE_QUERIES, ids=lambda params: f"{next(iter(params))}")
def test_hostile_list_parameters_are_refused_or_handled(site: SimpleNamespace, params: dict[str, str]):
    response = site.client.get(API, params=params)
    assert response.status_code in (200, 400), response.text[:300]
    if response.status_code == 400:
        assert error_of(response)["code"] in ("INVALID_INPUT", "INVALID_CURSOR")
    else:
        assert isinstance(response.json()["data"], list)


@pytest.mark.parametrize(
    "path",
    [
        f"{API}/creators?limit=abc",
        f"{API}/creators?limit=-3&q=" + "z" * 5000,
        f"{API}/intents?limit=9999999&categories=" + "," * 300,
        f"{API}/%00%ff",
        f"{API}/..%2F..%2Fetc%2Fpasswd",
        f"{API}/{'é' * 50}",
    ],
)
def test_hostile_parameters_on_other_routes(site: SimpleNamespace, path: str):
    response = site.client.get(path)
    assert response.status_code in (200, 400, 404), response.text[:300]
    if response.status_code != 200:
        assert error_of(response)["code"] in (
            "INVALID_INPUT",
            "INVALID_CURSOR",
            "PACK_NOT_FOUND",
            "NOT_FOUND",
        )


def test_a_bad_limit_names_the_parameter(site: SimpleNamespace):
    error = error_of(site.client.get(API, params={"limit": "abc"}))
    assert error["code"] == "INVALID_INPUT" and "limit" in error["message"]


# --- logs and metrics --------------------------------------------------------------------------------
def test_one_access_line_per_request_with_masked_secrets(site: SimpleNamespace):
    response = site.client.get(
        f"{API}/stats?viewer_key=SECRET1&token=SECRET2&x=1", headers={"X-Request-Id": "log-1"}
    )
    assert response.status_code == 200
    site.app.state.access_log.flush()
    lines = [json.loads(line) for line in site.access_log.getvalue().splitlines() if line]
    mine = [line for line in lines if line["request_id"] == "log-1"]
    assert len(mine) == 1
    line = mine[0]
    assert line["logger"] == "omnizap.access" and line["level"] == "info"
    assert line["method"] == "GET" and line["status"] == 200 and line["route_group"] == "catalog_api_public"
    assert line["path"].startswith(f"{API}/stats?") and "x=1" in line["path"]
    assert "SECRET1" not in line["path"] and "SECRET2" not in line["path"]
    assert isinstance(line["duration_ms"], float) and line["client"]


def test_metrics_endpoint_counts_requests_by_group(site: SimpleNamespace):
    for _ in range(3):
        site.client.get(f"{API}/stats")
    site.client.get("/nope")
    site.client.post(f"{API}/stats")
    text = site.client.get("/metrics")
    assert text.status_code == 200
    assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
    counts: dict[tuple[str, str, str], float] = {}
    queue_labels = set()
    for family in text_string_to_metric_families(text.text):
        for sample in family.samples:
            if sample.name == "omnizap_http_requests_total":
                labels = sample.labels
                counts[(labels["route_group"], labels["method"], labels["status_class"])] = sample.value
            if sample.name == "omnizap_queue_depth":
                queue_labels.add(sample.labels["queue"])
    assert counts[("catalog_api_public", "GET", "2xx")] >= 3
    assert counts[("other", "GET", "4xx")] == 1
    assert counts[("catalog_api_public", "POST", "4xx")] == 1
    assert {"sticker_worker_tasks_pending", "domain_event_outbox_dlq"} <= queue_labels
    assert "sticker_pack_score_snapshot_pending" in queue_labels  # the catalog's reading, same family
    families = {family.name for family in text_string_to_metric_families(text.text)}
    assert "omnizap_ranking_generation_age_seconds" in families


def test_openapi_documents_the_catalog(site: SimpleNamespace):
    spec = site.client.get("/api-docs/openapi.json").json()
    listing = spec["paths"][API]["get"]
    assert listing["summary"]
    names = {parameter["name"] for parameter in listing["parameters"]}
    assert {"q", "sort", "categories", "theme", "intent", "nsfw", "limit", "offset", "cursor"} <= names
    assert all(parameter.get("description") for parameter in listing["parameters"])
    assert "example" in listing["responses"]["200"]["content"]["application/json"]
    assert f"{API}/{{packKey}}" in spec["paths"] and f"{API}/stats" in spec["paths"]


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def _query_schema(operation: dict[str, Any], name: str) -> dict[str, Any]:
    [parameter] = [p for p in operation["parameters"] if p["name"] == name and p["in"] == "query"]
    schema = parameter["schema"]
    # An optional parameter is `anyOf: [<schema>, null]`.
    return next(option for option in schema.get("anyOf", [schema]) if option.get("type") != "null")


def test_openapi_spells_the_pack_key_one_way(site: SimpleNamespace):
    spec = site.client.get("/api-docs/openapi.json").json()
    keyed = [path for path in spec["paths"] if path.startswith(f"{API}/{{")]
    assert len(keyed) == 6 and all(path.startswith(f"{API}/{{packKey}}") for path in keyed), keyed
    for path, _, operation in _operations(spec):
        path_names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert "pack_key" not in path_names and "sticker_file" not in path_names, path


def test_openapi_declares_what_the_server_accepts(site: SimpleNamespace):
    spec = site.client.get("/api-docs/openapi.json").json()
    listing = spec["paths"][API]["get"]
    sort = _query_schema(listing, "sort")
    assert sort["type"] == "string" and {"popular", "trending", "new", "liked", "downloads"} <= set(
        sort["enum"]
    )
    assert _query_schema(listing, "nsfw")["enum"] == ["safe", "suggestive", "explicit"]
    assert set(_query_schema(listing, "intent")["enum"]) == {
        "em_alta",
        "novos",
        "crescendo_agora",
        "mais_curtidos",
    }
    limit = _query_schema(listing, "limit")
    assert limit == {"type": "integer", "minimum": 1, "maximum": site.settings.sticker_web_list_max_limit}
    assert _query_schema(listing, "offset")["type"] == "integer"
    for route, maximum in (("creators", 200), ("intents", 50)):
        limit = _query_schema(spec["paths"][f"{API}/{route}"]["get"], "limit")
        assert limit == {"type": "integer", "minimum": 1, "maximum": maximum}
    # The server refuses what the document refuses, naming the parameter.
    for params in ({"sort": "POPULAR"}, {"limit": "1.5"}, {"nsfw": "all"}, {"intent": "Em Alta"}):
        error = error_of(site.client.get(API, params=params))
        assert error["code"] == "INVALID_INPUT" and next(iter(params)) in error["message"], params
    assert site.client.get(API, params={"sort": "recent", "limit": "2", "intent": "novos"}).status_code == 200


def test_openapi_declares_every_answer_with_its_schema(site: SimpleNamespace):
    spec = site.client.get("/api-docs/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert set(schemas["ErrorEnvelope"]["required"]) == {"error"}
    for path, method, operation in _operations(spec):
        responses = operation["responses"]
        ok = responses["200"]["content"]
        assert all("schema" in media for media in ok.values()), (path, method)
        for status, answer in responses.items():
            if status.startswith("4"):
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, (path, status)
    keyed = f"{API}/{{packKey}}"
    expected = {
        (keyed, "get"): {"400", "404"},
        (f"{keyed}/stickers/{{stickerId}}", "get"): {"400", "403", "404"},
        (f"{keyed}/download/whatsapp", "get"): {"404", "422"},
        (f"{keyed}/like", "post"): {"404", "413", "429"},
    }
    for (path, method), statuses in expected.items():
        assert statuses <= set(spec["paths"][path][method]["responses"]), (path, method)
    metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    assert site.client.get("/metrics").headers["content-type"].startswith("text/plain")


def test_a_key_with_control_characters_is_not_a_pack_key(site: SimpleNamespace):
    for key in ("%01", "%00%1b", "sunny%0Acats-a1b2c"):
        response = site.client.get(f"{API}/{key}")
        assert response.status_code == 404, key
        error = error_of(response)
        assert error["code"] == "PACK_NOT_FOUND" and "not a pack key" in error["message"], error
        assert "required" not in error["message"]


def test_a_configured_api_base_path_moves_every_api_route(db: Database, tmp_path: Path):
    settings = make_settings(
        db.url.render_as_string(hide_password=False), tmp_path, sticker_api_base_path="/v2/packs"
    )
    runtime = Runtime(settings)
    packs = seed(runtime)
    try:
        with TestClient(create_app(runtime)) as client:
            listing = client.get("/v2/packs")
            detail = client.get(f"/v2/packs/{packs['sunny'].pack_key}")
            missing = client.get("/v2/packs/a/b/c")
            old = client.get(API)
            metrics = client.get("/metrics").text
    finally:
        runtime.close()
    assert listing.status_code == 200 and listing.json()["data"]
    assert listing.headers["x-robots-tag"] == "noindex, nofollow" and listing.headers["etag"]
    assert detail.status_code == 200
    assert missing.status_code == 404 and error_of(missing)["code"] == "NOT_FOUND"
    assert missing.headers["x-robots-tag"] == "noindex, nofollow"
    assert old.status_code == 404
    groups = {
        sample.labels["route_group"]
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "omnizap_http_requests_total"
    }
    assert "catalog_api_public" in groups


# --- pagination over HTTP while the catalog changes ---------------------------------------------------
@pytest.mark.parametrize("sort", ["popular", "trending", "liked", "new"])
def test_cursor_pages_never_skip_or_repeat_while_packs_are_inserted_and_liked(
    site: SimpleNamespace, sort: str
):
    """Page through the API 2 packs at a time; between pages, new packs appear, packs get likes and
    the ranking is rebuilt. Every pack listed at the start is seen exactly once."""
    catalog = site.app.state.catalog
    packs = PackService(site.runtime.database, site.runtime.settings)
    stickers = StickerService(site.runtime.database, site.runtime.storage, site.runtime.settings)
    sticker = stickers.ingest(mf.encode_image(mf.graphic_image(96, 96, 77), "PNG"), owner_jid=OWNER).asset.id
    for number in range(7):
        packs.create_pack(OWNER, f"Extra {number}", initial_sticker_ids=[sticker])
    catalog.refresh_rankings()
    catalog.poll_changes()
    at_start = {entry["pack_key"] for entry in site.client.get(f"{API}?limit=60&sort={sort}").json()["data"]}
    assert len(at_start) == 9

    seen: list[str] = []
    cursor: str | None = None
    inserted = 0
    while True:
        url = f"{API}?limit=2&sort={sort}" + (f"&cursor={cursor}" if cursor else "")
        response = site.client.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [entry["pack_key"] for entry in body["data"]]
        cursor = body["pagination"]["next_cursor"]
        if not cursor:
            break
        # Change the catalog between pages: a new pack, likes on the last one seen, a new ranking.
        inserted += 1
        packs.create_pack(OWNER, f"Newcomer {inserted}", initial_sticker_ids=[sticker])
        liked = body["data"][-1]["pack_key"]
        for viewer in range(3):
            site.client.post(f"{API}/{liked}/like", headers={"X-Viewer-Key": f"viewer-{inserted}-{viewer}"})
        catalog.refresh_rankings()
        catalog.poll_changes()
    assert len(seen) == len(set(seen)), f"a pack was repeated: {seen}"
    assert at_start <= set(seen), f"missed: {at_start - set(seen)}"
    assert inserted >= 4
