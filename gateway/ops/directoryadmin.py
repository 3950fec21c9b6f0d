"""Federation directory hot reload: take a newer signed directory while the gateway runs (issue 19).

The operator distributes a new ``directory.jws`` (a peer joined, an anchor or endpoint changed, the old one is
about to expire); each gateway picks it up without a restart, by the same triggers as the trust files
(``gateway.ops.trustadmin``).

Rule 1: a reload reads the file in a worker thread and accepts it only when it verifies with the operator key,
        is not expired, may follow the last accepted directory (``gateway.infra.federationfiles.check_directory``:
        a newer version, or the very same document) and still lists this gateway as it runs (its id, origin,
        current checkpoint key and witness key: ``gateway.ops.witnessing.require_own_entry``). Only then is it
        recorded as accepted (``<data_dir>/directory.accepted``) and put in force
        (``gateway.ops.witnessing.DirectoryInForce.replace``): routing, relays in and out, the witness and the
        submissions use it from their next call on. A refused file leaves the directory in force serving.
Rule 2: every reload, accepted or refused, is a ``directory_reloaded`` ledger event: the trigger (``watch``,
        ``sighup``), the old and new version and digest, the gateways listed, and for a refused one the stable
        code and the reason; it is counted in ``cgw_directory_reloads`` and logged.
Rule 3: triggers: the watcher ``stat``s the directory file and the operator key every ``[trust] watch_seconds``
        (off the event loop) and reloads when one changed (``gateway.infra.files.file_signature``); SIGHUP. A
        refused file is tried again only when it changes (or on SIGHUP), so a broken file is ledgered once.
Rule 4: after the swap, the ``on_accept`` hooks run with the new directory: the listeners add the new peers'
        TLS anchors to their handshake trust (``gateway.app.main``), so a peer added by the directory can open
        a mutual TLS connection (relays, witness submissions with its client certificate) at once. A hook that
        fails is logged; the directory stays in force (the application checks use it either way).
Rule 5: reloads take turns (one lock): two triggers at once never interleave their check and swap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog

from gateway.core.audit import AuditEvent, EventKind
from gateway.core.directory import Directory
from gateway.core.errors import GatewayError
from gateway.exchange.metrics import Metrics
from gateway.infra.federationfiles import check_directory, record_accepted
from gateway.infra.files import FileSignature, file_signature
from gateway.interfaces.protocols import Clock, Store
from gateway.ops.witnessing import DirectoryInForce

log = structlog.get_logger("gateway.federation")


@dataclass(frozen=True, slots=True)
class DirectoryPaths:
    directory: Path  # [federation] directory
    operator_key: Path  # [federation] operator_key
    data_dir: Path  # where directory.accepted is kept

    def signature(self) -> FileSignature:
        return file_signature((self.directory, self.operator_key))


@dataclass(frozen=True, slots=True)
class DirectoryReload:
    accepted: bool
    old_version: int
    new_version: int  # 0 when refused
    old_digest: str
    new_digest: str = ""
    gateways: tuple[str, ...] = ()  # the gateway ids of the directory in force after the reload
    code: str = ""
    detail: str = ""

    def record(self) -> dict[str, object]:
        fields: dict[str, object] = {
            "accepted": self.accepted,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "old_digest": self.old_digest,
            "new_digest": self.new_digest,
            "gateways": list(self.gateways),
        }
        return fields | ({"code": self.code, "detail": self.detail[:500]} if not self.accepted else {})


class DirectoryReloader:
    """Hot reload of the signed federation directory into ``in_force`` (Rules 1-5)."""

    def __init__(
        self,
        *,
        in_force: DirectoryInForce,
        paths: DirectoryPaths,
        seen: FileSignature,
        store: Store,
        clock: Clock,
        require: Callable[[Directory], object],
        on_accept: Sequence[Callable[[Directory], None]] = (),
        metrics: Metrics | None = None,
    ) -> None:
        self._in_force = in_force
        self._paths = paths
        self._seen = seen  # the files' signature when the directory in force (or a refused one) was read
        self._store = store
        self._clock = clock
        self._require = require
        self._on_accept = tuple(on_accept)
        self._metrics = metrics
        self._lock = asyncio.Lock()
        if metrics is not None:
            metrics.directory_version.set(in_force.current.version)

    @property
    def current(self) -> Directory:
        """The directory in force (expired or not)."""
        return self._in_force.current

    def _check(self, now: datetime) -> Directory:
        """In a worker thread: Rule 1, then recorded as accepted."""
        paths = self._paths
        directory = check_directory(paths.directory, paths.operator_key, paths.data_dir, now)
        self._require(directory)
        record_accepted(paths.data_dir, directory)
        return directory

    async def reload(self, trigger: str, by: str = "") -> DirectoryReload:
        """Check and swap (Rules 1, 2, 4, 5). Never raises for a refused file: the refusal is the result."""
        async with self._lock:
            old = self._in_force.current
            self._seen = await asyncio.to_thread(self._paths.signature)
            try:
                new = await asyncio.to_thread(self._check, self._clock.now())
            except GatewayError as exc:
                result = DirectoryReload(
                    False, old.version, 0, old.digest, gateways=tuple(old.gateways), code=exc.code, detail=exc.detail
                )
            else:
                self._in_force.replace(new)
                result = DirectoryReload(True, old.version, new.version, old.digest, new.digest, tuple(new.gateways))
                for hook in self._on_accept:  # Rule 4
                    try:
                        hook(new)
                    except (GatewayError, OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                        log.error("directory reload hook failed", error=type(exc).__name__, detail=str(exc)[:200])
            fields = {"trigger": trigger, "by": by} | result.record()
            await self._store.record(AuditEvent(EventKind.DIRECTORY_RELOADED, self._clock.now(), fields))
            if self._metrics is not None:
                self._metrics.directory_reloads.labels(outcome="accepted" if result.accepted else "refused").inc()
                self._metrics.directory_version.set(self._in_force.current.version)
            if result.accepted:
                log.info("federation directory reloaded", **fields)
            else:
                log.error("federation directory reload refused", **fields)
            return result

    async def watch(self, interval: float) -> None:
        """Rule 3: poll the files' signature every ``interval`` seconds; reload when it changed."""
        while True:
            await asyncio.sleep(interval)
            try:
                if await asyncio.to_thread(self._paths.signature) != self._seen:
                    await self.reload("watch")
            except GatewayError as exc:  # the ledger write failed: try again at the next change or poll
                log.error("directory watch failed", code=exc.code, detail=exc.detail)
