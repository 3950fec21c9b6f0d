"""AEO mutual recognition: authorisations, the identifier crosswalk, the MRA table and the recognition check.

"Is this trader an AEO that administration X recognises on day D?" is answered from an in-memory
:class:`AeoIndex` built once per registry change (dict lookups only, no I/O).

Rule 1: an administration is the party to an MRA: an ISO 3166-1 alpha-2 code, or ``EU`` for the Union (an
        EU authorisation is issued by a Member State, e.g. ``NL``, but recognised as the EU's). Use
        :func:`administration_of` to map a country to its administration.
Rule 2: an authorisation is recognised by its own administration whenever it is valid (arrangement
        ``home``), and by another administration only through an MRA in force on the date whose side for the
        issuing administration lists the authorisation's type (EU: only AEOS and AEOF; China: only the
        Advanced Certified Enterprise, type ``ACE``).
Rule 3: the status is read as of the date: a suspension or revocation applies from its ``status_since`` day
        on (earlier dates see the authorisation as it was); validity is ``valid_from <= date <= valid_until``.
Rule 4: the crosswalk: every identifier of the holder (EORI, USCC, China customs code, the AEO number
        itself, a partner's own scheme) finds the authorisation; a China AEO code ``AEOCN`` + customs code and
        the bare customs code find each other without being listed.
Rule 5: a "not recognised" answer always names its reasons (:class:`Reason`), most decisive first.
Rule 6: the lane of a consignment (:func:`consignment_lanes`): ``elevated`` when a trader party of the
        consignment holds a suspended or revoked authorisation, ``low-risk`` when at least one is a
        recognised AEO, ``standard`` otherwise.
Sources: ../shared/reference/standards.md sections 4.3-4.8.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any, NamedTuple

from gateway.core.identifiers import EU_MEMBER_PREFIXES

HOME = "home"  # the arrangement name of an administration recognising its own authorisations
EU = "EU"
# An administration code: ISO 3166-1 alpha-2 or EU.
ADMIN_SHAPE = re.compile(r"[A-Z]{2}")
# An AEO type: AEOC, AEOS, AEOF (EU), ACE (China's Advanced Certified Enterprise) or a partner's own short name.
TYPE_SHAPE = re.compile(r"[A-Z][A-Z0-9-]{1,15}")
# An identifier scheme: the cgw.v1.PartyIdentifier names, or a partner's own (e.g. TCUI, JP_CORPORATE_NUMBER).
SCHEME_SHAPE = re.compile(r"[A-Z][A-Z0-9_]{1,31}")
TYPE_ACE = "ACE"


class Status(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"


class Reason(enum.StrEnum):
    """Why an operator is not recognised (most decisive first in a result)."""

    UNKNOWN_OPERATOR = "unknown_operator"
    REVOKED = "revoked"
    SUSPENDED = "suspended"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    NO_MRA_IN_FORCE = "no_mra_in_force"
    TYPE_NOT_COVERED = "type_not_covered"


class Lane(enum.StrEnum):
    LOW_RISK = "low-risk"
    STANDARD = "standard"
    ELEVATED = "elevated"


_ADVERSE = frozenset({Reason.SUSPENDED, Reason.REVOKED})
_ORDER = {reason: rank for rank, reason in enumerate(Reason)}


def administration_of(country: str) -> str:
    """The administration that issues and recognises AEO authorisations for ``country`` (EU states -> EU)."""
    code = country.strip().upper()
    return EU if code in EU_MEMBER_PREFIXES or code == EU else code


class OperatorId(NamedTuple):
    """An operator identifier (a named tuple: hashed in C, it is the index key of every check)."""

    scheme: str
    value: str  # normalised

    def __str__(self) -> str:
        return f"{self.scheme}:{self.value}"


def crosswalk(identifiers: Iterable[OperatorId]) -> tuple[OperatorId, ...]:
    """The identifiers plus those derivable from them (AEOCN + code <-> CN customs code), without repeats."""
    out: dict[OperatorId, None] = {}
    for oid in identifiers:
        out[oid] = None
        if oid.scheme == "AEO_CN" and oid.value.startswith("AEOCN"):
            out[OperatorId("CN_CUSTOMS_CODE", oid.value[5:])] = None
        elif oid.scheme == "CN_CUSTOMS_CODE":
            out[OperatorId("AEO_CN", "AEOCN" + oid.value)] = None
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Authorisation:
    """One AEO authorisation as the registry holds it. Build with ``gateway.core.aeolist.parse_authorisation``."""

    number: str  # the authorisation number, e.g. NLAEOF00001234, AEOCN1234567890
    admin: str  # the issuing administration (MRA party): EU, CN, JP ...
    issuing_state: str  # who issued it within the administration (NL for an EU authorisation; else == admin)
    type: str  # AEOC | AEOS | AEOF | ACE | a partner's type
    status: Status
    valid_from: date
    valid_until: date | None
    status_since: date  # the day the current status took effect
    holder: str  # the holder's name
    identifiers: tuple[OperatorId, ...]  # every identifier of the holder, the number included (crosswalk)
    source: str  # where it came from: "message:<sender>/<id>", "import:<issuer>:<file>", ...

    @property
    def key(self) -> tuple[str, str]:
        """Unique per issuing administration: one administration's record never replaces another's."""
        return self.admin, self.number

    def status_on(self, on: date) -> Status:
        """The status as of ``on`` (Rule 3)."""
        if self.status is not Status.ACTIVE and on < self.status_since:
            return Status.ACTIVE
        if self.valid_until is not None and on > self.valid_until:
            return Status.EXPIRED
        return self.status

    def record(self) -> dict[str, Any]:
        """Plain JSON (the store and the REST answer use this shape)."""
        return {
            "number": self.number,
            "admin": self.admin,
            "issuing_state": self.issuing_state,
            "type": self.type,
            "status": self.status.value,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "status_since": self.status_since.isoformat(),
            "holder": self.holder,
            "identifiers": [{"scheme": i.scheme, "value": i.value} for i in self.identifiers],
            "source": self.source,
        }


# -- the MRA table ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MraSide:
    admin: str
    programme: str
    types: frozenset[str]  # this side's AEO types the other side recognises


@dataclass(frozen=True, slots=True)
class Arrangement:
    id: str
    sides: tuple[MraSide, MraSide]
    since: date  # in force from (implementation date)
    until: date | None  # last day in force, None while in force
    benefits: tuple[str, ...]
    source: str

    def in_force(self, on: date) -> bool:
        return self.since <= on and (self.until is None or on <= self.until)

    def side(self, admin: str) -> MraSide | None:
        return next((s for s in self.sides if s.admin == admin), None)


@dataclass(frozen=True, slots=True)
class MraTable:
    version: str
    arrangements: tuple[Arrangement, ...]
    home_benefits: tuple[str, ...]  # what an administration grants its own AEOs


# -- results ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecognitionResult:
    operator: OperatorId
    recognising_admin: str
    on: date
    recognised: bool
    authorisation: Authorisation | None = None  # the authorisation the answer is about (None: unknown)
    arrangement: str | None = None  # the MRA id, or "home"
    benefits: tuple[str, ...] = ()
    reasons: tuple[Reason, ...] = ()

    @property
    def adverse(self) -> bool:
        """The operator holds an authorisation that is suspended or revoked on the date."""
        return not _ADVERSE.isdisjoint(self.reasons)

    def record(self) -> dict[str, Any]:
        """The result as JSON fields (REST answer, ledger events); names the authorisation, not the holder."""
        auth = self.authorisation
        return {
            "operator": str(self.operator),
            "recognising_admin": self.recognising_admin,
            "date": self.on.isoformat(),
            "recognised": self.recognised,
            "authorisation": auth.number if auth else None,
            "issuing_admin": auth.admin if auth else None,
            "type": auth.type if auth else None,
            "status": auth.status_on(self.on).value if auth else None,
            "arrangement": self.arrangement,
            "benefits": list(self.benefits),
            "reasons": [r.value for r in self.reasons],
        }


# -- the index -------------------------------------------------------------------------------------------


class AeoIndex:
    """Authorisations by every identifier of their holders, arrangements by administration pair.

    Immutable once built: a change builds a new index and the owner swaps the reference."""

    def __init__(self, authorisations: Iterable[Authorisation], mras: MraTable) -> None:
        by_id: dict[OperatorId, list[Authorisation]] = {}
        by_number: dict[tuple[str, str], Authorisation] = {}
        for auth in authorisations:
            by_number[auth.key] = auth
        for auth in by_number.values():
            for oid in crosswalk(auth.identifiers):
                bucket = by_id.setdefault(oid, [])
                if auth not in bucket:
                    bucket.append(auth)
        pairs: dict[tuple[str, str], list[Arrangement]] = {}  # (recognising, issuing), both orders
        for arrangement in mras.arrangements:
            first, second = (side.admin for side in arrangement.sides)
            pairs.setdefault((first, second), []).append(arrangement)
            pairs.setdefault((second, first), []).append(arrangement)
        self._by_id: MappingProxyType[OperatorId, tuple[Authorisation, ...]] = MappingProxyType(
            {k: tuple(v) for k, v in by_id.items()}
        )
        self._by_number: MappingProxyType[tuple[str, str], Authorisation] = MappingProxyType(by_number)
        self._pairs = MappingProxyType({k: tuple(v) for k, v in pairs.items()})
        self.mras = mras

    def __len__(self) -> int:
        return len(self._by_number)

    def updated(self, changes: Iterable[Authorisation]) -> AeoIndex:
        """A new index with ``changes`` applied (replacing the same administration's same number): shallow copies
        of the two maps plus work per change, so one status update does not re-walk the whole registry."""
        by_number = self._by_number.copy()  # the proxy's copy() copies the underlying dict at C speed
        by_id = self._by_id.copy()
        for auth in changes:
            old = by_number.get(auth.key)
            if old is not None:
                for oid in crosswalk(old.identifiers):
                    remaining = tuple(a for a in by_id.get(oid, ()) if a.key != old.key)
                    if remaining:
                        by_id[oid] = remaining
                    else:
                        by_id.pop(oid, None)
            by_number[auth.key] = auth
            for oid in crosswalk(auth.identifiers):
                by_id[oid] = (*by_id.get(oid, ()), auth)
        index = AeoIndex.__new__(AeoIndex)
        index._by_id = MappingProxyType(by_id)
        index._by_number = MappingProxyType(by_number)
        index._pairs = self._pairs
        index.mras = self.mras
        return index

    def authorisation(self, admin: str, number: str) -> Authorisation | None:
        return self._by_number.get((admin, number))

    def authorisations(self) -> tuple[Authorisation, ...]:
        return tuple(self._by_number.values())

    def lookup(self, operator: OperatorId) -> tuple[Authorisation, ...]:
        found = self._by_id.get(operator, ())
        if found or operator.scheme not in ("AEO_CN", "CN_CUSTOMS_CODE"):
            return found
        derived = crosswalk((operator,))
        return next((self._by_id[o] for o in derived if o in self._by_id), ())

    def check_recognition(self, operator: OperatorId, recognising_admin: str, on: date) -> RecognitionResult:
        """Is ``operator`` an AEO that ``recognising_admin`` recognises on ``on``? (Rules 2, 3, 5)."""
        found = self.lookup(operator)
        if not found:
            return RecognitionResult(operator, recognising_admin, on, False, reasons=(Reason.UNKNOWN_OPERATOR,))
        answers = [self._check_one(operator, auth, recognising_admin, on) for auth in found]
        recognised = [a for a in answers if a.recognised]
        if recognised:
            return recognised[0]
        return min(answers, key=lambda a: _ORDER[a.reasons[0]])

    def _check_one(self, operator: OperatorId, auth: Authorisation, admin: str, on: date) -> RecognitionResult:
        reasons: list[Reason] = []
        status = auth.status_on(on)
        if status is not Status.ACTIVE:
            reasons.append(Reason(status.value))
        elif on < auth.valid_from:
            reasons.append(Reason.NOT_YET_VALID)
        if auth.admin == admin:
            arrangement, benefits = HOME, self.mras.home_benefits
        else:
            arrangement, benefits = None, ()
            in_force = [m for m in self._pairs.get((admin, auth.admin), ()) if m.in_force(on)]
            covering = [m for m in in_force if auth.type in _side_types(m, auth.admin)]
            if not in_force:
                reasons.append(Reason.NO_MRA_IN_FORCE)
            elif not covering:
                reasons.append(Reason.TYPE_NOT_COVERED)
            else:
                arrangement, benefits = covering[0].id, covering[0].benefits
        ordered = tuple(sorted(reasons, key=_ORDER.__getitem__))
        granted = benefits if not ordered else ()
        return RecognitionResult(operator, admin, on, not ordered, auth, arrangement, granted, ordered)


def _side_types(arrangement: Arrangement, admin: str) -> frozenset[str]:
    side = arrangement.side(admin)
    return side.types if side else frozenset()


def check_recognition(index: AeoIndex, operator: OperatorId, recognising_admin: str, on: date) -> RecognitionResult:
    return index.check_recognition(operator, recognising_admin, on)


# -- parties and lanes -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartyCheck:
    path: str  # e.g. payload.consignments[0].consignee
    role: str  # CONSIGNOR, CONSIGNEE, ...
    result: RecognitionResult | None  # None: the party carries no identifier to check

    def record(self) -> dict[str, Any]:
        r = self.result
        if r is None:
            return {"path": self.path, "role": self.role, "recognised": False, "reasons": ["no_identifier"]}
        auth = r.authorisation
        return {
            "path": self.path,
            "role": self.role,
            "recognised": r.recognised,
            "authorisation": auth.number if auth else None,
            "type": auth.type if auth else None,
            "arrangement": r.arrangement,
            "reasons": [str(x) for x in r.reasons],
        }


def check_party(
    index: AeoIndex, path: str, role: str, identifiers: Sequence[OperatorId], *, admin: str, on: date
) -> PartyCheck:
    """Check each identifier of a party: the first recognised answer wins, else the most decisive refusal."""
    best: RecognitionResult | None = None
    for oid in identifiers:  # one loop, no generator or key lambda: this runs for every party of every filing
        answer = index.check_recognition(oid, admin, on)
        if answer.recognised:
            best = answer
            break
        if best is None or _ORDER[answer.reasons[0]] < _ORDER[best.reasons[0]]:
            best = answer  # the first of the most decisive refusals, as min() would pick
    return PartyCheck(path, role, best)


_CONSIGNMENT = re.compile(r"payload\.(?:consignments|house_consignments)\[\d+\]")


@lru_cache(maxsize=4096)  # party paths repeat from filing to filing (consignments[0].consignor, ...)
def consignment_of(path: str) -> str | None:
    """``payload.consignments[3].consignee`` -> ``payload.consignments[3]``; None for message-level parties."""
    found = _CONSIGNMENT.match(path)
    return found.group() if found else None


def consignment_lanes(checks: Iterable[PartyCheck]) -> dict[str, Lane]:
    """The lane of each consignment from the checks of its own trader parties (Rule 6), in document order."""
    ranks: dict[str, int] = {}  # the most severe lane of the consignment's parties so far (_LANE_RANKS)
    for check in checks:
        key = consignment_of(check.path)
        if key is None:
            continue
        result = check.result
        rank = 0 if result is None else 2 if result.adverse else 1 if result.recognised else 0
        if rank > ranks.get(key, -1):
            ranks[key] = rank
    return {key: _LANE_RANKS[rank] for key, rank in ranks.items()}


# Any adverse party puts its consignment in the elevated lane, else any recognised one in the low-risk lane.
_LANE_RANKS = (Lane.STANDARD, Lane.LOW_RISK, Lane.ELEVATED)


def parse_date(value: object, field: str) -> date:
    """An ISO 8601 calendar date (YYYY-MM-DD); raises ValueError naming ``field``."""
    if not isinstance(value, str) or len(value) != 10:
        raise ValueError(f"{field}: expected a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{field}: expected a date YYYY-MM-DD") from None


def utc_date(at: datetime) -> date:
    """The UTC calendar day of an aware datetime (the check's default date)."""
    offset = at.utcoffset()
    return (at - offset).date() if offset else at.date()
