"""The store named by ``[store] backend``: the one place that maps the setting to an implementation.

Rule 1: ``sqlite`` keeps ``<data_dir>/gateway.db`` (one process); ``redis`` connects to ``redis_url`` under
        ``key_prefix`` (several processes), reading the password from ``redis_password_file`` if one is set.
Rule 2: a Redis without persistence is refused (``Unavailable``) unless ``allow_no_persistence``.
Rule 3: the port release streams (issue 8) live IN the store, so a port decision and its ledger event are one
        write (issue 17): the same ``gateway.db`` (a ``<data_dir>/ports.db`` of an earlier version is imported
        once) or the same Redis and prefix, written through the store's ledger sequencer.
"""

from __future__ import annotations

import stat

from gateway.app.settings import Settings
from gateway.core.errors import Unavailable
from gateway.infra.redis_ports import RedisPortStreams
from gateway.infra.redis_store import RedisStore
from gateway.infra.sqlite import SqliteStore
from gateway.infra.sqlite_ports import LEGACY_FILE, SqlitePortStreams
from gateway.infra.witness_store import RedisWitnessStore, SqliteWitnessStore
from gateway.interfaces.protocols import Clock, PolicyBoard, PortStreamStore, Store, WitnessStore

# A password file holds one line; anything much longer is not a password file.
PASSWORD_FILE_MAX_BYTES = 4096


async def open_store(settings: Settings, clock: Clock | None = None) -> Store:
    chosen = settings.store
    if chosen.backend == "redis":
        password: str | None = None
        if chosen.redis_password_file is not None:
            password = read_password(settings)
        return await RedisStore.open(
            chosen.redis_url,
            key_prefix=chosen.key_prefix,
            allow_no_persistence=chosen.allow_no_persistence,
            password=password,
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return await SqliteStore.open(settings.data_dir / "gateway.db", clock=clock)


async def open_port_streams(settings: Settings, store: Store) -> PortStreamStore:
    """Rule 3: the port release streams of ``store`` (opened by :func:`open_store` from the same settings)."""
    chosen = settings.store
    if isinstance(store, RedisStore):
        password = read_password(settings) if chosen.redis_password_file is not None else None
        return await RedisPortStreams.open(
            chosen.redis_url, key_prefix=chosen.key_prefix, store=store, password=password
        )
    if isinstance(store, SqliteStore):
        return await SqlitePortStreams.open(store, settings.data_dir / LEGACY_FILE)
    raise Unavailable(f"the {type(store).__name__} backend keeps no port streams")


def open_witness_store(settings: Settings, store: Store) -> WitnessStore:
    """The witness's state beside ``store``: ``<data_dir>/witness.db``, or the same Redis and prefix."""
    chosen = settings.store
    if isinstance(store, RedisStore):
        password = read_password(settings) if chosen.redis_password_file is not None else None
        return RedisWitnessStore.open(chosen.redis_url, key_prefix=chosen.key_prefix, password=password)
    return SqliteWitnessStore.in_directory(settings.data_dir)


def policy_board(store: Store) -> PolicyBoard | None:
    """The store's policy board when several processes may share it (Redis); None for one-process SQLite."""
    return store if isinstance(store, RedisStore) else None


def describe(store: Store) -> dict[str, str]:
    """Log fields naming the store and, for Redis, its persistence mode (the loss window an operator accepted)."""
    if isinstance(store, RedisStore):
        p = store.persistence
        return {"store": "redis", "appendonly": p.appendonly, "appendfsync": p.appendfsync, "eviction": p.eviction}
    return {"store": "sqlite"}


def read_password(settings: Settings) -> str:
    """Like every secret file: a regular file that group and others cannot access (chmod 600)."""
    path = settings.store.redis_password_file
    assert path is not None
    try:
        info = path.stat()
        raw = path.read_bytes()[: PASSWORD_FILE_MAX_BYTES + 1]
    except OSError as exc:
        raise Unavailable(f"config: cannot read {path}: {exc}", field="store.redis_password_file") from exc
    if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077:
        raise Unavailable(
            f"config: {path} must be a file only its owner can read (chmod 600)", field="store.redis_password_file"
        )
    if len(raw) > PASSWORD_FILE_MAX_BYTES:
        raise Unavailable("config: redis_password_file is too large", field="store.redis_password_file")
    return raw.decode().strip()
