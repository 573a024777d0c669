"""Ctrl-C at any moment of `make run` (`python -m tools.run`) stops what it
started: the worker it runs and the services of the stack it brought up.

Each case starts `tools.run` on a stack of its own (its own folder and ports,
the model cache shared), as a terminal would: in a process group of its own,
SIGINT at its default. It waits for a line of the start, then sends SIGINT to
the whole group, as Ctrl-C does, and checks that the run exits, that no
process of its group is left, and that every service of its stack is
stopped. The time each took is printed (`-s`, or the junit report)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import Settings
from tests.integration.conftest import REPO
from tools.stack.local import LocalStack
from tools.stack.ports import free_port

pytestmark = pytest.mark.integration

FOREIGN = ("KAFKA_", "NEO4J_", "QDRANT_", "DOCSTREAM_")
# Not a timing target (a few seconds is what it takes): a run still there
# after this long did not stop, and the test says so instead of waiting on.
HANG_S = 90.0
START_S = 300.0

# The moments of the start a Ctrl-C lands in: the line printed just before,
# and how long after it.
MOMENTS = {
    "starting the stack": ("[stack] preparing neo4j", 0.5),
    "loading the model": ("[run] sample corpus:", 1.0),
    "starting the worker's services": ('"worker starting"', 0.2),
    "up": ("[run] docstream is up", 0.5),
}


@pytest.fixture
def run_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN)}
    env = {
        **base,
        "DOCSTREAM_STACK_DIR": str(tmp_path / "stack"),
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "KAFKA_CONTROLLER_PORT": str(free_port()),
        "NEO4J_URI": f"bolt://127.0.0.1:{free_port()}",
        "DOCSTREAM_API_PORT": str(free_port()),
        "DOCSTREAM_MODEL_CACHE": os.environ.get(
            "DOCSTREAM_MODEL_CACHE", str(REPO / ".stack" / "models")
        ),
        "DOCSTREAM_LOG_LEVEL": "INFO",
    }
    yield env
    # Whatever the outcome, leave no service of this stack behind.
    stack_of(env).down()


def stack_of(env: dict[str, str]) -> LocalStack:
    return LocalStack(
        Settings.from_env(env), controller_port=int(env["KAFKA_CONTROLLER_PORT"]), env=env
    )


def _default_sigint() -> None:
    # A terminal's foreground job has SIGINT at its default, whatever ours is.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def group_members(pgid: int) -> list[int]:
    """The processes still in process group `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        # After the name: state, ppid, pgrp. A zombie is gone already.
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def wait_for_line(log: Path, line: str, run: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if line in log.read_text(errors="replace"):
            return
        if run.poll() is not None:
            pytest.fail(f"the run exited ({run.returncode}) before {line!r}:\n{tail(log)}")
        time.sleep(0.1)
    pytest.fail(f"no {line!r} within {START_S:.0f} s:\n{tail(log)}")


def tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_ctrl_c_stops_everything_the_run_started(
    moment: str, run_env: dict[str, str], tmp_path: Path
) -> None:
    line, after_s = MOMENTS[moment]
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "tools.run"],
            cwd=REPO,
            env=run_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            process_group=0,
            preexec_fn=_default_sigint,
        )
    try:
        wait_for_line(log, line, run)
        time.sleep(after_s)
        os.killpg(run.pid, signal.SIGINT)
        sent = time.monotonic()
        try:
            code = run.wait(HANG_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"Ctrl-C while {moment}: still running after {HANG_S:.0f} s:\n{tail(log)}")
        took = time.monotonic() - sent
        print(f"Ctrl-C while {moment}: the run exited with {code} after {took:.1f} s")
        assert code == 130, tail(log)
        # The worker is in the run's group; the stack's services each in a session of their own.
        deadline = time.monotonic() + 10
        while group_members(run.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert group_members(run.pid) == [], f"left running after Ctrl-C while {moment}"
        states = {s.name: s.state for s in stack_of(run_env).status()}
        assert set(states.values()) == {"stopped"}, states
        assert "docstream is up" not in log.read_text() or moment == "up", tail(log)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
