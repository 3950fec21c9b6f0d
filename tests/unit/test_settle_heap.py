"""gateway.app.main.settle_heap: the startup heap leaves the collector's passes; the youngest generation is collected
less often (restored after the test: the settings are the whole process's)."""

from __future__ import annotations

import gc

from gateway.app.main import YOUNG_GC_THRESHOLD, settle_heap


def test_the_startup_heap_is_frozen_and_young_collections_are_rarer() -> None:
    before = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, before[1], before[2])
        collected: list[int] = []
        gc.callbacks.append(lambda phase, info: collected.append(info["generation"]) if phase == "stop" else None)
        try:
            kept = [[n] for n in range(YOUNG_GC_THRESHOLD // 2)]  # half the threshold of new container objects
            assert 0 not in collected  # at CPython's 700 this would have run the young collection several times
            kept += [[n] for n in range(YOUNG_GC_THRESHOLD)]
            assert 0 in collected  # past the threshold it still runs
        finally:
            gc.callbacks.pop()
        assert len(kept) == YOUNG_GC_THRESHOLD * 3 // 2
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
