"""An asyncio batch job: bounded concurrency, every call attributed to the job and the item."""

from __future__ import annotations

import asyncio
import sys

import openai

import spendscope

DOCUMENTS = [f"Ticket {n}: the invoice total looks wrong." for n in range(20)]


async def classify(client: openai.AsyncOpenAI, limit: asyncio.Semaphore, index: int, text: str) -> str:
    async with limit:
        with spendscope.attributes(tags={"item": str(index)}):
            reply = await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"Classify: {text}"}]
            )
            return reply.choices[0].message.content or ""


async def main(job_id: str) -> None:
    spendscope.instrument(service_name="nightly-classifier")
    limit = asyncio.Semaphore(5)
    async with openai.AsyncOpenAI() as client:
        with spendscope.attributes(feature="ticket-classification", tags={"job": job_id}):
            results = await asyncio.gather(*(classify(client, limit, i, d) for i, d in enumerate(DOCUMENTS)))
    print(f"classified {len(results)} tickets")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "job-1"))
