"""The seam between the pipeline and the domain features: a :class:`Handler` per feature, and their registry.

The pipeline runs the same numbered steps for every submission (``gateway.exchange.pipeline``'s docstring); a
handler owns some message types and/or payload media and adds its own work at the points those steps offer,
as each kind of entry adds its own checks to the shared steps of sigstore-python's verifier:

==========================  =================================================================================
hook                        when, and what it may do
==========================  =================================================================================
``begin``                   the envelope is verified and not a replay: make this submission's state (typed,
                            handed back to every later hook of this submission)
``translate``               validate step: turn a foreign payload (media the handler owns) into the payload
                            the core validates; the first handler that answers wins
``policy_context``          authorize step: entries the handler adds to the Cedar ``submit`` request's context
``check``                   pure pre-accept check, after Cedar allowed it: raise a ``GatewayError`` to refuse
``ledger_fields``           fields of the ``accepted`` ledger event
``receipt_claims``          extra claims of the signed receipt (each a string map under its own name)
``persistence``             the write that stores the message (default: ``Store.accept``); one handler at most
``after_commit``            the effect of an accepted message, once it is durable: idempotent, and also run by
                            the recovery loop (``gateway.exchange.recovery``) with no state, for an accepted
                            message whose effect a crash may have kept from happening
``refused``                 any step refused the submission (after ``begin``)
==========================  =================================================================================

Rule 1: a handler applies to a submission when it owns its type and its payload media (:meth:`Handler.owns`);
        the registry works out once per (type, media) which handlers apply and which of their hooks do
        anything (a hook a handler does not override costs nothing).
Rule 2: hooks run in registration order; ``check`` must not write anything (a later step may still refuse).
Rule 3: ``after_commit`` never undoes the accept: it logs its own failures, and a replay of an effect that
        already happened changes nothing (the recovery loop and several processes may run it again).
Rule 4: a handler that keeps a ledger mark (:meth:`Handler.ledger_mark`) has its ``after_commit`` replayed by
        the one recovery loop for every ``accepted`` ledger event past the mark that :meth:`Handler.replays`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from gateway.core.audit import AuditEvent
from gateway.core.envelope import VerifiedEnvelope
from gateway.core.errors import GatewayError
from gateway.core.model import Caller, Member
from gateway.core.payloads import ValidatedPayload
from gateway.core.policy import Decision
from gateway.interfaces.protocols import ReceiptFactory, Relays, StoredMessage

S = TypeVar("S")

# A value a handler adds to the Cedar context: a string, or a set of strings (given as a sorted tuple).
PolicyValue = str | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Submission:
    """What every hook may read about the submission in hand: verified, not a replay, not yet validated."""

    adapter: str
    caller: Caller
    envelope: VerifiedEnvelope
    digest: str  # evidence digest (gateway.exchange.evidence)
    received_at: datetime
    relayed_by: str = ""  # the peer gateway that relayed it (issue 19; gateway.core.peertrust), "" when sent here


@dataclass(frozen=True, slots=True)
class Write:
    """The durable write a persistence strategy performs: the message, its ledger event, its receipt."""

    message: StoredMessage
    event: AuditEvent
    receipt: ReceiptFactory
    decision: Decision
    relays: Relays | None = None  # the remote recipients by peer gateway (``Store`` Rule 4): their relay entries


@dataclass(frozen=True, slots=True)
class Persisted:
    """A strategy's result: the stored message, and members whose inbox it changed beside the recipients."""

    message: StoredMessage
    woken: tuple[str, ...] = ()


Persistence = Callable[[Write], Awaitable[Persisted]]


@dataclass(frozen=True, slots=True)
class Accepted:
    """A durable accepted message as ``after_commit`` sees it, live or replayed from the ledger."""

    message: StoredMessage
    media: str  # the payload media of its header
    sender: Member  # the registry member that sent it
    replayed: bool = False  # True when the recovery loop runs the effect again (it may have happened before)


class LedgerMark(Protocol):
    """How far a handler's effects have been replayed from the ledger (kept in the feature's own store)."""

    async def scanned(self) -> int: ...

    async def set_scanned(self, size: int) -> None: ...


