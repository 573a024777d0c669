"""Before a worker or an API process starts: is any connection configured so
that it can never work? A wrong password, a certificate no configured CA
signs, or a client speaking plaintext to a TLS listener would otherwise look
like a dependency that is not up yet, waited for forever. Each is found here
in seconds and ends the start with one line per problem that names the
setting to fix (no traceback, no secret). A service that simply does not
answer yet is no problem here: the start waits for it as it always has."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

from core.kafka.connect import diagnose
from core.logs import get_logger
from core.settings import Settings
from core.types import StoreError, StoreNeedsOperator
from sinks.neo4j.store import Neo4jGraphStore
from sinks.qdrant.server import QdrantVectorStore

log = get_logger(__name__)
TIMEOUT_S = 10.0
# What no retry fixes: the operator must change a setting (or the server's).
CONFIGURATION = frozenset({"credentials", "tls", "permission"})


async def problems(settings: Settings, *, graph: bool, vectors: bool) -> list[str]:
    """One sentence per connection that can never work as configured."""
    found = []
    kafka = await asyncio.to_thread(diagnose, settings.kafka, TIMEOUT_S)
    if kafka is not None:
        found.append(kafka)
    if graph:
        store = Neo4jGraphStore(settings.neo4j)
        found += await _store_problem(store.ping, store.close)
    if vectors and not settings.qdrant.embedded:  # embedded: no connection to configure
        server = QdrantVectorStore(settings.qdrant, dimension=1)
        found += await _store_problem(server.ping, server.close)
    return found


async def _store_problem(
    ping: Callable[[], Awaitable[None]], close: Callable[[], Awaitable[None]]
) -> list[str]:
    try:
        await asyncio.wait_for(ping(), TIMEOUT_S)
    except StoreNeedsOperator as exc:
        if exc.reason in CONFIGURATION:
            return [str(exc)]
    except (StoreError, TimeoutError):
        pass  # not up yet: the start waits for it
    finally:
        await close()
    return []


def refuse_to_start(what: str, found: list[str]) -> int:
    """Say why `what` does not start, in the log and on stderr; the exit code."""
    for problem in found:
        log.error(f"{what} not started: a setting must change", extra={"problem": problem})
    lines = [f"docstream {what} not started:", *(f"  - {p}" for p in found)]
    print(*lines, sep="\n", file=sys.stderr, flush=True)
    return 2
