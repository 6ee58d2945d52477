"""The whole integration: two lines at start-up, nothing else changes."""

import openai

import spendscope

spendscope.instrument()  # spans go to http://127.0.0.1:4318 unless OTEL_EXPORTER_OTLP_ENDPOINT says otherwise

client = openai.OpenAI()  # reads OPENAI_API_KEY and OPENAI_BASE_URL as usual
reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hi"}])
print(reply.choices[0].message.content)
