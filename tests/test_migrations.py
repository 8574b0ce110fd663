"""Alembic's head is exactly the models' schema, migrations reverse cleanly, and they keep the data."""
from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

from dashboard.store import make_engine
from dashboard.store.celery_models import CeleryHour, CeleryMinute
from dashboard.store.celery_queries import TaskFilter, failures, task_detail, task_page
from dashboard.store.dask_models import DaskMinute
from dashboard.store.migrate import downgrade, upgrade
from dashboard.store.models import Base
from dashboard.store.runtime_hist import bin_upper, percentile


def schema_drift(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_head_matches_models(database_url):
    upgrade(database_url)
    assert tables(database_url) == set(Base.metadata.tables)
    assert schema_drift(database_url) == []


def test_downgrade_to_base_then_upgrade_round_trips(database_url):
    upgrade(database_url)
    downgrade(database_url, "base")
    assert tables(database_url) == set()
    upgrade(database_url)
    assert schema_drift(database_url) == []


def test_runtime_histograms_stored_as_json_read_the_same_after_0010_and_back(database_url):
    """0010 rewrites the JSON histograms of Celery minutes and hours and of Dask minutes as packed
    counts: the percentiles read after it equal those of the JSON, and downgrading restores the JSON."""
    upgrade(database_url, "0009")
    hists = {"celery_minutes": {"4": 3, "9": 1}, "celery_hours": {"0": 2, "80": 5}, "dask_minutes": {"12": 7}}
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            for table in ("celery_minutes", "celery_hours"):
                conn.execute(text(f"INSERT INTO {table} (source, dimension, key, bucket, succeeded, failed, retried, "
                                  "runtime_sum, runtime_hist) VALUES ('main', 'name', 'a', 3600, 4, 0, 0, 1.0, :h)"),
                             {"h": json.dumps(hists[table])})
            conn.execute(text("INSERT INTO dask_minutes (source, prefix, bucket, completed, erred, duration_sum, "
                              "duration_hist) VALUES ('d', 'inc', 60, 7, 0, 1.0, :h)"), {"h": json.dumps(hists["dask_minutes"])})
        upgrade(database_url)
        with engine.connect() as conn:
            got = {table.__tablename__: conn.execute(select(table.runtime_hist).where(table.dimension == "name")).scalar_one()
                   for table in (CeleryMinute, CeleryHour)}
            got["dask_minutes"] = conn.execute(select(DaskMinute.duration_hist)).scalar_one()
        for table, counts in got.items():
            assert {str(i): n for i, n in enumerate(counts) if n} == hists[table], table
        assert percentile(got["celery_minutes"], 0.5) == pytest.approx(bin_upper(4), rel=0.2)
        downgrade(database_url, "0009")
        with engine.connect() as conn:
            back = conn.execute(text("SELECT runtime_hist FROM celery_hours WHERE dimension = 'name'")).scalar_one()
        assert (json.loads(back) if isinstance(back, str) else back) == hists["celery_hours"]
    finally:
        engine.dispose()


def _task_rows(url: str, columns: str = "root_id, parent_id, retry_of, state, name") -> list[tuple]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(f"SELECT uuid, {columns} FROM celery_tasks ORDER BY uuid").all()
    finally:
        engine.dispose()


def _tasks_at(url: str, revision: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """A store at `revision` holding these tasks of source 's', first seen at 1.0, in that revision's columns."""
    upgrade(url, revision)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"INSERT INTO celery_tasks (source, state_at, first_seen_at, {', '.join(columns)}) "
                              f"VALUES ('s', 1.0, 1.0, {', '.join(':' + c for c in columns)})"),
                         [dict(zip(columns, row)) for row in rows])
    finally:
        engine.dispose()


@contextmanager
def _upgraded_and_back(url: str, revision: str, columns: str = "root_id, parent_id, retry_of, state, name"):
    """Upgrade a store at `revision` to head and give an engine on it; then check that going back to
    `revision` gives every task's `columns` as they were."""
    before = _task_rows(url, columns)
    upgrade(url)
    assert schema_drift(url) == []
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
    downgrade(url, revision)
    assert _task_rows(url, columns) == before


