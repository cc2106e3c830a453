"""Prometheus alert rules and the Grafana dashboard: they parse, use only the original's metric names
and route groups, and (with promtool installed) their PromQL is valid and the alerts fire as intended."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "catalog-dashboard.json"

# The metric list of the SLO document (seed observability/sticker-catalog-slo.md §2).
SEED_METRICS = {
    "omnizap_http_requests_total",
    "omnizap_http_request_duration_ms",
    "omnizap_http_slo_violation_total",
    "omnizap_sticker_classification_cycle_duration_ms",
    "omnizap_sticker_classification_cycle_total",
    "omnizap_sticker_classification_assets_total",
    "omnizap_queue_depth",
}
SEED_HISTOGRAMS = {"omnizap_http_request_duration_ms", "omnizap_sticker_classification_cycle_duration_ms"}
# route_group values of the SLO document, plus `sitemap` (http reference §14.2).
SEED_ROUTE_GROUPS = {
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
PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords or labels."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name in PROMQL_KEYWORDS:
            continue
        names.add(name)
    return names


def base_metric(name: str) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name.removesuffix(suffix) in SEED_HISTOGRAMS:
            return name.removesuffix(suffix)
    return name


def route_groups_in(expr: str) -> set[str]:
    groups: set[str] = set()
    for _, value in re.findall(r'route_group\s*(=~|=|!=|!~)\s*"([^"]*)"', expr):
        if value.startswith("$"):
            continue
        groups.update(part for part in value.split("|") if part and part != ".*")
    return groups


def load_alerts() -> dict[str, Any]:
    return yaml.safe_load(ALERTS.read_text())


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_alerts()["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in dashboard()["panels"] for target in panel.get("targets", [])]


# --- the metric-name extractor itself -------------------------------------------------------------


def test_metric_name_extraction_ignores_functions_labels_and_keywords():
    expr = (
        'histogram_quantile(0.95, sum by (le, route_group) (rate(foo_bucket{route_group="x"}[5m])))'
        " > 1e3 and on() sum(bar_total offset 5m) / max(baz) > bool 2"
    )
    assert metric_names(expr) == {"foo_bucket", "bar_total", "baz"}
    assert base_metric("omnizap_http_request_duration_ms_bucket") == "omnizap_http_request_duration_ms"
    assert base_metric("omnizap_queue_depth_count") == "omnizap_queue_depth_count"  # not a histogram


# --- alerts.yml -------------------------------------------------------------------------------------


def test_alert_rules_are_well_formed():
    document = load_alerts()
    assert {group["name"] for group in document["groups"]} == {"omnizap-catalog-slo", "omnizap-pipeline"}
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names)), "alert names must be unique"
    for rule in alert_rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["expr"].strip(), rule["alert"]
        assert DURATION.match(rule["for"]), f"{rule['alert']}: bad 'for' {rule['for']!r}"
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]


def test_alerts_cover_the_slo_document():
    by_name = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    assert "histogram_quantile(0.95" in by_name["OmniZapCatalogP95AboveSLO"]
    assert "> 750" in by_name["OmniZapCatalogP95AboveSLO"]
    assert "histogram_quantile(0.99" in by_name["OmniZapCatalogP99AboveSLO"]
    assert "> 1500" in by_name["OmniZapCatalogP99AboveSLO"]
    assert 'status_class="5xx"' in by_name["OmniZapCatalogErrorRateHigh"]
    assert "[5m]" in by_name["OmniZapCatalogErrorRateHigh"]
    assert "> 0.02" in by_name["OmniZapCatalogErrorRateHigh"]
    assert "omnizap_http_slo_violation_total" in by_name["OmniZapCatalogSLOViolationRateHigh"]
    assert 'queue=~".*_pending"' in by_name["OmniZapQueueBacklogGrowing"]
    assert "[15m:1m]" in by_name["OmniZapQueueBacklogGrowing"]
    assert "domain_event_outbox" in by_name["OmniZapOutboxDeadLetterGrowing"]


def test_alerts_use_only_metric_names_and_route_groups_of_the_seed():
    for rule in alert_rules():
        used = {base_metric(name) for name in metric_names(rule["expr"])}
        assert used, f"{rule['alert']} uses no metric"
        assert used <= SEED_METRICS, f"{rule['alert']} uses unknown metrics {used - SEED_METRICS}"
        assert route_groups_in(rule["expr"]) <= SEED_ROUTE_GROUPS, rule["alert"]


# --- catalog-dashboard.json -------------------------------------------------------------------------


def test_dashboard_is_a_valid_grafana_dashboard():
    board = dashboard()
    assert board["uid"] == "omnizap-catalog"
    assert board["title"]
    assert isinstance(board["schemaVersion"], int)
    variables = {variable["name"] for variable in board["templating"]["list"]}
    assert {"datasource", "route_group"} <= variables
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    occupied: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"panel {panel['title']!r} overlaps another"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids))
        for target in panel["targets"]:
            for variable in re.findall(r"\$(\w+)", target["expr"]):
                assert variable in variables or variable.startswith("__"), f"undefined ${variable}"


def test_dashboard_shows_what_the_brief_asks_for():
    exprs = "\n".join(dashboard_exprs())
    titles = {panel["title"] for panel in dashboard()["panels"]}
    assert "Requests/s by route group" in titles
    assert "sum by (route_group) (rate(omnizap_http_requests_total" in exprs
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}," in exprs
    assert 'status_class="5xx"' in exprs
    assert "omnizap_http_slo_violation_total" in exprs
    assert "omnizap_queue_depth" in exprs


def test_dashboard_uses_only_metric_names_and_route_groups_of_the_seed():
    for expr in dashboard_exprs():
        used = {base_metric(name) for name in metric_names(expr)}
        assert used and used <= SEED_METRICS, f"unknown metrics {used - SEED_METRICS} in {expr}"
        assert route_groups_in(expr) <= SEED_ROUTE_GROUPS
    route_variable = next(v for v in dashboard()["templating"]["list"] if v["name"] == "route_group")
    assert set(route_variable["query"].split(",")) <= SEED_ROUTE_GROUPS


# --- promtool: real PromQL parsing and alert behaviour ----------------------------------------------


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing on CI: `make system-deps` installs Debian's prometheus package")
        pytest.skip("promtool not installed (make system-deps installs it)")
    return path


def _promtool(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120, check=False)


def test_promtool_accepts_the_alert_rules(promtool: str):
    result = _promtool(promtool, "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_fire_on_synthetic_series_and_stay_quiet_otherwise(promtool: str):
    result = _promtool(promtool, "test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_queries_are_valid_promql(promtool: str, tmp_path: Path):
    rules = []
    for index, expr in enumerate(dashboard_exprs()):
        concrete = expr.replace("$__rate_interval", "1m").replace("$route_group", "catalog_api_public")
        rules.append({"record": f"dashboard:query_{index}", "expr": concrete})
    rules_file = tmp_path / "dashboard-queries.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = _promtool(promtool, "check", "rules", str(rules_file))
    assert result.returncode == 0, result.stdout + result.stderr
