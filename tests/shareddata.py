"""The project's shared test data: ``../shared`` beside the checkout (Wycheproof and Merkle vectors, sample
fixtures). A fresh clone has none: the tests that read it (marked ``shared``) skip, naming the file they need."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def missing(relative: str) -> str:
    """The skip reason of a test that needs ``../shared/<relative>``."""
    return f"needs ../shared/{relative}: the project's shared test data beside the checkout (absent in a fresh clone)"


def shared_path(relative: str) -> Path:
    """``../shared/<relative>``; the test skips, saying so, when it is absent."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(missing(relative))
    return path
