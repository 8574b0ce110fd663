"""KafkaLagCollector against a real tansu Kafka-protocol broker."""
from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic, OffsetSpec
from kafka.structs import OffsetAndMetadata

from collectors.kafka_lag import KafkaLagCollector, MembersAdmin
from dashboard.demo import processes


@pytest.fixture(scope="module")
def admin(kafka_broker):
    client = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap, request_timeout_ms=5000)
    yield client
    client.close()


@pytest.fixture(scope="module")
def producer(kafka_broker):
    client = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, linger_ms=0)
    yield client
    client.close()


def wait_for(poll, condition, timeout: float = 30.0, pause: float = 0.3):
    """Call poll() until condition(result) holds; the last result, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = poll()
        if condition(result):
            return result
        assert time.monotonic() < deadline, f"condition not met within {timeout}s; last: {result!r}"
        time.sleep(pause)


def new_topic(admin, partitions: int) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, partitions, 1)])
    return name


def produce(producer, topic: str, counts: list[int]) -> None:
    """Send counts[p] records to partition p, one record per batch so tansu's end offsets are exact."""
    for partition, count in enumerate(counts):
        for i in range(count):
            producer.send(topic, f"{i}".encode(), partition=partition).get(timeout=10)


def commit(admin, group: str, topic: str, offsets: dict[int, int]) -> None:
    admin.alter_group_offsets(group, {TopicPartition(topic, p): OffsetAndMetadata(o, "", -1)
                                      for p, o in offsets.items()})


def state_of(observation) -> dict:
    (payload,) = [p for kind, p in observation.records if kind == "kafka_state"]
    return payload


def group_row(observation, group: str) -> dict | None:
    return next((g for g in state_of(observation)["groups"] if g["group"] == group), None)


def lag_of(observation, group: str) -> float | None:
    row = group_row(observation, group)
    return None if row is None else row["lag"]


def partition_row(observation, group: str, topic: str, partition: int) -> dict:
    return next(r for r in state_of(observation)["partitions"]
                if (r["group"], r["topic"], r["partition"]) == (group, topic, partition))


def test_lag_is_end_minus_committed_for_each_partition(kafka_broker, admin, producer):
    topic = new_topic(admin, 3)
    produced = [6, 4, 5]
    produce(producer, topic, produced)
    group_a, group_b = f"a-{topic}", f"b-{topic}"
    commit(admin, group_a, topic, {0: 2, 1: 4, 2: 0})
    commit(admin, group_b, topic, {0: 6})
    collector = KafkaLagCollector("test", timeout=5, bootstrap_servers=kafka_broker.bootstrap,
                                  groups=[group_a, group_b])
    try:
        obs = collector.collect()
        assert lag_of(obs, group_a) == (6 - 2) + (4 - 4) + (5 - 0)
        assert lag_of(obs, group_b) == 0
        assert obs.headline["groups"] == 2
        assert obs.headline["partitions"] == 3 + 1
        assert obs.headline["lag"] == 9
        assert obs.degraded is None
        assert sorted((r["partition"], r["committed"], r["end"], r["lag"]) for r in state_of(obs)["partitions"]
                      if r["group"] == group_a) == [(0, 2, 6, 4), (1, 4, 4, 0), (2, 0, 5, 5)]
        assert ("lag", group_a, 9.0) in obs.metrics and ("lag", group_b, 0.0) in obs.metrics

        produce(producer, topic, [0, 3])
        commit(admin, group_b, topic, {0: 1})
        obs = collector.collect()
        assert lag_of(obs, group_a) == 9 + 3
        assert lag_of(obs, group_b) == 6 - 1
    finally:
        collector.close()


def test_without_a_group_list_every_group_is_watched(kafka_broker, admin, producer):
    topic = new_topic(admin, 1)
    produce(producer, topic, [3])
    groups = [f"{n}-{topic}" for n in ("x", "y")]
    for group in groups:
        commit(admin, group, topic, {0: 1})
    known = {g["group_id"] for g in admin.list_groups()}
    collector = KafkaLagCollector("test", timeout=5, bootstrap_servers=kafka_broker.bootstrap)
    try:
        obs = collector.collect()
    finally:
        collector.close()
    assert obs.headline["groups"] == len(known)
    assert {group: lag_of(obs, group) for group in groups} == {group: 2 for group in groups}


def test_a_committed_offset_past_the_end_is_clamped_and_named(kafka_broker, admin, producer):
    topic = new_topic(admin, 2)
    produce(producer, topic, [2, 3])
    group = f"ahead-{topic}"
    commit(admin, group, topic, {0: 10, 1: 1})
    collector = KafkaLagCollector("test", timeout=5, bootstrap_servers=kafka_broker.bootstrap, groups=[group])
    try:
        obs = collector.collect()
    finally:
        collector.close()
    assert lag_of(obs, group) == 0 + (3 - 1)
    assert obs.headline["lag"] == 2
    assert obs.degraded is None  # the lag was read: the source is up, the partition says what is odd
    assert "beyond the end offset 2" in partition_row(obs, group, topic, 0)["note"]
    assert partition_row(obs, group, topic, 1)["note"] is None


