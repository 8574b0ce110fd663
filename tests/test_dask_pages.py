"""The Dask pages, JSON API and live room against a real scheduler with worker processes:
what a viewer sees, paging, bad input, hostile text, and a scheduler that dies and comes back."""
from __future__ import annotations

import html
import time
import uuid

import pytest
from distributed import Client

from dashboard import create_app
from dashboard.config import Settings, SourceConfig
from dashboard.demo import processes
from tests.conftest import login
from tests.fixtures_services import wait_for

HOSTILE = "<script>alert(1)</script>"


def explode(text):
    raise RuntimeError(text)


def square(x):
    return x * x


@pytest.fixture(scope="module")
def dash(dask_cluster, tmp_path_factory):
    db = tmp_path_factory.mktemp("dask-pages") / "jobdash.db"
    source = SourceConfig("dask", "main", {"address": dask_cluster.address}, interval=0.5, timeout=4.0)
    app = create_app(Settings(database_url=f"sqlite:///{db}", sources=[source], secret_key="t"))
    runtime = app.extensions["jobdash"]
    wait_for(lambda: runtime.readiness()["collectors"]["dask/main"], lambda s: s["state"] == "up", timeout=30)
    yield app
    runtime.stop()


@pytest.fixture(scope="module")
def viewer(dash):
    return login(dash, "viewer")


@pytest.fixture(scope="module")
def work(dask_cluster, viewer):
    """Three tasks that finish and two that err (one with hostile text), seen by the dashboard."""
    tag = uuid.uuid4().hex[:6]
    with Client(dask_cluster.address, timeout=10, set_as_default=False) as client:
        ok = client.map(square, range(3), key=[f"sq{tag}-{i}" for i in range(3)])
        bad = [client.submit(explode, "plain failure", key=f"boom{tag}-0"),
               client.submit(explode, HOSTILE, key=f"boom{tag}-1")]
        client.gather(ok)
        wait_for(lambda: viewer.get(f"/api/dask/main/erred?prefix=boom{tag}").json, lambda p: p["total"] == 2, timeout=30)
        yield tag
        del ok, bad


def test_the_dask_index_links_each_source_page(viewer, work):
    page = viewer.get("/dask")
    assert page.status_code == 200
    assert 'href="/dask/main"' in page.text
    assert "not built yet" not in page.text


def test_the_cluster_page_shows_workers_progress_and_erred_tasks(viewer, dask_cluster, work):
    tag = work
    page = viewer.get("/dask/main")
    assert page.status_code == 200
    text = page.text
    assert dask_cluster.address in text
    assert text.count('<tr class="worker" data-address="tcp://') == dask_cluster.n_workers
    assert f'data-prefix="sq{tag}"' in text and f'data-prefix="boom{tag}"' in text
    assert f'data-key="boom{tag}-0"' in text and "plain failure" in text
    assert html.escape(HOSTILE) in text and HOSTILE not in text
    assert f'href="/dask/main/erred/boom{tag}-0"' in text
    detail = viewer.get(f"/dask/main/erred/boom{tag}-0")
    assert detail.status_code == 200
    assert f"boom{tag}" in detail.text and "RuntimeError(&#39;plain failure&#39;)" in detail.text
    assert "in explode" in detail.text  # the traceback


def test_the_api_pages_erred_tasks_and_refuses_bad_input(viewer, work):
    first = viewer.get("/api/dask/main/erred?limit=1")
    assert first.status_code == 200 and first.headers["Cache-Control"] == "no-store"
    second = viewer.get(f"/api/dask/main/erred?limit=1&after={first.json['next']}").json
    assert second["tasks"][0]["key"] != first.json["tasks"][0]["key"]
    for query, says in (("limit=0", "limit"), ("limit=x", "limit"), ("after=nonsense", "cursor"), ("state=lost", "state")):
        response = viewer.get(f"/api/dask/main/erred?{query}")
        assert response.status_code == 400 and says in response.json["error"]
    assert viewer.get("/api/dask/nowhere/workers").status_code == 404
    assert viewer.get("/api/dask/main/erred/no-such-key").status_code == 404
    assert viewer.get("/dask/nowhere").status_code == 404
    assert viewer.get("/dask/main/erred/no-such-key").status_code == 404
    assert viewer.get("/dask/main?after=nonsense").status_code == 400
    workers = viewer.get("/api/dask/main/workers").json["workers"]
    assert all(w["status"] == "running" and w["memory_limit"] for w in workers)
    prefixes = {p["prefix"]: p for p in viewer.get("/api/dask/main/prefixes").json["prefixes"]}
    assert prefixes[f"boom{work}"]["erred"] == 2


