"""The Kafka pages, JSON API, Burrow-compatible API and the offset reset, on a real tansu broker."""
from __future__ import annotations

import re
import threading
import time
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata

from dashboard import create_app
from dashboard.config import Settings, SourceConfig
from tests.action_channels import action_rows
from tests.conftest import csrf_of, login
from tests.fixtures_services import producing, wait_for


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
def topic(admin, producer):
    """A topic of 3 partitions holding 10 records each."""
    name = f"w-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, 3, 1)])
    for partition in range(3):
        for _ in range(10):
            producer.send(name, b"m", partition=partition).get(timeout=10)
    return name


@pytest.fixture
def kafka_app(sqlite_url, kafka_broker):
    source = SourceConfig("kafka", "ev", {"bootstrap_servers": kafka_broker.bootstrap, "window": 3,
                                         "history_interval": 0.5}, interval=0.5, timeout=5)
    app = create_app(Settings(database_url=sqlite_url, secret_key="test-secret", sources=[source]))
    yield app
    app.extensions["jobdash"].stop()


def commit(admin, group: str, topic: str, offsets: dict[int, int]) -> None:
    admin.alter_group_offsets(group, {TopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()})


def committed(admin, group: str, topic: str) -> dict[int, int]:
    found = admin.list_group_offsets([group]).get(group) or {}
    return {tp.partition: om.offset for tp, om in sorted(found.items()) if tp.topic == topic}


def group_api(client, group: str) -> dict | None:
    response = client.get(f"/api/kafka/ev/groups/{group}")
    return response.json["group"] if response.status_code == 200 else None


def new_token(client) -> str:
    response = client.post("/tokens", data={"name": "burrow", "csrf": csrf_of(client)})
    return re.search(r'id="new-token">([^<]+)<', response.text).group(1)


def test_kafka_pages_list_each_group_with_its_status_word_and_the_source_is_up(kafka_app, admin, producer, topic):
    viewer = login(kafka_app, "viewer")
    caught_up, stopped = f"ok-{topic}", f"stop-{topic}"
    commit(admin, caught_up, topic, {0: 10, 1: 10, 2: 10})
    commit(admin, stopped, topic, {0: 1, 1: 1, 2: 1})
    wait_for(lambda: group_api(viewer, stopped), lambda g: g is not None and g["status"] == "STOP", timeout=30)
    assert group_api(viewer, caught_up)["status"] == "OK"

    page = viewer.get("/kafka").text
    for group, word in ((caught_up, "OK"), (stopped, "STOP")):
        row = re.search(rf'<tr class="group" data-group="{group}" data-status="(\w+)">', page)
        assert row and row.group(1) == word
        assert f'href="/kafka/ev/groups/{group}"' in page
    assert page.index(stopped) < page.index(caught_up)  # worst first
    detail = viewer.get(f"/kafka/ev/groups/{stopped}").text
    assert 'data-status="STOP"' in detail and "unchanged" in detail and f'data-topic="{topic}"' in detail
    assert viewer.get(f"/kafka/ev/topics/{topic}").status_code == 200

    status = viewer.get("/api/overview").json["sources"]["kafka/ev"]
    assert status["state"] == "up" and status["last_error"] is None
    assert status["headline"]["members"] == 0 and status["headline"]["status"] == "STOP"
    assert viewer.get("/kafka/ev/groups/no-such-group").status_code == 404
    assert viewer.get("/kafka/nope").status_code == 404
    history = wait_for(lambda: viewer.get(f"/api/kafka/ev/groups/{stopped}/history?span=1h").json,
                       lambda h: len(h["series"]["total"]) >= 2 and len(h["series"][topic]) >= 2, timeout=30)
    assert history["series"]["total"][-1]["value"] == 27


