"""The Dask collector's task stream, workers and prefixes into the store, against a real cluster;
and the ingest rules (gone workers, replayed batches, later success) on built polls."""
from __future__ import annotations

import uuid

import pytest
from distributed import Client

from collectors.dask_scheduler import DaskCollector
from dashboard.store import dask_queries as q
from tests.fixtures_services import wait_for

T0 = 1_800_000_000.0


def explode(x):
    raise ValueError(f"boom {x}")


def square(x):
    return x * x


def pump(collector, writer) -> None:
    """One poll, written as the runtime writes it."""
    for kind, payload in collector.collect().records:
        writer.submit(kind, payload)
    writer.flush()


@pytest.fixture(scope="module")
def client(dask_cluster):
    with Client(dask_cluster.address, timeout=10, set_as_default=False) as c:
        yield c


def test_erred_tasks_arrive_with_exception_and_traceback_and_finished_ones_are_counted_once(dask_cluster, client, store):
    engine, writer = store
    collector = DaskCollector("d", timeout=5, address=dask_cluster.address)
    tag = uuid.uuid4().hex[:8]
    try:
        pump(collector, writer)  # registers the stream; older records were counted by earlier runs
        ok = client.map(square, range(3), key=[f"square{tag}-{i}" for i in range(3)])
        bad = client.map(explode, range(2), key=[f"explode{tag}-{i}" for i in range(2)])
        client.gather(ok)
        wait_for(lambda: (pump(collector, writer), q.erred_page(engine, "d", prefix=f"explode{tag}"))[1],
                 lambda page: page["total"] == 2, timeout=30)
        page = q.erred_page(engine, "d", prefix=f"explode{tag}")
        assert {t["key"] for t in page["tasks"]} == {f"explode{tag}-0", f"explode{tag}-1"}
        assert all(t["state"] == "erred" and t["worker"].startswith("tcp://") for t in page["tasks"])
        detail = q.erred_task(engine, "d", f"explode{tag}-1")
        assert detail["exception"] == "ValueError('boom 1')"
        assert "explode" in detail["traceback"] and detail["prefix"] == f"explode{tag}"
        prefixes = {p["prefix"]: p for p in q.prefixes(engine, "d")}
        assert prefixes[f"explode{tag}"]["erred"] == 2 and prefixes[f"square{tag}"]["memory"] == 3
        pump(collector, writer)  # nothing new: nothing counted twice
        stats = {p["prefix"]: p for p in q.prefix_stats(engine, "d", 0)["prefixes"]}
        assert (stats[f"square{tag}"]["completed"], stats[f"explode{tag}"]["erred"]) == (3, 2)
        assert stats[f"square{tag}"]["p50"] is not None
        workers = q.workers(engine, "d")
        assert len([w for w in workers if not w["gone"]]) == dask_cluster.n_workers
        assert all(w["nthreads"] == 1 and w["memory"] > 10e6 and w["status"] == "running" for w in workers)
        cluster = q.cluster(engine, "d")
        assert cluster["address"] == dask_cluster.address and cluster["version"]
        assert cluster["erred"] >= 2 and cluster["workers"] == dask_cluster.n_workers
        del bad
    finally:
        collector.close()


def poll(workers, prefixes, at, source="s"):
    return {"source": source, "at": at, "cluster": {"workers": len(workers)},
            "workers": [{"address": a, "name": a[-1], "status": "running", "nanny": None, "nthreads": 1,
                         "memory_limit": 1e9, "memory": 5e7, "managed": 1e3, "unmanaged": 5e7, "spilled": 0.0,
                         "cpu": 2.0, "executing": 1, "ready": 0, "in_memory": 3, "last_seen": at} for a in workers],
            "prefixes": {p: {"waiting": 0, "processing": 1, "memory": 2, "erred": 0, "released": 0} for p in prefixes}}


def test_a_worker_that_leaves_stays_listed_as_gone_and_returns(store):
    engine, writer = store
    writer.write("dask_poll", poll(["tcp://a:1", "tcp://b:2"], ["x", "y"], T0))
    writer.write("dask_poll", poll(["tcp://a:1"], ["x"], T0 + 5))
    workers = {w["address"]: w for w in q.workers(engine, "s")}
    assert workers["tcp://b:2"]["gone"] and workers["tcp://b:2"]["gone_at"] == T0 + 5
    assert workers["tcp://b:2"]["executing"] == 0 and not workers["tcp://a:1"]["gone"]
    assert [p["prefix"] for p in q.prefixes(engine, "s")] == ["x"]
    writer.write("dask_poll", poll(["tcp://a:1", "tcp://b:2"], [], T0 + 10))
    workers = {w["address"]: w for w in q.workers(engine, "s")}
    assert not workers["tcp://b:2"]["gone"] and workers["tcp://b:2"]["first_seen_at"] == T0
    assert q.prefixes(engine, "s") == []


