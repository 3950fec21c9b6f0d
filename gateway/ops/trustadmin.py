"""Trust administration: re-read the trust anchors, the CRL and the member registry while the gateway runs.

Rule 1: a trust reload re-reads the three files (``load_trust``: the CRL signed by an anchor and complete, the
        registry's version matching its content) and then checks the new snapshot against the time and the one
        serving: the home member is still in the registry; the new CRL is current now (thisUpdate <= now <
        nextUpdate); from the same anchor, it is not older than the serving CRL (neither its thisUpdate nor its
        CRL number goes back: replaying an old CRL file cannot un-revoke a certificate). A new registry also
        rebuilds the policy decisions for it (``Authorizer.with_registry``); a policy set that does not fit it
        refuses the reload.
Rule 2: all of it is built off the event loop and swapped in one step (``GatewayState.swap``): the new snapshot
        has a new version and an empty chain-validation cache, so every certificate (TLS client, message signer,
        the certificate an access token was issued from) is judged by the new CRL from the next request on. A
        refused reload leaves the old snapshot serving, which still fails closed once its own CRL is stale.
Rule 3: every reload, accepted or refused, is a ``trust_reloaded`` ledger event: the trigger (``watch``,
        ``sighup`` or ``admin``), who asked, the old and the new version, the CRL's window, number and size, and
        why a refused one was refused.
Rule 4: triggers: the watcher stat()s the three files every ``[trust] watch_seconds`` (one ``stat`` each, off
        the event loop) and reloads when one's (device, inode, size, mtime) changed since the last reload read
        it (a file replaced by a rename or rewritten in place); SIGHUP; ``POST /v1/admin/trust/reload``, decided
        by Cedar's ``admin`` action like the policy reload. A refused file is tried again only when it changes
        (or on SIGHUP / admin), so a broken file is not ledgered every second.
Rule 5: trust and policy reloads share one lock: a policy set is checked against the registry it will serve.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog

from gateway.core.audit import AuditEvent, EventKind, rfc3339
from gateway.core.errors import GatewayError, Unavailable
from gateway.core.model import Caller, Registry
from gateway.core.pki import FederationTrust
from gateway.core.policy import Authorizer
from gateway.exchange.rejections import Rejections
from gateway.exchange.state import GatewayState, Trust
from gateway.infra.files import FileSignature, file_signature, load_trust
from gateway.interfaces.protocols import Clock, Store
from gateway.ops.policyadmin import admin_body, require_admin

log = structlog.get_logger("gateway.trust")


def require_home(registry: Registry, member_id: str) -> None:
    if registry.get(member_id) is None:
        raise Unavailable(f"the home member {member_id} is not in the registry", field="gateway.member_id")


@dataclass(frozen=True, slots=True)
class TrustPaths:
    anchors: Path
    crl: Path
    registry: Path

    def signature(self) -> FileSignature:
        return file_signature((self.anchors, self.crl, self.registry))


def check_trust(paths: TrustPaths, serving: FederationTrust, home: str, now: datetime) -> FederationTrust:
    """Rule 1: the snapshot the files hold now, if it may replace ``serving``; else ``Unavailable``."""
    new = load_trust(paths.anchors, paths.crl, paths.registry)
    require_home(new.registry, home)
    this_update, next_update = new.crl_window
    if not this_update <= now < next_update:
        raise Unavailable(
            f"the new CRL is not current at {rfc3339(now)} (valid {rfc3339(this_update)} .. {rfc3339(next_update)})",
            field="trust.crl",
        )
    if new.crl_issuer == serving.crl_issuer:
        if this_update < serving.crl_window[0]:
            raise Unavailable("the new CRL is older than the one serving (thisUpdate goes back)", field="trust.crl")
        if new.crl_number is not None and serving.crl_number is not None and new.crl_number < serving.crl_number:
            raise Unavailable(
                f"the new CRL's number {new.crl_number} is below the serving {serving.crl_number}", field="trust.crl"
            )
    return new


@dataclass(frozen=True, slots=True)
class TrustReload:
    accepted: bool
    old_version: str
    new_version: str
    crl: dict[str, object]  # the serving CRL after the reload: this_update, next_update, number, revoked
    code: str = ""
    detail: str = ""

    def record(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "crl": self.crl,
        } | ({"code": self.code, "detail": self.detail[:500]} if not self.accepted else {})


def _describe(trust: FederationTrust) -> dict[str, object]:
    this_update, next_update = trust.crl_window
    return {
        "this_update": rfc3339(this_update),
        "next_update": rfc3339(next_update),
        "number": trust.crl_number,
        "revoked": trust.revoked_count,
    }


@dataclass(frozen=True, slots=True)
class _Checked:
    trust: FederationTrust
    authorizer: Authorizer | None  # None: the registry did not change


class TrustReloader:
    """Hot reload of the trust files into ``state`` (Rules 1-5)."""

    def __init__(
        self,
        *,
        state: GatewayState,
        store: Store,
        clock: Clock,
        paths: TrustPaths,
        serving: FederationTrust,
        seen: FileSignature,
        lock: asyncio.Lock,
        rejections: Rejections,
    ) -> None:
        self._state = state
        self._rejections = rejections
        self._store = store
        self._clock = clock
        self._paths = paths
        self._serving = serving  # the snapshot in ``state`` (only this reloader swaps trust)
        self._seen = seen  # the files' signature when the serving snapshot (or a refused one) was read
        self._lock = lock

    def _check(self, now: datetime) -> _Checked:
        """In a worker thread: Rule 1, and the authorizer for a new registry."""
        checked = check_trust(self._paths, self._serving, self._state.member_id, now)
        authorizer = self._state.require_authorizer()
        if checked.registry.version == authorizer.registry_version:
            return _Checked(checked, None)
        return _Checked(checked, authorizer.with_registry(checked.registry))

    async def reload(self, trigger: str, by: str = "") -> TrustReload:
        """Check and swap (Rules 1-3). Never raises for refused files: the refusal is the result."""
        async with self._lock:
            old = self._serving
            self._seen = await asyncio.to_thread(self._paths.signature)
            try:
                checked = await asyncio.to_thread(self._check, self._clock.now())
            except GatewayError as exc:
                result = TrustReload(False, old.version, "", _describe(old), code=exc.code, detail=exc.detail)
            else:
                new = checked.trust
                self._state.swap(
                    trust=Trust(validator=new, registry=new.registry, version=new.version),
                    authorizer=checked.authorizer,
                )
                self._serving = new
                result = TrustReload(True, old.version, new.version, _describe(new))
            fields = {"trigger": trigger, "by": by} | result.record()
            await self._store.record(AuditEvent(EventKind.TRUST_RELOADED, self._clock.now(), fields))
            log.info("trust reloaded" if result.accepted else "trust reload refused", **fields)
            return result

    async def reload_by(self, caller: Caller, adapter: str = "rest") -> TrustReload:
        """The admin endpoint: Cedar's ``admin`` action decides (Rule 4); a denial is audited, ``Forbidden``."""
        await require_admin(self._state, self._rejections, caller, adapter)
        return await self.reload("admin", caller.member.id)

    async def reload_for(self, caller: Caller) -> dict[str, object]:
        """``reload_by`` as the JSON body the REST adapter returns."""
        return admin_body(caller, await self.reload_by(caller))

    async def watch(self, interval: float) -> None:
        """Rule 4: poll the files' signature every ``interval`` seconds; reload when it changed."""
        while True:
            await asyncio.sleep(interval)
            try:
                if await asyncio.to_thread(self._paths.signature) != self._seen:
                    await self.reload("watch")
            except GatewayError as exc:  # the ledger write failed: try again at the next change or poll
                log.error("trust watch failed", code=exc.code, detail=exc.detail)
