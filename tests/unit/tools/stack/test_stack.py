import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.settings import Settings
from tools.stack.local import LocalStack, StackError
from tools.stack.process import ManagedProcess

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def test_a_started_process_is_found_by_its_pid_file_and_stopped(tmp_path: Path) -> None:
    process = ManagedProcess("sleeper", tmp_path, marker="--docstream-test-marker")
    pid = process.start([*SLEEPER, "--docstream-test-marker"])
    assert process.pid() == pid
    assert process.stop(timeout_s=10)
    assert process.pid() is None
    assert not process.pid_file.exists()


def test_a_pid_that_is_not_ours_is_never_signalled(tmp_path: Path) -> None:
    stranger = subprocess.Popen(SLEEPER)  # same kind of process, without our marker
    try:
        process = ManagedProcess("sleeper", tmp_path, marker="--docstream-test-marker")
        tmp_path.mkdir(exist_ok=True)
        process.pid_file.write_text(str(stranger.pid))
        assert process.pid() is None
        assert not process.stop()
        assert stranger.poll() is None, "a process we did not start must survive"
    finally:
        stranger.kill()
        stranger.wait()


@dataclass
class SleepService:
    name: str
    address: str = "nowhere"

    def prepare(self) -> None: ...

    def command(self, marker: str) -> list[str]:
        return [*SLEEPER, marker]

    def ready(self) -> bool:
        return True


def test_down_with_an_empty_list_stops_nothing(tmp_path: Path) -> None:
    stack = LocalStack(Settings(stack_dir=tmp_path))
    stack.services = [SleepService("one"), SleepService("two")]
    for service in stack.services:
        stack._process(service).start(service.command(stack._marker(service)))
    try:
        assert stack.down(only=[]) == []
        assert stack.down(only=["two"]) == ["two"]
        assert [s.state for s in stack.status()] == ["ready", "external"]
    finally:
        assert stack.down() == ["one"]


def test_the_local_stack_refuses_remote_addresses(tmp_path: Path) -> None:
    settings = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "kafka.example:9092"})
    with pytest.raises(StackError, match="KAFKA_BOOTSTRAP_SERVERS"):
        LocalStack(settings)
