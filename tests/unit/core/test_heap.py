import gc

from core.heap import freeze_startup_heap, thaw_heap


def test_freezing_moves_the_live_heap_out_of_the_collectors_generations() -> None:
    before = gc.get_freeze_count()
    try:
        frozen = freeze_startup_heap()
        assert frozen == gc.get_freeze_count() > before
        assert frozen > sum(gc.get_count())  # nearly everything alive is frozen
    finally:
        thaw_heap()  # leave the test process as it was
    assert gc.get_freeze_count() == 0
