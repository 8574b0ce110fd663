"""Celery events become task, worker and per-minute rows (fast tier: built events, real store)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from bench.celery_stream import task_events
from dashboard.store.celery_ingest import ARGSREPR_MAXSIZE
from dashboard.store.celery_queries import TASK_FIELDS
from dashboard.store.runtime_hist import percentile, runtime_bin
from dashboard.store.celery_models import CeleryMinute, CeleryTask, CeleryWorker

T0 = 1_700_000_040.0  # a whole minute


def ev(etype, uuid="t1", ts=T0, **fields):
    return {"type": etype, "uuid": uuid, "timestamp": ts, "hostname": fields.pop("hostname", "celery@w1"), **fields}


def task(engine, uuid="t1", source="s"):
    with engine.connect() as conn:
        row = conn.execute(select(*TASK_FIELDS).where(CeleryTask.source == source, CeleryTask.uuid == uuid)).mappings().one()
    return dict(row)


def feed(writer, events, source="s", one_batch=True):
    if one_batch:
        writer.submit_many("celery_event", [(source, e) for e in events])
    else:
        for e in events:
            writer.write("celery_event", (source, e))
    writer.flush()


@pytest.mark.parametrize("one_batch", [True, False])
def test_lifecycle_merges_into_one_row(store, one_batch):
    engine, writer = store
    feed(writer, [
        ev("task-sent", name="billing.charge", args="(42,)", kwargs="{'user_id': 7}", queue="billing",
           routing_key="billing", exchange="", retries=0, root_id="r1", parent_id="p1", hostname="producer@web"),
        ev("task-received", ts=T0 + 1, name="billing.charge", args="(42,)", kwargs="{'user_id': 7}"),
        ev("task-started", ts=T0 + 2),
        ev("task-succeeded", ts=T0 + 5, result="'ok'", runtime=3.0),
    ], one_batch=one_batch)
    row = task(engine)
    assert row["state"] == "SUCCESS" and row["name"] == "billing.charge"
    assert (row["sent_at"], row["received_at"], row["started_at"], row["succeeded_at"]) == (T0, T0 + 1, T0 + 2, T0 + 5)
    assert (row["queue"], row["routing_key"], row["worker"], row["runtime"]) == ("billing", "billing", "celery@w1", 3.0)
    assert (row["args"], row["kwargs"], row["args_truncated"], row["result"]) == ("(42,)", "{'user_id': 7}", False, "'ok'")
    assert (row["root_id"], row["parent_id"], row["first_seen_at"]) == ("r1", "p1", T0)


def test_late_events_do_not_roll_the_state_back(store):
    engine, writer = store
    feed(writer, [ev("task-failed", ts=T0 + 3, exception="ValueError('x')", traceback="Traceback...")], one_batch=False)
    feed(writer, [ev("task-received", ts=T0 + 1, name="n"), ev("task-started", ts=T0 + 2)])
    row = task(engine)
    assert row["state"] == "FAILURE" and row["name"] == "n" and row["started_at"] == T0 + 2
    assert row["exception"] == "ValueError('x')" and row["first_seen_at"] == T0 + 1


def test_a_retry_then_success_ends_in_success_and_keeps_the_failure_text(store):
    engine, writer = store
    feed(writer, [ev("task-received", name="n"), ev("task-started", ts=T0 + 1),
                  ev("task-retried", ts=T0 + 2, exception="Timeout()", traceback="tb"),
                  ev("task-received", ts=T0 + 12, name="n", retries=1), ev("task-started", ts=T0 + 13),
                  ev("task-succeeded", ts=T0 + 14, runtime=1.0, result="1")])
    row = task(engine)
    assert (row["state"], row["retries"], row["retried_at"], row["exception"]) == ("SUCCESS", 1, T0 + 2, "Timeout()")


def test_hostile_and_huge_arguments_are_stored_exactly(store):
    engine, writer = store
    hostile = "('<script>alert(1)</script>', '\"><img src=x onerror=alert(2)>', '\\udcff\\x00')"
    huge = "'" + "x" * (1024 * 1024) + "'"
    feed(writer, [ev("task-received", uuid="h", name="n", args=hostile, kwargs="{}"),
                  ev("task-received", uuid="big", name="n", args=huge, kwargs="{}")])
    assert task(engine, "h")["args"] == hostile
    assert task(engine, "big")["args"] == huge


def test_args_cut_by_celerys_repr_limit_are_flagged(store):
    engine, writer = store
    cut = "('" + "a" * (ARGSREPR_MAXSIZE - 10) + "...')"
    feed(writer, [ev("task-received", uuid="cut", name="n", args=cut, kwargs="{}"),
                  ev("task-received", uuid="whole", name="n", args="(1, 2)", kwargs="{}")])
    assert task(engine, "cut")["args_truncated"] is True
    assert task(engine, "whole")["args_truncated"] is False


def test_workers_follow_heartbeats_and_go_offline(store):
    engine, writer = store
    hb = {"freq": 2.0, "active": 3, "processed": 10, "loadavg": [0.1, 0.2, 0.3], "sw_ver": "5.7.0"}
    feed(writer, [{"type": "worker-online", "hostname": "celery@a", "timestamp": T0, **hb},
                  {"type": "worker-heartbeat", "hostname": "celery@a", "timestamp": T0 + 2, **hb, "processed": 12}])
    feed(writer, [{"type": "worker-offline", "hostname": "celery@a", "timestamp": T0 + 4}])
    feed(writer, [{"type": "worker-heartbeat", "hostname": "celery@a", "timestamp": T0 + 3, **hb}])  # late
    with engine.connect() as conn:
        w = conn.execute(select(CeleryWorker)).mappings().one()
    assert (w["online"], w["last_heartbeat"], w["processed"], w["freq"]) == (False, T0 + 4, 12, 2.0)
    assert w["loadavg"] == [0.1, 0.2, 0.3]


def test_outcomes_are_counted_per_minute_by_name_and_queue_across_batches(store):
    engine, writer = store
    events = []
    for i in range(10):
        uid = f"u{i}"
        events += [ev("task-sent", uid, T0 + i, name="a" if i < 6 else "b", queue="q1", hostname="p@x"),
                   ev("task-received", uid, T0 + i, name="a" if i < 6 else "b")]
    feed(writer, events)  # the outcomes come in later batches, without names
    feed(writer, [ev("task-succeeded", f"u{i}", T0 + 10 + i, runtime=0.1 * (i + 1)) for i in range(8)], one_batch=False)
    feed(writer, [ev("task-failed", "u8", T0 + 20), ev("task-retried", "u9", T0 + 21)])
    with engine.connect() as conn:
        rows = {(r.dimension, r.key): r for r in conn.execute(select(CeleryMinute))}
    assert (rows["name", "a"].succeeded, rows["name", "a"].failed) == (6, 0)
    assert (rows["name", "b"].succeeded, rows["name", "b"].failed, rows["name", "b"].retried) == (2, 1, 1)
    assert (rows["queue", "q1"].succeeded, rows["queue", "q1"].failed, rows["queue", "q1"].retried) == (8, 1, 1)
    assert rows["name", "a"].runtime_sum == pytest.approx(2.1)
    # p50 of 0.1..0.6 s lies in the bin holding 0.3 s; bins are 19% wide.
    assert percentile(rows["name", "a"].runtime_hist, 0.5) == pytest.approx(0.3, rel=0.2)


def test_runtime_bins_are_monotonic_and_bounded():
    assert runtime_bin(0.0) == 0 and runtime_bin(0.001) == 0
    values = [0.002, 0.01, 0.5, 1.0, 30.0, 600.0]
    bins = [runtime_bin(v) for v in values]
    assert bins == sorted(bins) and len(set(bins)) == len(bins)
    assert runtime_bin(10**9) == 80


def test_a_generated_stream_stores_every_task_once(store):
    engine, writer = store
    events = list(task_events(500))
    feed(writer, events)
    with engine.connect() as conn:
        states = dict(conn.exec_driver_sql("SELECT state, count(*) FROM celery_tasks GROUP BY state").all())
        workers = conn.exec_driver_sql("SELECT count(*) FROM celery_workers").scalar_one()
    failed = sum(1 for e in events if e["type"] == "task-failed")
    assert states == {"SUCCESS": 500 - failed, "FAILURE": failed}
    assert workers == 8


def test_text_a_database_cannot_hold_is_kept_visibly_escaped(store):
    engine, writer = store
    feed(writer, [ev("task-received", uuid="s", name="odd", args="('x\udcffy',)", kwargs="{}")])
    assert task(engine, "s")["args"] == "('x\\udcffy',)"


@pytest.mark.parametrize("one_batch", [True, False])
def test_a_late_task_sent_event_never_hides_what_the_worker_reported(store, one_batch):
    engine, writer = store
    # The producer stamps task-sent after publishing: it can carry a later time than the worker's events.
    feed(writer, [ev("task-received", ts=T0, name="n"), ev("task-started", ts=T0 + 0.002),
                  ev("task-succeeded", ts=T0 + 0.004, result="2", runtime=0.001),
                  ev("task-sent", ts=T0 + 0.007, name="n", queue="celery", hostname="producer@web")], one_batch=one_batch)
    row = task(engine)
    assert (row["state"], row["sent_at"], row["queue"]) == ("SUCCESS", T0 + 0.007, "celery")


def test_a_long_traceback_reads_back_whole_and_is_stored_packed_on_sqlite(store):
    """A burst of failures stores the same frames again and again: packed, they cost a fraction."""
    engine, writer = store
    frames = "".join(f'  File "/app/billing/step{i}.py", line {i}, in step{i}\n    step{i + 1}()\n' for i in range(30))
    long_tb = f"Traceback (most recent call last):\n{frames}RuntimeError: card declined ünïcode <b>\n"
    feed(writer, [ev("task-failed", uuid="long", exception="RuntimeError('card declined')", traceback=long_tb),
                  ev("task-failed", uuid="short", exception="KeyError('x')", traceback="KeyError: 'x'")])
    assert task(engine, "long")["traceback"] == long_tb and task(engine, "short")["traceback"] == "KeyError: 'x'"
    size = "length(CAST(traceback AS BLOB))" if engine.dialect.name == "sqlite" else "octet_length(traceback)"
    with engine.connect() as conn:
        stored = dict(conn.exec_driver_sql(f"SELECT uuid, {size} FROM celery_tasks").all())
    if engine.dialect.name == "sqlite":
        assert stored["long"] < len(long_tb.encode()) / 3, stored
    assert stored["short"] == len("KeyError: 'x'")
    # A reconcile that brings a traceback (from the result backend) stores and reads it the same way.
    writer.write("celery_reconcile", {"source": "s", "uuid": "long", "state": "FAILURE", "at": T0 + 9, "traceback": long_tb})
    writer.write("celery_reconcile", {"source": "s", "uuid": "gap", "state": "FAILURE", "at": T0 + 9, "recover": True,
                                      "traceback": long_tb})
    writer.flush()
    assert task(engine, "gap")["traceback"] == long_tb and task(engine, "long")["traceback"] == long_tb


def test_a_traceback_stored_before_packing_still_reads(store):
    engine, writer = store
    feed(writer, [ev("task-sent", uuid="old", name="n")])
    old_tb = "Traceback (most recent call last):\n" + "  frame\n" * 100
    with engine.begin() as conn:  # as a store written before tracebacks were packed holds it: plain text
        conn.exec_driver_sql("UPDATE celery_tasks SET traceback = ? WHERE uuid = 'old'".replace(
            "?", "%s" if engine.dialect.name == "postgresql" else "?"), (old_tb,))
    assert task(engine, "old")["traceback"] == old_tb


def test_names_workers_and_queues_are_stored_once_and_read_as_text(store):
    """Each task refers to its name, worker, queue and routing key by id: the texts are stored once."""
    engine, writer = store
    feed(writer, [ev("task-sent", uuid=f"t{i}", name="billing.charge", queue="billing", routing_key="billing.fast",
                     hostname="producer@web") for i in range(5)]
         + [ev("task-received", uuid=f"t{i}", ts=T0 + 1, name="billing.charge", hostname=f"celery@w{i % 2}")
            for i in range(5)])
    # A task no event announced, settled from the result backend with what it knows.
    writer.write("celery_reconcile", {"source": "s", "uuid": "gap", "state": "SUCCESS", "at": T0 + 9, "recover": True,
                                      "name": "emails.send", "worker": "celery@w1", "queue": "emails"})
    writer.write("celery_retry_link", {"source": "s", "uuid": "again", "retry_of": "t0", "name": "billing.charge",
                                       "queue": "slow", "routing_key": "slow", "at": T0 + 10})
    with engine.connect() as conn:
        stored = sorted(conn.exec_driver_sql("SELECT value FROM celery_names").scalars())
    assert stored == ["billing", "billing.charge", "billing.fast", "celery@w0", "celery@w1", "emails", "emails.send",
                      "slow"]
    row = task(engine, "t3")
    assert (row["name"], row["queue"], row["routing_key"], row["worker"]) == ("billing.charge", "billing", "billing.fast",
                                                                              "celery@w1")
    assert (task(engine, "gap")["name"], task(engine, "gap")["worker"]) == ("emails.send", "celery@w1")
    assert (task(engine, "again")["queue"], task(engine, "again")["worker"]) == ("slow", None)