def test_history_is_for_managers(dash, viewer, work):
    assert viewer.get("/api/dask/main/history").status_code == 403
    manager = login(dash, "manager")
    body = wait_for(lambda: manager.get("/api/dask/main/history?span=1h").json,
                    lambda b: any(p["prefix"] == f"sq{work}" for p in b["durations"]), timeout=20)
    assert body["series"]["workers"] and body["series"]["workers"][-1]["value"] == 2
    sq = next(p for p in body["durations"] if p["prefix"] == f"sq{work}")
    assert sq["completed"] == 3 and sq["p50"] is not None and sq["p95"] >= sq["p50"]
    assert manager.get("/api/dask/main/history?span=1y").status_code == 400
    assert manager.get("/dask/main/history").status_code == 200


def test_the_live_room_sends_a_snapshot_then_new_erred_tasks(dash, viewer, dask_cluster, work):
    socket = dash.extensions["socketio"].test_client(dash, namespace="/live", flask_test_client=viewer)
    socket.emit("join", {"room": "dask/main"}, namespace="/live")
    snapshot = next(m for m in socket.get_received("/live") if m["name"] == "snapshot")["args"][0]["items"]
    assert "cluster" in snapshot and f"erred:boom{work}-0" in snapshot
    assert len([k for k in snapshot if k.startswith("worker:")]) == dask_cluster.n_workers
    with Client(dask_cluster.address, timeout=10, set_as_default=False) as client:
        late = client.submit(explode, "late", key=f"late{work}")

        def erred_deltas():
            return [m["args"][0]["items"] for m in socket.get_received("/live") if m["name"] == "delta"]

        seen: dict = {}
        wait_for(lambda: seen.update({k: v for d in erred_deltas() for k, v in d.items()}) or seen,
                 lambda s: f"erred:late{work}" in s, timeout=30)
        item = seen[f"erred:late{work}"]
        assert item["prefix"] == f"late{work}" and "late" in item["exception"] and "explode" in item["traceback"]
        del late
    socket.disconnect(namespace="/live")


def test_a_killed_scheduler_shows_down_within_two_intervals_and_recovers(tmp_path):
    cluster = processes.start_dask_scheduler(n_workers=1)
    source = SourceConfig("dask", "lone", {"address": cluster.address}, interval=2.0, timeout=2.0)
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'j.db'}", sources=[source], secret_key="t"))
    runtime = app.extensions["jobdash"]
    try:
        client = login(app, "viewer")
        wait_for(lambda: runtime.readiness()["collectors"]["dask/lone"], lambda s: s["state"] == "up", timeout=30)
        cluster.cleanup()
        killed = time.monotonic()
        wait_for(lambda: runtime.readiness()["collectors"]["dask/lone"], lambda s: s["state"] == "down", timeout=30)
        assert time.monotonic() - killed <= 2 * source.interval + source.timeout
        page = wait_for(lambda: client.get("/dask/lone").text, lambda t: 'data-state="down"' in t, timeout=10)
        assert "scheduler" in page and cluster.address in page  # the last error names it
        cluster = processes.start_dask_scheduler(port=cluster.port, n_workers=1)
        wait_for(lambda: runtime.readiness()["collectors"]["dask/lone"], lambda s: s["state"] == "up", timeout=60)
        wait_for(lambda: client.get("/dask/lone").text, lambda t: 'data-state="up"' in t, timeout=10)
    finally:
        runtime.stop()
        cluster.cleanup()
