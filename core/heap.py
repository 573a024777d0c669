"""Keep the garbage collector off the start-up heap.

A worker starts with about 600k long-lived objects (torch, the model, the
libraries). CPython's full (generation 2) collection walks all of them:
200 to 420 ms per pass measured on the query benchmark's server, a stall of every
query in flight, several times a minute under load. `gc.freeze()` moves what
exists once start-up is over into a permanent generation the collector skips;
reference counting still frees those objects as usual, only cycles among them
are never collected, which for start-up state is what we want."""

from __future__ import annotations

import atexit
import gc

from core.logs import get_logger

log = get_logger(__name__)


def freeze_startup_heap() -> int:
    """Collect once, then freeze what is left; returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    atexit.register(thaw_heap)  # once more is harmless: unfreezing twice is a no-op
    frozen = gc.get_freeze_count()
    log.info("start-up heap frozen: the collector skips it", extra={"objects": frozen})
    return frozen


def thaw_heap() -> None:
    """At shutdown: hand the frozen objects back, so the interpreter's last
    collection finalises them (native extensions report them as leaks otherwise)."""
    gc.unfreeze()


async def freeze_when_started() -> None:
    """`freeze_startup_heap` as a startup hook (the hooks are coroutines)."""
    freeze_startup_heap()
