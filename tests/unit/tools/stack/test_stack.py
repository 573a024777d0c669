import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.settings import Settings
from tools.stack.local import LocalStack, StackError
from tools.stack.process import ManagedProcess
from tools.stack.services import QdrantBinaryMissing, QdrantServer

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

    def marker(self, stack_root: Path) -> str:
        return f"-Dtest.stack={stack_root}/{self.name}"

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


def test_qdrant_joins_the_stack_only_when_qdrant_url_names_this_machine(tmp_path: Path) -> None:
    binary = tmp_path / "qdrant"

    def names(env: dict[str, str]) -> list[str]:
        stack = LocalStack(
            Settings.from_env({**env, "DOCSTREAM_STACK_DIR": str(tmp_path)}), env=env
        )
        return [s.name for s in stack.services]

    assert names({}) == ["kafka", "neo4j"], "no QDRANT_URL: Qdrant stays embedded"
    assert names({"QDRANT_URL": "http://qdrant.example:6333"}) == ["kafka", "neo4j"]
    local = {"QDRANT_URL": "http://127.0.0.1:16333", "QDRANT_BIN": str(binary)}
    assert names(local) == ["kafka", "neo4j", "qdrant"]
    stack = LocalStack(Settings.from_env(local), env=local)
    server = stack.services[2]
    assert isinstance(server, QdrantServer)
    assert (server.port, server.binary) == (16333, binary.resolve())
    assert "a Qdrant server at http://127.0.0.1:16333" in stack.engine()


def test_a_qdrant_server_without_a_binary_is_a_clear_error(tmp_path: Path) -> None:
    env = {"QDRANT_URL": "http://127.0.0.1:16333", "PATH": str(tmp_path)}
    stack = LocalStack(Settings.from_env({**env, "DOCSTREAM_STACK_DIR": str(tmp_path)}), env=env)
    stack.services = [s for s in stack.services if s.name == "qdrant"]
    with pytest.raises(StackError, match="set QDRANT_BIN"):
        stack.up(log=False)


def test_the_qdrant_server_configuration_and_command(tmp_path: Path) -> None:
    binary = tmp_path / "qdrant"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    server = QdrantServer(tmp_path, "127.0.0.1", 16333, binary)
    server.prepare()
    config = json.loads(server.config.read_text())
    assert config["service"] == {"host": "127.0.0.1", "http_port": 16333, "grpc_port": 16334}
    assert config["storage"]["storage_path"].startswith(str(tmp_path.resolve()))
    marker = server.marker(tmp_path)
    assert server.command(marker) == [str(binary), "--config-path", marker]
    with pytest.raises(QdrantBinaryMissing, match="not an executable"):
        QdrantServer(tmp_path, "127.0.0.1", 16333, tmp_path / "absent").prepare()
    assert str(tmp_path.resolve()) in marker, "the marker tells this stack's server from another"
