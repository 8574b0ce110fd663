"""Kafka state rows: each poll replaces its source's rows; groups come worst first; bad values are clamped."""
from __future__ import annotations

from dashboard.store import kafka_queries as q


def group(name, status="OK", lag=0, **extra):
    return {"group": name, "status": status, "burrow_status": status, "rule": "r", "reason": "why", "lag": lag,
            "lag_seconds": 1.5, "extrapolated": False, "topics": ["t"], "partitions": 1, "members": 1,
            "members_note": None, "state": "Stable", "consume_rate": 2.0, "last_commit": 10.0, "complete": 1.0,
            "max_partition": {"topic": "t", "partition": 0, "lag": lag}, **extra}


def partition(group_name, p, lag=0, **extra):
    return {"group": group_name, "topic": "t", "partition": p, "committed": 5, "end": 5 + lag, "lag": lag,
            "lag_seconds": None, "extrapolated": False, "status": "OK", "rule": "r", "reason": "why", "owner": None,
            "host": None, "last_commit": None, "consume_rate": None, "samples": 3, "gone": False, "note": None, **extra}


def state(source, ts, groups, partitions=(), topics=()):
    return {"source": source, "ts": ts, "groups": list(groups), "partitions": list(partitions),
            "topics": list(topics), "removed": []}


def test_groups_worst_first_and_a_new_poll_replaces_the_old(store):
    engine, writer = store
    writer.submit("kafka_state", state("ev", 1.0, [group("calm"), group("slow", "WARN", 50), group("dead", "STOP", 5),
                                                   group("busy", "OK", 900)],
                                       [partition("slow", 0, 20), partition("slow", 1, 30)],
                                       [{"topic": "t", "partitions": 2, "end": 10, "produce_rate": 1.0,
                                         "consumers": {"slow": 0.5}}]))
    writer.submit("kafka_state", state("other", 1.0, [group("elsewhere")]))
    writer.flush()
    assert [g["group"] for g in q.groups(engine, "ev")] == ["dead", "slow", "busy", "calm"]
    assert [(p["partition"], p["lag"], p["end"]) for p in q.partitions(engine, "ev", "slow")] == [(0, 20, 25), (1, 30, 35)]
    assert q.topic(engine, "ev", "t")["consumers"] == {"slow": 0.5}
    assert q.group(engine, "ev", "slow")["max_partition"] == {"topic": "t", "partition": 0, "lag": 50}

    writer.submit("kafka_state", state("ev", 2.0, [group("calm")]))
    writer.flush()
    assert [g["group"] for g in q.groups(engine, "ev")] == ["calm"]
    assert q.partitions(engine, "ev", "slow") == [] and q.topics(engine, "ev") == []
    assert [g["group"] for g in q.groups(engine, "other")] == ["elsewhere"]


def test_untrusted_values_are_clamped_not_stored_broken(store):
    engine, writer = store
    hostile = "<script>alert(1)</script>\udcff" + "x" * 400
    writer.submit("kafka_state", state("ev", 1.0, [group(hostile, status="BOGUS", lag=10 ** 30, lag_seconds=float("nan"))],
                                       [partition(hostile, 0, committed="12x", lag=-5)]))
    writer.flush()
    (row,) = q.groups(engine, "ev")
    assert len(row["group"]) == 255 and row["group"].startswith("<script>") and "\\udcff" in row["group"]
    assert row["status"] == "ERR" and row["lag"] == 2 ** 62 and row["lag_seconds"] is None
    (part,) = q.partitions(engine, "ev", row["group"])
    assert part["committed"] == 0 and part["lag"] == 0
