"""One gateway process per data directory: ``<data_dir>/gateway.lock``, held with ``flock`` for the process's life.

Rule 1: ``serve`` takes an exclusive, non-blocking ``flock`` on the lock file before it opens any store; a
        second process on the same ``data_dir`` gets ``Unavailable`` naming the directory and the holder's pid,
        and has created nothing (the lock file exists already: the first process made it).
Rule 2: the lock belongs to the open file description, so the kernel releases it when the process ends in any
        way (``kill -9`` included): a crashed gateway never blocks its restart, and no stale file must be
        removed by hand. The file itself stays; its content (the holder's pid) is a hint for the operator only.
Rule 3: writing the pid is best effort (a full disk must not stop a start that could otherwise succeed).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from gateway.core.errors import Unavailable

LOCK_FILE = "gateway.lock"
# The lock file holds one pid; anything longer is not ours.
LOCK_FILE_READ_MAX = 64


class DataDirLock:
    """The held lock on one data directory. Build it with :meth:`acquire`; finish with :meth:`release`."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, data_dir: Path) -> DataDirLock:
        """Rule 1: the lock, or ``Unavailable`` when another process holds it."""
        path = data_dir / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            raise Unavailable(f"cannot open {path}: {exc.strerror}", field="gateway.data_dir") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise Unavailable(
                f"data_dir {data_dir} is in use by another gateway process"
                + (f" (pid {holder})" if holder else "")
                + "; each gateway process needs its own data_dir",
                field="gateway.data_dir",
            ) from None
        except OSError as exc:
            os.close(fd)
            raise Unavailable(f"cannot lock {path}: {exc.strerror}", field="gateway.data_dir") from None
        with contextlib.suppress(OSError):  # Rule 3
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.close(fd)  # closing the last descriptor of the file description releases the flock


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, LOCK_FILE_READ_MAX, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""
