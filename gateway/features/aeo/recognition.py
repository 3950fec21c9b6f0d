"""The AEO recognition service the pipeline and the adapters use: the live index, enrichment, status updates.

Rule 1: checks read an immutable :class:`~gateway.core.aeo.AeoIndex`; every change (an ``aeo.status.v1``
        update, a CLI import noticed through the store's ``data_version``) builds a new index and swaps the
        reference, so the next check sees it and no check sees half a change.
Rule 2: the recognising administration of the pipeline's checks is the home administration (the one that
        runs this gateway and whose decisions the policies make); the date is the UTC day the message arrived.
Rule 3: ``aeo.status.v1`` updates are taken only from a customs member for authorisations its own
        administration issued, and applied only when the home administration is a recipient; they are applied
        right after the message (and its ledger leaf, which lists them) is durable.
Rule 4: a reload noticed from the store is itself recorded in the ledger (``admin`` event ``aeo_reloaded``).
Rule 5: what is recorded with an accepted message is bounded (:data:`MAX_RECORDED_PARTIES`,
        :data:`MAX_LANE_TEXT`): the counts always, lane lists and party detail up to the bounds.
Rule 6: an accepted ``aeo.status.v1`` is never lost between the durable accept and ``apply``: the store marks
        each applied message, and the recovery loop (``gateway.exchange.recovery``, through
        ``gateway.features.aeo.handler``) re-applies, at start-up, every one the ledger names that is not.
Rule 7: with several gateway processes on one shared message store (``follow``), each refresh runs that loop
        for the ledger's new entries, so an update accepted by another process applies here within a second.
Rule 8: an enrichment is a function of the index, the day and the parties (role, identifiers, position): the
        same filing parties on the same day get the same :class:`Enrichment` object, and its ``record`` is
        built once. Shipping lines file for the same consignors and consignees all day; the memo is bounded
        (:data:`MAX_REMEMBERED_ENRICHMENTS`) and starts afresh whenever the index is swapped (Rule 1).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

import structlog

from gateway.core.aeo import (
    AeoIndex,
    Authorisation,
    Lane,
    MraTable,
    OperatorId,
    PartyCheck,
    RecognitionResult,
    administration_of,
    check_party,
    consignment_lanes,
    parse_date,
    utc_date,
)
from gateway.core.aeolist import infer_operator, parse_admin, parse_status_message
from gateway.core.audit import AuditEvent, EventKind
from gateway.core.errors import BadRequest, Forbidden
from gateway.core.model import Member, MemberKind
from gateway.core.payloads import PartyRef, ValidatedPayload

log = structlog.get_logger("gateway.aeo")

ENRICHED_TYPES = frozenset({"manifest.cargo.v1", "prearrival.ens.v1"})
STATUS_TYPE = "aeo.status.v1"
# Who may ask the online check: AEO data is shared between administrations under the MRAs (and audited).
LOOKUP_KINDS = frozenset({MemberKind.CUSTOMS, MemberKind.AUDITOR})
# The ledger keeps one event under 64 KiB (ledgercheck.MAX_ENTRY_BYTES): a manifest may name tens of thousands of
# parties, so the accepted event records at most this many party results (~250 bytes each) and lane lists of
# at most this many characters; the counts are always complete and ``truncated`` says when detail was cut.
MAX_RECORDED_PARTIES = 64
MAX_LANE_TEXT = 4096
# How often the store is asked whether another process (a CLI import) changed it: a cheap PRAGMA, but not per
# check; an import becomes visible within this many seconds.
REFRESH_SECONDS = 1.0
# Enrichments remembered for the current index and day (Rule 8): distinct party sets, each a few hundred bytes.
MAX_REMEMBERED_ENRICHMENTS = 4096

Recorder = Callable[[AuditEvent], Awaitable[int]]
# Applies the status updates other gateway processes accepted (Rule 7); returns how many messages it applied.
Follower = Callable[[], Awaitable[int]]


class AeoStore(Protocol):
    """The registry's persistence (``gateway.infra.aeo_store.AeoStore``); synchronous, called in a thread."""

    def load(self) -> list[Authorisation]: ...

    def upsert(self, authorisations: Sequence[Authorisation], message: tuple[str, str] | None = None) -> int: ...

    def is_applied(self, sender: str, message_id: str) -> bool: ...

    def ledger_scanned(self) -> int: ...

    def set_ledger_scanned(self, size: int) -> None: ...

    def data_version(self) -> int: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Enrichment:
    """The AEO results for one message: every trader party, and the lane of every consignment."""

    admin: str
    on: date
    mra_version: str
    parties: tuple[PartyCheck, ...]
    lanes: Mapping[str, Lane]
    _recorded: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def lane_names(self) -> list[str]:
        return sorted({lane.value for lane in self.lanes.values()})

    def record(self) -> dict[str, Any]:
        """As it goes into the ledger's ``accepted`` event and travels with the delivered message (Rule 5).

        ``lanes`` maps each lane to the consignment positions in it as ranges (``"0-3,7"``); ``parties`` lists
        the checked parties that carry an identifier, adverse first, then recognised, at most
        :data:`MAX_RECORDED_PARTIES`; ``truncated`` says whether anything was left out.

        Built once per enrichment (Rule 8): every caller gets the same dict, to read (canonical JSON), never to
        change."""
        if self._recorded is None:
            object.__setattr__(self, "_recorded", self._build_record())  # a cache on a frozen value
        return self._recorded  # type: ignore[return-value]  # set just above

    def _build_record(self) -> dict[str, Any]:
        identified = [p for p in self.parties if p.result is not None]
        recognised = adverse = 0
        for party in identified:  # one loop, no generators: this runs for every accepted manifest and ENS
            result = party.result
            recognised += bool(result and result.recognised)
            adverse += bool(result and result.adverse)
        ranked = sorted(identified, key=_rank) if recognised or adverse else identified  # else all rank alike
        positions: dict[str, list[int]] = {}
        for consignment, lane in self.lanes.items():
            positions.setdefault(str(lane), []).append(_position(consignment))
        lanes = {lane: _ranges(sorted(found)) for lane, found in sorted(positions.items())}
        clipped = {lane: text[:MAX_LANE_TEXT] for lane, text in lanes.items()}
        return {
            "recognising_admin": self.admin,
            "date": self.on.isoformat(),
            "mra_version": self.mra_version,
            "counts": {
                "parties": len(self.parties),
                "identified": len(identified),
                "recognised": recognised,
                "adverse": adverse,
            },
            "lanes": clipped,
            "parties": [p.record() for p in ranked[:MAX_RECORDED_PARTIES]],
            "truncated": len(identified) > MAX_RECORDED_PARTIES or clipped != lanes,
        }


