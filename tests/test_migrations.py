"""Alembic's head is exactly the models' schema, and migrations reverse cleanly."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from dashboard.store import make_engine
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
