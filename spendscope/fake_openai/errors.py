"""Error bodies in the shapes the real API sends (openai-wire.md §4).

Every JSON error is ``{"error": {"message", "type", "param", "code"}}`` with all four keys present;
5xx can also arrive as an HTML page from the edge proxy or as an empty body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = [
    "HTML_502",
    "HTML_504",
    "ApiError",
    "azure_error",
    "default_error",
    "error_json",
    "mask_key",
]

HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
)
HTML_504 = (
    b"<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    b"<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


@dataclass(frozen=True, slots=True)
class ApiError:
    """One error answer: its status, the inner error object and the code the ledger records."""

    status: int
    message: str
    type: str
    param: str | None = None
    code: str | None = None

    @property
    def ledger_code(self) -> str:
        # Real 5xx bodies carry code null; the type ("server_error") is the useful label then.
        return self.code or self.type

    def inner(self) -> dict[str, str | None]:
        return {"message": self.message, "type": self.type, "param": self.param, "code": self.code}

    def body(self) -> bytes:
        return error_json(self.message, self.type, self.param, self.code)


def error_json(message: str, type_: str, param: str | None, code: str | None) -> bytes:
    inner = {"message": message, "type": type_, "param": param, "code": code}
    return json.dumps({"error": inner}, separators=(",", ":")).encode()


def mask_key(key: str) -> str:
    """Mask a key the way the 401 message does: first 8 and last 4 characters kept."""
    if len(key) <= 12:
        return "*" * len(key)
    return key[:8] + "*" * (len(key) - 12) + key[-4:]


def default_error(
    code_or_status: str | int,
    *,
    model: str = "gpt-4o",
    organization: str = "org-fake",
    request_id: str = "",
    key: str = "",
    limit_type: str = "tokens",
    prompt_tokens: int = 0,
    context: int = 0,
    message: str | None = None,
) -> ApiError:
    """The realistic error for an OpenAI error code, or for a bare HTTP status."""
    code = code_or_status
    if code == "rate_limit_exceeded":
        unit = "requests per min (RPM)" if limit_type == "requests" else "tokens per min (TPM)"
        text = (
            f"Rate limit reached for {model} in organization {organization} on {unit}: Limit 30000, "
            "Used 30000, Requested 1. Please try again in 20ms. "
            "Visit https://platform.openai.com/account/rate-limits to learn more."
        )
        return ApiError(429, message or text, limit_type, None, "rate_limit_exceeded")
    if code == "insufficient_quota":
        text = (
            "You exceeded your current quota, please check your plan and billing details. For more "
            "information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
        )
        return ApiError(429, message or text, "insufficient_quota", None, "insufficient_quota")
    if code == "context_length_exceeded":
        window = context or 128000
        text = (
            f"This model's maximum context length is {window} tokens. However, your messages resulted in "
            f"{prompt_tokens or window + 1} tokens. Please reduce the length of the messages."
        )
        return ApiError(400, message or text, "invalid_request_error", "messages", "context_length_exceeded")
    if code == "invalid_api_key" and not key:
        text = (
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank "
            "username) if you're accessing the API from your browser and are prompted for a username and "
            "password. You can obtain an API key from https://platform.openai.com/account/api-keys."
        )
        return ApiError(401, message or text, "invalid_request_error", None, "invalid_api_key")
    if code == "invalid_api_key":
        text = (
            f"Incorrect API key provided: {mask_key(key)}. You can find your API key at "
            "https://platform.openai.com/account/api-keys."
        )
        return ApiError(401, message or text, "invalid_request_error", None, "invalid_api_key")
    if code == "model_not_found":
        text = f"The model `{model}` does not exist or you do not have access to it."
        return ApiError(404, message or text, "invalid_request_error", None, "model_not_found")
    if code in ("server_error", 500):
        text = (
            "The server had an error processing your request. Sorry about that! You can retry your request, "
            "or contact us through our help center at help.openai.com if you keep seeing this error. "
            f"(Please include the request ID {request_id} in your email.)"
        )
        return ApiError(500, message or text, "server_error", None, None)
    if code == 503:
        return ApiError(
            503, message or "The server is overloaded or not ready yet.", "server_error", None, None
        )
    if isinstance(code, int):
        type_ = "server_error" if code >= 500 else "invalid_request_error"
        return ApiError(code, message or f"Fake error with status {code}.", type_, None, None)
    # An unknown code string: keep the code, pick a plausible status and type.
    return ApiError(400, message or f"Fake error {code}.", "invalid_request_error", None, code)


def azure_error(code: str, message: str) -> bytes:
    """Azure's gateway errors carry a string code and no type/param."""
    return json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":")).encode()
