"""Identifiers shaped like the real ones (random, since real ids are; replies stay deterministic)."""

from __future__ import annotations

import os
import random
import uuid

__all__ = [
    "azure_request_id",
    "base62",
    "chat_id",
    "completion_id",
    "hex_id",
    "obfuscation",
    "request_id",
]

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_PAD = "k3Xq9ZbLr2Vt7NwPe5Yh"


def request_id() -> str:
    """``req_`` + 32 hex, the 2024+ x-request-id shape."""
    return "req_" + os.urandom(16).hex()


def azure_request_id() -> str:
    return str(uuid.uuid4())


def base62(length: int) -> str:
    return "".join(random.choices(_ALPHABET, k=length))


def chat_id() -> str:
    return "chatcmpl-" + base62(29)


def completion_id() -> str:
    return "cmpl-" + base62(29)


def hex_id(prefix: str) -> str:
    """Responses-API style ids: ``resp_``/``msg_``/``rs_`` + 50 hex."""
    return prefix + os.urandom(25).hex()


def obfuscation(index: int) -> str:
    """The padding field the API adds to stream chunks; its length varies, its content is noise."""
    start = index % 7
    return _PAD[start : start + 1 + (index * 5) % 12]
