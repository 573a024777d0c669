"""Does a service answer at an address? One real client request each, short
timeouts, no retries. Only "cannot reach it" counts as not answering; any
other exception is a bug and is raised."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

PROBE_TIMEOUT_S = 1.0


def kafka_answers(bootstrap_servers: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 0})
    try:
        return bool(admin.list_topics(timeout=timeout_s).brokers)
    except KafkaException:
        return False


def neo4j_answers(
    uri: str, auth: tuple[str, str] | None, timeout_s: float = PROBE_TIMEOUT_S
) -> bool:
    from neo4j import GraphDatabase
    from neo4j.exceptions import DriverError, Neo4jError

    try:
        with (
            GraphDatabase.driver(uri, auth=auth, connection_timeout=timeout_s) as driver,
            driver.session() as session,
        ):
            # An auto-commit query: one try, no driver-side retry loop.
            session.run("RETURN 1").consume()
        return True
    except (DriverError, Neo4jError, OSError):
        return False


def qdrant_answers(url: str, api_key: str = "", timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    headers = {"api-key": api_key} if api_key else {}
    try:
        return httpx.get(f"{url.rstrip('/')}/readyz", headers=headers, timeout=timeout_s).is_success
    except httpx.HTTPError:
        return False


def wait_until(answers: Callable[[], bool], timeout_s: float, pause_s: float = 0.5) -> bool:
    """True as soon as `answers()` is; False when `timeout_s` has passed first."""
    deadline = time.monotonic() + timeout_s
    while True:
        if answers():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause_s)
