"""Sessions end by idling and by age; live sockets end with their session and leave rooms a role lost."""
from __future__ import annotations

import time

from sqlalchemy import delete, update

from dashboard.auth.sockets import EXTENSION
from dashboard.store.models import LoginSession, User
from tests.conftest import csrf_of, login


def socket(app, client):
    sock = app.extensions["socketio"].test_client(app, namespace="/live", flask_test_client=client)
    assert sock.is_connected("/live")
    return sock


def join(sock, room="overview"):
    return sock.emit("join", {"room": room}, namespace="/live", callback=True)


def age_sessions(app, **values) -> None:
    with app.extensions["jobdash"].engine.begin() as conn:
        conn.execute(update(LoginSession).values(**values))


def test_a_session_idle_longer_than_the_setting_ends_and_a_used_one_lives(app):
    settings = app.extensions["jobdash"].settings
    assert settings.session_idle_hours == 12
    client = login(app, "viewer")
    age_sessions(app, last_seen_at=time.time() - 11 * 3600)
    assert client.get("/api/me").status_code == 200  # used 11 h ago: still in, and now used again
    client2 = login(app, "viewer")
    age_sessions(app, last_seen_at=time.time() - 12 * 3600 - 60)
    assert client2.get("/api/me").status_code == 401
    assert client2.get("/").headers["Location"].startswith("/login")


def test_use_keeps_a_session_alive_past_the_idle_limit(app):
    client = login(app, "viewer")
    age_sessions(app, last_seen_at=time.time() - 11.5 * 3600)
    assert client.get("/api/me").status_code == 200  # notes the use (at most once a minute)
    app.extensions["jobdash"].writer.flush()
    with app.extensions["jobdash"].engine.connect() as conn:
        seen = conn.execute(LoginSession.__table__.select()).mappings().one()["last_seen_at"]
    assert time.time() - seen < 60


def test_a_session_older_than_its_lifetime_ends_however_busy(app):
    client = login(app, "viewer")
    assert app.extensions["jobdash"].settings.session_lifetime_hours == 7 * 24
    age_sessions(app, created_at=time.time() - 7 * 24 * 3600 - 60)
    assert client.get("/api/me").status_code == 401


def test_removing_a_user_disconnects_their_sockets(app):
    admin = login(app, "admin")
    bob_client = login(app, "viewer", name="bob")
    bob = socket(app, bob_client)
    assert join(bob)["ok"]
    assert admin.post("/users/bob/remove", data={"csrf": csrf_of(admin)}).status_code == 302
    assert not bob.is_connected("/live")


def test_join_checks_the_session_every_time(app):
    client = login(app, "viewer")
    sock = socket(app, client)
    assert join(sock) == {"ok": True}
    with app.extensions["jobdash"].engine.begin() as conn:  # ended elsewhere (another process, an expiry)
        conn.execute(delete(LoginSession))
    assert join(sock) == {"ok": False, "error": "login required"}
    assert not sock.is_connected("/live")


def test_the_sweep_ends_sockets_of_expired_sessions(app):
    client = login(app, "viewer")
    sock = socket(app, client)
    assert join(sock)["ok"]
    age_sessions(app, expires_at=time.time() - 1)
    app.extensions[EXTENSION].sweep()
    assert not sock.is_connected("/live")


def test_a_role_change_drops_the_rooms_the_role_no_longer_allows(app):
    guard = app.extensions[EXTENSION]
    guard.room_roles["overview"] = "manager"
    sock = socket(app, login(app, "manager", name="meg"))
    assert join(sock) == {"ok": True}
    sid = next(iter(guard._sockets))
    assert "overview" in guard.socketio.server.rooms(sid, namespace="/live")
    with app.extensions["jobdash"].engine.begin() as conn:
        conn.execute(update(User).where(User.name == "meg").values(role="viewer"))
    guard.sweep()
    assert sock.is_connected("/live")  # still logged in ...
    assert "overview" not in guard.socketio.server.rooms(sid, namespace="/live")  # ... but out of the room
    assert join(sock) == {"ok": False, "error": "this room needs the manager role"}


def test_join_and_action_without_a_payload_get_an_error_answer(app):
    sock = socket(app, login(app, "viewer"))
    assert sock.emit("join", namespace="/live", callback=True) == {"ok": False, "error": "unknown room"}
    assert sock.emit("action", namespace="/live", callback=True)["status"] == 400
    assert sock.emit("leave", namespace="/live", callback=True) == {"ok": True}
    assert sock.is_connected("/live")
