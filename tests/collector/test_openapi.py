"""The API document: valid OpenAPI 3.1, generated from the endpoints, and true of a real collector.

schemathesis fuzzes a real collector seeded with calls, synced against the fake OpenAI and with an
alert rule that has a channel: every GET, and the POSTs and the DELETE that are safe on a scratch
database. Each answer must be no server error, a documented status, and conform to the documented
schema (the 400s included). Examples are bounded and derandomized so the run is the same every time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

pytest.importorskip("duckdb")

import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from spendscope.collector import components
from spendscope.collector.connections import MAX_HEADER_BYTES
from spendscope.collector.openapi import document
from spendscope.fake_openai.server import FakeOpenAI
from tests.collector.helpers import CollectorProcess
from tests.collector.seed import seeded_collector

pytestmark = pytest.mark.slow

CONFIG = """
[sync]
on_start = false
interval = "1d"

[alerts]
interval = "1h"

[alerts.channels.hook]
type = "webhook"
url = "http://127.0.0.1:9/nothing-listens-here"

[[alerts.rules]]
name = "errors"
kind = "error_rate"
threshold_pct = 1
min_calls = 1
window = "7d"
channels = ["hook"]

[[alerts.rules]]
name = "quiet"
kind = "rate_429"
threshold_pct = 50
"""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def collector(
    fake_openai_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CollectorProcess]:
    with seeded_collector(Path(tmp_path_factory.mktemp("openapi")), fake_openai_server, CONFIG) as proc:
        yield proc


@pytest.fixture(scope="module")
def api_document(collector: CollectorProcess) -> dict[str, Any]:
    resp = collector.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    doc: dict[str, Any] = resp.json()
    return doc


@pytest.fixture(scope="module")
def api_schema(collector: CollectorProcess, api_document: dict[str, Any]) -> Any:
    schema = schemathesis.openapi.from_dict(api_document)
    schema.config.update(base_url=collector.url, request_timeout=10)
    return schema


def test_the_document_is_valid_openapi_31(api_document: dict[str, Any]) -> None:
    validate(api_document)
    assert api_document["openapi"].startswith("3.1")


def test_every_endpoint_is_described_with_its_answer(api_document: dict[str, Any]) -> None:
    endpoints = [e for c in components.load() for e in c.endpoints]
    assert api_document["paths"] == document(endpoints, api_document["info"]["version"])["paths"]
    for e in endpoints:
        assert e.response, f"{e.method} {e.path} declares no response schema"
        op = api_document["paths"][e.path][e.method.lower()]
        assert str(e.status) in op["responses"]
    api = {p for p in api_document["paths"] if p.startswith("/api/v1/")}
    assert {"/api/v1/spend", "/api/v1/openapi.json", "/api/v1/alerts/{rule}/test"} <= api
    assert {"/v1/traces", "/healthz", "/metrics"} <= set(api_document["paths"])


def test_parameters_come_from_the_models(api_document: dict[str, Any]) -> None:
    spend = {p["name"]: p for p in api_document["paths"]["/api/v1/spend"]["get"]["parameters"]}
    group_by = spend["group_by"]
    assert group_by["style"] == "form" and group_by["explode"] is False
    keys = group_by["schema"]["items"]["enum"]
    assert "model" in keys and "colour" not in keys
    # A validator fills start and end when absent: optional to the client.
    assert spend["start"]["required"] is False and spend["start"]["schema"]["format"] == "date-time"
    silence = api_document["paths"]["/api/v1/alerts/silences/{silence_id}"]["delete"]["parameters"]
    assert silence == [
        {
            "name": "silence_id",
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1, "exclusiveMaximum": 1 << 62},
        }
    ]
    body = api_document["paths"]["/api/v1/prices/reprice"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["required"] == ["since"]
    money = api_document["components"]["schemas"]["Money"]
    assert money["type"] == "string" and "pattern" in money


_SAFE = (
    "/api/v1/sync",
    "/api/v1/prices/reprice",
    "/api/v1/alerts/silences",
    "/api/v1/alerts/{rule}/test",
    "/api/v1/lake/compact",  # without a lake: 404, nothing happens
)


def _request_line(case: Any) -> int:
    """Bytes of the request's target, as sent: the HTTP layer refuses headers over MAX_HEADER_BYTES
    (a limit on the whole request line that no parameter's schema can state; the document says it
    in its 400). Five filter lists of 50 values of 4,096 characters are each valid, together not."""
    prepared = requests.Request(**case.as_transport_kwargs(base_url="http://h")).prepare()
    return len(str(prepared.path_url))


def _takes_a_rule(definition: dict[str, Any], path: str) -> bool:
    body = definition.get("requestBody", {}).get("content", {}).get("application/json", {})
    return "{rule}" in path or "rule" in body.get("schema", {}).get("properties", {})


def _real_rule(case: Any) -> Any:
    if "rule" in (case.path_parameters or {}):
        case.path_parameters["rule"] = "errors"
    if isinstance(case.body, dict) and "rule" in case.body:
        case.body["rule"] = "errors"
    return case


# Examples per operation and mode: about 30 s for the whole API on the 2-core machine.
FUZZ = settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def test_a_real_collector_answers_as_documented(api_schema: Any) -> None:
    """Valid and invalid inputs for every operation; every finding is reported, not only the first."""
    findings: list[str] = []
    operations = 0
    for result in api_schema.exclude(path="/v1/traces").get_all_operations():
        operation = result.ok()
        if operation.method.upper() == "POST" and operation.path not in _SAFE:
            findings.append(f"POST {operation.path} is not known to be safe here: add it to _SAFE if it is")
            continue
        operations += 1
        runs = [(mode.value, operation.as_strategy(generation_mode=mode)) for mode in GenerationMode]
        if _takes_a_rule(operation.definition.raw, operation.path):
            # A made-up rule name stops at "no rule named ...": also fuzz the rest with a real one.
            runs.append(("positive, a real rule", operation.as_strategy().map(_real_rule)))
        for label, strategy in runs:

            @FUZZ
            @given(case=strategy)
            def check(case: Any) -> None:
                assume(_request_line(case) <= MAX_HEADER_BYTES)
                case.call_and_validate(checks=CHECKS)

            try:
                check()
            except Unsatisfiable:  # no parameters to make invalid (GET /healthz, say)
                assert label == "negative", f"{operation.path}: no valid input"
            except (Exception, BaseExceptionGroup) as exc:  # a finding: note it, go on
                # The reproducing curl line can hold a 64 KiB URL: keep the finding, not the noise.
                text = str(exc).split("Reproduce with")[0][:2000]
                findings.append(f"{operation.method.upper()} {operation.path} ({label}): {text}")
    assert operations >= 30
    assert not findings, "\n\n".join(findings)


def test_the_success_answers_of_the_state_changing_endpoints(api_schema: Any) -> None:
    """The fuzzer rarely names a real rule or silence: their 2xx answers are checked here."""
    cases = [
        api_schema["/api/v1/sync"]["POST"].Case(body={}, media_type="application/json"),
        api_schema["/api/v1/alerts/{rule}/test"]["POST"].Case(
            path_parameters={"rule": "errors"}, body={}, media_type="application/json"
        ),
        api_schema["/api/v1/alerts/silences"]["POST"].Case(body={"rule": "errors", "duration": "2h"}),
        api_schema["/api/v1/prices/reprice"]["POST"].Case(body={"since": "2026-01-01T00:00:00Z"}),
    ]
    for case in cases:
        resp = case.call_and_validate(checks=CHECKS)
        assert resp.status_code in (200, 201), resp.text
    silence_id = cases[2].call().json()["silence_id"]
    delete = api_schema["/api/v1/alerts/silences/{silence_id}"]["DELETE"]
    ended = delete.Case(path_parameters={"silence_id": silence_id}).call_and_validate(checks=CHECKS)
    assert ended.status_code == 200
    gone = delete.Case(path_parameters={"silence_id": silence_id}).call_and_validate(checks=CHECKS)
    assert gone.status_code == 404
