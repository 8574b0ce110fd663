"""Retention bounds the store: Celery task rows by age and by a row cap, per-minute outcomes like the
other rollups; a sweep runs soon after start; pruning a million rows never holds ingest up for long."""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import func, select

import dashboard.runtime
from dashboard import create_app
from dashboard.config import Settings, SourceConfig
from dashboard.store import HANDLERS, Writer, make_engine
from dashboard.store.celery_models import CeleryMinute, CeleryTask
from dashboard.store.migrate import upgrade
from dashboard.store.models import Sample
from dashboard.store.retention import sweep
from dashboard.store.timeseries import Retention
from tests.conftest import login
from tests.fixtures_services import wait_for

DAY = 86400


def add_tasks(db, source: str, start: int, count: int, at: float) -> None:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-200000")
    conn.executemany("INSERT INTO celery_tasks (source, uuid, state, state_at, first_seen_at) "
                     "VALUES (?, ?, 'SUCCESS', ?, ?)",
                     ((source, f"t{i:08d}", at + i * 1e-3, at + i * 1e-3) for i in range(start, start + count)))
    conn.commit()
    conn.close()


@pytest.fixture
def store(tmp_path):
    """A migrated, empty SQLite store: its file and its URL."""
    db = tmp_path / "j.db"
    upgrade(f"sqlite:///{db}")
    return db, f"sqlite:///{db}"


def run_sweep(url: str, policy: Retention, sources: list[str]):
    """One whole sweep through a real writer; the engine (to count with) and the steps it took."""
    engine = make_engine(url)
    writer = Writer(engine, HANDLERS)
    writer.start()
    try:
        return engine, sweep(writer, engine, policy, sources, threading.Event())
    finally:
        writer.stop()


