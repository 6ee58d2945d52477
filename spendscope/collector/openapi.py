"""The API document: OpenAPI 3.1, generated from the endpoints' declarations.

Every operation comes from an :class:`~spendscope.collector.web.Endpoint`: its parameters from the
pydantic model that validates the request (query and path parameters, or the JSON body of a POST),
its answers from ``response``, ``status`` and ``errors``. The document is therefore never written by
hand beside the code, and cannot drift from what the guard accepts. The OTLP receiver, which is not
an ``Endpoint``, is described here. ``GET /api/v1/openapi.json`` serves the document.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from starlette.responses import JSONResponse

from spendscope.collector import components
from spendscope.collector import schemas as s
from spendscope.collector.components import Component
from spendscope.collector.connections import MAX_HEADER_BYTES
from spendscope.collector.context import CollectorContext
from spendscope.collector.policy import PROTECTED
from spendscope.collector.web import MAX_JSON_BODY, Endpoint, Params

__all__ = ["COMPONENT", "document", "operation"]

_TAGS = {
    "ingest": "OTLP/HTTP ingest of spans",
    "query": "Spend, tokens, calls, latency, errors and rate limits",
    "insights": "The dashboard's aggregates (range and exact-match filters on every endpoint)",
    "pricing": "The versioned price table and re-pricing",
    "sync": "The OpenAI Usage and Costs sync and reconciliation",
    "alerts": "Alert instances, deliveries, tests and silences",
    "operations": "Health, metrics and this document",
}

_RESPONSES: dict[str, Any] = {
    "BadRequest": {
        "description": (
            "a parameter or the body was refused; the message names it and says why. Request "
            f"headers over {MAX_HEADER_BYTES // 1024} KiB (a request line with long filter lists) are "
            "refused by the HTTP server itself: in plain text, or far past it by closing the connection"
        ),
        "content": {"application/json": {"schema": s.ERROR}, "text/plain": {"schema": s.STRING}},
    },
    "Unauthorized": {
        "description": "missing or wrong bearer token (only when the collector has SPENDSCOPE_TOKEN)",
        "content": {"application/json": {"schema": s.ERROR}},
    },
    "TooLarge": {
        "description": f"the JSON body is over {MAX_JSON_BODY // 1024} KiB",
        "content": {"application/json": {"schema": s.ERROR}},
    },
    # The request policy (policy.py) answers these before any endpoint runs.
    "Forbidden": {
        "description": (
            "the Host is not a loopback name or in collector.allowed_hosts (a collector bound to "
            "loopback), or a state-changing request came from another Origin"
        ),
        "content": {"application/json": {"schema": s.ERROR}},
    },
    "NotJson": {
        "description": "a POST whose Content-Type is not application/json",
        "content": {"application/json": {"schema": s.ERROR}},
    },
    "Busy": {
        "description": "too many requests in flight (max_inflight_requests); retry after Retry-After",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": {"application/json": {"schema": s.ERROR}},
    },
}

_BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "required on /v1/, /api/ and /metrics when the collector has SPENDSCOPE_TOKEN",
}

# The receiver (collector/receiver.py) speaks OTLP, not this API's JSON conventions.
_STATUS_BODY = {"description": "a google.rpc.Status, protobuf or JSON like the request"}
_TRACES: dict[str, Any] = {
    "summary": "OTLP/HTTP traces: GenAI spans become calls",
    "description": (
        "Answers 200 only after the batch is committed. Spans that cannot be normalized are kept in "
        "rejected_spans and counted in partial_success."
    ),
    "operationId": "post_v1_traces",
    "tags": ["ingest"],
    "requestBody": {
        "required": True,
        "content": {
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "object"}},
        },
    },
    "responses": {
        "200": {
            "description": "committed; an ExportTraceServiceResponse, protobuf or JSON like the request",
            "content": {
                "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"type": "object"}},
            },
        },
        "400": {**_STATUS_BODY, "description": "the body could not be decoded"},
        "401": {"$ref": "#/components/responses/Unauthorized"},
        "403": {"$ref": "#/components/responses/Forbidden"},
        "408": {**_STATUS_BODY, "description": "the body did not arrive in time"},
        "413": {**_STATUS_BODY, "description": "the body is over max_body_bytes, compressed or not"},
        "415": {**_STATUS_BODY, "description": "unsupported content type"},
        "503": {
            **_STATUS_BODY,
            "description": (
                "the ingest queue is full, too many requests are in flight or the collector is "
                "stopping; retry after Retry-After"
            ),
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        },
    },
}


def _clean(schema: Mapping[str, Any], *, query: bool) -> dict[str, Any]:
    """A field's JSON Schema as a parameter's or body member's schema: no pydantic titles, and for a
    query parameter no null branch (an absent parameter is how a client says "none")."""
    out = {k: v for k, v in schema.items() if k != "title"}
    if query and "anyOf" in out:
        kept = [b for b in out["anyOf"] if b != {"type": "null"}]
        if len(kept) == 1:
            del out["anyOf"]
            out = {**kept[0], **out}
    if query and out.get("default", 0) is None:
        del out["default"]
    return out


def _parameters(e: Endpoint) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The operation's parameters and, for a POST, its request body, from ``e.params``."""
    model = e.params.model_json_schema()
    assert "$defs" not in model, f"{e.path}: parameters must be flat"
    required = set(model.get("required", ())) - e.params.filled
    in_path = set(re.findall(r"{(\w+)", e.path))
    params: list[dict[str, Any]] = []
    body: dict[str, Any] = {}
    for name, field in model.get("properties", {}).items():
        if e.method == "POST" and name not in in_path:
            body[name] = _clean(field, query=False)
            continue
        schema = _clean(field, query=True)
        param: dict[str, Any] = {
            "name": name,
            "in": "path" if name in in_path else "query",
            "required": name in in_path or name in required,
        }
        if "description" in schema:
            param["description"] = schema.pop("description")
        param["schema"] = schema
        if schema.get("type") == "array":  # the guard reads comma lists: group_by=model,day
            param |= {"style": "form", "explode": False}
        params.append(param)
    if e.method != "POST":
        return params, None
    body_schema: dict[str, Any] = {"type": "object", "properties": body}
    needed = [n for n in body if n in required]
    if needed:
        body_schema["required"] = needed
    request = {
        "required": bool(needed),
        "description": "a JSON object (an empty body is {})",
        "content": {"application/json": {"schema": body_schema}},
    }
    return params, request


