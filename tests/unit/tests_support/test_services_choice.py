"""Choosing the test services' backend: DOCSTREAM_TEST_SERVICES, and whether a
Docker engine answers (faked, and against addresses where none does)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.services.choice import (
    ServicesError,
    choose_backend,
    docker_answers,
    docker_ping,
)
from tools.stack.ports import free_port


class Engine:
    """A fake `answers`: records each question."""

    def __init__(self, answering: bool) -> None:
        self.answering = answering
        self.asked: list[Mapping[str, str]] = []

    def __call__(self, env: Mapping[str, str]) -> bool:
        self.asked.append(env)
        return self.answering


@pytest.mark.parametrize("value", ["", "auto", " AUTO "])
def test_auto_takes_containers_when_docker_answers(value: str) -> None:
    assert choose_backend({"DOCSTREAM_TEST_SERVICES": value}, Engine(True)) == "containers"
    assert choose_backend({}, Engine(True)) == "containers"


def test_auto_falls_back_to_the_local_stack_without_docker() -> None:
    engine = Engine(False)
    assert choose_backend({}, engine) == "local"
    assert len(engine.asked) == 1


def test_local_is_taken_without_asking_docker() -> None:
    engine = Engine(True)
    assert choose_backend({"DOCSTREAM_TEST_SERVICES": "local"}, engine) == "local"
    assert engine.asked == []


def test_containers_asked_for_and_docker_answering() -> None:
    assert choose_backend({"DOCSTREAM_TEST_SERVICES": "containers"}, Engine(True)) == "containers"


def test_containers_asked_for_without_docker_is_a_clear_error_not_a_fallback() -> None:
    env = {"DOCSTREAM_TEST_SERVICES": "containers", "DOCKER_HOST": "tcp://10.0.0.9:2375"}
    with pytest.raises(ServicesError, match=r"no Docker engine answers at tcp://10\.0\.0\.9:2375"):
        choose_backend(env, Engine(False))


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ServicesError, match=r"auto, containers, local.*'docker'"):
        choose_backend({"DOCSTREAM_TEST_SERVICES": "docker"}, Engine(True))


def test_docker_host_answering(tmp_path: Path) -> None:
    pinged: list[dict[str, str]] = []

    def ping(env: Mapping[str, str], timeout_s: float) -> bool:
        pinged.append(dict(env))
        return True

    env = {"DOCKER_HOST": "tcp://127.0.0.1:2375"}
    assert docker_answers(env, ping=ping, socket=tmp_path / "absent.sock")
    assert pinged == [env], "DOCKER_HOST is pinged, whatever the default socket"


def test_docker_host_not_answering(tmp_path: Path) -> None:
    env = {"DOCKER_HOST": "tcp://127.0.0.1:2375"}
    assert not docker_answers(env, ping=lambda env, t: False, socket=tmp_path / "absent.sock")


def test_no_docker_host_and_no_default_socket_pings_nothing(tmp_path: Path) -> None:
    def ping(env: Mapping[str, str], timeout_s: float) -> bool:
        raise AssertionError("nothing to ping")

    assert not docker_answers({}, ping=ping, socket=tmp_path / "docker.sock")


def test_the_default_socket_is_pinged_when_it_exists(tmp_path: Path) -> None:
    sock = tmp_path / "docker.sock"
    sock.touch()
    pinged: list[str] = []

    def ping(env: Mapping[str, str], timeout_s: float) -> bool:
        pinged.append(env["DOCKER_HOST"])
        return True

    assert docker_answers({}, ping=ping, socket=sock)
    assert pinged == [f"unix://{sock}"]


def test_a_ping_that_hangs_falls_back_in_bounded_time(tmp_path: Path) -> None:
    release, returned = threading.Event(), threading.Event()

    def hanging(env: Mapping[str, str], timeout_s: float) -> bool:
        release.wait(30)
        returned.set()
        return True

    try:
        answered = docker_answers(
            {"DOCKER_HOST": "tcp://127.0.0.1:2375"}, ping=hanging, timeout_s=0.5
        )
        # Had it waited for the ping, the ping would have said yes (after 30 s).
        still_hanging = not returned.is_set()
    finally:
        release.set()
    assert not answered and still_hanging


def test_a_bug_in_the_ping_is_raised_not_taken_for_no_docker() -> None:
    def broken(env: Mapping[str, str], timeout_s: float) -> bool:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        docker_answers({"DOCKER_HOST": "tcp://127.0.0.1:2375"}, ping=broken)


def test_the_real_ping_to_a_closed_port_is_no_engine() -> None:
    assert not docker_ping({"DOCKER_HOST": f"tcp://127.0.0.1:{free_port()}"}, 1.0)


@pytest.fixture
def silent_socket(tmp_path: Path) -> Iterator[Path]:
    """A unix socket that accepts connections and never says a word."""
    path = tmp_path / "docker.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    yield path
    server.close()


def test_a_silent_default_socket_falls_back_to_the_local_stack(silent_socket: Path) -> None:
    answered = docker_answers({}, socket=silent_socket, timeout_s=1.0)
    assert not answered
    assert (
        choose_backend({}, lambda env: docker_answers(env, socket=silent_socket, timeout_s=1.0))
        == "local"
    )
