"""/readyz semantics on real components: ready only with the store answering, keys, trust list and policies
loaded, and not draining; each missing component is named."""

from __future__ import annotations

from pathlib import Path

from gateway.core.payloads import MESSAGE_TYPES
from gateway.deadletters import DeadLetters
from gateway.infra.sqlite import SqliteStore
from gateway.main import SystemClock, load_state
from gateway.metrics import Metrics
from gateway.operations import Operations
from gateway.rejections import Rejections
from gateway.settings import load_settings
from gateway.state import GatewayState


async def test_each_missing_component_makes_the_gateway_unready(federation: Path, tmp_path: Path) -> None:
    settings = load_settings(federation / "gateway.toml", overrides={"gateway.data_dir": str(tmp_path)})
    loaded = load_state(settings)
    bare = GatewayState(
        member_id=loaded.member_id, issuer=loaded.issuer, identity=loaded.identity, limits=loaded.limits
    )
    store = await SqliteStore.open(tmp_path / "gateway.db")
    clock = SystemClock()

    def operations(state: GatewayState, *, keys: bool = True) -> Operations:
        dead = DeadLetters(store=store, state=state, clock=clock, rejections=Rejections(store=store, clock=clock))
        return Operations(
            store=store, state=state, metrics=Metrics(MESSAGE_TYPES), dead_letters=dead, checkpoint_key_loaded=keys
        )

    try:
        assert await operations(loaded).readiness() == (
            True,
            {"store": True, "keys": True, "trust": True, "policies": True, "accepting": True},
        )
        ready, components = await operations(bare).readiness()
        assert not ready
        assert (components["trust"], components["policies"], components["store"]) == (False, False, True)
        ready, components = await operations(loaded, keys=False).readiness()
        assert (ready, components["keys"]) == (False, False)
    finally:
        await store.close()
    ready, components = await operations(loaded).readiness()
    assert (ready, components["store"]) == (False, False)  # a closed store does not answer
