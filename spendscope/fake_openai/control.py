"""The control plane under ``/__fake/``: faults, recorded traffic, the ledger, reset and the clock.

JSON in, JSON out, no auth (the server binds loopback only). Lists answer ``{"rows": [...]}``.

* ``POST /__fake/faults`` a rule or ``{"rules": [...]}``; ``GET`` lists them; ``DELETE`` clears them
* ``GET /__fake/requests``, ``GET /__fake/ledger``
* ``POST /__fake/reset``
* ``GET|POST /__fake/clock`` with ``{"set": ts}``, ``{"advance": seconds}`` or ``{"real": true}``
* ``POST /__fake/ratelimits`` with ``{"enforce": bool}`` and/or
  ``{"model", "requests_per_min", "tokens_per_min"}``
"""

from __future__ import annotations

import json
from typing import Any

from spendscope.fake_openai.faults import FaultError
from spendscope.fake_openai.state import FakeState

__all__ = ["handle"]

_JSON = "application/json"


def _ok(payload: dict[str, Any], status: int = 200) -> tuple[int, str, bytes]:
    return status, _JSON, json.dumps(payload, separators=(",", ":")).encode()


def _fail(message: str, status: int = 400) -> tuple[int, str, bytes]:
    return _ok({"ok": False, "error": message}, status)


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def handle(method: str, op: str, query: str, raw: bytes, state: FakeState) -> tuple[int, str, bytes]:
    try:
        payload: Any = json.loads(raw) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _fail("body is not JSON")
    if op == "/faults":
        if method == "GET":
            return _ok({"rows": state.faults.describe()})
        if method == "DELETE":
            state.faults.clear()
            return _ok({"ok": True})
        if method == "POST":
            rules = payload.get("rules", [payload]) if isinstance(payload, dict) else payload
            if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
                return _fail('expected a rule object, a list of them, or {"rules": [...]}')
            try:
                for rule in rules:
                    state.faults.add(rule)
            except FaultError as exc:
                return _fail(str(exc))
            return _ok({"ok": True, "added": len(rules)})
    elif op == "/requests" and method == "GET":
        return _ok({"rows": [r.as_dict() for r in state.log.items()]})
    elif op == "/ledger" and method == "GET":
        return _ok({"rows": [r.as_dict() for r in state.ledger.rows()]})
    elif op == "/reset" and method == "POST":
        state.reset()
        return _ok({"ok": True})
    elif op == "/clock":
        if method == "POST":
            if not isinstance(payload, dict):
                return _fail("expected an object")
            if payload.get("real"):
                state.clock.real()
            set_to = _number(payload.get("set"))
            if set_to is not None:
                state.clock.set(set_to)
            advance = _number(payload.get("advance"))
            if advance is not None:
                state.clock.advance(advance)
        if method in ("GET", "POST"):
            return _ok({"now": state.clock.now(), "frozen": state.clock.frozen})
    elif op == "/ratelimits" and method == "POST":
        if not isinstance(payload, dict):
            return _fail("expected an object")
        if "enforce" in payload:
            state.limiter.enforce = bool(payload["enforce"])
        model = payload.get("model")
        rpm, tpm = payload.get("requests_per_min"), payload.get("tokens_per_min")
        if isinstance(model, str) and isinstance(rpm, int) and isinstance(tpm, int) and rpm > 0 and tpm > 0:
            state.limiter.set_limits(model, rpm, tpm)
        return _ok({"ok": True, "enforce": state.limiter.enforce})
    elif op == "/health":
        return _ok({"ok": True})
    return _fail(f"no control route {method} /__fake{op}", 404)