def test_burrow_api_answers_in_burrows_shape_to_a_session_and_to_a_bearer_token(kafka_app, admin, topic):
    group = f"burrow-{topic}"
    commit(admin, group, topic, {0: 4, 1: 10, 2: 10})
    session = login(kafka_app, "viewer")
    wait_for(lambda: group_api(session, group), lambda g: g is not None, timeout=30)
    token = new_token(session)
    anonymous = kafka_app.test_client()
    assert anonymous.get("/v3/kafka").status_code == 401
    assert anonymous.get("/v3/kafka", headers={"Authorization": "Bearer wrong"}).status_code == 401

    for get in (session.get, lambda path: anonymous.get(path, headers={"Authorization": f"Bearer {token}"})):
        body = get("/v3/kafka").json
        assert body["error"] is False and body["clusters"] == ["ev"] and body["request"]["url"] == "/v3/kafka"
        assert group in get("/v3/kafka/ev/consumer").json["consumers"]
        lag = get(f"/v3/kafka/ev/consumer/{group}/lag").json["status"]
        assert set(lag) == {"cluster", "group", "status", "complete", "partitions", "partition_count", "maxlag",
                            "totallag"}
        assert (lag["cluster"], lag["group"], lag["totallag"], lag["partition_count"]) == ("ev", group, 6, 3)
        assert lag["maxlag"]["partition"] == 0 and lag["maxlag"]["current_lag"] == 6
        assert {"topic", "partition", "owner", "client_id", "status", "start", "end", "current_lag", "complete"} \
            <= set(lag["partitions"][0])
        assert lag["partitions"][0]["end"]["offset"] == 4
        status = get(f"/v3/kafka/ev/consumer/{group}/status").json["status"]
        assert all(p["status"] != "OK" for p in status["partitions"])
        missing = get("/v3/kafka/ev/consumer/nobody/status")
        assert missing.status_code == 404 and missing.json["error"] is True
        assert get("/v3/kafka/elsewhere/consumer").status_code == 404


def test_topic_api_gives_each_consumer_with_its_status_and_keeps_up_verdict_as_the_page_does(kafka_app, admin,
                                                                                                producer, topic):
    client = login(kafka_app, "viewer")
    stopped = f"stop-{topic}"
    commit(admin, stopped, topic, {0: 1, 1: 1, 2: 1})
    wait_for(lambda: group_api(client, stopped), lambda g: g is not None and g["status"] == "STOP", timeout=30)
    body = client.get(f"/api/kafka/ev/topics/{topic}").json
    assert body["topic"]["topic"] == topic and {p["partition"] for p in body["partitions"]} == {0, 1, 2}
    assert body["consumers"] == [{"group": stopped, "rate": 0.0, "status": "STOP", "keeps_up": True, "short": None}]

    # Records keep arriving and nobody commits: the group falls short by the produce rate.
    with producing(producer, topic):
        body = wait_for(lambda: client.get(f"/api/kafka/ev/topics/{topic}").json,
                        lambda b: b["consumers"][0]["keeps_up"] is False, timeout=30)
    (consumer,) = body["consumers"]
    assert consumer["group"] == stopped and consumer["status"] in {"STOP", "WARN", "ERR"}
    assert consumer["short"] == pytest.approx(body["topic"]["produce_rate"] - consumer["rate"])
    assert body["topic"]["produce_rate"] > 0.05
    page = client.get(f"/kafka/ev/topics/{topic}").text
    assert re.search(rf'<tr data-group="{stopped}">.*?data-field="keeps_up">no: [\d.,]+/s short</td>', page, re.S)

    missing = client.get("/api/kafka/ev/topics/no-such-topic")
    assert missing.status_code == 404 and "no topic 'no-such-topic'" in missing.json["error"]
    assert client.get(f"/api/kafka/elsewhere/topics/{topic}").status_code == 404
    assert client.get("/kafka/ev/topics/no-such-topic").status_code == 404


def reset(client, group: str, **params):
    return client.post("/api/actions/kafka.reset_offsets", headers={"X-CSRF-Token": csrf_of(client)},
                       json={"source": "ev", "target": group, "params": {**params, "confirm": True}})


