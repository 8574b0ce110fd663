"""Shared fixtures: settings, a database per test (SQLite, and PostgreSQL where asked), the app."""
from __future__ import annotations

import os
import uuid

import pytest

from dashboard import create_app
from dashboard.config import Settings

pytest_plugins = ["tests.fixtures_services"]

# The machine's PostgreSQL (trust auth); JOBDASH_TEST_POSTGRES points elsewhere.
POSTGRES_ADMIN_URL = os.environ.get("JOBDASH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _postgres_database():
    """Create an empty database for one test and drop it afterwards."""
    import psycopg

    name = f"jobdash_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'jobdash.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A fresh, empty database: SQLite in a temp dir, and the machine's PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobdash.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def migrated_url(database_url) -> str:
    from dashboard.store.migrate import upgrade

    upgrade(database_url)
    return database_url


@pytest.fixture
def settings(sqlite_url) -> Settings:
    return Settings(database_url=sqlite_url, secret_key="test-secret")


@pytest.fixture
def app(settings):
    app = create_app(settings)
    yield app
    app.extensions["jobdash"].stop()


@pytest.fixture
def client(app):
    return app.test_client()