def _ref(name: str) -> dict[str, str]:
    assert name in _RESPONSES, name
    return {"$ref": f"#/components/responses/{name}"}


def _error(description: str | tuple[str, Mapping[str, Any]]) -> dict[str, Any]:
    text, schema = (description, s.ERROR) if isinstance(description, str) else description
    return {"description": text, "content": {"application/json": {"schema": dict(schema)}}}


def operation(e: Endpoint) -> dict[str, Any]:
    """The OpenAPI operation object of one endpoint."""
    params, body = _parameters(e)
    ok = {
        "description": e.summary or "OK",
        "content": {e.media_type: {"schema": dict(e.response)}},
    }
    responses: dict[str, Any] = {str(e.status): ok}
    if params or body is not None:
        responses["400"] = _ref("BadRequest")
    if e.path.startswith(PROTECTED):
        responses["401"] = _ref("Unauthorized")
    responses["403"] = _ref("Forbidden")
    if e.method == "POST":
        responses["413"] = _ref("TooLarge")
        if e.path.startswith("/api/"):
            responses["415"] = _ref("NotJson")
    if e.path != "/healthz":  # always answered
        responses["503"] = _ref("Busy")
    for status, description in e.errors.items():
        answer = _error(description)
        if status == 503 and "503" in responses:  # the endpoint's own 503, and the policy's
            busy = _RESPONSES["Busy"]
            answer |= {"description": f"{answer['description']}; or {busy['description']}"}
            answer["headers"] = busy["headers"]
        responses[str(status)] = answer
    responses = dict(sorted(responses.items()))
    op: dict[str, Any] = {
        "summary": e.summary,
        "operationId": f"{e.method.lower()}_{re.sub(r'[^A-Za-z0-9]+', '_', e.path).strip('_')}",
        "tags": [e.tag],
    }
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = body
    op["responses"] = responses
    # Bearer when the collector has a token, nothing otherwise; /healthz is always open.
    op["security"] = [{"bearer": []}, {}] if e.path.startswith(PROTECTED) else []
    return op


def document(endpoints: Sequence[Endpoint], release: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``endpoints`` and the OTLP receiver."""
    paths: dict[str, dict[str, Any]] = {"/v1/traces": {"post": _TRACES}}
    for e in endpoints:
        paths.setdefault(e.path, {})[e.method.lower()] = operation(e)
    used = {t for item in paths.values() for op in item.values() for t in op["tags"]}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "spendscope collector",
            "version": release,
            "description": (
                "Cost and reliability of OpenAI API calls. Money is a plain decimal string in USD; "
                "times are ISO 8601 with a zone; start is inclusive and end exclusive; comma lists "
                "(group_by=model,day) for list parameters; bad input is a 400 naming the parameter."
            ),
        },
        "tags": [{"name": name, "description": text} for name, text in _TAGS.items() if name in used],
        "paths": paths,
        "components": {
            "schemas": s.DEFINITIONS,
            "responses": _RESPONSES,
            "securitySchemes": {"bearer": _BEARER},
        },
    }


def _release() -> str:
    try:
        return version("spendscope")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


@cache
def _document() -> dict[str, Any]:
    return document([e for c in components.load() for e in c.endpoints], _release())


async def serve(ctx: CollectorContext, p: Params) -> JSONResponse:
    return JSONResponse(_document())


_SELF = Endpoint(
    "GET",
    "/api/v1/openapi.json",
    serve,
    summary="This document: OpenAPI 3.1 of every endpoint",
    response={"type": "object", "required": ["openapi", "paths"]},
    tag="operations",
)

COMPONENT = Component("openapi", (_SELF,))
