"""Crash points: named places where a test can make the gateway process die by SIGKILL (crash-safety tests).

Rule 1: the point is chosen ONCE at startup (``main.py`` reads ``CGW_CRASH_POINT`` and passes it down as a
        setting); nothing else reads the environment. Unset, :meth:`CrashPoint.hit` is a no-op.
Rule 2: only the names in :data:`CRASH_POINTS` exist; an unknown name stops startup (a typo must not make a
        crash test pass by never crashing).
Rule 3: the crash is ``SIGKILL`` to our own process: no handler, no ``finally``, no flush runs, exactly like a
        power cut of the process (the OS still has what was fsync'd).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.core.errors import Unavailable

CRASH_ENV = "CGW_CRASH_POINT"

CRASH_POINTS: Mapping[str, str] = {
    "after-persist": "the message, inbox rows and ledger leaf are committed; the receipt is not yet sent",
    "after-port-apply": "a release notice or gate-out was applied to its port's stream (issue 17: with its ledger"
    " event and its gate-out alert, in the same write); the receipt may not be sent yet",
    "before-delivery": "the receipt was sent; the push worker is about to push the message",
    "during-delivery": "the recipient received the push; the outcome is not yet recorded",
}


@dataclass(frozen=True, slots=True)
class CrashPoint:
    name: str = ""

    @classmethod
    def parse(cls, value: str) -> CrashPoint:
        if value and value not in CRASH_POINTS:
            raise Unavailable(f"unknown crash point {value!r} (one of {sorted(CRASH_POINTS)})", field=CRASH_ENV)
        return cls(value)

    def hit(self, name: str) -> None:
        """Die here by SIGKILL when ``name`` is the configured point."""
        if name not in CRASH_POINTS:
            raise Unavailable(f"unknown crash point {name!r}")
        if self.name == name:
            os.kill(os.getpid(), signal.SIGKILL)


NO_CRASH = CrashPoint()
