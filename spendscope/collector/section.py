"""How a table of the config file is declared: a :class:`Section` model, one :func:`setting` per key.

A key's declaration holds everything about it: its name in the file, type, default, bounds, help
text, and the environment variable or command-line flag that overrides it. The loader
(:mod:`~spendscope.collector.validation`), the error messages and the reference page
(:mod:`~spendscope.collector.configdoc`) all read them from there, so adding a key is one declaration.
Components declare their own sections next to their code (``sync/config.py``, ``alerts/config.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, NoReturn

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError, PydanticUndefined

__all__ = [
    "ConfigError",
    "Flag",
    "HttpUrl",
    "Int",
    "Number",
    "Section",
    "Size",
    "Text",
    "declared",
    "fail",
    "file_key",
    "setting",
]


class ConfigError(ValueError):
    """The config is invalid; each line names the file (or variable), the key and what is wrong."""


def setting(
    default: Any = PydanticUndefined,
    *,
    help: str,
    key: str | None = None,
    env: str | None = None,
    env_only: bool = False,
    env_name_key: str | None = None,
    flag: str | None = None,
    secret: bool = False,
    internal: bool = False,
    default_factory: Any = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
) -> Any:
    """Declare one key.

    ``key``: its name in the file, when the attribute is named otherwise (``interval`` -> ``interval_s``).
    ``env``: a variable that wins over the file; ``env_only``: never read from the file (secrets);
    ``env_name_key``: the key that may rename ``env``. ``flag``: a command-line flag that wins over
    both. ``secret``: the file may give ``<key>_env = "VAR"`` instead, and the value is never echoed
    in an error. ``internal``: filled by the code (a channel's name), not a key of the file.
    """
    extra = {
        "x-env": env,
        "x-env-only": env_only or None,
        "x-env-name-key": env_name_key,
        "x-flag": flag,
        "x-secret": secret or None,
        "x-internal": internal or None,
    }
    common: dict[str, Any] = {
        "alias": key,
        "description": help,
        "ge": ge,
        "gt": gt,
        "le": le,
        "repr": not (env_only or secret),
    }
    if any(v is not None for v in extra.values()):  # an explicit None would drop the type's own x-type
        common["json_schema_extra"] = {k: v for k, v in extra.items() if v is not None}
    if default_factory is not None:
        return Field(default_factory=default_factory, **common)
    return Field(default, **common)


def declared(field: FieldInfo) -> Mapping[str, Any]:
    """The ``x-`` declarations of ``setting()`` on a field (empty for plain fields)."""
    extra = field.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def file_key(name: str, field: FieldInfo) -> str:
    return field.alias or name


def fail(*problems: tuple[tuple[str | int, ...], str]) -> NoReturn:
    """Raise problems at keys below the model being validated (pydantic prefixes the model's place)."""
    raise ValidationError.from_exception_data(
        "config",
        [
            InitErrorDetails(
                type=PydanticCustomError("config", "{message}", {"message": message}), loc=loc, input=None
            )
            for loc, message in problems
        ],
    )


class Section(BaseModel):
    """A table of the config file. Frozen; attributes are read like a dataclass's.

    In Python a section is built by attribute name (``SyncSettings(interval_s=60)``); from the file
    only by key name (the loader validates with ``by_alias=True, by_name=False``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True)

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_environment(cls, data: Any, info: ValidationInfo) -> Any:
        """``<key>_env = "VAR"`` reads a secret key from the environment (only when loading a file)."""
        env = (info.context or {}).get("env")
        if env is None or not isinstance(data, dict):
            return data
        data = dict(data)
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for name, field in cls.model_fields.items():
            key, x = file_key(name, field), declared(field)
            if x.get("x-internal") and key in data:
                problems.append(((key,), "unknown key"))
            via = f"{key}_env"
            if not x.get("x-secret") or via not in data:
                continue
            var = data.pop(via)
            if key in data:
                problems.append(((key,), f"give either {key} or {via}, not both"))
            elif not isinstance(var, str) or not var:
                problems.append(((via,), f"must name an environment variable, got {var!r:.60}"))
            elif not env.get(var):
                problems.append(((via,), f"environment variable {var} is not set"))
            else:
                data[key] = env[var]
        if problems:
            fail(*problems)
        return data


_SIZE = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)


def _size(value: str) -> str:
    if not _SIZE.match(value):
        raise ValueError('must be a size like "64MB" or "2GiB"')
    return value


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    return value


# TOML has exact types, so no coercion: `port = "80"` or `enabled = 1` is a mistake worth naming.
Int = StrictInt
Number = StrictFloat  # an integer is a number too
Flag = StrictBool
Text = Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=1)]
HttpUrl = Annotated[Text, AfterValidator(_http_url), Field(json_schema_extra={"x-type": "http(s) URL"})]
# A DuckDB memory size, checked here so that a typo fails at load rather than when the file opens.
Size = Annotated[Text, AfterValidator(_size), Field(json_schema_extra={"x-type": "size"})]
