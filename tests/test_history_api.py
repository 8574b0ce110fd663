"""The History page and its API: roles, ranges, compare, CSV equal to the chart data, bad input."""
from __future__ import annotations

import csv
import io
import time

import pytest

from dashboard import create_app
from dashboard.config import Settings, SourceConfig
from dashboard.store.history_queries import MAX_LABELS
from dashboard.store.timeseries import Point
from tests.conftest import login
from tests.test_history_queries import events_of, expected, stream

NOW = time.time()
HOSTILE = '=cmd|"/c calc"!A1<script>x</script>'


def seed(writer, tasks):
    writer.submit_many("celery_event", events_of(tasks, "main"))
    writer.submit_many("sample", [Point("kafka/events", "lag", float(i), NOW - 3600 + i * 60, "billing") for i in range(60)])
    writer.submit("source_status", {"kind": "kafka", "name": "events", "state": "up", "updated_at": NOW - 7200})
    writer.submit("source_status", {"kind": "kafka", "name": "events", "state": "down", "updated_at": NOW - 1800,
                                    "last_error": "NoBrokersAvailable"})
    writer.submit("source_status", {"kind": "kafka", "name": "events", "state": "up", "updated_at": NOW - 1200})
    writer.flush(30)


@pytest.fixture(scope="module")
def tasks():
    found = stream(2000, NOW - 2 * 86400, 2 * 86400 - 120, seed=11)
    found.append({"uuid": "h", "name": HOSTILE, "queue": "default", "ts": NOW - 600, "type": "task-failed",
                  "runtime": None})
    return found


@pytest.fixture
def app(tmp_path, tasks):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'h.db'}", secret_key="t", run_collectors=False,
                        sources=[SourceConfig("celery", "main", {"broker": "redis://127.0.0.1:6379/15"}),
                                 SourceConfig("kafka", "events", {"bootstrap_servers": "127.0.0.1:1"})])
    app = create_app(settings)
    seed(app.extensions["jobdash"].writer, tasks)
    yield app
    app.extensions["jobdash"].stop()


def read_csv(response):
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.text)))


def test_page_and_api_are_for_managers_and_admins(app):
    viewer = login(app, "viewer")
    assert viewer.get("/history").status_code == 403
    assert viewer.get("/api/history").status_code == 403
    assert viewer.get("/api/history/celery/main/outcomes").status_code == 403
    assert app.test_client().get("/api/history").status_code == 401
    for role in ("manager", "admin"):
        client = login(app, role)
        page = client.get("/history")
        assert page.status_code == 200 and "not built yet" not in page.text and 'id="outcomes-chart"' in page.text
        answer = client.get("/api/history?range=7d")
        assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"


def test_outcomes_match_the_stream_and_csv_equals_the_chart_data(app, tasks):
    client = login(app, "manager")
    since, until = int(NOW - 86400) // 60 * 60, int(NOW - 3600) // 60 * 60
    q = f"from={since}&until={until}"
    body = client.get(f"/api/history/celery/main/outcomes?{q}").json
    assert body["window"]["stored"] == 60 and body["window"]["since"] == since and body["window"]["until"] == until
    want = expected(tasks, since, until)
    assert {c: sum(r[c] for r in body["rows"]) for c in want} == want
    rows = read_csv(client.get(f"/api/history/celery/main/outcomes?{q}&format=csv"))
    assert list(rows[0]) == ["time", "key", "succeeded", "failed", "retried", "failure_rate"]
    assert {c: sum(int(r[c]) for r in rows) for c in want} == want  # summing a column gives the range's total
    assert [(r["key"], int(r["succeeded"]), int(r["failed"]), int(r["retried"])) for r in rows] == \
        [(r["key"], r["succeeded"], r["failed"], r["retried"]) for r in body["rows"]]
    by_name = read_csv(client.get(f"/api/history/celery/main/outcomes?{q}&by=name&top=2&format=csv"))
    assert len({r["key"] for r in by_name}) == 3 and sum(int(r["succeeded"]) for r in by_name) == want["succeeded"]


def test_hostile_names_are_neutralised_in_csv(app):
    client = login(app, "manager")
    rows = read_csv(client.get("/api/history/celery/main/outcomes?range=1h&by=name&top=50&format=csv"))
    assert "'" + HOSTILE in {r["key"] for r in rows}


def test_compare_returns_the_previous_period_on_the_same_buckets(app, tasks):
    client = login(app, "manager")
    body = client.get("/api/history/celery/main/outcomes?range=24h&compare=1").json
    w = body["window"]
    assert body["shift"] == w["until"] - w["since"]
    assert {r["ts"] + body["shift"] for r in body["previous"]["rows"]} <= set(range(w["since"], w["until"], w["step"]))
    prev = expected(tasks, w["since"] - body["shift"], w["since"])
    assert sum(r["succeeded"] for r in body["previous"]["rows"]) == prev["succeeded"]
    rows = read_csv(client.get("/api/history/celery/main/outcomes?range=24h&compare=1&format=csv"))
    assert {r["period"] for r in rows} == {"current", "previous"}