def test_reset_to_each_target_is_read_back_and_audited_with_the_previous_offsets(kafka_app, admin, topic):
    client = login(kafka_app, "admin")
    group = f"reset-{topic}"
    commit(admin, group, topic, {0: 5, 1: 5, 2: 5})
    preview = client.get(f"/api/kafka/ev/groups/{group}/reset-preview?topic={topic}&to=shift&value=-2&partitions=0,2")
    assert preview.status_code == 200
    assert [(p["partition"], p["current"], p["current_lag"], p["resulting"], p["resulting_lag"])
            for p in preview.json["partitions"]] == [(0, 5, 5, 3, 7), (2, 5, 5, 3, 7)]
    assert preview.json["refused"] is None

    cases = [({"to": "shift", "value": -2, "partitions": "0,2"}, {0: 3, 1: 5, 2: 3}),
             ({"to": "earliest"}, {0: 0, 1: 0, 2: 0}),
             ({"to": "latest", "partitions": "1"}, {0: 0, 1: 10, 2: 0}),
             ({"to": "offset", "value": 7}, {0: 7, 1: 7, 2: 7}),
             ({"to": "offset", "value": 99, "partitions": "0"}, {0: 10, 1: 7, 2: 7}),  # clamped to the end
             ({"to": "shift", "value": "+1", "partitions": "1"}, {0: 10, 1: 8, 2: 7}),
             ({"to": "timestamp", "value": int(time.time() * 1000) - 3_600_000}, {0: 0, 1: 0, 2: 0})]
    for params, expected in cases:
        response = reset(client, group, topic=topic, **params)
        assert response.status_code == 200, response.json
        assert committed(admin, group, topic) == expected
    rows = [r for r in action_rows(kafka_app) if r["action"] == "kafka.reset_offsets"]
    first = min(rows, key=lambda r: r["id"])
    assert first["outcome"] == "ok" and first["target"] == group
    assert first["params"]["recorded"]["previous"] == {"0": 5, "2": 5}
    assert first["params"]["recorded"]["result"] == {"0": 3, "2": 3}


def test_the_undo_of_a_reset_is_one_second_reset_that_puts_back_different_offsets(kafka_app, admin, topic):
    client = login(kafka_app, "admin")
    group = f"undo-{topic}"
    commit(admin, group, topic, {0: 2, 1: 7})  # partition 2: no committed offset
    first = reset(client, group, topic=topic, to="latest")
    assert first.status_code == 200, first.json
    assert committed(admin, group, topic) == {0: 10, 1: 10, 2: 10}
    details = first.json["details"]
    assert details["previous"] == {"0": 2, "1": 7, "2": None}
    assert details["undo"] == {"topic": topic, "to": "offset", "value": "0:2,1:7"}
    assert details["undo_skipped"] == [2]  # Kafka cannot uncommit it

    # The preview of the undo shows each partition's current and resulting offset.
    preview = client.get(f"/api/kafka/ev/groups/{group}/reset-preview", query_string=details["undo"])
    assert preview.status_code == 200, preview.json
    assert [(p["partition"], p["current"], p["resulting"], p["resulting_lag"]) for p in preview.json["partitions"]] \
        == [(0, 10, 2, 8), (1, 10, 7, 3)]
    assert preview.json["value"] == "0:2,1:7"

    undo = reset(client, group, **details["undo"])
    assert undo.status_code == 200, undo.json
    assert committed(admin, group, topic) == {0: 2, 1: 7, 2: 10}
    assert undo.json["details"]["undo"] == {"topic": topic, "to": "offset", "value": "0:10,1:10"}  # redo
    audited = [r for r in action_rows(kafka_app) if r["action"] == "kafka.reset_offsets"]
    assert [r["params"]["recorded"]["undo"]["value"] for r in sorted(audited, key=lambda r: r["id"])] \
        == ["0:2,1:7", "0:10,1:10"]


def test_reset_is_refused_while_a_consumer_is_active_and_nothing_changes(kafka_app, kafka_broker, admin, topic):
    client = login(kafka_app, "admin")
    group = f"busy-{topic}"
    commit(admin, group, topic, {0: 2, 1: 2, 2: 2})  # before the consumer joins: Kafka refuses it after
    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_broker.bootstrap, group_id=group,
                             enable_auto_commit=False, auto_offset_reset="earliest")
    stop = threading.Event()

    def run():
        while not stop.is_set():
            consumer.poll(200)

    thread = threading.Thread(target=run, daemon=True)
    try:
        thread.start()
        wait_for(lambda: group_api(client, group), lambda g: g is not None and g["members"] == 1, timeout=60)
        assert "active member" in client.get(f"/kafka/ev/groups/{group}").text
        preview = client.get(f"/api/kafka/ev/groups/{group}/reset-preview?topic={topic}&to=earliest").json
        assert "active member" in preview["refused"]
        response = reset(client, group, topic=topic, to="earliest")
        assert response.status_code == 409 and "active member" in response.json["error"]
        assert committed(admin, group, topic) == {0: 2, 1: 2, 2: 2}
    finally:
        stop.set()
        thread.join(5)
        consumer.close()


