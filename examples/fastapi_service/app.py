"""A FastAPI service: each OpenAI call is attributed to the caller and the route that made it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import openai
from fastapi import FastAPI, Request, Response

import spendscope

spendscope.instrument(service_name="support-api")
client = openai.AsyncOpenAI()
app = FastAPI()


@app.middleware("http")
async def attribute_calls(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    # Context-local: every OpenAI call made while handling this request carries these attributes,
    # across awaits and tasks, without touching the call sites.
    user = request.headers.get("x-user-id", "anonymous")
    with spendscope.attributes(
        user=user, feature=request.url.path, tags={"tenant": request.headers.get("x-tenant", "none")}
    ):
        return await call_next(request)


@app.post("/answer")
async def answer(question: dict[str, str]) -> dict[str, str]:
    reply = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": question.get("text", "")}]
    )
    return {"answer": reply.choices[0].message.content or ""}


@app.post("/summarize")
async def summarize(document: dict[str, str]) -> dict[str, str]:
    stream = await client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Summarize: " + document.get("text", "")}],
        stream=True,
        stream_options={"include_usage": True},  # so streamed calls carry their token usage
    )
    parts = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
    return {"summary": "".join(parts)}
