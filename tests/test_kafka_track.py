"""The Kafka tracker over crafted polls: partitions added, topics deleted, offsets reset, rates and rows."""
from __future__ import annotations

from collectors.kafka_lag import history_points
from collectors.kafka_track import KafkaTracker, Members, headline

ACTIVE = {"g": Members(1, "Stable")}


def run(tracker, polls, members=ACTIVE):
    """polls: [(ts, committed {(topic, p): offset}, ends {(topic, p): end})]; the last state."""
    state = None
    for ts, committed, ends in polls:
        state = tracker.update(ts, {"g": committed}, ends, members)
    return state


def group(state):
    (row,) = [g for g in state["groups"] if g["group"] == "g"]
    return row


def test_a_partition_added_joins_with_its_own_window():
    tracker = KafkaTracker(window=3, interval=1.0)
    polls = [(t, {("a", 0): t * 10}, {("a", 0): t * 10 + 5}) for t in range(1, 4)]
    polls.append((4, {("a", 0): 40, ("a", 1): 0}, {("a", 0): 45, ("a", 1): 7}))
    state = run(tracker, polls)
    rows = {(r["topic"], r["partition"]): r for r in state["partitions"]}
    assert rows[("a", 1)]["samples"] == 1 and rows[("a", 1)]["rule"] == "incomplete"
    assert rows[("a", 0)]["samples"] == 3
    assert group(state)["lag"] == 5 + 7 and group(state)["partitions"] == 2


def test_a_deleted_topic_keeps_counting_for_one_window_then_is_dropped():
    tracker = KafkaTracker(window=2, interval=1.0)
    both = ({("a", 0): 1, ("b", 0): 1}, {("a", 0): 2, ("b", 0): 11})
    only_a = ({("a", 0): 1}, {("a", 0): 2})
    state = run(tracker, [(1, *both), (2, *both), (3, *only_a)])
    gone = next(r for r in state["partitions"] if r["topic"] == "b")
    assert gone["gone"] and "stops counting after one window" in gone["note"]
    assert group(state)["lag"] == 1 + 10
    state = run(tracker, [(4, *only_a)])  # 2 s (a whole window) since b was last seen
    assert [r["topic"] for r in state["partitions"]] == ["a"]
    assert group(state)["lag"] == 1 and group(state)["topics"] == ["a"]
    assert [t["topic"] for t in state["topics"]] == ["a"]


def test_offsets_reset_backwards_show_rewind_then_settle():
    tracker = KafkaTracker(window=3, interval=1.0)
    state = run(tracker, [(1, {("a", 0): 50}, {("a", 0): 60}), (2, {("a", 0): 55}, {("a", 0): 60}),
                          (3, {("a", 0): 0}, {("a", 0): 60})])
    assert group(state)["status"] == "REWIND" and group(state)["burrow_status"] == "ERR"
    state = run(tracker, [(4, {("a", 0): 20}, {("a", 0): 60}), (5, {("a", 0): 40}, {("a", 0): 60}),
                          (6, {("a", 0): 60}, {("a", 0): 60})])
    assert group(state)["status"] == "OK"


def test_a_group_that_disappears_is_listed_as_removed():
    tracker = KafkaTracker(window=2, interval=1.0)
    tracker.update(1, {"g": {("a", 0): 1}, "h": {("a", 0): 1}}, {("a", 0): 2}, {})
    state = tracker.update(5, {"g": {("a", 0): 1}}, {("a", 0): 2}, {})
    assert state["removed"] == ["h"] and [g["group"] for g in state["groups"]] == ["g"]
    assert group(state)["members"] is None and group(state)["members_note"] == "not described"


def test_rates_lag_seconds_owners_and_history():
    tracker = KafkaTracker(window=5, interval=1.0)
    owners = {"g": Members(1, "Stable", {("a", 0): ("consumer-1", "/10.0.0.5")})}
    state = run(tracker, [(t, {("a", 0): t * 8}, {("a", 0): t * 10}) for t in range(1, 6)], owners)
    (row,) = state["partitions"]
    assert row["consume_rate"] == 8.0 and (row["owner"], row["host"]) == ("consumer-1", "/10.0.0.5")
    assert row["lag"] == 10 and row["lag_seconds"] == 1.0 and row["last_commit"] == 5
    assert state["topics"][0]["produce_rate"] == 10.0 and state["topics"][0]["consumers"] == {"g": 8.0}
    assert headline(state) == {"groups": 1, "partitions": 1, "lag": 10, "lag_seconds": 1.0, "members": 1,
                               "status": group(state)["status"], "not_ok": int(group(state)["status"] != "OK")}
    points = history_points(state)
    assert ("lag", "g", 10.0) in points and not [p for p in points if p[0] == "topic_lag"]  # one topic: the lag
    assert ("produce_rate", "a", 10.0) in points and ("consume_rate", "g", 8.0) in points


def test_a_committed_offset_past_the_end_is_lag_zero_with_a_note():
    state = run(KafkaTracker(window=2), [(1, {("a", 0): 9}, {("a", 0): 5})])
    (row,) = state["partitions"]
    assert row["lag"] == 0 and "beyond the end offset 5" in row["note"]


def test_a_group_of_several_topics_records_lag_per_topic():
    state = run(KafkaTracker(window=2), [(1, {("a", 0): 1, ("b", 0): 2, ("b", 1): 0}, {("a", 0): 4, ("b", 0): 5, ("b", 1): 1})])
    points = history_points(state)
    assert ("topic_lag", "g/a", 3.0) in points and ("topic_lag", "g/b", 4.0) in points and ("lag", "g", 7.0) in points
