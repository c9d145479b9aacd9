"""The collector settings of a long-running process (huitong/runtime.py)."""

from __future__ import annotations

import gc

from huitong.runtime import tune_collector


def test_the_collector_runs_less_often_and_start_up_objects_are_frozen() -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    try:
        tune_collector(freeze=False)
        assert gc.get_threshold() == (50_000, 20, 100)
        assert gc.get_freeze_count() == frozen
        kept = [object() for _ in range(10)]
        tune_collector()
        assert gc.get_freeze_count() >= frozen + len(kept)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
