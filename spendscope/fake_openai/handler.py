"""The HTTP/1.1 request handler: read one request, decide, write the reply.

Replies are written by hand (status line, headers, body or chunks) rather than through
``send_response``/``send_header``: it is cheaper per request, and the fault paths need byte-level
control (cut a chunked body mid-frame, stall between chunks, send nothing but headers).
"""

from __future__ import annotations

import gzip
import json
import socket
import time
from collections.abc import Callable, Mapping
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

from spendscope.fake_openai import bodies, control, errors, ids, plan, streams, tokens
from spendscope.fake_openai.errors import ApiError
from spendscope.fake_openai.faults import Fault, FaultError
from spendscope.fake_openai.ledger import LedgerRow
from spendscope.fake_openai.ratelimit import RateState
from spendscope.fake_openai.records import MAX_RECORDED_BODY, RecordedRequest, redact
from spendscope.fake_openai.routes import Route, resolve
from spendscope.fake_openai.sse import Wire, encode
from spendscope.fake_openai.state import MAX_BODY_BYTES, FakeState

__all__ = ["FAULT_HEADER", "FakeHandler"]

FAULT_HEADER = "x-fake-fault"
_JSON = "application/json"
_SSE = "text/event-stream; charset=utf-8"
_REASONS = {s.value: s.phrase for s in HTTPStatus}
_MAX_CHUNKED_LINE = 1024
_MAX_HEADER_LINE = 65536
_MAX_HEADERS = 100

Planner = Callable[[Mapping[str, Any], Mapping[str, str], str | None], plan.Plan]
_PLANNERS: dict[str, Planner] = {
    "chat.completions": plan.plan_chat,
    "completions": plan.plan_completions,
    "embeddings": plan.plan_embeddings,
    "images.generations": plan.plan_images,
    "audio.speech": plan.plan_speech,
    "responses": lambda body, headers, _dep: plan.plan_responses(body, headers),
    "moderations": lambda body, headers, _dep: plan.plan_moderations(body, headers),
}

_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


def _bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, "invalid_request_error", param, code)


_INVALID_JSON = _bad_request(
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
    "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you "
    "have trouble figuring out how to fix this, please contact us through our help center at "
    "help.openai.com.)"
)


class _Reply:
    """A finished decision: status, headers and either a body or SSE pieces."""

    __slots__ = ("body", "compress", "headers", "status", "timed", "wire")

    def __init__(
        self,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes = b"",
        *,
        compress: bool = False,
        wire: Wire | None = None,
        timed: bool = True,
    ) -> None:
        self.timed = timed  # carries openai-processing-ms (API replies, not the control plane)
        self.status = status
        self.headers = headers
        self.body = body
        self.compress = compress
        self.wire = wire


class FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-openai"
    sys_version = ""
    timeout = 120  # an idle keep-alive connection is dropped eventually, so threads do not pile up

    state: FakeState  # set by the server class (see server.py)
    _generation = 0  # the ledger's generation when this request arrived
    request_headers: dict[str, str]  # lower-cased names; the last of repeated headers wins
    raw_requestline: bytes  # set by the base class before parse_request

    def setup(self) -> None:
        super().setup()
        # Small writes (SSE chunks, headers then body) must not wait for delayed ACKs.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def parse_request(self) -> bool:
        """Request line and headers, parsed by hand.

        The stdlib routes headers through the email package, which costs more than the rest of a
        request here; benchmarks measure client overhead against this server, so it stays lean.
        """
        line = self.raw_requestline.decode("latin-1").rstrip("\r\n")
        self.requestline = line
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self.request_version = "HTTP/1.0"
            self._reject(400, "malformed request line")
            return False
        self.command, self.path, self.request_version = parts
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            raw = self.rfile.readline(_MAX_HEADER_LINE + 1)
            if len(raw) > _MAX_HEADER_LINE:
                self._reject(431, "header line too long")
                return False
            if raw in (b"\r\n", b"\n", b""):
                break
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep:
                self._reject(400, "malformed header line")
                return False
            headers[name.strip().lower()] = value.strip()
        else:
            self._reject(431, "too many headers")
            return False
        self.request_headers = headers
        connection = headers.get("connection", "").lower()
        self.close_connection = connection == "close" or (
            self.request_version == "HTTP/1.0" and connection != "keep-alive"
        )
        if headers.get("expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    def _reject(self, status: int, message: str) -> None:
        self.close_connection = True
        body = errors.error_json(message, "invalid_request_error", None, None)
        reply = _Reply(status, [("content-type", _JSON), ("connection", "close")], body, timed=False)
        self._write(reply, None, time.perf_counter())

    def log_message(self, format: str, *args: Any) -> None:
        return  # tests and benchmarks do not want a line per request on stderr

    # -- entry ---------------------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            self._serve_inner()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

    def _serve_inner(self) -> None:
        state = self.state
        started = time.perf_counter()
        path, _, query = self.path.partition("?")
        headers = self.request_headers
        raw = self._read_body(headers)
        if raw is None:
            return
        now = state.clock.now()
        self._generation = state.ledger.generation
        route = resolve(path)
        key = self._api_key(headers, route)
        retry_count = _int_or_none(headers.get("x-stainless-retry-count"))
        if route.kind == "control":  # the test's own bookkeeping is not traffic: not recorded
            status, ctype, body = control.handle(self.command, route.op, query, raw, state)
            self._write(_Reply(status, [("content-type", ctype)], body, timed=False), None, started)
            return
        stored = raw if len(raw) <= MAX_RECORDED_BODY else raw[:MAX_RECORDED_BODY]
        state.log.add(
            RecordedRequest(
                method=self.command,
                path=path,
                query=query,
                headers=redact(dict(headers)),
                body=stored,
                ts=now,
                api_key_id=state.key_id(key) if key else None,
                body_truncated=len(stored) < len(raw),
            )
        )
        if route.kind == "unknown":
            message = f"Invalid URL ({self.command} {path})"
            self._write(
                self._error_reply(_bad_request(message), route, ids.request_id(), None), None, started
            )
            return
        try:
            fault = self._fault(headers, path, raw, retry_count)
        except FaultError as exc:
            err = ApiError(400, f"x-fake-fault: {exc}", "invalid_request_error", None, "fake_fault_invalid")
            self._write(self._error_reply(err, route, ids.request_id(), None), None, started)
            return
        if fault is not None and fault.ttfb_ms:
            state.stopping.wait(fault.ttfb_ms / 1000)
        if route.kind == "organization":
            reply = self._organization(path, query, headers, now, fault)
        elif route.kind in ("models", "model"):
            reply = self._models(route, key, fault)
        else:
            reply = self._inference(
                route, headers, raw, key=key, retry_count=retry_count, now=now, fault=fault
            )
        self._write(reply, fault, started)

    # -- request reading -----------------------------------------------------------------------

    def _read_body(self, headers: Mapping[str, str]) -> bytes | None:
        """The request body, bounded; None when an error reply was already sent."""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = _int_or_none(headers.get("content-length")) or 0
        if length > MAX_BODY_BYTES:
            self._too_large()
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes | None:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(_MAX_CHUNKED_LINE)
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(_MAX_CHUNKED_LINE) not in (b"\r\n", b"\n", b""):
                    pass  # trailers are ignored
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                self._too_large()
                return None
            parts.append(self.rfile.read(size))
            self.rfile.readline(_MAX_CHUNKED_LINE)

    def _too_large(self) -> None:
        body = errors.error_json(
            f"Request body too large: the fake accepts at most {MAX_BODY_BYTES} bytes.",
            "invalid_request_error",
            None,
            "request_too_large",
        )
        self.close_connection = True  # the unread body makes the connection unusable
        self._write(_Reply(413, [("content-type", _JSON)], body, timed=False), None, time.perf_counter())

    def _api_key(self, headers: Mapping[str, str], route: Route) -> str | None:
        auth = headers.get("authorization")
        bearer = auth[7:].strip() if auth and auth[:7].lower() == "bearer " else None
        if route.azure:
            return headers.get("api-key") or bearer
        return bearer

    def _fault(
        self, headers: Mapping[str, str], path: str, raw: bytes, retry_count: int | None
    ) -> Fault | None:
        state = self.state
        spec = headers.get(FAULT_HEADER)
        if spec:
            fault = state.faults.from_header(spec, retry_count)
            if fault is not None:
                return fault
        if not state.faults.active:
            return None
        return state.faults.match(self.command, path, _peek_model(raw))

    # -- replies -------------------------------------------------------------------------------

    def _base_headers(
        self, route: Route, request_id: str, project: str | None, content_type: str
    ) -> list[tuple[str, str]]:
        state = self.state
        if route.azure:
            return [
                ("content-type", content_type),
                ("x-request-id", request_id),
                ("apim-request-id", ids.azure_request_id()),
                ("x-ms-region", state.azure_region),
                ("azureml-model-session", "d001-20250101000000"),
                ("x-accel-buffering", "no"),
                ("openai-version", "2020-10-01"),
            ]
        return [
            ("content-type", content_type),
            ("openai-organization", state.organization),
            ("openai-project", project or state.default_project),
            ("openai-version", "2020-10-01"),
            ("x-request-id", request_id),
            ("access-control-expose-headers", "X-Request-ID"),
        ]

    def _error_reply(
        self,
        err: ApiError,
        route: Route,
        request_id: str,
        project: str | None,
        extra: list[tuple[str, str]] | None = None,
    ) -> _Reply:
        headers = self._base_headers(route, request_id, project, _JSON)
        if extra:
            headers.extend(extra)
        return _Reply(err.status, headers, err.body())

    def _fault_error(
        self,
        fault: Fault,
        route: Route,
        request_id: str,
        *,
        project: str | None,
        model: str,
        rate: RateState | None = None,
    ) -> tuple[_Reply, str | None]:
        """The reply a status/code fault asks for, and the error code the ledger records."""
        code: str | int = fault.code or (fault.status or 500)
        err = errors.default_error(
            code,
            model=model,
            organization=self.state.organization,
            request_id=request_id,
            limit_type=fault.type or "tokens",
            message=fault.message,
        )
        status = fault.status or err.status
        if fault.type and fault.code not in ("rate_limit_exceeded", None):
            err = ApiError(status, err.message, fault.type, err.param, err.code)
        extra: list[tuple[str, str]] = []
        if err.code == "rate_limit_exceeded":
            limits = rate or self.state.limiter.take("", model, 0, self.state.clock.now())
            extra += [
                ("x-ratelimit-limit-requests", str(limits.limit_requests)),
                ("x-ratelimit-limit-tokens", str(limits.limit_tokens)),
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-remaining-tokens", "0"),
                ("x-ratelimit-reset-requests", limits.reset_requests),
                ("x-ratelimit-reset-tokens", limits.reset_tokens),
            ]
        if fault.retry_after is not None:
            extra.append(("retry-after", fault.retry_after))
        if fault.retry_after_ms is not None:
            extra.append(("retry-after-ms", fault.retry_after_ms))
        if fault.should_retry is not None:
            extra.append(("x-should-retry", fault.should_retry))
        kind = fault.body or ("html" if status in (502, 504) else "json")
        if kind == "empty":
            headers = self._base_headers(route, request_id, project, _JSON)
            return _Reply(status, headers + extra, b""), None
        if kind == "html":
            headers = self._base_headers(route, request_id, project, "text/html")
            page = errors.HTML_504 if status == 504 else errors.HTML_502
            return _Reply(status, headers + extra, page), None
        reply = self._error_reply(
            ApiError(status, err.message, err.type, err.param, err.code), route, request_id, project, extra
        )
        return reply, err.ledger_code

    def _models(self, route: Route, key: str | None, fault: Fault | None) -> _Reply:
        request_id = ids.request_id()
        project = self.state.projects.get(key) if key else None
        if project is None:
            return self._error_reply(
                errors.default_error("invalid_api_key", key=key or ""), route, request_id, None
            )
        if fault is not None and fault.is_error:
            return self._fault_error(fault, route, request_id, project=project, model="")[0]
        if route.kind == "models":
            body = bodies.models_json()
        else:
            found = bodies.model_json(route.op)
            if found is None:
                err = errors.default_error("model_not_found", model=route.op)
                return self._error_reply(err, route, request_id, project)
            body = found
        return _Reply(200, self._base_headers(route, request_id, project, _JSON), body, compress=True)

    def _organization(
        self, path: str, query: str, headers: Mapping[str, str], now: float, fault: Fault | None
    ) -> _Reply:
        request_id = ids.request_id()
        route = Route("organization")
        if fault is not None and fault.is_error:
            return self._fault_error(fault, route, request_id, project=None, model="")[0]
        from spendscope.fake_openai import usage_api  # lazy: another module, may change under us

        status, extra, body = usage_api.handle(self.command, path, query, headers, self.state.ledger, now)
        out = [
            ("openai-organization", self.state.organization),
            ("openai-version", "2020-10-01"),
            ("x-request-id", request_id),
        ]
        given = {k.lower() for k in extra}
        out = [h for h in out if h[0] not in given]
        out.extend((k.lower(), v) for k, v in extra.items())
        if "content-type" not in given:
            out.append(("content-type", _JSON))
        ctype = extra.get("content-type", extra.get("Content-Type", _JSON))
        return _Reply(status, out, body, compress=status == 200 and ctype.startswith(_JSON))

    def _inference(
        self,
        route: Route,
        headers: Mapping[str, str],
        raw: bytes,
        *,
        key: str | None,
        retry_count: int | None,
        now: float,
        fault: Fault | None,
    ) -> _Reply:
        state = self.state
        azure = route.azure
        request_id = ids.azure_request_id() if azure else ids.request_id()
        row: dict[str, Any] = {
            "ts": now,
            "endpoint": route.endpoint,
            "retry_count": retry_count or 0,
            "request_id": request_id,
            "api_key_id": state.key_id(key) if key else None,
        }
        if azure:
            row["extra"] = {"azure": True, "deployment": route.deployment}
        try:
            body = json.loads(raw) if raw else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        request_model = ""
        if isinstance(body, dict):
            model_value = body.get("model")
            request_model = model_value if isinstance(model_value, str) else (route.deployment or "")
        row["request_model"] = request_model
        row["model"] = tokens.snapshot_for(request_model)

        if azure and route.azure_key_auth and "api-version=" not in (self.path.partition("?")[2]):
            msg = "Missing required query parameter 'api-version'."
            return self._finish_error(
                route,
                request_id,
                None,
                row,
                status=400,
                body=errors.azure_error("BadRequest", msg),
                code="BadRequest",
            )
        project = state.projects.get(key) if key else None
        if project is None:
            if azure and route.azure_key_auth:
                msg = (
                    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
                    "provide a valid key for an active subscription and use a correct regional API "
                    "endpoint for your resource."
                )
                return self._finish_error(
                    route, request_id, None, row, status=401, body=errors.azure_error("401", msg), code="401"
                )
            err = errors.default_error("invalid_api_key", key=key or "")
            return self._finish_error(
                route, request_id, None, row, status=401, body=err.body(), code=err.ledger_code
            )
        project = headers.get("openai-project") or project
        row["project_id"] = project
        if not isinstance(body, dict):
            return self._finish_api_error(route, request_id, project, row, _INVALID_JSON)
        user = body.get("user") or body.get("safety_identifier")
        row["user_id"] = user if isinstance(user, str) else None
        row["stream"] = body.get("stream") is True

        if fault is not None and fault.is_error:
            reply, code = self._fault_error(fault, route, request_id, project=project, model=row["model"])
            row.update(status=reply.status, error_code=code, billed=False, usage_reported=False)
            self._record(row)
            return reply

        the_plan = _PLANNERS[route.endpoint](body, headers, route.deployment)
        if the_plan.error is not None:
            return self._finish_api_error(route, request_id, project, row, the_plan.error)
        row["model"] = the_plan.model
        rate = state.limiter.take(project, the_plan.request_model, the_plan.rate_tokens, now)
        if rate.exhausted is not None:
            wait_ms = max(1, int(rate.retry_after_s * 1000))
            limited = Fault(
                status=429, code="rate_limit_exceeded", type=rate.exhausted, retry_after_ms=str(wait_ms)
            )
            reply, code = self._fault_error(
                limited, route, request_id, project=project, model=the_plan.request_model, rate=rate
            )
            row.update(status=429, error_code=code, billed=False, usage_reported=False)
            self._record(row)
            return reply
        return self._render(
            route, request_id, project, row, p=the_plan, body=body, now=now, rate=rate, fault=fault
        )

    def _record(self, row: dict[str, Any]) -> None:
        self.state.ledger.append(LedgerRow(**row), generation=self._generation)

    def _finish_error(
        self,
        route: Route,
        request_id: str,
        project: str | None,
        row: dict[str, Any],
        *,
        status: int,
        body: bytes,
        code: str | None,
    ) -> _Reply:
        row.update(status=status, error_code=code, billed=False, usage_reported=False)
        self._record(row)
        return _Reply(status, self._base_headers(route, request_id, project, _JSON), body)

    def _finish_api_error(
        self, route: Route, request_id: str, project: str | None, row: dict[str, Any], err: ApiError
    ) -> _Reply:
        return self._finish_error(
            route, request_id, project, row, status=err.status, body=err.body(), code=err.ledger_code
        )

    def _rate_headers(self, route: Route, rate: RateState) -> list[tuple[str, str]]:
        if route.azure:  # Azure reports only the remaining counts
            return [
                ("x-ratelimit-remaining-requests", str(rate.remaining_requests)),
                ("x-ratelimit-remaining-tokens", str(rate.remaining_tokens)),
            ]
        return [
            ("x-ratelimit-limit-requests", str(rate.limit_requests)),
            ("x-ratelimit-limit-tokens", str(rate.limit_tokens)),
            ("x-ratelimit-remaining-requests", str(rate.remaining_requests)),
            ("x-ratelimit-remaining-tokens", str(rate.remaining_tokens)),
            ("x-ratelimit-reset-requests", rate.reset_requests),
            ("x-ratelimit-reset-tokens", rate.reset_tokens),
        ]

    def _render(
        self,
        route: Route,
        request_id: str,
        project: str,
        row: dict[str, Any],
        *,
        p: plan.Plan,
        body: dict[str, Any],
        now: float,
        rate: RateState,
        fault: Fault | None,
    ) -> _Reply:
        created = int(now)
        endpoint = route.endpoint
        row.update(
            status=200,
            model=p.model,
            service_tier=p.service_tier,
            input_tokens=p.input_tokens,
            cached_tokens=p.cached_tokens,
            output_tokens=p.output_tokens,
            reasoning_tokens=p.reasoning_tokens,
            input_audio_tokens=p.input_audio_tokens,
            output_audio_tokens=p.output_audio_tokens,
            images=p.images,
            characters=p.characters,
        )
        if endpoint == "images.generations":
            extra = dict(row.get("extra") or {})
            extra.update(size=p.extra["size"], source=p.extra["source"])
            row["extra"] = extra
        if fault is not None:
            row["extra"] = {**(row.get("extra") or {}), "fault": True}
        if p.stream and endpoint in ("chat.completions", "completions", "responses"):
            if endpoint == "chat.completions":
                out = streams.chat_events(p, ids.chat_id(), created, route.azure, fault)
            elif endpoint == "completions":
                out = streams.completion_events(p, ids.completion_id(), created, fault)
            else:
                out = streams.responses_events(p, body, ids.hex_id("resp_"), created, fault)
            wire = encode(out, fault)
            row.update(
                stream=True,
                usage_reported=wire.usage_sent,
                error_code=out.error_code,
                billed=out.error_code is None,
            )
            self._record(row)
            headers = self._base_headers(route, request_id, project, _SSE)
            if endpoint != "responses":  # Responses SSE carries no rate-limit headers
                headers += self._rate_headers(route, rate)
            return _Reply(200, headers, wire=wire)

        row["stream"] = False
        content_type = _JSON
        if endpoint == "chat.completions":
            payload = bodies.chat_completion(p, ids.chat_id(), created, route.azure)
        elif endpoint == "responses":
            payload = self._response_json(p, body, created)
        elif endpoint == "embeddings":
            payload = bodies.embeddings_json(p)
        elif endpoint == "completions":
            payload = bodies.completion_json(p, ids.completion_id(), created)
        elif endpoint == "moderations":
            payload = bodies.moderations_json(p, "modr-" + ids.base62(29))
        elif endpoint == "images.generations":
            payload = bodies.images_json(p, created, str(body.get("prompt", "")))
        else:
            content_type, payload = bodies.speech_body(p)
        if fault is not None and fault.truncate is not None and content_type == _JSON:
            payload = payload[: max(1, len(payload) // 2)]  # honest length, broken JSON
            row["usage_reported"] = False
        self._record(row)
        headers = self._base_headers(route, request_id, project, content_type)
        headers += self._rate_headers(route, rate)
        return _Reply(200, headers, payload, compress=content_type == _JSON)

    def _response_json(self, p: plan.Plan, body: dict[str, Any], created: int) -> bytes:
        output: list[dict[str, Any]] = []
        if p.extra.get("reasoning_item"):
            output.append(bodies.reasoning_item(ids.hex_id("rs_")))
        incomplete = p.finish_reason == "max_output_tokens"
        if p.words or not incomplete:
            status = "incomplete" if incomplete else "completed"
            output.append(bodies.message_item(ids.hex_id("msg_"), status, "".join(p.words)))
        obj = bodies.response_object(
            p,
            body,
            ids.hex_id("resp_"),
            created,
            status="incomplete" if incomplete else "completed",
            tier=p.service_tier,
            output=output,
            usage=bodies.responses_usage(p),
        )
        return bodies.dumps(obj).encode()

    # -- writing -------------------------------------------------------------------------------

    def _head(self, status: int, headers: list[tuple[str, str]], started: float, timed: bool) -> bytearray:
        elapsed_ms = max(1, int((time.perf_counter() - started) * 1000 + 0.999))
        out = bytearray(b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, "Unknown").encode()))
        out += b"date: " + _http_date().encode() + b"\r\n"
        for name, value in headers:
            out += name.encode() + b": " + value.encode("latin-1", "replace") + b"\r\n"
        if timed:
            ms = str(elapsed_ms).encode()
            out += b"openai-processing-ms: " + ms + b"\r\nx-envoy-upstream-service-time: " + ms + b"\r\n"
        return out

    def _write(self, reply: _Reply, fault: Fault | None, started: float) -> None:
        if self.close_connection and not any(h[0] == "connection" for h in reply.headers):
            reply.headers.append(("connection", "close"))
        if reply.wire is not None:
            self._write_stream(reply, reply.wire, fault, started)
            return
        body = reply.body
        if (
            reply.compress
            and body
            and self.state.gzip
            and "gzip" in self.request_headers.get("accept-encoding", "")
        ):
            body = gzip.compress(body, compresslevel=1, mtime=0)
            reply.headers.append(("content-encoding", "gzip"))
        head = self._head(reply.status, reply.headers, started, reply.timed)
        head += b"content-length: %d\r\n\r\n" % len(body)
        if self.command != "HEAD":
            head += body
        self.wfile.write(head)

    def _write_stream(self, reply: _Reply, wire: Wire, fault: Fault | None, started: float) -> None:
        head = self._head(reply.status, reply.headers, started, reply.timed)
        head += b"transfer-encoding: chunked\r\n\r\n"
        self.wfile.write(head)
        wait = self.state.stopping.wait
        chunk_delay = fault.chunk_delay_ms / 1000 if fault is not None else 0.0
        stall_at = fault.stall_after if fault is not None else None
        write = self.wfile.write
        for index, piece in enumerate(wire.pieces):
            if index == stall_at and fault is not None and wait(fault.stall_ms / 1000):
                break  # shutting down
            if chunk_delay and wait(chunk_delay):
                break
            write(b"%x\r\n%s\r\n" % (len(piece), piece))
        if wire.cut or self.state.stopping.is_set():
            self._abort()
            return
        write(b"0\r\n\r\n")

    def _abort(self) -> None:
        """Close without finishing the chunked body: the client sees an incomplete message."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _peek_model(raw: bytes) -> str | None:
    """The request's model for rule matching, without failing on a body that is not JSON."""
    if not raw or raw[:1] != b"{":
        return None
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    model = data.get("model") if isinstance(data, dict) else None
    return model if isinstance(model, str) else None
