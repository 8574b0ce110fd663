"""Forged Celery events: every field clamped at ingest, and no stored value can break a page or API."""
from __future__ import annotations

import json
import logging
import time

import pytest
from sqlalchemy import insert, select

from dashboard import create_app
from dashboard.config import Settings, SourceConfig
from dashboard.store.celery_models import CeleryMinute, CeleryName, CeleryTask, CeleryWorker
from dashboard.store.celery_sanitize import AHEAD, EARLIEST, LONG, NUMBERS, SHORT, TEXT_MAX, TIMES, clean_event
from tests.conftest import login

SOURCE = SourceConfig("celery", "main", {"broker": "redis://127.0.0.1:6379/15"})
DEEP: list = []
_inner = DEEP
for _ in range(5000):
    _inner.append([])
    _inner = _inner[0]
# A value for every kind of field that no honest worker sends.
HOSTILE_VALUES = [1e20, -1e20, 1e400, float("nan"), float("-inf"), 2**70, -(2**70), True, "x" * 300_000,
                  "<script>alert(1)</script>\x00\udcff", {"a": {"b": [1, {"c": None}]}}, DEEP, [1e20, "x"], ""]
TASK_FIELDS = ("uuid", "timestamp", "name", "queue", "exchange", "routing_key", "retries", "eta", "expires",
               "parent_id", "root_id", "args", "kwargs", "result", "exception", "traceback", "runtime", "hostname",
               "local_received", "clock", "pid", "utcoffset", "anything_else")
WORKER_FIELDS = ("hostname", "timestamp", "freq", "active", "processed", "loadavg", "sw_ident", "sw_ver", "sw_sys")
TASK_TYPES = ("task-sent", "task-received", "task-started", "task-succeeded", "task-failed", "task-retried",
              "task-revoked", "task-rejected")


def hostile_events() -> list[dict]:
    """Each field of each event type in turn given each hostile value; the rest of it honest."""
    now, events = time.time(), []
    for i, value in enumerate(HOSTILE_VALUES):
        for etype in TASK_TYPES:
            for field in TASK_FIELDS:
                ev = {"type": etype, "uuid": f"t{i}-{field}", "timestamp": now - 60, "hostname": "celery@w",
                      "name": "n", "queue": "q"}
                ev[field] = value
                events.append(ev)
        for field in WORKER_FIELDS:
            ev = {"type": "worker-heartbeat", "hostname": f"w{i}-{field}", "timestamp": now - 1, "freq": 2.0}
            ev[field] = value
            events.append(ev)
    events += [{"type": value} for value in HOSTILE_VALUES if not isinstance(value, (dict, list))]
    events += [value for value in HOSTILE_VALUES]  # not even a dict
    return events


@pytest.fixture
def dash(sqlite_url):
    app = create_app(Settings(database_url=sqlite_url, secret_key="test-secret", run_collectors=False,
                              sources=[SOURCE]))
    yield app
    app.extensions["jobdash"].stop()


def _pages(admin) -> list[str]:
    """Every Celery page and API path, for every task and worker stored."""
    engine = admin.application.extensions["jobdash"].engine
    with engine.connect() as conn:
        uuids = list(conn.execute(select(CeleryTask.uuid).order_by(CeleryTask.uuid).limit(300)).scalars())
        hosts = list(conn.execute(select(CeleryWorker.hostname)).scalars())
    paths = ["/celery", "/celery/main", "/celery/main/tasks", "/celery/main/workers", "/celery/main/queues",
             "/celery/main/queues?span=7d", "/api/celery/main/tasks?limit=500", "/api/celery/main/workers",
             "/api/celery/main/queues", "/api/celery/main/stats", "/api/celery/main/stats?by=queue",
             "/api/celery/main/tasks?state=FAILURE", "/api/overview", "/"]
    for uuid in uuids:
        paths += [f"/celery/main/tasks/{uuid}", f"/api/celery/main/tasks/{uuid}"]
    for host in hosts:
        paths += [f"/celery/main/workers/{host}", f"/api/celery/main/workers/{host}"]
    return paths


def _assert_all_render(admin) -> None:
    for path in _pages(admin):
        response = admin.get(path)
        assert response.status_code in (200, 302, 404), (path, response.status_code)
        if response.is_json:
            json.loads(response.text, parse_constant=lambda c: pytest.fail(f"{path}: {c} is not JSON"))


def test_every_field_of_every_event_is_clamped_and_every_page_renders(dash, caplog):
    writer = dash.extensions["jobdash"].writer
    writer.submit_many("celery_event", [("main", ev) for ev in hostile_events()])
    writer.flush(timeout=300)  # megabytes of hostile text, on a loaded machine
    admin = login(dash, "admin")
    engine = dash.extensions["jobdash"].engine
    with engine.connect() as conn:
        stamps = list(conn.execute(select(CeleryTask.first_seen_at, CeleryTask.state_at, CeleryTask.runtime)))
        beats = list(conn.execute(select(CeleryWorker.last_heartbeat, CeleryWorker.freq)))
    now = time.time()
    assert len(stamps) > 100 and len(beats) > 50
    assert all(946_684_800 <= ts <= now + 86_400 for row in stamps for ts in row[:2])
    assert all(r is None or 0 <= r <= 366 * 86_400 for _, _, r in stamps)
    assert all(ts is None or ts <= now + 86_400 for ts, _ in beats)
    # Nothing failed on the way: not a batch of the writer, not the live rooms' translation.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    _assert_all_render(admin)


