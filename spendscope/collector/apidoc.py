"""The API document rendered as Markdown for ``docs/api-reference.md`` (see :mod:`docgen`).

The reference is rendered from the same OpenAPI document ``GET /api/v1/openapi.json`` serves, so it
is generated from the endpoints' declarations; ``make docs`` rewrites it and a test fails when the
committed page is stale. Nothing in the page loads from anywhere: it is plain Markdown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from spendscope.collector import components
from spendscope.collector.openapi import document

__all__ = ["markdown", "reference", "shape", "site_document"]

_REF = "#/components/schemas/"


def site_document() -> dict[str, Any]:
    """The document of every endpoint, with the version left out (the page must not change per release)."""
    return document([e for c in components.load() for e in c.endpoints], "see /api/v1/openapi.json")


def _type(schema: Mapping[str, Any]) -> str:
    """A short name for a scalar schema: ``Money``, ``string (date-time)``, ``integer ≥ 0``, ``a | b``."""
    if "$ref" in schema:
        return str(schema["$ref"]).removeprefix(_REF)
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    for combo in ("anyOf", "oneOf"):
        if combo in schema:
            return " or ".join(_type(s) for s in schema[combo])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(_type({**schema, "type": k}) for k in kind)
    if kind == "string" and "format" in schema:
        return f"string ({schema['format']})"
    if kind == "integer" and schema.get("minimum") == 0:
        return "integer ≥ 0"
    if kind == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema:
        return f"object of {_type(schema['additionalProperties'])}"
    return str(kind)


def shape(schema: Mapping[str, Any], indent: str = "") -> list[str]:
    """An answer's shape, one member a line: objects and lists of objects are opened up."""
    inner = indent + "  "
    if schema.get("type") == "array" and "properties" in schema.get("items", {}):
        members = shape(schema["items"], indent)
        return ["[{", *members[1:-1], f"{indent}}}]"]
    if "properties" not in schema:
        return [_type(schema)]
    required = set(schema.get("required", ()))
    lines = ["{"]
    for name, member in schema["properties"].items():
        optional = "" if name in required else "?"
        body = shape(member, inner)
        lines.append(f"{inner}{name}{optional}: {body[0]}")
        lines += body[1:]
    if isinstance(schema.get("additionalProperties"), dict):
        lines.append(f"{inner}<group key>: {_type(schema['additionalProperties'])}")
    lines.append(f"{indent}}}")
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _parameters(op: Mapping[str, Any]) -> list[str]:
    rows = []
    for p in op.get("parameters", ()):
        schema = p["schema"]
        kind = _type(schema)
        if schema.get("type") == "array":
            kind = f"comma list of {_type(schema['items'])}"
        limits = [f"{k} {schema[k]}" for k in ("minimum", "maximum", "maxItems") if k in schema]
        default = f"default `{json.dumps(schema['default'])}`" if "default" in schema else ""
        notes = "; ".join(x for x in (p.get("description", ""), default, *limits) if x)
        needed = "yes" if p["required"] else "no"
        rows.append(f"| `{p['name']}` | {p['in']} | {kind} | {needed} | {_cell(notes)} |")
    if not rows:
        return []
    return ["| parameter | in | type | required | notes |", "|---|---|---|---|---|", *rows, ""]


def _body(op: Mapping[str, Any]) -> list[str]:
    body = op.get("requestBody")
    if body is None:
        return []
    if "application/json" not in body["content"] or len(body["content"]) > 1:
        return [f"Body: {' or '.join(f'`{m}`' for m in body['content'])}.", ""]
    schema = body["content"]["application/json"]["schema"]
    if not schema.get("properties"):
        return ["Body: none needed (an empty body or `{}`).", ""]
    required = set(schema.get("required", ()))
    rows = []
    for name, member in schema["properties"].items():
        needed = "yes" if name in required else "no"
        rows.append(f"| `{name}` | {_type(member)} | {needed} | {_cell(member.get('description', ''))} |")
    return ["JSON body:", "", "| member | type | required | notes |", "|---|---|---|---|", *rows, ""]


def _answers(op: Mapping[str, Any], responses: Mapping[str, Any]) -> list[str]:
    lines = []
    for status, given in op["responses"].items():
        answer = responses[str(given["$ref"]).rsplit("/", 1)[-1]] if "$ref" in given else given
        lines.append(f"- **{status}**: {_cell(answer['description'])}")
    ok = next(iter(op["responses"].values()))
    media, content = next(iter(ok.get("content", {}).items()))
    lines += ["", f"Answer ({media}):", "", "```", *shape(content["schema"]), "```", ""]
    return lines


def markdown(doc: Mapping[str, Any]) -> str:
    """Every operation by tag, with its parameters, body, statuses and answer shape."""
    out = []
    responses = doc["components"]["responses"]
    for tag in doc["tags"]:
        out += [f"## {tag['name'].capitalize()}", "", tag["description"] + ".", ""]
        for path, item in doc["paths"].items():
            for method, op in item.items():
                if op["tags"][0] != tag["name"]:
                    continue
                out += [f"### `{method.upper()} {path}`", "", op["summary"] + ".", ""]
                out += _parameters(op) + _body(op) + _answers(op, responses)
    return "\n".join(out).rstrip("\n") + "\n"


def reference() -> str:
    """The page's generated part (docgen)."""
    return markdown(site_document())
