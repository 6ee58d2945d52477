"""JSON Schema pieces of the API's answers, written once and composed by every endpoint's ``response``.

The named definitions (:data:`DEFINITIONS`: money, times, the error body) become the OpenAPI
document's ``components.schemas`` and are used through ``$ref``; the builders below put objects and
``{"rows": [...]}`` envelopes together from them. Pure data: nothing here knows an endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "BOOL",
    "COUNT",
    "DATE",
    "DEFINITIONS",
    "ERROR",
    "INT",
    "KEY_VALUE",
    "MONEY",
    "MONEY_OR_NULL",
    "NUMBER",
    "RANGE",
    "RATIO_OR_NULL",
    "STRING",
    "STRINGS",
    "TIME",
    "Schema",
    "array",
    "nullable",
    "obj",
    "ref",
    "rows",
]

Schema = dict[str, Any]

# The API writes money with pricing.money_str: a plain decimal, never an exponent.
_PLAIN_DECIMAL = r"^-?[0-9]+(\.[0-9]+)?$"

DEFINITIONS: dict[str, Schema] = {
    "Money": {
        "type": "string",
        "pattern": _PLAIN_DECIMAL,
        "description": "USD as a plain decimal string (exact; no exponent), e.g. 0.0007875",
    },
    "Ratio": {
        "type": "string",
        "pattern": _PLAIN_DECIMAL,
        "description": "a ratio as a plain decimal string (1 is 100%)",
    },
    "Time": {"type": "string", "format": "date-time", "description": "ISO 8601 in UTC"},
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string", "description": "what was wrong, naming the parameter"}},
    },
}


def ref(name: str) -> Schema:
    """A reference to one of :data:`DEFINITIONS`."""
    assert name in DEFINITIONS, name
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """``schema`` or null."""
    kind = schema.get("type")
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def obj(
    properties: Mapping[str, Schema],
    optional: Mapping[str, Schema] | None = None,
    *,
    others: Schema | None = None,
) -> Schema:
    """An object that has every one of ``properties`` and may have the ``optional`` ones; any other
    member is allowed, or must match ``others`` when given (e.g. a row's group keys)."""
    out: Schema = {
        "type": "object",
        "required": list(properties),
        "properties": {**properties, **(optional or {})},
    }
    if others is not None:
        out["additionalProperties"] = others
    return out


def rows(item: Schema, **envelope: Schema) -> Schema:
    """The list answer: ``{"rows": [item, ...]}`` with the ``envelope`` fields beside it."""
    return obj({**envelope, "rows": array(item)})


MONEY = ref("Money")
MONEY_OR_NULL = nullable(MONEY)
RATIO_OR_NULL = nullable(ref("Ratio"))
ERROR = ref("Error")
TIME = ref("Time")
DATE: Schema = {"type": "string", "format": "date"}
STRING: Schema = {"type": "string"}
STRINGS = array(STRING)
INT: Schema = {"type": "integer"}
COUNT: Schema = {"type": "integer", "minimum": 0}
NUMBER: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
# A group key's value in a row: text, a day, a status code, a flag, or null when the calls had none.
KEY_VALUE: Schema = {"type": ["string", "integer", "boolean", "null"]}
# The answered time range of every ranged endpoint.
RANGE: dict[str, Schema] = {"start": TIME, "end": TIME}
