"""Each status rule and threshold with real consumer groups on a real tansu broker, and lag in seconds."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata

from collectors.kafka_lag import KafkaLagCollector

WINDOW = 4


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


@pytest.fixture
def topic(admin):
    name = f"s-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, 1, 1)])
    return name


def send(producer, topic: str, n: int) -> None:
    for _ in range(n):  # one record per batch: tansu's end offsets are then exact
        producer.send(topic, b"m", partition=0).get(timeout=10)


def commit(admin, group: str, topic: str, offset: int) -> None:
    admin.alter_group_offsets(group, {TopicPartition(topic, 0): OffsetAndMetadata(offset, "", -1)})


def collector_for(broker, group: str, **options) -> KafkaLagCollector:
    return KafkaLagCollector("live", interval=0.2, timeout=5, bootstrap_servers=broker.bootstrap, groups=[group],
                             window=WINDOW, **options)


def group_of(obs, group: str) -> dict:
    (state,) = [p for kind, p in obs.records if kind == "kafka_state"]
    return next(g for g in state["groups"] if g["group"] == group)


def polls(collector, group: str, step, n: int = WINDOW + 1) -> dict:
    """Poll n times, calling step(i) before each poll; the group's row after the last."""
    row = None
    for i in range(n):
        step(i)
        row = group_of(collector.collect(), group)
        time.sleep(0.05)
    return row


def test_a_group_nobody_consumes_while_records_arrive_is_stop(kafka_broker, admin, producer, topic):
    group = f"stop-{topic}"
    send(producer, topic, 3)
    commit(admin, group, topic, 1)
    collector = collector_for(kafka_broker, group)
    try:
        row = polls(collector, group, lambda i: send(producer, topic, 1))
    finally:
        collector.close()
    assert (row["status"], row["burrow_status"], row["members"]) == ("STOP", "ERR", 0)
    assert "offset 1 unchanged" in row["reason"] and "no member is active" in row["reason"]


def test_a_live_member_that_never_commits_is_stall(kafka_broker, admin, producer, topic):
    group = f"stall-{topic}"
    send(producer, topic, 5)
    commit(admin, group, topic, 2)
    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_broker.bootstrap, group_id=group,
                             enable_auto_commit=False, max_poll_records=1)
    stop = threading.Event()

    def keep_alive():  # a member that polls (heartbeats) but is stuck: it never commits
        while not stop.is_set():
            consumer.poll(200)

    thread = threading.Thread(target=keep_alive, daemon=True)
    collector = collector_for(kafka_broker, group)
    try:
        thread.start()
        deadline = time.monotonic() + 30
        while group_of(collector.collect(), group)["members"] != 1:
            assert time.monotonic() < deadline, "the consumer never joined"
            time.sleep(0.2)
        row = polls(collector, group, lambda i: None)
    finally:
        stop.set()
        thread.join(5)
        consumer.close()
        collector.close()
    assert (row["status"], row["members"]) == ("STALL", 1)
    assert "1 member(s) active but offset 2 unchanged" in row["reason"]


def test_offsets_going_back_is_rewind(kafka_broker, admin, producer, topic):
    group = f"rewind-{topic}"
    send(producer, topic, 10)
    offsets = [6, 7, 2, 3, 4]
    collector = collector_for(kafka_broker, group)
    try:
        row = polls(collector, group, lambda i: commit(admin, group, topic, offsets[i]))
    finally:
        collector.close()
    assert row["status"] == "REWIND"
    assert "from 7 to 2" in row["reason"]


def test_a_consumer_falling_behind_is_warn_and_one_keeping_up_is_ok(kafka_broker, admin, producer, topic):
    slow, fast = f"slow-{topic}", f"fast-{topic}"
    send(producer, topic, 2)
    position = {"slow": 0}

    def step(i):
        send(producer, topic, 3)
        position["slow"] += 1
        commit(admin, slow, topic, position["slow"])
        commit(admin, fast, topic, 2 + 3 * (i + 1))

    collector = KafkaLagCollector("live", interval=0.2, timeout=5, bootstrap_servers=kafka_broker.bootstrap,
                                  groups=[slow, fast], window=WINDOW)
    try:
        for i in range(WINDOW + 1):
            step(i)
            obs = collector.collect()
    finally:
        collector.close()
    assert (group_of(obs, slow)["status"], group_of(obs, slow)["rule"]) == ("WARN", "lag-not-decreasing")
    assert (group_of(obs, fast)["status"], group_of(obs, fast)["rule"]) == ("OK", "all-ok")
    assert group_of(obs, fast)["lag"] == 0