def test_metrics_availability_runtimes_and_summary(app):
    client = login(app, "manager")
    index = client.get("/api/history?range=24h").json
    assert {"source": "kafka/events", "metric": "lag", "unit": "", "value": "mean", "labels": ["billing"],
            "labels_not_drawn": 0} \
        in index["metrics"]
    lag = client.get("/api/history/metrics/kafka/events/lag?range=24h").json
    (billing,) = lag["series"]
    assert billing["label"] == "billing" and sum(billing["count"]) == 60
    lag_csv = read_csv(client.get("/api/history/metrics/kafka/events/lag?range=24h&format=csv"))
    assert [(r["label"], float(r["max"]), int(r["count"])) for r in lag_csv] == \
        [("billing", mx, n) for mx, n in zip(billing["max"], billing["count"])]
    avail = client.get("/api/history/availability?range=24h").json
    kafka = next(s for s in avail["sources"] if s["source"] == "kafka/events")
    assert kafka["seconds"]["down"] == pytest.approx(600, abs=1)
    assert [(i["state"], i["error"]) for i in kafka["incidents"]] == [("down", "NoBrokersAvailable")]
    incidents = read_csv(client.get("/api/history/availability?range=24h&part=incidents&format=csv"))
    assert incidents[0]["error"] == "NoBrokersAvailable" and float(incidents[0]["seconds"]) == pytest.approx(600, abs=1)
    runtimes = client.get("/api/history/celery/main/runtimes?range=7d").json
    assert runtimes["names"][0]["p95"] >= runtimes["names"][0]["p50"] > 0
    summary = client.get("/api/history/summary?range=7d&period=day&tz=Europe/Berlin").json
    assert summary["tz"] == "Europe/Berlin" and sum(r["tasks"] for r in summary["rows"]) > 0
    assert sum(r["downtime_seconds"] for r in summary["rows"]) == pytest.approx(600, abs=1)
    summary_csv = read_csv(client.get("/api/history/summary?range=7d&period=week&tz=UTC&format=csv"))
    assert sum(int(r["tasks"]) for r in summary_csv) == sum(r["tasks"] for r in summary["rows"])


def test_a_metric_with_many_labels_is_drawn_by_the_catalogs_labels_and_its_csv_has_them_all(app):
    writer = app.extensions["jobdash"].writer
    writer.submit_many("sample", [Point("consul/dc1", "service_critical", float(k), NOW - 1800 + i * 60, f"svc-{k:02d}")
                                  for k in range(30) for i in range(5)])
    writer.flush(30)
    client = login(app, "manager")
    (entry,) = [m for m in client.get("/api/history?range=24h").json["metrics"] if m["metric"] == "service_critical"]
    assert len(entry["labels"]) == MAX_LABELS and entry["labels_not_drawn"] == 30 - MAX_LABELS
    assert entry["labels"][0] == "svc-29"  # the highest peak first
    # What the page fetches to draw: the catalog's labels, nothing more.
    query = "&".join(f"label={label}" for label in entry["labels"])
    drawn = client.get(f"/api/history/metrics/consul/dc1/service_critical?range=24h&{query}").json["series"]
    assert [s["label"] for s in drawn] == sorted(entry["labels"])
    # The chart's CSV link (no label asked) has every series, as the page's note says.
    rows = read_csv(client.get("/api/history/metrics/consul/dc1/service_critical?range=24h&format=csv"))
    assert len({r["label"] for r in rows}) == 30 and len(rows) == 30 * 5


@pytest.mark.parametrize("query, error", [
    ("range=2y", "range: must be one of"),
    ("from=yesterday", "from: 'yesterday' is neither"),
    ("from=200&until=100", "from: must be earlier"),
    ("from=0&until=999999999", "at most 800 days"),
    ("until=100", "from: needed"),
])
def test_bad_ranges_are_a_clear_400(app, query, error):
    client = login(app, "manager")
    response = client.get(f"/api/history/celery/main/outcomes?{query}")
    assert response.status_code == 400 and error in response.json["error"]


def test_bad_choices_are_a_clear_4xx(app):
    client = login(app, "manager")
    assert client.get("/api/history/celery/nope/outcomes").status_code == 404
    assert "by: must be one of" in client.get("/api/history/celery/main/outcomes?by=worker").json["error"]
    assert "top:" in client.get("/api/history/celery/main/outcomes?top=0").json["error"]
    assert "tz:" in client.get("/api/history/summary?tz=Mars/Olympus").json["error"]
    assert "period:" in client.get("/api/history/summary?period=year").json["error"]
