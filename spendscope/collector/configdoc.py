"""The configuration reference, generated from the declarations into ``docs/configuration.md``
(by :mod:`spendscope.collector.docgen`, which ``make docs`` runs)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, get_args

from pydantic.fields import FieldInfo

from spendscope.collector.alerts.config import CHANNEL_MODELS, RULE_MODELS, RuleConfig
from spendscope.collector.config import Config
from spendscope.collector.durations import format_duration
from spendscope.collector.section import Section, declared, file_key
from spendscope.collector.validation import section_type

__all__ = ["reference"]


def reference() -> str:
    """Every section, rule kind, channel type and environment variable, as Markdown."""
    out: list[str] = []
    for name, field in Config.model_fields.items():
        section, _ = section_type(field.annotation)
        if section is not None:
            out += _section(f"`[{name}]`", section, skip=("channels", "rules"))
    out += _section("`[[alerts.rules]]`", RuleConfig, skip=("kind",))
    for rule in RULE_MODELS:
        out += _section(f'`kind = "{_tag(rule, "kind")}"`', rule, skip=("kind",), base=RuleConfig)
    channel = CHANNEL_MODELS[0].__mro__[1]  # the keys every channel has
    out += _section("`[alerts.channels.<name>]`", channel)
    for model in CHANNEL_MODELS:
        out += _section(f'`type = "{_tag(model, "type")}"`', model, skip=("type",), base=channel)
    out += _environment()
    return "\n".join(out).rstrip("\n") + "\n"


def _section(
    title: str, model: type[Section], *, skip: tuple[str, ...] = (), base: type[Section] | None = None
) -> list[str]:
    """A heading, the model's docstring and a table of its keys (a kind's own keys, with ``base``)."""
    level = "###" if base is not None else "##"
    lines = [f"{level} {title}", "", " ".join((model.__doc__ or "").split()), ""]
    schema = model.model_json_schema(by_alias=True)
    rows, tables = [], []
    for name, field in model.model_fields.items():
        x, key = declared(field), file_key(name, field)
        if key in skip or x.get("x-internal") or x.get("x-env-only") or field.description is None:
            continue
        if base is not None and name in base.model_fields and name not in model.__annotations__:
            continue  # inherited as it is: documented with the common keys
        label = _label(schema["properties"][key], schema.get("$defs", {}))
        shown = f"`{key}` or `{key}_env`" if x.get("x-secret") else f"`{key}`"
        rows.append(
            f"| {shown} | {label} | {_default(field, label)} | {_overrides(x)} | {field.description} |"
        )
        value = field.get_default(call_default_factory=True)
        if isinstance(value, Mapping) and value:
            tables += [
                f"The default `{key}`:",
                "",
                "```toml",
                *(f"{k} = {_value(v)}" for k, v in value.items()),
            ]
            tables += ["```", ""]
    if rows:
        lines += ["| key | type | default | overridden by | meaning |", "|---|---|---|---|---|", *rows, ""]
    return lines + tables


def _tag(model: type[Section], name: str) -> str:
    return str(get_args(model.model_fields[name].annotation)[0])


def _label(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> str:
    if "x-type" in prop:
        return str(prop["x-type"])
    if "$ref" in prop:
        return _label(defs[prop["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in prop:
        options = [p for p in prop["anyOf"] if p.get("type") != "null"]
        return " or ".join(_label(p, defs) for p in options)
    if "enum" in prop:
        values = [f"`{v}`" for v in prop["enum"]]
        return ", ".join(values[:-1]) + f" or {values[-1]}" if len(values) > 1 else values[0]
    kind = prop.get("type")
    if kind == "array":
        return f"list of {_label(prop.get('items', {}), defs)}"
    if kind == "object":
        return "table"
    label = kind if kind in ("integer", "number", "boolean", "string") else "value"
    bounds = [
        f"{op} {_num(prop[k])}"
        for k, op in (
            ("minimum", "≥"),
            ("exclusiveMinimum", ">"),
            ("maximum", "≤"),
            ("exclusiveMaximum", "<"),
        )
        if k in prop
    ]
    return f"{label} {', '.join(bounds)}" if bounds else label


def _num(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _default(field: FieldInfo, label: str) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, Mapping):
        return "`{}`" if not value else "below"
    if label == "duration" and isinstance(value, int | float):
        return f"`{format_duration(value)}`"
    return f"`{_value(value)}`"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | Decimal):
        return f'"{value}"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return str(_num(value))


def _overrides(x: Mapping[str, Any]) -> str:
    return ", ".join(f"`{v}`" for v in (x.get("x-flag"), x.get("x-env")) if v)


def _environment() -> list[str]:
    rows = []
    for path, field in _fields(Config, ()):
        x = declared(field)
        if not x.get("x-env"):
            continue
        key = ".".join(path)
        if x.get("x-internal"):
            sets = "the config file (`--config` wins)"
        elif x.get("x-env-only"):
            sets = "only from the environment" + (
                f"; `{'.'.join(path[:-1])}.{x['x-env-name-key']}` renames it"
                if x.get("x-env-name-key")
                else ""
            )
        else:
            sets = f"`{key}`"
        rows.append(f"| `{x['x-env']}` | {sets} | {field.description} |")
    secrets = sorted(
        {
            f"`{file_key(n, f)}_env`"
            for c in CHANNEL_MODELS
            for n, f in c.model_fields.items()
            if declared(f).get("x-secret")
        }
    )
    rows.append(f"| any | a channel's {', '.join(secrets)} names it | the secret, read at start |")
    return [
        "## Environment variables the collector reads",
        "",
        "A variable wins over the file; a command-line flag wins over both.",
        "",
        "| variable | sets | meaning |",
        "|---|---|---|",
        *rows,
        "",
    ]


def _fields(model: type[Section], path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], FieldInfo]]:
    for name, field in model.model_fields.items():
        key = (*path, file_key(name, field))
        section, _ = section_type(field.annotation)
        if section is not None:
            yield from _fields(section, key)
        else:
            yield key, field
