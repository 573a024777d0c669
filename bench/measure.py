"""Wall time and CPU time of a span of work, per process (this one, Neo4j,
Kafka, and everything else on the machine), read from /proc: what the
benchmarks print next to their rates on a shared machine."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Span:
    """Wall seconds and CPU seconds, per process, over a stretch of the run."""

    pids: dict[str, int]
    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    slowest: float = 0.0  # seconds of the slowest batch, where batches are timed

    def as_dict(self) -> dict[str, Any]:
        return {
            "wall_s": round(self.wall, 3),
            "cpu_s": {k: round(v, 2) for k, v in self.cpu.items()},
            "slowest_batch_s": round(self.slowest, 3),
        }


def cpu_now(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far: this process, each stack service, and the whole machine."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"bench": time.process_time()}
    for name, pid in pids.items():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[name] = (int(stat[11]) + int(stat[12])) / tick  # utime + stime
        except (OSError, IndexError):
            out[name] = 0.0
    total = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    out["machine"] = (sum(total) - total[3] - total[4]) / tick  # all but idle and iowait
    # Steal: time the hypervisor gave this machine's CPUs to someone else. It
    # slows everything measured here and is nobody's work on this machine.
    out["steal"] = total[7] / tick if len(total) > 7 else 0.0
    return out


@contextmanager
def measured(pids: dict[str, int]) -> Iterator[Span]:
    span = Span(pids)
    before, started = cpu_now(pids), time.perf_counter()
    try:
        yield span
    finally:
        span.wall = time.perf_counter() - started
        after = cpu_now(pids)
        span.cpu = {k: after[k] - before[k] for k in after}
        span.cpu["others"] = span.cpu["machine"] - sum(
            v for k, v in span.cpu.items() if k != "machine"
        )


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def cpu_rate(count: int, run: Callable[[], object]) -> float:
    """Chunks per CPU second of this process: single-threaded work, so other
    load on the machine does not lower it."""
    started = time.process_time()
    run()
    return rate(count, time.process_time() - started)
