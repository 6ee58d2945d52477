"""The collector's HTTP conventions in one place: declared endpoints, one error, one guard, one parser.

Every ``/api/v1`` endpoint is an :class:`Endpoint`: a module-level handler ``async (ctx, params)``
plus the pydantic model of its parameters (query string, path and, for POST, the JSON body). The
guard (:func:`route`) parses them with that model, answers 400 naming the parameter for anything
it refuses, turns :class:`ApiError` into its status, and serializes what the handler returns. The
same declarations describe the API (its OpenAPI document), so validation and description cannot
drift apart.

Parameter types shared by the endpoints live here too: times, comma lists of keys, limits.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from spendscope.collector.context import CollectorContext

__all__ = [
    "ApiError",
    "Choice",
    "Endpoint",
    "Keys",
    "Limit",
    "Params",
    "TimeRange",
    "Timestamp",
    "Values",
    "iso",
    "parse_time",
    "route",
    "routes",
]

# JSON bodies of the state-changing endpoints are small documents.
MAX_JSON_BODY = 64 * 1024
# Times outside these bounds cannot be stored and overflow date arithmetic; refuse them up front.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


class ApiError(Exception):
    """An answer other than 200: ``{"error": message, **extra}`` with ``status``."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def iso(t: datetime) -> str:
    """A UTC time as the API writes it (``Z``, not ``+00:00``)."""
    return t.isoformat().replace("+00:00", "Z")


# --- parameter types -------------------------------------------------------------------------------


def parse_time(value: Any) -> datetime:
    """ISO 8601 with a zone (``Z`` or an offset), or a bare date meaning that UTC day's start."""
    if isinstance(value, datetime):
        t = value
    else:
        if not isinstance(value, str):
            raise ValueError(f"{value!r:.40} is not an ISO 8601 date or time")
        text = value.strip()
        try:
            if len(text) == 10:
                t = datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
            else:
                t = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r:.40} is not an ISO 8601 date or time") from None
        if t.tzinfo is None:
            raise ValueError(f"{value!r:.40} has no time zone; add Z or an offset such as +00:00")
    try:
        t = t.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(f"{value!r:.40} is out of range") from None
    if not _EARLIEST <= t < _LATEST:
        raise ValueError(f"{value!r:.40} is out of range (years 1970 to 8999)")
    return t


Timestamp = Annotated[
    datetime,
    BeforeValidator(parse_time),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": "ISO 8601 with a zone (Z or an offset), or a date meaning that UTC day's start",
        }
    ),
]


@dataclass(frozen=True, slots=True)
class Keys:
    """Annotation for a ``list[str]`` parameter: a comma list of keys from ``allowed``, no repeats.

    ``group_by: Annotated[list[str], Keys(GROUP_KEYS)] = []``
    """

    allowed: frozenset[str]

    def __init__(self, allowed: Collection[str]) -> None:
        object.__setattr__(self, "allowed", frozenset(allowed))

    def parse(self, value: Any) -> tuple[str, ...]:
        if isinstance(value, list):
            keys = [str(k) for k in value]
        elif isinstance(value, str):
            keys = [k.strip() for k in value.split(",") if k.strip()]
        else:
            raise ValueError("expected a comma-separated list")
        for k in keys:
            if k not in self.allowed:
                raise ValueError(f"unknown key {k[:40]!r}; use any of {', '.join(sorted(self.allowed))}")
        if len(set(keys)) != len(keys):
            raise ValueError("a key is repeated")
        return tuple(keys)

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(self.parse, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "array",
            "items": {"type": "string", "enum": sorted(self.allowed)},
            "uniqueItems": True,
        }


# --- parameter models --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Choice:
    """Annotation for a ``str`` parameter that is one of ``allowed``: ``by: Annotated[str, Choice(K)]``."""

    allowed: tuple[str, ...]

    def __init__(self, allowed: Collection[str]) -> None:
        object.__setattr__(self, "allowed", tuple(sorted(allowed)))

    def parse(self, value: Any) -> str:
        if value not in self.allowed:
            raise ValueError(f"{str(value)[:40]!r} is not one of {', '.join(self.allowed)}")
        return str(value)

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(self.parse, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "enum": list(self.allowed)}


