"""Operations: readiness, metrics exposition and the dead-letter admin service, as the adapters see them.

Rule 1: ready means able to accept a message now: the store answers a read (within :data:`STORE_PROBE_SECONDS`)
        and takes a real write (``Store.probe_write``: a full disk, a Redis at maxmemory or unreachable fails
        it), the gateway's signing and checkpoint keys are loaded, the trust list is loaded and its CRL is
        current (now inside [thisUpdate, nextUpdate), read from the trust in ``GatewayState`` at each probe, so
        a reloaded CRL counts at once), the policy set is loaded, and the gateway is not draining for shutdown.
        ``/healthz`` (liveness) stays a plain "the loop runs".
Rule 2: the components are reported by name, each failing one with a short reason, so an operator sees WHICH
        one is missing and why; never a detail that would help an attacker (no paths, no key ids, no URLs).
Rule 3: a write probe's answer is reused for :data:`WRITE_PROBE_CACHE_SECONDS`, and concurrent probes share
        one write: ``/readyz`` polled by many balancers is not a write amplifier.
Rule 4: metrics gauges that mirror stored state are refreshed from the store at each scrape; the expiry
        gauges (CRL nextUpdate, certificate notAfter) are computed from the current trust and clock at each
        scrape.
Rule 5: ``cgw_certificate_expiry_seconds{member,use}``: the gateway's own signing (``gateway-signing``) and
        TLS server (``gateway-tls``) certificates, and each member certificate the gateway has validated
        (``signing``, ``tls``) while its fingerprint is still registered for that member (the registry lists
        fingerprints, not certificates: a member certificate is known once it was presented). When a member
        has several registered certificates for one use, the series shows the one that expires first.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from gateway.core.errors import GatewayError
from gateway.core.pki import FederationTrust, Purpose
from gateway.delivery.deadletters import DeadLetters
from gateway.exchange.metrics import Metrics
from gateway.exchange.state import GatewayState, Trust
from gateway.interfaces.protocols import Clock, Store

# A store that cannot answer a one-row read (or take a one-row write) this fast is not fit to take traffic.
STORE_PROBE_SECONDS = 2.0
# Rule 3: how long one write probe's answer stands.
WRITE_PROBE_CACHE_SECONDS = 1.5
# Rule 5: the ``use`` label of a member certificate, by the purpose it was validated for.
_USE_OF: dict[Purpose, str] = {"signing": "signing", "client": "tls"}


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    components: dict[str, bool]
    reasons: dict[str, str]  # one per failing component (Rule 2)


def crl_problem(trust: Trust, now: datetime) -> str | None:
    """Why the CRL of ``trust`` is not current at ``now`` (every message is then refused), or None."""
    if not isinstance(trust.validator, FederationTrust):
        return None  # a validator without a CRL (tests' fakes) has no window to be outside of
    valid_from, valid_until = trust.validator.crl_window
    if now >= valid_until:
        return f"the CRL is past its nextUpdate ({valid_until.isoformat()}): load a fresh CRL"
    if now < valid_from:
        return f"the CRL is not yet valid (thisUpdate {valid_from.isoformat()})"
    return None


class Operations:
    def __init__(
        self,
        *,
        store: Store,
        state: GatewayState,
        metrics: Metrics,
        dead_letters: DeadLetters,
        checkpoint_key_loaded: bool,
        clock: Clock,
        tls_certificate: x509.Certificate | None = None,
    ) -> None:
        self.store = store
        self.state = state
        self.metrics = metrics
        self.dead_letters = dead_letters
        self._checkpoint_key_loaded = checkpoint_key_loaded
        self._clock = clock
        self._tls_certificate = tls_certificate
        self.draining = False
        self._probe_lock = asyncio.Lock()
        self._probed: tuple[float, str | None] | None = None  # (monotonic time, why the write failed or None)
        # Rule 5: (member, use, fingerprint) -> notAfter of every member certificate seen validated; kept across
        # trust reloads (a new trust starts with an empty cache), dropped once no longer registered.
        self._seen: dict[tuple[str, str, str], datetime] = {}

    async def readiness(self) -> Readiness:
        """Rule 1, with a reason for each failing component (Rule 2)."""
        reasons: dict[str, str] = {}
        if not await self._store_answers():
            reasons["store"] = "the store does not answer a read"
            reasons["store_writes"] = "not probed: the store does not answer a read"
        elif (why := await self._store_writes()) is not None:
            reasons["store_writes"] = why
        if self.state.identity is None or not self._checkpoint_key_loaded:
            reasons["keys"] = "the signing or checkpoint key is not loaded"
        trust = self._trust()
        if trust is None:
            reasons["trust"] = reasons["crl"] = "the trust list is not loaded"
        elif (why := crl_problem(trust, self._clock.now())) is not None:
            reasons["crl"] = why
        if not self._loaded(self.state.require_authorizer):
            reasons["policies"] = "no policy set is loaded"
        if self.draining:
            reasons["accepting"] = "draining for shutdown"
        names = ("store", "store_writes", "keys", "trust", "crl", "policies", "accepting")
        components = {name: name not in reasons for name in names}
        return Readiness(ready=not reasons, components=components, reasons=reasons)

    async def metrics_text(self) -> tuple[bytes, str]:
        """The exposition text (gauges refreshed first, Rule 4; a failing store leaves its gauges stale)."""
        with contextlib.suppress(GatewayError, TimeoutError):
            await asyncio.wait_for(self.metrics.refresh(self.store), timeout=STORE_PROBE_SECONDS)
        now = self._clock.now()
        trust = self._trust()
        crl_seconds = math.nan  # unknown: no trust loaded, or a validator without a CRL
        if trust is not None and isinstance(trust.validator, FederationTrust):
            crl_seconds = (trust.validator.crl_window[1] - now).total_seconds()
        expiry = {key: (not_after - now).total_seconds() for key, not_after in self._certificates(trust).items()}
        self.metrics.refresh_expiry(crl_seconds, expiry)
        return self.metrics.render()

    def _certificates(self, trust: Trust | None) -> dict[tuple[str, str], datetime]:
        """Rule 5: (member, use) -> the earliest notAfter among that member's registered certificates seen."""
        home = self.state.member_id
        out: dict[tuple[str, str], datetime] = {}
        if self.state.identity is not None:
            out[home, "gateway-signing"] = self.state.identity.chain[0].not_valid_after_utc
        if self._tls_certificate is not None:
            out[home, "gateway-tls"] = self._tls_certificate.not_valid_after_utc
        if trust is None:
            return out
        if isinstance(trust.validator, FederationTrust):
            for purpose, key in trust.validator.certified():
                self._seen[key.member_id, _USE_OF[purpose], key.fingerprint] = key.not_after
        for seen, not_after in list(self._seen.items()):
            member_id, use, fingerprint = seen
            member = trust.registry.get(member_id)
            if member is None or fingerprint not in member.cert_fingerprints:
                del self._seen[seen]  # no longer registered: no longer the operator's concern
                continue
            earliest = out.get((member_id, use))
            out[member_id, use] = not_after if earliest is None else min(earliest, not_after)
        return out

    async def _store_answers(self) -> bool:
        try:
            await asyncio.wait_for(self.store.ledger_size(), timeout=STORE_PROBE_SECONDS)
        except (GatewayError, TimeoutError):
            return False
        return True

    async def _store_writes(self) -> str | None:
        """Why the store cannot write now, or None (Rule 3: one probe per WRITE_PROBE_CACHE_SECONDS)."""
        async with self._probe_lock:
            if self._probed is not None and time.monotonic() - self._probed[0] < WRITE_PROBE_CACHE_SECONDS:
                return self._probed[1]
            why: str | None = None
            try:
                await asyncio.wait_for(self.store.probe_write(), timeout=STORE_PROBE_SECONDS)
            except GatewayError as exc:
                why = exc.detail or exc.public
            except TimeoutError:
                why = f"the store does not take a write within {STORE_PROBE_SECONDS:g} s"
            self._probed = (time.monotonic(), why)
            return why

    def _trust(self) -> Trust | None:
        try:
            return self.state.require_trust()
        except GatewayError:
            return None

    @staticmethod
    def _loaded(require: Callable[[], object]) -> bool:
        try:
            require()
        except GatewayError:
            return False
        return True
