"""Crafted input gets a clear 4xx from every endpoint, never a 500; bodies are bounded before parsing."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import requests

from dashboard import create_app
from dashboard.config import Settings, SourceConfig
from dashboard.demo.processes import free_port
from dashboard.views.audit import csv_cell
from tests.conftest import csrf_of, login

SOURCE = SourceConfig("celery", "main", {"broker": "redis://127.0.0.1:6379/15"})
HOSTILE = ["nan", "inf", "-inf", "1e400", "1e12", "-1e12", "-1", "9999-12-31", "0001-01-01T00:00", "\x00",
           "'\"<script>", "x" * 5000, "%ff", "[]", "{}", "0"]
QUERY_KEYS = ("since", "until", "after", "limit", "span", "by", "state", "name", "worker", "queue", "q", "endpoint",
              "next", "outcome", "user", "action", "source", "room")
PATH_VALUES = {"source": "main", "uuid": "t1", "hostname": "celery@w", "filename": "css/app.css", "token_id": "1"}


@pytest.fixture(scope="module")
def dash(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('crafted') / 'j.db'}"
    app = create_app(Settings(database_url=url, secret_key="test-secret", run_collectors=False, sources=[SOURCE]))
    writer = app.extensions["jobdash"].writer
    writer.write("celery_event", ("main", {"type": "task-received", "uuid": "t1", "timestamp": time.time() - 60,
                                           "hostname": "celery@w", "name": "n"}))
    writer.write("celery_event", ("main", {"type": "worker-heartbeat", "hostname": "celery@w",
                                           "timestamp": time.time() - 1, "freq": 2.0}))
    yield app
    app.extensions["jobdash"].stop()


@pytest.fixture(scope="module")
def admin(dash):
    return login(dash, "admin")


def get_paths(app) -> list[str]:
    """Every GET endpoint of the app, path arguments filled in."""
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods:
            paths.append(rule.build({arg: PATH_VALUES.get(arg, "x") for arg in rule.arguments})[1])
    return paths


@pytest.mark.parametrize("value", HOSTILE, ids=[repr(v[:12]) for v in HOSTILE])
def test_every_endpoint_answers_hostile_query_values_without_a_500(dash, admin, value):
    for path in get_paths(dash):
        for key in QUERY_KEYS:
            response = admin.get(path, query_string={key: value})
            assert response.status_code < 500, (path, key, value, response.status_code)
            if path.startswith("/api/") and response.status_code >= 400:
                assert response.is_json and response.json.get("error"), (path, key, value)


@pytest.mark.parametrize("path", ["/celery/main/tasks", "/api/celery/main/tasks", "/api/celery/main/queues",
                                  "/api/celery/main/stats", "/celery/main/tasks?state=FAILURE"])
@pytest.mark.parametrize("query", ["since=nan", "until=1e12", "since=-1e12", "until=inf", "since=-inf", "until=1e400"])
def test_impossible_times_are_a_400_that_says_why(admin, path, query):
    response = admin.get(f"{path}{'&' if '?' in path else '?'}{query}")
    assert response.status_code == 400
    assert "is not a time from 1970 to 9999" in response.text


def test_audit_with_an_endpoint_argument_renders(admin):
    page = admin.get("/audit?endpoint=x&user=admin")
    assert page.status_code == 200
    assert 'href="/audit.csv?user=admin"' in page.text
    assert admin.get("/audit?until=9999-12-31").status_code == 200


def test_a_deeply_nested_action_body_is_a_4xx_before_anything_else(dash, admin):
    deep = "[" * 100_000 + "]" * 100_000
    response = admin.post("/api/actions/celery.retry", data=deep, content_type="application/json")
    assert response.status_code == 403 and response.json["outcome"] == "refused"  # no CSRF token
    response = admin.post("/api/actions/celery.retry", data=deep, content_type="application/json",
                          headers={"X-CSRF-Token": csrf_of(admin)})
    assert response.status_code == 400 and "JSON object" in response.json["error"]
    nested = {"source": "main", "target": "t1", "params": {"a": json.loads("[" * 40 + "]" * 40)}}
    response = admin.post("/api/actions/celery.retry", json=nested, headers={"X-CSRF-Token": csrf_of(admin)})
    assert response.status_code == 400


def test_a_body_over_the_limit_is_refused_before_it_is_read(dash, admin):
    big = "x" * (2 * 1024 * 1024)
    response = admin.post("/api/actions/celery.retry", data=big, content_type="application/json",
                          headers={"X-CSRF-Token": csrf_of(admin)})
    assert response.status_code == 413 and "over" in response.json["error"]
    assert dash.test_client().post("/login", data={"name": big}).status_code == 413


@pytest.mark.parametrize("text", ["=1+1", "\n=1+1", "＝1+1", "＋1", "－1", "＠SUM(A1)", "\t=1", "\r=1", "+1", "-1", "@x"])
def test_csv_cells_a_spreadsheet_would_run_are_neutralised(text):
    assert csv_cell(text) == "'" + text


def test_serve_names_no_server_software_and_warns_once_that_logins_end_on_restart(tmp_path):
    config = tmp_path / "jobdash.toml"
    config.write_text(f"database_url = 'sqlite:///{tmp_path / 'j.db'}'\n")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dashboard.cli", "--config", str(config), "serve", "--port",
                             str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while not any("serving on" in line for line in lines) and time.monotonic() < deadline:
            lines.append(proc.stdout.readline())
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert "Werkzeug" not in response.headers.get("Server", "") and "Python" not in response.headers.get("Server", "")
        output = "".join(lines)
        assert output.count("every login ends when jobdash") == 1
    finally:
        proc.terminate()
        proc.wait(10)
