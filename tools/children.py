"""Stopping a child process that `make run` started (a worker, an API): the
signals in turn, each given its time."""

from __future__ import annotations

import signal
import subprocess

# After Ctrl-C: how long a child has to stop by itself, then after SIGTERM.
GRACE_S = 5.0
TERM_GRACE_S = 3.0


def stop_child(worker: subprocess.Popen[bytes]) -> None:
    """The worker has the terminal's SIGINT already; one sent to this process
    alone (kill -INT) is passed on after a second. Then SIGTERM, then SIGKILL,
    each if it lingers."""
    for wait_s, then in (
        (1.0, signal.SIGINT),
        (GRACE_S, signal.SIGTERM),
        (TERM_GRACE_S, signal.SIGKILL),
    ):
        try:
            worker.wait(wait_s)
            return
        except subprocess.TimeoutExpired:
            if then == signal.SIGKILL:
                print("[run] the worker did not stop: killing it", flush=True)
            worker.send_signal(then)
    worker.wait()