def test_tansu_batch_end_offsets_never_show_a_negative_lag(kafka_broker, admin):
    topic = new_topic(admin, 1)
    batching = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, linger_ms=500)
    futures = [batching.send(topic, b"x", partition=0) for _ in range(5)]
    batching.flush()
    batching.close()
    consumed = max(f.get(timeout=10).offset for f in futures) + 1
    reported_end = admin.list_partition_offsets({TopicPartition(topic, 0): OffsetSpec.LATEST})[
        TopicPartition(topic, 0)].offset
    group = f"batch-{topic}"
    commit(admin, group, topic, {0: consumed})
    collector = KafkaLagCollector("test", timeout=5, bootstrap_servers=kafka_broker.bootstrap, groups=[group])
    try:
        obs = collector.collect()
    finally:
        collector.close()
    assert lag_of(obs, group) == max(0, reported_end - consumed) == 0
    if reported_end < consumed:  # the quirk ENVIRONMENT.md describes: base offset of the last batch + 1
        assert "lag shown as 0" in partition_row(obs, group, topic, 0)["note"]


def test_members_are_read_on_tansu_through_an_older_describe_groups(kafka_broker, admin, producer):
    topic = new_topic(admin, 1)
    produce(producer, topic, [4])
    group = f"described-{topic}"
    with pytest.raises(ValueError, match="ACLOperation"):
        admin.describe_groups([group])  # kafka-python's own call cannot read tansu's answer
    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_broker.bootstrap, group_id=group,
                             enable_auto_commit=False, auto_offset_reset="earliest")
    collector = KafkaLagCollector("test", timeout=5, bootstrap_servers=kafka_broker.bootstrap, groups=[group])
    try:
        deadline = time.monotonic() + 30
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(500)
        consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(1, "", -1)})
        obs = collector.collect()
        assert obs.headline["members"] == 1
        assert group_row(obs, group)["members"] == 1 and group_row(obs, group)["members_note"] is None
        consumer.close()
        obs = wait_for(collector.collect, lambda o: o.headline["members"] == 0)
        assert group_row(obs, group)["lag"] == 3
    finally:
        consumer.close()
        collector.close()


def test_a_broker_that_cannot_describe_groups_leaves_members_unknown_and_the_source_up(kafka_broker, admin,
                                                                                         producer, monkeypatch):
    topic = new_topic(admin, 1)
    produce(producer, topic, [4])
    group = f"undescribed-{topic}"
    commit(admin, group, topic, {0: 1})

    def refuse(self, groups, *args, **kwargs):
        raise ValueError("15 is not a valid ACLOperation")

    monkeypatch.setattr(MembersAdmin, "describe_groups", refuse)
    collector = KafkaLagCollector("test", timeout=5, bootstrap_servers=kafka_broker.bootstrap, groups=[group])
    try:
        obs = collector.collect()
    finally:
        collector.close()
    assert obs.degraded is None
    assert obs.headline["members"] is None and obs.headline["lag"] == 3
    assert group_row(obs, group)["members_note"] == \
        "members unknown: DescribeGroups failed: ValueError: 15 is not a valid ACLOperation"


def test_a_closed_port_fails_at_once():
    collector = KafkaLagCollector("test", timeout=5, bootstrap_servers=f"127.0.0.1:{processes.free_port()}")
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="kafka unreachable"):
        collector.collect()
    assert time.monotonic() - started < 1.0
    collector.close()


def test_a_broker_that_dies_fails_the_poll_and_is_found_again_after_restart():
    broker = processes.start_tansu()
    collector = KafkaLagCollector("test", timeout=3, bootstrap_servers=broker.bootstrap)
    try:
        assert collector.collect().headline["groups"] == 0
        broker.cleanup()
        started = time.monotonic()
        with pytest.raises(ConnectionError, match=f"kafka {broker.bootstrap}"):
            collector.collect()
        assert time.monotonic() - started < 3.0
        broker = processes.start_tansu(port=broker.port)
        assert collector.collect().headline["groups"] == 0
    finally:
        collector.close()
        broker.cleanup()


def test_remembered_leaders_follow_a_deleted_topic_and_a_new_one(kafka_broker, admin, producer):
    """Leaders are remembered between polls (no Metadata each poll); a topic deleted since leaves
    the others read, and a topic first seen is read at once."""
    kept, doomed, later = new_topic(admin, 2), new_topic(admin, 1), new_topic(admin, 1)
    produce(producer, kept, [3, 2])
    produce(producer, doomed, [4])
    group = f"g-{kept}"
    commit(admin, group, kept, {0: 1, 1: 2})
    commit(admin, group, doomed, {0: 1})
    collector = KafkaLagCollector("test", timeout=5, bootstrap_servers=kafka_broker.bootstrap, groups=[group])
    try:
        assert lag_of(collector.collect(), group) == 2 + 0 + 3
        admin.delete_topics([doomed])
        produce(producer, kept, [1])
        obs = collector.collect()
        assert partition_row(obs, group, kept, 0)["end"] == 4
        # tansu drops a deleted topic's committed offsets too: the partition is shown gone, not failed.
        assert partition_row(obs, group, doomed, 0)["gone"] and obs.degraded is None
        produce(producer, later, [5])
        commit(admin, group, later, {0: 2})
        obs = collector.collect()
        assert partition_row(obs, group, later, 0)["lag"] == 3
        assert partition_row(obs, group, kept, 0)["lag"] == 3
    finally:
        collector.close()
