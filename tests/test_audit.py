"""The audit page and its CSV export: admin only, filters, escaping, CSV-injection safety, read-only."""
from __future__ import annotations

import csv
import io
import re
import time
from datetime import datetime, timezone

import pytest

from dashboard.store.audit_log import AuditFilter, audit_row, read_audit
from tests.conftest import login
from tests.fixtures_services import wait_for

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


ROWS = [  # (time, user, action, outcome, target)
    ("2026-01-10T09:00", "ann", "consul.maintenance", "ok", "web-1"),
    ("2026-01-11T10:30", "bob", "consul.deregister", "refused", "web-2"),
    ("2026-01-12T23:59", "ann", "consul.deregister", "failed", "web-3"),
    ("2026-01-13T00:00", "cy", "consul.maintenance", "ok", "web-4"),
]


@pytest.fixture
def seeded(app):
    writer = app.extensions["jobdash"].writer
    for when, user, action, outcome, target in ROWS:
        row = audit_row(user=user, role="admin", via="http", action=action, outcome=outcome, source="consul/dc1",
                        target=target, params={"enable": True}, error=None if outcome == "ok" else "it went wrong")
        writer.write("audit", {**row, "ts": ts(when)})
    return app


def targets(html: str) -> list[str]:
    return re.findall(r"<td>(web-\d)</td>", html)


def test_only_admins_open_the_audit_page_and_its_export(app):
    for role in ("viewer", "manager"):
        client = login(app, role)
        assert client.get("/audit").status_code == 403
        assert client.get("/audit.csv").status_code == 403
    admin = login(app, "admin")
    assert admin.get("/audit").status_code == 200 and admin.get("/audit.csv").status_code == 200


@pytest.mark.parametrize("query, expected", [
    ("", ["web-4", "web-3", "web-2", "web-1"]),
    ("user=ann", ["web-3", "web-1"]),
    ("action=consul.deregister", ["web-3", "web-2"]),
    ("outcome=ok", ["web-4", "web-1"]),
    ("since=2026-01-11&until=2026-01-12", ["web-3", "web-2"]),  # "until" a date includes that day
    ("since=2026-01-11T10:30&until=2026-01-12T23:59", ["web-2"]),
    ("user=ann&outcome=failed", ["web-3"]),
])
def test_filters_narrow_the_page_and_the_export_alike(seeded, query, expected):
    admin = login(seeded, "admin")
    assert targets(admin.get(f"/audit?{query}").text) == expected
    exported = list(csv.DictReader(io.StringIO(admin.get(f"/audit.csv?{query}").text)))
    assert [r["target"] for r in exported if r["target"].startswith("web-")] == expected


def test_unreadable_filters_are_explained_not_fatal(seeded):
    page = login(seeded, "admin").get("/audit?since=yesterday&outcome=maybe")
    assert page.status_code == 200
    assert "since: &#39;yesterday&#39; is not a date" in page.text and "outcome: &#39;maybe&#39;" in page.text


def test_the_export_is_an_attachment_with_every_column(seeded):
    response = login(seeded, "admin").get("/audit.csv?user=bob")
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="jobdash-audit-')
    (row,) = csv.DictReader(io.StringIO(response.text))
    assert row == {"time": "2026-01-11T10:30:00Z", "user": "bob", "role": "admin", "via": "http",
                   "source": "consul/dc1", "action": "consul.deregister", "target": "web-2",
                   "params": '{"enable": true}', "outcome": "refused", "error": "it went wrong"}


def test_export_cells_that_a_spreadsheet_would_run_are_quoted(app):
    writer = app.extensions["jobdash"].writer
    for start in ("=", "+", "-", "@", "\t"):
        writer.write("audit", audit_row(user="eve", role="", via="http", action="auth.login", outcome="failed",
                                        target=f"{start}HYPERLINK(\"http://evil\")", error=f"{start}1+1"))
    rows = [r for r in csv.DictReader(io.StringIO(login(app, "admin").get("/audit.csv?user=eve").text))]
    assert len(rows) == 5
    for row in rows:
        assert row["target"].startswith("'") and row["target"][1] in "=+-@\t"
        assert row["error"].startswith("'")


def test_hostile_text_is_escaped_on_the_page(app):
    app.extensions["jobdash"].writer.write("audit", audit_row(
        user=HOSTILE[:64], role="", via="http", action="auth.login", outcome="failed", target=HOSTILE,
        params={"reason": HOSTILE}, error=HOSTILE))
    html = login(app, "admin").get("/audit").text
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html


def test_over_long_values_are_cut_to_fit_not_lost(app):
    app.extensions["jobdash"].writer.write("audit", audit_row(
        user="u" * 300, role="r" * 50, via="http", action="a" * 100, outcome="failed", target="t" * 1000,
        params={"blob": "x" * 20_000}))
    (row,) = read_audit(app.extensions["jobdash"].engine, AuditFilter())
    assert (len(row["user"]), len(row["role"]), len(row["action"]), len(row["target"])) == (64, 16, 64, 255)
    assert set(row["params"]) == {"_truncated"}


def test_nothing_in_the_web_ui_can_change_or_delete_audit_rows(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("audit."):
            assert rule.methods <= {"GET", "HEAD", "OPTIONS"}, rule
    admin = login(app, "admin")
    for method in ("post", "put", "delete", "patch"):
        assert getattr(admin, method)("/audit").status_code == 405


def live_socket(app, role: str):
    sock = app.extensions["socketio"].test_client(app, namespace="/live", flask_test_client=login(app, role))
    assert sock.is_connected("/live")
    return sock


@pytest.mark.parametrize("role", ["viewer", "manager"])
def test_only_admins_join_the_live_audit_room(app, role):
    sock = live_socket(app, role)
    ack = sock.emit("join", {"room": "audit"}, namespace="/live", callback=True)
    assert ack == {"ok": False, "error": "this room needs the admin role"}
    assert [m for m in sock.get_received("/live") if m["name"] == "snapshot"] == []
    app.extensions["jobdash"].writer.write("audit", audit_row(user="ann", role="admin", via="http",
                                                              action="consul.maintenance", outcome="ok"))
    time.sleep(0.5)  # the hub's window: a delta to the room would have left by now
    assert [m for m in sock.get_received("/live") if m["name"] == "delta"] == []


def test_an_admin_in_the_audit_room_gets_each_new_row_as_stored(app):
    sock = live_socket(app, "admin")
    assert sock.emit("join", {"room": "audit"}, namespace="/live", callback=True) == {"ok": True}
    (snapshot,) = [m["args"][0] for m in sock.get_received("/live") if m["name"] == "snapshot"]
    assert [r["action"] for r in snapshot["items"].values()] == ["auth.login"]  # the admin's own login
    app.extensions["jobdash"].writer.write("audit", audit_row(
        user="ann", role="admin", via="http", action="consul.maintenance", outcome="refused", target=HOSTILE,
        params={"reason": "x" * 20_000}, error="it went wrong"))
    deltas: list[dict] = []
    wait_for(lambda: deltas.extend(m["args"][0] for m in sock.get_received("/live") if m["name"] == "delta"),
             lambda _: deltas, timeout=5)
    (row,) = deltas[0]["items"].values()
    assert row["target"] == HOSTILE and row["outcome"] == "refused" and row["error"] == "it went wrong"
    assert row["params_text"].startswith('{"_truncated": ') and len(row["params_text"]) < 9000  # as stored
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["time"])
