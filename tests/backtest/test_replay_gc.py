"""The replay's garbage-collector setting is scoped: it comes back after, even when overlapping."""

from __future__ import annotations

import gc

from kmg_autotrader.backtest.runner import REPLAY_GC_GEN0, replay_gc


def test_threshold_raised_during_the_replay_and_restored_after() -> None:
    before = gc.get_threshold()
    with replay_gc():
        assert gc.get_threshold() == (max(REPLAY_GC_GEN0, before[0]), *before[1:])
    assert gc.get_threshold() == before


def test_overlapping_replays_restore_the_setting_once_the_last_ends() -> None:
    before = gc.get_threshold()
    first, second = replay_gc(), replay_gc()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold()[0] == max(REPLAY_GC_GEN0, before[0])  # the second still runs
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before


def test_restored_after_an_error() -> None:
    before = gc.get_threshold()
    try:
        with replay_gc():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before


def test_objects_alive_before_are_frozen_during_the_replay_only() -> None:
    assert gc.get_freeze_count() == 0
    alive = [object()]  # a tracked container alive before the replay
    with replay_gc():
        assert gc.get_freeze_count() > 0
        assert gc.is_tracked(alive)
    assert gc.get_freeze_count() == 0


def test_a_freeze_made_by_the_process_is_left_as_it_was() -> None:
    gc.freeze()
    try:
        with replay_gc():
            pass
        assert gc.get_freeze_count() > 0  # not unfrozen by the replay
    finally:
        gc.unfreeze()


def test_skip_exit_scan_freezes_the_heap_at_exit_only_and_registers_once() -> None:
    # in a child process: the hook runs at interpreter exit, after what was registered later
    # ran (atexit is last-in, first-out), so a probe registered first sees the freeze
    import subprocess
    import sys

    code = (
        "import atexit, gc\n"
        "atexit.register(lambda: print('at exit', gc.get_freeze_count() > 0))\n"
        "from kmg_autotrader.backtest.runner import skip_exit_scan\n"
        "before = atexit._ncallbacks()\n"
        "skip_exit_scan(); skip_exit_scan()\n"
        "print('hooks added', atexit._ncallbacks() - before)\n"
        "print('frozen now', gc.get_freeze_count() > 0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.splitlines()
    assert out == ["hooks added 1", "frozen now False", "at exit True"]
