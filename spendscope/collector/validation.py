"""Turn a TOML table into a section model, or into one :class:`ConfigError` that lists every problem.

Overrides are applied first, from the declarations: a command-line flag wins over its environment
variable, which wins over the file. Then pydantic validates the whole table, and each of its errors
becomes one line a person can act on: ``FILE: alerts.rules[2] (name).threshold_pct: must be between
0 and 100, got 500`` (or ``VARIABLE (sets sync.base_url): ...`` when the value came from the
environment).
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from spendscope.collector.section import ConfigError, Section, declared, file_key

__all__ = ["section_type", "validate"]

S = TypeVar("S", bound=Section)
Loc = tuple[str | int, ...]
_MAX_LINES = 20


def validate(
    model: type[S],
    table: Any,
    *,
    path: str | None,
    env: Mapping[str, str],
    flags: Mapping[str, Any] | None = None,
    prefix: tuple[str, ...] = (),
    error: type[ConfigError] = ConfigError,
) -> S:
    """``table`` (the file's, at ``prefix``) as ``model``, with env and flag overrides applied."""
    where = path or "<config>"
    if not isinstance(table, dict):
        raise error(f"{where}: {'.'.join(prefix)}: must be a table, got {table!r:.60}")
    data = dict(table)
    sources: dict[Loc, str] = {}
    lines: list[str] = []
    _overlay(model, data, env, flags or {}, (), sources, lines, where, prefix)
    try:
        result = model.model_validate(data, by_alias=True, by_name=False, context={"env": env})
    except ValidationError as exc:
        lines += [_line(model, data, e, where, sources, prefix) for e in exc.errors()]
    if lines:
        more = [f"... and {len(lines) - _MAX_LINES} more"] if len(lines) > _MAX_LINES else []
        raise error("\n".join(lines[:_MAX_LINES] + more))
    return result


def _overlay(
    model: type[Section],
    data: dict[str, Any],
    env: Mapping[str, str],
    flags: Mapping[str, Any],
    loc: Loc,
    sources: dict[Loc, str],
    lines: list[str],
    where: str,
    prefix: tuple[str, ...],
) -> None:
    """Apply the declared env and flag overrides in place, down the fixed tables of ``model``."""
    for name, f in model.model_fields.items():
        key, x = file_key(name, f), declared(f)
        if x.get("x-internal"):
            continue
        sub, optional = section_type(f.annotation)
        if sub is not None:
            # An optional table exists only if written, or if the environment gives one of its
            # required keys (SPENDSCOPE_LAKE_CATALOG alone makes a [lake]).
            table = data.get(key, {} if not optional or _required_from_env(sub, env) else None)
            if isinstance(table, dict):  # anything else is reported by validation
                table = dict(table)
                _overlay(sub, table, env, flags, (*loc, key), sources, lines, where, prefix)
                if table or key in data:
                    data[key] = table
            continue
        var = x.get("x-env")
        if x.get("x-env-only") and key in data:
            dotted = ".".join(map(str, (*prefix, *loc, key)))
            lines.append(f"{where}: {dotted}: is read only from the environment ({var}), never from the file")
        renamed = data.get(x["x-env-name-key"]) if "x-env-name-key" in x else None
        if isinstance(renamed, str) and renamed.strip():
            var = renamed.strip()
        if var and env.get(var):
            data[key], sources[(*loc, key)] = env[var], var
        flag = x.get("x-flag")
        if flag and flags.get(flag) not in (None, ""):
            data[key], sources[(*loc, key)] = flags[flag], flag


def _required_from_env(model: type[Section], env: Mapping[str, str]) -> bool:
    for f in model.model_fields.values():
        var = declared(f).get("x-env")
        if f.is_required() and var and env.get(var):
            return True
    return False


def section_type(annotation: Any) -> tuple[type[Section] | None, bool]:
    """The section a field holds (``X`` or ``X | None``), and whether the table may be absent."""
    options = (
        [a for a in get_args(annotation) if a is not type(None)] if get_args(annotation) else [annotation]
    )
    optional = len(options) < len(get_args(annotation))
    if len(options) == 1 and isinstance(options[0], type) and issubclass(options[0], Section):
        return options[0], optional
    return None, False


@dataclass
class _Spot:
    """What is declared at an error's location: its printable path and the field or union there."""

    path: str = ""
    info: FieldInfo | None = None
    owner: type[BaseModel] | None = None  # the model whose key the last step named
    metadata: list[Any] = field(default_factory=list)
    union: dict[str, type[BaseModel]] | None = None  # tag -> model, at a tagged union
    discriminator: str = ""


def _walk(model: type[BaseModel], data: Any, loc: Loc) -> _Spot:
    spot = _Spot()
    tp: Any = model
    for part in loc:
        tp = _strip(tp, spot)
        if spot.union is not None:
            if part in spot.union:  # pydantic names the tag in the location: not a key
                tp, spot.union = spot.union[str(part)], None
                continue
            tp = spot.union.get(str(_child(data, spot.discriminator)), tp)
            spot.union = None
        spot.info, spot.owner, spot.metadata = None, None, []
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            spot.owner = tp
            spot.info = next((f for n, f in tp.model_fields.items() if file_key(n, f) == part), None)
            tp = spot.info.annotation if spot.info else None
            spot.metadata = list(spot.info.metadata) if spot.info else []
        elif part == "[key]":  # a table's key is wrong, not its value
            continue
        elif get_origin(tp) in (tuple, list, dict, Mapping):
            tp = get_args(tp)[-1] if get_origin(tp) in (dict, Mapping) else get_args(tp)[0]
        else:
            tp = None
        data = _child(data, part)
        if isinstance(part, int):
            spot.path += f"[{part}]"
            if isinstance(data, dict) and isinstance(data.get("name"), str):
                spot.path += f" ({data['name']:.60})"
        else:
            spot.path += f".{part}" if spot.path else str(part)
    _strip(tp, spot)
    return spot


def _child(data: Any, part: str | int) -> Any:
    if isinstance(data, dict):
        return data.get(part)
    if isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
        return data[part]
    return None


def _strip(tp: Any, spot: _Spot) -> Any:
    """Unwrap ``Annotated`` and ``X | None``; at a tagged union, note its members by tag."""
    while True:
        if get_origin(tp) is Annotated:
            tp, *meta = get_args(tp)
            for m in meta:
                spot.metadata += [m, *getattr(m, "metadata", [])]
                spot.discriminator = getattr(m, "discriminator", None) or spot.discriminator
            continue
        if get_origin(tp) in (Union, types.UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
            if spot.discriminator:
                spot.union = {_tag(m, spot.discriminator): m for m in members}
        return tp


def _tag(model: type[BaseModel], discriminator: str) -> str:
    return str(get_args(model.model_fields[discriminator].annotation)[0])


def _line(
    model: type[BaseModel],
    data: dict[str, Any],
    error: ErrorDetails,
    where: str,
    sources: Mapping[Loc, str],
    prefix: tuple[str, ...],
) -> str:
    loc = tuple(error["loc"])
    spot = _walk(model, data, loc)
    path = ".".join([*prefix, spot.path]) if spot.path else ".".join(prefix)
    problem = _problem(error, spot)
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        path += f".{spot.discriminator}"
    source = sources.get(loc)
    if source is not None:
        return f"{source} (sets {path}): {problem}"
    return f"{where}: {path}: {problem}"


def _problem(error: ErrorDetails, spot: _Spot) -> str:
    kind, ctx, value = error["type"], error.get("ctx", {}), error["input"]
    x = declared(spot.info) if spot.info else {}
    # Every message that shows the value is made here, so a secret's value is never echoed.
    got = "" if x.get("x-secret") or x.get("x-env-only") else f", got {value!r:.60}"
    if kind == "config":  # raised by fail(): the message is whole
        return str(ctx["message"])
    if kind in ("value_error", "assertion_error"):  # a validator's "must be ...": the value is added here
        return f"{ctx.get('error') or error['msg']}{got}"
    if kind == "missing":
        return f"is required (or {error['loc'][-1]}_env)" if x.get("x-secret") else "is required"
    if kind == "extra_forbidden":
        return _unknown(str(error["loc"][-1]), spot.owner)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = ", ".join(spot.union or ())
        return (
            f"must be one of {tags}, got {ctx['tag']!r}" if "tag" in ctx else f"is required (one of {tags})"
        )
    if kind == "literal_error":
        expected = str(ctx["expected"]).replace("'", "")
        return f"must be {expected}{got}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return _bounds(spot.metadata, ctx) + got
    simple = {
        "int_type": "must be an integer",
        "float_type": "must be a number",
        "bool_type": "must be true or false",
        "string_type": "must be a string",
        "string_too_short": "must not be empty",
        "too_short": "must not be empty",
        "dict_type": "must be a table",
        "model_type": "must be a table",
        "model_attributes_type": "must be a table",
        "tuple_type": "must be a list",
        "list_type": "must be a list",
    }
    return (simple.get(kind) or error["msg"]) + got


def _bounds(metadata: list[Any], ctx: Mapping[str, Any]) -> str:
    lo = next((m.ge for m in metadata if hasattr(m, "ge")), None)
    hi = next((m.le for m in metadata if hasattr(m, "le")), None)
    if lo is not None and hi is not None:
        return f"must be between {_num(lo)} and {_num(hi)}"
    ops = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    op, bound = next((ops[k], v) for k, v in ctx.items() if k in ops)
    return f"must be {op} {_num(bound)}"


def _num(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _unknown(key: str, owner: type[BaseModel] | None) -> str:
    if owner is None:
        return "unknown key"
    known: list[str] = []
    for name, f in owner.model_fields.items():
        x = declared(f)
        if not x.get("x-internal") and not x.get("x-env-only"):
            known += [file_key(name, f), *([f"{file_key(name, f)}_env"] if x.get("x-secret") else [])]
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key{hint} (known: {', '.join(known)})"