def task(key, erred, stop, prefix="p"):
    return {"key": key, "raw": f'"{key}"', "prefix": prefix, "worker": "tcp://a:1", "erred": erred, "start": stop - 1,
            "stop": stop, "duration": 1.0, "exception": "ValueError('x')" if erred else None,
            "traceback": "tb" if erred else None}


def test_a_replayed_failure_changes_nothing_and_a_later_success_shows_in_memory(store):
    engine, writer = store
    batch = {"source": "s", "at": T0 + 10, "counted_after": T0, "tasks": [task("p-1", True, T0 + 5)]}
    writer.write("dask_tasks", batch)
    writer.write("dask_retried", {"source": "s", "keys": ["p-1"], "state": "retried", "at": T0 + 6})
    assert q.erred_task(engine, "s", "p-1")["state"] == "retried"
    writer.write("dask_tasks", {**batch, "counted_after": T0 + 100})  # the same record, read again
    row = q.erred_task(engine, "s", "p-1")
    assert (row["state"], row["retries"]) == ("retried", 1)
    writer.write("dask_tasks", {"source": "s", "at": T0 + 20, "counted_after": T0, "tasks": [task("p-1", False, T0 + 8)]})
    assert q.erred_task(engine, "s", "p-1")["state"] == "memory"
    stats = q.prefix_stats(engine, "s", T0 - 60, T0 + 60)
    assert stats["prefixes"][0]["completed"] == 1 and stats["prefixes"][0]["erred"] == 1


def test_erred_pages_follow_each_other_without_gaps(store):
    engine, writer = store
    writer.write("dask_tasks", {"source": "s", "at": T0, "counted_after": T0,
                                "tasks": [task(f"p-{i:03d}", True, T0 + i // 2) for i in range(120)]})
    seen, after = [], None
    while True:
        page = q.erred_page(engine, "s", after=after, limit=50)
        seen += [t["key"] for t in page["tasks"]]
        after = page["next"]
        if after is None:
            break
    assert len(seen) == len(set(seen)) == 120 and page["total"] == 120
    with pytest.raises(q.QueryError):
        q.erred_page(engine, "s", after="garbage")


def test_stream_records_keep_text_only_and_tuple_keys_round_trip():
    from collectors.dask_stream import KEY_MAX, TEXT_MAX, key_from_json, task_record

    token = "getitem-" + "0123456789abcdef" * 2
    erred = task_record({"key": (token, 0, 1), "status": "error", "worker": "tcp://w:1",
                         "exception": b"\x80pickled", "exception_text": "E" * (TEXT_MAX + 10),
                         "traceback_text": "tb", "startstops": ({"action": "compute", "start": 1.0, "stop": 3.5},)})
    assert erred["key"] == f"('{token}', 0, 1)" and erred["prefix"] == "getitem"
    assert key_from_json(erred["raw"]) == (token, 0, 1)
    assert erred["duration"] == 2.5 and erred["exception"].endswith(f"cut by jobdash at {TEXT_MAX:,} characters")
    assert "pickled" not in repr(erred)  # the pickled exception object is never kept
    ok = task_record({"key": "x" * 1000, "status": "OK", "startstops": ()})
    assert len(ok["key"]) < KEY_MAX + 60 and ok["duration"] is None and ok["raw"] is None and ok["exception"] is None
    assert task_record({"status": "OK"}) is None


def test_a_backlog_beyond_max_read_is_skipped_and_said(dask_cluster, client, store):
    engine, writer = store
    collector = DaskCollector("m", timeout=5, address=dask_cluster.address)
    tag = uuid.uuid4().hex[:8]
    try:
        pump(collector, writer)
        collector.max_read = 5
        client.gather(client.map(square, range(12), key=[f"many{tag}-{i}" for i in range(12)]))
        observation = collector.collect()
        tasks = next(p for k, p in observation.records if k == "dask_tasks")["tasks"]
        assert len(tasks) == 5 and "7 records were not read" in observation.degraded
        assert collector.collect().degraded is None  # caught up: nothing more to say
    finally:
        collector.close()