def test_0013_keeps_every_task_and_shows_the_same(database_url):
    # A store as 0012 kept it: a root storing its own uuid, its child, a retry, a task no event gave a root.
    _tasks_at(database_url, "0012", ("uuid", "root_id", "parent_id", "retry_of", "state", "name"),
              [("root", "root", None, None, "FAILURE", "n"), ("kid", "root", "root", None, "SUCCESS", "n"),
               ("again", "again", None, "root", "PENDING", "n"), ("bare", None, None, None, "STARTED", "n")])
    with _upgraded_and_back(database_url, "0012") as engine:
        indexes = {ix["name"]: ix["column_names"] for ix in inspect(engine).get_indexes("celery_tasks")}
        assert "ix_celery_tasks_worker" not in indexes and indexes["ix_celery_tasks_seen"] == ["source", "first_seen_at"]
        shown = {u: task_detail(engine, "s", u) for u in ("root", "kid", "again", "bare")}
        assert [shown[u]["root_id"] for u in ("root", "kid", "again", "bare")] == ["root", "root", "again", None]
        assert [c["uuid"] for c in shown["root"]["children"]] == ["kid"]
        assert [r["uuid"] for r in shown["root"]["retried_by"]] == ["again"]
        assert task_page(engine, "s", TaskFilter(state="FAILURE"))["total"] == 1


def test_0015_stores_celery_uuids_in_16_bytes_and_shows_every_task_the_same(database_url):
    # As 0014 kept them: Celery's uuids as text, and an id of the application's own.
    top, kid, again = "5b0c1f0e-8d1b-4a7e-9c2f-0a1b2c3d4e5f", "0d9f6a52-6c1e-4f3b-8a7d-1e2f3a4b5c6d", \
        "e3a1b2c4-d5e6-4f70-8192-a3b4c5d6e7f8"
    _tasks_at(database_url, "0014", ("uuid", "root_id", "parent_id", "retry_of", "state", "name"),
              [(top, "", None, None, "FAILURE", "n"), (kid, top, top, None, "FAILURE", "n"),
               (again, "", None, top, "FAILURE", "n"), ("nightly-report", None, None, None, "FAILURE", "n")])
    with _upgraded_and_back(database_url, "0014") as engine:
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                kinds = conn.exec_driver_sql("SELECT typeof(uuid), length(uuid), typeof(parent_id), typeof(retry_of) "
                                             "FROM celery_tasks ORDER BY rowid").all()
            assert kinds == [("blob", 16, "null", "null"), ("blob", 16, "blob", "null"), ("blob", 16, "null", "blob"),
                             ("text", 14, "null", "null")]
        shown = task_detail(engine, "s", top)
        assert [c["uuid"] for c in shown["children"]] == [kid] and [r["uuid"] for r in shown["retried_by"]] == [again]
        assert task_detail(engine, "s", kid)["root_id"] == top and task_detail(engine, "s", "nightly-report")
        assert task_page(engine, "s", TaskFilter(state="FAILURE"))["total"] == 4


def test_0016_stores_names_once_and_shows_every_task_the_same(database_url):
    # As 0015 kept them: each task with its name, worker, queue and routing key as text.
    _tasks_at(database_url, "0015", ("uuid", "name", "worker", "queue", "routing_key", "state"),
              [("a", "billing.charge", "celery@w1", "billing", "billing", "FAILURE"),
               ("b", "billing.charge", "celery@w2", "billing", "billing", "SUCCESS"),
               ("c", "emails.send", "celery@w1", None, None, "FAILURE"), ("d", None, None, None, None, "PENDING")])
    with _upgraded_and_back(database_url, "0015", "name, worker, queue, routing_key") as engine:
        with engine.connect() as conn:
            names = sorted(conn.exec_driver_sql("SELECT value FROM celery_names").scalars())
        assert names == ["billing", "billing.charge", "celery@w1", "celery@w2", "emails.send"]
        shown = [(t["uuid"], t["name"], t["worker"], t["queue"], t["routing_key"])
                 for t in (task_detail(engine, "s", u) for u in "abcd")]
        assert shown == [("a", "billing.charge", "celery@w1", "billing", "billing"),
                         ("b", "billing.charge", "celery@w2", "billing", "billing"),
                         ("c", "emails.send", "celery@w1", None, None), ("d", None, None, None, None)]
        assert [t["uuid"] for t in task_page(engine, "s", TaskFilter(worker="w1"))["tasks"]] == ["c", "a"]
        assert failures(engine, "s", "billing.charge", 0, 2, 10)[0] == 1
