"""A real-HTTP fake of the OpenAI API (and Azure OpenAI) on loopback, stdlib only.

Used by every test and by the demo::

    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key=fake.api_key)

Deterministic by construction (``tokens.py``): text costs ``ceil(utf8 bytes / 4)`` tokens, each
chat message adds 3 and the reply 3 more; the reply is 8 words, one output token and one stream delta
each; reasoning models (o-series, gpt-5 family) add 0/16/64/256 reasoning tokens for effort
minimal/low/medium (default)/high; audio models with ``modalities=["audio"]`` add 4 audio tokens per
word. Aliases answer with dated snapshots (gpt-4o -> gpt-4o-2024-08-06).

Request headers a test can send (``extra_headers=``):

* ``x-fake-cached-tokens: N`` report ``min(N, prompt_tokens)`` cached prompt tokens;
* ``x-fake-chunks: N`` make the reply N words, i.e. N content deltas in a stream;
* ``x-fake-fault: <spec>`` inject a fault (syntax in ``faults.py``).

A model named ``no-such-...`` or ``nonexistent...`` answers 404 ``model_not_found``; a prompt over
the model's context window answers 400 ``context_length_exceeded``. The control plane lives under
``/__fake/`` (``control.py``); ``/v1/organization/...`` is served by ``usage_api.py``.
"""

from spendscope.fake_openai.server import FakeOpenAI

__all__ = ["FakeOpenAI"]