def test_an_out_of_range_time_is_shown_marked_with_its_original_text(dash):
    writer = dash.extensions["jobdash"].writer
    writer.write("celery_event", ("main", {"type": "task-started", "uuid": "forged", "timestamp": 1e20,
                                           "hostname": "celery@w"}))
    writer.write("celery_event", ("main", {"type": "worker-heartbeat", "hostname": "celery@forged",
                                           "timestamp": -1e20, "freq": 2.0}))
    admin = login(dash, "admin")
    tasks = admin.get("/celery/main/tasks")
    assert tasks.status_code == 200 and 'data-uuid="forged"' in tasks.text
    page = admin.get("/celery/main/tasks/forged")
    assert page.status_code == 200
    assert "timestamp 1e+20 is out of range" in page.text
    assert admin.get("/api/celery/main/tasks/forged").json["note"].startswith("event task-started: timestamp 1e+20")
    worker = admin.get("/celery/main/workers/celery@forged")
    assert worker.status_code == 200 and "timestamp -1e+20 is out of range" in worker.text
    assert admin.get("/celery/main/workers").status_code == 200


def test_rows_stored_before_the_clamp_still_render(dash):
    """A database written by an older jobdash may hold any value: the reading side copes too."""
    engine = dash.extensions["jobdash"].engine
    bad_times = (1e20, -1e20, 1e300, float("inf"), float("-inf"), 253402300800.0, -62135596801.0)
    with engine.begin() as conn:
        name_id = conn.execute(insert(CeleryName).values(value="n")).inserted_primary_key[0]
        for i, ts in enumerate(bad_times):
            conn.execute(insert(CeleryTask).values(
                source="main", uuid=f"old{i}", state="SUCCESS", state_at=ts, first_seen_at=ts, sent_at=ts,
                received_at=-ts, started_at=ts, succeeded_at=ts, runtime=ts, retries=2**31 - 1, name_id=name_id))
            conn.execute(insert(CeleryWorker).values(
                source="main", hostname=f"old{i}", online=True, last_heartbeat=ts, freq=ts, active=2**31 - 1,
                processed=-5, loadavg=["x", None, {"a": 1}], updated_at=ts,
                info={"pinged_at": "soon", "poll_interval": "x", "drained": "q", "stats": {"pool": {"processes": 3}},
                      "queues": [None, 1, {"name": ts}], "registered": {"a": 1}}))
        conn.execute(insert(CeleryMinute).values(source="main", dimension="name", key="n", bucket=int(time.time()) // 60 * 60,
                                                  succeeded=1, failed=0, retried=0, runtime_sum=float("inf"),
                                                  runtime_hist=[0] * 80 + [1]))  # an old runtime of 1e300
    _assert_all_render(login(dash, "admin"))


def test_cleaning_is_idempotent_and_marks_what_it_changed():
    ev = {"type": "task-failed", "uuid": "u", "timestamp": float("nan"), "exception": ["not", "text"],
          "retries": -1, "hostname": "h" * 400}
    clean = clean_event(ev)
    assert clean is ev and ev["hostname"].endswith("[cut by jobdash at 255 of 400 characters]") and len(ev["hostname"]) == 255
    assert ev["exception"] == "['not', 'text']" and ev["retries"] is None
    note = ev["jobdash_note"]
    assert "timestamp nan is out of range" in note and "retries -1" in note and "exception was not text" in note
    assert clean_event(ev) == clean and ev["jobdash_note"] == note
    forged = {"type": "task-sent", "uuid": "v", "timestamp": 1e20, "jobdash_cleaned": "guess", "jobdash_note": "fake"}
    clean_event(forged)
    assert forged["timestamp"] < 1e19 and "fake" not in forged["jobdash_note"]


def test_each_field_is_kept_up_to_its_limit_and_clamped_just_past_it():
    """Exact bounds, whichever way a value is checked (most honest fields take a shortcut)."""
    for field, limit in {**SHORT, **dict.fromkeys(LONG, TEXT_MAX)}.items():
        kept, cut = clean_event({field: "x" * limit}), clean_event({field: "é" * (limit + 1)})
        assert kept[field] == "x" * limit and "jobdash_note" not in kept, field
        assert len(cut[field]) == limit and f"{field} was {limit + 1:,} characters" in cut["jobdash_note"], field
    for field, (low, high, integer) in NUMBERS.items():
        for value in (low, high, float(low)):
            ev = clean_event({field: value})
            assert ev[field] == value and type(ev[field]) is (int if integer else type(value)), (field, value)
            assert "jobdash_note" not in ev, (field, value)
        for value in (low - 1, high + 1, float("nan"), True):
            ev = clean_event({field: value})
            assert ev[field] is None and f"{field} {value!r} is out of range" in ev["jobdash_note"], (field, value)
    now = time.time()
    for field in TIMES:
        for value in (EARLIEST, now + AHEAD - 60):
            assert clean_event({"type": "x", "local_received": now, field: value})[field] == value, (field, value)
        for value in (EARLIEST - 1, now + AHEAD + 60):
            ev = clean_event({"type": "x", "local_received": now, field: value})
            assert ev[field] != value and f"{field} {value!r} is out of range" in ev["jobdash_note"], (field, value)
