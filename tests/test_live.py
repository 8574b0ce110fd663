"""Live push: a snapshot on join, then deltas coalesced to at most ~5 emits per second a room."""
from __future__ import annotations

import time

import pytest

from dashboard import create_app
from dashboard.config import Settings, SourceConfig
from tests.conftest import login
from tests.fixtures_services import wait_for

SOURCE = SourceConfig(kind="dask", name="lab", options={"address": "tcp://127.0.0.1:1"})


@pytest.fixture
def live_app(migrated_url):
    # Collectors stay off: the test plays the collector by writing statuses itself.
    app = create_app(Settings(database_url=migrated_url, sources=[SOURCE], run_collectors=False))
    yield app
    app.extensions["jobdash"].stop()


def status(state: str, n: int) -> dict:
    return {"kind": "dask", "name": "lab", "state": state, "updated_at": time.time(), "last_success_at": None,
            "last_error": None, "last_error_at": None, "last_poll_ms": 1.0, "headline": {"workers": n}}


def received(client, name: str) -> list[dict]:
    return [m["args"][0] for m in client.get_received("/live") if m["name"] == name]


def join(app, room="overview"):
    client = app.extensions["socketio"].test_client(app, namespace="/live", flask_test_client=login(app, "viewer"))
    assert client.is_connected("/live")
    ack = client.emit("join", {"room": room}, namespace="/live", callback=True)
    return client, ack


def test_join_gets_a_snapshot_of_every_configured_source(live_app):
    client, ack = join(live_app)
    assert ack == {"ok": True}
    (snap,) = received(client, "snapshot")
    assert snap["room"] == "overview"
    assert snap["items"]["dask/lab"]["state"] == "unknown"


def test_a_store_write_reaches_the_room_as_one_coalesced_delta(live_app):
    client, _ = join(live_app)
    client.get_received("/live")
    writer = live_app.extensions["jobdash"].writer
    for n in range(50):  # a burst: the room should see the last value, not fifty emits
        writer.submit("source_status", status("up", n))
    writer.flush()
    time.sleep(0.6)
    deltas = received(client, "delta")
    assert 1 <= len(deltas) <= 3
    assert deltas[-1]["items"]["dask/lab"]["headline"] == {"workers": 49}
    assert deltas[-1]["items"]["dask/lab"]["state"] == "up"


def test_a_steady_stream_is_held_to_about_five_emits_a_second(live_app):
    client, _ = join(live_app)
    client.get_received("/live")
    writer = live_app.extensions["jobdash"].writer
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < 2.0:
        writer.submit("source_status", status("up", n))
        n += 1
        time.sleep(0.005)
    writer.flush()
    time.sleep(0.5)
    elapsed = time.monotonic() - started
    deltas = received(client, "delta")
    assert n > 200
    assert len(deltas) <= 5 * elapsed + 1
    assert deltas[-1]["items"]["dask/lab"]["headline"] == {"workers": n - 1}


def test_a_fresh_join_after_writes_sees_the_stored_state(live_app):
    writer = live_app.extensions["jobdash"].writer
    writer.write("source_status", status("down", 0))
    client, _ = join(live_app)
    (snap,) = received(client, "snapshot")
    assert snap["items"]["dask/lab"]["state"] == "down"


def test_unknown_room_is_refused_and_joins_nothing(live_app):
    client, ack = join(live_app, room="nope")
    assert ack == {"ok": False, "error": "unknown room"}
    assert received(client, "error") == [{"error": "unknown room 'nope'"}]
    assert received(client, "snapshot") == []
    live_app.extensions["jobdash"].writer.write("source_status", status("up", 1))
    time.sleep(0.5)
    assert received(client, "delta") == []


def test_healthz_and_readyz(app, client):
    assert client.get("/healthz").json == {"ok": True}
    assert client.get("/readyz").json == {"ok": True}  # anonymous: ready or not, nothing more
    ready = login(app, "viewer").get("/readyz")
    assert ready.status_code == 200
    assert ready.json["store"]["ok"] and ready.json["store"]["size_bytes"] > 0
    assert ready.json["writer"]["running"] and ready.json["writer"]["ok"]
    assert ready.headers["Cache-Control"] == "no-store"


def test_readyz_is_503_when_the_store_writer_has_stopped(app, client):
    app.extensions["jobdash"].writer.stop()
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["ok"] is False


def test_a_quiet_rooms_first_delta_leaves_at_once_and_what_follows_waits_for_the_window(live_app):
    hub = live_app.extensions["jobdash"].hub
    hub.interval = 3.0  # a window long enough to tell the leading edge from the trailing one
    client, _ = join(live_app)
    client.get_received("/live")
    writer = live_app.extensions["jobdash"].writer
    started = time.monotonic()
    writer.write("source_status", status("up", 1))
    first = wait_for(lambda: received(client, "delta"), lambda d: len(d) == 1, timeout=2.5)
    assert time.monotonic() - started < 2.5 and first[0]["items"]["dask/lab"]["headline"] == {"workers": 1}
    writer.write("source_status", status("up", 2))
    writer.write("source_status", status("up", 3))
    time.sleep(1.0)
    assert received(client, "delta") == []  # coalescing within the window
    (later,) = wait_for(lambda: received(client, "delta"), lambda d: len(d) == 1, timeout=10)
    assert later["items"]["dask/lab"]["headline"] == {"workers": 3}
