"""The overview's "Needs attention" items and sparklines read generic data: any source's status
and headline, metric rollups, and Celery's tasks; through the JSON API the page uses."""
from __future__ import annotations

import time

import pytest

from dashboard import create_app
from dashboard.config import Settings, SourceConfig
from dashboard.store.timeseries import Point
from tests.conftest import login

SOURCES = [SourceConfig("celery", "main", {"broker": "redis://127.0.0.1:1/0"}),
           SourceConfig("kafka", "orders", {"bootstrap_servers": "127.0.0.1:1"}),
           SourceConfig("consul", "dc1", {"address": "127.0.0.1:1"}),
           SourceConfig("dask", "grid", {"address": "tcp://127.0.0.1:1"})]


@pytest.fixture
def app(sqlite_url):
    # No collectors: the test writes what they would have stored.
    app = create_app(Settings(database_url=sqlite_url, secret_key="k", sources=SOURCES, run_collectors=False))
    yield app
    app.extensions["jobdash"].stop()


def status(kind, name, state="up", headline=None, error=None, at=None):
    at = at or time.time()
    return {"kind": kind, "name": name, "state": state, "updated_at": at, "last_success_at": None if state == "down" else at,
            "last_error": error, "last_error_at": at if error else None, "last_poll_ms": 1.0, "headline": headline or {}}


def attention(app):
    response = login(app, "viewer").get("/api/overview/attention")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    return response.json


def test_all_well_is_an_empty_list(app):
    writer = app.extensions["jobdash"].writer
    for source in SOURCES:
        writer.write("source_status", status(source.kind, source.name))
    assert attention(app)["items"] == []


def test_problems_from_any_vertical_newest_first_each_with_its_page(app):
    runtime = app.extensions["jobdash"]
    now = time.time()
    runtime.writer.write("source_status", status("dask", "grid", "down", error="<b>refused</b>", at=now - 30))
    runtime.writer.write("source_status", status("consul", "dc1", headline={"critical": 2, "passing": 5}, at=now - 20))
    runtime.writer.write("source_status", status("kafka", "orders", headline={"lag": 1500, "groups": 2}, at=now - 10))
    runtime.writer.write("sample", Point("kafka/orders", "lag", 1500.0, now - 10, "billing"))
    runtime.writer.write("sample", Point("kafka/orders", "lag", 0.0, now - 10, "audit"))
    runtime.writer.write("celery_event", ("main", {"type": "task-received", "uuid": "u1", "name": "pay", "timestamp": now - 5,
                                                   "hostname": "w@h"}))
    runtime.writer.write("celery_event", ("main", {"type": "task-failed", "uuid": "u1", "timestamp": now - 5,
                                                   "hostname": "w@h", "exception": "boom"}))
    items = attention(app)["items"]
    assert [i["key"] for i in items] == ["failed:main:pay", "lag:kafka/orders", "critical:consul/dc1", "state:dask/grid"]
    by_key = {i["key"]: i for i in items}
    assert by_key["failed:main:pay"]["href"] == "/celery/main/tasks?state=FAILURE&name=pay"
    assert by_key["failed:main:pay"]["title"] == "celery/main: 1 × pay failed in the last 5 min"
    assert by_key["lag:kafka/orders"]["detail"] == "billing (1,500)"  # the lagging group, not the caught-up one
    assert by_key["lag:kafka/orders"]["href"] == "/kafka"
    assert by_key["critical:consul/dc1"]["title"] == "consul/dc1: 2 critical check(s)"
    assert by_key["state:dask/grid"] == {"key": "state:dask/grid", "level": "down", "title": "dask/grid is down",
                                         "detail": "<b>refused</b>", "at": pytest.approx(now - 30), "href": "/dask"}


def test_sparklines_come_from_the_minute_rollups(app):
    runtime = app.extensions["jobdash"]
    minute = int(time.time() // 60) * 60
    for ts, value in ((minute - 120, 3.0), (minute - 60, 5.0)):
        runtime.writer.write("sample", Point("kafka/orders", "lag", value, ts + 1, "billing"))
        runtime.writer.write("sample", Point("kafka/orders", "lag", 1.0, ts + 1, "audit"))
    runtime.writer.write("sample", Point("dask/grid", "tasks_processing", 4.0, minute + 1))
    sparks = attention(app)["sparklines"]
    assert sparks["kafka/orders"]["series"] == [{"name": "lag", "points": [[minute - 120, 4.0], [minute - 60, 6.0]]}]
    assert sparks["dask/grid"]["series"][0]["points"] == [[minute, 4.0]]
    assert sparks["celery/main"]["integer"] is True
    assert "consul/dc1" not in sparks  # nothing recorded yet: no line drawn
