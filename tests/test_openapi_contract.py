"""The OpenAPI document against the server it describes (schemathesis, every check on).

schemathesis generates requests from `/api-docs/openapi.json` (valid ones and deliberately invalid
ones) and sends them to the app over ASGI; every check must pass: declared status codes, declared
content types, response bodies valid against their schemas, invalid input refused with a 4xx, valid
input accepted, declared headers present, and so on. The app runs on a small seeded catalog whose
pack keys and sticker ids are given to the generator as parameter examples, so detail, file and
download routes get real hits as well as misses. Fixed seed, no example database: deterministic.
"""

from __future__ import annotations

import copy
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs
import media_factory as mf
import pytest
import schemathesis
from fastapi.testclient import TestClient

from omnizap.config import Settings
from omnizap.core.packs.service import PackService
from omnizap.core.stickers.service import StickerService
from omnizap.platform.db.migrate import upgrade
from omnizap.runtime import Runtime
from omnizap.web.app import create_app
from omnizap.web.operations import OPENAPI_PATH

OWNER = "5511955554444@s.whatsapp.net"
SEED = 20260508
MAX_EXAMPLES = 12


def _seed_catalog(runtime: Runtime) -> dict[str, list[str]]:
    """Public, unlisted and private packs with real stickers; returns the pack keys and sticker files
    to offer the generator: reachable ones, and a private pack and its sticker, which answer 404.

    Every reachable pack has the 3 stickers WhatsApp requires, so its download is a 200 (a smaller
    pack answers 422 EXPORT_INVALID, which tests/test_asset_delivery.py covers)."""
    stickers = StickerService(runtime.database, runtime.storage, runtime.settings)
    suffixes = iter(["a1b2c", "k3x9q", "q7w8e", "z0z0z"])
    packs = PackService(runtime.database, runtime.settings, key_suffix=lambda: next(suffixes))
    ids = [
        stickers.ingest(mf.encode_image(mf.graphic_image(96, 96, seed), "PNG"), owner_jid=OWNER).asset.id
        for seed in range(1, 6)
    ]
    sunny = packs.create_pack(OWNER, "Sunny Cats", publisher="Ana", initial_sticker_ids=ids[0:3])
    memes = packs.create_pack(OWNER, "Office Memes", publisher="Bea", initial_sticker_ids=ids[1:4])
    quiet = packs.create_pack(OWNER, "Quiet Corner", visibility="unlisted", initial_sticker_ids=ids[2:5])
    hidden = packs.create_pack(OWNER, "Private Drafts", visibility="private", initial_sticker_ids=ids[4:5])
    keys = [sunny.pack_key, memes.pack_key, quiet.pack_key, hidden.pack_key]
    return {"packKey": keys, "stickerId": [f"{ids[0]}.webp", ids[3], f"{ids[4]}.webp"]}


def _with_examples(document: dict[str, Any], examples: dict[str, list[str]]) -> dict[str, Any]:
    """The served document with the seeded values as examples of the path parameters of that name."""
    changed = copy.deepcopy(document)
    for operations in changed["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in examples:
                    parameter["examples"] = {
                        f"seeded-{index}": {"value": value}
                        for index, value in enumerate(examples[parameter["name"]])
                    }
    return changed


def _settings(folder: Path) -> Settings:
    return Settings(
        _env_file=None,
        database_url=f"sqlite:///{folder / 'omnizap.db'}",
        sticker_storage_dir=folder / "stickers",
        sticker_pack_auto_collect_enabled=False,
        site_origin="http://stickers.test",
        http_access_log=False,
    )


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    runtime = Runtime(_settings(tmp_path_factory.mktemp("openapi-contract")))
    upgrade(runtime.database)
    examples = _seed_catalog(runtime)
    app = create_app(runtime)
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none", "deterministic": True},
            "checks": {"enabled": True},
            # A cursor is opaque and signed: no generated value can be valid, so none is sent (the
            # hostile-cursor tests in tests/test_web_app.py cover refusals).
            "parameters": {"query.cursor": ""},
        }
    )
    with TestClient(app) as client:  # runs the lifespan: the catalog service is started
        document = client.get(OPENAPI_PATH).json()
        schema = schemathesis.openapi.from_dict(_with_examples(document, examples), config=config)
        schema.app = app
        yield schema
    runtime.close()


@dataclass
class ContractRun:
    """What one engine run found and did."""

    findings: list[str] = field(default_factory=list)
    cases_by_phase: Counter[str] = field(default_factory=Counter)
    statuses: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    checks_run: set[str] = field(default_factory=set)


def run_contract(schema: Any) -> ContractRun:
    """Every phase of schemathesis's engine (examples, coverage, fuzzing, stateful), as its CLI runs
    them; failed checks and errors are collected as readable lines with a curl to reproduce."""
    from schemathesis.engine import events, from_schema

    run = ContractRun()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            run.cases_by_phase[event.phase.value] += len(recorder.cases)
            for case_id, interaction in recorder.interactions.items():
                if interaction.response is not None:
                    label = recorder.cases[case_id].value.operation.label
                    run.statuses[label].add(interaction.response.status_code)
            for checks in recorder.checks.values():
                for check in checks:
                    run.checks_run.add(check.name)
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        run.findings.append(
                            f"{recorder.label} [{check.name}] {failure.title}: {failure.message}\n"
                            f"    {check.failure_info.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError):
            run.findings.append(f"{event.label}: error {event.value!r}")
        elif isinstance(event, events.FatalError):
            run.findings.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            run.findings.extend(f"after run: {each.title}: {each.message}" for each in event.failures)
    return run


def test_the_server_answers_as_its_openapi_document_says(api_schema: Any):
    run = run_contract(api_schema)
    assert not run.findings, "\n".join(sorted(set(run.findings)))
    # The run was a real one: every phase made requests, the response checks ran, and the seeded
    # catalog gave hits as well as misses on the routes that take a pack key.
    assert {"examples", "coverage", "fuzzing", "stateful"} <= set(run.cases_by_phase), run.cases_by_phase
    assert run.checks_run >= EXPECTED_CHECKS, EXPECTED_CHECKS - run.checks_run
    api = "/api/sticker-packs/{packKey}"
    for label in (
        f"GET {api}",
        f"GET {api}/stickers/{{stickerId}}",
        f"GET {api}/download/whatsapp",
        f"POST {api}/like",
    ):
        assert {200, 404} <= run.statuses[label], (label, run.statuses[label])
    assert 400 in run.statuses["GET /api/sticker-packs"]


# Every built-in check but `max_response_time`, which needs a time limit (tests do not assert on timing).
EXPECTED_CHECKS = {
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "use_after_free",
    "ensure_resource_availability",
    "ignored_auth",
    "object_level_authorization",
}


def test_every_documented_example_fits_its_schema(tmp_path: Path):
    """The examples shown next to each schema in the document are valid against it."""
    runtime = Runtime(_settings(tmp_path))
    try:
        document = create_app(runtime).openapi()
    finally:
        runtime.close()
    checked = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                for media_type, content in answer.get("content", {}).items():
                    if "example" not in content:
                        continue
                    schema = {**content["schema"], "components": document["components"]}
                    errors = [
                        error.message
                        for error in jsonschema_rs.validator_for(schema).iter_errors(content["example"])
                    ]
                    assert not errors, (method, path, status, media_type, errors[:3])
                    checked += 1
    assert checked >= 10, checked
