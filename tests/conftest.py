"""Shared fixtures: settings, a database per test (SQLite, and PostgreSQL where asked), the app."""
from __future__ import annotations

import os
import re
import uuid

import pytest

from dashboard import create_app
from dashboard.config import Settings
from dashboard.store import HANDLERS, Writer, make_engine

pytest_plugins = ["tests.fixtures_services", "tests.browser"]

# The machine's PostgreSQL (trust auth); TEST_POSTGRES_URL points elsewhere.
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


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
def store(migrated_url):
    """A migrated database (SQLite and PostgreSQL) with its running writer: (engine, writer)."""
    engine = make_engine(migrated_url)
    writer = Writer(engine, HANDLERS)
    writer.start()
    yield engine, writer
    writer.stop()
    engine.dispose()


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


# -- logging in ------------------------------------------------------------------------------

PASSWORD = "correct horse battery staple"


def add_user(app, name: str, role: str, password: str = PASSWORD) -> None:
    """Add a user to the app's database unless one of that name exists."""
    from dashboard.auth.users import add_user as add, find_user

    runtime = app.extensions["jobdash"]
    if find_user(runtime.engine, name) is None:
        add(runtime.writer, runtime.engine, name, role, password)


def form_csrf(html: str) -> str:
    """The CSRF token in a page's form."""
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def login(app, role: str = "admin", name: str | None = None, password: str = PASSWORD):
    """A new test client logged in as `name` (default: the role's name), added with `role` if needed."""
    name = name or role
    add_user(app, name, role, password)
    client = app.test_client()
    response = client.post("/login", data={"name": name, "password": password,
                                           "csrf": form_csrf(client.get("/login").text)})
    assert response.status_code == 302, response.text
    return client


def csrf_of(client) -> str:
    """The CSRF token of a logged-in client's session."""
    return client.get("/api/me").json["csrf"]


@pytest.fixture
def admin_client(app):
    return login(app, "admin")
