"""Which backend runs the test services: containers or the local stack.

DOCSTREAM_TEST_SERVICES picks it: `containers`, `local`, or `auto` (the
default), which takes containers when a Docker engine answers and the local
stack otherwise. The Docker ping is bounded in time: a daemon that accepts the
connection and never answers must not hang the test session."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path

VARIABLE = "DOCSTREAM_TEST_SERVICES"
BACKENDS = ("auto", "containers", "local")
DEFAULT_SOCKET = Path("/var/run/docker.sock")
PING_TIMEOUT_S = 3.0

Ping = Callable[[Mapping[str, str], float], bool]


class ServicesError(RuntimeError):
    """The test services cannot be provided as asked."""


def docker_ping(env: Mapping[str, str], timeout_s: float) -> bool:
    """One ping with the docker SDK (the client testcontainers itself uses):
    True when the engine named by DOCKER_HOST (or the default socket) answers."""
    try:
        import docker
        from docker.errors import DockerException
        from requests import RequestException
    except ImportError:  # no docker SDK: no containers either
        return False
    try:
        # DOCKER_HOST and the TLS variables are read from `env`, as the docker
        # CLI reads them; the timeout bounds each HTTP call of the client.
        client = docker.from_env(environment=dict(env), timeout=max(1, round(timeout_s)))
    except DockerException:
        return False
    try:
        return bool(client.ping())
    except (DockerException, RequestException, OSError):
        return False
    finally:
        client.close()


def within(call: Callable[[], bool], timeout_s: float) -> bool:
    """`call()` in a daemon thread: False when it has not answered in time (the
    thread is left behind, it holds nothing). An exception of `call` is a bug
    in our code, not an engine that does not answer: it is raised here."""
    outcome: list[bool] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="docker-ping", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if failure:
        raise failure[0]
    return bool(outcome and outcome[0])


def docker_answers(
    env: Mapping[str, str],
    ping: Ping = docker_ping,
    socket: Path = DEFAULT_SOCKET,
    timeout_s: float = PING_TIMEOUT_S,
) -> bool:
    """A Docker engine answers at DOCKER_HOST, or (without it) at the default socket."""
    if env.get("DOCKER_HOST"):
        target = dict(env)
    elif socket.exists():
        target = {**env, "DOCKER_HOST": f"unix://{socket}"}
    else:
        return False
    return within(lambda: ping(target, timeout_s), timeout_s)


def choose_backend(
    env: Mapping[str, str], answers: Callable[[Mapping[str, str]], bool] = docker_answers
) -> str:
    """`containers` or `local`, from DOCSTREAM_TEST_SERVICES and the Docker engine."""
    wanted = env.get(VARIABLE, "").strip().lower() or "auto"
    if wanted not in BACKENDS:
        raise ServicesError(f"{VARIABLE} must be one of {', '.join(BACKENDS)}, got {wanted!r}")
    if wanted == "local":
        return "local"
    if answers(env):
        return "containers"
    if wanted == "containers":
        where = env.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"
        raise ServicesError(
            f"{VARIABLE}=containers, but no Docker engine answers at {where} "
            f"(set DOCKER_HOST, or {VARIABLE}=local for the local stack)"
        )
    return "local"
