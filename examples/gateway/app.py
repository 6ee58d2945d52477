"""An OpenAI-compatible gateway: same SDK, another base URL; optionally count only some hosts."""

import os

import openai

import spendscope

# By default any host serving OpenAI-style paths counts. To count only the gateway (and ignore,
# say, a local model server on another host), name the hosts:
gateway_host = os.environ.get("GATEWAY_HOST")
spendscope.instrument(service_name="gateway-app", hosts=[gateway_host] if gateway_host else None)

client = openai.OpenAI(base_url=os.environ.get("GATEWAY_BASE_URL", os.environ.get("OPENAI_BASE_URL")))
reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hi"}])
print(reply.choices[0].message.content)
