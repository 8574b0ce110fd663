"""Alembic's head is exactly the models' schema, migrations reverse cleanly, and they keep the data."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from dashboard.store import make_engine
from dashboard.store.celery_queries import TaskFilter, task_detail, task_page
from dashboard.store.migrate import downgrade, upgrade
from dashboard.store.models import Base


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


def _task_rows(url: str) -> list[tuple]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql("SELECT uuid, root_id, parent_id, retry_of, state, name FROM celery_tasks "
                                        "ORDER BY uuid").all()
    finally:
        engine.dispose()


def test_0010_keeps_every_task_and_shows_the_same(database_url):
    # A store as 0009 kept it: a root storing its own uuid, its child, a retry, a task no event gave a root.
    upgrade(database_url, "0009")
    engine = make_engine(database_url)
    with engine.begin() as conn:
        for uuid, root, parent, retry_of, state in [("root", "root", None, None, "FAILURE"),
                                                    ("kid", "root", "root", None, "SUCCESS"),
                                                    ("again", "again", None, "root", "PENDING"),
                                                    ("bare", None, None, None, "STARTED")]:
            conn.execute(text("INSERT INTO celery_tasks (source, uuid, name, state, state_at, first_seen_at, root_id, "
                              "parent_id, retry_of) VALUES ('s', :u, 'n', :st, 1.0, 1.0, :r, :p, :ro)"),
                         {"u": uuid, "r": root, "p": parent, "ro": retry_of, "st": state})
    engine.dispose()
    before = _task_rows(database_url)

    upgrade(database_url)
    assert schema_drift(database_url) == []
    engine = make_engine(database_url)
    try:
        indexes = {ix["name"]: ix["column_names"] for ix in inspect(engine).get_indexes("celery_tasks")}
        assert "ix_celery_tasks_worker" not in indexes and indexes["ix_celery_tasks_seen"] == ["source", "first_seen_at"]
        shown = {u: task_detail(engine, "s", u) for u in ("root", "kid", "again", "bare")}
        assert [shown[u]["root_id"] for u in ("root", "kid", "again", "bare")] == ["root", "root", "again", None]
        assert [c["uuid"] for c in shown["root"]["children"]] == ["kid"]
        assert [r["uuid"] for r in shown["root"]["retried_by"]] == ["again"]
        assert task_page(engine, "s", TaskFilter(state="FAILURE"))["total"] == 1
    finally:
        engine.dispose()

    downgrade(database_url, "0009")
    assert _task_rows(database_url) == before
