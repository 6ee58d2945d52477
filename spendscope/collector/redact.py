"""Secrets out of what the collector keeps for diagnosis: the attributes of rejected spans.

A rejected span's attributes are stored (and served by ``/api/v1/rejected``) so an operator can see
why it was refused. They can carry credentials: an ``authorization`` header an instrumentation
recorded, an API key in a config attribute, a key pasted into a prompt. Keys that name a
credential have their value replaced whole; anything that looks like a key or bearer token is
replaced wherever it appears, also inside longer text. Pure functions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["REDACTED", "redact_attributes", "redact_text"]

REDACTED = "[REDACTED]"

# Attribute names whose whole value is a credential (matched anywhere in the name, any case).
_SECRET_KEY = re.compile(
    r"authorization|api[-_.]?key|apikey|token|secret|passw(or)?d|cookie|credential|private[-_.]?key|"
    r"session[-_.]?id|signature",
    re.IGNORECASE,
)
# Values that look like credentials, wherever they appear.
_SECRET_VALUE = re.compile(
    r"""
      \bsk-[A-Za-z0-9_-]{16,}                      # OpenAI and similar API keys (sk-, sk-proj-, sk-admin-)
    | \b(?:bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}  # Authorization header values
    | \beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*   # JSON Web Tokens
    | \b(?:AKIA|ASIA)[0-9A-Z]{16}\b                # AWS access key ids
    | \bgh[pousr]_[A-Za-z0-9]{30,}                 # GitHub tokens
    | \bxox[abposr]-[A-Za-z0-9-]{10,}              # Slack tokens
    | \bAIza[0-9A-Za-z_-]{30,}                     # Google API keys
    """,
    re.IGNORECASE | re.VERBOSE,
)


def redact_text(text: str) -> str:
    """``text`` with every credential-looking part replaced."""
    return _SECRET_VALUE.sub(REDACTED, text)


def _value(v: Any) -> Any:
    if isinstance(v, str):
        return redact_text(v)
    if isinstance(v, list):
        return [_value(x) for x in v]
    if isinstance(v, dict):
        return redact_attributes(v)
    if isinstance(v, bytes):
        return redact_text(v.hex())
    return v


def redact_attributes(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``attrs`` fit to keep: credential-named keys blanked, credential-like values cut out."""
    return {
        str(k): REDACTED if _SECRET_KEY.search(str(k)) and v not in (None, "") else _value(v)
        for k, v in attrs.items()
    }
