"""Which asyncio event loop a gateway process runs on (``customs-gateway serve --loop``).

Rule 1: ``auto`` (the default) runs on uvloop when it is installed and on the standard loop otherwise;
        ``uvloop`` insists on it (a configuration error when it is missing); ``asyncio`` is the standard loop.
        uvloop (libuv) handles sockets, TLS records and timers in C: on the submit benchmark it cuts the
        gateway's CPU per message (see bench/README.md, "Measured figures").
Rule 2: the choice is made once, before the loop starts, and the loop in use is named in the ``gateway
        listening`` log line (:func:`loop_name`), so a report never guesses which loop produced its figures.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable

from gateway.core.errors import Unavailable

LOOPS = ("auto", "uvloop", "asyncio")


def uvloop_available() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory for ``asyncio.Runner(loop_factory=...)``; None means the standard loop."""
    if choice not in LOOPS:
        raise Unavailable(f"event loop must be one of {', '.join(LOOPS)}, not {choice!r}", field="loop")
    if choice == "asyncio" or (choice == "auto" and not uvloop_available()):
        return None
    try:
        import uvloop  # noqa: PLC0415 - optional: only imported when chosen
    except ImportError:
        raise Unavailable("the uvloop event loop was asked for but uvloop is not installed", field="loop") from None
    return uvloop.new_event_loop


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio`` for the loop running this process."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
