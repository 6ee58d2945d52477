"""Map request paths to what the fake serves: OpenAI ``/v1``, Azure deployments, control plane."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["INFERENCE_PATHS", "Route", "resolve"]

# path under /v1 -> ledger endpoint name
INFERENCE_PATHS: dict[str, str] = {
    "/chat/completions": "chat.completions",
    "/responses": "responses",
    "/embeddings": "embeddings",
    "/completions": "completions",
    "/moderations": "moderations",
    "/images/generations": "images.generations",
    "/audio/speech": "audio.speech",
}
# Azure moves the model into the path for these (openai-wire.md §5.4).
_AZURE_DEPLOYMENT_OPS = frozenset(
    {"/chat/completions", "/completions", "/embeddings", "/images/generations", "/audio/speech"}
)


@dataclass(frozen=True, slots=True)
class Route:
    kind: str  # "inference" | "models" | "model" | "organization" | "control" | "unknown"
    endpoint: str = ""  # ledger endpoint name for inference
    op: str = ""  # the OpenAI path under /v1 ("/chat/completions"), or the model id for "model"
    azure: bool = False
    azure_key_auth: bool = False  # classic Azure routes authenticate with the api-key header
    deployment: str | None = None


_UNKNOWN = Route("unknown")


def _v1(rest: str, azure: bool) -> Route:
    endpoint = INFERENCE_PATHS.get(rest)
    if endpoint is not None:
        return Route("inference", endpoint, rest, azure=azure)
    if rest == "/models":
        return Route("models", azure=azure)
    if rest.startswith("/models/") and len(rest) > len("/models/"):
        return Route("model", op=rest[len("/models/") :], azure=azure)
    if rest.startswith("/organization/") and not azure:
        return Route("organization")
    return _UNKNOWN


def resolve(path: str) -> Route:
    if path.startswith("/v1/"):
        return _v1(path[3:], azure=False)
    if path.startswith("/__fake/"):
        return Route("control", op=path[len("/__fake") :])
    if path.startswith("/openai/"):
        rest = path[len("/openai") :]
        if rest.startswith("/v1/"):  # Azure "v1" style: plain OpenAI paths, bearer auth
            return _v1(rest[3:], azure=True)
        if rest == "/responses":
            return Route("inference", "responses", rest, azure=True, azure_key_auth=True)
        if rest.startswith("/deployments/"):
            deployment, sep, op = rest[len("/deployments/") :].partition("/")
            op = "/" + op
            if sep and deployment and op in _AZURE_DEPLOYMENT_OPS:
                return Route(
                    "inference",
                    INFERENCE_PATHS[op],
                    op,
                    azure=True,
                    azure_key_auth=True,
                    deployment=deployment,
                )
    return _UNKNOWN
