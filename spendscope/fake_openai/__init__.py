"""A real-HTTP fake of the OpenAI API (and Azure OpenAI) on loopback, stdlib only.

Used by every test and by the demo: ``with FakeOpenAI() as fake: OpenAI(base_url=fake.base_url, ...)``.
See ``server.py`` for the API, ``faults.py`` for fault injection, ``plan.py`` for the control headers
(``x-fake-cached-tokens``, ``x-fake-chunks``) and ``tokens.py`` for the token arithmetic.
"""

from spendscope.fake_openai.server import FakeOpenAI

__all__ = ["FakeOpenAI"]
