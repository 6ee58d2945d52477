"""Reading a foreign price source: a local file, a wheel that ships one, or an http(s) URL.

A thin I/O shell for ``pricing import`` and ``pricing check``; the bytes go to the pure parsers in
:mod:`spendscope.pricing.foreign`. Reads are bounded in size and time.
"""

from __future__ import annotations

import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from spendscope.pricing.foreign import MAX_SOURCE_BYTES
from spendscope.pricing.loading import PriceDataError

__all__ = ["LITELLM_WHEEL_MEMBER", "read_source"]

# Where LiteLLM's wheel keeps its price map (the copy it uses with LITELLM_LOCAL_MODEL_COST_MAP).
LITELLM_WHEEL_MEMBER = "litellm/model_prices_and_context_window_backup.json"
_TIMEOUT_S = 60


def read_source(source: str) -> bytes:
    """The bytes of ``source``; a ``.whl`` gives LiteLLM's price map inside it."""
    if source.startswith(("http://", "https://")):
        return _read_url(source)
    if "://" in source:
        raise PriceDataError(f"{source}: only http(s) URLs and local files can be read")
    path = Path(source).expanduser()
    try:
        if path.suffix == ".whl":
            with zipfile.ZipFile(path) as wheel:
                info = wheel.getinfo(LITELLM_WHEEL_MEMBER)
                if info.file_size > MAX_SOURCE_BYTES:
                    raise PriceDataError(
                        f"{source}: {LITELLM_WHEEL_MEMBER} is larger than {MAX_SOURCE_BYTES} bytes"
                    )
                return wheel.read(info)
        with path.open("rb") as fh:
            raw = fh.read(MAX_SOURCE_BYTES + 1)
    except KeyError:
        raise PriceDataError(f"{source}: the wheel has no {LITELLM_WHEEL_MEMBER}") from None
    except zipfile.BadZipFile:
        raise PriceDataError(f"{source}: not a wheel (zip) file") from None
    except OSError as exc:
        raise PriceDataError(f"{source}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_SOURCE_BYTES:
        raise PriceDataError(f"{source}: larger than {MAX_SOURCE_BYTES} bytes")
    return raw


def _read_url(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
            raw: bytes = response.read(MAX_SOURCE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise PriceDataError(f"{url}: the server answered HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PriceDataError(f"{url}: cannot fetch: {reason}") from None
    if len(raw) > MAX_SOURCE_BYTES:
        raise PriceDataError(f"{url}: larger than {MAX_SOURCE_BYTES} bytes")
    return raw
