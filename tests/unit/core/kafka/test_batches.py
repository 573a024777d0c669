from confluent_kafka import TopicPartition
from prometheus_client import REGISTRY

from core.kafka.batches import AssignmentLog


async def test_a_rebalance_is_logged_and_counted() -> None:
    listener = AssignmentLog("unit-stage")
    await listener.on_assign(None, [TopicPartition("t", 3), TopicPartition("t", 1)])
    held = REGISTRY.get_sample_value("docstream_assigned_partitions", {"stage": "unit-stage"})
    assert held == 2
    await listener.on_revoke(None, [TopicPartition("t", 1), TopicPartition("t", 3)])
    await listener.on_assign(None, [])
    held = REGISTRY.get_sample_value("docstream_assigned_partitions", {"stage": "unit-stage"})
    assert held == 0