@dataclass(frozen=True, slots=True)
class Values:
    """Annotation for a ``tuple[str, ...]`` parameter: a comma list of values, repeats dropped."""

    maximum: int = 50

    def parse(self, value: Any) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ValueError("expected a comma-separated list")
        values = tuple(dict.fromkeys(v.strip() for v in map(str, items) if v.strip()))
        if len(values) > self.maximum:
            raise ValueError(f"at most {self.maximum} values")
        return values

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(self.parse, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        items = {"type": "string", "maxLength": 4096}
        return {"type": "array", "items": items, "maxItems": self.maximum}


def Limit(maximum: int = 10_000) -> Any:
    """Annotation for how many rows at most: ``limit: Annotated[int, Limit(1000)] = 100``."""
    return Field(ge=1, le=maximum, description=f"rows at most (1 to {maximum})")


class Params(BaseModel):
    """Base of every endpoint's parameters. Unknown query parameters are ignored."""

    model_config = ConfigDict(extra="ignore", str_max_length=4096)
    # Fields a validator fills when the client leaves them out (not required of the client).
    filled: ClassVar[frozenset[str]] = frozenset()


class TimeRange(Params):
    """``start`` (inclusive) and ``end`` (exclusive); by default the last ``default_range`` to now."""

    default_range: ClassVar[timedelta] = timedelta(days=30)
    filled = frozenset({"start", "end"})

    start: Timestamp = Field(description="inclusive; default end minus 30 days")
    end: Timestamp = Field(description="exclusive; default now")

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if not data.get("end"):
            data["end"] = (info.context or {}).get("now") or datetime.now(UTC)
        if not data.get("start"):
            try:
                end = parse_time(data["end"])
            except ValueError:
                return data  # the end field names the problem
            data["start"] = max(end - cls.default_range, _EARLIEST)
        return data

    @model_validator(mode="after")
    def _order(self) -> TimeRange:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


# --- endpoints -----------------------------------------------------------------------------------------

Handler = Callable[["CollectorContext", Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One ``/api/v1`` endpoint: method, path, handler and what it takes and answers.

    ``params`` validates the query string and path parameters (GET, DELETE) or, for POST, the
    path parameters and the JSON body. ``response`` is the JSON Schema of a ``status`` answer
    (200 unless said) in ``media_type``, and ``errors`` the other statuses it may answer, with what
    they mean: a description (the body is ``{"error": ...}``) or a description and the body's
    schema. The API document (:mod:`spendscope.collector.openapi`) is built from these.
    """

    method: Literal["GET", "POST", "DELETE"]
    path: str
    handler: Handler
    params: type[Params] = Params
    summary: str = ""
    response: Mapping[str, Any] = field(default_factory=dict)
    errors: Mapping[int, str | tuple[str, Mapping[str, Any]]] = field(default_factory=dict)
    tag: str = "query"
    status: int = 200
    media_type: str = "application/json"


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _problem(exc: ValidationError) -> str:
    """One line naming each refused parameter and why."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        msg = str(err["msg"]).removeprefix("Value error, ")
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


async def _inputs(endpoint: Endpoint, request: Request) -> dict[str, Any]:
    if endpoint.method != "POST":
        return {**request.query_params, **request.path_params}
    body = await request.body()
    if len(body) > MAX_JSON_BODY:
        raise ApiError(413, f"body over {MAX_JSON_BODY} bytes")
    try:
        doc = json.loads(body) if body.strip() else {}
    except (ValueError, RecursionError):
        raise ApiError(400, "body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "body must be a JSON object")
    return {**doc, **request.path_params}


def _answer(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    return JSONResponse(result)


def route(ctx: CollectorContext, endpoint: Endpoint) -> Route:
    """The Starlette route of ``endpoint``: parse, call, answer; the one guard of the query API."""

    async def serve(request: Request) -> Response:
        try:
            inputs = await _inputs(endpoint, request)
            try:
                params = endpoint.params.model_validate(inputs, context={"now": ctx.clock()})
            except ValidationError as exc:
                raise ApiError(400, _problem(exc)) from None
            return _answer(await endpoint.handler(ctx, params))
        except ApiError as exc:
            return _error(exc.status, exc.message, **exc.extra)

    return Route(endpoint.path, serve, methods=[endpoint.method], name=f"{endpoint.method} {endpoint.path}")


def routes(ctx: CollectorContext, endpoints: Sequence[Endpoint]) -> list[Route]:
    return [route(ctx, e) for e in endpoints]