class Handler(ABC, Generic[S]):
    """One feature's part in the pipeline; every hook has a no-op default. ``S``: its per-submission state."""

    name: str = "handler"
    types: frozenset[str] | None = None  # message types it owns; None: every type
    media: frozenset[str] | None = None  # payload media it owns; None: every media

    def owns(self, message_type: str, media: str) -> bool:
        return (self.types is None or message_type in self.types) and (self.media is None or media in self.media)

    @abstractmethod
    def begin(self, submission: Submission) -> S:
        """This submission's state: one per submission, never shared (a stateless handler returns None)."""

    async def translate(self, submission: Submission, state: S) -> ValidatedPayload | None:
        return None

    async def policy_context(
        self, submission: Submission, state: S, payload: ValidatedPayload
    ) -> Mapping[str, PolicyValue]:
        return {}

    def check(self, submission: Submission, state: S, payload: ValidatedPayload) -> None:
        return None

    def ledger_fields(self, submission: Submission, state: S, payload: ValidatedPayload) -> Mapping[str, Any]:
        return {}

    def receipt_claims(self, submission: Submission, state: S) -> Mapping[str, Mapping[str, str]]:
        return {}

    def persistence(self, submission: Submission, state: S, payload: ValidatedPayload) -> Persistence | None:
        return None

    async def after_commit(self, accepted: Accepted, state: S | None) -> bool:
        """Rule 3; True when the effect happened now (False: nothing to do, or done before)."""
        return False

    async def refused(self, submission: Submission, state: S, error: GatewayError) -> None:
        return None

    # -- delivery and recovery ----------------------------------------------------------------------------

    def delivered_fields(self, message_type: str) -> tuple[str, ...]:
        """Fields of the ``accepted`` ledger event that travel with a delivered item (``InboxItem.annotations``)."""
        return ()

    def ledger_mark(self) -> LedgerMark | None:
        """Rule 4: None when the handler's effects are not replayed."""
        return None

    def replays(self, event: Mapping[str, Any]) -> bool:
        """Rule 4: whether the ``accepted`` ledger event ``event`` names a message whose effect this handler owns."""
        return False


_HOOKS = (
    "translate",
    "policy_context",
    "check",
    "ledger_fields",
    "receipt_claims",
    "persistence",
    "after_commit",
    "refused",
)


def _overrides(handler: Handler[Any], hook: str) -> bool:
    return getattr(type(handler), hook) is not getattr(Handler, hook)


@dataclass(frozen=True, slots=True)
class Hooks:
    """The handlers that apply to one (type, media), and for each hook the ones that implement it (Rule 1)."""

    handlers: tuple[Handler[Any], ...]
    translate: tuple[Handler[Any], ...]
    policy_context: tuple[Handler[Any], ...]
    check: tuple[Handler[Any], ...]
    ledger_fields: tuple[Handler[Any], ...]
    receipt_claims: tuple[Handler[Any], ...]
    persistence: tuple[Handler[Any], ...]
    after_commit: tuple[Handler[Any], ...]
    refused: tuple[Handler[Any], ...]

    @classmethod
    def of(cls, handlers: Sequence[Handler[Any]]) -> Hooks:
        by_hook = {hook: tuple(h for h in handlers if _overrides(h, hook)) for hook in _HOOKS}
        return cls(handlers=tuple(handlers), **by_hook)


EMPTY_HOOKS = Hooks.of(())


class Handlers:
    """The registry the pipeline iterates: features register here, in the composition root (gateway.app.main)."""

    def __init__(self) -> None:
        self._handlers: list[Handler[Any]] = []
        self._hooks: dict[tuple[str, str], Hooks] = {}
        self._delivered: dict[str, tuple[str, ...]] = {}

    def register(self, handler: Handler[Any]) -> None:
        if any(h.name == handler.name for h in self._handlers):
            raise ValueError(f"a handler named {handler.name!r} is registered already")
        self._handlers.append(handler)
        self._hooks.clear()
        self._delivered.clear()

    def __iter__(self) -> Iterator[Handler[Any]]:
        return iter(tuple(self._handlers))

    def hooks(self, message_type: str, media: str) -> Hooks:
        found = self._hooks.get((message_type, media))
        if found is None:
            owners = [h for h in self._handlers if h.owns(message_type, media)]
            found = self._hooks[(message_type, media)] = Hooks.of(owners) if owners else EMPTY_HOOKS
        return found

    def delivered_fields(self, message_type: str) -> tuple[str, ...]:
        """The ledger fields every handler wants delivered with a message of this type."""
        found = self._delivered.get(message_type)
        if found is None:
            found = self._delivered[message_type] = tuple(
                f for h in self._handlers for f in h.delivered_fields(message_type)
            )
        return found

    def replaying(self) -> list[tuple[Handler[Any], LedgerMark]]:
        """Handlers whose effects the recovery loop replays, with their marks (Rule 4)."""
        return [(h, mark) for h in self._handlers if (mark := h.ledger_mark()) is not None]
