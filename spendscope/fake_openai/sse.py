"""Server-sent events on the wire: framing plus the byte-level faults decoders must survive.

``encode`` turns events into the pieces the handler writes as HTTP chunks, one piece per event by
default. Faults can insert a malformed frame, add comment lines, switch to CRLF, spread JSON over
several ``data:`` lines, split the byte stream at arbitrary boundaries, or cut it mid-frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from spendscope.fake_openai.faults import Fault
from spendscope.fake_openai.streams import DONE, StreamOut

__all__ = ["MALFORMED", "Wire", "encode"]

MALFORMED = "{not json}"
_COMMENT = b": keep-alive\n\n"


@dataclass(slots=True)
class Wire:
    pieces: list[bytes]
    cut: bool = False  # close the connection after the pieces, with no terminating chunk
    usage_sent: bool = False  # the usage event was written completely


def _frame(name: str | None, data: str, multiline: bool) -> bytes:
    if multiline and data not in (DONE, MALFORMED):
        # Re-indenting keeps the JSON valid once the decoder joins the lines with "\n".
        lines = json.dumps(json.loads(data), indent=1).split("\n")
        text = "\n".join("data: " + line for line in lines)
    else:
        text = "data: " + data
    if name is not None:
        return f"event: {name}\n{text}\n\n".encode()
    return f"{text}\n\n".encode()


def encode(out: StreamOut, fault: Fault | None) -> Wire:
    events = out.events
    usage_index = out.usage_index
    if fault is None or not fault.touches_stream:
        frames = [
            (b"event: " + name.encode() + b"\ndata: " if name else b"data: ") + data.encode() + b"\n\n"
            for name, data in events
        ]
        return Wire(frames, usage_sent=usage_index is not None)
    if fault.malformed is not None:
        at = max(0, min(fault.malformed, len(events)))
        events = [*events[:at], (None, MALFORMED), *events[at:]]
        if usage_index is not None and usage_index >= at:
            usage_index += 1
    frames = [_frame(name, data, fault.multiline) for name, data in events]
    if fault.comments:
        frames = [_COMMENT + f for f in frames]
    if fault.crlf:
        frames = [f.replace(b"\n", b"\r\n") for f in frames]
    cut = False
    usage_sent = usage_index is not None
    if fault.truncate is not None and frames:
        keep = fault.truncate if fault.truncate >= 0 else len(frames) // 2
        keep = min(keep, len(frames) - 1)
        last = frames[keep]
        frames = [*frames[:keep], last[: max(1, len(last) // 2)]]
        cut = True
        usage_sent = usage_index is not None and usage_index < keep
    if fault.split is not None:
        blob = b"".join(frames)
        size = fault.split
        frames = [blob[i : i + size] for i in range(0, len(blob), size)]
    return Wire(frames, cut=cut, usage_sent=usage_sent)
