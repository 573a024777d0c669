"""What a failed Kafka call means, in the project's own exceptions: the one
place confluent-kafka's `KafkaException` and `KafkaError` are read, so no
module outside `core/kafka` needs the library to tell an outage from a refusal.

- `KafkaUnavailable`: no broker answered, or not in time (transport, name
  resolution, every broker down, an error librdkafka calls retriable). It
  passes: a caller waits it out, or says Kafka is down.
- `KafkaRefused`: Kafka answered and said no (not authorized, an invalid
  request, a topic that already exists…). Waiting does not change it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from confluent_kafka import KafkaError, KafkaException


class KafkaUnavailable(ConnectionError):
    """Kafka did not answer, or did not acknowledge in time: transient."""


class KafkaRefused(RuntimeError):
    """Kafka answered with an error that waiting will not clear."""


# Errors of a cluster nobody answers for: its metadata request failed
# (transport, name resolution, every broker down) or timed out.
UNREACHABLE = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
        KafkaError.BROKER_NOT_AVAILABLE,
        KafkaError.REQUEST_TIMED_OUT,
    }
)


def translated(exc: BaseException, doing: str = "") -> BaseException:
    """The project's exception for a confluent-kafka one (`doing`, when given,
    opens its message); any other exception as it is."""
    if not isinstance(exc, KafkaException):
        return exc
    error = exc.args[0] if exc.args else None
    if not isinstance(error, KafkaError):
        return KafkaRefused(f"{doing}: {exc}" if doing else str(exc))
    return failure(error, doing)


def failure(error: KafkaError, doing: str = "") -> KafkaUnavailable | KafkaRefused:
    """The project's exception for an error librdkafka reported (on a fetched
    message, in a callback)."""
    message = f"{error.str()} ({error.name()})"
    if doing:
        message = f"{doing}: {message}"
    if error.code() in UNREACHABLE or error.retriable():
        return KafkaUnavailable(message)
    return KafkaRefused(message)


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` means Kafka is not reachable right now: the project's
    `KafkaUnavailable`, or a confluent-kafka exception that translates to it
    (what `core/kafka/admin.py`'s `ensure_topics` raises as it is)."""
    return isinstance(translated(exc), KafkaUnavailable)


@contextmanager
def kafka_errors(doing: str) -> Iterator[None]:
    """Within the block, confluent-kafka's exceptions leave as the project's
    (`translated`), the library's as their cause."""
    try:
        yield
    except KafkaException as exc:
        raise translated(exc, doing) from exc
