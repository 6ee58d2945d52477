"""Which HTTP requests are OpenAI inference calls, and what operation each one is.

Pure functions over the method and path: they run for every request the patched clients send, so
the common "not ours" answer must be cheap (a method compare and a few ``endswith``).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Route", "classify"]


class Route(NamedTuple):
    operation: str  # gen_ai.operation.name
    api: str  # openai.api.type: which endpoint family answered
    deployment: str | None  # Azure deployment name from the path, the request model there


# Suffix -> (operation, api). Only inference endpoints: /models, /files, /batches and retrievals get no span.
_SUFFIXES: tuple[tuple[str, str, str], ...] = (
    ("/chat/completions", "chat", "chat_completions"),
    ("/responses", "chat", "responses"),
    ("/embeddings", "embeddings", "embeddings"),
    ("/completions", "text_completion", "completions"),
    ("/moderations", "moderation", "moderations"),
    ("/images/generations", "image_generation", "images.generations"),
    ("/images/edits", "image_edit", "images.edits"),
    ("/images/variations", "image_variation", "images.variations"),
    ("/audio/speech", "speech", "audio.speech"),
    ("/audio/transcriptions", "transcription", "audio.transcriptions"),
    ("/audio/translations", "translation", "audio.translations"),
)
_DEPLOYMENTS = "/openai/deployments/"


def classify(method: str, path: str) -> Route | None:
    """Return the route of an OpenAI-style inference request, or None for anything else."""
    if method != "POST":
        return None
    for suffix, operation, api in _SUFFIXES:
        if path.endswith(suffix):
            deployment = None
            start = path.find(_DEPLOYMENTS)
            if start >= 0:
                rest = path[start + len(_DEPLOYMENTS) :]
                name, _, _ = rest.partition("/")
                deployment = name or None
            return Route(operation, api, deployment)
    return None
