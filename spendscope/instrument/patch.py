"""The wrapt patches of ``send`` on the httpx and httpx2 clients, and their exact removal.

``Client.send`` sees every request the OpenAI SDK makes (every endpoint, every retry attempt, raw
and streaming responses) with the final request and the real response, whatever transport is
mounted. Requests that are not OpenAI inference calls pass through after one cheap check.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import wrapt
from opentelemetry import context as otel_context

from spendscope.instrument import attribution
from spendscope.instrument.call import Call, Recorder
from spendscope.instrument.health import HEALTH
from spendscope.instrument.parsing import RequestInfo, parse_request
from spendscope.instrument.routes import classify
from spendscope.instrument.streams import tee_classes

__all__ = ["Patcher"]

_MODULES = ("httpx", "httpx2")


@dataclass
class Patcher:
    recorder: Recorder
    hosts: Collection[str] | None = None
    _originals: list[tuple[type, str, Any]] = field(default_factory=list)

    def install(self) -> list[str]:
        """Patch every importable HTTP module; answer the names patched."""
        patched: list[str] = []
        for name in _MODULES:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            sync_tee, async_tee = tee_classes(module.SyncByteStream, module.AsyncByteStream)
            self._patch(module.Client, _sync_wrapper(self, sync_tee))
            self._patch(module.AsyncClient, _async_wrapper(self, async_tee))
            patched.append(name)
        return patched

    def _patch(self, cls: type, wrapper: Callable[..., Any]) -> None:
        original = cls.__dict__["send"]
        self._originals.append((cls, "send", original))
        wrapt.wrap_function_wrapper(cls, "send", wrapper)

    def uninstall(self) -> None:
        """Put back the exact original functions (``Client.send is original`` afterwards)."""
        while self._originals:
            cls, name, original = self._originals.pop()
            setattr(cls, name, original)

    # --- per request --------------------------------------------------------------------------
    def begin(self, request: Any) -> Call | None:
        """A :class:`Call` for an OpenAI inference request, None for anything else."""
        route = classify(request.method, request.url.path)
        if route is None:
            return None
        url = request.url
        host = url.host
        if self.hosts is not None and host not in self.hosts:
            return None
        info = _request_info(request, self.recorder.capture_content)
        retry = request.headers.get("x-stainless-retry-count")
        try:
            attempt = int(retry) if retry else 0
        except ValueError:
            attempt = 0
        return Call(
            self.recorder,
            route,
            info,
            host=host,
            port=url.port or (443 if url.scheme == "https" else 80),
            attempt=attempt,
            attribution=attribution.current(),
            context=otel_context.get_current(),
        )


def _request_info(request: Any, capture_content: bool) -> RequestInfo:
    try:
        body = request.content
    except Exception:
        # A streamed upload (multipart audio) is not read yet: take the model from its form fields.
        fields = getattr(getattr(request, "stream", None), "fields", None) or ()
        for item in fields:
            if getattr(item, "name", None) == "model" and isinstance(getattr(item, "value", None), str):
                return RequestInfo(item.value, False, None, None, None, None)
        return RequestInfo(None, False, None, None, None, None)
    return parse_request(body, capture_content=capture_content)


def _begin(patcher: Patcher, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call | None:
    request = args[0] if args else kwargs.get("request")
    try:
        return patcher.begin(request)
    except Exception:
        HEALTH.internal_error("request")
        return None


def _on_response(call: Call, response: Any, stream: bool, tee: type) -> None:
    call.response(response.status_code, response.headers.raw)
    if stream:
        call.begin_stream()
        if response.is_stream_consumed:
            # A mock transport or an event hook already read the body: record it as it is.
            call.response_headers["content-encoding"] = ""
            call.chunk(response.content)
            call.end_stream(eof=True)
        else:
            response.stream = tee(response.stream, call)
    else:
        call.body(response.content)


def _sync_wrapper(patcher: Patcher, tee: type) -> Callable[..., Any]:
    def send(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call = _begin(patcher, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            response = wrapped(*args, **kwargs)
        except BaseException as exc:
            try:
                call.fail(exc)
            except Exception:
                HEALTH.internal_error("failure")
            raise
        try:
            _on_response(call, response, bool(kwargs.get("stream", False)), tee)
        except Exception:
            HEALTH.internal_error("response")
        return response

    return send


def _async_wrapper(patcher: Patcher, tee: type) -> Callable[..., Any]:
    async def send(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call = _begin(patcher, args, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        try:
            response = await wrapped(*args, **kwargs)
        except BaseException as exc:
            try:
                call.fail(exc)
            except Exception:
                HEALTH.internal_error("failure")
            raise
        try:
            _on_response(call, response, bool(kwargs.get("stream", False)), tee)
        except Exception:
            HEALTH.internal_error("response")
        return response

    return send