def count(engine, model, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


@pytest.mark.timeout(900)  # a million rows to write first, on a machine shared with other test runs
def test_a_million_old_task_rows_go_a_chunk_per_batch_while_ingest_goes_on(tmp_path):
    db = tmp_path / "j.db"
    url = f"sqlite:///{db}"
    upgrade(url)
    now = time.time()
    add_tasks(db, "main", 0, 1_000_000, now - 400 * DAY)
    add_tasks(db, "main", 1_000_000, 1000, now - DAY)
    engine = make_engine(url)
    writer = Writer(engine, HANDLERS)
    writer.start()
    done = threading.Event()
    waits: list[float] = []

    def ingest() -> None:
        n = 0
        while not done.is_set():
            started = time.monotonic()
            writer.write("celery_event", ("main", {"type": "task-succeeded", "uuid": f"new{n}", "timestamp": time.time()}),
                         timeout=120)
            waits.append(time.monotonic() - started)
            n += 1

    feeder = threading.Thread(target=ingest)
    feeder.start()
    try:
        started = time.monotonic()
        steps = sweep(writer, engine, Retention(48, 14, 400, tasks_days=30), ["main"], threading.Event())
        took = time.monotonic() - started
    finally:
        done.set()
        feeder.join(130)
        writer.stop()
    assert steps >= 200  # a chunk at a time
    assert count(engine, CeleryTask) == 1000 + len(waits)
    # Ingest went on throughout: each write waited about one step, never the whole sweep.
    assert len(waits) > 100 and max(waits) < min(5.0, took / 10), (max(waits), took)
    engine.dispose()


def test_the_row_cap_keeps_the_newest_tasks_of_each_source(store):
    db, url = store
    now = time.time()
    add_tasks(db, "main", 0, 3000, now - DAY)
    add_tasks(db, "other", 0, 100, now - DAY)
    engine, _ = run_sweep(url, Retention(48, 14, 400, tasks_days=30, tasks_max=1000), ["main", "other"])
    assert count(engine, CeleryTask, CeleryTask.source == "main") == 1000
    assert count(engine, CeleryTask, CeleryTask.source == "other") == 100
    with engine.connect() as conn:
        oldest = conn.execute(select(func.min(CeleryTask.uuid)).where(CeleryTask.source == "main")).scalar_one()
    assert oldest == "t00002000"
    engine.dispose()


def test_a_sweep_runs_soon_after_start_and_readyz_shows_size_and_oldest_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(dashboard.runtime, "PRUNE_FIRST", 0.5)
    db = tmp_path / "j.db"
    url = f"sqlite:///{db}"
    upgrade(url)
    old, now = time.time() - 400 * DAY, time.time()
    add_tasks(db, "main", 0, 10, old)
    add_tasks(db, "main", 10, 10, now - 60)
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO celery_minutes (source, dimension, key, bucket, succeeded, failed, retried, runtime_sum, "
                 "runtime_hist) VALUES ('main', 'name', 'old.task', ?, 1, 0, 0, 0.1, x'')", (int(old // 60 * 60),))
    conn.execute("INSERT INTO samples (source, metric, label, ts, value) VALUES ('celery/main', 'm', '', ?, 1)", (old,))
    conn.commit()
    conn.close()
    source = SourceConfig("celery", "main", {"broker": "redis://127.0.0.1:6379/0"})
    app = create_app(Settings(database_url=url, secret_key="t", run_collectors=False, sources=[source]))
    runtime = app.extensions["jobdash"]
    try:
        engine = runtime.engine
        wait_for(lambda: (count(engine, CeleryTask), count(engine, CeleryMinute), count(engine, Sample)),
                 lambda c: c == (10, 0, 0), timeout=30)
        ready = login(app, "viewer").get("/readyz").json["store"]  # details are for logged-in users
        assert ready["size_bytes"] > 0
        assert abs(ready["oldest"]["celery_tasks"] - (now - 60)) < 5 and ready["oldest"]["samples"] is None
    finally:
        runtime.stop()


def test_tasks_of_a_source_no_longer_configured_age_out_too(store):
    db, url = store
    now = time.time()
    for source in ("main", "removed"):
        add_tasks(db, source, 0, 50, now - 400 * DAY)
        add_tasks(db, source, 50, 20, now - DAY)
    engine, _ = run_sweep(url, Retention(48, 14, 400, tasks_days=30), ["main"])
    assert count(engine, CeleryTask, CeleryTask.source == "main") == 20
    assert count(engine, CeleryTask, CeleryTask.source == "removed") == 20
    engine.dispose()


def test_state_changes_and_dask_erred_tasks_are_pruned_by_age(store):
    db, url = store
    now = time.time()
    conn = sqlite3.connect(db)
    for age in (500 * DAY, 399 * DAY):  # past and inside the hour rollups' 400 days
        conn.execute("INSERT INTO source_transitions (kind, name, at, state) VALUES ('celery', 'main', ?, 'down')",
                     (now - age,))
        conn.execute("INSERT INTO consul_transitions (source, node, check_id, service, to_status, at, output) "
                     "VALUES ('c', 'n1', 'web', 'web', 'critical', ?, '')", (now - age,))
    for key, age in (("old", 31 * DAY), ("new", 29 * DAY)):  # past and inside the task rows' 30 days
        conn.execute("INSERT INTO dask_erred (source, key, raw, prefix, erred_at, state, state_at, retries) "
                     "VALUES ('d', ?, '\"k\"', 'inc', ?, 'erred', ?, 0)", (key, now - age, now - age))
    conn.commit()
    conn.close()
    engine, steps = run_sweep(url, Retention(48, 14, 400, tasks_days=30), [])
    conn = sqlite3.connect(db)
    kept = {table: [row[0] for row in conn.execute(f"SELECT {column} FROM {table}")]  # noqa: S608 - fixed names
            for table, column in (("source_transitions", "at"), ("consul_transitions", "at"), ("dask_erred", "key"))}
    conn.close()
    assert steps == 1
    assert [round((now - at) / DAY) for at in kept["source_transitions"]] == [399]
    assert [round((now - at) / DAY) for at in kept["consul_transitions"]] == [399]
    assert kept["dask_erred"] == ["new"]
    engine.dispose()