def _rank(check: PartyCheck) -> tuple[bool, bool]:
    """Adverse results first, then recognised ones (the ones a reviewer looks for)."""
    result = check.result
    return (not result.adverse, not result.recognised) if result else (True, True)


def _position(consignment: str) -> int:
    """``payload.consignments[12]`` -> 12."""
    return int(consignment.rsplit("[", 1)[1].rstrip("]"))


def _ranges(numbers: Sequence[int]) -> str:
    """Sorted positions as ranges: [0, 1, 2, 3, 7] -> ``"0-3,7"``."""
    parts: list[str] = []
    start = prev = None
    for n in [*numbers, None]:
        if n is not None and prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = n
    return ",".join(parts)


class Recognition:
    def __init__(
        self, store: AeoStore, mras: MraTable, *, home_member: str, home_admin: str, record: Recorder | None = None
    ) -> None:
        self._store = store
        self.home_member = home_member
        self._mras = mras
        self.home_admin = home_admin
        self._record = record
        self._index = AeoIndex(store.load(), mras)
        self._version = store.data_version()
        self._checked_at = time.monotonic()
        self._lock = asyncio.Lock()
        self._follow: Follower | None = None
        self._catching_up = False
        self._enriched: dict[tuple[date, tuple[PartyRef, ...]], Enrichment] = {}  # Rule 8, for _enriched_by
        self._enriched_by: AeoIndex | None = None

    @property
    def index(self) -> AeoIndex:
        return self._index

    def close(self) -> None:
        self._store.close()

    def _rebuild(self) -> AeoIndex:
        return AeoIndex(self._store.load(), self._mras)

    async def refresh(self) -> None:
        """Rebuild when another process changed the store (at most one probe per REFRESH_SECONDS)."""
        now = time.monotonic()
        if now - self._checked_at < REFRESH_SECONDS:
            return
        self._checked_at = now
        if self._follow is not None and not self._catching_up:
            self._catching_up = True
            try:
                followed = await self._follow()
            finally:
                self._catching_up = False
            if followed:
                log.info("aeo status messages accepted by other gateway processes applied", messages=followed)
        version = self._store.data_version()
        if version == self._version:
            return
        async with self._lock:
            fresh = await asyncio.to_thread(self._rebuild)  # ~0.4 s for 25 000 rows: off the event loop
            self._index = fresh
            self._version = version
        log.info("aeo registry reloaded", authorisations=len(fresh))
        if self._record is not None:
            await self._record(
                AuditEvent(
                    EventKind.ADMIN,
                    datetime.now(UTC),
                    {"action": "aeo_reloaded", "authorisations": len(fresh), "mra_version": self._mras.version},
                )
            )

    # -- checks ------------------------------------------------------------------------------------------

    def check(self, operator: OperatorId, admin: str | None, on: date) -> RecognitionResult:
        return self._index.check_recognition(operator, admin or self.home_admin, on)

    async def lookup(self, caller: Member, operator: str, admin: str | None, on: str | None) -> RecognitionResult:
        """The online check (REST ``GET /v1/aeo/recognition``): customs administrations and auditors only.

        ``operator`` is ``SCHEME:value`` or a bare identifier; ``admin`` defaults to the home administration,
        ``on`` (YYYY-MM-DD) to today (UTC)."""
        if caller.kind not in LOOKUP_KINDS:
            raise Forbidden(f"{caller.id} ({caller.kind}) may not query AEO recognition")
        oid = infer_operator(operator)
        recognising = parse_admin(admin, "admin") if admin else self.home_admin
        try:
            day = parse_date(on, "date") if on else utc_date(datetime.now(UTC))
        except ValueError:
            raise BadRequest("date must be YYYY-MM-DD", field="date") from None
        await self.refresh()
        return self._index.check_recognition(oid, recognising, day)

    def enrich(self, payload: ValidatedPayload, at: datetime) -> Enrichment | None:
        """Check every trader party of a manifest or ENS (Rule 2); None for other message types."""
        if payload.type not in ENRICHED_TYPES:
            return None
        on = utc_date(at)
        index = self._index
        if self._enriched_by is not index:  # a new index: nothing remembered holds (Rules 1, 8)
            self._enriched, self._enriched_by = {}, index
        key = (on, payload.parties)
        found = self._enriched.get(key)
        if found is not None:
            return found
        checks = tuple(
            check_party(
                index,
                party.path,
                party.role,
                [OperatorId(t.scheme, t.value) for t in party.identifiers],
                admin=self.home_admin,
                on=on,
            )
            for party in payload.parties
        )
        enrichment = Enrichment(self.home_admin, on, self._mras.version, checks, consignment_lanes(checks))
        if len(self._enriched) >= MAX_REMEMBERED_ENRICHMENTS:
            self._enriched.clear()
        self._enriched[key] = enrichment
        return enrichment

    # -- status updates ----------------------------------------------------------------------------------

    def status_updates(
        self, sender: Member, recipients: Sequence[str], media: str, payload: bytes, source: str
    ) -> tuple[Authorisation, ...]:
        """The updates an ``aeo.status.v1`` message carries for this gateway (Rule 3); () when not addressed
        to the home administration."""
        if sender.kind is not MemberKind.CUSTOMS:
            raise Forbidden(f"aeo.status.v1 from {sender.id}, which is not a customs administration")
        admin = administration_of(sender.country)
        updates = parse_status_message(media, payload, admin=admin, source=source)
        return updates if self.home_member in recipients else ()

    async def apply(self, updates: Sequence[Authorisation], message: tuple[str, str] | None = None) -> None:
        """Persist (marking ``message`` (sender, id) applied), then swap in an index that includes them (the next
        check sees them, Rule 1)."""
        if not updates:
            return
        async with self._lock:
            await asyncio.to_thread(self._store.upsert, updates, message)
            self._index = self._index.updated(updates)
        log.info("aeo status applied", updates=len(updates))

    def follow(self, follower: Follower) -> None:
        """Several gateway processes share one message store (the Redis store): at each refresh, apply the
        ``aeo.status.v1`` updates the other processes accepted (Rule 7)."""
        self._follow = follower

    # -- the ledger mark of the recovery loop (Rule 6) ------------------------------------------------------

    def is_applied(self, sender: str, message_id: str) -> bool:
        return self._store.is_applied(sender, message_id)

    def ledger_scanned(self) -> int:
        return self._store.ledger_scanned()

    def set_ledger_scanned(self, size: int) -> None:
        self._store.set_ledger_scanned(size)


def update_records(updates: Sequence[Authorisation]) -> list[dict[str, Any]]:
    """How applied updates are listed in the ledger event of the message that carried them."""
    return [
        {
            "authorisation": a.number,
            "type": a.type,
            "status": a.status.value,
            "status_since": a.status_since.isoformat(),
            "valid_until": a.valid_until.isoformat() if a.valid_until else None,
        }
        for a in updates
    ]