@pytest.mark.parametrize(("params", "status", "error"), [
    ({"to": "offset", "value": -1}, 400, "cannot be negative"),
    ({"to": "timestamp", "value": int(time.time() * 1000) + 86_400_000}, 400, "in the future"),
    ({"to": "timestamp", "value": "2999-01-01T00:00:00Z"}, 400, "in the future"),
    ({"to": "timestamp", "value": "yesterday"}, 400, "neither epoch milliseconds"),
    ({"to": "offset"}, 400, "required with to=offset"),
    ({"to": "sideways"}, 400, "must be one of"),
    ({"to": "earliest", "partitions": ",".join(map(str, range(10_000)))}, 400, "longer than"),
    ({"to": "earliest", "partitions": ",".join(map(str, range(1001)))}, 400, "at most 1000"),
    ({"to": "earliest", "partitions": "0,x"}, 400, "partition number"),
    ({"to": "earliest", "partitions": "7"}, 404, "no partition 7"),
    ({"to": "offset", "value": "0:5,0:6"}, 400, "partition 0 is named twice"),
    ({"to": "offset", "value": "0:5,1:-1"}, 400, "cannot be negative"),
    ({"to": "offset", "value": "0:5,x:1"}, 400, "not partition:offset"),
    ({"to": "offset", "value": "0:5,1:2.5"}, 400, "not partition:offset"),
    ({"to": "offset", "value": "0:5,"}, 400, "not partition:offset"),
    ({"to": "offset", "value": "0:5,1:6", "partitions": "0"}, 400, "exactly the map's partitions"),
    ({"to": "offset", "value": ",".join(f"{p}:1" for p in range(1001))}, 400, "at most 1000"),
    ({"to": "offset", "value": "0:1," * 5000 + "0:1"}, 400, "longer than"),
    ({"to": "offset", "value": "0:5,7:1"}, 404, "no partition 7"),
    ({"to": "earliest", "topic": "no-such-topic"}, 404, "no topic"),
    ({"to": "earliest", "topic": "bad topic!"}, 400, "Kafka topic name"),
])
def test_bad_reset_input_is_a_clear_4xx_and_changes_nothing(kafka_app, admin, topic, params, status, error):
    client = login(kafka_app, "admin")
    group = f"bad-{topic}"
    commit(admin, group, topic, {0: 3, 1: 3, 2: 3})
    response = reset(client, group, **{"topic": topic, **params})
    assert response.status_code == status, response.json
    assert error in response.json["error"]
    assert committed(admin, group, topic) == {0: 3, 1: 3, 2: 3}


def test_reset_of_an_unknown_group_is_404_and_a_viewer_is_refused(kafka_app, admin, topic):
    assert reset(login(kafka_app, "admin"), f"nobody-{topic}", topic=topic, to="earliest").status_code == 404
    group = f"kept-{topic}"
    commit(admin, group, topic, {0: 3})
    viewer = login(kafka_app, "viewer")
    assert reset(viewer, group, topic=topic, to="earliest").status_code == 403
    assert committed(admin, group, topic) == {0: 3}


def test_a_killed_broker_is_down_within_two_intervals_and_comes_back_up(sqlite_url):
    from dashboard.demo import processes

    broker = processes.start_tansu()
    interval, timeout = 1.0, 2.0
    source = SourceConfig("kafka", "ev", {"bootstrap_servers": broker.bootstrap}, interval=interval, timeout=timeout)
    app = create_app(Settings(database_url=sqlite_url, secret_key="test-secret", sources=[source]))
    try:
        client = login(app, "viewer")

        def state():
            return client.get("/api/overview").json["sources"]["kafka/ev"]

        wait_for(state, lambda s: s["state"] == "up", timeout=30)
        broker.cleanup()
        killed = time.monotonic()
        down = wait_for(state, lambda s: s["state"] == "down", timeout=30)
        # Two intervals, plus one poll's timeout for a poll that was under way when the broker died.
        assert time.monotonic() - killed <= 2 * interval + timeout + 1.0
        assert broker.bootstrap in down["last_error"]
        broker = processes.start_tansu(port=broker.port)
        assert wait_for(state, lambda s: s["state"] == "up", timeout=60)["last_success_at"] > killed
    finally:
        app.extensions["jobdash"].stop()
        broker.cleanup()
