"""``POST /v1/traces``: the OTLP/HTTP receiver.

Order of checks, cheapest first: content type (415), queue full (503 + Retry-After, before the
body is read), declared and actual size (413), decompression (413/400), decode (400), then the
batch is queued and the answer waits for its commit. Errors carry a ``google.rpc.Status`` body
(protobuf requests) or its JSON form, with a message that says what was wrong.
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures.process import BrokenProcessPool
from datetime import timedelta

import anyio
from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]
from starlette.requests import Request
from starlette.responses import Response

from spendscope.collector.context import CollectorContext
from spendscope.collector.ingest import IngestBatch, ShuttingDown, Writer, prepare_batch, reject_before
from spendscope.collector.otlp import (
    DecodeError,
    TooLargeError,
    encode_response_json,
    encode_response_protobuf,
)
from spendscope.collector.workers import prepare, to_batch

__all__ = ["TracesEndpoint"]

log = logging.getLogger("spendscope.collector.receiver")

_PROTOBUF = "application/x-protobuf"
_JSON = "application/json"
_CONTENT_TYPES = {
    "application/x-protobuf": _PROTOBUF,
    "application/protobuf": _PROTOBUF,
    "application/json": _JSON,
}
_COMMIT_TIMEOUT_S = 60.0
_BODY_TIMEOUT_S = 60.0


class BodyTimeout(Exception):
    """The request body did not arrive in time (answered with 408)."""


# google.rpc.Code values that match the HTTP statuses we send.
_RPC_CODE = {400: 3, 408: 4, 413: 8, 415: 3, 429: 8, 500: 13, 503: 14, 401: 16}


def _status_body(kind: str, http_status: int, message: str) -> bytes:
    code = _RPC_CODE.get(http_status, 2)
    if kind == _PROTOBUF:
        return bytes(Status(code=code, message=message).SerializeToString())
    return json.dumps({"code": code, "message": message}).encode()


class TracesEndpoint:
    """An ASGI-compatible request handler bound to one collector context."""

    def __init__(self, ctx: CollectorContext) -> None:
        self.ctx = ctx
        settings = ctx.config.collector
        self.max_body = settings.max_body_bytes
        self.retry_after = str(settings.retry_after_s)
        # Bodies held at once (read, then decoded): memory is bounded by this times max_body_bytes,
        # because a request takes its slot before the first body byte is read.
        self._limiter = anyio.CapacityLimiter(settings.max_concurrent_decodes)
        self.requests = 0
        self.refused = 0

    @property
    def bodies_in_memory(self) -> int:
        return int(self._limiter.borrowed_tokens)

    def _error(self, kind: str, status: int, message: str, *, retry: bool = False) -> Response:
        headers = {"Retry-After": self.retry_after} if retry else None
        media = _PROTOBUF if kind == _PROTOBUF else _JSON
        if status >= 500 or status == 429:
            self.refused += 1
        else:
            log.info("rejected OTLP request: %d %s", status, message)
        return Response(
            _status_body(kind, status, message), status_code=status, media_type=media, headers=headers
        )

    async def _read_body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise DecodeError("invalid Content-Length") from None
            if size > self.max_body:
                raise TooLargeError(f"body of {size} bytes is over the {self.max_body} byte limit")
        chunks: list[bytes] = []
        total = 0
        try:
            with anyio.fail_after(_BODY_TIMEOUT_S):  # a slow sender must not hold its slot forever
                async for chunk in request.stream():
                    total += len(chunk)
                    if total > self.max_body:
                        raise TooLargeError(f"body is over the {self.max_body} byte limit")
                    chunks.append(chunk)
        except TimeoutError:
            raise BodyTimeout(f"the body did not arrive within {_BODY_TIMEOUT_S:g} s") from None
        return b"".join(chunks)

    def _drop_expired(self, batch: IngestBatch) -> IngestBatch:
        days = self.ctx.config.retention.calls_days
        if not days:
            return batch
        # Retention deletes calls of days before this one; a span from then is refused, visibly.
        first_day = self.ctx.clock().date() - timedelta(days=days)
        reason = f"span starts before the calls retention window (retention.calls_days = {days})"
        return reject_before(batch, first_day, reason)

    async def _decode_and_offer(self, request: Request, kind: str, writer: Writer) -> IngestBatch | Response:
        """Read, decode and queue the request's spans; an error answer if any step refuses it."""
        is_json = kind == _JSON
        encoding = request.headers.get("content-encoding", "")
        try:
            async with self._limiter:
                body = await self._read_body(request)
                pool = self.ctx.decode_pool
                if pool is None:
                    pricer = self.ctx.pricer
                    assert pricer is not None
                    batch = await anyio.to_thread.run_sync(
                        prepare_batch, body, encoding, is_json, self.max_body, pricer
                    )
                else:
                    fut = pool.executor.submit(prepare, body, encoding, is_json, self.max_body)
                    batch = to_batch(await asyncio.wrap_future(fut))
                del body
        except TooLargeError as exc:
            return self._error(kind, 413, str(exc))
        except BodyTimeout as exc:
            return self._error(kind, 408, str(exc))
        except DecodeError as exc:
            return self._error(kind, 400, str(exc))
        except BrokenProcessPool:
            log.error("a decode worker died; restarting the pool")
            if self.ctx.decode_pool is not None:
                self.ctx.decode_pool.restart()
            return self._error(kind, 503, "decoder restarted, retry later", retry=True)
        batch = self._drop_expired(batch)
        if batch.size:
            try:
                if not writer.offer(batch):
                    return self._error(kind, 503, "ingest queue is full, retry later", retry=True)
            except ShuttingDown:
                return self._error(kind, 503, "collector is shutting down, retry later", retry=True)
        return batch

    async def handle(self, request: Request) -> Response:
        self.requests += 1
        ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        kind = _CONTENT_TYPES.get(ctype)
        if kind is None:
            return self._error(
                _JSON,
                415,
                f"unsupported Content-Type {ctype or '(none)'!r}: "
                "use application/x-protobuf or application/json",
            )
        writer = self.ctx.writer
        assert writer is not None
        if writer.saturated:
            return self._error(kind, 503, "ingest queue is full, retry later", retry=True)
        with writer.arriving():
            outcome = await self._decode_and_offer(request, kind, writer)
        if isinstance(outcome, Response):
            return outcome
        batch = outcome
        if batch.size:
            try:
                result = await asyncio.wait_for(asyncio.wrap_future(batch.future), _COMMIT_TIMEOUT_S)
            except TimeoutError:
                # The batch may still commit; a retry is harmless because ingest is idempotent.
                return self._error(kind, 503, "commit is taking too long, retry later", retry=True)
            except Exception as exc:
                log.error("ingest failed: %s", exc)
                return self._error(kind, 503, f"storage error, retry later: {exc}", retry=True)
        else:
            result = batch.result()
        message = "; ".join(result.messages)
        if kind == _PROTOBUF:
            return Response(encode_response_protobuf(result.rejected, message), media_type=_PROTOBUF)
        return Response(encode_response_json(result.rejected, message), media_type=_JSON)
