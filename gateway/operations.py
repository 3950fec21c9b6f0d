"""Operations: readiness, metrics exposition and the dead-letter admin service, as the adapters see them.

Rule 1: ready means able to accept a message now: the store answers (within :data:`STORE_PROBE_SECONDS`), the
        gateway's signing and checkpoint keys are loaded, the trust list and the policy set are loaded, and
        the gateway is not draining for shutdown. ``/healthz`` (liveness) stays a plain "the loop runs".
Rule 2: the components are reported by name, so an operator sees WHICH one is missing; never a detail that
        would help an attacker (no paths, no key ids).
Rule 3: metrics gauges that mirror stored state are refreshed from the store at each scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from gateway.core.errors import GatewayError
from gateway.deadletters import DeadLetters
from gateway.metrics import Metrics
from gateway.ports import Store
from gateway.state import GatewayState

# A store that cannot answer a one-row read this fast is not fit to take traffic.
STORE_PROBE_SECONDS = 2.0


class Operations:
    def __init__(
        self,
        *,
        store: Store,
        state: GatewayState,
        metrics: Metrics,
        dead_letters: DeadLetters,
        checkpoint_key_loaded: bool,
    ) -> None:
        self.store = store
        self.state = state
        self.metrics = metrics
        self.dead_letters = dead_letters
        self._checkpoint_key_loaded = checkpoint_key_loaded
        self.draining = False

    async def readiness(self) -> tuple[bool, dict[str, bool]]:
        """(ready, components) as Rule 1 defines them."""
        components = {
            "store": await self._store_answers(),
            "keys": self.state.identity is not None and self._checkpoint_key_loaded,
            "trust": self._loaded(self.state.require_trust),
            "policies": self._loaded(self.state.require_authorizer),
            "accepting": not self.draining,
        }
        return all(components.values()), components

    async def metrics_text(self) -> tuple[bytes, str]:
        """The exposition text (gauges refreshed from the store first; a failing store leaves them stale)."""
        with contextlib.suppress(GatewayError, TimeoutError):
            await asyncio.wait_for(self.metrics.refresh(self.store), timeout=STORE_PROBE_SECONDS)
        return self.metrics.render()

    async def _store_answers(self) -> bool:
        try:
            await asyncio.wait_for(self.store.ledger_size(), timeout=STORE_PROBE_SECONDS)
        except (GatewayError, TimeoutError):
            return False
        return True

    @staticmethod
    def _loaded(require: Callable[[], object]) -> bool:
        try:
            require()
        except GatewayError:
            return False
        return True
