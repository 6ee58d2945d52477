"""The fake's mutable state, shared by the request handler, the control plane and ``FakeOpenAI``."""

from __future__ import annotations

import hashlib
import threading

from spendscope.fake_openai.clock import Clock
from spendscope.fake_openai.faults import FaultRules
from spendscope.fake_openai.ledger import Ledger
from spendscope.fake_openai.ratelimit import RateLimiter
from spendscope.fake_openai.records import RequestLog

__all__ = ["MAX_BODY_BYTES", "FakeState"]

MAX_BODY_BYTES = 32 << 20


class FakeState:
    def __init__(
        self,
        *,
        api_key: str,
        admin_key: str,
        azure_api_key: str,
        organization: str,
        project: str,
        azure_project: str,
        gzip: bool = True,
    ) -> None:
        self.api_key = api_key
        self.admin_key = admin_key
        self.azure_api_key = azure_api_key
        self.organization = organization
        self.default_project = project
        self._default_projects = {api_key: project, azure_api_key: azure_project}
        self.projects: dict[str, str] = dict(self._default_projects)
        self.gzip = gzip
        self.azure_region = "East US"
        self.ledger = Ledger()
        self.log = RequestLog()
        self.faults = FaultRules()
        self.clock = Clock()
        self.limiter = RateLimiter()
        self.stopping = threading.Event()
        self._key_ids: dict[str, str] = {}

    def key_id(self, key: str) -> str:
        """``key_`` + sha256(key)[:16]: how the Usage API names a key, without revealing it."""
        cached = self._key_ids.get(key)
        if cached is None:
            cached = "key_" + hashlib.sha256(key.encode()).hexdigest()[:16]
            if len(self._key_ids) < 1024:
                self._key_ids[key] = cached
        return cached

    def reset(self) -> None:
        """Forget traffic, faults, rate-limit state and key changes; the clock returns to real time."""
        self.ledger.clear()
        self.log.clear()
        self.faults.clear()
        self.limiter.reset()
        self.clock.real()
        self.projects.clear()
        self.projects.update(self._default_projects)
