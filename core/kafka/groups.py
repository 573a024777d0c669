"""Who is in a consumer group now, and what it holds: the workers of a stage,
as `docstream status` shows them. Asked of the group's coordinator through the
one admin client (`core/kafka/admin.py`); joining nothing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import ConsumerGroupDescription

from core.kafka.admin import admin_client
from core.kafka.errors import kafka_errors
from core.settings import KafkaSettings


@dataclass(frozen=True)
class Member:
    member_id: str  # the client id and a suffix the coordinator gave it
    host: str
    partitions: dict[str, tuple[int, ...]]  # topic → the partitions assigned to it


@dataclass(frozen=True)
class Group:
    state: str  # Kafka's word: STABLE, PREPARING_REBALANCE, EMPTY, DEAD…
    members: tuple[Member, ...]


def describe_groups(
    kafka: KafkaSettings, groups: Iterable[str], timeout_s: float = 5.0
) -> dict[str, Group]:
    wanted = list(dict.fromkeys(groups))
    if not wanted:
        return {}
    admin = admin_client(kafka)
    with kafka_errors("describing the consumer groups"):
        futures = admin.describe_consumer_groups(wanted, request_timeout=timeout_s)
        return {name: _group(future.result(timeout_s)) for name, future in futures.items()}


def _group(description: ConsumerGroupDescription) -> Group:
    """A description in docstream's terms: members in a stable order."""
    members = []
    for m in description.members:
        assigned: dict[str, list[int]] = {}
        for tp in m.assignment.topic_partitions if m.assignment else []:
            assigned.setdefault(tp.topic, []).append(tp.partition)
        partitions = {t: tuple(sorted(ps)) for t, ps in sorted(assigned.items())}
        members.append(Member(m.member_id, m.host, partitions))
    state = description.state
    named = state.name if isinstance(state, ConsumerGroupState) else str(state)
    return Group(named, tuple(sorted(members, key=lambda m: m.member_id)))
