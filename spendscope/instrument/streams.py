"""Byte-stream tees: the app reads the same bytes, in the same chunks, at the same time.

``httpx`` and ``httpx2`` check ``isinstance(response.stream, SyncByteStream)`` (or the async one) of
their own module, so a tee class is made for each module's base classes. The tee forwards every
chunk before doing O(1) bookkeeping on the :class:`~spendscope.instrument.call.Call`, and ends the
call's span on exhaustion, close, error, or when it is garbage collected unfinished.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from spendscope.instrument.call import Call
from spendscope.instrument.health import HEALTH

__all__ = ["tee_classes"]


def _safe_end(call: Call, *, eof: bool, exc: BaseException | None = None) -> None:
    try:
        call.end_stream(eof=eof, exc=exc)
    except Exception:
        HEALTH.internal_error("stream end")


def _chunk_failed(call: Call) -> None:
    call.tail = None  # stop recording this stream; the app keeps reading
    HEALTH.internal_error("stream chunk")


def _first(call: Call, chunk: bytes) -> None:
    if call.tail is not None:
        try:
            call.chunk(chunk)
        except Exception:
            _chunk_failed(call)


def _direct_tail(call: Call) -> list[bytes] | None:
    """The tail the tee may append to itself: when no chunk needs a look (not a Responses stream)."""
    return None if call.watch_terminal else call.tail


def _trim(call: Call, tail: list[bytes]) -> bool:
    """Trim the kept tail; False once the call stopped recording (ended, or failed)."""
    if call.tail is not tail:
        return False
    try:
        call.trim()
    except Exception:
        _chunk_failed(call)
        return False
    return True


def tee_classes(sync_base: type, async_base: type) -> tuple[type, type]:
    """Build the sync and async tee classes for one HTTP library's stream base classes."""

    class SyncTee(sync_base):  # type: ignore[misc]
        __slots__ = ("_call", "_inner")

        def __init__(self, inner: Any, call: Call) -> None:
            self._inner = inner
            self._call = call

        def __iter__(self) -> Iterator[bytes]:
            call = self._call
            try:
                chunks = iter(self._inner)
                for chunk in chunks:
                    _first(call, chunk)
                    yield chunk
                    break
                tail = _direct_tail(call)
                if tail is not None:
                    # Nothing looks at single chunks here: append, count, trim once per limit.
                    append, limit, pending = tail.append, call.limit, 0
                    for chunk in chunks:
                        append(chunk)
                        pending += len(chunk)
                        if pending > limit:
                            pending = 0
                            if not _trim(call, tail):
                                yield chunk
                                break
                        yield chunk
                for chunk in chunks:
                    if call.tail is not None:
                        try:
                            call.chunk(chunk)
                        except Exception:
                            _chunk_failed(call)
                    yield chunk
            except GeneratorExit:
                raise
            except BaseException as exc:
                _safe_end(call, eof=False, exc=exc)
                raise
            _safe_end(call, eof=True)

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                _safe_end(self._call, eof=False)

        @property
        def elapsed(self) -> Any:
            # httpx2 reads the response time back from ``response.stream.elapsed``.
            return getattr(self._inner, "elapsed", None)

        def __del__(self) -> None:
            call = getattr(self, "_call", None)
            if call is not None and not call.done:
                _safe_end(call, eof=False)

    class AsyncTee(async_base):  # type: ignore[misc]
        __slots__ = ("_call", "_inner")

        def __init__(self, inner: Any, call: Call) -> None:
            self._inner = inner
            self._call = call

        async def __aiter__(self) -> AsyncIterator[bytes]:
            call = self._call
            try:
                chunks = aiter(self._inner)
                async for chunk in chunks:
                    _first(call, chunk)
                    yield chunk
                    break
                tail = _direct_tail(call)
                if tail is not None:
                    append, limit, pending = tail.append, call.limit, 0
                    async for chunk in chunks:
                        append(chunk)
                        pending += len(chunk)
                        if pending > limit:
                            pending = 0
                            if not _trim(call, tail):
                                yield chunk
                                break
                        yield chunk
                async for chunk in chunks:
                    if call.tail is not None:
                        try:
                            call.chunk(chunk)
                        except Exception:
                            _chunk_failed(call)
                    yield chunk
            except GeneratorExit:
                raise
            except BaseException as exc:
                _safe_end(call, eof=False, exc=exc)
                raise
            _safe_end(call, eof=True)

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                _safe_end(self._call, eof=False)

        @property
        def elapsed(self) -> Any:
            return getattr(self._inner, "elapsed", None)

        def __del__(self) -> None:
            call = getattr(self, "_call", None)
            if call is not None and not call.done:
                _safe_end(call, eof=False)

    return SyncTee, AsyncTee