@pytest.mark.parametrize(("options", "status", "rule"), [
    ({"lag_warn": 5}, "WARN", "lag_warn"),
    ({"lag_warn": 5, "lag_error": 8}, "ERR", "lag_error"),
    ({"lag_warn": 500, "group_thresholds": {"G": {"lag_warn": 5}}}, "WARN", "lag_warn"),
    ({"lag_warn": 500}, "OK", "all-ok"),
])
def test_thresholds_per_source_and_per_group(kafka_broker, admin, producer, topic, options, status, rule):
    group = f"th-{topic}"
    options = {**options, "group_thresholds": {group: v for v in (options.get("group_thresholds") or {}).values()}}
    send(producer, topic, 10)
    consumed = {"at": 0}

    def step(i):  # a healthy consumer: 1 record behind each poll, then catching up a little
        consumed["at"] = min(10, consumed["at"] + 1)
        commit(admin, group, topic, consumed["at"])

    collector = collector_for(kafka_broker, group, **options)
    try:
        row = polls(collector, group, step, n=2)
    finally:
        collector.close()
    assert row["lag"] == 8
    assert (row["status"], row["rule"]) == (status, rule)


def test_lag_seconds_follow_a_producer_writing_at_a_known_rate(kafka_broker, admin, producer, topic):
    group = f"secs-{topic}"
    commit(admin, group, topic, 0)
    collector = collector_for(kafka_broker, group)
    try:
        started = time.time()
        collector.collect()
        while time.time() - started < 3.0:  # 10 records a second, the collector sampling 5 times a second
            send(producer, topic, 2)
            collector.collect()
            time.sleep(0.2)
        obs = collector.collect()
        elapsed = time.time() - started
    finally:
        collector.close()
    row = group_of(obs, group)
    # The record at offset 0 was written just after `started`: its age is the whole run, give or take a sample.
    assert row["lag_seconds"] == pytest.approx(elapsed, abs=0.6)
    assert row["extrapolated"] is False


def test_lag_growing_across_the_window_though_it_dipped_once_is_warn(kafka_broker, admin, producer, topic):
    group = f"grow-{topic}"
    send(producer, topic, 4)
    # Per poll: records written, then the offset committed. Lags 3, 3, 2 (the dip), 5, 6: the window's
    # last 4 are 3 2 | 5 6, every later lag above every earlier one, while the offsets move.
    plan = [(0, 1), (0, 1), (0, 2), (3, 2), (2, 3)]

    def step(i):
        written, offset = plan[i]
        send(producer, topic, written)
        commit(admin, group, topic, offset)

    collector = collector_for(kafka_broker, group)
    try:
        row = polls(collector, group, step)
    finally:
        collector.close()
    assert row["lag"] == 6
    assert (row["status"], row["rule"]) == ("WARN", "lag-growing")
    assert "lag grew 3→6" in row["reason"]


@pytest.mark.parametrize(("options", "status", "rule"), [
    ({"lag_seconds_warn": 1}, "WARN", "lag_seconds_warn"),
    ({"lag_seconds_warn": 1, "lag_seconds_error": 2}, "ERR", "lag_seconds_error"),
    ({"lag_seconds_warn": 60, "group_thresholds": {"G": {"lag_seconds_warn": 1}}}, "WARN", "lag_seconds_warn"),
    ({"lag_seconds_warn": 60, "lag_seconds_error": 120}, "OK", "all-ok"),
])
def test_lag_seconds_thresholds_raise_the_group_status(kafka_broker, admin, producer, topic, options, status, rule):
    group = f"ths-{topic}"
    options = {**options, "group_thresholds": {group: v for v in (options.get("group_thresholds") or {}).values()}}
    commit(admin, group, topic, 0)
    collector = collector_for(kafka_broker, group, **options)
    try:
        started = time.time()
        collector.collect()
        while time.time() - started < 3.0:  # 10 records a second, nobody consuming: the group falls 3 s behind
            send(producer, topic, 2)
            collector.collect()
            time.sleep(0.2)

        def step(i):  # then it consumes as fast as records arrive: offsets move, lag in messages stays put
            send(producer, topic, 1)
            commit(admin, group, topic, i + 1)

        row = polls(collector, group, step)
    finally:
        collector.close()
    assert row["lag_seconds"] > 2.5 and row["extrapolated"] is False
    assert (row["status"], row["rule"]) == (status, rule)
    if status != "OK":
        assert f"≥ {rule}" in row["reason"]
